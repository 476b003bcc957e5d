/*
 * consumer.c -- KIP-848 consumer groups: ConsumerGroupHeartbeat, member and
 * group epochs, server-side assignment and reconciliation, timeouts, and the
 * conversions between classic and consumer groups that Kafka 4.0 allows.
 *
 * Epochs.  The group epoch is bumped by every change the assignment depends
 * on: a member joins or goes, a member's subscription (names, regex) or
 * server assignor changes, or the subscribed topics change (created, deleted,
 * partitions added: seen as a new signature of (name, id, partitions) over
 * the topics the group subscribes to, at each heartbeat).  Each bump computes
 * a new target assignment at once with the group's assignor, so the target
 * assignment epoch follows the group epoch.
 *
 * Reconciliation (per member, at each of its heartbeats and classic joins).
 * A member moves toward its target in two steps, and a partition is never
 * owned by two members at once:
 *   1. revoke: partitions it holds that the target no longer has are taken
 *      out of its assignment and wait in `revoking`; its epoch stays.  The
 *      member is UNREVOKED until a heartbeat's TopicPartitions (what the
 *      client still owns) no longer has any of them, or its rebalance timeout
 *      passes (then it is fenced: removed from the group).
 *   2. assign: it takes the target's partitions that no other member holds
 *      (assigned or revoking) and its epoch becomes the target epoch; those
 *      still held elsewhere leave it UNRELEASED, and it takes them at a later
 *      heartbeat once they are released.
 *
 * Epoch checks (FENCED_MEMBER_EPOCH): a heartbeat's epoch must be the
 * member's, or its previous one when the partitions it reports owning are a
 * subset of its assignment (the answer to its last heartbeat was lost).
 *
 * Static members (InstanceId): epoch -2 leaves for now; the member keeps its
 * assignment (nothing moves) until its session times out, and a new member
 * id with the same instance id takes it over.  While a static member is
 * active, another join with its instance id gets UNRELEASED_INSTANCE_ID.
 *
 * Classic members inside a consumer group (Kafka 4.0): a JoinGroup to a
 * non-empty consumer group makes a member that speaks the classic protocol;
 * its subscription and owned partitions come from its ConsumerProtocol
 * metadata, its generation is its member epoch, SyncGroup hands it its
 * assignment, and Heartbeat tells it REBALANCE_IN_PROGRESS whenever it must
 * rejoin to revoke or to take more.
 *
 * Conversions (group.consumer.migration.policy, Kafka's values):
 *   - an empty group of either type becomes the other type when a member of
 *     the other protocol joins (always);
 *   - a consumer heartbeat to a non-empty classic group whose protocol type is
 *     "consumer" converts it (upgrade or bidirectional), its members becoming
 *     classic members of the consumer group with their assignments; otherwise
 *     GROUP_ID_NOT_FOUND ("not a consumer group");
 *   - when the last member that uses the consumer protocol leaves and classic
 *     members remain (downgrade or bidirectional), the group becomes a classic
 *     group again and rebalances.
 *
 * Everything runs on the loop thread.  Topics are kept by id; names are
 * looked up when answering.  Consumer group state is in memory only (as the
 * classic groups' membership): committed offsets are what is persisted.
 */
#include "group/group_int.h"
#include "proto/proto.h"
#include "tenant/tenant.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

enum { CM_STABLE, CM_UNREVOKED, CM_UNRELEASED };

#define EPOCH_LEAVE (-1)
#define EPOCH_LEAVE_STATIC (-2)

typedef struct cproto_s {
    char *name;
    uint8_t *meta;
    int32_t len;
} cproto_t;

typedef struct cmember_s {
    struct cmember_s *next;
    char *member_id, *instance_id, *rack_id, *client_id, *client_host;
    int32_t epoch;               /* member epoch; -2: a static member away for now */
    int32_t prev_epoch;
    int state;                   /* CM_* */
    int32_t rebalance_timeout_ms;
    int32_t session_timeout_ms;
    char **topics;               /* owned, sorted internal names */
    int32_t ntopics;
    char *regex;                 /* owned, as sent; NULL: none */
    regex_t re;                  /* compiled when regex */
    char *assignor;              /* owned canonical name, or NULL */
    mk_gtps_t assigned;          /* what it may use now */
    mk_gtps_t revoking;          /* taken away, not yet confirmed revoked */
    mk_gtps_t target;            /* its part of the target assignment */
    uint64_t last_seen_ms;
    uint64_t revoke_deadline_ms; /* while UNREVOKED */
    /* a member that uses the classic protocol */
    bool classic;
    cproto_t *protos;
    int32_t nprotos;
} cmember_t;

struct mk_cgroup_s {
    cmember_t *members;          /* join order */
    int nmembers;
    int32_t group_epoch;
    int32_t assignment_epoch;
    char *prefix;                /* owned: the tenant's internal-name prefix (regex) */
    uint64_t sig;                /* signature of the subscribed topics */
    const char *assignor;        /* canonical name of the assignor of the target */
};

/* ==================================================================== utils */

static mk_tenant_t tenant_of(const mk_cgroup_t *cg)
{
    mk_tenant_t t = {0};
    t.prefix = cg->prefix ? cg->prefix : "";
    return t;
}

static char *new_uuid_id(void)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (uint8_t)rand();
    char s[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(r, s);
    return mk_strdup(s);
}

static bool str_eq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const char *policy(const mk_group_coord_t *gc)
{
    return gc->cfg.cg_migration_policy ? gc->cfg.cg_migration_policy : "bidirectional";
}

static bool upgrade_enabled(const mk_group_coord_t *gc)
{
    return strcasecmp(policy(gc), "upgrade") == 0 || strcasecmp(policy(gc), "bidirectional") == 0;
}

static bool downgrade_enabled(const mk_group_coord_t *gc)
{
    return strcasecmp(policy(gc), "downgrade") == 0 || strcasecmp(policy(gc), "bidirectional") == 0;
}

/* The configured assignors, in order: the first is the default. */
static const char *default_assignor(const mk_group_coord_t *gc)
{
    const char *list = gc->cfg.cg_assignors && *gc->cfg.cg_assignors ? gc->cfg.cg_assignors : "uniform";
    char first[128];
    size_t n = strcspn(list, ",");
    snprintf(first, sizeof(first), "%.*s", (int)(n < sizeof(first) ? n : sizeof(first) - 1), list);
    const char *canon = "uniform";
    if (!mk_group_assignor_find(first, &canon))
        canon = "uniform";
    return canon;
}

/* Whether name is one of the configured assignors (canonical name out). */
static bool assignor_enabled(const mk_group_coord_t *gc, const char *name, const char **canon)
{
    if (!mk_group_assignor_find(name, canon))
        return false;
    const char *list = gc->cfg.cg_assignors && *gc->cfg.cg_assignors ? gc->cfg.cg_assignors : "uniform,range";
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        char one[128];
        snprintf(one, sizeof(one), "%.*s", (int)(n < sizeof(one) ? n : sizeof(one) - 1), p);
        const char *c = NULL;
        if (mk_group_assignor_find(one, &c) && strcmp(c, *canon) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* ================================================================== members */

static void member_free_topics(cmember_t *m)
{
    for (int32_t i = 0; i < m->ntopics; i++)
        mk_free(m->topics[i]);
    mk_free(m->topics);
    m->topics = NULL;
    m->ntopics = 0;
}

static void member_free_protos(cmember_t *m)
{
    for (int32_t i = 0; i < m->nprotos; i++) {
        mk_free(m->protos[i].name);
        mk_free(m->protos[i].meta);
    }
    mk_free(m->protos);
    m->protos = NULL;
    m->nprotos = 0;
}

static void member_free(cmember_t *m)
{
    member_free_topics(m);
    member_free_protos(m);
    if (m->regex)
        regfree(&m->re);
    mk_free(m->regex);
    mk_free(m->member_id);
    mk_free(m->instance_id);
    mk_free(m->rack_id);
    mk_free(m->client_id);
    mk_free(m->client_host);
    mk_free(m->assignor);
    mk_gtps_free(&m->assigned);
    mk_gtps_free(&m->revoking);
    mk_gtps_free(&m->target);
    mk_free(m);
}

static int str_qcmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Whether the member subscribes to the (internal) name by name. */
static bool has_topic(const cmember_t *m, const char *name)
{
    return m->ntopics > 0 && bsearch(&name, m->topics, (size_t)m->ntopics, sizeof(char *), str_qcmp) != NULL;
}

/* Whether the member's topic list equals names (any order, duplicates ignored). */
static bool topics_same(const cmember_t *m, int32_t n, const char *const *names)
{
    for (int32_t i = 0; i < n; i++) {
        if (!names[i] || !has_topic(m, names[i]))
            return false;
    }
    for (int32_t i = 0; i < m->ntopics; i++) {
        bool found = false;
        for (int32_t j = 0; j < n && !found; j++)
            found = strcmp(m->topics[i], names[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static int member_set_topics(cmember_t *m, int32_t n, const char *const *names)
{
    member_free_topics(m);
    m->topics = mk_calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!m->topics)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        if (!names[i])
            continue;
        if (!(m->topics[m->ntopics] = mk_strdup(names[i])))
            return MK_ERR_NOMEM;
        m->ntopics++;
    }
    qsort(m->topics, (size_t)m->ntopics, sizeof(char *), str_qcmp);
    int32_t k = 0;
    for (int32_t i = 0; i < m->ntopics; i++) {
        if (k && strcmp(m->topics[k - 1], m->topics[i]) == 0) {
            mk_free(m->topics[i]);
            continue;
        }
        m->topics[k++] = m->topics[i];
    }
    m->ntopics = k;
    return 0;
}

/* Compile "^(re)$" (Kafka matches whole names).  0, or -1 if invalid.
 * Kafka's RE2/J has no back-references, and matching must stay linear on
 * the loop thread: a back-reference (\1..\9) is refused as RE2/J refuses
 * it, and so is a pattern over MAX_REGEX bytes. */
#define MAX_REGEX 4096
static int compile_regex(regex_t *out, const char *re)
{
    size_t n = strlen(re);
    if (n > MAX_REGEX)
        return -1;
    for (size_t i = 0; i + 1 < n; i++)
        if (re[i] == '\\') {
            if (re[i + 1] >= '1' && re[i + 1] <= '9')
                return -1;
            i++;
        }
    char *full = mk_malloc(n + 5);
    if (!full)
        return -1;
    snprintf(full, n + 5, "^(%s)$", re);
    int rc = regcomp(out, full, REG_EXTENDED | REG_NOSUB);
    mk_free(full);
    return rc == 0 ? 0 : -1;
}

static cmember_t *cg_member(mk_cgroup_t *cg, const char *member_id)
{
    for (cmember_t *m = cg->members; m; m = m->next)
        if (member_id && strcmp(m->member_id, member_id) == 0)
            return m;
    return NULL;
}

static cmember_t *cg_member_by_instance(mk_cgroup_t *cg, const char *instance_id)
{
    if (!instance_id)
        return NULL;
    for (cmember_t *m = cg->members; m; m = m->next)
        if (m->instance_id && strcmp(m->instance_id, instance_id) == 0)
            return m;
    return NULL;
}

static cmember_t *member_new(mk_cgroup_t *cg, const char *member_id)
{
    cmember_t *m = mk_calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->member_id = member_id ? mk_strdup(member_id) : new_uuid_id();
    if (!m->member_id) {
        mk_free(m);
        return NULL;
    }
    m->state = CM_STABLE;
    m->last_seen_ms = mk_group_now_ms();
    cmember_t **pp = &cg->members;
    while (*pp)
        pp = &(*pp)->next;
    *pp = m;
    cg->nmembers++;
    return m;
}

static void member_unlink(mk_cgroup_t *cg, cmember_t *m)
{
    for (cmember_t **pp = &cg->members; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            cg->nmembers--;
            return;
        }
}

static void set_str(char **dst, const char *v)
{
    if (str_eq_null(*dst, v))
        return;
    mk_free(*dst);
    *dst = v ? mk_strdup(v) : NULL;
}

/* ==================================================================== groups */

static mk_cgroup_t *cg_new(const char *prefix)
{
    mk_cgroup_t *cg = mk_calloc(1, sizeof(*cg));
    if (!cg)
        return NULL;
    cg->prefix = mk_strdup(prefix ? prefix : "");
    if (!cg->prefix) {
        mk_free(cg);
        return NULL;
    }
    return cg;
}

void mk_group_cg_free(mk_cgroup_t *cg)
{
    if (!cg)
        return;
    while (cg->members) {
        cmember_t *m = cg->members;
        cg->members = m->next;
        member_free(m);
    }
    mk_free(cg->prefix);
    mk_free(cg);
}

int mk_group_cg_member_count(const group_t *g)
{
    return g && g->type == MK_GROUP_CONSUMER && g->cg ? g->cg->nmembers : 0;
}

const char *mk_group_cg_state(const group_t *g)
{
    const mk_cgroup_t *cg = g->cg;
    if (!cg || cg->nmembers == 0)
        return "Empty";
    if (cg->group_epoch > cg->assignment_epoch)
        return "Assigning";
    for (const cmember_t *m = cg->members; m; m = m->next)
        if (m->epoch >= 0 && (m->epoch != cg->assignment_epoch || m->state != CM_STABLE))
            return "Reconciling";
    return "Stable";
}

/* ============================================================ target epochs */

/* A growing list of distinct topics, in an arena. */
typedef struct topic_list_s {
    mk_arena_t *a;
    mk_map_t seen;          /* name -> topic */
    mk_topic_t **v;
    int32_t n, cap;
} topic_list_t;

static int topic_list_add(topic_list_t *l, mk_topic_t *t)
{
    if (mk_map_get(&l->seen, t->name))
        return 0;
    if (mk_map_put(&l->seen, t->name, t) < 0)
        return MK_ERR_NOMEM;
    if (l->n == l->cap) {
        int32_t cap = l->cap ? l->cap * 2 : 16;
        mk_topic_t **nv = mk_arena_alloc(l->a, sizeof(*nv) * (size_t)cap);
        if (!nv)
            return MK_ERR_NOMEM;
        if (l->n)
            memcpy(nv, l->v, sizeof(*nv) * (size_t)l->n);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = t;
    return 0;
}

/* The subscribed topics that exist, sorted by name, with the signature of
 * (name, id, partitions) over them.  *out is allocated in a. */
static int resolve_topics(mk_group_coord_t *gc, mk_cgroup_t *cg, mk_arena_t *a, mk_topic_t ***out, int32_t *n,
                          uint64_t *sig)
{
    topic_list_t l = {a, {0}, NULL, 0, 0};
    mk_map_init(&l.seen);
    bool any_regex = false;
    int rc = 0;
    for (cmember_t *m = cg->members; m && rc == 0; m = m->next) {
        any_regex |= m->regex != NULL;
        for (int32_t i = 0; i < m->ntopics && rc == 0; i++) {
            mk_topic_t *t = mk_cluster_topic_find(gc->c, m->topics[i]);
            if (t)
                rc = topic_list_add(&l, t);
        }
    }
    if (any_regex) {
        mk_tenant_t tn = tenant_of(cg);
        mk_topic_t *t;
        for (size_t it = 0; rc == 0 && (t = mk_cluster_topic_next(gc->c, &it));) {
            if (!mk_tenant_visible(&tn, t->name))
                continue;
            const char *ext = mk_tenant_to_external(&tn, t->name);
            for (cmember_t *m = cg->members; m; m = m->next)
                if (m->regex && regexec(&m->re, ext, 0, NULL, 0) == 0) {
                    rc = topic_list_add(&l, t);
                    break;
                }
        }
    }
    mk_map_free(&l.seen);
    if (rc < 0)
        return rc;
    mk_topic_t **v = l.v;
    int32_t cnt = l.n;
    /* sort by name (insertion: topic counts are small) */
    for (int32_t i = 1; i < cnt; i++) {
        mk_topic_t *k = v[i];
        int32_t j = i - 1;
        while (j >= 0 && strcmp(v[j]->name, k->name) > 0) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = k;
    }
    uint64_t h = 1469598103934665603ull;
    for (int32_t i = 0; i < cnt; i++) {
        h = fnv(h, v[i]->name, strlen(v[i]->name) + 1);
        h = fnv(h, v[i]->id, 16);
        h = fnv(h, &v[i]->partition_count, sizeof(v[i]->partition_count));
    }
    *out = v;
    *n = cnt;
    *sig = h;
    return 0;
}

/* Whether member m subscribes to topic t (by name or by regex). */
static bool member_subscribes(const mk_cgroup_t *cg, const cmember_t *m, const mk_topic_t *t)
{
    if (has_topic(m, t->name))
        return true;
    if (!m->regex)
        return false;
    mk_tenant_t tn = tenant_of(cg);
    return mk_tenant_visible(&tn, t->name) && regexec(&m->re, mk_tenant_to_external(&tn, t->name), 0, NULL, 0) == 0;
}

/* The assignor of the group: the one most members ask for (ties: the first
 * configured), else the configured default. */
static const char *group_assignor(mk_group_coord_t *gc, mk_cgroup_t *cg)
{
    const char *best = NULL;
    int best_votes = 0;
    for (cmember_t *m = cg->members; m; m = m->next) {
        if (!m->assignor)
            continue;
        int votes = 0;
        for (cmember_t *o = cg->members; o; o = o->next)
            votes += o->assignor && strcmp(o->assignor, m->assignor) == 0;
        if (votes > best_votes || (votes == best_votes && best && strcmp(m->assignor, default_assignor(gc)) == 0)) {
            best = m->assignor;
            best_votes = votes;
        }
    }
    return best ? best : default_assignor(gc);
}

/* A new target assignment for the group epoch. */
static void compute_target(mk_group_coord_t *gc, group_t *g)
{
    mk_cgroup_t *cg = g->cg;
    mk_arena_t a;
    mk_arena_init(&a);
    mk_topic_t **tv = NULL;
    int32_t nt = 0;
    uint64_t sig = 0;
    int rc = resolve_topics(gc, cg, &a, &tv, &nt, &sig);
    mk_asg_topic_t *topics = rc == 0 ? mk_arena_alloc(&a, sizeof(*topics) * (size_t)(nt + 1)) : NULL;
    mk_asg_member_t *ms = topics ? mk_arena_alloc(&a, sizeof(*ms) * (size_t)(cg->nmembers + 1)) : NULL;
    if (!ms) {
        mk_error("group %s: no memory for the target assignment", g->id);
        mk_arena_free(&a);
        return;
    }
    cg->sig = sig;
    for (int32_t i = 0; i < nt; i++) {
        memcpy(topics[i].id, tv[i]->id, 16);
        topics[i].name = tv[i]->name;
        topics[i].partitions = tv[i]->partition_count;
    }
    int32_t k = 0;
    for (cmember_t *m = cg->members; m; m = m->next, k++) {
        bool *sub = mk_arena_alloc(&a, sizeof(bool) * (size_t)(nt + 1));
        if (!sub) {
            mk_arena_free(&a);
            return;
        }
        for (int32_t i = 0; i < nt; i++)
            sub[i] = member_subscribes(cg, m, tv[i]);
        memset(&ms[k], 0, sizeof(ms[k]));
        ms[k].member_id = m->member_id;
        ms[k].instance_id = m->instance_id;
        ms[k].subscribed = sub;
        ms[k].current = &m->target;
    }
    const char *name = group_assignor(gc, cg);
    mk_asg_fn fn = mk_group_assignor_find(name, &name);
    rc = fn ? fn(topics, nt, ms, k) : MK_ERR_INVALID;
    k = 0;
    for (cmember_t *m = cg->members; m; m = m->next, k++) {
        if (rc == 0) {
            mk_gtps_free(&m->target);
            m->target = ms[k].out;
        } else {
            mk_gtps_free(&ms[k].out);
        }
    }
    if (rc == 0) {
        cg->assignor = name;
        cg->assignment_epoch = cg->group_epoch;
        mk_info("group %s: epoch %d, target assignment by %s over %d members and %d topics", g->id,
                cg->group_epoch, name, cg->nmembers, nt);
    } else {
        mk_error("group %s: assignment failed: %s", g->id, mk_strerror(rc));
    }
    mk_arena_free(&a);
}

static void bump(mk_group_coord_t *gc, group_t *g)
{
    g->cg->group_epoch++;
    compute_target(gc, g);
}

/* ============================================================ reconciliation */

static bool held_by_other(const mk_cgroup_t *cg, const cmember_t *self, const mk_gtp_t *tp)
{
    for (const cmember_t *o = cg->members; o; o = o->next)
        if (o != self && (mk_gtps_has(&o->assigned, tp->id, tp->partition) ||
                          mk_gtps_has(&o->revoking, tp->id, tp->partition)))
            return true;
    return false;
}

/* Move m one step toward its target (see the file header).  owned: what the
 * client says it owns, NULL when not sent. */
static void reconcile(const mk_cgroup_t *cg, cmember_t *m, const mk_gtps_t *owned)
{
    if (m->epoch < 0)
        return;
    if (m->state == CM_UNREVOKED) {
        if (!owned)
            return;
        for (int32_t i = 0; i < m->revoking.n; i++)
            if (mk_gtps_has(owned, m->revoking.v[i].id, m->revoking.v[i].partition))
                return; /* still owned: keep waiting */
        mk_gtps_clear(&m->revoking);
        m->revoke_deadline_ms = 0;
        m->state = CM_STABLE;
    } else if (m->state == CM_STABLE && m->epoch == cg->assignment_epoch) {
        return;
    }
    mk_gtps_t keep = {0}, revoke = {0};
    bool oom = false;
    for (int32_t i = 0; i < m->assigned.n; i++) {
        const mk_gtp_t *tp = &m->assigned.v[i];
        oom |= mk_gtps_add(mk_gtps_has(&m->target, tp->id, tp->partition) ? &keep : &revoke, tp->id,
                           tp->partition) < 0;
    }
    if (oom) {
        mk_gtps_free(&keep);
        mk_gtps_free(&revoke);
        return;
    }
    if (revoke.n) {
        mk_gtps_free(&m->assigned);
        m->assigned = keep;
        mk_gtps_free(&m->revoking);
        m->revoking = revoke;
        m->state = CM_UNREVOKED;
        int32_t rt = m->rebalance_timeout_ms > 0 ? m->rebalance_timeout_ms : 0;
        m->revoke_deadline_ms = mk_group_now_ms() + (uint64_t)rt;
        return;
    }
    mk_gtps_free(&revoke);
    bool pending = false;
    for (int32_t i = 0; i < m->target.n; i++) {
        const mk_gtp_t *tp = &m->target.v[i];
        if (mk_gtps_has(&m->assigned, tp->id, tp->partition))
            continue;
        if (held_by_other(cg, m, tp))
            pending = true;
        else
            oom |= mk_gtps_add(&keep, tp->id, tp->partition) < 0;
    }
    if (oom) {
        mk_gtps_free(&keep);
        return;
    }
    mk_gtps_sort(&keep);
    mk_gtps_free(&m->assigned);
    m->assigned = keep;
    if (m->epoch != cg->assignment_epoch) {
        m->prev_epoch = m->epoch;
        m->epoch = cg->assignment_epoch;
    }
    m->state = pending ? CM_UNRELEASED : CM_STABLE;
}

/* Whether some partition m waits for is free now. */
static bool unreleased_now_free(const mk_cgroup_t *cg, const cmember_t *m)
{
    for (int32_t i = 0; i < m->target.n; i++) {
        const mk_gtp_t *tp = &m->target.v[i];
        if (!mk_gtps_has(&m->assigned, tp->id, tp->partition) && !held_by_other(cg, m, tp))
            return true;
    }
    return false;
}

/* ================================================================ conversion */

static bool only_classic_members(const mk_cgroup_t *cg)
{
    for (const cmember_t *m = cg->members; m; m = m->next)
        if (!m->classic)
            return false;
    return true;
}

/* Downgrade: the group's members all use the classic protocol now (the last
 * consumer-protocol member left): it becomes a classic group and rebalances
 * (its members are told REBALANCE_IN_PROGRESS at their next heartbeat). */
static void maybe_downgrade(mk_group_coord_t *gc, group_t *g, batch_t *b)
{
    mk_cgroup_t *cg = g->cg;
    if (cg->nmembers == 0 || !only_classic_members(cg) || !downgrade_enabled(gc))
        return;
    if (gc->cfg.max_size > 0 && cg->nmembers > gc->cfg.max_size)
        return;
    mk_group_classic_reset(g);
    for (cmember_t *m = cg->members; m; m = m->next) {
        mk_group_protocol_t *ps = mk_calloc((size_t)(m->nprotos ? m->nprotos : 1), sizeof(*ps));
        if (!ps)
            continue;
        for (int32_t i = 0; i < m->nprotos; i++)
            ps[i] = (mk_group_protocol_t){m->protos[i].name, m->protos[i].meta, m->protos[i].len};
        mk_group_join_t j = {.group_id = g->id, .member_id = m->member_id, .group_instance_id = m->instance_id,
                             .client_id = m->client_id, .client_host = m->client_host,
                             .protocol_type = "consumer", .session_timeout_ms = m->session_timeout_ms,
                             .rebalance_timeout_ms = m->rebalance_timeout_ms, .protocol_count = m->nprotos,
                             .protocols = ps};
        mk_group_classic_adopt(g, &j);
        mk_free(ps);
    }
    int32_t generation = cg->group_epoch;
    g->cg = NULL;
    g->type = MK_GROUP_CLASSIC;
    mk_group_cg_free(cg);
    mk_info("group %s: downgraded to a classic group (only classic members left)", g->id);
    mk_group_classic_start_rebalance(gc, g, generation, b);
}

/* Upgrade: a classic group whose members use the consumer protocol type
 * becomes a consumer group; its members become classic members of it with
 * the assignments they have.  Pending JoinGroup/SyncGroup answers get
 * REBALANCE_IN_PROGRESS.  Returns false (nothing changed) when it cannot. */
static bool upgrade(mk_group_coord_t *gc, group_t *g, const char *prefix, batch_t *b)
{
    if (!upgrade_enabled(gc) || !g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)
        return false;
    if (gc->cfg.cg_max_size > 0 && g->nmembers > gc->cfg.cg_max_size)
        return false;
    mk_cgroup_t *cg = cg_new(prefix);
    if (!cg)
        return false;
    mk_tenant_t tn = tenant_of(cg);
    cg->group_epoch = cg->assignment_epoch = g->generation;
    for (member_t *cm = g->members; cm; cm = cm->next) {
        cmember_t *m = member_new(cg, cm->member_id);
        if (!m) {
            mk_group_cg_free(cg);
            return false;
        }
        m->classic = true;
        m->epoch = m->prev_epoch = g->generation;
        m->instance_id = cm->instance_id ? mk_strdup(cm->instance_id) : NULL;
        m->client_id = mk_strdup(cm->client_id ? cm->client_id : "");
        m->client_host = mk_strdup(cm->client_host ? cm->client_host : "");
        m->session_timeout_ms = cm->session_timeout_ms;
        m->rebalance_timeout_ms = cm->rebalance_timeout_ms;
        m->protos = mk_calloc((size_t)(cm->nprotocols ? cm->nprotocols : 1), sizeof(cproto_t));
        for (int32_t i = 0; m->protos && i < cm->nprotocols; i++) {
            m->protos[i].name = mk_strdup(cm->proto_names[i]);
            m->protos[i].meta = mk_malloc((size_t)cm->proto_meta_len[i] + 1);
            if (m->protos[i].meta)
                memcpy(m->protos[i].meta, cm->proto_meta[i], (size_t)cm->proto_meta_len[i]);
            m->protos[i].len = cm->proto_meta_len[i];
            m->nprotos++;
        }
        /* subscription from the selected protocol's metadata, assignment from SyncGroup's */
        mk_arena_t a;
        mk_arena_init(&a);
        for (int32_t i = 0; i < cm->nprotocols; i++) {
            if (!g->protocol_name || strcmp(cm->proto_names[i], g->protocol_name) != 0 || cm->proto_meta_len[i] < 2)
                continue;
            mk_reader_t r;
            mk_rd_init(&r, cm->proto_meta[i], (size_t)cm->proto_meta_len[i]);
            int16_t ver = mk_rd_i16(&r);
            mk_ConsumerProtocolSubscription_t sub;
            if (ver >= 0 && mk_proto_decode(&mk_pmsg_ConsumerProtocolSubscription,
                                            ver > mk_pmsg_ConsumerProtocolSubscription.vmax
                                                ? mk_pmsg_ConsumerProtocolSubscription.vmax
                                                : ver,
                                            &r, &a, &sub) == 0) {
                const char **names = mk_arena_alloc(&a, sizeof(char *) * (size_t)(sub.Topics.count + 1));
                for (int32_t t = 0; names && t < sub.Topics.count; t++)
                    names[t] = mk_tenant_to_internal(&tn, sub.Topics.items[t].ptr ? sub.Topics.items[t].ptr : "", &a);
                if (names)
                    member_set_topics(m, sub.Topics.count, names);
            }
        }
        if (cm->assignment_len >= 2) {
            mk_reader_t r;
            mk_rd_init(&r, cm->assignment, (size_t)cm->assignment_len);
            int16_t ver = mk_rd_i16(&r);
            mk_ConsumerProtocolAssignment_t as;
            if (ver >= 0 && mk_proto_decode(&mk_pmsg_ConsumerProtocolAssignment,
                                            ver > mk_pmsg_ConsumerProtocolAssignment.vmax
                                                ? mk_pmsg_ConsumerProtocolAssignment.vmax
                                                : ver,
                                            &r, &a, &as) == 0) {
                for (int32_t t = 0; t < as.AssignedPartitions.count; t++) {
                    mk_ConsumerProtocolAssignment_TopicPartition_t *tp = &as.AssignedPartitions.items[t];
                    mk_topic_t *top = mk_cluster_topic_find(
                        gc->c, mk_tenant_to_internal(&tn, tp->Topic.ptr ? tp->Topic.ptr : "", &a));
                    for (int32_t p = 0; top && p < tp->Partitions.count; p++)
                        mk_gtps_add(&m->assigned, top->id, tp->Partitions.items[p]);
                }
                mk_gtps_sort(&m->assigned);
                mk_gtps_copy(&m->target, &m->assigned);
            }
        }
        mk_arena_free(&a);
        m->last_seen_ms = mk_group_now_ms();
    }
    /* answer what the classic group still had pending */
    for (member_t *cm = g->members; cm; cm = cm->next) {
        if (cm->join_cb) {
            mk_group_answer_join_error(b, cm->join_cb, cm->join_arg, MK_KERR_REBALANCE_IN_PROGRESS, cm->member_id);
            cm->join_cb = NULL;
        }
        if (cm->sync_cb) {
            answer_t *an = mk_group_batch_add(b);
            mk_group_sync_result_t r = {.error = MK_KERR_REBALANCE_IN_PROGRESS, .assignment = (const uint8_t *)""};
            if (an) {
                an->is_join = false;
                an->sync_cb = cm->sync_cb;
                an->arg = cm->sync_arg;
                an->sync = r;
            } else {
                cm->sync_cb(&r, cm->sync_arg);
            }
            cm->sync_cb = NULL;
        }
    }
    mk_group_classic_reset(g);
    g->type = MK_GROUP_CONSUMER;
    g->cg = cg;
    mk_arena_t a;
    mk_arena_init(&a);
    mk_topic_t **tv;
    int32_t nt;
    resolve_topics(gc, cg, &a, &tv, &nt, &cg->sig);
    mk_arena_free(&a);
    cg->assignor = default_assignor(gc);
    mk_info("group %s: classic group upgraded to a consumer group with %d members", g->id, cg->nmembers);
    return true;
}

/* ================================================================ removal */

/* Remove m (left, expired or fenced) and move the group on. */
static void remove_member(mk_group_coord_t *gc, group_t *g, cmember_t *m, const char *why, batch_t *b)
{
    mk_cgroup_t *cg = g->cg;
    mk_info("group %s: member %s %s", g->id, m->member_id, why);
    bool was_consumer = !m->classic;
    member_unlink(cg, m);
    member_free(m);
    bump(gc, g);
    if (was_consumer)
        maybe_downgrade(gc, g, b);
}

/* ================================================================ heartbeat */

/* Set the answer's error; returns false (so `return fail(...)` ends a step). */
static bool fail(mk_group_cg_result_t *out, mk_arena_t *a, int16_t err, const char *fmt, const char *arg)
{
    char quoted[201]; /* what the client sent, cut to a readable length */
    snprintf(quoted, sizeof(quoted), "%s", arg ? arg : "");
    out->error = err;
    out->error_message = fmt ? mk_arena_sprintf(a, fmt, quoted) : NULL;
    return false;
}

/* The assignment as the wire carries it: one entry per topic, in a. */
static void fill_tps(mk_arena_t *a, const mk_gtps_t *l, int32_t *count, const mk_group_tps_t **out)
{
    int32_t nt = 0;
    for (int32_t i = 0; i < l->n; i++)
        nt += i == 0 || memcmp(l->v[i].id, l->v[i - 1].id, 16) != 0;
    mk_group_tps_t *v = mk_arena_alloc(a, sizeof(*v) * (size_t)(nt + 1));
    int32_t *parts = mk_arena_alloc(a, sizeof(int32_t) * (size_t)(l->n + 1));
    *count = 0;
    *out = v;
    if (!v || !parts)
        return;
    int32_t k = -1;
    for (int32_t i = 0; i < l->n; i++) {
        if (i == 0 || memcmp(l->v[i].id, l->v[i - 1].id, 16) != 0) {
            k++;
            memcpy(v[k].topic_id, l->v[i].id, 16);
            v[k].partitions = &parts[i];
            v[k].count = 0;
        }
        parts[i] = l->v[i].partition;
        v[k].count++;
    }
    *count = nt;
}

static int owned_set(const mk_group_cg_heartbeat_t *hb, mk_gtps_t *out)
{
    for (int32_t i = 0; i < hb->owned_count; i++)
        for (int32_t p = 0; p < hb->owned[i].count; p++)
            if (mk_gtps_add(out, hb->owned[i].topic_id, hb->owned[i].partitions[p]) < 0)
                return MK_ERR_NOMEM;
    mk_gtps_sort(out);
    return 0;
}

static bool is_subset(const mk_gtps_t *a, const mk_gtps_t *b)
{
    for (int32_t i = 0; i < a->n; i++)
        if (!mk_gtps_has(b, a->v[i].id, a->v[i].partition))
            return false;
    return true;
}

/* The checks Kafka makes before it looks at the group. */
static bool heartbeat_valid(mk_group_coord_t *gc, const mk_group_cg_heartbeat_t *hb, mk_arena_t *a,
                            mk_group_cg_result_t *out)
{
    const char *mid = hb->member_id ? hb->member_id : "";
    if (hb->instance_id && !*hb->instance_id)
        return fail(out, a, MK_KERR_INVALID_REQUEST, "InstanceId can't be empty.", NULL);
    if (hb->rack_id && !*hb->rack_id)
        return fail(out, a, MK_KERR_INVALID_REQUEST, "RackId can't be empty.", NULL);
    if (hb->rebalance_timeout_ms < -1)
        return fail(out, a, MK_KERR_INVALID_REQUEST, "RebalanceTimeoutMs is invalid.", NULL);
    if (hb->member_epoch > 0 || hb->member_epoch == EPOCH_LEAVE) {
        if (!*mid)
            return fail(out, a, MK_KERR_INVALID_REQUEST, "MemberId can't be empty.", NULL);
    } else if (hb->member_epoch == 0) {
        if (hb->version >= 1 && !*mid)
            return fail(out, a, MK_KERR_INVALID_REQUEST, "MemberId can't be empty.", NULL);
        if (hb->rebalance_timeout_ms == -1)
            return fail(out, a, MK_KERR_INVALID_REQUEST, "RebalanceTimeoutMs must be provided in first request.",
                        NULL);
        if (!hb->owned_set || hb->owned_count != 0)
            return fail(out, a, MK_KERR_INVALID_REQUEST, "TopicPartitions must be empty when (re-)joining.", NULL);
        if (!hb->topics_set && !hb->regex)
            return fail(out, a, MK_KERR_INVALID_REQUEST,
                        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.", NULL);
    } else if (hb->member_epoch == EPOCH_LEAVE_STATIC) {
        if (!*mid)
            return fail(out, a, MK_KERR_INVALID_REQUEST, "MemberId can't be empty.", NULL);
        if (!hb->instance_id)
            return fail(out, a, MK_KERR_INVALID_REQUEST, "InstanceId can't be null.", NULL);
    } else {
        return fail(out, a, MK_KERR_INVALID_REQUEST, "MemberEpoch is invalid.", NULL);
    }
    const char *canon;
    if (hb->assignor && !assignor_enabled(gc, hb->assignor, &canon)) {
        out->error = MK_KERR_UNSUPPORTED_ASSIGNOR;
        out->error_message = mk_arena_sprintf(a, "ServerAssignor %.200s is not supported. Supported assignors: %.400s.",
                                              hb->assignor, gc->cfg.cg_assignors ? gc->cfg.cg_assignors : "uniform");
        return false;
    }
    if (hb->regex) {
        regex_t re;
        if (!*hb->regex || compile_regex(&re, hb->regex) < 0)
            return fail(out, a, MK_KERR_INVALID_REGULAR_EXPRESSION,
                        "SubscribedTopicRegex %s is not a valid regular expression.", hb->regex);
        regfree(&re);
    }
    return true;
}

static bool leave(mk_group_coord_t *gc, group_t *g, const mk_group_cg_heartbeat_t *hb, mk_arena_t *a,
                  mk_group_cg_result_t *out, batch_t *b)
{
    mk_cgroup_t *cg = g->cg;
    cmember_t *m = cg_member(cg, hb->member_id);
    if (!m) {
        if (hb->instance_id && cg_member_by_instance(cg, hb->instance_id))
            return fail(out, a, MK_KERR_FENCED_INSTANCE_ID, "Instance %s is used by another member.", hb->instance_id);
        return fail(out, a, MK_KERR_UNKNOWN_MEMBER_ID, "Member %s is not a member of the group.", hb->member_id);
    }
    if (hb->instance_id && !str_eq_null(m->instance_id, hb->instance_id))
        return fail(out, a, MK_KERR_FENCED_INSTANCE_ID, "Instance %s is used by another member.", hb->instance_id);
    out->member_id = mk_arena_strndup(a, m->member_id, strlen(m->member_id));
    out->member_epoch = hb->member_epoch;
    out->heartbeat_interval_ms = 0; /* Kafka answers a leave without one */
    if (hb->member_epoch == EPOCH_LEAVE_STATIC && m->instance_id) {
        /* Away for now: it keeps its assignment until its session ends. */
        mk_info("group %s: static member %s (%s) left for now", g->id, m->member_id, m->instance_id);
        m->epoch = EPOCH_LEAVE_STATIC;
        m->last_seen_ms = mk_group_now_ms();
        return true;
    }
    remove_member(gc, g, m, "left", b);
    return true;
}

static bool heartbeat_locked(mk_group_coord_t *gc, const mk_group_cg_heartbeat_t *hb, mk_arena_t *a,
                             mk_group_cg_result_t *out, batch_t *b)
{
    const mk_group_config_t *cfg = &gc->cfg;
    const char *mid = hb->member_id ? hb->member_id : "";
    if (!heartbeat_valid(gc, hb, a, out))
        return false;
    group_t *g = mk_group_get(gc, hb->group_id, false);
    if (g && g->type == MK_GROUP_CLASSIC) {
        bool empty = g->nmembers == 0 && !g->pending && g->state == ST_EMPTY;
        if (hb->member_epoch == 0 && empty) {
            mk_cgroup_t *cg = cg_new(hb->tenant_prefix);
            if (!cg)
                return fail(out, a, MK_KERR_UNKNOWN_SERVER_ERROR, NULL, NULL);
            mk_info("group %s: empty classic group converted to a consumer group", g->id);
            mk_group_classic_reset(g);
            g->type = MK_GROUP_CONSUMER;
            g->cg = cg;
        } else if (hb->member_epoch != 0 || empty || !upgrade(gc, g, hb->tenant_prefix, b)) {
            return fail(out, a, MK_KERR_GROUP_ID_NOT_FOUND, "Group %s is not a consumer group.", hb->group_id);
        }
    }
    if (!g) {
        if (hb->member_epoch != 0)
            return fail(out, a, MK_KERR_GROUP_ID_NOT_FOUND, "Consumer group %s not found.", hb->group_id);
        g = mk_group_get(gc, hb->group_id, true);
        mk_cgroup_t *cg = g ? cg_new(hb->tenant_prefix) : NULL;
        if (!cg)
            return fail(out, a, MK_KERR_UNKNOWN_SERVER_ERROR, NULL, NULL);
        g->type = MK_GROUP_CONSUMER;
        g->cg = cg;
    }
    mk_cgroup_t *cg = g->cg;
    if (hb->member_epoch == EPOCH_LEAVE || hb->member_epoch == EPOCH_LEAVE_STATIC)
        return leave(gc, g, hb, a, out, b);

    /* find or make the member */
    cmember_t *m = *mid ? cg_member(cg, mid) : NULL;
    bool is_new = false;
    if (hb->member_epoch == 0) {
        cmember_t *st = cg_member_by_instance(cg, hb->instance_id);
        if (st && st != m) {
            if (m) /* a member id in use by another member */
                return fail(out, a, MK_KERR_FENCED_INSTANCE_ID, "Member %s has another instance id.", mid);
            if (st->epoch != EPOCH_LEAVE_STATIC)
                return fail(out, a, MK_KERR_UNRELEASED_INSTANCE_ID,
                            "Static member with instance id %s is still in the group; it must leave first.",
                            hb->instance_id);
            /* A new member takes over the static member that left for now. */
            char *nid = *mid ? mk_strdup(mid) : new_uuid_id();
            if (!nid)
                return fail(out, a, MK_KERR_UNKNOWN_SERVER_ERROR, NULL, NULL);
            mk_info("group %s: static member %s replaced by %s", g->id, st->instance_id, nid);
            mk_free(st->member_id);
            st->member_id = nid;
            st->epoch = 0;
            st->classic = false;
            m = st;
        } else if (m && hb->instance_id && !str_eq_null(m->instance_id, hb->instance_id)) {
            return fail(out, a, MK_KERR_FENCED_INSTANCE_ID, "Member %s has another instance id.", mid);
        } else if (!m) {
            if (cfg->cg_max_size > 0 && cg->nmembers >= cfg->cg_max_size)
                return fail(out, a, MK_KERR_GROUP_MAX_SIZE_REACHED, "The consumer group has reached its maximum size.",
                            NULL);
            m = member_new(cg, *mid ? mid : NULL);
            if (!m)
                return fail(out, a, MK_KERR_UNKNOWN_SERVER_ERROR, NULL, NULL);
            is_new = true;
            m->instance_id = hb->instance_id ? mk_strdup(hb->instance_id) : NULL;
            mk_info("group %s: member %s joins%s%s", g->id, m->member_id, hb->instance_id ? " as " : "",
                    hb->instance_id ? hb->instance_id : "");
        } else {
            m->classic = false; /* a classic member may switch to the consumer protocol */
            if (m->epoch == EPOCH_LEAVE_STATIC)
                m->epoch = 0; /* a static member back with its own member id */
        }
    } else {
        if (!m) {
            if (hb->instance_id && cg_member_by_instance(cg, hb->instance_id))
                return fail(out, a, MK_KERR_FENCED_INSTANCE_ID, "Instance %s is used by another member.",
                            hb->instance_id);
            return fail(out, a, MK_KERR_UNKNOWN_MEMBER_ID, "Member %s is not a member of the group.", mid);
        }
        if (hb->instance_id && !str_eq_null(m->instance_id, hb->instance_id))
            return fail(out, a, MK_KERR_FENCED_INSTANCE_ID, "Member %s has another instance id.", mid);
        if (m->classic)
            return fail(out, a, MK_KERR_UNKNOWN_MEMBER_ID, "Member %s uses the classic protocol.", mid);
    }
    mk_gtps_t owned = {0};
    if (hb->owned_set && owned_set(hb, &owned) < 0) {
        mk_gtps_free(&owned);
        return fail(out, a, MK_KERR_UNKNOWN_SERVER_ERROR, NULL, NULL);
    }
    if (hb->member_epoch > 0) {
        bool ok = hb->member_epoch == m->epoch ||
                  (hb->member_epoch < m->epoch && hb->member_epoch == m->prev_epoch && hb->owned_set &&
                   is_subset(&owned, &m->assigned));
        if (!ok) {
            mk_gtps_free(&owned);
            char buf[96];
            snprintf(buf, sizeof(buf), "%d (the member's is %d)", hb->member_epoch, m->epoch);
            return fail(out, a, MK_KERR_FENCED_MEMBER_EPOCH, "The member epoch %s is fenced.", buf);
        }
    }

    /* update the member */
    bool changed = is_new;
    if (hb->rebalance_timeout_ms >= 0)
        m->rebalance_timeout_ms = hb->rebalance_timeout_ms;
    m->session_timeout_ms = cfg->cg_session_timeout_ms;
    if (hb->rack_id)
        set_str(&m->rack_id, hb->rack_id);
    set_str(&m->client_id, hb->client_id ? hb->client_id : "");
    set_str(&m->client_host, hb->client_host ? hb->client_host : "");
    if (hb->topics_set && (is_new || !topics_same(m, hb->topic_count, hb->topics))) {
        member_set_topics(m, hb->topic_count, hb->topics);
        changed = true;
    }
    if (hb->regex && !str_eq_null(m->regex, hb->regex)) {
        if (m->regex)
            regfree(&m->re);
        mk_free(m->regex);
        m->regex = mk_strdup(hb->regex);
        if (m->regex && compile_regex(&m->re, m->regex) < 0) {
            mk_free(m->regex);
            m->regex = NULL;
        }
        changed = true;
    }
    if (hb->assignor) {
        const char *canon = hb->assignor;
        mk_group_assignor_find(hb->assignor, &canon);
        if (!str_eq_null(m->assignor, canon)) {
            set_str(&m->assignor, canon);
            changed = true;
        }
    }
    m->last_seen_ms = mk_group_now_ms();
    if (!changed) {
        /* the subscribed topics may have changed (created, deleted, grown) */
        mk_arena_t ta;
        mk_arena_init(&ta);
        mk_topic_t **tv;
        int32_t nt;
        uint64_t sig;
        if (resolve_topics(gc, cg, &ta, &tv, &nt, &sig) == 0 && sig != cg->sig)
            changed = true;
        mk_arena_free(&ta);
    }
    if (changed)
        bump(gc, g);
    mk_gtps_t before = {0};
    mk_gtps_copy(&before, &m->assigned);
    reconcile(cg, m, hb->owned_set ? &owned : NULL);
    mk_gtps_free(&owned);

    out->member_id = mk_arena_strndup(a, m->member_id, strlen(m->member_id));
    out->member_epoch = m->epoch;
    bool full = hb->member_epoch == 0 || (hb->rebalance_timeout_ms != -1 && hb->topics_set && hb->owned_set);
    if (full || !mk_gtps_equal(&before, &m->assigned)) {
        out->has_assignment = true;
        fill_tps(a, &m->assigned, &out->assignment_count, &out->assignment);
    }
    mk_gtps_free(&before);
    return true;
}

void mk_group_cg_heartbeat(mk_group_coord_t *gc, const mk_group_cg_heartbeat_t *hb, mk_arena_t *a,
                           mk_group_cg_result_t *out)
{
    memset(out, 0, sizeof(*out));
    out->member_id = hb->member_id ? hb->member_id : "";
    out->member_epoch = hb->member_epoch;
    out->heartbeat_interval_ms = gc->cfg.cg_heartbeat_interval_ms;
    batch_t b;
    mk_group_batch_init(&b);
    heartbeat_locked(gc, hb, a, out, &b);
    if (out->error) {
        out->member_id = out->member_id && *out->member_id ? out->member_id : NULL;
        out->has_assignment = false;
    }
    mk_group_batch_run(&b);
}

/* ==================================================================== tick */

void mk_group_cg_tick(mk_group_coord_t *gc, group_t *g, uint64_t now, batch_t *b)
{
    for (bool again = true; again && g->type == MK_GROUP_CONSUMER;) {
        again = false;
        for (cmember_t *m = g->cg->members; m; m = m->next) {
            if (now - m->last_seen_ms > (uint64_t)(m->session_timeout_ms > 0 ? m->session_timeout_ms : 0)) {
                char why[96];
                snprintf(why, sizeof(why), "expired (session timeout %d ms)", m->session_timeout_ms);
                remove_member(gc, g, m, why, b);
                again = true;
                break;
            }
            if (m->state == CM_UNREVOKED && m->revoke_deadline_ms && now >= m->revoke_deadline_ms) {
                char why[96];
                snprintf(why, sizeof(why), "fenced: did not revoke within its rebalance timeout (%d ms)",
                         m->rebalance_timeout_ms);
                remove_member(gc, g, m, why, b);
                again = true;
                break;
            }
        }
    }
}

/* ================================================================= offsets */

int16_t mk_group_cg_offset_check(group_t *g, const char *member_id, int32_t epoch, bool commit)
{
    mk_cgroup_t *cg = g->cg;
    if (!cg)
        return 0;
    if (commit && epoch < 0 && cg->nmembers == 0)
        return 0;
    if (!commit && (!member_id || !*member_id) && epoch < 0)
        return 0;
    cmember_t *m = cg_member(cg, member_id);
    if (!m)
        return MK_KERR_UNKNOWN_MEMBER_ID;
    if (epoch != m->epoch)
        return m->classic ? MK_KERR_ILLEGAL_GENERATION : MK_KERR_STALE_MEMBER_EPOCH;
    return 0;
}

int16_t mk_group_commit_version_check(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                                      int16_t version)
{
    group_t *g = version < 9 ? mk_group_get(gc, group_id, false) : NULL;
    if (!g || g->type != MK_GROUP_CONSUMER || !member_id || !*member_id)
        return 0;
    cmember_t *m = cg_member(g->cg, member_id);
    return m && !m->classic ? MK_KERR_UNSUPPORTED_VERSION : 0;
}

int16_t mk_group_offset_fetch_check(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                                    int32_t member_epoch)
{
    group_t *g = mk_group_get(gc, group_id, false);
    if (!g || g->type != MK_GROUP_CONSUMER)
        return 0;
    return mk_group_cg_offset_check(g, member_id, member_epoch, false);
}

bool mk_group_cg_subscribes(group_t *g, const char *topic)
{
    if (!g->cg)
        return false;
    for (cmember_t *m = g->cg->members; m; m = m->next) {
        if (has_topic(m, topic))
            return true;
        mk_tenant_t tn = tenant_of(g->cg);
        if (m->regex && mk_tenant_visible(&tn, topic) &&
            regexec(&m->re, mk_tenant_to_external(&tn, topic), 0, NULL, 0) == 0)
            return true;
    }
    return false;
}

/* ================================================================ describe */

void mk_group_cg_describe(mk_group_coord_t *gc, const char *group_id, mk_group_cg_desc_cb cb, void *arg)
{
    group_t *g = mk_group_get(gc, group_id, false);
    mk_arena_t a;
    mk_arena_init(&a);
    mk_group_cg_desc_t d = {0};
    if (!g || g->type != MK_GROUP_CONSUMER) {
        d.error = MK_KERR_GROUP_ID_NOT_FOUND;
        d.error_message = g ? "Group is not a consumer group." : "Group not found.";
        d.state = "Dead";
        d.assignor = "";
        cb(&d, arg);
        mk_arena_free(&a);
        return;
    }
    mk_cgroup_t *cg = g->cg;
    d.state = mk_group_cg_state(g);
    d.group_epoch = cg->group_epoch;
    d.assignment_epoch = cg->assignment_epoch;
    d.assignor = cg->assignor ? cg->assignor : default_assignor(gc);
    mk_group_cg_member_t *ms = mk_arena_alloc(&a, sizeof(*ms) * (size_t)(cg->nmembers + 1));
    int32_t k = 0;
    for (cmember_t *m = cg->members; ms && m; m = m->next, k++) {
        mk_group_cg_member_t *o = &ms[k];
        memset(o, 0, sizeof(*o));
        o->member_id = m->member_id;
        o->instance_id = m->instance_id;
        o->rack_id = m->rack_id;
        o->client_id = m->client_id ? m->client_id : "";
        o->client_host = m->client_host ? m->client_host : "";
        o->member_epoch = m->epoch;
        o->topic_count = m->ntopics;
        o->topics = (const char *const *)m->topics;
        o->regex = m->regex;
        fill_tps(&a, &m->assigned, &o->assigned_count, &o->assigned);
        fill_tps(&a, &m->target, &o->target_count, &o->target);
    }
    d.member_count = ms ? k : 0;
    d.members = ms;
    cb(&d, arg);
    mk_arena_free(&a);
}

/* ConsumerProtocolAssignment v0 of l (the tenant's names), in a. */
static int encode_assignment(mk_group_coord_t *gc, const mk_cgroup_t *cg, const mk_gtps_t *l, mk_arena_t *a,
                             const uint8_t **out, int32_t *len)
{
    mk_tenant_t tn = tenant_of(cg);
    int32_t nt = 0;
    const mk_group_tps_t *tps;
    fill_tps(a, l, &nt, &tps);
    mk_ConsumerProtocolAssignment_t as = {0};
    as.AssignedPartitions.items = mk_arena_alloc(a, sizeof(*as.AssignedPartitions.items) * (size_t)(nt + 1));
    if (!as.AssignedPartitions.items)
        return MK_ERR_NOMEM;
    int32_t k = 0;
    for (int32_t i = 0; i < nt; i++) {
        mk_topic_t *t = mk_cluster_topic_find_id(gc->c, tps[i].topic_id);
        if (!t)
            continue;
        as.AssignedPartitions.items[k].Topic = mk_str(mk_tenant_to_external(&tn, t->name));
        as.AssignedPartitions.items[k].Partitions.items = (int32_t *)tps[i].partitions;
        as.AssignedPartitions.items[k].Partitions.count = tps[i].count;
        k++;
    }
    as.AssignedPartitions.count = k;
    as.UserData.ptr = NULL;
    mk_buf_t w;
    mk_buf_init(&w);
    mk_buf_put_i16(&w, 0);
    int rc = mk_proto_encode(&mk_pmsg_ConsumerProtocolAssignment, 0, &as, &w);
    if (rc == 0 && !w.oom) {
        uint8_t *p = mk_arena_alloc(a, w.len + 1);
        if (p) {
            memcpy(p, w.data, w.len);
            *out = p;
            *len = (int32_t)w.len;
        } else {
            rc = MK_ERR_NOMEM;
        }
    }
    mk_buf_free(&w);
    return rc < 0 ? rc : (w.oom ? MK_ERR_NOMEM : 0);
}

/* ConsumerProtocolSubscription v0 of a member's topic names, in a. */
static void encode_subscription(const mk_cgroup_t *cg, const cmember_t *m, mk_arena_t *a, const uint8_t **out,
                                int32_t *len)
{
    mk_tenant_t tn = tenant_of(cg);
    mk_ConsumerProtocolSubscription_t sub = {0};
    sub.Topics.items = mk_arena_alloc(a, sizeof(mk_str_t) * (size_t)(m->ntopics + 1));
    *out = (const uint8_t *)"";
    *len = 0;
    if (!sub.Topics.items)
        return;
    for (int32_t i = 0; i < m->ntopics; i++)
        sub.Topics.items[i] = mk_str(mk_tenant_to_external(&tn, m->topics[i]));
    sub.Topics.count = m->ntopics;
    mk_buf_t w;
    mk_buf_init(&w);
    mk_buf_put_i16(&w, 0);
    if (mk_proto_encode(&mk_pmsg_ConsumerProtocolSubscription, 0, &sub, &w) == 0 && !w.oom) {
        uint8_t *p = mk_arena_alloc(a, w.len + 1);
        if (p) {
            memcpy(p, w.data, w.len);
            *out = p;
            *len = (int32_t)w.len;
        }
    }
    mk_buf_free(&w);
}

void mk_group_cg_describe_classic(mk_group_coord_t *gc, group_t *g, mk_group_desc_cb cb, void *arg)
{
    mk_cgroup_t *cg = g->cg;
    mk_arena_t a;
    mk_arena_init(&a);
    mk_group_member_info_t *mi = mk_arena_alloc(&a, sizeof(*mi) * (size_t)(cg->nmembers + 1));
    int32_t k = 0;
    for (cmember_t *m = cg->members; mi && m; m = m->next, k++) {
        memset(&mi[k], 0, sizeof(mi[k]));
        mi[k].member_id = m->member_id;
        mi[k].group_instance_id = m->instance_id;
        mi[k].client_id = m->client_id ? m->client_id : "";
        mi[k].client_host = m->client_host ? m->client_host : "";
        encode_subscription(cg, m, &a, &mi[k].metadata, &mi[k].metadata_len);
        mi[k].assignment = (const uint8_t *)"";
        encode_assignment(gc, cg, &m->assigned, &a, &mi[k].assignment, &mi[k].assignment_len);
    }
    mk_group_desc_t d = {g->id, mk_group_cg_state(g), "consumer", cg->assignor ? cg->assignor : "",
                         mi ? k : 0, mi, "consumer"};
    cb(&d, arg);
    mk_arena_free(&a);
}

/* ===================================================== classic members here */

static void answer_sync_now(batch_t *b, mk_group_sync_cb cb, void *arg, int16_t err, const char *ptype,
                            const char *pname, const uint8_t *asg, int32_t asg_len)
{
    mk_group_sync_result_t r = {err, ptype, pname, asg ? asg : (const uint8_t *)"", asg ? asg_len : 0};
    answer_t *an = mk_group_batch_add(b);
    if (!an) {
        cb(&r, arg);
        return;
    }
    an->is_join = false;
    an->sync_cb = cb;
    an->arg = arg;
    an->sync = r;
    an->sync.protocol_type = mk_group_batch_dup(b, ptype);
    an->sync.protocol_name = mk_group_batch_dup(b, pname);
    an->sync.assignment = mk_group_batch_dupb(b, asg, asg_len);
}

static cmember_t *classic_member(mk_cgroup_t *cg, const char *member_id, const char *instance_id, int16_t *err)
{
    cmember_t *m = cg_member(cg, member_id);
    *err = 0;
    if (!m && instance_id && cg_member_by_instance(cg, instance_id))
        *err = MK_KERR_FENCED_INSTANCE_ID;
    else if (!m)
        *err = MK_KERR_UNKNOWN_MEMBER_ID;
    else if (instance_id && !str_eq_null(m->instance_id, instance_id))
        *err = MK_KERR_FENCED_INSTANCE_ID;
    else if (!m->classic)
        *err = MK_KERR_UNKNOWN_MEMBER_ID;
    return *err ? NULL : m;
}

void mk_group_cg_classic_join(mk_group_coord_t *gc, group_t *g, const mk_group_join_t *j, mk_group_join_cb cb,
                              void *arg, batch_t *b)
{
    mk_cgroup_t *cg = g->cg;
    const char *mid = j->member_id ? j->member_id : "";
    if (!j->protocol_type || strcmp(j->protocol_type, "consumer") != 0 || j->protocol_count <= 0) {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
        return;
    }
    mk_arena_t a;
    mk_arena_init(&a);
    mk_tenant_t tn = tenant_of(cg);
    /* the subscription and owned partitions of its first protocol */
    mk_ConsumerProtocolSubscription_t sub;
    memset(&sub, 0, sizeof(sub));
    mk_reader_t r;
    int32_t mlen = j->protocols[0].metadata_len > 0 ? j->protocols[0].metadata_len : 0;
    mk_rd_init(&r, j->protocols[0].metadata, (size_t)mlen);
    int16_t ver = mk_rd_i16(&r);
    const mk_pmsg_t *pm = &mk_pmsg_ConsumerProtocolSubscription;
    if (!mk_rd_ok(&r) || ver < 0 || mk_proto_decode(pm, ver > pm->vmax ? pm->vmax : ver, &r, &a, &sub) < 0) {
        mk_arena_free(&a);
        mk_group_answer_join_error(b, cb, arg, MK_KERR_INCONSISTENT_GROUP_PROTOCOL, mid);
        return;
    }
    cmember_t *m = *mid ? cg_member(cg, mid) : NULL;
    if (!m && j->group_instance_id) {
        cmember_t *st = cg_member_by_instance(cg, j->group_instance_id);
        if (st && *mid) {
            mk_arena_free(&a);
            mk_group_answer_join_error(b, cb, arg, MK_KERR_FENCED_INSTANCE_ID, mid);
            return;
        }
        if (st) { /* a static member comes back with a new member id */
            char *nid = new_uuid_id();
            if (nid) {
                mk_free(st->member_id);
                st->member_id = nid;
                if (st->epoch < 0)
                    st->epoch = 0;
                m = st;
            }
        }
    }
    if (m && !m->classic) {
        mk_arena_free(&a);
        mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_MEMBER_ID, mid);
        return;
    }
    bool is_new = false;
    if (!m) {
        if (!*mid && j->require_known_member_id && !j->group_instance_id) {
            char *nid = new_uuid_id();
            mk_group_answer_join_error(b, cb, arg, MK_KERR_MEMBER_ID_REQUIRED, nid ? nid : "");
            mk_free(nid);
            mk_arena_free(&a);
            return;
        }
        if (gc->cfg.cg_max_size > 0 && cg->nmembers >= gc->cfg.cg_max_size) {
            mk_arena_free(&a);
            mk_group_answer_join_error(b, cb, arg, MK_KERR_GROUP_MAX_SIZE_REACHED, mid);
            return;
        }
        m = member_new(cg, *mid ? mid : NULL);
        if (!m) {
            mk_arena_free(&a);
            mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, mid);
            return;
        }
        m->classic = true;
        m->instance_id = j->group_instance_id ? mk_strdup(j->group_instance_id) : NULL;
        is_new = true;
        mk_info("group %s: classic member %s joins the consumer group", g->id, m->member_id);
    }
    m->session_timeout_ms = j->session_timeout_ms;
    m->rebalance_timeout_ms = j->rebalance_timeout_ms > 0 ? j->rebalance_timeout_ms : j->session_timeout_ms;
    set_str(&m->client_id, j->client_id ? j->client_id : "");
    set_str(&m->client_host, j->client_host ? j->client_host : "");
    member_free_protos(m);
    m->protos = mk_calloc((size_t)j->protocol_count, sizeof(cproto_t));
    for (int32_t i = 0; m->protos && i < j->protocol_count; i++) {
        int32_t len = j->protocols[i].metadata_len > 0 ? j->protocols[i].metadata_len : 0;
        m->protos[i].name = mk_strdup(j->protocols[i].name ? j->protocols[i].name : "");
        m->protos[i].meta = mk_malloc((size_t)len + 1);
        if (m->protos[i].meta && len)
            memcpy(m->protos[i].meta, j->protocols[i].metadata, (size_t)len);
        m->protos[i].len = len;
        m->nprotos++;
    }
    const char **names = mk_arena_alloc(&a, sizeof(char *) * (size_t)(sub.Topics.count + 1));
    for (int32_t i = 0; names && i < sub.Topics.count; i++)
        names[i] = mk_tenant_to_internal(&tn, sub.Topics.items[i].ptr ? sub.Topics.items[i].ptr : "", &a);
    bool changed = is_new;
    if (names && (is_new || !topics_same(m, sub.Topics.count, names))) {
        member_set_topics(m, sub.Topics.count, names);
        changed = true;
    }
    mk_gtps_t owned = {0};
    for (int32_t i = 0; i < sub.OwnedPartitions.count; i++) {
        mk_ConsumerProtocolSubscription_TopicPartition_t *tp = &sub.OwnedPartitions.items[i];
        const char *name = mk_tenant_to_internal(&tn, tp->Topic.ptr ? tp->Topic.ptr : "", &a);
        mk_topic_t *t = mk_cluster_topic_find(gc->c, name);
        for (int32_t p = 0; t && p < tp->Partitions.count; p++)
            mk_gtps_add(&owned, t->id, tp->Partitions.items[p]);
    }
    mk_gtps_sort(&owned);
    m->last_seen_ms = mk_group_now_ms();
    if (changed)
        bump(gc, g);
    /* A classic client owns only what it reports; eager ones report none. */
    reconcile(cg, m, &owned);
    if (m->state == CM_UNREVOKED) /* a rejoin means it revoked what it did not report */
        reconcile(cg, m, &owned);
    mk_gtps_free(&owned);
    answer_t *an = mk_group_batch_add(b);
    if (an) {
        an->is_join = true;
        an->join_cb = cb;
        an->arg = arg;
        an->join.generation = m->epoch;
        an->join.protocol_type = "consumer";
        an->join.protocol_name = mk_group_batch_dup(b, m->nprotos ? m->protos[0].name : "");
        an->join.leader = "";
        an->join.member_id = mk_group_batch_dup(b, m->member_id);
    } else {
        mk_group_answer_join_error(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, m->member_id);
    }
    mk_arena_free(&a);
}

void mk_group_cg_classic_sync(mk_group_coord_t *gc, group_t *g, const mk_group_sync_t *s, mk_group_sync_cb cb,
                              void *arg, batch_t *b)
{
    int16_t err;
    cmember_t *m = classic_member(g->cg, s->member_id, s->group_instance_id, &err);
    if (!m) {
        answer_sync_now(b, cb, arg, err, NULL, NULL, NULL, 0);
        return;
    }
    if (s->generation != m->epoch) {
        answer_sync_now(b, cb, arg, MK_KERR_ILLEGAL_GENERATION, NULL, NULL, NULL, 0);
        return;
    }
    const char *pname = m->nprotos ? m->protos[0].name : "";
    if ((s->protocol_type && strcmp(s->protocol_type, "consumer") != 0) ||
        (s->protocol_name && strcmp(s->protocol_name, pname) != 0)) {
            answer_sync_now(b, cb, arg, MK_KERR_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL, NULL, 0);
            return;
        }
    if (m->epoch < g->cg->group_epoch || m->state == CM_UNREVOKED) {
        answer_sync_now(b, cb, arg, MK_KERR_REBALANCE_IN_PROGRESS, NULL, NULL, NULL, 0);
        return;
    }
    m->last_seen_ms = mk_group_now_ms();
    mk_arena_t a;
    mk_arena_init(&a);
    const uint8_t *asg = NULL;
    int32_t len = 0;
    if (encode_assignment(gc, g->cg, &m->assigned, &a, &asg, &len) < 0)
        answer_sync_now(b, cb, arg, MK_KERR_UNKNOWN_SERVER_ERROR, NULL, NULL, NULL, 0);
    else
        answer_sync_now(b, cb, arg, 0, "consumer", pname, asg, len);
    mk_arena_free(&a);
}

int16_t mk_group_cg_classic_heartbeat(mk_group_coord_t *gc, group_t *g, const char *member_id,
                                      const char *instance_id, int32_t generation)
{
    (void)gc;
    int16_t err;
    mk_cgroup_t *cg = g->cg;
    cmember_t *m = classic_member(cg, member_id, instance_id, &err);
    if (!m)
        return err;
    if (generation != m->epoch)
        return MK_KERR_ILLEGAL_GENERATION;
    m->last_seen_ms = mk_group_now_ms();
    if (m->epoch < cg->group_epoch || m->state == CM_UNREVOKED ||
        (m->state == CM_UNRELEASED && unreleased_now_free(cg, m))) {
        if (m->state == CM_UNREVOKED && !m->revoke_deadline_ms)
            m->revoke_deadline_ms = mk_group_now_ms() + (uint64_t)m->rebalance_timeout_ms;
        return MK_KERR_REBALANCE_IN_PROGRESS;
    }
    return 0;
}

int16_t mk_group_cg_classic_leave(mk_group_coord_t *gc, group_t *g, const char *member_id, const char *instance_id,
                                  batch_t *b)
{
    mk_cgroup_t *cg = g->cg;
    cmember_t *m = member_id && *member_id ? cg_member(cg, member_id) : cg_member_by_instance(cg, instance_id);
    if (!m) {
        if (member_id && *member_id && cg_member_by_instance(cg, instance_id))
            return MK_KERR_FENCED_INSTANCE_ID;
        return MK_KERR_UNKNOWN_MEMBER_ID;
    }
    if (instance_id && !str_eq_null(m->instance_id, instance_id))
        return MK_KERR_FENCED_INSTANCE_ID;
    remove_member(gc, g, m, "left (LeaveGroup)", b);
    return 0;
}
