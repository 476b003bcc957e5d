/*
 * txn.h -- L3: idempotent producers and transactions.
 *
 * Two parts:
 *   producer state  per partition, the last 5 batches of every producer id
 *                   (sequences and offsets) so a retried batch is answered
 *                   with its original offset and a gap is refused; open
 *                   transactions (for the last stable offset) and aborted
 *                   ones (for read_committed fetches).  Built lazily from
 *                   the leader's log, so it survives restarts and follows
 *                   leadership.
 *   coordinator     transactional id -> producer id/epoch and transaction
 *                   state; markers written to every partition at EndTxn;
 *                   offsets sent to the transaction applied at commit;
 *                   timeouts abort.  State persisted through meta/.
 *
 * Both parts hang on the partition write path (partition/): txn registers
 * an observer that checks each client batch's sequence and epoch before it
 * is appended and folds what was appended into the producer state, and the
 * coordinator appends its markers through the same path.
 * Threads: loop thread only.
 */
#ifndef MK_TXN_H
#define MK_TXN_H

#include "batch/batch.h"
#include "cluster/cluster.h"
#include "group/group.h"
#include "partition/partition.h"

typedef struct mk_txn_s mk_txn_t;

/* The coordinator and producer state, observing writer (borrowed: it must
 * outlive t).  Completes transactions found in a Prepare state.  0 or an
 * error. */
int mk_txn_new(uv_loop_t *loop, mk_cluster_t *c, mk_group_coord_t *groups, mk_partition_writer_t *writer,
               mk_txn_t **out);
void mk_txn_free(mk_txn_t *t);

/* ========================================================== producer state */

/* Whether p's producer state is built for its current leader epoch.  If
 * not, a load from the log starts on the threadpool (unless one is in
 * flight), and when it ends the partition writer's progress callback runs:
 * the caller re-checks then.  Until then, idempotent and transactional
 * appends to p wait (MK_PARTITION_LOADING). */
bool mk_txn_ready(mk_txn_t *t, mk_partition_t *p);
/* Last stable offset: the first offset of the oldest open transaction, or
 * the high watermark; -1 while the producer state is loading. */
int64_t mk_txn_lso(mk_txn_t *t, mk_partition_t *p);
/* Aborted transactions overlapping [from, to): cb per (producer id, first offset). */
typedef void (*mk_txn_aborted_cb)(int64_t producer_id, int64_t first_offset, void *arg);
void mk_txn_aborted(mk_txn_t *t, mk_partition_t *p, int64_t from, int64_t to, mk_txn_aborted_cb cb, void *arg);
/* Aborted transactions whose abort marker is in [from, to) (what a segment
 * copied to S3 keeps for read_committed reads of it): cb per (producer id,
 * first offset, marker offset). */
typedef void (*mk_txn_aborted_ended_cb)(int64_t producer_id, int64_t first_offset, int64_t marker_offset, void *arg);
void mk_txn_aborted_ended(mk_txn_t *t, mk_partition_t *p, int64_t from, int64_t to, mk_txn_aborted_ended_cb cb,
                          void *arg);

/* ============================================================= coordinator */

/* Broker coordinating a transactional id (as groups), or -1. */
int32_t mk_txn_coordinator(const mk_txn_t *t, const char *transactional_id);

typedef struct mk_txn_pid_s {
    int16_t error;
    int64_t producer_id;
    int16_t producer_epoch;
} mk_txn_pid_t;

/* InitProducerId: tid NULL for an idempotent producer (pid/epoch >= 0 asks
 * for an epoch bump, KIP-360). */
mk_txn_pid_t mk_txn_init_pid(mk_txn_t *t, const char *tid, int32_t timeout_ms, int64_t pid, int16_t epoch);
/* AddPartitionsToTxn for one partition: Kafka error code. */
int16_t mk_txn_add_partition(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, mk_partition_t *p);
/* Validate a transaction (for the other calls): Kafka error code. */
int16_t mk_txn_check(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch);
/* AddOffsetsToTxn. */
int16_t mk_txn_add_offsets(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, const char *group_id);
/* TxnOffsetCommit: stash offsets until the transaction ends. */
int16_t mk_txn_offset_commit(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, const char *group_id,
                             const mk_group_commit_t *commits, int32_t n);
/* EndTxn: markers written, offsets applied (commit) or dropped; Kafka error. */
int16_t mk_txn_end(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, bool commit);

/* Whether an open transaction holds offsets for (group, topic, partition):
 * OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT then. */
bool mk_txn_pending_offset(mk_txn_t *t, const char *group_id, const char *topic, int32_t partition);

/* DescribeTransactions / ListTransactions view of one transactional id. */
typedef struct mk_txn_desc_s {
    const char *transactional_id;
    const char *state;             /* Empty, Ongoing, CompleteCommit, ... */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int64_t start_ms;
    int32_t partition_count;
    const char *const *topics;     /* internal names */
    const int32_t *partitions;
} mk_txn_desc_t;
typedef void (*mk_txn_desc_cb)(const mk_txn_desc_t *d, void *arg);
/* One id (returns false when unknown) or every id (tid NULL). */
bool mk_txn_describe(mk_txn_t *t, const char *tid, mk_txn_desc_cb cb, void *arg);

/* DescribeProducers view of a partition. */
typedef void (*mk_txn_producer_cb)(int64_t pid, int16_t epoch, int32_t last_seq, int64_t last_ts,
                                   int64_t txn_start_offset, void *arg);
void mk_txn_producers(mk_txn_t *t, mk_partition_t *p, mk_txn_producer_cb cb, void *arg);

#endif /* MK_TXN_H */
