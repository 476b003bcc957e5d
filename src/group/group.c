/*
 * group.c -- the classic group coordinator: membership state machine,
 * rebalances, and committed offsets (in memory, persisted through meta/).
 *
 * States (Kafka's): Empty -> PreparingRebalance -> CompletingRebalance ->
 * Stable, and back to PreparingRebalance on any membership change.  A group
 * that is deleted is Dead and leaves the map.
 *
 *   PreparingRebalance  waits until every member has sent JoinGroup (or the
 *                       rebalance timeout passes: stragglers are removed);
 *                       then generation++, a protocol every member supports
 *                       is chosen, and every JoinGroup is answered (the
 *                       leader gets the member list).
 *   CompletingRebalance waits for the leader's SyncGroup, then answers every
 *                       SyncGroup with its member's assignment.  Members that
 *                       never sync within the rebalance timeout are removed.
 *   Stable              heartbeats keep members; a session timeout removes one.
 *
 * group.initial.rebalance.delay.ms defaults to 0 here (Kafka: 3 s), so a
 * fixture's first consumer is served at once.
 *
 * Re-entrancy: answering a request lets its connection dispatch the next
 * frame synchronously, which may re-enter this module (a LeaveGroup, say).
 * So every state change completes first, the answers are deep-copied into a
 * batch arena, and only then are the callbacks run (mk_group_batch_run()).
 *
 * Timers: one 100 ms tick per coordinator handles session, rebalance and
 * sync timeouts and offset retention.
 */
#include "group/group_int.h"
#include "meta/meta.h"
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *state_names[] = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"};

/* ========================================================== deferred answers */

void mk_group_batch_init(batch_t *b)
{
    mk_arena_init(&b->arena);
    b->head = b->tail = NULL;
}

const char *mk_group_batch_dup(batch_t *b, const char *s) { return s ? mk_arena_strndup(&b->arena, s, strlen(s)) : NULL; }

const uint8_t *mk_group_batch_dupb(batch_t *b, const uint8_t *p, int32_t n)
{
    if (!p || n <= 0)
        return (const uint8_t *)"";
    uint8_t *d = mk_arena_alloc(&b->arena, (size_t)n);
    if (d)
        memcpy(d, p, (size_t)n);
    return d;
}

answer_t *mk_group_batch_add(batch_t *b)
{
    answer_t *a = mk_arena_alloc(&b->arena, sizeof(*a));
    if (!a)
        return NULL;
    if (b->tail)
        b->tail->next = a;
    else
        b->head = a;
    b->tail = a;
    return a;
}

void mk_group_batch_run(batch_t *b)
{
    for (answer_t *a = b->head; a; a = a->next) {
        if (a->is_join)
            a->join_cb(&a->join, a->arg);
        else
            a->sync_cb(&a->sync, a->arg);
    }
    mk_arena_free(&b->arena);
}

void mk_group_answer_join_error(batch_t *b, mk_group_join_cb cb, void *arg, int16_t err, const char *member_id)
{
    answer_t *a = mk_group_batch_add(b);
    if (!a) {
        mk_group_join_result_t r = {.error = err, .generation = -1, .member_id = member_id ? member_id : ""};
        cb(&r, arg); /* out of memory: answer now rather than never */
        return;
    }
    a->is_join = true;
    a->join_cb = cb;
    a->arg = arg;
    a->join.error = err;
    a->join.generation = -1;
    a->join.member_id = mk_group_batch_dup(b, member_id ? member_id : "");
    a->join.leader = "";
}

static void answer_sync(batch_t *b, mk_group_sync_cb cb, void *arg, int16_t err, const group_t *g,
                        const member_t *m)
{
    answer_t *a = mk_group_batch_add(b);
    mk_group_sync_result_t r = {0};
    r.error = err;
    if (!err && g) {
        r.protocol_type = g->protocol_type;
        r.protocol_name = g->protocol_name;
        r.assignment = m ? m->assignment : NULL;
        r.assignment_len = m ? m->assignment_len : 0;
    }
    if (!a) {
        cb(&r, arg);
        return;
    }
    a->is_join = false;
    a->sync_cb = cb;
    a->arg = arg;
    a->sync = r;
    a->sync.protocol_type = mk_group_batch_dup(b, r.protocol_type);
    a->sync.protocol_name = mk_group_batch_dup(b, r.protocol_name);
    a->sync.assignment = mk_group_batch_dupb(b, r.assignment, r.assignment_len);
}

/* ==================================================================== utils */

static int32_t java_hash(const char *s)
{
    uint32_t h = 0;
    /* Java's String.hashCode over UTF-16 units; ASCII ids give the same value. */
    for (; *s; s++)
        h = 31 * h + (uint8_t)*s;
    return (int32_t)h;
}

int32_t mk_group_coordinator(const mk_group_coord_t *gc, const char *group_id)
{
    int32_t h = java_hash(group_id);
    int32_t part = (h == INT32_MIN ? 0 : (h < 0 ? -h : h)) % OFFSETS_PARTITIONS;
    int n = mk_cluster_broker_count(gc->c), running = 0;
    for (int i = 0; i < n; i++)
        running += mk_cluster_broker_at(gc->c, i)->running;
    if (!running)
        return -1;
    int want = part % running;
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(gc->c, i);
        if (b->running && want-- == 0)
            return b->id;
    }
    return -1;
}

static char *new_member_id(const char *client_id)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (uint8_t)rand();
    char buf[512];
    snprintf(buf, sizeof(buf),
             "%.200s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             client_id && *client_id ? client_id : "member", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
             r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
    return mk_strdup(buf);
}

static bool str_eq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* A request's instance id matches the member's (Kafka checks only when the
 * request carries one). */
static bool instance_ok(const member_t *m, const char *instance_id)
{
    return !instance_id || str_eq_null(m->instance_id, instance_id);
}

static void offset_key(char *buf, size_t n, const char *topic, int32_t partition)
{
    snprintf(buf, n, "%s\x1f%d", topic, partition);
}

/* ================================================================== members */

static void member_free_protocols(member_t *m)
{
    for (int32_t i = 0; i < m->nprotocols; i++) {
        mk_free(m->proto_names[i]);
        mk_free(m->proto_meta[i]);
    }
    mk_free(m->proto_names);
    mk_free(m->proto_meta);
    mk_free(m->proto_meta_len);
    m->proto_names = NULL;
    m->proto_meta = NULL;
    m->proto_meta_len = NULL;
    m->nprotocols = 0;
}

static void member_free(member_t *m)
{
    member_free_protocols(m);
    mk_free(m->member_id);
    mk_free(m->instance_id);
    mk_free(m->client_id);
    mk_free(m->client_host);
    mk_free(m->protocol_type);
    mk_free(m->assignment);
    mk_free(m);
}

static int member_set_protocols(member_t *m, const mk_group_join_t *j)
{
    member_free_protocols(m);
    int32_t n = j->protocol_count;
    m->proto_names = mk_calloc((size_t)(n ? n : 1), sizeof(char *));
    m->proto_meta = mk_calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    m->proto_meta_len = mk_calloc((size_t)(n ? n : 1), sizeof(int32_t));
    if (!m->proto_names || !m->proto_meta || !m->proto_meta_len)
        return MK_ERR_NOMEM;
    m->nprotocols = n;
    for (int32_t i = 0; i < n; i++) {
        m->proto_names[i] = mk_strdup(j->protocols[i].name ? j->protocols[i].name : "");
        int32_t len = j->protocols[i].metadata_len > 0 ? j->protocols[i].metadata_len : 0;
        m->proto_meta[i] = mk_malloc((size_t)len + 1);
        if (!m->proto_names[i] || !m->proto_meta[i])
            return MK_ERR_NOMEM;
        if (len)
            memcpy(m->proto_meta[i], j->protocols[i].metadata, (size_t)len);
        m->proto_meta_len[i] = len;
    }
    mk_free(m->protocol_type);
    m->protocol_type = mk_strdup(j->protocol_type ? j->protocol_type : "");
    m->session_timeout_ms = j->session_timeout_ms;
    m->rebalance_timeout_ms = j->rebalance_timeout_ms > 0 ? j->rebalance_timeout_ms : j->session_timeout_ms;
    return m->protocol_type ? 0 : MK_ERR_NOMEM;
}

static bool protocols_same(const member_t *m, const mk_group_join_t *j)
{
    if (m->nprotocols != j->protocol_count)
        return false;
    for (int32_t i = 0; i < m->nprotocols; i++) {
        int32_t len = j->protocols[i].metadata_len > 0 ? j->protocols[i].metadata_len : 0;
        if (strcmp(m->proto_names[i], j->protocols[i].name ? j->protocols[i].name : "") != 0 ||
            m->proto_meta_len[i] != len || (len && memcmp(m->proto_meta[i], j->protocols[i].metadata, (size_t)len)))
            return false;
    }
    return true;
}

static int member_protocol_index(const member_t *m, const char *name)
{
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (strcmp(m->proto_names[i], name) == 0)
            return i;
    return -1;
}

static member_t *grp_member(group_t *g, const char *member_id)
{
    for (member_t *m = g->members; m; m = m->next)
        if (strcmp(m->member_id, member_id) == 0)
            return m;
    return NULL;
}

static member_t *grp_member_by_instance(group_t *g, const char *instance_id)
{
    if (!instance_id)
        return NULL;
    for (member_t *m = g->members; m; m = m->next)
        if (m->instance_id && strcmp(m->instance_id, instance_id) == 0)
            return m;
    return NULL;
}

/* Remove m from g, answering its pending requests with err. */
static void group_remove_member(group_t *g, member_t *m, int16_t err, batch_t *b)
{
    member_t **pp = &g->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = m->next;
    g->nmembers--;
    if (m->join_cb)
        mk_group_answer_join_error(b, m->join_cb, m->join_arg, err, m->member_id);
    if (m->sync_cb)
        answer_sync(b, m->sync_cb, m->sync_arg, err, NULL, NULL);
    if (g->leader && strcmp(g->leader, m->member_id) == 0) {
        mk_free(g->leader);
        g->leader = NULL;
    }
    member_free(m);
}

/* ==================================================================== groups */

group_t *mk_group_get(mk_group_coord_t *gc, const char *id, bool create)
{
    group_t *g = mk_map_get(&gc->groups, id);
    if (g || !create)
        return g;
    g = mk_calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->id = mk_strdup(id);
    mk_map_init(&g->offsets);
    if (!g->id || mk_map_put(&gc->groups, id, g) < 0) {
        mk_free(g->id);
        mk_free(g);
        return NULL;
    }
    return g;
}

static void group_free(group_t *g)
{
    while (g->members) {
        member_t *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    while (g->pending) {
        pending_id_t *p = g->pending;
        g->pending = p->next;
        mk_free(p->member_id);
        mk_free(p);
    }
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&g->offsets, &it, &k, &v)) {
        mk_free(((offset_entry_t *)v)->metadata);
        mk_free(v);
    }
    mk_map_free(&g->offsets);
    mk_group_cg_free(g->cg);
    mk_free(g->protocol_type);
    mk_free(g->protocol_name);
    mk_free(g->leader);
    mk_free(g->id);
    mk_free(g);
}

void mk_group_classic_reset(group_t *g)
{
    while (g->members) {
        member_t *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    g->nmembers = 0;
    while (g->pending) {
        pending_id_t *p = g->pending;
        g->pending = p->next;
        mk_free(p->member_id);
        mk_free(p);
    }
    mk_free(g->protocol_type);
    mk_free(g->protocol_name);
    mk_free(g->leader);
    g->protocol_type = g->protocol_name = g->leader = NULL;
    g->state = ST_EMPTY;
}

uint64_t mk_group_now_ms(void) { return mk_mono_ms(); }
static uint64_t now_ms(void) { return mk_mono_ms(); }

static int32_t max_rebalance_timeout(const group_t *g)
{
    int32_t t = 0;
    for (const member_t *m = g->members; m; m = m->next)
        t = MK_MAX(t, m->rebalance_timeout_ms);
    return t;
}

/* The protocol every member supports that most members prefer. */
static const char *select_protocol(group_t *g)
{
    member_t *first = g->members;
    const char *best = NULL;
    int best_votes = -1;
    for (int32_t i = 0; first && i < first->nprotocols; i++) {
        const char *cand = first->proto_names[i];
        bool all = true;
        for (member_t *m = g->members; m && all; m = m->next)
            all = member_protocol_index(m, cand) >= 0;
        if (!all)
            continue;
        int votes = 0;
        for (member_t *m = g->members; m; m = m->next) {
            /* A member votes for its most preferred protocol among the common ones. */
            for (int32_t k = 0; k < m->nprotocols; k++) {
                bool common = true;
                for (member_t *o = g->members; o && common; o = o->next)
                    common = member_protocol_index(o, m->proto_names[k]) >= 0;
                if (common) {
                    votes += strcmp(m->proto_names[k], cand) == 0;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void fill_join_result(batch_t *b, answer_t *a, group_t *g, member_t *m, bool skip_assignment)
{
    a->join.error = 0;
    a->join.generation = g->generation;
    a->join.protocol_type = mk_group_batch_dup(b, g->protocol_type);
    a->join.protocol_name = mk_group_batch_dup(b, g->protocol_name);
    a->join.leader = mk_group_batch_dup(b, g->leader ? g->leader : "");
    a->join.member_id = mk_group_batch_dup(b, m->member_id);
    a->join.skip_assignment = skip_assignment;
    if (!g->leader || strcmp(g->leader, m->member_id) != 0)
        return;
    mk_group_member_info_t *mi = mk_arena_alloc(&b->arena, sizeof(*mi) * (size_t)(g->nmembers + 1));
    if (!mi)
        return;
    int k = 0;
    for (member_t *o = g->members; o; o = o->next) {
        int pi = g->protocol_name ? member_protocol_index(o, g->protocol_name) : -1;
        mi[k].member_id = mk_group_batch_dup(b, o->member_id);
        mi[k].group_instance_id = mk_group_batch_dup(b, o->instance_id);
        mi[k].metadata = pi >= 0 ? mk_group_batch_dupb(b, o->proto_meta[pi], o->proto_meta_len[pi]) : (const uint8_t *)"";
        mi[k].metadata_len = pi >= 0 ? o->proto_meta_len[pi] : 0;
        k++;
    }
    a->join.members = mi;
    a->join.member_count = k;
}

static void answer_join_now(batch_t *b, group_t *g, member_t *m, mk_group_join_cb cb, void *arg, bool skip)
{
    answer_t *a = mk_group_batch_add(b);
    if (!a) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, m->member_id);
        return;
    }
    a->is_join = true;
    a->join_cb = cb;
    a->arg = arg;
    fill_join_result(b, a, g, m, skip);
}

static void complete_join(mk_group_coord_t *gc, group_t *g, batch_t *b)
{
    /* Members that did not rejoin in time are out. */
    for (member_t *m = g->members, *next; m; m = next) {
        next = m->next;
        if (!m->join_cb)
            group_remove_member(g, m, MK_KERR_UNKNOWN_MEMBER_ID, b);
    }
    g->generation++;
    mk_free(g->protocol_name);
    g->protocol_name = NULL;
    if (g->nmembers == 0) {
        g->state = ST_EMPTY;
        mk_info("group %s: generation %d, empty", g->id, g->generation);
        return;
    }
    const char *proto = select_protocol(g);
    g->protocol_name = mk_strdup(proto ? proto : "");
    mk_free(g->protocol_type);
    g->protocol_type = mk_strdup(g->members->protocol_type);
    if (!g->leader || !grp_member(g, g->leader)) {
        mk_free(g->leader);
        g->leader = mk_strdup(g->members->member_id);
    }
    g->state = ST_COMPLETING;
    g->deadline_ms = now_ms() + (uint64_t)max_rebalance_timeout(g);
    for (member_t *m = g->members; m; m = m->next) {
        mk_free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
    }
    for (member_t *m = g->members; m; m = m->next) {
        mk_group_join_cb cb = m->join_cb;
        void *arg = m->join_arg;
        m->join_cb = NULL;
        m->last_seen_ms = now_ms();
        m->awaiting_sync = true;
        answer_join_now(b, g, m, cb, arg, false);
    }
    mk_info("group %s: generation %d with %d members, protocol %s, leader %s", g->id, g->generation, g->nmembers,
            g->protocol_name, g->leader);
    (void)gc;
}

static void try_complete_join(mk_group_coord_t *gc, group_t *g, batch_t *b)
{
    if (g->state != ST_PREPARING)
        return;
    for (member_t *m = g->members; m; m = m->next)
        if (!m->join_cb)
            return;
    if (g->pending && now_ms() < g->deadline_ms)
        return; /* members told MEMBER_ID_REQUIRED may still come */
    if (now_ms() < g->delay_until_ms)
        return; /* group.initial.rebalance.delay.ms */
    complete_join(gc, g, b);
}

static void prepare_rebalance(mk_group_coord_t *gc, group_t *g, batch_t *b)
{
    bool was_empty = g->state == ST_EMPTY;
    if (g->state == ST_COMPLETING)
        for (member_t *m = g->members; m; m = m->next)
            if (m->sync_cb) {
                answer_sync(b, m->sync_cb, m->sync_arg, MK_KERR_REBALANCE_IN_PROGRESS, NULL, NULL);
                m->sync_cb = NULL;
            }
    g->state = ST_PREPARING;
    g->deadline_ms = now_ms() + (uint64_t)max_rebalance_timeout(g) +
                     (was_empty ? (uint64_t)gc->cfg.initial_rebalance_delay_ms : 0);
    g->delay_until_ms = was_empty ? now_ms() + (uint64_t)gc->cfg.initial_rebalance_delay_ms : 0;
    try_complete_join(gc, g, b);
}

/* ===================================================================== join */

static int16_t check_protocols(group_t *g, const mk_group_join_t *j)
{
    if (!j->protocol_type || !*j->protocol_type || j->protocol_count <= 0)
        return MK_KERR_INCONSISTENT_GROUP_PROTOCOL;
    if (g->nmembers == 0)
        return 0;
    if (g->protocol_type && *g->protocol_type && strcmp(g->protocol_type, j->protocol_type) != 0)
        return MK_KERR_INCONSISTENT_GROUP_PROTOCOL;
    /* At least one of the new member's protocols must be supported by all. */
    for (int32_t i = 0; i < j->protocol_count; i++) {
        bool all = true;
        for (member_t *m = g->members; m && all; m = m->next)
            all = member_protocol_index(m, j->protocols[i].name ? j->protocols[i].name : "") >= 0;
        if (all)
            return 0;
    }
    return MK_KERR_INCONSISTENT_GROUP_PROTOCOL;
}

static member_t *member_add(group_t *g, char *member_id_owned, const mk_group_join_t *j)
{
    member_t *m = mk_calloc(1, sizeof(*m));
    if (!m) {
        mk_free(member_id_owned);
        return NULL;
    }
    m->member_id = member_id_owned;
    m->instance_id = j->group_instance_id ? mk_strdup(j->group_instance_id) : NULL;
    m->client_id = mk_strdup(j->client_id ? j->client_id : "");
    m->client_host = mk_strdup(j->client_host ? j->client_host : "");
    if (!m->member_id || !m->client_id || !m->client_host || member_set_protocols(m, j) < 0) {
        member_free(m);
        return NULL;
    }
    m->last_seen_ms = now_ms();
    /* Kafka keeps members in join order; the first is the default leader. */
    member_t **pp = &g->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    g->nmembers++;
    return m;
}

static bool take_pending_id(group_t *g, const char *member_id)
{
    for (pending_id_t **pp = &g->pending; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->member_id, member_id) == 0) {
            pending_id_t *p = *pp;
            *pp = p->next;
            mk_free(p->member_id);
            mk_free(p);
            return true;
        }
    }
    return false;
}

static void join_locked(mk_group_coord_t *gc, const mk_group_join_t *j, mk_group_join_cb cb, void *arg, batch_t *b)
{
    const mk_group_config_t *cfg = &gc->cfg;
    const char *mid = j->member_id ? j->member_id : "";
    if (!j->group_id || !*j->group_id) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_INVALID_GROUP_ID, mid);
        return;
    }
    if (j->session_timeout_ms < cfg->min_session_timeout_ms || j->session_timeout_ms > cfg->max_session_timeout_ms) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_INVALID_SESSION_TIMEOUT, mid);
        return;
    }
    group_t *g = mk_group_get(gc, j->group_id, false);
    if (!g && *mid) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_MEMBER_ID, mid);
        return;
    }
    if (!j->protocol_type || !*j->protocol_type || j->protocol_count <= 0) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
        return;
    }
    if (!g)
        g = mk_group_get(gc, j->group_id, true);
    if (!g) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
        return;
    }
    if (g->type == MK_GROUP_CONSUMER) {
        if (mk_group_cg_member_count(g) > 0) {
            /* A classic member joins a non-empty consumer group (Kafka 4.0). */
            mk_group_cg_classic_join(gc, g, j, cb, arg, b);
            return;
        }
        /* An empty consumer group becomes a classic group. */
        mk_info("group %s: empty consumer group converted to a classic group", g->id);
        mk_group_cg_free(g->cg);
        g->cg = NULL;
        g->type = MK_GROUP_CLASSIC;
        mk_group_classic_reset(g);
    }
    int16_t perr = check_protocols(g, j);
    if (perr) {
        mk_group_answer_join_error(b, cb, arg, perr, mid);
        return;
    }

    member_t *m = NULL;
    if (!*mid) {
        member_t *old = grp_member_by_instance(g, j->group_instance_id);
        if (old) {
            /* A static member comes back: it takes a new member id and the
             * old one is fenced.  With nothing changed in a stable group it
             * gets its assignment back without a rebalance. */
            char *nid = new_member_id(j->client_id);
            if (!nid) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
                return;
            }
            if (old->join_cb) {
                mk_group_answer_join_error(b, old->join_cb, old->join_arg, MK_KERR_FENCED_INSTANCE_ID, old->member_id);
                old->join_cb = NULL;
            }
            if (old->sync_cb) {
                answer_sync(b, old->sync_cb, old->sync_arg, MK_KERR_FENCED_INSTANCE_ID, NULL, NULL);
                old->sync_cb = NULL;
            }
            bool was_leader = g->leader && strcmp(g->leader, old->member_id) == 0;
            mk_free(old->member_id);
            old->member_id = nid;
            if (was_leader) {
                mk_free(g->leader);
                g->leader = mk_strdup(nid);
            }
            old->last_seen_ms = now_ms();
            bool same = protocols_same(old, j);
            if (g->state == ST_STABLE && same) {
                mk_info("group %s: static member %s rejoined as %s without a rebalance", g->id,
                        j->group_instance_id, nid);
                answer_join_now(b, g, old, cb, arg, was_leader);
                return;
            }
            if (member_set_protocols(old, j) < 0) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
                return;
            }
            m = old;
        } else if (j->require_known_member_id && !j->group_instance_id) {
            pending_id_t *p = mk_calloc(1, sizeof(*p));
            char *nid = new_member_id(j->client_id);
            if (!p || !nid) {
                mk_free(p);
                mk_free(nid);
                mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
                return;
            }
            p->member_id = nid;
            p->deadline_ms = now_ms() + (uint64_t)j->session_timeout_ms;
            p->next = g->pending;
            g->pending = p;
            mk_group_answer_join_error(b, cb, arg, MK_KERR_MEMBER_ID_REQUIRED, nid);
            return;
        } else {
            if (cfg->max_size > 0 && g->nmembers >= cfg->max_size) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_GROUP_MAX_SIZE_REACHED, mid);
                return;
            }
            m = member_add(g, new_member_id(j->client_id), j);
        }
    } else {
        m = grp_member(g, mid);
        if (!m) {
            if (grp_member_by_instance(g, j->group_instance_id)) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_FENCED_INSTANCE_ID, mid);
                return;
            }
            if (!take_pending_id(g, mid)) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_MEMBER_ID, mid);
                return;
            }
            if (cfg->max_size > 0 && g->nmembers >= cfg->max_size) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_GROUP_MAX_SIZE_REACHED, mid);
                return;
            }
            char *id = mk_strdup(mid);
            m = member_add(g, id, j);
        } else {
            if (!instance_ok(m, j->group_instance_id)) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_FENCED_INSTANCE_ID, mid);
                return;
            }
            bool same = protocols_same(m, j);
            bool is_leader = g->leader && strcmp(g->leader, m->member_id) == 0;
            m->last_seen_ms = now_ms();
            if (same && (g->state == ST_COMPLETING || (g->state == ST_STABLE && !is_leader))) {
                /* Nothing changed: tell it the current generation again. */
                answer_join_now(b, g, m, cb, arg, false);
                return;
            }
            if (!same && member_set_protocols(m, j) < 0) {
                mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
                return;
            }
        }
    }
    if (!m) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
        return;
    }
    if (m->join_cb) /* a second JoinGroup replaces the first */
        mk_group_answer_join_error(b, m->join_cb, m->join_arg, MK_KERR_REBALANCE_IN_PROGRESS, m->member_id);
    m->join_cb = cb;
    m->join_arg = arg;
    if (g->state == ST_PREPARING)
        try_complete_join(gc, g, b);
    else
        prepare_rebalance(gc, g, b);
}

void mk_group_classic_adopt(group_t *g, const mk_group_join_t *j)
{
    member_t *m = member_add(g, mk_strdup(j->member_id), j);
    if (!m)
        mk_error("group %s: member %s lost in the conversion (no memory)", g->id, j->member_id);
}

void mk_group_classic_start_rebalance(mk_group_coord_t *gc, group_t *g, int32_t generation, batch_t *b)
{
    g->generation = generation;
    mk_free(g->protocol_type);
    g->protocol_type = mk_strdup("consumer");
    g->state = g->nmembers ? ST_STABLE : ST_EMPTY;
    if (g->nmembers)
        prepare_rebalance(gc, g, b);
}

int mk_group_join(mk_group_coord_t *gc, const mk_group_join_t *j, mk_group_join_cb cb, void *arg)
{
    batch_t b;
    mk_group_batch_init(&b);
    join_locked(gc, j, cb, arg, &b);
    mk_group_batch_run(&b);
    return 0;
}

/* ===================================================================== sync */

int mk_group_sync(mk_group_coord_t *gc, const mk_group_sync_t *s, mk_group_sync_cb cb, void *arg)
{
    batch_t b;
    mk_group_batch_init(&b);
    group_t *g = mk_group_get(gc, s->group_id, false);
    if (g && g->type == MK_GROUP_CONSUMER) {
        mk_group_cg_classic_sync(gc, g, s, cb, arg, &b);
        mk_group_batch_run(&b);
        return 0;
    }
    member_t *m = g ? grp_member(g, s->member_id) : NULL;
    if (m)
        m->awaiting_sync = false;
    if (g && !m && grp_member_by_instance(g, s->group_instance_id)) {
        answer_sync(&b, cb, arg, MK_KERR_FENCED_INSTANCE_ID, NULL, NULL);
    } else if (!g || !m) {
        answer_sync(&b, cb, arg, MK_KERR_UNKNOWN_MEMBER_ID, NULL, NULL);
    } else if (!instance_ok(m, s->group_instance_id)) {
        answer_sync(&b, cb, arg, MK_KERR_FENCED_INSTANCE_ID, NULL, NULL);
    } else if (s->generation != g->generation) {
        answer_sync(&b, cb, arg, MK_KERR_ILLEGAL_GENERATION, NULL, NULL);
    } else if ((s->protocol_type && g->protocol_type && strcmp(s->protocol_type, g->protocol_type) != 0) ||
               (s->protocol_name && g->protocol_name && strcmp(s->protocol_name, g->protocol_name) != 0)) {
        answer_sync(&b, cb, arg, MK_KERR_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL);
    } else if (g->state == ST_PREPARING) {
        answer_sync(&b, cb, arg, MK_KERR_REBALANCE_IN_PROGRESS, NULL, NULL);
    } else if (g->state == ST_STABLE) {
        m->last_seen_ms = now_ms();
        answer_sync(&b, cb, arg, 0, g, m);
    } else if (g->state == ST_COMPLETING) {
        m->last_seen_ms = now_ms();
        if (m->sync_cb)
            answer_sync(&b, m->sync_cb, m->sync_arg, MK_KERR_REBALANCE_IN_PROGRESS, NULL, NULL);
        m->sync_cb = cb;
        m->sync_arg = arg;
        if (g->leader && strcmp(g->leader, m->member_id) == 0) {
            for (int32_t i = 0; i < s->assignment_count; i++) {
                member_t *t = grp_member(g, s->assignments[i].member_id);
                if (!t)
                    continue;
                mk_free(t->assignment);
                int32_t len = s->assignments[i].assignment_len > 0 ? s->assignments[i].assignment_len : 0;
                t->assignment = mk_malloc((size_t)len + 1);
                t->assignment_len = t->assignment ? len : 0;
                if (t->assignment && len)
                    memcpy(t->assignment, s->assignments[i].assignment, (size_t)len);
            }
            g->state = ST_STABLE;
            for (member_t *o = g->members; o; o = o->next) {
                if (o->sync_cb) {
                    answer_sync(&b, o->sync_cb, o->sync_arg, 0, g, o);
                    o->sync_cb = NULL;
                }
            }
            mk_info("group %s: generation %d stable", g->id, g->generation);
        }
    } else {
        answer_sync(&b, cb, arg, MK_KERR_UNKNOWN_MEMBER_ID, NULL, NULL);
    }
    mk_group_batch_run(&b);
    return 0;
}

/* ======================================================= heartbeat and leave */

int16_t mk_group_heartbeat(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                           const char *group_instance_id, int32_t generation)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (g && g->type == MK_GROUP_CONSUMER)
        return mk_group_cg_classic_heartbeat(gc, g, member_id, group_instance_id, generation);
    member_t *m = g ? grp_member(g, member_id) : NULL;
    if (g && !m && grp_member_by_instance(g, group_instance_id))
        return MK_KERR_FENCED_INSTANCE_ID;
    if (!g || !m)
        return MK_KERR_UNKNOWN_MEMBER_ID;
    if (!instance_ok(m, group_instance_id))
        return MK_KERR_FENCED_INSTANCE_ID;
    if (generation != g->generation)
        return MK_KERR_ILLEGAL_GENERATION;
    m->last_seen_ms = now_ms();
    if (g->state == ST_PREPARING)
        return MK_KERR_REBALANCE_IN_PROGRESS;
    return 0;
}

int16_t mk_group_leave(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                       const char *group_instance_id)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g)
        return MK_KERR_UNKNOWN_MEMBER_ID;
    if (g->type == MK_GROUP_CONSUMER) {
        batch_t cb;
        mk_group_batch_init(&cb);
        int16_t err = mk_group_cg_classic_leave(gc, g, member_id, group_instance_id, &cb);
        mk_group_batch_run(&cb);
        return err;
    }
    member_t *m = NULL;
    if (member_id && *member_id) {
        m = grp_member(g, member_id);
        if (!m && grp_member_by_instance(g, group_instance_id))
            return MK_KERR_FENCED_INSTANCE_ID;
        if (m && !instance_ok(m, group_instance_id))
            return MK_KERR_FENCED_INSTANCE_ID;
    } else {
        m = grp_member_by_instance(g, group_instance_id);
    }
    if (!m)
        return MK_KERR_UNKNOWN_MEMBER_ID;
    batch_t b;
    mk_group_batch_init(&b);
    mk_info("group %s: member %s left", g->id, m->member_id);
    group_remove_member(g, m, MK_KERR_UNKNOWN_MEMBER_ID, &b);
    if (g->state == ST_STABLE || g->state == ST_COMPLETING) {
        if (g->nmembers == 0) {
            g->state = ST_EMPTY;
            g->generation++;
        } else {
            prepare_rebalance(gc, g, &b);
        }
    } else if (g->state == ST_PREPARING) {
        if (g->nmembers == 0) {
            g->state = ST_EMPTY;
            g->generation++;
        } else {
            try_complete_join(gc, g, &b);
        }
    }
    mk_group_batch_run(&b);
    return 0;
}

/* =================================================================== offsets */

static int store_commits(mk_group_coord_t *gc, group_t *g, mk_group_commit_t *commits, int32_t n,
                         mk_group_commit_cb cb, void *arg);

typedef struct commit_ctx_s {
    mk_group_commit_cb cb;
    void *arg;
} commit_ctx_t;

static void commit_done(int status, void *arg)
{
    commit_ctx_t *c = arg;
    if (status < 0)
        mk_error("committed offsets could not be persisted: %s", mk_strerror(status));
    c->cb(status < 0 ? MK_KERR_KAFKA_STORAGE_ERROR : 0, c->arg);
    mk_free(c);
}

int mk_group_commit(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                    const char *group_instance_id, int32_t generation, mk_group_commit_t *commits, int32_t n,
                    mk_group_commit_cb cb, void *arg)
{
    if (!group_id || !*group_id) {
        cb(MK_KERR_INVALID_GROUP_ID, arg);
        return 0;
    }
    group_t *g = mk_group_get(gc, group_id, false);
    bool simple = generation < 0 && (!member_id || !*member_id);
    if (g && g->type == MK_GROUP_CONSUMER) {
        int16_t err = mk_group_cg_offset_check(g, member_id, generation, true);
        if (err) {
            cb(err, arg);
            return 0;
        }
    } else if (simple) {
        if (g && g->nmembers > 0) {
            cb(MK_KERR_UNKNOWN_MEMBER_ID, arg);
            return 0;
        }
    } else {
        member_t *m = g ? grp_member(g, member_id) : NULL;
        if (g && !m && grp_member_by_instance(g, group_instance_id)) {
            cb(MK_KERR_FENCED_INSTANCE_ID, arg);
            return 0;
        }
        if (!m) {
            cb(MK_KERR_UNKNOWN_MEMBER_ID, arg);
            return 0;
        }
        if (!instance_ok(m, group_instance_id)) {
            cb(MK_KERR_FENCED_INSTANCE_ID, arg);
            return 0;
        }
        if (generation != g->generation) {
            cb(MK_KERR_ILLEGAL_GENERATION, arg);
            return 0;
        }
        if (g->state == ST_COMPLETING) {
            cb(MK_KERR_REBALANCE_IN_PROGRESS, arg);
            return 0;
        }
        m->last_seen_ms = now_ms();
    }
    if (!g)
        g = mk_group_get(gc, group_id, true);
    if (!g)
        return MK_ERR_NOMEM;
    return store_commits(gc, g, commits, n, cb, arg);
}

/* Offsets sent to a transaction, applied when it commits: no member checks. */
int mk_group_commit_txn(mk_group_coord_t *gc, const char *group_id, mk_group_commit_t *commits, int32_t n,
                        mk_group_commit_cb cb, void *arg)
{
    group_t *g = mk_group_get(gc, group_id, true);
    if (!g)
        return MK_ERR_NOMEM;
    return store_commits(gc, g, commits, n, cb, arg);
}

/* Keep commits in memory and write them through; cb once durable. */
static int store_commits(mk_group_coord_t *gc, group_t *g, mk_group_commit_t *commits, int32_t n,
                         mk_group_commit_cb cb, void *arg)
{
    mk_meta_offset_t *rows = mk_calloc((size_t)(n > 0 ? n : 1), sizeof(*rows));
    if (!rows)
        return MK_ERR_NOMEM;
    int nrows = 0;
    int64_t wall = mk_now_ms();
    for (int32_t i = 0; i < n; i++) {
        mk_group_commit_t *c = &commits[i];
        if (c->error)
            continue;
        if (c->metadata && (int32_t)strlen(c->metadata) > gc->cfg.max_metadata_bytes) {
            c->error = MK_KERR_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        char key[1100];
        offset_key(key, sizeof(key), c->topic, c->partition);
        offset_entry_t *e = mk_map_get(&g->offsets, key);
        if (!e) {
            e = mk_calloc(1, sizeof(*e));
            if (!e || mk_map_put(&g->offsets, key, e) < 0) {
                mk_free(e);
                c->error = MK_KERR_UNKNOWN_SERVER_ERROR;
                continue;
            }
        }
        mk_free(e->metadata);
        e->metadata = c->metadata ? mk_strdup(c->metadata) : NULL;
        e->offset = c->offset;
        e->leader_epoch = c->leader_epoch;
        e->commit_ms = wall;
        e->expire_ms = -1;
        rows[nrows].group_id = g->id;
        rows[nrows].topic = c->topic;
        rows[nrows].partition = c->partition;
        rows[nrows].offset = c->offset;
        rows[nrows].leader_epoch = c->leader_epoch;
        rows[nrows].metadata = c->metadata;
        rows[nrows].commit_ms = wall;
        rows[nrows].expire_ms = -1;
        nrows++;
    }
    if (nrows == 0) {
        mk_free(rows);
        cb(0, arg);
        return 0;
    }
    commit_ctx_t *ctx = mk_malloc(sizeof(*ctx));
    mk_meta_op_t op = {.kind = MK_META_OFFSETS_PUT, .offsets = rows, .n = nrows};
    int rc = ctx ? mk_meta_op_submit(gc->meta, gc->loop, &op, commit_done, ctx) : MK_ERR_NOMEM;
    mk_free(rows);
    if (rc < 0) {
        mk_free(ctx);
        cb(MK_KERR_KAFKA_STORAGE_ERROR, arg);
        return 0;
    }
    ctx->cb = cb;
    ctx->arg = arg;
    return 0;
}

void mk_group_offset_get(mk_group_coord_t *gc, const char *group_id, const char *topic, int32_t partition,
                         mk_group_offset_t *out)
{
    out->offset = -1;
    out->leader_epoch = -1;
    out->metadata = "";
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g)
        return;
    char key[1100];
    offset_key(key, sizeof(key), topic, partition);
    offset_entry_t *e = mk_map_get(&g->offsets, key);
    if (!e)
        return;
    out->offset = e->offset;
    out->leader_epoch = e->leader_epoch;
    out->metadata = e->metadata ? e->metadata : "";
}

void mk_group_offsets_foreach(mk_group_coord_t *gc, const char *group_id, mk_group_offset_cb cb, void *arg)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g)
        return;
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&g->offsets, &it, &k, &v)) {
        const char *sep = strchr(k, '\x1f');
        if (!sep)
            continue;
        char topic[1024];
        snprintf(topic, sizeof(topic), "%.*s", (int)(sep - k), k);
        offset_entry_t *e = v;
        mk_group_offset_t o = {e->offset, e->leader_epoch, e->metadata ? e->metadata : ""};
        cb(topic, atoi(sep + 1), &o, arg);
    }
}

/* Whether any member of a consumer group subscribes to topic (from the
 * ConsumerProtocolSubscription in its metadata). */
static bool group_subscribes(group_t *g, const char *topic)
{
    if (g->type == MK_GROUP_CONSUMER)
        return mk_group_cg_subscribes(g, topic);
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0 || !g->protocol_name)
        return false;
    for (member_t *m = g->members; m; m = m->next) {
        int pi = member_protocol_index(m, g->protocol_name);
        if (pi < 0 || m->proto_meta_len[pi] < 2)
            continue;
        mk_reader_t r;
        mk_rd_init(&r, m->proto_meta[pi], (size_t)m->proto_meta_len[pi]);
        int16_t ver = mk_rd_i16(&r);
        const mk_pmsg_t *pm = &mk_pmsg_ConsumerProtocolSubscription;
        if (ver > pm->vmax)
            ver = pm->vmax; /* newer versions start with the same fields */
        mk_arena_t a;
        mk_arena_init(&a);
        mk_ConsumerProtocolSubscription_t sub;
        bool hit = false;
        if (ver >= 0 && mk_proto_decode(pm, ver, &r, &a, &sub) == 0)
            for (int32_t i = 0; i < sub.Topics.count && !hit; i++)
                hit = mk_str_eq(sub.Topics.items[i], topic);
        mk_arena_free(&a);
        if (hit)
            return true;
    }
    return false;
}

static void meta_log_done(int status, void *arg)
{
    if (status < 0 && status != MK_ERR_NOT_FOUND)
        mk_error("group metadata write (%s) failed: %s", (const char *)arg, mk_strerror(status));
}

int16_t mk_group_offset_delete(mk_group_coord_t *gc, const char *group_id, const char *topic, int32_t partition)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g)
        return MK_KERR_GROUP_ID_NOT_FOUND;
    if ((g->nmembers > 0 || mk_group_cg_member_count(g) > 0) && group_subscribes(g, topic))
        return MK_KERR_GROUP_SUBSCRIBED_TO_TOPIC;
    char key[1100];
    offset_key(key, sizeof(key), topic, partition);
    offset_entry_t *e = mk_map_del(&g->offsets, key);
    if (e) {
        mk_free(e->metadata);
        mk_free(e);
        mk_meta_op_t op = {.kind = MK_META_OFFSETS_DELETE_PARTITION, .group_id = group_id, .topic = topic,
                           .partition = partition};
        mk_meta_op_submit(gc->meta, gc->loop, &op, meta_log_done, "offset delete");
    }
    return 0;
}

void mk_group_topic_deleted(mk_group_coord_t *gc, const char *topic)
{
    size_t it = 0;
    const char *k;
    void *v;
    size_t tl = strlen(topic);
    while (mk_map_next(&gc->groups, &it, &k, &v)) {
        group_t *g = v;
        size_t jt = 0;
        const char *ok;
        void *ov;
        while (mk_map_next(&g->offsets, &jt, &ok, &ov)) {
            if (strncmp(ok, topic, tl) == 0 && ok[tl] == '\x1f') {
                offset_entry_t *e = mk_map_del(&g->offsets, ok);
                mk_free(e->metadata);
                mk_free(e);
            }
        }
    }
    mk_meta_op_t op = {.kind = MK_META_OFFSETS_DELETE_TOPIC, .topic = topic};
    mk_meta_op_submit(gc->meta, gc->loop, &op, meta_log_done, "topic offsets delete");
}

/* ===================================================================== admin */

static void describe_group(mk_group_coord_t *gc, group_t *g, mk_group_desc_cb cb, void *arg)
{
    if (g->type == MK_GROUP_CONSUMER) {
        mk_group_cg_describe_classic(gc, g, cb, arg);
        return;
    }
    mk_arena_t a;
    mk_arena_init(&a);
    mk_group_member_info_t *mi = mk_arena_alloc(&a, sizeof(*mi) * (size_t)(g->nmembers + 1));
    int k = 0;
    for (member_t *m = g->members; mi && m; m = m->next) {
        int pi = g->protocol_name ? member_protocol_index(m, g->protocol_name) : -1;
        mi[k].member_id = m->member_id;
        mi[k].group_instance_id = m->instance_id;
        mi[k].client_id = m->client_id;
        mi[k].client_host = m->client_host;
        mi[k].metadata = pi >= 0 ? m->proto_meta[pi] : (const uint8_t *)"";
        mi[k].metadata_len = pi >= 0 ? m->proto_meta_len[pi] : 0;
        mi[k].assignment = m->assignment ? m->assignment : (const uint8_t *)"";
        mi[k].assignment_len = m->assignment_len;
        k++;
    }
    bool stable = g->state == ST_STABLE;
    mk_group_desc_t d = {g->id, state_names[g->state], g->protocol_type ? g->protocol_type : "",
                         stable && g->protocol_name ? g->protocol_name : "", k, mi, "classic"};
    cb(&d, arg);
    mk_arena_free(&a);
}

void mk_group_describe(mk_group_coord_t *gc, const char *group_id, mk_group_desc_cb cb, void *arg)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g) {
        mk_group_desc_t d = {group_id, "Dead", "", "", 0, NULL, "classic"};
        cb(&d, arg);
        return;
    }
    describe_group(gc, g, cb, arg);
}

void mk_group_list(mk_group_coord_t *gc, int32_t broker_id, mk_group_desc_cb cb, void *arg)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&gc->groups, &it, &k, &v))
        if (broker_id < 0 || mk_group_coordinator(gc, k) == broker_id)
            describe_group(gc, v, cb, arg);
}

int16_t mk_group_delete(mk_group_coord_t *gc, const char *group_id)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g)
        return MK_KERR_GROUP_ID_NOT_FOUND;
    if (g->nmembers > 0 || g->state != ST_EMPTY || mk_group_cg_member_count(g) > 0)
        return MK_KERR_NON_EMPTY_GROUP;
    mk_map_del(&gc->groups, group_id);
    mk_meta_op_t op = {.kind = MK_META_OFFSETS_DELETE_GROUP, .group_id = g->id};
    mk_meta_op_submit(gc->meta, gc->loop, &op, meta_log_done, "group delete");
    mk_info("group %s deleted", g->id);
    group_free(g);
    return 0;
}

/* ====================================================================== tick */

/* Offset retention: the committed offsets of Empty groups that have expired
 * by mk_meta_offset_expired() (the one copy of the rule) leave memory, and
 * one MK_META_OFFSETS_EXPIRE per such group removes the same rows from the
 * store: same rule, same wall time, and it runs after every write already
 * submitted for them.  retention <= 0 turns retention off. */
static void expire_offsets(mk_group_coord_t *gc, int64_t wall)
{
    int64_t retention = gc->cfg.offsets_retention_ms;
    if (retention <= 0)
        return;
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&gc->groups, &it, &k, &v)) {
        group_t *g = v;
        if (g->state != ST_EMPTY || mk_group_cg_member_count(g) > 0)
            continue;
        int expired = 0;
        size_t jt = 0;
        const char *ok;
        void *ov;
        while (mk_map_next(&g->offsets, &jt, &ok, &ov)) {
            offset_entry_t *e = ov;
            if (!mk_meta_offset_expired(e->commit_ms, e->expire_ms, wall, retention))
                continue;
            mk_map_del(&g->offsets, ok);
            mk_free(e->metadata);
            mk_free(e);
            expired++;
        }
        if (expired) {
            mk_meta_op_t op = {.kind = MK_META_OFFSETS_EXPIRE, .group_id = g->id, .now_ms = wall,
                               .retention_ms = retention};
            mk_meta_op_submit(gc->meta, gc->loop, &op, meta_log_done, "offset expiry");
        }
    }
}

static bool any_awaiting_sync(const group_t *g)
{
    for (const member_t *m = g->members; m; m = m->next)
        if (m->awaiting_sync)
            return true;
    return false;
}

static void tick_cb(uv_timer_t *t)
{
    mk_group_coord_t *gc = t->data;
    uint64_t now = now_ms();
    batch_t b;
    mk_group_batch_init(&b);
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&gc->groups, &it, &k, &v)) {
        group_t *g = v;
        if (g->type == MK_GROUP_CONSUMER) {
            mk_group_cg_tick(gc, g, now, &b);
            continue;
        }
        bool changed = false;
        for (member_t *m = g->members, *next; m; m = next) {
            next = m->next;
            bool waiting_join = g->state == ST_PREPARING && m->join_cb;
            if (!waiting_join && now - m->last_seen_ms > (uint64_t)m->session_timeout_ms) {
                mk_info("group %s: member %s expired (session timeout %d ms)", g->id, m->member_id,
                        m->session_timeout_ms);
                group_remove_member(g, m, MK_KERR_UNKNOWN_MEMBER_ID, &b);
                changed = true;
            }
        }
        for (pending_id_t **pp = &g->pending; *pp;) {
            if (now >= (*pp)->deadline_ms) {
                pending_id_t *p = *pp;
                *pp = p->next;
                mk_free(p->member_id);
                mk_free(p);
            } else {
                pp = &(*pp)->next;
            }
        }
        if (g->state == ST_PREPARING && now >= g->deadline_ms) {
            complete_join(gc, g, &b);
        } else if ((g->state == ST_COMPLETING || g->state == ST_STABLE) && now >= g->deadline_ms &&
                   (g->state == ST_COMPLETING || any_awaiting_sync(g))) {
            for (member_t *m = g->members, *next; m; m = next) {
                next = m->next;
                if (g->state == ST_COMPLETING ? !m->sync_cb : m->awaiting_sync) {
                    mk_info("group %s: member %s never sent SyncGroup; removed", g->id, m->member_id);
                    group_remove_member(g, m, MK_KERR_UNKNOWN_MEMBER_ID, &b);
                }
            }
            prepare_rebalance(gc, g, &b);
        } else if (changed) {
            if (g->nmembers == 0 && g->state != ST_EMPTY) {
                g->state = ST_EMPTY;
                g->generation++;
            } else if (g->state == ST_STABLE || g->state == ST_COMPLETING) {
                prepare_rebalance(gc, g, &b);
            } else {
                try_complete_join(gc, g, &b);
            }
        } else if (g->state == ST_PREPARING) {
            try_complete_join(gc, g, &b);
        }
    }
    int64_t wall = mk_now_ms();
    if (wall - gc->last_expire_ms > 60000) {
        gc->last_expire_ms = wall;
        expire_offsets(gc, wall);
    }
    mk_group_batch_run(&b);
}

/* ================================================================ lifecycle */

static int load_offset_cb(const mk_meta_offset_t *o, void *arg)
{
    mk_group_coord_t *gc = arg;
    group_t *g = mk_group_get(gc, o->group_id, true);
    if (!g)
        return MK_ERR_NOMEM;
    char key[1100];
    offset_key(key, sizeof(key), o->topic, o->partition);
    offset_entry_t *e = mk_calloc(1, sizeof(*e));
    if (!e)
        return MK_ERR_NOMEM;
    e->offset = o->offset;
    e->leader_epoch = o->leader_epoch;
    e->metadata = o->metadata ? mk_strdup(o->metadata) : NULL;
    e->commit_ms = o->commit_ms;
    e->expire_ms = o->expire_ms;
    if (mk_map_put(&g->offsets, key, e) < 0) {
        mk_free(e->metadata);
        mk_free(e);
        return MK_ERR_NOMEM;
    }
    return 0;
}

int mk_group_coord_new(uv_loop_t *loop, mk_cluster_t *c, const mk_group_config_t *cfg, mk_group_coord_t **out)
{
    mk_group_coord_t *gc = mk_calloc(1, sizeof(*gc));
    if (!gc)
        return MK_ERR_NOMEM;
    gc->loop = loop;
    gc->c = c;
    gc->meta = mk_cluster_meta(c);
    gc->cfg = *cfg;
    mk_map_init(&gc->groups);
    int rc = mk_meta_offsets_foreach(gc->meta, load_offset_cb, gc);
    gc->tick = mk_malloc(sizeof(uv_timer_t));
    if (rc < 0 || !gc->tick) {
        mk_free(gc->tick);
        gc->tick = NULL;
        mk_group_coord_free(gc);
        return rc < 0 ? rc : MK_ERR_NOMEM;
    }
    uv_timer_init(loop, gc->tick);
    gc->tick->data = gc;
    uv_timer_start(gc->tick, tick_cb, 100, 100);
    gc->last_expire_ms = mk_now_ms();
    *out = gc;
    return 0;
}

static void tick_free_cb(uv_handle_t *h) { mk_free(h); }

void mk_group_coord_free(mk_group_coord_t *gc)
{
    if (!gc)
        return;
    if (gc->tick) {
        uv_timer_stop(gc->tick);
        uv_close((uv_handle_t *)gc->tick, tick_free_cb);
    }
    batch_t b;
    mk_group_batch_init(&b);
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&gc->groups, &it, &k, &v)) {
        group_t *g = v;
        for (member_t *m = g->members; m; m = m->next) {
            if (m->join_cb)
                mk_group_answer_join_error(&b, m->join_cb, m->join_arg, MK_KERR_COORDINATOR_NOT_AVAILABLE, m->member_id);
            if (m->sync_cb)
                answer_sync(&b, m->sync_cb, m->sync_arg, MK_KERR_COORDINATOR_NOT_AVAILABLE, NULL, NULL);
            m->join_cb = NULL;
            m->sync_cb = NULL;
        }
    }
    mk_group_batch_run(&b);
    it = 0;
    while (mk_map_next(&gc->groups, &it, &k, &v))
        group_free(v);
    mk_map_free(&gc->groups);
    mk_free(gc);
}
