/*
 * meta.h -- L1: the SQLite metadata store.  The only public header of meta/,
 * and meta/ is the only module that includes sqlite3.h.
 *
 * What it keeps, in one SQLite file (WAL mode, synchronous=NORMAL, foreign
 * keys on): cluster-wide key/values (cluster.id, ...), topics with their
 * configs and partition assignments (schema v1), and consumer-group committed
 * offsets (v2), the durability audit's events (v3), and tiered storage's
 * remote log metadata (v4).  Later versions add more (see the migration
 * table in meta.c).
 *
 * The store is persistence only: the cluster and group modules keep the live
 * state in memory, load it once at startup with mk_meta_topic_foreach() and
 * mk_meta_offsets_foreach(), and write every change through.
 *
 * Threads.  One mk_meta_t owns one SQLite connection, guarded by a mutex, so
 * every function may be called from any thread.  Reads (the walks, kv get,
 * the check) are plain functions and block on disk: startup, shutdown and
 * tests only (STYLE.md #11).  Every write is one mk_meta_op_t, a kind and its
 * arguments, that runs either synchronously (mk_meta_op_run(), blocking,
 * startup and tests) or on the event loop through mk_meta_op_submit(): it
 * copies the arguments, runs the write on a libuv worker thread and calls
 * back on the loop thread.  Submitted writes are applied strictly in
 * submission order: one job at a time, from a FIFO.  All submissions to one
 * store, and mk_meta_close() while any is pending, must come from the thread
 * running that loop.
 *
 * Errors are MK_ERR_* from base.h: MK_ERR_NOT_FOUND (no such topic or key),
 * MK_ERR_EXISTS (a uniqueness rule broken), MK_ERR_INVALID (bad argument),
 * MK_ERR_NOMEM, MK_ERR_IO (disk), MK_ERR_CORRUPT (bad bytes read back),
 * MK_ERR_DB (any other SQLite failure; always logged with SQLite's message).
 */
#ifndef MK_META_H
#define MK_META_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/base.h"

/* Schema version this build writes (PRAGMA user_version). */
#define MK_META_SCHEMA_VERSION 4
/* Limits on what we store; also enforced when reading back. */
#define MK_META_MAX_PARTITIONS 1000000
#define MK_META_MAX_REPLICAS 256
#define MK_META_MAX_NAME 1024   /* bytes in a topic name, group id, config key or kv key */
/* Bytes of an offset's metadata string.  The group coordinator enforces
 * Kafka's offset.metadata.max.bytes (default 4096); this is only the store's
 * own bound, well above it. */
#define MK_META_MAX_OFFSET_METADATA 65536

typedef struct mk_meta_s mk_meta_t;

/* Assignment of one partition.  replicas[0..replica_count) are broker ids,
 * preferred leader first.  Read back, a partition with no stored assignment
 * has leader -1, leader_epoch -1 and no replicas. */
typedef struct mk_meta_partition_s {
    int32_t partition;
    int32_t leader;          /* broker id, -1 = none */
    int32_t leader_epoch;
    int32_t replica_count;   /* 0..MK_META_MAX_REPLICAS */
    int32_t *replicas;
} mk_meta_partition_t;

/* One topic config override (Kafka's name, e.g. "retention.ms"). */
typedef struct mk_meta_config_s {
    const char *key;
    const char *value;
} mk_meta_config_t;

typedef struct mk_meta_topic_s {
    const char *name;              /* unique, 1..MK_META_MAX_NAME bytes */
    uint8_t topic_id[16];          /* Kafka's Uuid, unique */
    int32_t partition_count;       /* 1..MK_META_MAX_PARTITIONS */
    int16_t replication_factor;
    int64_t created_ms;
    int32_t cell_id;               /* owning cell */
    /* NULL (no assignments) or exactly partition_count entries with
     * partitions[i].partition == i.  Always non-NULL when read back. */
    mk_meta_partition_t *partitions;
    int32_t config_count;
    mk_meta_config_t *configs;
} mk_meta_topic_t;

/* ============================================================ open / close */

/* Opens or creates the store at path (":memory:" for a private in-memory
 * one), applies pending schema migrations and runs PRAGMA quick_check.
 * Returns 0 and *out, or MK_ERR_DB for a file that is not a minikora store,
 * is corrupt or cannot be opened (logged), MK_ERR_UNSUPPORTED for a schema
 * newer than this build, MK_ERR_NOMEM.  Blocking; startup only. */
int mk_meta_open(const char *path, mk_meta_t **out);

/* Opens an existing store at path read-only, for offline tools (`minikora
 * verify`): nothing is created, migrated or written (an older schema is
 * read as it is: what it lacks reads as empty), and PRAGMA quick_check
 * runs as in mk_meta_open().  Writes fail.  Returns as mk_meta_open(), and
 * MK_ERR_NOT_FOUND when there is no file.  Blocking. */
int mk_meta_open_readonly(const char *path, mk_meta_t **out);

/* Closes the store.  No new write is submitted afterwards.  With no
 * submitted write pending it closes at once (and is safe from any thread).
 * Otherwise the pending writes still run in order and their callbacks fire as
 * usual; the store is freed after the last callback returns, so keep running
 * the loop (uv_run(UV_RUN_DEFAULT) returns only once they are done).  May be
 * called from inside a done callback.  NULL is a no-op. */
void mk_meta_close(mk_meta_t *m);

/* Number of submitted writes queued or running.  Loop thread. */
size_t mk_meta_pending(const mk_meta_t *m);

/* Integrity check: PRAGMA quick_check and PRAGMA foreign_key_check.  Returns
 * 0 when both are clean, MK_ERR_CORRUPT with the first findings in why (NUL-
 * terminated, truncated to n), or MK_ERR_DB if the check could not run.
 * why may be NULL.  Blocking; time grows with the file size. */
int mk_meta_check(mk_meta_t *m, char *why, size_t n);

/* =============================================================== key/value */

/* Value of a cluster key into *value_out (caller frees with mk_free), or
 * MK_ERR_NOT_FOUND.  Blocking. */
int mk_meta_kv_get(mk_meta_t *m, const char *key, char **value_out);

/* Walks the keys starting with prefix in key order; values valid during the
 * call only; the callback must not call into the store.  A nonzero return
 * stops the walk and is returned.  Blocking; startup only. */
typedef int (*mk_meta_kv_cb)(const char *key, const char *value, void *arg);
int mk_meta_kv_foreach(mk_meta_t *m, const char *prefix, mk_meta_kv_cb cb, void *arg);

/* ================================================================== topics */

/* Called once per topic, in name order.  t and everything it points to are
 * valid during the call only.  A nonzero return stops the walk and becomes
 * the return value of mk_meta_topic_foreach().  The callback must not call
 * into the same store (its connection is held). */
typedef int (*mk_meta_topic_cb)(const mk_meta_topic_t *t, void *arg);

/* Walks every stored topic.  Returns 0, the callback's nonzero value,
 * MK_ERR_CORRUPT for stored values out of range (logged), MK_ERR_NOMEM or
 * MK_ERR_DB.  Blocking; startup only. */
int mk_meta_topic_foreach(mk_meta_t *m, mk_meta_topic_cb cb, void *arg);

/* ========================================================= group offsets */

/* One committed offset (Kafka's OffsetCommit / OffsetFetch fields), keyed by
 * (group_id, topic, partition).  group_id and topic are the internal
 * (tenant-namespaced) names.  A topic need not exist in the store: offsets
 * are kept by name, and are removed with their topic by MK_META_TOPIC_DELETE
 * or MK_META_OFFSETS_DELETE_TOPIC. */
typedef struct mk_meta_offset_s {
    const char *group_id;    /* 1..MK_META_MAX_NAME bytes */
    const char *topic;       /* 1..MK_META_MAX_NAME bytes */
    int32_t partition;       /* 0..MK_META_MAX_PARTITIONS-1 */
    int64_t offset;          /* CommittedOffset, stored as given */
    int32_t leader_epoch;    /* CommittedLeaderEpoch, -1 = none; >= -1 */
    const char *metadata;    /* CommittedMetadata; NULL = null (kept apart from "");
                              * at most MK_META_MAX_OFFSET_METADATA bytes */
    int64_t commit_ms;       /* commit timestamp, >= 0 */
    int64_t expire_ms;       /* explicit expiry timestamp (OffsetCommit v1), -1 = none */
} mk_meta_offset_t;

/* Called once per offset, ordered by group_id, topic (byte order), then
 * partition.  o and its strings are valid during the call only.  A nonzero
 * return stops the walk and becomes the return value of
 * mk_meta_offsets_foreach().  The callback must not call into the same store
 * (its connection is held). */
typedef int (*mk_meta_offset_cb)(const mk_meta_offset_t *o, void *arg);

/* Walks every stored offset.  Returns 0, the callback's nonzero value,
 * MK_ERR_CORRUPT for stored values out of range (logged), MK_ERR_NOMEM or
 * MK_ERR_DB.  Allocates nothing of ours.  Blocking; startup only. */
int mk_meta_offsets_foreach(mk_meta_t *m, mk_meta_offset_cb cb, void *arg);

/* The offset expiry rule, its one copy: an offset committed at commit_ms,
 * with an explicit expiry timestamp expire_ms (-1 = none), has expired at
 * now_ms when expire_ms >= 0 and expire_ms <= now_ms, or, when retention_ms
 * >= 0 (-1 = explicit expiry only), when expire_ms == -1 and commit_ms <=
 * now_ms - retention_ms.  MK_META_OFFSETS_EXPIRE applies it to the stored
 * rows; the group coordinator applies it to its in-memory offsets.  Pure;
 * any thread. */
bool mk_meta_offset_expired(int64_t commit_ms, int64_t expire_ms, int64_t now_ms,
                            int64_t retention_ms);

/* =================================================================== audit */

/* One event of the durability audit (scrub/), a row of the audit table
 * (schema v3).  Numbers that do not apply to the kind are
 * MK_META_AUDIT_NONE (stored as NULL).  kind is one of
 *   "log_start"        a replica's log start offset changed: start_before
 *                      (NONE when first seen) -> start_after; rule = the cause
 *   "segment_deleted"  retention (or DeleteRecords) deleted a segment
 *                      [base_offset, end_offset): largest_ts, the topic's
 *                      retention_ms / retention_bytes then, log_bytes after;
 *                      rule = the log's reason
 *   "retention"        a topic's effective retention.ms / retention.bytes,
 *                      when first seen and whenever they change
 *   "incident"         an audit rule failed: rule names it, base_offset /
 *                      end_offset the offsets concerned when known
 * (tiering will add remote-segment kinds). */
#define MK_META_AUDIT_NONE INT64_MIN
#define MK_META_MAX_AUDIT_DETAIL 1024  /* bytes of detail */

typedef struct mk_meta_audit_s {
    int64_t seq;              /* read back: increasing row number; ignored on write */
    int64_t ts_ms;            /* >= 0 */
    const char *kind;         /* 1..64 bytes, see above */
    const char *topic;        /* internal topic name, "" for none */
    const char *topic_id;     /* the topic's Uuid text, "" for none */
    int32_t partition;        /* >= -1; -1 for none */
    int32_t broker;           /* >= -1; -1 for none */
    int64_t start_before, start_after;
    int64_t base_offset, end_offset;
    int64_t largest_ts;
    int64_t retention_ms, retention_bytes;
    int64_t log_bytes;
    const char *rule;         /* 0..64 bytes (NULL reads as "") */
    const char *detail;       /* 0..MK_META_MAX_AUDIT_DETAIL bytes (NULL reads as "") */
} mk_meta_audit_t;

/* Called once per audit row, in seq order; a and its strings are valid
 * during the call only; the callback must not call into the store.  A
 * nonzero return stops the walk and is returned. */
typedef int (*mk_meta_audit_cb)(const mk_meta_audit_t *a, void *arg);

/* Walks the audit rows with seq > after_seq (0: all), of kind (NULL: every
 * kind).  A store whose schema predates the audit (read-only open) has
 * none.  Returns 0, the callback's value, MK_ERR_CORRUPT (a row out of
 * range, logged), MK_ERR_NOMEM, MK_ERR_DB.  Blocking: startup and tools. */
int mk_meta_audit_foreach(mk_meta_t *m, int64_t after_seq, const char *kind, mk_meta_audit_cb cb, void *arg);

/* ====================================================== remote segments */

/* Tiered storage's remote log metadata (KIP-405's RemoteLogSegmentMetadata):
 * one row per segment copied (or being copied, or being deleted) to S3,
 * keyed by (topic_id, partition, segment_id).  Kept by topic id, not name, so
 * a topic deleted and made again under its name never meets the old rows;
 * no foreign key: tier/ deletes a gone topic's objects first, then the rows.
 * The blobs are tier/'s (it encodes and checks them); the store only bounds
 * their size. */
enum {
    MK_META_RSEG_COPY_STARTED = 0,
    MK_META_RSEG_COPY_FINISHED = 1,
    MK_META_RSEG_DELETE_STARTED = 2,
    MK_META_RSEG_DELETE_FINISHED = 3,
};
#define MK_META_MAX_RSEG_BLOB (4 << 20)   /* bytes of each blob column */
#define MK_META_MAX_RSEG_ID 64

typedef struct mk_meta_remote_segment_s {
    uint8_t topic_id[16];
    int32_t partition;             /* 0..MK_META_MAX_PARTITIONS-1 */
    const char *segment_id;        /* 1..MK_META_MAX_RSEG_ID bytes */
    const char *topic;             /* the topic's name at upload (object keys) */
    int64_t start_offset;          /* first offset, >= 0 */
    int64_t end_offset;            /* last offset (inclusive, as Kafka's), >= start */
    int64_t max_timestamp;         /* largest batch maxTimestamp, -1 none */
    int64_t size_bytes;            /* the segment's .log bytes */
    int32_t state;                 /* MK_META_RSEG_* */
    int32_t broker;                /* the leader that copied it */
    int32_t leader_epoch;          /* its epoch then */
    uint32_t crc32c;               /* of the .log object */
    const char *sha256;            /* hex, of the .log object ("" until known) */
    const uint8_t *epochs;         /* the leader-epoch map (tier/'s encoding) */
    int32_t epochs_len;
    const uint8_t *chunks;         /* the read index: chunk cuts (tier/'s encoding) */
    int32_t chunks_len;
    const uint8_t *aborted;        /* aborted transactions ending in it (tier/'s) */
    int32_t aborted_len;
    int64_t event_ms;              /* when the state last changed */
} mk_meta_remote_segment_t;

/* Called once per row, ordered by topic_id, partition, start_offset; r
 * and its pointers valid during the call only; the callback must not call
 * into the store.  A nonzero return stops the walk and is returned. */
typedef int (*mk_meta_remote_segment_cb)(const mk_meta_remote_segment_t *r, void *arg);
/* Walks every row.  0, the callback's value, MK_ERR_CORRUPT (a value out
 * of range, logged), MK_ERR_NOMEM, MK_ERR_DB.  Blocking; startup only. */
int mk_meta_remote_segments_foreach(mk_meta_t *m, mk_meta_remote_segment_cb cb, void *arg);

/* ================================================================== writes */

/* Kinds of write, with the fields of mk_meta_op_t each one reads.  Every
 * write returns 0 or a negative MK_ERR_*; MK_ERR_INVALID when an argument
 * breaks the field rules above (checked before anything is written). */
typedef enum mk_meta_op_kind_e {
    /* key; value.  Sets (value != NULL) or deletes (value == NULL; an absent
     * key is fine) a cluster key. */
    MK_META_KV_SET,
    /* t.  Inserts t, or replaces the topic of that name, in one transaction:
     * its stored configs and assignments become exactly those in t (a
     * repeated config key: the last value wins).  MK_ERR_EXISTS when another
     * topic has t->topic_id. */
    MK_META_TOPIC_PUT,
    /* topic.  Deletes a topic with its configs and assignments, and every
     * group's committed offsets of it, in one transaction.  MK_ERR_NOT_FOUND
     * (and nothing deleted) when there is no such topic. */
    MK_META_TOPIC_DELETE,
    /* topic, key; value.  Sets (value != NULL) or removes (value == NULL; an
     * absent key is fine) one config override.  MK_ERR_NOT_FOUND for an
     * unknown topic. */
    MK_META_TOPIC_CONFIG_SET,
    /* topic, p.  Sets the assignment of partition p->partition (leader
     * change, reassignment).  MK_ERR_NOT_FOUND for an unknown topic,
     * MK_ERR_INVALID for a partition out of range. */
    MK_META_PARTITION_PUT,
    /* offsets, n.  Inserts or replaces the n offsets of one commit in one
     * transaction: every row or none (a key repeated within offsets: the last
     * one wins).  One bad row fails the whole write.  n == 0 is a no-op. */
    MK_META_OFFSETS_PUT,
    /* The offset deletes and the expiry return the number of offsets removed
     * (>= 0; none matching is not an error). */
    MK_META_OFFSETS_DELETE_GROUP,      /* group_id: every offset of a group (DeleteGroups) */
    MK_META_OFFSETS_DELETE_PARTITION,  /* group_id, topic, partition: one offset (OffsetDelete) */
    /* topic: every group's offsets of a topic.  MK_META_TOPIC_DELETE already
     * does this in its own transaction; this is for a topic the store does
     * not know. */
    MK_META_OFFSETS_DELETE_TOPIC,
    /* group_id (NULL = every group), now_ms >= 0, retention_ms >= -1.
     * Deletes the offsets that mk_meta_offset_expired() says have expired at
     * now_ms.  Kafka expires by retention only the offsets of Empty groups;
     * which groups qualify is the caller's business. */
    MK_META_OFFSETS_EXPIRE,
    /* audit, n >= 1.  Appends n audit rows in one transaction (seq
     * assigned in order).  MK_ERR_INVALID for a row out of range. */
    MK_META_AUDIT_APPEND,
    /* n >= 1.  Keeps the audit table to about the newest n rows: older
     * rows go, except the newest "log_start" row of each replica and the
     * newest "retention" row of each topic, which the audit needs.
     * Returns the number of rows removed. */
    MK_META_AUDIT_PRUNE,
    /* rs.  Inserts or replaces a remote segment's row (every field). */
    MK_META_REMOTE_SEGMENT_PUT,
    /* rs (its key, state, event_ms).  Sets a row's state; MK_ERR_NOT_FOUND
     * when there is no such row. */
    MK_META_REMOTE_SEGMENT_STATE,
    /* rs (its key).  Deletes a row (DELETE_FINISHED: nothing is left of it);
     * an absent row is fine. */
    MK_META_REMOTE_SEGMENT_DELETE,
    MK_META_OP__COUNT
} mk_meta_op_kind_t;

/* One write: the kind and its arguments.  Fields the kind does not read are
 * ignored (leave them zero: designated initializers).  Not kept by the store:
 * mk_meta_op_submit() copies what it needs. */
typedef struct mk_meta_op_s {
    mk_meta_op_kind_t kind;
    const char *topic;                /* topic name */
    const char *group_id;
    const char *key;                  /* kv key or config key */
    const char *value;                /* kv or config value, NULL = delete */
    int32_t partition;                /* OFFSETS_DELETE_PARTITION */
    const mk_meta_topic_t *t;         /* TOPIC_PUT */
    const mk_meta_partition_t *p;     /* PARTITION_PUT */
    const mk_meta_offset_t *offsets;  /* OFFSETS_PUT: n rows */
    int n;
    int64_t now_ms, retention_ms;     /* OFFSETS_EXPIRE */
    const mk_meta_audit_t *audit;     /* AUDIT_APPEND: n rows */
    const mk_meta_remote_segment_t *rs; /* REMOTE_SEGMENT_* */
} mk_meta_op_t;

/* Runs op now, under the connection lock, and returns its status (see the
 * kinds above).  Blocking: startup, shutdown and tests only. */
int mk_meta_op_run(mk_meta_t *m, const mk_meta_op_t *op);

/* Completion of a submitted write, on the loop thread: status is what
 * mk_meta_op_run() would have returned (for the offset deletes and the
 * expiry: a count >= 0 on success); MK_ERR_STATE if the job was cancelled. */
typedef void (*mk_meta_done_cb)(int status, void *arg);

/* Copies op's arguments (the caller may free them on return), queues the
 * write and returns 0; the write then runs on a libuv worker thread after
 * every earlier submitted write, and cb (may be NULL) runs on the loop thread
 * afterwards.  On error (MK_ERR_INVALID for bad arguments or a loop other
 * than the one of the writes still pending, MK_ERR_STATE after
 * mk_meta_close(), MK_ERR_NOMEM) nothing is queued and cb is never called.
 * Loop thread. */
int mk_meta_op_submit(mk_meta_t *m, uv_loop_t *loop, const mk_meta_op_t *op,
                      mk_meta_done_cb cb, void *arg);

#endif /* MK_META_H */
