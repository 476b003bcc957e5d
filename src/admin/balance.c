/*
 * balance.c -- cells at work: the load of a cell, moving a tenant to another
 * cell, and the balancer that does so by itself.
 *
 * Load.  A cell's load is a fraction of its capacity (1 = full), the highest
 * of three:
 *   broker     the average over its running brokers of requests per second
 *              against minikora.broker.capacity.requests.per.sec;
 *   replicas   the replicas on its brokers against
 *              minikora.cell.<n>.capacity.replicas (default
 *              minikora.cell.capacity.replicas);
 *   bandwidth  its brokers' client bytes in + out per second against
 *              minikora.cell.<n>.capacity.bytes.per.sec (default
 *              minikora.cell.capacity.bytes.per.sec).
 * Rates are stats.c's (a ~10 s window).  The cluster's power-of-two-choices
 * placement of new tenants compares this load (registered with
 * mk_cluster_set_cell_load_fn), so it is the one definition; between equal
 * loads the cell with fewer tenants wins.
 *
 * Moves.  Moving a tenant sets its cell and its topics' cells (persisted)
 * and records "move/<tenant>" in the kv store while it runs.  Each tick
 * then reassigns up to MAX_INFLIGHT of its partitions that still have a
 * replica outside their topic's cell to rf brokers of that cell, one per
 * AZ (repl/'s reassignment: add, catch up, switch the leader, drop).  When
 * none is left the move is over and its kv entry goes.  A restart in the
 * middle finds the entry and goes on.
 *
 * Balancer.  Every minikora.balancer.interval.ms, when no move runs and the
 * most loaded cell is above minikora.cell.load.threshold, its heaviest
 * tenant (by its share of that cell's load) moves to the least loaded cell
 * -- if that lowers the peak: the target's load plus the tenant's share
 * must stay below the source's load.
 *
 * Threads: the loop thread (the admin tick).
 */
#define MK_PARTITION_FIELDS
#include "admin/admin_int.h"
#include "meta/meta.h"
#include "repl/repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INFLIGHT 32

/* ===================================================================== load */

/* A per-cell capacity: minikora.cell.<n>.<what>, else minikora.cell.<what>. */
static double cell_capacity(mk_admin_t *a, int32_t cell, const char *what)
{
    char name[96];
    snprintf(name, sizeof(name), "minikora.cell.%d.%s", (int)cell, what);
    const mk_config_t *cfg = mk_cluster_config(a->c);
    const char *v = mk_cluster_config_is_set(cfg, name) ? mk_cluster_config_get(cfg, name) : NULL;
    double cap = v ? strtod(v, NULL) : 0;
    if (cap <= 0) {
        snprintf(name, sizeof(name), "minikora.cell.%s", what);
        cap = (double)mk_cluster_config_get_i64(cfg, name);
    }
    return cap > 0 ? cap : 1;
}

void mk_admin_cell_load(mk_admin_t *a, int32_t cell, mk_admin_cell_load_t *out)
{
    memset(out, 0, sizeof(*out));
    out->cell = cell;
    double req_cap = (double)mk_cluster_config_get_i64(mk_cluster_config(a->c),
                                                       "minikora.broker.capacity.requests.per.sec");
    int running = 0;
    double broker_sum = 0;
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (b->cell != cell)
            continue;
        mk_admin_rate_t r;
        mk_admin_stats_rate(a->stats, b->id, NULL, &r);
        out->bytes_per_sec += r.bytes_in + r.bytes_out;
        out->requests_per_sec += r.requests;
        if (b->running) {
            running++;
            broker_sum += r.requests / (req_cap > 0 ? req_cap : 1);
        }
    }
    out->replicas = mk_cluster_cell_replicas(a->c, cell);
    /* The health manager's probe partitions are no tenant's load. */
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it))) {
        if (!mk_health_topic_internal(tp->name))
            continue;
        for (int32_t p = 0; p < tp->partition_count; p++) {
            mk_partition_t *part = mk_cluster_topic_partition(tp, p);
            for (int32_t k = 0; k < mk_partition_replica_count(part); k++) {
                mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, mk_partition_replica_broker(part, k));
                out->replicas -= b && b->cell == cell;
            }
        }
    }
    out->replica_capacity = cell_capacity(a, cell, "capacity.replicas");
    out->bytes_capacity = cell_capacity(a, cell, "capacity.bytes.per.sec");
    out->broker = running ? broker_sum / running : 0;
    out->replica = (double)out->replicas / out->replica_capacity;
    out->bandwidth = out->bytes_per_sec / out->bytes_capacity;
    out->load = MK_MAX(out->broker, MK_MAX(out->replica, out->bandwidth));
}

/* Placement's view: the load, and between equal loads fewer tenants (a
 * tenant that has no topic yet weighs nothing, but it will). */
static double load_fn(void *arg, int32_t cell)
{
    mk_admin_t *a = arg;
    mk_admin_cell_load_t l;
    mk_admin_cell_load(a, cell, &l);
    int tenants = 0;
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, "default") : NULL;
    for (size_t it = 0; t; t = mk_tenant_next(r, &it))
        tenants += t->cell == cell;
    return l.load + tenants * 1e-9;
}

/* A tenant's share of its cell's load: its replicas and its topics' client
 * bytes, against the cell's capacities. */
static double tenant_share(mk_admin_t *a, const mk_tenant_t *t, int32_t cell)
{
    int64_t replicas = 0;
    double bytes = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it))) {
        if (!mk_tenant_visible(t, tp->name))
            continue;
        for (int32_t p = 0; p < tp->partition_count; p++)
            for (int32_t k = 0; k < tp->partitions[p].replica_count; k++) {
                mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, tp->partitions[p].replicas[k].broker);
                replicas += b && b->cell == cell;
            }
        mk_admin_rate_t r;
        mk_admin_stats_rate(a->stats, -1, tp->name, &r);
        bytes += r.bytes_in + r.bytes_out;
    }
    return MK_MAX((double)replicas / cell_capacity(a, cell, "capacity.replicas"),
                  bytes / cell_capacity(a, cell, "capacity.bytes.per.sec"));
}

/* ==================================================================== moves */

static void move_persist(mk_admin_t *a, const char *tenant, int32_t cell)
{
    char key[64], val[16];
    snprintf(key, sizeof(key), "move/%s", tenant);
    snprintf(val, sizeof(val), "%d", (int)cell);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = cell >= 0 ? val : NULL};
    if (mk_meta_op_submit(mk_cluster_meta(a->c), a->loop, &op, NULL, NULL) < 0)
        mk_warn("balance: cannot record the move of tenant %s", tenant);
}

static mk_admin_move_t *move_find(mk_admin_t *a, const char *tenant)
{
    for (int i = 0; i < a->bal.nmoves; i++)
        if (strcmp(a->bal.moves[i].tenant, tenant) == 0)
            return &a->bal.moves[i];
    return NULL;
}

const mk_admin_move_t *mk_admin_move_of(mk_admin_t *a, const char *tenant) { return move_find(a, tenant); }

/* The partitions of t with a replica outside their topic's cell. */
static int misplaced(mk_admin_t *a, const mk_tenant_t *t)
{
    int n = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it))) {
        if (!mk_tenant_visible(t, tp->name))
            continue;
        for (int32_t p = 0; p < tp->partition_count; p++)
            for (int32_t k = 0; k < tp->partitions[p].replica_count; k++) {
                mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, tp->partitions[p].replicas[k].broker);
                if (!b || b->cell != tp->cell) {
                    n++;
                    break;
                }
            }
    }
    return n;
}

int mk_admin_tenant_move(mk_admin_t *a, mk_tenant_t *t, int32_t cell, const char *why)
{
    if (cell < 0 || cell >= mk_cluster_cell_count(a->c))
        return MK_ERR_INVALID;
    mk_admin_move_t *m = move_find(a, t->id);
    if (!m && a->bal.nmoves == MK_ADMIN_MAX_MOVES)
        return MK_ERR_STATE;
    if (t->cell == cell && !m && misplaced(a, t) == 0)
        return MK_ERR_EXISTS;
    int32_t from = t->cell;
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    int rc = r ? mk_tenant_set_cell(r, t, cell) : MK_ERR_STATE;
    if (rc < 0)
        return rc;
    size_t it = 0;
    mk_topic_t *tp;
    int partitions = 0;
    while ((tp = mk_cluster_topic_next(a->c, &it)))
        if (mk_tenant_visible(t, tp->name)) {
            mk_cluster_topic_set_cell(a->c, tp, cell);
            partitions += tp->partition_count;
        }
    if (!m) {
        m = &a->bal.moves[a->bal.nmoves++];
        memset(m, 0, sizeof(*m));
        snprintf(m->tenant, sizeof(m->tenant), "%s", t->id);
        m->from = from;
        m->started_ms = mk_now_ms();
    }
    m->to = cell;
    m->partitions = partitions;
    move_persist(a, t->id, cell);
    mk_admin_event(a, "tenant_move", -1, "tenant %s moves from cell %d to cell %d: %d partitions (%s)", t->id, from,
                   cell, partitions, why);
    return 0;
}

/* rf brokers of cell for partition index i, one per AZ, rotated by i so
 * leaders spread over the cell. */
static int32_t target_of(mk_admin_t *a, int32_t cell, int32_t i, int16_t rf, int32_t *out)
{
    int32_t cand[MK_CLUSTER_MAX_BROKERS];
    int32_t n = 0;
    for (int b = 0; b < mk_cluster_broker_count(a->c); b++)
        if (mk_cluster_broker_at(a->c, b)->cell == cell)
            cand[n++] = mk_cluster_broker_at(a->c, b)->id;
    if (n == 0)
        return 0;
    int32_t k = MK_MIN((int32_t)rf, n);
    for (int32_t j = 0; j < k; j++)
        out[j] = cand[(i + j) % n];
    return k;
}

/* Start reassignments of a moving tenant's misplaced partitions; true when
 * none is left (the move is over). */
static bool move_advance(mk_admin_t *a, mk_admin_move_t *m, int *inflight)
{
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, m->tenant) : NULL;
    if (!t)
        return true; /* deleted meanwhile */
    mk_repl_t *repl = mk_broker_repl(a->b);
    int left = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it))) {
        if (!mk_tenant_visible(t, tp->name))
            continue;
        for (int32_t p = 0; p < tp->partition_count; p++) {
            mk_partition_t *part = &tp->partitions[p];
            bool out_of_cell = false;
            for (int32_t k = 0; k < part->replica_count; k++) {
                mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, part->replicas[k].broker);
                out_of_cell |= !b || b->cell != tp->cell;
            }
            if (!out_of_cell)
                continue;
            left++;
            if (mk_repl_reassigning(repl, part) || *inflight >= MAX_INFLIGHT)
                continue;
            int32_t target[MK_CLUSTER_MAX_BROKERS];
            int32_t n = target_of(a, tp->cell, p, tp->replication_factor, target);
            if (n > 0 && mk_repl_reassign(repl, part, target, n) == 0)
                (*inflight)++;
        }
    }
    m->left = left;
    return left == 0;
}

static void moves_tick(mk_admin_t *a)
{
    int inflight = (int)mk_repl_reassignments(mk_broker_repl(a->b), NULL);
    int keep = 0;
    for (int i = 0; i < a->bal.nmoves; i++) {
        mk_admin_move_t *m = &a->bal.moves[i];
        if (move_advance(a, m, &inflight)) {
            double secs = (double)(mk_now_ms() - m->started_ms) / 1000.0;
            mk_admin_event(a, "tenant_moved", -1, "tenant %s is in cell %d: %d partitions moved in %.1f s", m->tenant,
                           m->to, m->partitions, secs);
            move_persist(a, m->tenant, -1);
            a->bal.moves_done++;
            continue;
        }
        a->bal.moves[keep++] = *m;
    }
    a->bal.nmoves = keep;
}

/* ================================================================ balancer */

static void balance_once(mk_admin_t *a)
{
    int n = mk_cluster_cell_count(a->c);
    if (n < 2 || a->bal.nmoves > 0)
        return;
    mk_admin_cell_load_t hi = {.load = -1}, lo = {.load = 1e300}, l;
    for (int32_t c = 0; c < n; c++) {
        mk_admin_cell_load(a, c, &l);
        if (l.load > hi.load)
            hi = l;
        if (l.load < lo.load)
            lo = l;
    }
    double threshold = strtod(mk_cluster_config_get(mk_cluster_config(a->c), "minikora.cell.load.threshold"), NULL);
    if (hi.load <= threshold || hi.cell == lo.cell)
        return;
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *heaviest = NULL, *t = mk_tenant_find(r, "default");
    double share = 0;
    for (size_t it = 0; t; t = mk_tenant_next(r, &it)) {
        if (t->cell != hi.cell)
            continue;
        double s = tenant_share(a, t, hi.cell);
        if (s > share) {
            share = s;
            heaviest = t;
        }
    }
    if (!heaviest || lo.load + share >= hi.load)
        return;
    char why[96];
    snprintf(why, sizeof(why), "balancer: cell %d at load %.2f > %.2f", (int)hi.cell, hi.load, threshold);
    mk_admin_tenant_move(a, heaviest, lo.cell, why);
}

void mk_admin_balance_tick(mk_admin_t *a, uint64_t now_ms)
{
    moves_tick(a);
    const mk_config_t *cfg = mk_cluster_config(a->c);
    if (!mk_cluster_config_get_bool(cfg, "minikora.balancer.enable"))
        return;
    uint64_t every = (uint64_t)mk_cluster_config_get_i64(cfg, "minikora.balancer.interval.ms");
    if (now_ms - a->bal.last_run_ms < every)
        return;
    a->bal.last_run_ms = now_ms;
    balance_once(a);
}

/* ================================================================ lifecycle */

static int load_move_cb(const char *key, const char *value, void *arg)
{
    mk_admin_t *a = arg;
    const char *id = key + strlen("move/");
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    mk_tenant_t *t = r ? mk_tenant_find(r, id) : NULL;
    if (!t || a->bal.nmoves == MK_ADMIN_MAX_MOVES)
        return 0;
    mk_admin_move_t *m = &a->bal.moves[a->bal.nmoves++];
    memset(m, 0, sizeof(*m));
    snprintf(m->tenant, sizeof(m->tenant), "%s", t->id);
    m->from = -1;
    m->to = (int32_t)atoi(value);
    m->started_ms = mk_now_ms();
    mk_info("balance: the move of tenant %s to cell %d goes on", t->id, (int)m->to);
    return 0;
}

int mk_admin_balance_init(mk_admin_t *a)
{
    memset(&a->bal, 0, sizeof(a->bal));
    a->bal.last_run_ms = mk_mono_ms();
    mk_cluster_set_cell_load_fn(a->c, load_fn, a);
    return mk_meta_kv_foreach(mk_cluster_meta(a->c), "move/", load_move_cb, a);
}

void mk_admin_balance_free(mk_admin_t *a)
{
    if (a->c)
        mk_cluster_set_cell_load_fn(a->c, NULL, NULL);
}
