/*
 * meta.h -- L1: the SQLite metadata store.  The only public header of meta/,
 * and meta/ is the only module that includes sqlite3.h.
 *
 * What it keeps, in one SQLite file (WAL mode, synchronous=NORMAL, foreign
 * keys on): cluster-wide key/values (cluster.id, ...), topics with their
 * configs and partition assignments (schema v1), and consumer-group committed
 * offsets (v2).  Later versions add tenants and ACLs (see the migration table
 * in meta.c).
 *
 * The store is persistence only: the cluster and group modules keep the live
 * state in memory, load it once at startup with mk_meta_topic_foreach() and
 * mk_meta_offsets_foreach(), and write every change through.
 *
 * Threads.  One mk_meta_t owns one SQLite connection, guarded by a mutex, so
 * every function may be called from any thread.  The synchronous calls block
 * on disk and are for startup, shutdown and tests only (STYLE.md #11).  On the
 * event loop use the *_async calls: they copy their arguments, run the write
 * on a libuv worker thread and call back on the loop thread.  Async writes are
 * applied strictly in submission order: one job at a time, from a FIFO.  All
 * async calls on one store, and mk_meta_close() while any is pending, must
 * come from the thread running that loop.
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
#define MK_META_SCHEMA_VERSION 2
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

/* Closes the store.  No new async write is accepted afterwards.  With no
 * async write pending it closes at once (and is safe from any thread).
 * Otherwise the pending writes still run in order and their callbacks fire as
 * usual; the store is freed after the last callback returns, so keep running
 * the loop (uv_run(UV_RUN_DEFAULT) returns only once they are done).  May be
 * called from inside a done callback.  NULL is a no-op. */
void mk_meta_close(mk_meta_t *m);

/* Number of async writes queued or running.  Loop thread. */
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

/* Sets (value != NULL) or deletes (value == NULL; absent key is fine) a
 * cluster key.  Blocking. */
int mk_meta_kv_set(mk_meta_t *m, const char *key, const char *value);

/* Walks the keys starting with prefix in key order; values valid during the
 * call only; the callback must not call into the store.  A nonzero return
 * stops the walk and is returned.  Blocking; startup only. */
typedef int (*mk_meta_kv_cb)(const char *key, const char *value, void *arg);
int mk_meta_kv_foreach(mk_meta_t *m, const char *prefix, mk_meta_kv_cb cb, void *arg);

/* ================================================================== topics */

/* Inserts t, or replaces the topic of that name, in one transaction: its
 * stored configs and assignments become exactly those in t (a repeated
 * config key: the last value wins).  Returns 0, MK_ERR_INVALID (see the
 * field rules above), or MK_ERR_EXISTS when another topic has t->topic_id.
 * Does not keep t.  Blocking. */
int mk_meta_topic_put(mk_meta_t *m, const mk_meta_topic_t *t);

/* Deletes a topic with its configs and assignments, and every group's
 * committed offsets of it, in one transaction.  MK_ERR_NOT_FOUND (and
 * nothing deleted) when there is no such topic.  Blocking. */
int mk_meta_topic_delete(mk_meta_t *m, const char *name);

/* Sets (value != NULL) or removes (value == NULL) one config override of a
 * topic.  MK_ERR_NOT_FOUND when the topic does not exist; removing an absent
 * key is fine.  Blocking. */
int mk_meta_topic_config_set(mk_meta_t *m, const char *topic, const char *key,
                             const char *value);

/* Sets the assignment of one partition p->partition of a topic (leader
 * change, reassignment).  MK_ERR_NOT_FOUND for an unknown topic,
 * MK_ERR_INVALID for a partition out of range.  Blocking. */
int mk_meta_partition_put(mk_meta_t *m, const char *topic, const mk_meta_partition_t *p);

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
 * are kept by name, and are removed with their topic by
 * mk_meta_topic_delete() or mk_meta_offsets_delete_topic(). */
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

/* Inserts or replaces the n offsets of one commit, all in one transaction:
 * either every row is written or none is (a key repeated within offs: the
 * last one wins).  Every row is checked before anything is written; one bad
 * row (see the field rules above) fails the whole call with MK_ERR_INVALID.
 * n == 0 is a no-op.  Does not keep offs.  Blocking. */
int mk_meta_offsets_put(mk_meta_t *m, const mk_meta_offset_t *offs, int n);

/* The deletes and the expiry return the number of offsets removed (>= 0;
 * none matching is not an error) or a negative MK_ERR_*.  Blocking. */

/* Every offset of a group (DeleteGroups). */
int mk_meta_offsets_delete_group(mk_meta_t *m, const char *group_id);
/* One offset (OffsetDelete). */
int mk_meta_offsets_delete_partition(mk_meta_t *m, const char *group_id, const char *topic,
                                     int32_t partition);
/* Every group's offsets of a topic (topic deletion).  mk_meta_topic_delete()
 * already does this in its own transaction; this call is for offsets of a
 * topic the store does not know. */
int mk_meta_offsets_delete_topic(mk_meta_t *m, const char *topic);

/* Deletes the offsets of group_id (NULL = of every group) that have expired
 * at now_ms: those with an explicit expire_ms <= now_ms, and, when
 * retention_ms >= 0, those without one (expire_ms == -1) whose
 * commit_ms <= now_ms - retention_ms.  Kafka expires by retention only the
 * offsets of Empty groups; which groups qualify is the caller's business.
 * now_ms >= 0, retention_ms >= -1 (-1 = explicit expiry only). */
int mk_meta_offsets_expire(mk_meta_t *m, const char *group_id, int64_t now_ms,
                           int64_t retention_ms);

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

/* ============================================================ async writes */

/* Completion of an async write, on the loop thread: status is what the
 * synchronous call would have returned (for the offset deletes and the
 * expiry: a count >= 0 on success). */
typedef void (*mk_meta_done_cb)(int status, void *arg);

/* The async writes below copy their arguments (the caller may free them on
 * return), queue the write and return 0; the write then runs on a libuv
 * worker thread after every earlier async write, and cb (may be NULL) runs on
 * the loop thread afterwards.  On error (MK_ERR_INVALID for bad arguments or
 * a loop other than the one of the writes still pending, MK_ERR_STATE after
 * mk_meta_close(), MK_ERR_NOMEM) nothing is queued and cb is never called.
 * Call on the loop thread. */
int mk_meta_topic_put_async(mk_meta_t *m, uv_loop_t *loop, const mk_meta_topic_t *t,
                            mk_meta_done_cb cb, void *arg);
int mk_meta_topic_delete_async(mk_meta_t *m, uv_loop_t *loop, const char *name,
                               mk_meta_done_cb cb, void *arg);
int mk_meta_topic_config_set_async(mk_meta_t *m, uv_loop_t *loop, const char *topic,
                                   const char *key, const char *value,
                                   mk_meta_done_cb cb, void *arg);
int mk_meta_partition_put_async(mk_meta_t *m, uv_loop_t *loop, const char *topic,
                                const mk_meta_partition_t *p, mk_meta_done_cb cb, void *arg);
int mk_meta_kv_set_async(mk_meta_t *m, uv_loop_t *loop, const char *key, const char *value,
                         mk_meta_done_cb cb, void *arg);
int mk_meta_offsets_put_async(mk_meta_t *m, uv_loop_t *loop, const mk_meta_offset_t *offs,
                              int n, mk_meta_done_cb cb, void *arg);
int mk_meta_offsets_delete_group_async(mk_meta_t *m, uv_loop_t *loop, const char *group_id,
                                       mk_meta_done_cb cb, void *arg);
int mk_meta_offsets_delete_partition_async(mk_meta_t *m, uv_loop_t *loop, const char *group_id,
                                           const char *topic, int32_t partition,
                                           mk_meta_done_cb cb, void *arg);
int mk_meta_offsets_delete_topic_async(mk_meta_t *m, uv_loop_t *loop, const char *topic,
                                       mk_meta_done_cb cb, void *arg);
int mk_meta_offsets_expire_async(mk_meta_t *m, uv_loop_t *loop, const char *group_id,
                                 int64_t now_ms, int64_t retention_ms,
                                 mk_meta_done_cb cb, void *arg);

#endif /* MK_META_H */
