/*
 * tier.h -- L3: tiered storage (KIP-405) to S3, the only public header of
 * src/tier/.
 *
 * Three tiers, as Kora keeps them: memory (a bounded cache of chunks read
 * back from S3), local disk (the partition logs) and object storage.  New
 * data is written and replicated locally as usual.  The leader of a tiered
 * partition copies each sealed segment below the high watermark (and the
 * last stable offset) to S3 with its indexes, leader-epoch checkpoint,
 * producer state and a manifest; once the copy is verified the segment may
 * go from local disk after local.retention.*, and from S3 after
 * retention.*.  Reads below the local data are served from S3 in chunks
 * through the cache, each chunk through batch/'s one validator first.
 *
 * The remote log metadata -- one row per remote segment, with its state
 * COPY_STARTED, COPY_FINISHED, DELETE_STARTED (DELETE_FINISHED: the row is
 * gone) -- lives in meta/ (SQLite), so it means the same for every replica
 * and survives restarts; only COPY_FINISHED segments are read or let local
 * segments go.
 *
 * S3 is reached with libs3 (Debian's 2.0: signature V2, one PUT per object)
 * on tier's own worker threads, never on the loop: uploads and deletes on
 * two threads, reads on two others, so a slow upload never holds a read.
 * Every request has a deadline (minikora.tier.request.timeout.ms); failed
 * uploads and deletes are retried with backoff; while S3 fails, local
 * segments stay (local retention is exceeded rather than data lost) and a
 * read of remote-only data fails with MK_ERR_IO, which clients get as the
 * retriable KAFKA_STORAGE_ERROR.
 *
 * Threads: every function here runs on the loop thread.
 */
#ifndef MK_TIER_H
#define MK_TIER_H

#include "base/base.h"
#include "cluster/cluster.h"
#include "partition/partition.h"

typedef struct mk_tier_s mk_tier_t;

/* ================================================================= target */

/* Where segments go: the bundled server (s3d/) or an external endpoint. */
typedef struct mk_tier_target_s {
    char url[300];            /* http://host:port, for people */
    char host[280];           /* host:port as libs3 takes it */
    bool https;
    bool virtual_style;       /* bucket.host/key instead of host/bucket/key */
    bool bundled;             /* the in-process server */
    char bucket[64];
    char region[64];
    char access_key[129];
    char secret_key[129];
} mk_tier_target_t;

/* The target that cfg names: minikora.s3.endpoint (with minikora.s3.bucket,
 * .region, .uri.style, .access.key, .secret.key) when set, else the bundled
 * server described by the other arguments (bundled_url NULL: none).  Returns
 * 1 and *out, 0 when there is no target (tiering stays off), or
 * MK_ERR_INVALID with why (an endpoint without keys or bucket, a bad URL). */
int mk_tier_target_resolve(const mk_config_t *cfg, const char *bundled_url, const char *bundled_bucket,
                           const char *bundled_access_key, const char *bundled_secret_key,
                           const char *bundled_region, mk_tier_target_t *out, char *why, size_t why_len);

/* ================================================================ module */

/* What tier asks of the layer above (broker/ wires transactions in): all
 * optional; called on the loop thread. */
typedef struct mk_tier_hooks_s {
    void *arg;
    /* p's last stable offset, or -1 while its producer state loads: only
     * segments below it are copied (they never change meaning later). */
    int64_t (*stable_offset)(void *arg, mk_partition_t *p);
    /* The aborted transactions of p whose abort marker is in [from, to):
     * cb(producer id, first offset, marker offset). */
    void (*aborted)(void *arg, mk_partition_t *p, int64_t from, int64_t to,
                    void (*cb)(int64_t pid, int64_t first, int64_t last, void *cbarg), void *cbarg);
    /* p's producers, for the segment's producer-state snapshot. */
    void (*producers)(void *arg, mk_partition_t *p,
                      void (*cb)(int64_t pid, int16_t epoch, int32_t last_seq, int64_t last_ts,
                                 int64_t txn_start, void *cbarg),
                      void *cbarg);
    /* Remote data arrived (or failed): parked requests look again. */
    void (*progress)(void *arg);
} mk_tier_hooks_t;

/* Start tiering to target: the remote log metadata is loaded from the
 * cluster's store (half-done copies and deletes are resumed: a copy that
 * did not finish is deleted and made again), DATA/tier-cache/ is emptied,
 * the worker threads start, the partition writer's segment events are
 * observed, and the cluster's tiered topics hand their retention to tier
 * (mk_cluster_set_tiering).  0 or an error (nothing started). */
int mk_tier_new(uv_loop_t *loop, mk_cluster_t *c, mk_partition_writer_t *writer, const mk_tier_target_t *target,
                const mk_tier_hooks_t *hooks, const char *data_dir, mk_tier_t **out);
/* Stop: S3 requests in flight are abandoned (a copy that did not finish
 * is redone after the next start), the threads joined, memory freed; the
 * cluster's topics take their own retention back.  NULL is a no-op. */
void mk_tier_free(mk_tier_t *t);

const mk_tier_target_t *mk_tier_target(const mk_tier_t *t);

/* ================================================================= reads */

/* The log start offset of p as clients see it (ListOffsets earliest, Fetch
 * LogStartOffset): the first offset still in S3 when that is below
 * local_start (the log start of the replica that answers), else
 * local_start.  t may be NULL. */
int64_t mk_tier_log_start(mk_tier_t *t, const mk_partition_t *p, int64_t local_start);

/* The last offset copied to S3 (KIP-1005's latest-tiered), -1 if none. */
int64_t mk_tier_last_tiered_offset(mk_tier_t *t, const mk_partition_t *p);

/* Read whole batches of p from S3, from the one holding offset, for a Fetch
 * on broker (whose local log starts above offset): appended to out while
 * their total stays within max_bytes (the first batch in any case) and
 * each batch's last offset is below max_offset; *next is the offset after
 * the last one.  Returns 0 (bytes appended; none when the first batch is
 * at or past max_offset), MK_ERR_AGAIN (a chunk is on its way from S3:
 * parked requests are woken through the progress hook), MK_ERR_RANGE (no
 * remote segment holds offset), MK_ERR_IO (S3 failed just now: retriable),
 * MK_ERR_CORRUPT (a chunk failed validation). */
int mk_tier_read(mk_tier_t *t, mk_partition_t *p, int32_t broker, int64_t offset, int64_t max_offset,
                 size_t max_bytes, mk_buf_t *out, int64_t *next);

/* The aborted transactions (read_committed) of remote segments of p that
 * overlap [from, to): cb(producer id, first offset). */
void mk_tier_aborted(mk_tier_t *t, mk_partition_t *p, int64_t from, int64_t to,
                     void (*cb)(int64_t pid, int64_t first, void *arg), void *arg);

/* ListOffsets by timestamp in the remote part of p: the first record at or
 * after ts in a remote segment below local_start.  0 and *offset,
 * *timestamp; MK_ERR_NOT_FOUND (not in S3: look locally), MK_ERR_AGAIN (a
 * chunk is coming), MK_ERR_IO. */
int mk_tier_offset_for_time(mk_tier_t *t, mk_partition_t *p, int32_t broker, int64_t ts, int64_t local_start,
                            int64_t *offset, int64_t *timestamp);
/* ListOffsets max timestamp: when a remote segment below local_start holds
 * a larger timestamp than local_max_ts, the record that has it.  Returns as
 * mk_tier_offset_for_time(). */
int mk_tier_max_timestamp(mk_tier_t *t, mk_partition_t *p, int32_t broker, int64_t local_max_ts,
                          int64_t local_start, int64_t *offset, int64_t *timestamp);

/* ============================================================ replication */

/* A follower of p on broker is below the leader's local log start
 * (KIP-405's OFFSET_MOVED_TO_TIERED_STORAGE): its log is emptied and
 * restarted at leader_local_start, and its leader-epoch cache is rebuilt
 * from the remote log metadata (the epoch in force just below that offset),
 * so that it agrees with the leader's; the batches copied next carry their
 * own epochs.  repl/ calls it through its rebuild hook.  0 or an error. */
int mk_tier_follower_rebuild(mk_tier_t *t, mk_partition_t *p, int32_t broker, mk_log_t *log,
                             int64_t leader_local_start);

/* ========================================================= remote checks */

/* The scrubber's pass covers the remote copy too (broker/ wires scrub/'s
 * remote hook to these).  A check reads every COPY_FINISHED segment of one
 * partition back from S3 on tier's read threads, in steps paced at
 * rate_bytes_per_sec, and compares its manifest and its .log with the
 * checksums of the segment's row (CRC32C, SHA-256: those the upload wrote
 * into the manifest).  A segment found corrupt is uploaded again from a
 * local copy that still has the same bytes (any replica; the local bytes
 * are checked against the manifest first), else it is reported
 * unrepairable (and reads of it keep failing validation: never served). */
enum {
    MK_TIER_CHECK_REUPLOADED = 1, /* corrupt; uploaded again from a local copy, and verified */
    MK_TIER_CHECK_UNREPAIRABLE,   /* corrupt; no local copy with the manifest's bytes */
    MK_TIER_CHECK_REUPLOAD_FAILED /* corrupt; the re-upload failed (S3): tried at the next check */
};

typedef struct mk_tier_check_report_s {
    bool done;                    /* the check's last report, with the counts */
    /* done */
    uint64_t segments;            /* segments read whole and found sound */
    uint64_t bytes;               /* bytes read (sound or not) */
    uint64_t skipped;             /* not checked: S3 failed, or the segment was busy or went */
    /* !done: one corrupt segment */
    int outcome;                  /* MK_TIER_CHECK_* */
    bool repeat;                  /* reported unrepairable by an earlier check already */
    const char *topic;
    int32_t partition;
    int64_t start, end;           /* its offsets */
    const char *segment_id;
    int32_t broker;               /* the local copy re-uploaded, -1 */
    const char *why;              /* what was wrong (and, unrepairable, why) */
} mk_tier_check_report_t;
typedef void (*mk_tier_check_cb)(void *ud, const mk_tier_check_report_t *r);

/* Check the remote copy of (topic_id, partition): cb gets each corrupt
 * segment as it is handled, then one done report (all on the loop thread,
 * never within this call).  One check at a time.  0 (cb will run),
 * MK_ERR_NOT_FOUND (no remote segment: nothing to check, cb will not run),
 * MK_ERR_STATE (a check runs), MK_ERR_NOMEM. */
int mk_tier_check(mk_tier_t *t, const uint8_t topic_id[16], int32_t partition, int64_t rate_bytes_per_sec,
                  mk_tier_check_cb cb, void *ud);
/* The running check's cb will not be called any more (its caller goes). */
void mk_tier_check_cancel(mk_tier_t *t);

/* ================================================================= stats */

enum { MK_TIER_S3_UNKNOWN = 0, MK_TIER_S3_OK, MK_TIER_S3_FAILING };

typedef struct mk_tier_partition_info_s {
    bool tiered;                  /* the topic is tiered now */
    int64_t log_start;            /* as clients see it */
    int64_t local_log_start;      /* the leader's local log start, -1 offline */
    int64_t remote_log_start;     /* first offset in S3, -1 none */
    int64_t remote_end;           /* last offset copied, -1 none */
    int64_t remote_bytes;         /* bytes of COPY_FINISHED segments */
    int32_t segments[4];          /* by state: COPY_STARTED, COPY_FINISHED, DELETE_STARTED, (0) */
    int32_t upload_pending;       /* sealed local segments not copied yet (leader) */
    int64_t upload_pending_bytes;
    uint64_t uploads_failed;      /* failed attempts since start */
    char last_error[160];         /* the last failure, "" none */
    uint64_t cache_memory_bytes;  /* its chunks in the memory tier */
    uint64_t cache_disk_bytes;    /* and in DATA/tier-cache/ */
} mk_tier_partition_info_t;

void mk_tier_partition_info(mk_tier_t *t, mk_partition_t *p, mk_tier_partition_info_t *out);

typedef struct mk_tier_broker_stats_s {
    int32_t uploads_pending;      /* segments its leaders have not copied yet */
    int64_t uploads_pending_bytes;
    int32_t uploads_in_flight;
    uint64_t uploads_done, uploads_failed;
    uint64_t upload_bytes;        /* segment bytes copied */
    uint64_t download_bytes;      /* chunk bytes read from S3 for it */
    uint64_t fetch_bytes;         /* remote bytes it served to clients */
    uint64_t fetch_requests, fetch_errors;
    uint64_t cache_hits, cache_misses;   /* chunk lookups of its remote reads */
    uint64_t deletes_done, deletes_failed;
} mk_tier_broker_stats_t;

void mk_tier_broker_stats(mk_tier_t *t, int32_t broker, mk_tier_broker_stats_t *out);

typedef struct mk_tier_stats_s {
    int s3_status;                /* MK_TIER_S3_* */
    char s3_error[160];           /* the last S3 failure, "" none */
    int64_t s3_last_ok_ms, s3_last_error_ms;   /* wall clock, 0 never */
    uint64_t requests[5];         /* PUT, GET, HEAD, DELETE, (all) */
    uint64_t errors;              /* failed S3 requests */
    uint64_t upload_bytes, download_bytes;
    uint64_t cache_hits, cache_disk_hits, cache_misses;
    uint64_t cache_memory_bytes, cache_memory_chunks, cache_memory_max;
    uint64_t cache_disk_bytes, cache_disk_chunks, cache_disk_max;
    uint64_t remote_bytes, remote_segments;    /* COPY_FINISHED, all partitions */
    int32_t segments[4];          /* by state, all partitions */
    int32_t uploads_in_flight, downloads_in_flight, deletes_in_flight;
    uint64_t uploads_done, uploads_failed, deletes_done, deletes_failed;
    uint64_t fetch_requests, fetch_errors;
    int32_t remote_unrepairable;  /* COPY_FINISHED segments the last check found corrupt with no local copy */
} mk_tier_stats_t;

void mk_tier_stats(mk_tier_t *t, mk_tier_stats_t *out);

/* The state names ("COPY_STARTED", ...) and S3 status names ("ok", ...). */
const char *mk_tier_state_name(int state);
const char *mk_tier_s3_status_name(int status);

#endif /* MK_TIER_H */
