/*
 * admin.c -- the admin module: open and close, the dispatcher, the 1 s tick,
 * and the event ring with the sampling that feeds it.
 *
 * Events: a ring of the last MK_ADMIN_EVENTS events, numbered from 1 (seq),
 * so a reader can ask for what came after the last one it saw.  They come
 * from two places:
 *   - mk_admin_event(): explicit ones (reset, AZ actions, restarts, and once
 *     a second at most a count of Kafka requests refused);
 *   - mk_admin_observe(): a sample of the cluster compared with the last
 *     one: brokers started or stopped, topics created or deleted, partition
 *     leaders moved or lost, ISRs shrunk or grown.  It runs every tick and at
 *     once after every acting route, whose cause (a->cause) is then named in
 *     the events.  Sampling sees every change whatever made it (the Kafka
 *     API, --control-stdin, replication's own elections), at the price of
 *     missing a change undone within one tick.
 * One sample records at most PART_EVENTS_MAX partition events and sums up
 * the rest in one more, so a broker crash cannot flush the whole ring.
 */
#include "admin/admin_int.h"
#include "repl/repl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TICK_MS 1000
#define PART_EVENTS_MAX 16

/* What the last sample saw of one topic. */
typedef struct seen_topic_s {
    uint8_t id[16];
    int32_t n;
    int32_t *leader;          /* owned: per partition */
    int32_t *isr;             /* owned: ISR size per partition */
} seen_topic_t;

/* ==================================================================== events */

void mk_admin_event(mk_admin_t *a, const char *type, int32_t broker, const char *fmt, ...)
{
    uint64_t seq = ++a->event_seq;
    mk_admin_event_t *e = &a->events[seq % MK_ADMIN_EVENTS];
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
        st->leader[i] = t->partitions[i].leader;
        st->isr[i] = mk_repl_isr_size(&t->partitions[i]);
    }
    return st;
}

void mk_admin_observe(mk_admin_t *a)
{
    bool emit = a->seen_valid;
    char cause[64] = "";
    if (a->cause)
        snprintf(cause, sizeof(cause), " (%s)", a->cause);
    int n = mk_cluster_broker_count(a->c);
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(a->c, i);
        if (emit && a->seen_running[i] != b->running)
            mk_admin_event(a, b->running ? "broker_started" : "broker_stopped", b->id, "broker %d %s (%s, cell %d)%s",
                           b->id, b->running ? "started" : "stopped", b->az, b->cell, cause);
        a->seen_running[i] = b->running;
    }
    emit = emit && !a->quiet;
    int part_events = 0, leader_more = 0, isr_more = 0;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(a->c, &it))) {
        seen_topic_t *st = mk_map_get(&a->seen_topics, t->name);
        if (st && (memcmp(st->id, t->id, 16) != 0 || st->n != t->partition_count)) {
            mk_map_del(&a->seen_topics, t->name); /* deleted and created again */
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
            if (st && mk_map_put(&a->seen_topics, t->name, st) < 0) {
                seen_free(st);
                st = NULL;
            }
            continue;
        }
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_partition_t *p = &t->partitions[i];
            int32_t isr = mk_repl_isr_size(p);
            if (emit && st->leader[i] != p->leader) {
                if (part_events++ < PART_EVENTS_MAX) {
                    if (p->leader < 0)
                        mk_admin_event(a, "partition_offline", st->leader[i], "%s-%d: no leader (was broker %d)%s",
                                       t->name, i, st->leader[i], cause);
                    else
                        mk_admin_event(a, "leader_changed", p->leader, "%s-%d: leader %d -> %d, epoch %d%s", t->name,
                                       i, st->leader[i], p->leader, p->leader_epoch, cause);
                } else {
                    leader_more++;
                }
            }
            if (emit && st->isr[i] != isr) {
                if (part_events++ < PART_EVENTS_MAX)
                    mk_admin_event(a, isr < st->isr[i] ? "isr_shrunk" : "isr_expanded", p->leader,
                                   "%s-%d: ISR %d -> %d of %d replicas%s", t->name, i, st->isr[i], isr,
                                   p->replica_count, cause);
                else
                    isr_more++;
            }
            st->leader[i] = p->leader;
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
    while (mk_map_next(&a->seen_topics, &it, &k, &v)) {
        if (mk_cluster_topic_find(a->c, k))
            continue;
        if (emit)
            mk_admin_event(a, "topic_deleted", -1, "topic %s deleted%s", k, cause);
        mk_map_del(&a->seen_topics, k);
        seen_free(v);
    }
    a->seen_valid = true;
}

/* ================================================================ dispatcher */

void mk_admin_dispatch(void *ud, const mk_http_req_t *req, mk_http_resp_t *resp)
{
    mk_admin_t *a = ud;
    mk_admin_caps_t caps;
    int allow = 0;
    const mk_admin_route_t *r = mk_admin_route_find(req->method, req->path, &caps, &allow);
    if (r) {
        r->fn(a, req, &caps, resp);
    } else if (allow) {
        char methods[48];
        mk_admin_http_allow_str(allow, methods, sizeof(methods));
        mk_admin_error(resp, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", req->method_name,
                       req->path, methods);
        resp->allow = allow;
    } else {
        mk_admin_error(resp, 404, "not_found", "no route %s %s (GET /v1 lists the routes)", req->method_name,
                       req->path);
    }
    int cls = resp->status / 100;
    if (cls >= 1 && cls <= 5)
        a->http_by_class[cls]++;
    mk_debug("admin: %s %s -> %d", req->method_name, req->path, resp->status);
}

/* ===================================================================== tick */

static void tick_cb(uv_timer_t *t)
{
    mk_admin_t *a = t->data;
    uint64_t now = mk_mono_ms();
    mk_admin_observe(a);
    /* Refused requests: one event a second at most, however many there were. */
    uint64_t rejected = mk_admin_stats_rejected(a->stats);
    if (rejected > a->rejected_seen)
        mk_admin_event(a, "requests_rejected", -1, "%llu Kafka requests refused (connection closed: malformed or "
                       "unsupported) in the last second; see the broker log",
                       (unsigned long long)(rejected - a->rejected_seen));
    a->rejected_seen = rejected;
    mk_admin_stats_tick(a->stats, now);
    mk_admin_http_sweep(a->http, now);
}

static void req_cb(const mk_broker_req_info_t *info, void *ud)
{
    mk_admin_t *a = ud;
    mk_admin_stats_on_request(a->stats, info);
}

/* ================================================================ lifecycle */

static void admin_free(mk_admin_t *a)
{
    const char *k;
    void *v;
    size_t it = 0;
    while (mk_map_next(&a->seen_topics, &it, &k, &v))
        seen_free(v);
    mk_map_free(&a->seen_topics);
    mk_admin_stats_free(a->stats);
    mk_free(a->seen_running);
    mk_free(a->events);
    mk_free(a->version);
    mk_free(a->host);
    mk_free(a);
}

int mk_admin_open(uv_loop_t *loop, const mk_admin_opts_t *opts, mk_admin_t **out)
{
    /* jansson allocates through our hooks, so fault tests reach it too. */
    json_set_alloc_funcs(mk_malloc, mk_free);
    mk_admin_t *a = mk_calloc(1, sizeof(*a));
    if (!a)
        return MK_ERR_NOMEM;
    a->loop = loop;
    a->c = opts->cluster;
    a->b = opts->broker;
    mk_map_init(&a->seen_topics);
    a->version = mk_strdup(opts->version ? opts->version : "");
    a->host = mk_strdup(opts->host);
    a->events = mk_calloc(MK_ADMIN_EVENTS, sizeof(mk_admin_event_t));
    a->seen_running = mk_calloc((size_t)mk_cluster_broker_count(a->c) + 1, sizeof(bool));
    a->tick = mk_malloc(sizeof(uv_timer_t));
    int rc = 0;
    if (!a->version || !a->host || !a->events || !a->seen_running || !a->tick)
        rc = MK_ERR_NOMEM;
    if (rc == 0)
        rc = mk_admin_stats_new(a->c, &a->stats);
    if (rc == 0)
        rc = mk_admin_http_open(loop, opts->host, opts->port, mk_admin_dispatch, a, &a->http);
    if (rc < 0) {
        mk_free(a->tick);
        admin_free(a);
        return rc;
    }
    a->started_mono_ms = mk_mono_ms();
    a->started_wall_ms = mk_now_ms();
    mk_admin_observe(a); /* the first sample: what exists at start is no event */
    mk_admin_event(a, "started", -1, "admin API listening on %s:%d; %d brokers", opts->host, mk_admin_http_port(a->http),
                   mk_cluster_broker_count(a->c));
    uv_timer_init(loop, a->tick);
    a->tick->data = a;
    uv_timer_start(a->tick, tick_cb, TICK_MS, TICK_MS);
    mk_broker_set_req_cb(a->b, req_cb, a);
    *out = a;
    return 0;
}

int mk_admin_port(const mk_admin_t *a) { return mk_admin_http_port(a->http); }

static void tick_close_cb(uv_handle_t *h) { mk_free(h); }

void mk_admin_close(mk_admin_t *a)
{
    if (!a)
        return;
    mk_broker_set_req_cb(a->b, NULL, NULL);
    uv_timer_stop(a->tick);
    uv_close((uv_handle_t *)a->tick, tick_close_cb);
    mk_admin_http_close(a->http);
    admin_free(a);
}
