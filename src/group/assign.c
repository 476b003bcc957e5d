/*
 * assign.c -- the server-side assignors of KIP-848 consumer groups, and the
 * sorted topic-partition sets that consumer.c keeps per member.
 *
 * An assignor maps the partitions of the topics the members subscribe to
 * onto the members; every partition of a subscribed topic goes to exactly
 * one member that subscribes to it.  Both are pure and deterministic (same
 * input, same output), so every coordinator computes the same target.
 *
 *   uniform  (the default, as in Kafka): balanced and sticky.  It starts from
 *            each member's present target (what it still subscribes to and
 *            still exists), gives every unowned partition to the eligible
 *            member with the fewest, then moves partitions from a member to an
 *            eligible one that has at least two fewer until no such move is
 *            left.  With identical subscriptions the counts then differ by at
 *            most one and a member only loses what balance requires.
 *   range    per topic (in name order), the members subscribed to it in order
 *            (instance id, else member id) take contiguous ranges; the first (partitions % members)
 *            take one more.  Co-partitioned topics line up (partition i of
 *            each goes to the same member), which is what range is chosen for.
 *            It does not look at the present target.
 */
#include "group/group_int.h"

#include <stdlib.h>
#include <string.h>

/* ===================================================== topic-partition sets */

int mk_gtp_cmp(const mk_gtp_t *a, const mk_gtp_t *b)
{
    int c = memcmp(a->id, b->id, 16);
    if (c)
        return c;
    return a->partition < b->partition ? -1 : a->partition > b->partition;
}

static int gtp_qcmp(const void *a, const void *b) { return mk_gtp_cmp(a, b); }

void mk_gtps_free(mk_gtps_t *l)
{
    mk_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

void mk_gtps_clear(mk_gtps_t *l) { l->n = 0; }

int mk_gtps_add(mk_gtps_t *l, const uint8_t id[16], int32_t partition)
{
    if (l->n == l->cap) {
        int32_t cap = l->cap ? l->cap * 2 : 8;
        mk_gtp_t *v = mk_realloc(l->v, sizeof(*v) * (size_t)cap);
        if (!v)
            return MK_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n].id, id, 16);
    l->v[l->n].partition = partition;
    l->n++;
    return 0;
}

void mk_gtps_sort(mk_gtps_t *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, (size_t)l->n, sizeof(*l->v), gtp_qcmp);
    int32_t k = 1;
    for (int32_t i = 1; i < l->n; i++)
        if (mk_gtp_cmp(&l->v[i], &l->v[k - 1]) != 0)
            l->v[k++] = l->v[i];
    l->n = k;
}

bool mk_gtps_has(const mk_gtps_t *l, const uint8_t id[16], int32_t partition)
{
    mk_gtp_t key;
    memcpy(key.id, id, 16);
    key.partition = partition;
    int32_t lo = 0, hi = l->n - 1;
    while (lo <= hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = mk_gtp_cmp(&l->v[mid], &key);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

bool mk_gtps_equal(const mk_gtps_t *a, const mk_gtps_t *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, sizeof(*a->v) * (size_t)a->n) == 0);
}

int mk_gtps_copy(mk_gtps_t *dst, const mk_gtps_t *src)
{
    if (dst == src)
        return 0;
    mk_gtps_clear(dst);
    for (int32_t i = 0; i < src->n; i++)
        if (mk_gtps_add(dst, src->v[i].id, src->v[i].partition) < 0)
            return MK_ERR_NOMEM;
    return 0;
}

/* ================================================================= helpers */

static int topic_index(const mk_asg_topic_t *topics, int32_t ntopics, const uint8_t id[16])
{
    for (int32_t i = 0; i < ntopics; i++)
        if (memcmp(topics[i].id, id, 16) == 0)
            return i;
    return -1;
}

static const mk_asg_member_t *qsort_members;
static const char *order_key(const mk_asg_member_t *m) { return m->instance_id ? m->instance_id : m->member_id; }
static int member_order_cmp(const void *a, const void *b)
{
    const mk_asg_member_t *x = &qsort_members[*(const int32_t *)a], *y = &qsort_members[*(const int32_t *)b];
    int c = strcmp(order_key(x), order_key(y));
    return c ? c : strcmp(x->member_id, y->member_id);
}

/* Member indexes in order: instance id (static members), else member id;
 * the one order both assignors use. */
static int32_t *members_sorted(const mk_asg_member_t *members, int32_t n)
{
    int32_t *ix = mk_malloc(sizeof(*ix) * (size_t)(n ? n : 1));
    if (!ix)
        return NULL;
    for (int32_t i = 0; i < n; i++)
        ix[i] = i;
    qsort_members = members; /* loop thread only; qsort has no context argument in C11 */
    qsort(ix, (size_t)n, sizeof(*ix), member_order_cmp);
    qsort_members = NULL;
    return ix;
}

/* =================================================================== range */

int mk_group_assign_range(const mk_asg_topic_t *topics, int32_t ntopics, mk_asg_member_t *members, int32_t nmembers)
{
    for (int32_t i = 0; i < nmembers; i++)
        mk_gtps_clear(&members[i].out);
    int32_t *ix = members_sorted(members, nmembers);
    if (!ix)
        return MK_ERR_NOMEM;
    int rc = 0;
    for (int32_t t = 0; t < ntopics && rc == 0; t++) {
        int32_t subs = 0;
        for (int32_t k = 0; k < nmembers; k++)
            subs += members[ix[k]].subscribed[t];
        if (subs == 0)
            continue;
        int32_t per = topics[t].partitions / subs, extra = topics[t].partitions % subs, next = 0, seen = 0;
        for (int32_t k = 0; k < nmembers && rc == 0; k++) {
            mk_asg_member_t *m = &members[ix[k]];
            if (!m->subscribed[t])
                continue;
            int32_t take = per + (seen++ < extra ? 1 : 0);
            for (int32_t p = 0; p < take && rc == 0; p++)
                rc = mk_gtps_add(&m->out, topics[t].id, next++);
        }
    }
    for (int32_t i = 0; i < nmembers; i++)
        mk_gtps_sort(&members[i].out);
    mk_free(ix);
    return rc;
}

/* ================================================================= uniform */

/* Working state: who holds each partition (owner[] by flat index). */
typedef struct uni_s {
    const mk_asg_topic_t *topics;
    int32_t ntopics;
    int32_t *base;        /* [ntopics] flat index of each topic's partition 0 */
    int32_t total;
    int32_t *owner;       /* [total] member index or -1 */
    int32_t *count;       /* [nmembers] partitions held */
} uni_t;

int mk_group_assign_uniform(const mk_asg_topic_t *topics, int32_t ntopics, mk_asg_member_t *members,
                            int32_t nmembers)
{
    for (int32_t i = 0; i < nmembers; i++)
        mk_gtps_clear(&members[i].out);
    if (nmembers == 0 || ntopics == 0)
        return 0;
    uni_t u = {topics, ntopics, NULL, 0, NULL, NULL};
    int rc = MK_ERR_NOMEM;
    int32_t *ix = members_sorted(members, nmembers);
    u.base = mk_malloc(sizeof(int32_t) * (size_t)ntopics);
    u.count = mk_calloc((size_t)nmembers, sizeof(int32_t));
    if (!ix || !u.base || !u.count)
        goto out;
    for (int32_t t = 0; t < ntopics; t++) {
        u.base[t] = u.total;
        u.total += topics[t].partitions > 0 ? topics[t].partitions : 0;
    }
    u.owner = mk_malloc(sizeof(int32_t) * (size_t)(u.total ? u.total : 1));
    if (!u.owner)
        goto out;
    for (int32_t i = 0; i < u.total; i++)
        u.owner[i] = -1;

    /* 1. Keep what each member holds and may still hold (members in id
     *    order, so a partition claimed twice goes to the first). */
    for (int32_t k = 0; k < nmembers; k++) {
        int32_t mi = ix[k];
        const mk_gtps_t *cur = members[mi].current;
        for (int32_t j = 0; cur && j < cur->n; j++) {
            int t = topic_index(topics, ntopics, cur->v[j].id);
            int32_t p = cur->v[j].partition;
            if (t < 0 || !members[mi].subscribed[t] || p < 0 || p >= topics[t].partitions)
                continue;
            int32_t f = u.base[t] + p;
            if (u.owner[f] >= 0)
                continue;
            u.owner[f] = mi;
            u.count[mi]++;
        }
    }
    /* 2. Every unowned partition to the eligible member holding fewest. */
    for (int32_t t = 0; t < ntopics; t++)
        for (int32_t p = 0; p < topics[t].partitions; p++) {
            int32_t f = u.base[t] + p, best = -1;
            if (u.owner[f] >= 0)
                continue;
            for (int32_t k = 0; k < nmembers; k++) {
                int32_t mi = ix[k];
                if (members[mi].subscribed[t] && (best < 0 || u.count[mi] < u.count[best]))
                    best = mi;
            }
            if (best >= 0) {
                u.owner[f] = best;
                u.count[best]++;
            }
        }
    /* 3. Balance: move from a member to an eligible one holding at least two
     *    fewer.  Each move lowers the sum of squared counts, so this ends;
     *    the bound is a guard.  Highest partitions move first, each to the
     *    least loaded eligible taker. */
    int64_t guard = (int64_t)u.total * 4 + 16;
    for (bool moved = true; moved && guard > 0;) {
        moved = false;
        for (int32_t f = u.total - 1; f >= 0 && guard > 0; f--) {
            int32_t from = u.owner[f];
            if (from < 0)
                continue;
            int32_t t = 0;
            while (t + 1 < ntopics && u.base[t + 1] <= f)
                t++;
            int32_t best = -1;
            for (int32_t k = 0; k < nmembers; k++) {
                int32_t mi = ix[k];
                if (mi != from && members[mi].subscribed[t] && u.count[mi] + 2 <= u.count[from] &&
                    (best < 0 || u.count[mi] < u.count[best]))
                    best = mi;
            }
            if (best < 0)
                continue;
            /* Only the most loaded members give, so stickiness is kept
             * elsewhere: skip a giver that some other giver outweighs. */
            bool heaviest = true;
            for (int32_t k = 0; k < nmembers && heaviest; k++)
                heaviest = u.count[ix[k]] <= u.count[from] || !members[ix[k]].subscribed[t];
            if (!heaviest)
                continue;
            u.owner[f] = best;
            u.count[from]--;
            u.count[best]++;
            moved = true;
            guard--;
        }
    }
    rc = 0;
    for (int32_t t = 0; t < ntopics && rc == 0; t++)
        for (int32_t p = 0; p < topics[t].partitions && rc == 0; p++) {
            int32_t mi = u.owner[u.base[t] + p];
            if (mi >= 0)
                rc = mk_gtps_add(&members[mi].out, topics[t].id, p);
        }
    for (int32_t i = 0; i < nmembers; i++)
        mk_gtps_sort(&members[i].out);
out:
    mk_free(ix);
    mk_free(u.base);
    mk_free(u.count);
    mk_free(u.owner);
    return rc;
}

/* ================================================================ registry */

mk_asg_fn mk_group_assignor_find(const char *name, const char **canonical)
{
    static const struct {
        const char *name, *class_name;
        mk_asg_fn fn;
    } tab[] = {
        {"uniform", "org.apache.kafka.coordinator.group.assignor.UniformAssignor", mk_group_assign_uniform},
        {"range", "org.apache.kafka.coordinator.group.assignor.RangeAssignor", mk_group_assign_range},
    };
    if (!name)
        return NULL;
    for (size_t i = 0; i < MK_ARRAY_LEN(tab); i++)
        if (strcmp(name, tab[i].name) == 0 || strcmp(name, tab[i].class_name) == 0) {
            if (canonical)
                *canonical = tab[i].name;
            return tab[i].fn;
        }
    return NULL;
}
