/*
 * health.h -- L4: the storage health manager and its remediation ladder.
 *
 * Kora is operated by software: when a broker's storage stops making
 * progress the broker is restarted, when that does not help its leadership
 * moves away, and when that does not help either it is replaced.  This
 * module does that for the in-process brokers.
 *
 * What it watches, per broker, on one timer (minikora.health.check.interval.ms):
 *   - the log layer's storage I/O gate: operations, errors, the age of the
 *     oldest operation in flight, latency percentiles (mk_health_io_t);
 *   - synthetic probes: every minikora.health.probe.interval.ms a record is
 *     produced through the one leader write path (mk_partition_append) to a
 *     partition pinned to the broker and read back from its log.  The probe
 *     topics belong to the internal tenant MK_HEALTH_TENANT
 *     ("minikora-health~probe-<broker>"): no client of another tenant sees
 *     them, and the admin API marks them internal.
 *
 * The ladder (thresholds in mk_health_config_t, minikora.health.* settings):
 *   1. storage makes no progress for stall_ms (an operation in flight that
 *      long, or every probe failing that long): the broker is fenced (out of
 *      every ISR, leads nothing: mk_repl_broker_fence) and restarted (crash,
 *      start).  It stays fenced until its storage works again for
 *      recover_ms, so it rejoins ISRs only then.
 *   2. no progress restart_grace_ms after the restart: demoted -- it stays
 *      fenced (its leadership already moved) until it recovers.
 *   3. still none replace_after_ms after that: replaced -- a new broker id is
 *      added in the same AZ and cell (mk_cluster_broker_add), every replica of
 *      the old one is reassigned to it (mk_repl_reassign: rebuilt from the
 *      in-sync replicas, or S3 through tiering's rebuild hook), and once none
 *      is left the old broker is stopped and retired.
 *   4. a broker that works but is slow compared with its peers (its p99
 *      latency above slow_factor times the peers' median and above
 *      slow_min_ms, for slow_for_ms) is fenced: it leaves the ISRs and keeps
 *      replicating, as Kora does; it comes back when it is not slow for
 *      recover_ms.
 * A broker whose storage works again returns to healthy (unfenced).  Every
 * step is an event through the one observer (admin/: the event ring).
 *
 * Guarantee: fencing moves leadership only to in-sync replicas (controlled,
 * after a last round), a restart elects from the ISR, and a replacement
 * is a reassignment: acks=all records are never lost on the way.
 *
 * Threads: loop thread only.
 */
#ifndef MK_HEALTH_H
#define MK_HEALTH_H

#include "cluster/cluster.h"
#include "partition/partition.h"
#include "repl/repl.h"

/* The internal tenant of the probe topics. */
#define MK_HEALTH_TENANT MK_CLUSTER_INTERNAL_TENANT

typedef struct mk_health_s mk_health_t;

typedef struct mk_health_config_s {
    bool enable;                  /* minikora.health.enable: act on what is seen (else watch only) */
    int64_t check_interval_ms;    /* minikora.health.check.interval.ms 1000 */
    int64_t probe_interval_ms;    /* minikora.health.probe.interval.ms 2000 */
    int64_t stall_ms;             /* minikora.health.stall.ms 4000: step 1 */
    int64_t restart_grace_ms;     /* minikora.health.restart.grace.ms 4000: step 2 */
    int64_t replace_after_ms;     /* minikora.health.replace.after.ms 60000: step 3; -1 never */
    int64_t recover_ms;           /* minikora.health.recover.ms 3000 */
    double slow_factor;           /* minikora.health.slow.factor 5 */
    int64_t slow_min_ms;          /* minikora.health.slow.min.ms 100 */
    int64_t slow_for_ms;          /* minikora.health.slow.for.ms 5000: step 4 */
} mk_health_config_t;

/* The settings as the configuration has them (defaults above). */
void mk_health_config_from(const mk_config_t *cfg, mk_health_config_t *out);

/* One broker's storage I/O as the log layer's gate counts it. */
typedef struct mk_health_io_s {
    uint64_t ops;                 /* operations completed since start */
    uint64_t errors;              /* of which failed (EIO) */
    uint64_t inflight;            /* operations in flight now */
    int64_t oldest_inflight_ms;   /* age of the oldest of them (0: none) */
    double p50_ms, p99_ms;        /* latency of recent operations */
} mk_health_io_t;

/* States and ladder steps of a broker. */
enum {
    MK_HEALTH_HEALTHY = 0,
    MK_HEALTH_STALLED,            /* no progress seen, not acted on yet (or acting is off) */
    MK_HEALTH_RESTARTED,          /* step 1 taken: fenced, restarted, waiting */
    MK_HEALTH_DEMOTED,            /* step 2: fenced, leads nothing */
    MK_HEALTH_REPLACING,          /* step 3: its replicas move to the new broker */
    MK_HEALTH_RETIRED,            /* step 3 done */
    MK_HEALTH_SLOW,               /* step 4: out of the ISRs, replicating */
    MK_HEALTH_STOPPED,            /* stopped by someone else: not watched */
};
enum { MK_HEALTH_STEP_NONE = 0, MK_HEALTH_STEP_RESTART = 1, MK_HEALTH_STEP_DEMOTE = 2,
       MK_HEALTH_STEP_REPLACE = 3, MK_HEALTH_STEP_SLOW = 4 };
/* "healthy", "stalled", ... (the JSON and metrics spelling). */
const char *mk_health_state_name(int state);

/* What the manager knows of one broker. */
typedef struct mk_health_broker_s {
    int32_t id;
    int state;                    /* MK_HEALTH_* */
    int step;                     /* MK_HEALTH_STEP_*: the last rung taken */
    int64_t since_ms;             /* wall clock of the last state change */
    bool fenced;                  /* kept out of the ISRs by this manager */
    mk_health_io_t io;
    int64_t no_progress_ms;       /* how long its storage has made no progress (0: it does) */
    /* probes */
    uint64_t probes_ok, probes_failed;
    double probe_produce_ms;      /* latency of the last successful probe's append */
    double probe_consume_ms;      /* ... and of its read back */
    int64_t probe_last_ok_ms;     /* wall clock of the last successful probe (0: none) */
    char probe_error[96];         /* why the last probe failed ("" if it did not) */
    int32_t replaced_by;          /* step 3: the new broker (0: none) */
    int32_t replaces;             /* the broker this one replaced (0: none) */
    uint64_t restarts;            /* step 1 taken, times */
    int64_t recover_ms;           /* the last recovery: from no progress seen to healthy (0: none yet) */
} mk_health_broker_t;

/* Start watching: opens nothing on disk; probe topics are made at the first
 * probe (persisted like any topic).  The borrowed objects outlive h.
 * 0 or MK_ERR_NOMEM. */
int mk_health_new(uv_loop_t *loop, mk_cluster_t *c, mk_repl_t *r, mk_partition_writer_t *w,
                  const mk_health_config_t *cfg, mk_health_t **out);
/* Stop the timer and free (the timer handle goes through the loop). */
void mk_health_free(mk_health_t *h);

/* The one observer of steps: type is the event type ("health_restart" ...),
 * broker the broker concerned; text valid during the call.  admin/ records
 * them in its event ring.  cb NULL removes it. */
typedef void (*mk_health_event_cb)(const char *type, int32_t broker, const char *text, void *ud);
void mk_health_set_event_cb(mk_health_t *h, mk_health_event_cb cb, void *ud);

/* The thresholds in use. */
const mk_health_config_t *mk_health_config(const mk_health_t *h);
/* What is known of every broker the manager has seen (one per broker of
 * the cluster, retired ones included), in id order: n and a borrowed array
 * valid until the next return to the loop. */
const mk_health_broker_t *mk_health_brokers(mk_health_t *h, int *n);

#endif /* MK_HEALTH_H */
