/*
 * scrub.h -- L3: integrity checks of stored data (the only public header of
 * src/scrub/): the scrubber, the comparison of replicas, repair, the
 * durability audit, and the offline `minikora verify`.
 *
 * Scrubber.  Pass after pass (minikora.scrub.interval.ms apart), every
 * stored batch of every replica log on every running broker is read again
 * on libuv's threadpool, at most minikora.scrub.rate.bytes.per.sec, and
 * checked with batch/'s one validator: each batch alone (header, lengths,
 * CRC32C) and each against the one before it (offsets in order and
 * contiguous, leader epochs not going back).  One partition at a time, its
 * replicas are walked side by side and compared by batch checksum (base
 * offset, size, CRC, last offset, leader epoch), not byte by byte: below
 * the high watermark every in-sync replica must hold the leader's batches;
 * anywhere, two batches at one offset written under one leader epoch must
 * be the same.  The loop is never blocked: a cursor (log/) holds its own
 * descriptors, and a finding counts only if the replica's log still has the
 * history that was scanned (same open log, no truncation since).
 *
 * Repair.  A replica with bad data -- a batch that fails the validator, or
 * one that differs from the others (the majority wins; a tie goes to the
 * leader) -- is repaired from a sound in-sync replica through repl/: it is
 * truncated to its first bad offset and fetches the rest again; a leader
 * with bad data first hands leadership to the sound replica, so followers
 * never copy it (repl/ also checks every batch a follower copies).  With no
 * sound in-sync copy, the partition has lost data: an event, a metric, an
 * entry in GET /v1/integrity, and reads of the bad offsets from that
 * replica are refused with CORRUPT_MESSAGE (the partition writer's read
 * check, which the Fetch handler asks), never served.  The marks are kept
 * in meta's kv store and cleared once a pass finds the replica sound or
 * the offsets retained away.
 *
 * Durability audit.  Every change of a replica's log start offset, every
 * segment retention deletes, and every topic's effective retention.ms /
 * retention.bytes (when first seen and when they change) is an event in
 * the audit table of the metadata store (written off the loop with meta's
 * op submit).  The auditor checks them against its rules:
 *   retention      a segment is deleted only as its topic's retention
 *                  allows (retention.ms: its largest timestamp is older;
 *                  retention.bytes: the log stays at least that large)
 *   coverage       the log start only advances over offsets that deleted
 *                  segments covered, without gaps (or, for a follower that
 *                  restarts at the leader's log start, no further than it);
 *                  across a restart, the log start is where the audit left it
 *   replicas_agree the scrubber found no divergence between replicas
 * A rule that fails is an incident: an audit row, an event, a metric and a
 * line in GET /v1/integrity.
 *
 * Remote copies.  With tiered storage, the pass also covers every remote
 * segment of each partition against its manifest checksums, through the
 * remote hook (mk_scrub_remote_hook_t): tier/ reads them back on its own
 * threads at the scrub rate, re-uploads a corrupt one from a local copy
 * that still has the manifest's bytes, and reports the rest as
 * unrepairable (an event, a metric, GET /v1/integrity's "remote").
 *
 * Threads: the loop thread, except mk_scrub_verify_dir(), which is a
 * program of its own (blocking, any thread).
 */
#ifndef MK_SCRUB_H
#define MK_SCRUB_H

#include <stdio.h>

#include "cluster/cluster.h"
#include "partition/partition.h"
#include "repl/repl.h"

typedef struct mk_scrub_s mk_scrub_t;

typedef struct mk_scrub_config_s {
    int64_t rate_bytes_per_sec;   /* minikora.scrub.rate.bytes.per.sec, 10485760 (>= 1) */
    int64_t interval_ms;          /* minikora.scrub.interval.ms, 300000; -1: no passes (the
                                     audit still runs) */
} mk_scrub_config_t;

/* The scrubber and auditor of cluster c.  It registers as an observer of
 * writer (segment events, read checks) and repairs through repl; both are
 * borrowed and must outlive it.  Loads the lost-data marks and the audit's
 * last state from the metadata store (blocking: startup), audits what it
 * finds at the first turn of the loop (after the event observer is
 * registered), and starts the first pass after a second.  0, MK_ERR_NOMEM,
 * MK_ERR_INVALID (cfg), or a store error. */
int mk_scrub_new(uv_loop_t *loop, mk_cluster_t *c, mk_partition_writer_t *writer, mk_repl_t *repl,
                 const mk_scrub_config_t *cfg, mk_scrub_t **out);
/* Stops passes (a chunk running on the threadpool finishes there and is
 * freed when it comes back: keep running the loop), hands the audit rows
 * not yet written to the store, and releases everything.  Before repl,
 * the writer and the cluster are freed.  NULL is a no-op. */
void mk_scrub_free(mk_scrub_t *s);

/* Start a pass now if none is running (tests, admin).  0 or MK_ERR_STATE
 * (one is running, or scrubbing is off). */
int mk_scrub_run_now(mk_scrub_t *s);

/* ================================================================ reporting */

/* Events (corruption found, repaired, data lost, audit incident) go to one
 * observer, which admin/ registers (its event ring); broker -1 when none.
 * text is valid during the call only. */
typedef void (*mk_scrub_event_cb)(const char *type, int32_t broker, const char *text, void *ud);
void mk_scrub_set_event_cb(mk_scrub_t *s, mk_scrub_event_cb cb, void *ud);

/* Counts for one broker or for all. */
typedef struct mk_scrub_counts_s {
    uint64_t batches;         /* batches verified (since start) */
    uint64_t bytes;           /* bytes verified */
    int64_t last_pass_ms;     /* wall clock at the end of the last full pass that read every
                                 replica (of the broker), -1 none yet */
    uint64_t corruptions;     /* replicas found holding bad batches (each finding once) */
    uint64_t divergences;     /* of which: sound batches that differ from the other replicas */
    uint64_t repaired;        /* repairs done (truncate and fetch again) */
    int32_t unrepairable;     /* partitions with lost data now (on this broker) */
    uint64_t incidents;       /* audit incidents, all recorded (the store's, since the audit began) */
} mk_scrub_counts_t;

typedef struct mk_scrub_status_s {
    bool enabled;             /* passes run (interval >= 0) */
    int64_t rate_bytes_per_sec;
    int64_t interval_ms;
    uint64_t passes;          /* full passes finished since start */
    bool pass_running;
    int64_t pass_started_ms;  /* wall clock, -1 when none runs */
    size_t pass_done, pass_total;   /* partitions of the running pass */
    uint64_t audit_events;    /* audit rows written since start */
    mk_scrub_counts_t total;
} mk_scrub_status_t;

void mk_scrub_status(const mk_scrub_t *s, mk_scrub_status_t *out);
/* Counts of one broker (zeros for an unknown id). */
void mk_scrub_broker_counts(const mk_scrub_t *s, int32_t broker, mk_scrub_counts_t *out);

/* A replica whose data at some offsets has no sound copy anywhere. */
typedef struct mk_scrub_lost_s {
    const char *topic;        /* internal name */
    int32_t partition;
    int32_t broker;
    int nranges;
    const int64_t (*ranges)[2];   /* [from, to] offsets, to inclusive (INT64_MAX: to the end) */
    const char *why;          /* the first finding, a sentence */
    int64_t since_ms;         /* wall clock of the mark */
} mk_scrub_lost_t;
typedef void (*mk_scrub_lost_cb)(const mk_scrub_lost_t *l, void *arg);
/* Every lost-data mark of a topic that still exists.  Returns how many. */
size_t mk_scrub_lost_foreach(const mk_scrub_t *s, mk_scrub_lost_cb cb, void *arg);

/* An audit incident (or a finding), newest last. */
typedef struct mk_scrub_note_s {
    int64_t ts_ms;
    const char *kind;         /* incidents: the rule; audit rows: the row's kind */
    const char *topic;        /* "" for none */
    int32_t partition;        /* -1 for none */
    int32_t broker;           /* -1 for none */
    int64_t from, to;         /* offsets concerned (incidents), or start before/after
                                 (log_start rows); -1 when not known */
    const char *text;
} mk_scrub_note_t;
typedef void (*mk_scrub_note_cb)(const mk_scrub_note_t *n, void *arg);
/* The newest incidents (up to 64, those of earlier runs included). */
void mk_scrub_incidents_foreach(const mk_scrub_t *s, mk_scrub_note_cb cb, void *arg);
/* The newest audit rows this process wrote (up to 64). */
void mk_scrub_audit_recent_foreach(const mk_scrub_t *s, mk_scrub_note_cb cb, void *arg);

/* ============================================================ remote hook */

/* Tiered storage plugs its remote segments in here (broker/ wires it to
 * tier/, so that neither module knows the other).  When the scrubber has
 * walked a partition's local replicas, and the hook is set, it calls check
 * on the loop thread with the topic id, the partition index and the scrub
 * rate; check returns 0 when it started verifying the partition's remote
 * segments against their manifest checksums (on its own threads, paced at
 * that rate), else nonzero (nothing remote: the pass goes on).  Once
 * started, it tells what it finds through mk_scrub_remote_report() on the
 * loop thread: each corrupt segment as it is handled (re-uploaded from a
 * local copy, or unrepairable), then one report with done set, after which
 * the pass goes on to the next partition.  cancel stops the reports (the
 * scrubber, or the hook, goes). */
enum {
    MK_SCRUB_REMOTE_REUPLOADED = 1,   /* corrupt; uploaded again from a sound local copy */
    MK_SCRUB_REMOTE_UNREPAIRABLE,     /* corrupt; no local copy with the manifest's bytes */
    MK_SCRUB_REMOTE_REUPLOAD_FAILED   /* corrupt; the re-upload failed: tried at the next pass */
};

typedef struct mk_scrub_remote_report_s {
    bool done;                /* the partition's last report, with the counts */
    /* done */
    uint64_t segments;        /* remote segments read whole and found sound */
    uint64_t bytes;           /* remote bytes read */
    uint64_t skipped;         /* not checked (S3 failing, the segment busy) */
    /* !done: one corrupt remote segment */
    int outcome;              /* MK_SCRUB_REMOTE_* */
    bool repeat;              /* found unrepairable before: counted and told once */
    const char *topic;
    int32_t partition;
    int64_t start, end;       /* its offsets */
    const char *segment_id;
    int32_t broker;           /* the local copy re-uploaded, -1 */
    const char *why;
} mk_scrub_remote_report_t;

typedef struct mk_scrub_remote_hook_s {
    int (*check)(void *arg, const uint8_t topic_id[16], int32_t partition, int64_t rate_bytes_per_sec);
    void (*cancel)(void *arg);
    void *arg;
} mk_scrub_remote_hook_t;
/* Set (or, NULL, clear) the hook; a check running under the old one is
 * cancelled. */
void mk_scrub_set_remote_hook(mk_scrub_t *s, const mk_scrub_remote_hook_t *hook);
/* What the hook's check found (loop thread; see above). */
void mk_scrub_remote_report(mk_scrub_t *s, const mk_scrub_remote_report_t *r);

/* Counts of the remote checks (all brokers: the remote copy is one). */
typedef struct mk_scrub_remote_counts_s {
    bool checked;             /* a hook is set (tiered storage runs) */
    uint64_t segments;        /* remote segments verified whole */
    uint64_t bytes;           /* remote bytes read */
    uint64_t corrupt;         /* corrupt remote segments found (each once) */
    uint64_t reuploaded;      /* of which uploaded again from a local copy */
    uint64_t unrepairable;    /* of which with no local copy to repair them (each once) */
    uint64_t reupload_failed; /* re-uploads that failed (tried again at the next pass) */
    uint64_t skipped;         /* segments not checked when their turn came */
} mk_scrub_remote_counts_t;
void mk_scrub_remote_counts(const mk_scrub_t *s, mk_scrub_remote_counts_t *out);

/* ================================================================== offline */

/* `minikora verify --data-dir DIR`: the same checks on a stopped cluster's
 * data directory, which is only read (logs opened as they are, no
 * recovery; the metadata store opened read-only): every batch of every
 * replica through the validator, replicas compared (batches at one offset
 * under one leader epoch must match; the high watermark is not known
 * offline), the audit rules the files can still answer (each replica's log
 * start where the audit left it), and the metadata store's own integrity
 * check.  Problems and a summary are written to out.  Returns the number
 * of problems (0: clean), or a negative MK_ERR_* when the directory cannot
 * be read as a data directory.  Blocking. */
int mk_scrub_verify_dir(const char *data_dir, FILE *out);

#endif /* MK_SCRUB_H */
