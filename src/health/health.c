/*
 * health.c -- the storage health manager: tracking, probes, the ladder.
 *
 * One timer (check_interval_ms) samples every broker:
 *
 *   io_sample()   the log layer's storage I/O gate for the broker: ops,
 *                 errors, the oldest operation in flight, p50/p99;
 *   probe()       when due, one record appended to the broker's probe
 *                 partition through mk_partition_append (acks=1: the
 *                 partition has the one replica) and read back from its log;
 *                 a refused append or a failed read is a failed probe;
 *   judge()       from both, how long the broker's storage has made no
 *                 progress (the oldest operation in flight, the time since
 *                 probes began failing, the time since errors alone came
 *                 back) and whether it is slow against its peers;
 *   step()        the ladder (health.h): fence + restart, demote, replace,
 *                 fence as slow, and back to healthy.
 *
 * Clocks: uv_now() (monotonic ms) for every duration; the wall clock only
 * for what is shown (since_ms, probe_last_ok_ms).
 *
 * Invariant: the manager fences a broker exactly while its state is one of
 * RESTARTED, DEMOTED, REPLACING, SLOW (and the slot's fenced flag says so);
 * every way back to HEALTHY lifts the fence.
 *
 * Threads: loop thread only.  Nothing here blocks: the probe's append and
 * read are the same page-cache operations a Produce and a Fetch do.
 */
#include "health/health.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_PREFIX MK_HEALTH_TENANT "~probe-"

/* What the manager keeps of one broker beyond what it shows. */
typedef struct slot_s {
    mk_health_broker_t pub;
    uint64_t detected;            /* uv_now() when no progress was first seen (0: none) */
    uint64_t step_at;             /* uv_now() of the last rung */
    uint64_t good_since;          /* uv_now() since storage works (0: it does not) */
    uint64_t slow_since;          /* uv_now() since it is slow (0: it is not) */
    uint64_t probe_fail_since;    /* uv_now() of the first failed probe in a row (0: none) */
    uint64_t err_since;           /* uv_now() since errors come without successful ops (0) */
    uint64_t next_probe;          /* uv_now() of the next probe */
    uint64_t last_ok_probe;       /* uv_now() of the last successful probe (0: none) */
    uint64_t last_ops, last_errors;
    bool stalled_told;            /* the stall event was sent for this episode */
    /* the probe in flight */
    int probe_state;              /* PROBE_* */
    mk_buf_t probe_batch;         /* owned: the record being appended */
    uint64_t probe_started;       /* uv_now() when it started */
    uint64_t probe_t0, probe_t1;  /* uv_hrtime(): started, appended */
    int64_t probe_offset;         /* where it was appended */
    uint64_t last_restart;        /* uv_now() of the last restart (step 1 or a retry) */
} slot_t;

enum { PROBE_IDLE, PROBE_APPENDING, PROBE_READING };

struct mk_health_s {
    uv_loop_t *loop;
    mk_cluster_t *c;              /* borrowed */
    mk_repl_t *r;                 /* borrowed */
    mk_partition_writer_t *w;     /* borrowed */
    mk_health_config_t cfg;
    uv_timer_t *timer;            /* owned; freed in its close callback */
    slot_t slots[MK_CLUSTER_MAX_BROKERS];
    mk_health_broker_t view[MK_CLUSTER_MAX_BROKERS];
    int nslots;
    uint64_t probe_seq;
    mk_health_event_cb event_cb;
    void *event_ud;
};

/* ==================================================================== names */

static const char *const state_names[] = {"healthy", "stalled", "restarted", "demoted",
                                          "replacing", "retired", "slow", "stopped"};

const char *mk_health_state_name(int state)
{
    return state >= 0 && state < (int)MK_ARRAY_LEN(state_names) ? state_names[state] : "unknown";
}

void mk_health_config_from(const mk_config_t *cfg, mk_health_config_t *out)
{
    out->enable = mk_cluster_config_get_bool(cfg, "minikora.health.enable");
    out->check_interval_ms = mk_cluster_config_get_i64(cfg, "minikora.health.check.interval.ms");
    out->probe_interval_ms = mk_cluster_config_get_i64(cfg, "minikora.health.probe.interval.ms");
    out->stall_ms = mk_cluster_config_get_i64(cfg, "minikora.health.stall.ms");
    out->restart_grace_ms = mk_cluster_config_get_i64(cfg, "minikora.health.restart.grace.ms");
    out->replace_after_ms = mk_cluster_config_get_i64(cfg, "minikora.health.replace.after.ms");
    out->recover_ms = mk_cluster_config_get_i64(cfg, "minikora.health.recover.ms");
    out->slow_factor = atof(mk_cluster_config_get(cfg, "minikora.health.slow.factor"));
    out->slow_min_ms = mk_cluster_config_get_i64(cfg, "minikora.health.slow.min.ms");
    out->slow_for_ms = mk_cluster_config_get_i64(cfg, "minikora.health.slow.for.ms");
}

/* =================================================================== events */

static void tell(mk_health_t *h, const char *type, int32_t broker, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tell(mk_health_t *h, const char *type, int32_t broker, const char *fmt, ...)
{
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    mk_info("health: %s", text);
    if (h->event_cb)
        h->event_cb(type, broker, text, h->event_ud);
}

static void set_state(slot_t *s, int state, int step)
{
    s->pub.state = state;
    s->pub.step = step;
    s->pub.since_ms = mk_now_ms();
}

/* ================================================================ tracking */

/* The storage I/O gate's counters for broker id (log/: every append, read,
 * fsync and open of the broker's logs passes it).  Only the figures are
 * read, never which fault is in force: the manager judges what it sees,
 * as it would a real disk. */
static void io_sample(mk_health_t *h, int32_t id, mk_health_io_t *io)
{
    (void)h;
    memset(io, 0, sizeof(*io));
    mk_log_io_stats_t st;
    if (mk_log_io_stats(id, &st) < 0)
        return;
    io->ops = st.ops;
    io->errors = st.errors;
    io->inflight = st.inflight;
    io->oldest_inflight_ms = st.oldest_inflight_ms;
    io->p50_ms = (double)st.p50_us / 1000.0;
    io->p99_ms = (double)st.p99_us / 1000.0;
}

/* ================================================================== probes */

static void probe_name(int32_t id, char *out, size_t n) { snprintf(out, n, PROBE_PREFIX "%d", (int)id); }

/* The probe partition of broker id, made (pinned to it: one replica) when
 * missing.  NULL when it cannot be made now. */
static mk_partition_t *probe_partition(mk_health_t *h, int32_t id)
{
    char name[64];
    probe_name(id, name, sizeof(name));
    mk_topic_t *t = mk_cluster_topic_find(h->c, name);
    if (!t) {
        static const char *const keys[] = {"retention.ms", "segment.bytes"};
        static const char *const values[] = {"600000", "1048576"};
        mk_topic_spec_t spec = {.name = name, .partitions = 1, .replication_factor = 1, .config_count = 2,
                                .config_keys = keys, .config_values = values, .assignment = &id};
        int rc = mk_cluster_topic_create(h->c, &spec, NULL, NULL, &t);
        if (rc < 0) {
            mk_warn("health: cannot make probe topic %s: %s", name, mk_strerror(rc));
            return NULL;
        }
        mk_repl_topic_created(h->r, t);
    }
    return mk_cluster_topic_partition(t, 0);
}

static void probe_failed(mk_health_t *h, slot_t *s, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void probe_failed(mk_health_t *h, slot_t *s, uint64_t now, const char *fmt, ...)
{
    (void)h;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->pub.probe_error, sizeof(s->pub.probe_error), fmt, ap);
    va_end(ap);
    s->pub.probes_failed++;
    if (!s->probe_fail_since)
        s->probe_fail_since = now;
    s->probe_state = PROBE_IDLE;
    mk_buf_reset(&s->probe_batch);
}

/* One step of broker s's probe: start one when due (a record built and
 * appended through the leader write path), or go on with the one in flight.
 * An append or read the storage I/O gate holds (a stalled or slow disk)
 * stays in flight, as a parked Produce or Fetch would, and is tried again at
 * the next tick; the time it waits counts in its latency. */
static void probe_step(mk_health_t *h, slot_t *s, uint64_t now)
{
    int32_t id = s->pub.id;
    if (s->probe_state == PROBE_IDLE) {
        if (now < s->next_probe)
            return;
        s->next_probe = now + (uint64_t)h->cfg.probe_interval_ms;
        char value[64];
        int vl = snprintf(value, sizeof(value), "probe %llu", (unsigned long long)++h->probe_seq);
        mk_batch_rec_in_t rec = {.value = value, .value_len = vl, .timestamp = mk_now_ms()};
        mk_buf_reset(&s->probe_batch);
        if (mk_batch_build(&s->probe_batch, 0, 0, &rec, 1) < 0 || !mk_buf_ok(&s->probe_batch))
            return;
        s->probe_state = PROBE_APPENDING;
        s->probe_t0 = uv_hrtime();
        s->probe_started = now;
    }
    mk_partition_t *p = probe_partition(h, id);
    if (!p)
        return; /* cannot be made now: no verdict */
    if (mk_partition_leader(p) != id || !mk_partition_log(p)) {
        /* Its one replica is on a running broker, so it leads unless its
         * log could not open or went offline: storage does not work. */
        probe_failed(h, s, now, "probe partition offline (its log is not open)");
        return;
    }
    if (s->probe_state == PROBE_APPENDING) {
        mk_partition_append_t a = {.acks = 1};
        int16_t err = mk_partition_append(h->w, p, s->probe_batch.data, s->probe_batch.len, &a);
        if (err != 0 && a.loading)
            return; /* held at the gate: in flight */
        if (err != 0) {
            probe_failed(h, s, now, "append refused (error %d%s%s)", err, a.why[0] ? ": " : "", a.why);
            return;
        }
        s->probe_t1 = uv_hrtime();
        s->probe_offset = a.base_offset;
        s->probe_state = PROBE_READING;
    }
    mk_buf_t out;
    mk_buf_init(&out);
    int64_t next = 0;
    int rc = mk_log_read(mk_partition_log(p), s->probe_offset, 4096, true, &out, &next);
    mk_buf_free(&out);
    if (rc == MK_ERR_AGAIN)
        return; /* held at the gate: in flight */
    if (rc < 0 || next <= s->probe_offset) {
        probe_failed(h, s, now, "read back failed: %s", rc < 0 ? mk_strerror(rc) : "no batch");
        return;
    }
    uint64_t t2 = uv_hrtime();
    s->pub.probes_ok++;
    s->pub.probe_produce_ms = (double)(s->probe_t1 - s->probe_t0) / 1e6;
    s->pub.probe_consume_ms = (double)(t2 - s->probe_t1) / 1e6;
    s->pub.probe_last_ok_ms = mk_now_ms();
    s->pub.probe_error[0] = 0;
    s->probe_fail_since = 0;
    s->last_ok_probe = now;
    s->probe_state = PROBE_IDLE;
}

/* ================================================================= judging */

/* How long broker s's storage has made no progress (ms; 0: it does). */
static int64_t no_progress(const slot_t *s, uint64_t now)
{
    int64_t age = s->pub.io.oldest_inflight_ms;
    if (s->probe_state != PROBE_IDLE)
        age = MK_MAX(age, (int64_t)(now - s->probe_started));
    if (s->probe_fail_since)
        age = MK_MAX(age, (int64_t)(now - s->probe_fail_since));
    if (s->err_since)
        age = MK_MAX(age, (int64_t)(now - s->err_since));
    return age;
}

/* The latency that tells slowness: the gate's p99 and the last probe's
 * must agree (the smaller of the two counts), so a stall that ended a few
 * seconds ago, still in the gate's window, is not taken for slowness. */
static double latency_of(const slot_t *s)
{
    double probe_ms = s->pub.probe_produce_ms + s->pub.probe_consume_ms;
    if (s->pub.io.p99_ms > 0)
        return MK_MIN(s->pub.io.p99_ms, probe_ms);
    return probe_ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Whether s is slow compared with its running, unfenced peers. */
static bool is_slow(mk_health_t *h, const slot_t *s)
{
    double peers[MK_CLUSTER_MAX_BROKERS];
    int n = 0;
    for (int i = 0; i < h->nslots; i++) {
        const slot_t *o = &h->slots[i];
        if (o == s || o->pub.state != MK_HEALTH_HEALTHY)
            continue;
        peers[n++] = latency_of(o);
    }
    if (n == 0)
        return false;
    qsort(peers, (size_t)n, sizeof(double), cmp_double);
    double median = n % 2 ? peers[n / 2] : (peers[n / 2 - 1] + peers[n / 2]) / 2;
    double mine = latency_of(s);
    return mine >= (double)h->cfg.slow_min_ms && mine > h->cfg.slow_factor * median;
}

/* ================================================================== ladder */

static void fence(mk_health_t *h, slot_t *s, bool on)
{
    if (s->pub.fenced == on)
        return;
    int rc = mk_repl_broker_fence(h->r, s->pub.id, on);
    if (rc == 0)
        s->pub.fenced = on;
}

/* Back to healthy: the fence lifted, the episode's clocks cleared. */
static void recovered(mk_health_t *h, slot_t *s, uint64_t now)
{
    int64_t took = s->detected ? (int64_t)(now - s->detected) : 0;
    fence(h, s, false);
    int was = s->pub.state;
    set_state(s, MK_HEALTH_HEALTHY, MK_HEALTH_STEP_NONE);
    s->pub.recover_ms = took;
    s->detected = 0;
    s->stalled_told = false;
    s->slow_since = 0;
    tell(h, "health_recovered", s->pub.id, "broker %d is healthy again (was %s; %lld ms from the first sign)",
         s->pub.id, mk_health_state_name(was), (long long)took);
}

/* Step 1: fence, then crash and start again.  The fence stays: the broker
 * rejoins ISRs once its storage works (recovered()). */
static void restart(mk_health_t *h, slot_t *s, uint64_t now, int64_t age)
{
    int32_t id = s->pub.id;
    fence(h, s, true);
    int rc = mk_repl_broker_crash(h->r, id);
    if (rc == 0)
        rc = mk_repl_broker_start(h->r, id);
    s->pub.restarts++;
    s->last_restart = now;
    s->probe_state = PROBE_IDLE;
    set_state(s, MK_HEALTH_RESTARTED, MK_HEALTH_STEP_RESTART);
    s->step_at = now;
    s->probe_fail_since = 0;
    s->err_since = 0;
    s->good_since = 0;
    s->next_probe = now;
    tell(h, "health_restart", id,
         "broker %d restarted (step 1): its storage made no progress for %lld ms; fenced until it works%s%s", id,
         (long long)age, rc < 0 ? "; the start failed: " : "", rc < 0 ? mk_strerror(rc) : "");
}

/* Step 3: a new broker in the same AZ and cell takes every replica. */
static void replace(mk_health_t *h, slot_t *s, uint64_t now)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(h->c, s->pub.id);
    int32_t nid = 0;
    int rc = mk_cluster_broker_add(h->c, b->az, b->cell, &nid);
    if (rc < 0) {
        tell(h, "health_replace", s->pub.id, "broker %d cannot be replaced: %s", s->pub.id, mk_strerror(rc));
        s->step_at = now; /* try again after another replace_after_ms */
        return;
    }
    s->pub.replaced_by = nid;
    set_state(s, MK_HEALTH_REPLACING, MK_HEALTH_STEP_REPLACE);
    s->step_at = now;
    tell(h, "health_replace", s->pub.id,
         "broker %d replaced by broker %d (step 3) in %s, cell %d: its replicas are rebuilt there", s->pub.id, nid,
         b->az, (int)b->cell);
}

/* Replacing: move what still sits on the old broker; true once nothing
 * does (its probe topic aside). */
static bool replace_moves(mk_health_t *h, slot_t *s)
{
    int32_t old = s->pub.id, nid = s->pub.replaced_by;
    bool left = false;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(h->c, &it))) {
        if (mk_cluster_topic_internal(t->name))
            continue;
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, i);
            int32_t target[MK_CLUSTER_MAX_BROKERS], n = 0;
            bool has = false;
            for (int32_t k = 0; k < mk_partition_replica_count(p) && k < MK_CLUSTER_MAX_BROKERS; k++) {
                int32_t rb = mk_partition_replica_broker(p, k);
                has |= rb == old;
                target[n++] = rb == old ? nid : rb;
            }
            if (!has)
                continue;
            left = true;
            if (!mk_repl_reassigning(h->r, p)) {
                int rc = mk_repl_reassign(h->r, p, target, n);
                if (rc < 0 && rc != MK_ERR_EXISTS)
                    mk_warn("health: partition %s-%d cannot move to broker %d: %s", t->name, i, nid,
                            mk_strerror(rc));
            }
        }
    }
    return !left;
}

/* The old broker holds nothing any more: stop it, drop its probe topic,
 * retire it. */
static void retire(mk_health_t *h, slot_t *s)
{
    int32_t id = s->pub.id;
    mk_cluster_broker_t *b = mk_cluster_broker_find(h->c, id);
    if (b->running && mk_repl_broker_shutdown(h->r, id) < 0)
        mk_repl_broker_crash(h->r, id);
    char name[64];
    probe_name(id, name, sizeof(name));
    mk_topic_t *t = mk_cluster_topic_find(h->c, name);
    if (t)
        mk_cluster_topic_delete(h->c, t, NULL, NULL);
    int rc = mk_cluster_broker_retire(h->c, id);
    fence(h, s, false); /* it is gone; the fence has no more use */
    set_state(s, MK_HEALTH_RETIRED, MK_HEALTH_STEP_REPLACE);
    tell(h, "health_retired", id, "broker %d retired: its replicas live on broker %d%s%s", id, s->pub.replaced_by,
         rc < 0 ? "; " : "", rc < 0 ? mk_strerror(rc) : "");
}

/* Whether broker id's probe partition is there and led by it (its logs
 * are open). */
static bool probe_led(mk_health_t *h, int32_t id)
{
    char name[64];
    probe_name(id, name, sizeof(name));
    mk_topic_t *t = mk_cluster_topic_find(h->c, name);
    mk_partition_t *p = t ? mk_cluster_topic_partition(t, 0) : NULL;
    return !p || (mk_partition_leader(p) == id && mk_partition_log(p));
}

/* One broker's turn of the ladder. */
static void step(mk_health_t *h, slot_t *s, uint64_t now)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(h->c, s->pub.id);
    int st = s->pub.state;
    if (st == MK_HEALTH_RETIRED)
        return;
    if (b->retired) {
        set_state(s, MK_HEALTH_RETIRED, s->pub.step);
        return;
    }
    if (!b->running && (st == MK_HEALTH_HEALTHY || st == MK_HEALTH_STALLED || st == MK_HEALTH_SLOW)) {
        /* Stopped by someone else (the admin API, a fault): not ours to judge. */
        fence(h, s, false);
        set_state(s, MK_HEALTH_STOPPED, MK_HEALTH_STEP_NONE);
        s->detected = 0;
        s->probe_fail_since = s->err_since = s->slow_since = 0;
        return;
    }
    if (st == MK_HEALTH_STOPPED) {
        if (b->running) {
            set_state(s, MK_HEALTH_HEALTHY, MK_HEALTH_STEP_NONE);
            s->next_probe = now;
        }
        return;
    }
    int64_t age = no_progress(s, now);
    /* A broker on the ladder that is not running makes no progress either. */
    if (!b->running && st != MK_HEALTH_REPLACING)
        age = MK_MAX(age, (int64_t)(now - s->step_at));
    s->pub.no_progress_ms = age;
    bool bad = age >= h->cfg.stall_ms;
    bool works = b->running && age == 0 && s->last_ok_probe > s->step_at &&
                 s->pub.io.oldest_inflight_ms < h->cfg.stall_ms / 2 + 1;
    if (works) {
        if (!s->good_since)
            s->good_since = now;
    } else {
        s->good_since = 0;
    }
    bool good_long = s->good_since && now - s->good_since >= (uint64_t)h->cfg.recover_ms;
    if (age > 0 && !s->detected)
        s->detected = now - (uint64_t)age;

    switch (st) {
    case MK_HEALTH_HEALTHY:
    case MK_HEALTH_STALLED:
        if (bad) {
            if (!s->stalled_told) {
                s->stalled_told = true;
                tell(h, "health_stalled", s->pub.id,
                     "broker %d: storage made no progress for %lld ms (oldest operation in flight %lld ms, %s)",
                     s->pub.id, (long long)age, (long long)s->pub.io.oldest_inflight_ms,
                     s->pub.probe_error[0] ? s->pub.probe_error : "probes pending");
            }
            if (h->cfg.enable)
                restart(h, s, now, age);
            else if (st != MK_HEALTH_STALLED)
                set_state(s, MK_HEALTH_STALLED, MK_HEALTH_STEP_NONE);
            return;
        }
        if (st == MK_HEALTH_STALLED && age == 0) {
            set_state(s, MK_HEALTH_HEALTHY, MK_HEALTH_STEP_NONE);
            s->detected = 0;
            s->stalled_told = false;
        }
        if (age == 0)
            s->detected = 0;
        if (is_slow(h, s)) {
            if (!s->slow_since)
                s->slow_since = now;
            if (h->cfg.enable && now - s->slow_since >= (uint64_t)h->cfg.slow_for_ms) {
                double mine = latency_of(s);
                fence(h, s, true);
                set_state(s, MK_HEALTH_SLOW, MK_HEALTH_STEP_SLOW);
                s->step_at = now;
                s->detected = s->slow_since;
                tell(h, "health_slow", s->pub.id,
                     "broker %d is slow against its peers (step 4): %.1f ms per operation for %lld ms; out of "
                     "the ISRs, still replicating",
                     s->pub.id, mine, (long long)(now - s->slow_since));
            }
        } else {
            s->slow_since = 0;
        }
        return;
    case MK_HEALTH_SLOW:
        if (bad) {
            restart(h, s, now, age);
            return;
        }
        if (is_slow(h, s) || !works) {
            s->slow_since = now;
        } else if (now - s->slow_since >= (uint64_t)h->cfg.recover_ms) {
            recovered(h, s, now);
        }
        return;
    case MK_HEALTH_RESTARTED:
        if (good_long) {
            recovered(h, s, now);
        } else if (now - s->step_at >= (uint64_t)h->cfg.restart_grace_ms && (bad || !b->running) && !works) {
            set_state(s, MK_HEALTH_DEMOTED, MK_HEALTH_STEP_DEMOTE);
            s->step_at = now;
            fence(h, s, true);
            tell(h, "health_demoted", s->pub.id,
                 "broker %d demoted (step 2): no progress %lld ms after its restart; it leads nothing and "
                 "stays out of the ISRs",
                 s->pub.id, (long long)age);
        }
        return;
    case MK_HEALTH_DEMOTED:
        if (good_long) {
            recovered(h, s, now);
        } else if (b->running && !probe_led(h, s->pub.id) &&
                   now - s->last_restart >= (uint64_t)h->cfg.restart_grace_ms) {
            /* Its logs did not open at the restart (or went offline): only
             * another start opens them, so try one now and then.  (One that
             * someone else stopped stays stopped.) */
            int32_t id = s->pub.id;
            mk_repl_broker_crash(h->r, id);
            int rc = mk_repl_broker_start(h->r, id);
            s->last_restart = now;
            s->probe_state = PROBE_IDLE;
            mk_info("health: broker %d restarted again to reopen its logs%s%s", id, rc < 0 ? ": " : "",
                    rc < 0 ? mk_strerror(rc) : "");
        } else if (h->cfg.replace_after_ms >= 0 && now - s->step_at >= (uint64_t)h->cfg.replace_after_ms &&
                   !works) {
            replace(h, s, now);
        }
        return;
    case MK_HEALTH_REPLACING:
        if (replace_moves(h, s))
            retire(h, s);
        return;
    default:
        return;
    }
}

/* ==================================================================== tick */

/* A slot for every broker the cluster has (brokers are only ever added). */
static void slots_sync(mk_health_t *h, uint64_t now)
{
    int n = mk_cluster_broker_count(h->c);
    for (int i = h->nslots; i < n && i < MK_CLUSTER_MAX_BROKERS; i++) {
        slot_t *s = &h->slots[i];
        memset(s, 0, sizeof(*s));
        mk_buf_init(&s->probe_batch);
        s->pub.id = mk_cluster_broker_at(h->c, i)->id;
        if (mk_cluster_broker_at(h->c, i)->retired)
            s->pub.state = MK_HEALTH_RETIRED; /* replaced before this start */
        s->pub.since_ms = mk_now_ms();
        s->next_probe = now;
        /* A replacement names the broker it replaces. */
        for (int j = 0; j < h->nslots; j++)
            if (h->slots[j].pub.replaced_by == s->pub.id)
                s->pub.replaces = h->slots[j].pub.id;
        h->nslots = i + 1;
    }
}

static void tick_cb(uv_timer_t *t)
{
    mk_health_t *h = t->data;
    uint64_t now = uv_now(h->loop);
    slots_sync(h, now);
    for (int i = 0; i < h->nslots; i++) {
        slot_t *s = &h->slots[i];
        mk_cluster_broker_t *b = mk_cluster_broker_at(h->c, i);
        if (b->retired)
            continue;
        mk_health_io_t io;
        io_sample(h, s->pub.id, &io);
        /* Errors with no successful operation since the last sample: no progress. */
        uint64_t ok_ops = io.ops - io.errors, last_ok = s->last_ops - s->last_errors;
        if (io.errors > s->last_errors && ok_ops == last_ok) {
            if (!s->err_since)
                s->err_since = now;
        } else if (ok_ops > last_ok) {
            s->err_since = 0;
        }
        s->last_ops = io.ops;
        s->last_errors = io.errors;
        s->pub.io = io;
        if (b->running)
            probe_step(h, s, now);
        else if (s->probe_state != PROBE_IDLE)
            s->probe_state = PROBE_IDLE; /* stopped under it: dropped */
    }
    for (int i = 0; i < h->nslots; i++)
        step(h, &h->slots[i], now);
}

/* =============================================================== lifecycle */

int mk_health_new(uv_loop_t *loop, mk_cluster_t *c, mk_repl_t *r, mk_partition_writer_t *w,
                  const mk_health_config_t *cfg, mk_health_t **out)
{
    *out = NULL;
    mk_health_t *h = mk_calloc(1, sizeof(*h));
    if (!h)
        return MK_ERR_NOMEM;
    h->loop = loop;
    h->c = c;
    h->r = r;
    h->w = w;
    h->cfg = *cfg;
    if (h->cfg.check_interval_ms < 10)
        h->cfg.check_interval_ms = 10;
    h->timer = mk_calloc(1, sizeof(*h->timer));
    if (!h->timer) {
        mk_free(h);
        return MK_ERR_NOMEM;
    }
    uv_timer_init(loop, h->timer);
    h->timer->data = h;
    slots_sync(h, uv_now(loop));
    uv_timer_start(h->timer, tick_cb, (uint64_t)h->cfg.check_interval_ms, (uint64_t)h->cfg.check_interval_ms);
    *out = h;
    return 0;
}

static void timer_free_cb(uv_handle_t *hd) { mk_free(hd); }

void mk_health_free(mk_health_t *h)
{
    if (!h)
        return;
    uv_timer_stop(h->timer);
    uv_close((uv_handle_t *)h->timer, timer_free_cb);
    for (int i = 0; i < h->nslots; i++)
        mk_buf_free(&h->slots[i].probe_batch);
    mk_free(h);
}

void mk_health_set_event_cb(mk_health_t *h, mk_health_event_cb cb, void *ud)
{
    h->event_cb = cb;
    h->event_ud = ud;
}

const mk_health_config_t *mk_health_config(const mk_health_t *h) { return &h->cfg; }

const mk_health_broker_t *mk_health_brokers(mk_health_t *h, int *n)
{
    for (int i = 0; i < h->nslots; i++)
        h->view[i] = h->slots[i].pub;
    *n = h->nslots;
    return h->view;
}
