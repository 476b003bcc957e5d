/*
 * repl.h -- L3: replication between the in-process brokers.
 *
 * Kafka's semantics, with the network simulated: followers copy from the
 * leader's log (as a follower Fetch would), the leader tracks which replicas
 * are in sync (ISR, replica.lag.time.max.ms), the high watermark is the
 * lowest log end offset in the ISR, and leaders are elected from the ISR when
 * a broker goes away.  Replication that crosses AZs is delayed by the
 * configured one-way latency and its bytes are counted per broker pair and
 * told to one observer (mk_repl_set_xaz_cb: per-tenant cost in admin/).
 *
 * Broker lifecycle lives here (crash, controlled shutdown, start, AZ outage):
 * the admin API and fault injection call these, never the cluster directly.
 *
 * Threads: loop thread only.
 */
#ifndef MK_REPL_H
#define MK_REPL_H

#include "cluster/cluster.h"
#include "partition/partition.h"

typedef struct mk_repl_s mk_repl_t;

/* An append of more than MK_REPL_INLINE_BYTES has its copies to followers
 * without cross-AZ latency queued to later loop turns (one follower's copy
 * of a full-size batch per turn, the loop polling in between) instead of run
 * inside the append, as smaller ones are.  Its Produce, acks=1 as well as
 * acks=all, is answered once the high watermark covers it, or (acks=1)
 * after at most MK_REPL_BACKOFF_MS: the leader holds a flooding producer's
 * connection back instead of letting its followers' backlog grow. */
#define MK_REPL_INLINE_BYTES (64u << 10)
#define MK_REPL_BACKOFF_MS 500

typedef struct mk_repl_config_s {
    int64_t replica_lag_time_max_ms;   /* replica.lag.time.max.ms 30000 */
    int32_t cross_az_latency_ms;       /* minikora.cross.az.latency.ms 0 */
    bool auto_leader_rebalance;        /* auto.leader.rebalance.enable true */
    bool unclean_leader_election;      /* unclean.leader.election.enable false */
} mk_repl_config_t;

/* Replication of the cluster's partitions.  It observes writer's appends
 * (borrowed: it must outlive r) to schedule followers, and tells writer's
 * progress callback when high watermarks or ISRs change.  0 or an error. */
int mk_repl_new(uv_loop_t *loop, mk_cluster_t *c, const mk_repl_config_t *cfg, mk_partition_writer_t *writer,
                mk_repl_t **out);
void mk_repl_free(mk_repl_t *r);

/* Set up ISR and high watermarks of every loaded topic (startup). */
void mk_repl_start_all(mk_repl_t *r);
/* A topic was created: its running replicas form the ISR. */
void mk_repl_topic_created(mk_repl_t *r, mk_topic_t *t);

/* Broker lifecycle.  crash: abrupt (connections dropped, leaders elected
 * after); shutdown: controlled (leadership moved first); start: recover the
 * logs, rejoin as follower, catch up.  0 or MK_ERR_NOT_FOUND / MK_ERR_STATE.
 * The broker's crashed flag (cluster.h) says which of the first two stopped it. */
int mk_repl_broker_crash(mk_repl_t *r, int32_t id);
int mk_repl_broker_shutdown(mk_repl_t *r, int32_t id);
int mk_repl_broker_start(mk_repl_t *r, int32_t id);
/* Fence broker id (on) or lift it (off): a fenced broker keeps its
 * replicas and replicates, but never leads and is kept out of every ISR
 * (the storage health manager's answer to a stalled or slow disk, as
 * Kora's).  Its leaderships move now to in-sync replicas after a last
 * synchronous round (controlled: no acknowledged record is lost); where no
 * other in-sync replica runs it leads on until one does.  Lifted, it
 * rejoins ISRs as it catches up.  Not persisted.  0 or MK_ERR_NOT_FOUND. */
int mk_repl_broker_fence(mk_repl_t *r, int32_t id, bool on);
bool mk_repl_broker_fenced(const mk_repl_t *r, int32_t id);
/* Every broker of an AZ ("az-2"): crash or start.  Returns brokers affected. */
int mk_repl_az_down(mk_repl_t *r, const char *az);
int mk_repl_az_up(mk_repl_t *r, const char *az);
/* Remove (retire) broker id for good: the one path of the admin API's
 * DELETE /v1/brokers/{id} and Kafka's UnregisterBroker.  Refused while a
 * replica is still on it (drain it first) or while it is the last broker of
 * its AZ in its cell (the cell would lose an AZ): *replicas_out (may be
 * NULL) gets how many replicas it holds.  A running broker is shut down
 * (controlled) first; then cluster/ retires it (listeners closed, out of
 * Metadata, never started or placed on again, persisted).
 * 0, MK_ERR_NOT_FOUND, MK_ERR_EXISTS (already retired), MK_ERR_STATE
 * (holds replicas), MK_ERR_RANGE (the last of its AZ in its cell), or the
 * store's error. */
int mk_repl_broker_remove(mk_repl_t *r, int32_t id, int64_t *replicas_out);
/* Replicas (of any partition) on broker id, and leaderships. */
int64_t mk_repl_broker_replicas(mk_repl_t *r, int32_t id, int64_t *leaders);

/* Reassignment (Kafka's AlterPartitionReassignments, and a tenant's move to
 * another cell): p's replicas become target[0..n), online.  The target
 * replicas are added first and catch up; once all are in the ISR with the
 * leader's log end, target[0] takes the lead if the leader is leaving (a
 * controlled election: no acknowledged record is lost), and the replicas
 * outside target are dropped with their logs.  The repl tick drives it; a
 * target broker that is stopped holds it until it runs again.
 * 0, MK_ERR_EXISTS (p is being reassigned), MK_ERR_INVALID, MK_ERR_NOMEM. */
int mk_repl_reassign(mk_repl_t *r, mk_partition_t *p, const int32_t *target, int32_t n);
bool mk_repl_reassigning(mk_repl_t *r, const mk_partition_t *p);
/* ListPartitionReassignments: false when p is not being reassigned, else
 * the brokers being added (in the target, not in the replicas it had) and
 * removed (the reverse), each array of MK_CLUSTER_MAX_BROKERS. */
bool mk_repl_reassign_info(mk_repl_t *r, const mk_partition_t *p, int32_t *adding, int32_t *nadding,
                           int32_t *removing, int32_t *nremoving);
/* Cancel p's reassignment (AlterPartitionReassignments with null replicas):
 * back to the replicas it had; if the lead already moved to an added
 * replica, it goes back first to an in-sync original one (controlled).
 * 0, MK_ERR_NOT_FOUND (none in flight), MK_ERR_STATE (no original replica
 * can lead now: the reassignment goes on), MK_ERR_NOMEM. */
int mk_repl_reassign_cancel(mk_repl_t *r, mk_partition_t *p);

/* ElectLeaders.  Preferred (unclean false): the first replica takes the
 * lead after a last synchronous round (no acknowledged record lost).
 * Unclean: a partition without a leader gets one from its ISR, else from
 * any running replica.  0; MK_ERR_EXISTS when no election is needed (the
 * preferred replica leads / the partition has a leader); MK_ERR_STATE when
 * no eligible replica is there. */
int mk_repl_elect(mk_repl_t *r, mk_partition_t *p, bool unclean);

/* DeleteRecords on p (its leader): the log start moves to offset (0..HW,
 * else MK_ERR_RANGE), persisted by the log; followers that have the
 * records move now, the others on their next round (each round carries the
 * leader's log start, as Kafka's fetch answers do).  *low_watermark: the
 * lowest log start among the leader and the in-sync followers.  0,
 * MK_ERR_STATE (no leader), MK_ERR_RANGE, or the log's error. */
int mk_repl_delete_records(mk_repl_t *r, mk_partition_t *p, int64_t offset, int64_t *low_watermark);

/* CreatePartitions: the partitions of t from index from on are new: their
 * running replicas form the ISR. */
void mk_repl_partitions_added(mk_repl_t *r, mk_topic_t *t, int32_t from);
/* Dynamic broker settings changed (unclean.leader.election.enable,
 * replica.lag.time.max.ms, auto.leader.rebalance.enable). */
void mk_repl_set_config(mk_repl_t *r, const mk_repl_config_t *cfg);
/* Reassignments in flight, and (done) those finished since start. */
size_t mk_repl_reassignments(const mk_repl_t *r, uint64_t *done);

/* Integrity repair (the scrubber's): the replica of p on broker holds bad
 * data -- corrupt, or diverged from the other replicas -- from offset
 * `from` on.  If it leads, leadership first moves to source, an in-sync
 * replica the caller found sound (it takes what it lacks of the leader's
 * sound batches, then leads), so that no follower ever copies from a
 * corrupt leader.  Then the replica leaves the ISR, its log is truncated
 * to `from` (batches at and after it go) and replication fetches the rest
 * again from the leader, as a follower that fell behind.  source is
 * ignored for a follower.  Returns 0, MK_ERR_NOT_FOUND (no such replica,
 * its broker is stopped), MK_ERR_STATE (it leads and source is not a
 * running in-sync replica: nothing done), or the truncation's error. */
int mk_repl_replica_repair(mk_repl_t *r, mk_partition_t *p, int32_t broker, int64_t from, int32_t source);

/* Observer of replication bytes that cross AZs: called once per round that
 * copied bytes from t's leader to a follower in another AZ (not per batch),
 * on the loop thread; t is valid during the call only.  The admin layer
 * registers one to count them per tenant. */
typedef void (*mk_repl_xaz_cb)(const mk_topic_t *t, uint64_t bytes, void *ud);
/* Register the one observer (cb NULL removes it). */
void mk_repl_set_xaz_cb(mk_repl_t *r, mk_repl_xaz_cb cb, void *ud);

/* Rebuilding a follower that is below the leader's log start: by default
 * its log is emptied and restarted there (mk_log_truncate_fully), as Kafka's
 * follower does on OFFSET_OUT_OF_RANGE.  With tiered storage the leader's
 * log start is its local one and the rest is in S3: the one rebuild hook
 * (tier/, through broker/) restarts the follower there consistently with
 * the remote state (KIP-405's OFFSET_MOVED_TO_TIERED_STORAGE path).  cb
 * returns 0 or an error (the round stops); NULL restores the default. */
typedef int (*mk_repl_rebuild_cb)(void *arg, mk_partition_t *p, int32_t broker, mk_log_t *log,
                                  int64_t leader_log_start);
void mk_repl_set_rebuild_cb(mk_repl_t *r, mk_repl_rebuild_cb cb, void *arg);

/* Account bytes read by a client in AZ client_az from broker (fetch). */
void mk_repl_account_read(mk_repl_t *r, int32_t broker, const char *client_az, uint64_t bytes);
/* Total cross-AZ bytes (replication + client reads) of the cluster. */
uint64_t mk_repl_cross_az_total(const mk_repl_t *r, uint64_t *client_reads);

/* Replication rounds run since start: copy rounds (one per follower and
 * round, from the schedule; not the forced ones of elections) and
 * acknowledgements that travelled back across AZs. */
void mk_repl_round_counts(const mk_repl_t *r, uint64_t *copy_rounds, uint64_t *ack_rounds);

#endif /* MK_REPL_H */
