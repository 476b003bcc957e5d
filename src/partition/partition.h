/*
 * partition.h -- L3 (bottom): a partition's leader write path and its
 * observers.
 *
 * Every record that enters a partition as its leader -- a client's Produce
 * and a transaction marker alike -- goes through mk_partition_append(), the
 * one append path:
 *
 *   check leadership and (acks=all) min.insync.replicas
 *   -> validate every batch (batch/'s one validator) and parse each header
 *      once into a view that is passed down from here on
 *   -> observers' check hooks (txn: sequences, epochs, duplicates)
 *   -> LogAppendTime rewrite (typed topic config) -> log append
 *   -> observers' appended hooks (txn: producer state; repl: schedule the
 *      followers) -> high watermark -> progress callback (broker: wake the
 *      parked requests).
 *
 * The modules that hang behaviour on a partition's life (txn, repl, and the
 * tiering and scrubber modules to come) register one mk_partition_observer_t
 * each on the cluster's writer: appends (check before, appended after),
 * leadership changes, and segment events (sealed, deleted) of every replica
 * log, which the cluster forwards here.  None of them is called by name from
 * here, so this module depends on nothing above L2.
 *
 * Fields and their one writer.  The struct mk_partition_s is defined in
 * cluster/cluster.h and its fields are visible only to the modules that
 * define MK_PARTITION_FIELDS before including it (cluster, partition, repl,
 * txn); everyone else -- broker/ and admin/ -- reads through the accessors
 * below.  Who writes what:
 *   topic, index, replica_count, replicas[].broker    cluster.c (create, load)
 *   leader, leader_epoch, log                         cluster.c
 *       (mk_cluster_partition_set_leader, broker stop/start)
 *   replicas[].log                                    cluster.c (open/close)
 *   hw                                                partition.c only
 *   replicas[].in_isr, needs_truncate, copy_pending,
 *     caught_up_ms, acked_leo                         repl.c only
 *   producer state (sequences, open and aborted
 *     transactions)                                   txn.c, as an observer
 *
 * Threads: loop thread only.
 */
#ifndef MK_PARTITION_H
#define MK_PARTITION_H

#include "batch/batch.h"
#include "cluster/cluster.h"

/* ================================================================ accessors */

/* Broker id of the leader, -1 while offline. */
int32_t mk_partition_leader(const mk_partition_t *p);
int32_t mk_partition_leader_epoch(const mk_partition_t *p);
int32_t mk_partition_index(const mk_partition_t *p);
/* Its topic (borrowed). */
mk_topic_t *mk_partition_topic(const mk_partition_t *p);
/* The leader replica's log (borrowed), NULL while offline. */
mk_log_t *mk_partition_log(const mk_partition_t *p);
/* High watermark: offsets below it are committed. */
int64_t mk_partition_hw(const mk_partition_t *p);
/* Replicas, preferred leader first: broker id of replica k (0 <= k < count). */
int32_t mk_partition_replica_count(const mk_partition_t *p);
int32_t mk_partition_replica_broker(const mk_partition_t *p, int32_t k);
/* The log of the replica on broker (borrowed), NULL if none or stopped. */
mk_log_t *mk_partition_replica_log(const mk_partition_t *p, int32_t broker);
/* Whether the replica on broker is in the ISR. */
bool mk_partition_replica_in_isr(const mk_partition_t *p, int32_t broker);
/* Number of replicas in the ISR. */
int32_t mk_partition_isr_size(const mk_partition_t *p);
/* Whether the replica on broker is in the ISR with nothing to reconcile:
 * its log holds only what the leader's does (the scrubber compares such
 * replicas with the leader). */
bool mk_partition_replica_settled(const mk_partition_t *p, int32_t broker);

/* ============================================================ the HW (owner) */

/* Recompute the high watermark: the lowest log end in the ISR (the leader
 * included, a follower counted at what the leader last heard of it; one
 * that has not yet truncated to this leader's epoch boundary holds the HW
 * where it is, since its log end may be a stale tail).  It only moves up.  Returns whether it moved.  Called by repl/ after ISR or
 * acknowledgement changes and by the append path. */
bool mk_partition_hw_update(mk_partition_t *p);
/* A new leader: the HW never passes its log end.  Then hw_update. */
void mk_partition_hw_clamp(mk_partition_t *p);
/* Start over from zero (partition set up at startup or creation). */
void mk_partition_hw_reset(mk_partition_t *p);

/* ============================================================== observers */

enum { MK_PARTITION_DUPLICATE = 1000, MK_PARTITION_LOADING = 1001 };

/* What a module hangs on a partition's life.  Any hook may be NULL. */
typedef struct mk_partition_observer_s {
    const char *name;
    /* Before a client's batches are appended, with the first batch's header:
     * 0, a Kafka error code (refuse), MK_PARTITION_DUPLICATE with
     * *dup_offset = the offset the batch got the first time, or
     * MK_PARTITION_LOADING when the observer's state of p is being loaded
     * (off the loop): the append is not done, a->loading says so, and the
     * caller retries after the next progress callback. */
    int (*check)(void *arg, mk_partition_t *p, const mk_batch_hdr_t *h, int64_t *dup_offset);
    /* After the leader appended the n batches that views describe in set
     * (client or control); each view's header is as stored (baseOffset and
     * partitionLeaderEpoch as assigned). */
    void (*appended)(void *arg, mk_partition_t *p, const uint8_t *set, const mk_batch_view_t *views, int n);
    /* p has a new leader (or epoch) after an election. */
    void (*leader_changed)(void *arg, mk_partition_t *p);
    /* A segment of the replica of p on broker was sealed (rolled past:
     * immutable from now on) or deleted (retention, DeleteRecords); see
     * log.h.  For tiering (upload what is sealed) and the scrubber. */
    void (*segment)(void *arg, mk_partition_t *p, int32_t broker, const mk_log_segment_event_t *ev);
    /* Before the replica of p on broker serves offsets from `offset` on (a
     * Fetch): 0 to serve, with *limit lowered (it starts at INT64_MAX) to
     * the first offset it must not serve; or a Kafka error code for the
     * read (the scrubber: CORRUPT_MESSAGE for offsets whose data is lost). */
    int16_t (*read_check)(void *arg, const mk_partition_t *p, int32_t broker, int64_t offset, int64_t *limit);
    void *arg;
} mk_partition_observer_t;

/* The cluster's one leader write path: its observers and progress callback. */
typedef struct mk_partition_writer_s mk_partition_writer_t;

/* Called when high watermarks moved or an append happened (parked requests
 * re-check). */
typedef void (*mk_partition_progress_cb)(void *arg);

int mk_partition_writer_new(mk_cluster_t *c, mk_partition_writer_t **out);
void mk_partition_writer_free(mk_partition_writer_t *w);
/* Register an observer (copied); observers run in registration order.
 * 0 or MK_ERR_NOMEM. */
int mk_partition_writer_observe(mk_partition_writer_t *w, const mk_partition_observer_t *o);
/* Remove the observers registered with arg (one that goes before the
 * writer does). */
void mk_partition_writer_unobserve(mk_partition_writer_t *w, void *arg);
void mk_partition_writer_set_progress_cb(mk_partition_writer_t *w, mk_partition_progress_cb cb, void *arg);
/* Tell the progress callback (repl: HW or ISR moved). */
void mk_partition_writer_progress(mk_partition_writer_t *w);
/* Tell the observers that p's leadership changed (repl, after an election
 * or when it sets a partition up). */
void mk_partition_writer_leader_changed(mk_partition_writer_t *w, mk_partition_t *p);

/* ==================================================================== reads */

/* The observers' read checks for a read of p's replica on broker from
 * offset on: 0 and *limit, the first offset not to serve (INT64_MAX: no
 * limit), or the first Kafka error code an observer gives. */
int16_t mk_partition_read_check(mk_partition_writer_t *w, const mk_partition_t *p, int32_t broker, int64_t offset,
                                int64_t *limit);

/* ================================================================== append */

typedef struct mk_partition_append_s {
    /* in */
    int16_t acks;             /* client: 0, 1 or -1 (-1 checks min.insync.replicas first) */
    bool control;             /* a marker built by the coordinator: trusted,
                                 no validation and no producer checks */
    /* out */
    int64_t base_offset;      /* first offset assigned; the original one for a duplicate; -1 when refused */
    int64_t end_offset;       /* offset after the last record (acks=all waits for the HW to reach it) */
    int64_t log_append_time;  /* -1 unless the topic uses LogAppendTime */
    int64_t log_start_offset;
    bool duplicate;           /* a retry of batches already stored: nothing appended */
    bool loading;             /* an observer is loading its state: retry after progress */
    bool stepped;             /* with loading: a step of a large append was written; the
                               * caller retries in the next loop turn (log.h) */
    char why[256];            /* the reason of a refusal, for the client and the log */
} mk_partition_append_t;

/* Append recs (len bytes of whole v2 batches; the caller's buffer, rewritten
 * in place: offsets, epochs, LogAppendTime) to p as its leader.  Returns 0
 * or a Kafka error code (a->why says why); on an error nothing was
 * appended. */
int16_t mk_partition_append(mk_partition_writer_t *w, mk_partition_t *p, uint8_t *recs, size_t len,
                            mk_partition_append_t *a);

#endif /* MK_PARTITION_H */
