/*
 * events.c -- the admin event ring (GET /v1/events) and the sampling of the
 * cluster that feeds it.
 *
 * The ring keeps the last MK_ADMIN_EVENTS events, numbered from 1 (seq), so
 * a reader can ask for what came after the last one it saw.  Event seq lives
 * in slot seq % MK_ADMIN_EVENTS; a slot whose seq differs from the one asked
 * for has been overwritten (mk_admin_events_at() answers NULL), and seq 0
 * marks a slot never written.  Events come from two places:
 *   - mk_admin_event(): explicit ones (reset, AZ actions, restarts, and once
 *     a second at most a count of Kafka requests refused; main.c's
 *     --control-stdin too);
 *   - mk_admin_observe_throttles(): every tick, per tenant, the answers
 *     throttled by its quotas since the last tick (the broker layer's
 *     counters, mk_broker_quota_use, compared with the last ones seen), so
 *     one event a second at most per tenant;
 *   - mk_admin_observe(): a sample of the cluster compared with the last
 *     one: brokers started or stopped, topics created or deleted, partition
 *     leaders moved or lost, ISRs shrunk or grown.  A broker that went down
 *     is broker_crashed or broker_stopped by its crashed flag (repl/).  It runs every tick and at
 *     once after every acting route, which names its cause; the cause is
 *     then appended to the events of that sample.  Sampling sees every change
 *     whatever made it (the Kafka API, --control-stdin, replication's own
 *     elections), at the price of missing a change undone within one tick.
 * One sample records at most PART_EVENTS_MAX partition events and sums up
 * the rest in one more, so a broker crash cannot flush the whole ring.
 *
 * The very first sample (at open) records nothing: what exists at start is
 * no event.  This file calls no other file of admin/; admin.c and routes.c
 * call it.  Loop thread only.
 */
#include "admin/admin_int.h"
#include "partition/partition.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define PART_EVENTS_MAX 16

/* What the last sample saw of one topic. */
typedef struct seen_topic_s {
    uint8_t id[16];
    int32_t n;
    int32_t *leader;          /* owned: per partition, then the ISR sizes */
    int32_t *isr;             /* ISR size per partition (inside leader's block) */
} seen_topic_t;

/* ====================================================================== ring */

/* Every type an event can have: GET /v1/events?type= answers 400 for any
 * other, so a new type must be added here (mk_admin_event warns if not). */
static const char *const event_types[] = {
    "started", "broker_started", "broker_stopped", "broker_crashed", "broker_restarted", "az_down", "az_up",
    "topic_created", "topic_deleted", "leader_changed", "partition_offline", "isr_shrunk", "isr_expanded",
    "partitions_changed", "reset", "requests_rejected", "cell_added", "tenant", "tenant_move", "tenant_moved",
    /* elasticity (balance.c, routes.c) */
    "broker_added", "broker_drain", "broker_drained", "broker_removed", "cell_rebalance",
    /* the scrubber and the durability audit (scrub/) */
    "integrity_corruption", "integrity_repaired", "integrity_data_lost", "integrity_lost_cleared",
    "integrity_incident", "integrity_remote_bad", "integrity_remote_fixed", "integrity_remote_lost",
    "scrub_requested",
    "quota", "tenant_throttled",
    /* the bundled S3 server's fault switch (tier/ tests and operators) */
    "s3_fault",
    /* the storage health manager's ladder (health/) */
    "health_stalled", "health_restart", "health_demoted", "health_replace", "health_retired", "health_slow",
    "health_recovered",
    /* the fault-injection API and its chaos schedule (faults.c) */
    "fault_injected", "fault_cleared", "chaos_started", "chaos_stopped",
};

bool mk_admin_event_type_known(const char *type)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(event_types); i++)
        if (strcmp(event_types[i], type) == 0)
            return true;
    return false;
}

void mk_admin_event(mk_admin_t *a, const char *type, int32_t broker, const char *fmt, ...)
{
    mk_admin_events_t *ev = &a->events;
    if (!mk_admin_event_type_known(type))
        mk_warn("admin event type '%s' is missing from event_types[] (events.c)", type);
    uint64_t seq = ++ev->last_seq;
    mk_admin_event_t *e = &ev->ring[seq % MK_ADMIN_EVENTS];
    e->seq = seq;
    e->time_ms = mk_now_ms();
    e->broker = broker;
    snprintf(e->type, sizeof(e->type), "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    mk_debug("admin event %llu %s: %s", (unsigned long long)seq, e->type, e->message);
}

const mk_admin_event_t *mk_admin_events_at(const mk_admin_t *a, uint64_t seq)
{
    const mk_admin_event_t *e = &a->events.ring[seq % MK_ADMIN_EVENTS];
    return seq > 0 && e->seq == seq ? e : NULL;
}

uint64_t mk_admin_events_last(const mk_admin_t *a) { return a->events.last_seq; }

/* ================================================================== sampling */

static void seen_free(seen_topic_t *st)
{
    if (!st)
        return;
    mk_free(st->leader);
    mk_free(st);
}

static seen_topic_t *seen_new(const mk_topic_t *t)
{
    seen_topic_t *st = mk_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->leader = mk_calloc((size_t)t->partition_count * 2 + 1, sizeof(int32_t));
    if (!st->leader) {
        mk_free(st);
        return NULL;
    }
    st->isr = st->leader + t->partition_count;
    memcpy(st->id, t->id, 16);
    st->n = t->partition_count;
    for (int32_t i = 0; i < t->partition_count; i++) {
        st->leader[i] = mk_partition_leader(mk_cluster_topic_partition(t, i));
        st->isr[i] = mk_partition_isr_size(mk_cluster_topic_partition(t, i));
    }
    return st;
}

void mk_admin_observe(mk_admin_t *a, const char *why, bool quiet)
{
    mk_admin_events_t *ev = &a->events;
    bool emit = ev->seen_valid;
    char cause[64] = "";
    if (why)
        snprintf(cause, sizeof(cause), " (%s)", why);
    int n = mk_cluster_broker_count(a->c);
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (emit && ev->seen_running[i] != b->running) {
            const char *what = b->running ? "started" : b->crashed ? "crashed" : "stopped";
            char type[24];
            snprintf(type, sizeof(type), "broker_%s", what);
            mk_admin_event(a, type, b->id, "broker %d %s (%s, cell %d)%s", b->id, what, b->az, b->cell, cause);
        }
        ev->seen_running[i] = b->running;
    }
    emit = emit && !quiet;
    int part_events = 0, leader_more = 0, isr_more = 0;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it))) {
        if (mk_cluster_topic_internal(t->name))
            continue; /* the health manager's probe topics: its own events tell */
        seen_topic_t *st = mk_map_get(&ev->seen_topics, t->name);
        if (st && (memcmp(st->id, t->id, 16) != 0 || st->n != t->partition_count)) {
            mk_map_del(&ev->seen_topics, t->name); /* deleted and created again */
            if (emit)
                mk_admin_event(a, "topic_deleted", -1, "topic %s deleted%s", t->name, cause);
            seen_free(st);
            st = NULL;
        }
        if (!st) {
            if (emit)
                mk_admin_event(a, "topic_created", -1, "topic %s created: %d partitions, replication factor %d, "
                               "cell %d%s", t->name, t->partition_count, t->replication_factor, t->cell, cause);
            st = seen_new(t);
            if (st && mk_map_put(&ev->seen_topics, t->name, st) < 0) {
                seen_free(st);
                st = NULL;
            }
            continue;
        }
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, i);
            int32_t isr = mk_partition_isr_size(p);
            if (emit && st->leader[i] != mk_partition_leader(p)) {
                if (part_events++ < PART_EVENTS_MAX) {
                    if (mk_partition_leader(p) < 0)
                        mk_admin_event(a, "partition_offline", st->leader[i], "%s-%d: no leader (was broker %d)%s",
                                       t->name, i, st->leader[i], cause);
                    else
                        mk_admin_event(a, "leader_changed", mk_partition_leader(p), "%s-%d: leader %d -> %d, epoch %d%s", t->name,
                                       i, st->leader[i], mk_partition_leader(p), mk_partition_leader_epoch(p), cause);
                } else {
                    leader_more++;
                }
            }
            if (emit && st->isr[i] != isr) {
                if (part_events++ < PART_EVENTS_MAX)
                    mk_admin_event(a, isr < st->isr[i] ? "isr_shrunk" : "isr_expanded", mk_partition_leader(p),
                                   "%s-%d: ISR %d -> %d of %d replicas%s", t->name, i, st->isr[i], isr,
                                   mk_partition_replica_count(p), cause);
                else
                    isr_more++;
            }
            st->leader[i] = mk_partition_leader(p);
            st->isr[i] = isr;
        }
    }
    if (leader_more || isr_more)
        mk_admin_event(a, "partitions_changed", -1, "and %d more leader changes, %d more ISR changes%s", leader_more,
                       isr_more, cause);
    /* Topics that are gone. */
    const char *k;
    void *v;
    it = 0;
    while (mk_map_next(&ev->seen_topics, &it, &k, &v)) {
        if (mk_cluster_topic_find(a->c, k))
            continue;
        if (emit)
            mk_admin_event(a, "topic_deleted", -1, "topic %s deleted%s", k, cause);
        mk_map_del(&ev->seen_topics, k);
        seen_free(v);
    }
    ev->seen_valid = true;
}

/* ================================================================= throttles */

/* A tenant's throttle counters as the last tick saw them. */
typedef struct seen_throttle_s {
    uint64_t n, ms, by_n[MK_QUOTA__COUNT];
    uint64_t pass;             /* throttle_pass when the tenant was last listed */
} seen_throttle_t;

/* The quotas of one tenant's throttled answers since the last tick, the
 * most frequent first: "producer_byte_rate", or with more than one
 * "producer_byte_rate (12), request_percentage (1)". */
static void throttle_keys(const uint64_t dn[MK_QUOTA__COUNT], char *out, size_t cap)
{
    int order[MK_QUOTA__COUNT], n = 0;
    for (int k = 0; k < MK_QUOTA__COUNT; k++)
        if (dn[k]) {
            int i = n++;
            for (; i > 0 && dn[order[i - 1]] < dn[k]; i--)
                order[i] = order[i - 1];
            order[i] = k;
        }
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len < cap; i++) {
        int w = n == 1 ? snprintf(out + len, cap - len, "%s", mk_quota_key_name(order[i]))
                       : snprintf(out + len, cap - len, "%s%s (%llu)", i ? ", " : "", mk_quota_key_name(order[i]),
                                  (unsigned long long)dn[order[i]]);
        len += w > 0 ? (size_t)w : 0;
    }
}

void mk_admin_observe_throttles(mk_admin_t *a)
{
    mk_admin_events_t *ev = &a->events;
    uint64_t pass = ++ev->throttle_pass;
    mk_tenant_registry_t *r = mk_broker_tenants(a->b);
    const mk_tenant_t *t = mk_tenant_default();
    for (size_t it = 0; t; t = r ? mk_tenant_next(r, &it) : NULL) {
        mk_broker_quota_use_t u;
        mk_broker_quota_use(a->b, t->id, &u);
        seen_throttle_t *st = mk_map_get(&ev->seen_throttle, t->id);
        if (!st && u.throttled == 0)
            continue;
        if (!st) {
            /* The counters start at zero with the tenant's measures, so
             * everything counted so far is new. */
            st = mk_calloc(1, sizeof(*st));
            if (!st || mk_map_put(&ev->seen_throttle, t->id, st) < 0) {
                mk_free(st);
                continue;
            }
        }
        st->pass = pass;
        if (u.throttled < st->n) /* the measures were dropped and made again (tenant deleted, created) */
            memset(st, 0, offsetof(seen_throttle_t, pass));
        if (u.throttled > st->n) {
            uint64_t dn[MK_QUOTA__COUNT];
            for (int k = 0; k < MK_QUOTA__COUNT; k++)
                dn[k] = u.throttled_by[k] - st->by_n[k];
            char keys[160];
            throttle_keys(dn, keys, sizeof(keys));
            mk_admin_event(a, "tenant_throttled", -1, "tenant %s throttled %llu times, %llu ms in the last second: %s",
                           t->id, (unsigned long long)(u.throttled - st->n),
                           (unsigned long long)(u.throttle_ms_total - st->ms), keys);
        }
        st->n = u.throttled;
        st->ms = u.throttle_ms_total;
        memcpy(st->by_n, u.throttled_by, sizeof(st->by_n));
    }
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&ev->seen_throttle, &it, &k, &v);)
        if (((seen_throttle_t *)v)->pass != pass) {
            mk_map_del(&ev->seen_throttle, k);
            mk_free(v);
        }
}

/* ================================================================ lifecycle */

int mk_admin_events_init(mk_admin_t *a)
{
    mk_admin_events_t *ev = &a->events;
    memset(ev, 0, sizeof(*ev));
    mk_map_init(&ev->seen_topics);
    mk_map_init(&ev->seen_throttle);
    ev->ring = mk_calloc(MK_ADMIN_EVENTS, sizeof(mk_admin_event_t));
    ev->seen_running = mk_calloc(MK_CLUSTER_MAX_BROKERS + 1, sizeof(bool));
    return ev->ring && ev->seen_running ? 0 : MK_ERR_NOMEM;
}

void mk_admin_events_free(mk_admin_t *a)
{
    mk_admin_events_t *ev = &a->events;
    const char *k;
    void *v;
    size_t it = 0;
    while (mk_map_next(&ev->seen_topics, &it, &k, &v))
        seen_free(v);
    mk_map_free(&ev->seen_topics);
    it = 0;
    while (mk_map_next(&ev->seen_throttle, &it, &k, &v))
        mk_free(v);
    mk_map_free(&ev->seen_throttle);
    mk_free(ev->seen_running);
    mk_free(ev->ring);
    ev->ring = NULL;
    ev->seen_running = NULL;
}
