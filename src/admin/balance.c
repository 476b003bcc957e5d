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
 * Drains.  Draining a broker (kv "drain/<id>" while it lasts, resumed at
 * start) moves each of its replicas, DRAIN_INFLIGHT at a time, to another
 * broker of its cell that takes replicas (running, not retired, not
 * draining): one of its AZ where there is one, else one in an AZ the
 * partition has no replica in, else any; among those the one with the
 * fewest replicas.  Each is a repl/ reassignment (online: add, catch up,
 * switch the leader after a last synchronous round, drop), so no
 * acknowledged record is lost.  A drained broker can then be removed
 * (repl/'s mk_repl_broker_remove: refused while it holds a replica or is
 * the last broker of its AZ in its cell).  Nothing is placed on a draining
 * broker by tenant moves or the balancers; a topic created on it meanwhile
 * is moved off too.
 *
 * Partition balancer.  Within a cell (minikora.balancer.partitions.enable,
 * every minikora.balancer.partitions.interval.ms, or POST
 * /v1/cells/{n}/rebalance), replicas, preferred leaders and leaders are
 * evened over the brokers that take replicas; see mk_admin_cell_rebalance.
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

static struct mk_admin_drain_s *drain_find(mk_admin_t *a, int32_t id);
static void drain_forget(mk_admin_t *a, int32_t id);

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
        if (!mk_cluster_topic_internal(tp->name))
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
    for (int b = 0; b < mk_cluster_broker_count(a->c); b++) {
        mk_cluster_broker_t *br = mk_cluster_broker_at(a->c, b);
        if (br->cell == cell && !br->retired && !drain_find(a, br->id))
            cand[n++] = br->id;
    }
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


/* =================================================================== drains */

#define DRAIN_INFLIGHT 4   /* reassignments a drain keeps in flight */

static mk_admin_drain_t *drain_find(mk_admin_t *a, int32_t id)
{
    for (int i = 0; i < a->bal.ndrains; i++)
        if (a->bal.drains[i].broker == id)
            return &a->bal.drains[i];
    return NULL;
}

const mk_admin_drain_t *mk_admin_drain_of(mk_admin_t *a, int32_t id) { return drain_find(a, id); }

static void drain_persist(mk_admin_t *a, int32_t id, bool on)
{
    char key[32];
    snprintf(key, sizeof(key), "drain/%d", (int)id);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = on ? "1" : NULL};
    if (mk_meta_op_submit(mk_cluster_meta(a->c), a->loop, &op, NULL, NULL) < 0)
        mk_warn("balance: cannot record the drain of broker %d", (int)id);
}

/* Can b take new replicas: running, not retired, not being drained. */
static bool broker_takes(mk_admin_t *a, const mk_cluster_broker_t *b)
{
    return b->running && !b->retired && !drain_find(a, b->id);
}

static bool has_replica(const mk_partition_t *p, int32_t id)
{
    for (int32_t k = 0; k < p->replica_count; k++)
        if (p->replicas[k].broker == id)
            return true;
    return false;
}

/* Does a replica of p other than on broker `except` sit in az? */
static bool az_used(mk_admin_t *a, const mk_partition_t *p, const char *az, int32_t except)
{
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, p->replicas[k].broker);
        if (b && b->id != except && strcmp(b->az, az) == 0)
            return true;
    }
    return false;
}

/* Replicas, leaders and preferred leaders per broker (index id - 1). */
typedef struct counts_s {
    int replicas[MK_CLUSTER_MAX_BROKERS], leaders[MK_CLUSTER_MAX_BROKERS], preferred[MK_CLUSTER_MAX_BROKERS];
} counts_t;

static void counts_take(mk_admin_t *a, counts_t *k)
{
    memset(k, 0, sizeof(*k));
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it)))
        for (int32_t p = 0; p < tp->partition_count; p++) {
            const mk_partition_t *part = &tp->partitions[p];
            for (int32_t r = 0; r < part->replica_count; r++) {
                int32_t id = part->replicas[r].broker;
                if (id >= 1 && id <= MK_CLUSTER_MAX_BROKERS) {
                    k->replicas[id - 1]++;
                    k->preferred[id - 1] += r == 0;
                }
            }
            if (part->leader >= 1 && part->leader <= MK_CLUSTER_MAX_BROKERS)
                k->leaders[part->leader - 1]++;
        }
}

/* Where p's replica on d goes: a broker of d's cell that takes replicas and
 * has none of p, in d's AZ first, else in an AZ p has no replica in (one
 * replica per AZ), else any; the one with the fewest replicas among the
 * best kind.  -1: nowhere now. */
static int32_t drain_target(mk_admin_t *a, const mk_partition_t *p, const mk_cluster_broker_t *d, const counts_t *k)
{
    int32_t best = -1;
    int best_tier = 3, best_n = 0;
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (b->id == d->id || b->cell != d->cell || !broker_takes(a, b) || has_replica(p, b->id))
            continue;
        int tier = strcmp(b->az, d->az) == 0 ? 0 : !az_used(a, p, b->az, d->id) ? 1 : 2;
        int n = k->replicas[b->id - 1];
        if (tier < best_tier || (tier == best_tier && n < best_n)) {
            best = b->id;
            best_tier = tier;
            best_n = n;
        }
    }
    return best;
}

/* Start reassignments off d's broker; counts how many replicas are left. */
static void drain_advance(mk_admin_t *a, mk_admin_drain_t *d, counts_t *k, int *inflight)
{
    mk_cluster_broker_t *db = mk_cluster_broker_find(a->c, d->broker);
    mk_repl_t *repl = mk_broker_repl(a->b);
    int left = 0, stuck = 0;
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it)))
        for (int32_t p = 0; p < tp->partition_count && !mk_cluster_topic_internal(tp->name); p++) {
            mk_partition_t *part = &tp->partitions[p];
            if (!has_replica(part, d->broker))
                continue;
            left++;
            if (mk_repl_reassigning(repl, part) || *inflight >= DRAIN_INFLIGHT)
                continue;
            int32_t to = drain_target(a, part, db, k);
            if (to < 0) {
                stuck++;
                continue;
            }
            int32_t target[MK_CLUSTER_MAX_BROKERS];
            int32_t n = 0;
            for (int32_t r = 0; r < part->replica_count; r++)
                target[n++] = part->replicas[r].broker == d->broker ? to : part->replicas[r].broker;
            if (mk_repl_reassign(repl, part, target, n) == 0) {
                (*inflight)++;
                k->replicas[to - 1]++;
            }
        }
    d->left = left;
    d->stuck = stuck;
}

static void drains_tick(mk_admin_t *a)
{
    if (a->bal.ndrains == 0)
        return;
    counts_t k;
    counts_take(a, &k);
    int inflight = 0;
    for (int i = 0; i < a->bal.ndrains; i++) {
        mk_admin_drain_t *d = &a->bal.drains[i];
        mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, d->broker);
        if (!b || b->retired) {  /* removed another way (Kafka's UnregisterBroker) */
            a->bal.brokers_removed++;
            drain_forget(a, d->broker);
            i--;
            continue;
        }
        drain_advance(a, d, &k, &inflight);
        if (d->left == 0 && !d->done) {
            d->done = true;
            d->done_ms = mk_now_ms();
            a->bal.drains_done++;
            mk_admin_event(a, "broker_drained", d->broker, "broker %d drained: %d replicas moved off in %.1f s",
                           (int)d->broker, d->replicas, (double)(d->done_ms - d->started_ms) / 1000.0);
        } else if (d->left > 0 && d->done) {
            d->done = false; /* a replica came back (a topic created meanwhile): go on */
            d->done_ms = 0;
        }
    }
}

static int drain_start(mk_admin_t *a, int32_t id, bool resumed)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (b->retired)
        return MK_ERR_STATE;
    if (drain_find(a, id))
        return MK_ERR_EXISTS;
    if (a->bal.ndrains == MK_ADMIN_MAX_DRAINS)
        return MK_ERR_RANGE;
    mk_admin_drain_t *d = &a->bal.drains[a->bal.ndrains++];
    memset(d, 0, sizeof(*d));
    d->broker = id;
    d->started_ms = mk_now_ms();
    d->replicas = d->left = (int)mk_repl_broker_replicas(mk_broker_repl(a->b), id, NULL);
    if (!resumed) {
        drain_persist(a, id, true);
        mk_admin_event(a, "broker_drain", id, "broker %d drains: %d replicas to move to other brokers of cell %d",
                       (int)id, d->replicas, (int)b->cell);
    }
    if (!resumed)
        drains_tick(a);
    return 0;
}

int mk_admin_broker_drain(mk_admin_t *a, int32_t id) { return drain_start(a, id, false); }

static void drain_forget(mk_admin_t *a, int32_t id)
{
    int keep = 0;
    for (int i = 0; i < a->bal.ndrains; i++)
        if (a->bal.drains[i].broker != id)
            a->bal.drains[keep++] = a->bal.drains[i];
    a->bal.ndrains = keep;
    drain_persist(a, id, false);
}

int mk_admin_broker_drain_cancel(mk_admin_t *a, int32_t id)
{
    if (!drain_find(a, id))
        return MK_ERR_NOT_FOUND;
    drain_forget(a, id);
    mk_admin_event(a, "broker_drain", id, "broker %d: drain cancelled", (int)id);
    return 0;
}

int mk_admin_broker_remove(mk_admin_t *a, int32_t id, int64_t *replicas_out)
{
    int rc = mk_repl_broker_remove(mk_broker_repl(a->b), id, replicas_out);
    if (rc < 0)
        return rc;
    if (drain_find(a, id))
        drain_forget(a, id);
    a->bal.brokers_removed++;
    return 0;
}

/* ====================================================== partition balancer */

/* Within one cell: replicas, then preferred leaders, then leaders, evened
 * over the brokers that take replicas.  A move is made only when it takes
 * the most loaded broker down and the least loaded up and they differ by
 * two or more, so a partition never moves back and forth; replicas keep
 * one per AZ (a move stays in the AZ, or goes to an AZ the partition has
 * no replica in).  At most minikora.balancer.partitions.max.moves
 * reassignments in flight in the cluster. */
int mk_admin_cell_rebalance(mk_admin_t *a, int32_t cell, const char *why, int *skew_out)
{
    if (cell < 0 || cell >= mk_cluster_cell_count(a->c))
        return MK_ERR_INVALID;
    mk_repl_t *repl = mk_broker_repl(a->b);
    counts_t k;
    counts_take(a, &k);
    int32_t el[MK_CLUSTER_MAX_BROKERS];
    int nel = 0;
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (b->cell == cell && broker_takes(a, b))
            el[nel++] = b->id;
    }
    int lo = 0, hi = 0;
    for (int i = 0; i < nel; i++) {
        if (i == 0 || k.replicas[el[i] - 1] < lo)
            lo = k.replicas[el[i] - 1];
        if (i == 0 || k.replicas[el[i] - 1] > hi)
            hi = k.replicas[el[i] - 1];
    }
    if (skew_out)
        *skew_out = hi - lo;
    if (nel < 2)
        return 0;
    int max_moves = (int)mk_cluster_config_get_i64(mk_cluster_config(a->c), "minikora.balancer.partitions.max.moves");
    int budget = max_moves - (int)mk_repl_reassignments(repl, NULL);
    int replica_moves = 0, leader_moves = 0;

    /* Replicas: from the broker with the most to the one with the fewest
     * that can take one of its partitions. */
    while (replica_moves < budget) {
        int32_t h = el[0];
        for (int i = 1; i < nel; i++)
            if (k.replicas[el[i] - 1] > k.replicas[h - 1])
                h = el[i];
        mk_cluster_broker_t *hb = mk_cluster_broker_find(a->c, h);
        mk_partition_t *pick = NULL;
        int32_t to = -1;
        /* First look for a partition whose move also evens preferred
         * leaders (h's first replica when h prefers more than the target
         * would, else one h only follows), then for any. */
        for (int pass = 0; pass < 2 && !pick; pass++) {
            size_t it = 0;
            mk_topic_t *tp;
            while (!pick && (tp = mk_cluster_topic_next(a->c, &it)))
                for (int32_t p = 0; p < tp->partition_count && !pick; p++) {
                    mk_partition_t *part = &tp->partitions[p];
                    if (!has_replica(part, h) || part->leader < 0 || mk_repl_reassigning(repl, part))
                        continue;
                    to = -1;
                    for (int i = 0; i < nel; i++) {
                        mk_cluster_broker_t *lb = mk_cluster_broker_find(a->c, el[i]);
                        if (k.replicas[h - 1] - k.replicas[el[i] - 1] < 2 || has_replica(part, el[i]))
                            continue;
                        if (strcmp(lb->az, hb->az) != 0 && az_used(a, part, lb->az, h))
                            continue;
                        if (to < 0 || k.replicas[el[i] - 1] < k.replicas[to - 1])
                            to = el[i];
                    }
                    if (to < 0)
                        continue;
                    bool first = part->replicas[0].broker == h;
                    bool want_first = k.preferred[h - 1] - k.preferred[to - 1] >= 2;
                    bool want_follow = k.preferred[to - 1] - k.preferred[h - 1] >= 0;
                    if (pass == 1 || (first && want_first) || (!first && want_follow))
                        pick = part;
                }
        }
        if (!pick)
            break;
        int32_t target[MK_CLUSTER_MAX_BROKERS];
        int32_t n = 0;
        for (int32_t r = 0; r < pick->replica_count; r++)
            target[n++] = pick->replicas[r].broker == h ? to : pick->replicas[r].broker;
        if (mk_repl_reassign(repl, pick, target, n) < 0)
            break;
        mk_info("balance: cell %d: partition %s-%d's replica moves from broker %d to %d", (int)cell,
                pick->topic->name, pick->index, (int)h, (int)to);
        k.replicas[h - 1]--;
        k.replicas[to - 1]++;
        if (target[0] == to) {
            k.preferred[h - 1]--;
            k.preferred[to - 1]++;
        }
        replica_moves++;
    }

    /* Preferred leaders: the first replica of a partition on the broker
     * with the most becomes one on the broker with the fewest that is an
     * in-sync replica of it (a reassignment that only reorders). */
    while (replica_moves + leader_moves < budget) {
        int32_t h = el[0], l = el[0];
        for (int i = 1; i < nel; i++) {
            if (k.preferred[el[i] - 1] > k.preferred[h - 1])
                h = el[i];
            if (k.preferred[el[i] - 1] < k.preferred[l - 1])
                l = el[i];
        }
        if (k.preferred[h - 1] - k.preferred[l - 1] < 2)
            break;
        mk_partition_t *pick = NULL;
        int32_t to = -1;
        size_t it = 0;
        mk_topic_t *tp;
        while (!pick && (tp = mk_cluster_topic_next(a->c, &it)))
            for (int32_t p = 0; p < tp->partition_count && !pick; p++) {
                mk_partition_t *part = &tp->partitions[p];
                if (part->replica_count < 2 || part->replicas[0].broker != h || mk_repl_reassigning(repl, part))
                    continue;
                for (int32_t r = 1; r < part->replica_count; r++) {
                    int32_t b = part->replicas[r].broker;
                    mk_cluster_broker_t *bb = mk_cluster_broker_find(a->c, b);
                    if (!part->replicas[r].in_isr || !bb || bb->cell != cell || !broker_takes(a, bb) ||
                        k.preferred[h - 1] - k.preferred[b - 1] < 2)
                        continue;
                    if (to < 0 || k.preferred[b - 1] < k.preferred[to - 1])
                        to = b;
                }
                if (to > 0)
                    pick = part;
            }
        if (!pick)
            break;
        int32_t target[MK_CLUSTER_MAX_BROKERS];
        int32_t n = 0;
        target[n++] = to;
        for (int32_t r = 0; r < pick->replica_count; r++)
            if (pick->replicas[r].broker != to)
                target[n++] = pick->replicas[r].broker;
        if (mk_repl_reassign(repl, pick, target, n) < 0)
            break;
        k.preferred[h - 1]--;
        k.preferred[to - 1]++;
        leader_moves++;
    }

    /* Leaders: every partition of the cell led by another than its
     * preferred replica, when that one is in sync, gets it back (Kafka's
     * preferred leader election: a last synchronous round first). */
    size_t it = 0;
    mk_topic_t *tp;
    while ((tp = mk_cluster_topic_next(a->c, &it)))
        for (int32_t p = 0; p < tp->partition_count && leader_moves < 64; p++) {
            mk_partition_t *part = &tp->partitions[p];
            if (part->replica_count < 1 || part->leader < 0 || part->leader == part->replicas[0].broker ||
                !part->replicas[0].in_isr || mk_repl_reassigning(repl, part))
                continue;
            mk_cluster_broker_t *pb = mk_cluster_broker_find(a->c, part->replicas[0].broker);
            if (!pb || pb->cell != cell || !broker_takes(a, pb))
                continue;
            if (mk_repl_elect(repl, part, false) == 0)
                leader_moves++;
        }

    a->bal.part_replica_moves += (uint64_t)replica_moves;
    a->bal.part_leader_moves += (uint64_t)leader_moves;
    if (replica_moves + leader_moves > 0) {
        a->bal.part_runs++;
        mk_admin_event(a, "cell_rebalance", -1,
                       "cell %d: %d replica moves, %d leader moves (replicas per broker %d..%d) (%s)", (int)cell,
                       replica_moves, leader_moves, lo, hi, why);
    }
    return replica_moves + leader_moves;
}

static void partitions_tick(mk_admin_t *a, uint64_t now_ms)
{
    const mk_config_t *cfg = mk_cluster_config(a->c);
    if (!mk_cluster_config_get_bool(cfg, "minikora.balancer.partitions.enable") || a->bal.nmoves > 0)
        return;
    uint64_t every = (uint64_t)mk_cluster_config_get_i64(cfg, "minikora.balancer.partitions.interval.ms");
    if (now_ms - a->bal.part_last_ms < every)
        return;
    a->bal.part_last_ms = now_ms;
    for (int32_t c = 0; c < mk_cluster_cell_count(a->c); c++)
        mk_admin_cell_rebalance(a, c, "partition balancer", NULL);
}

void mk_admin_balance_tick(mk_admin_t *a, uint64_t now_ms)
{
    moves_tick(a);
    drains_tick(a);
    partitions_tick(a, now_ms);
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

static int load_drain_cb(const char *key, const char *value, void *arg)
{
    (void)value;
    mk_admin_t *a = arg;
    int32_t id = (int32_t)atoi(key + strlen("drain/"));
    if (drain_start(a, id, true) == 0)
        mk_info("balance: the drain of broker %d goes on", (int)id);
    return 0;
}

int mk_admin_balance_init(mk_admin_t *a)
{
    memset(&a->bal, 0, sizeof(a->bal));
    a->bal.last_run_ms = mk_mono_ms();
    a->bal.part_last_ms = a->bal.last_run_ms;
    mk_cluster_set_cell_load_fn(a->c, load_fn, a);
    int rc = mk_meta_kv_foreach(mk_cluster_meta(a->c), "move/", load_move_cb, a);
    if (rc == 0)
        rc = mk_meta_kv_foreach(mk_cluster_meta(a->c), "drain/", load_drain_cb, a);
    return rc;
}

void mk_admin_balance_free(mk_admin_t *a)
{
    if (a->c)
        mk_cluster_set_cell_load_fn(a->c, NULL, NULL);
}
