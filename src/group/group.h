/*
 * group.h -- L3: the group coordinator: classic groups (JoinGroup/SyncGroup
 * protocol), KIP-848 consumer groups (ConsumerGroupHeartbeat, server-side
 * assignors) and committed offsets.
 *
 * One coordinator object serves every group of the cluster; each group is
 * coordinated by one broker, chosen as Kafka does: the group id's Java
 * hashCode picks one of offsets.topic.num.partitions (50) partitions, and the
 * partition maps to a running broker.  When that broker stops, the group
 * moves: clients get NOT_COORDINATOR, look the coordinator up again and carry
 * on; membership and offsets are kept across the move.
 *
 * Operations that Kafka answers later (JoinGroup until the rebalance
 * completes, SyncGroup until the leader assigns, OffsetCommit until the
 * offsets are durable) take a callback.  Every callback is called exactly
 * once, on the loop thread; result pointers are valid during the call only.
 * A function that returns an error never calls its callback.
 *
 * Group, topic and member names are internal (tenant-namespaced) names.
 */
#ifndef MK_GROUP_H
#define MK_GROUP_H

#include "base/base.h"
#include "cluster/cluster.h"

typedef struct mk_group_coord_s mk_group_coord_t;

typedef struct mk_group_config_s {
    int32_t initial_rebalance_delay_ms;  /* group.initial.rebalance.delay.ms; 0 here (Kafka: 3000) */
    int32_t min_session_timeout_ms;      /* group.min.session.timeout.ms 6000 */
    int32_t max_session_timeout_ms;      /* group.max.session.timeout.ms 1800000 */
    int32_t max_size;                    /* group.max.size */
    int64_t offsets_retention_ms;        /* offsets.retention.minutes * 60000 */
    int32_t max_metadata_bytes;          /* offset.metadata.max.bytes 4096 */
    /* KIP-848 consumer groups (Kafka's broker config names) */
    int32_t cg_session_timeout_ms;       /* group.consumer.session.timeout.ms 45000 */
    int32_t cg_heartbeat_interval_ms;    /* group.consumer.heartbeat.interval.ms 5000 */
    int32_t cg_max_size;                 /* group.consumer.max.size */
    const char *cg_assignors;            /* group.consumer.assignors "uniform,range" (first: default) */
    const char *cg_migration_policy;     /* group.consumer.migration.policy: disabled, upgrade,
                                            downgrade, bidirectional */
} mk_group_config_t;

/* Create the coordinator and load committed offsets from the cluster's
 * metadata store.  Returns 0 or an error. */
int mk_group_coord_new(uv_loop_t *loop, mk_cluster_t *c, const mk_group_config_t *cfg, mk_group_coord_t **out);
/* Answer every pending operation with COORDINATOR_NOT_AVAILABLE and free. */
void mk_group_coord_free(mk_group_coord_t *gc);

/* The broker coordinating group_id (or -1 if none runs). */
int32_t mk_group_coordinator(const mk_group_coord_t *gc, const char *group_id);

/* ================================================================ membership */

typedef struct mk_group_protocol_s {
    const char *name;
    const uint8_t *metadata;
    int32_t metadata_len;
} mk_group_protocol_t;

typedef struct mk_group_join_s {
    const char *group_id;
    const char *member_id;           /* "" for a new member */
    const char *group_instance_id;   /* NULL unless static membership */
    const char *client_id;
    const char *client_host;
    const char *protocol_type;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;    /* -1: use session timeout (JoinGroup v0) */
    int32_t protocol_count;
    const mk_group_protocol_t *protocols;
    bool require_known_member_id;    /* JoinGroup v4+ */
} mk_group_join_t;

typedef struct mk_group_member_info_s {
    const char *member_id;
    const char *group_instance_id;
    const char *client_id;
    const char *client_host;
    const uint8_t *metadata;         /* selected protocol's metadata (join) or subscription */
    int32_t metadata_len;
    const uint8_t *assignment;
    int32_t assignment_len;
} mk_group_member_info_t;

typedef struct mk_group_join_result_s {
    int16_t error;
    int32_t generation;
    const char *protocol_type;
    const char *protocol_name;
    const char *leader;
    const char *member_id;
    bool skip_assignment;
    int32_t member_count;                     /* only for the leader */
    const mk_group_member_info_t *members;
} mk_group_join_result_t;

typedef void (*mk_group_join_cb)(const mk_group_join_result_t *res, void *arg);
int mk_group_join(mk_group_coord_t *gc, const mk_group_join_t *j, mk_group_join_cb cb, void *arg);

typedef struct mk_group_assignment_s {
    const char *member_id;
    const uint8_t *assignment;
    int32_t assignment_len;
} mk_group_assignment_t;

typedef struct mk_group_sync_s {
    const char *group_id;
    const char *member_id;
    const char *group_instance_id;
    int32_t generation;
    const char *protocol_type;       /* NULL if not sent */
    const char *protocol_name;       /* NULL if not sent */
    int32_t assignment_count;
    const mk_group_assignment_t *assignments;
} mk_group_sync_t;

typedef struct mk_group_sync_result_s {
    int16_t error;
    const char *protocol_type;
    const char *protocol_name;
    const uint8_t *assignment;
    int32_t assignment_len;
} mk_group_sync_result_t;

typedef void (*mk_group_sync_cb)(const mk_group_sync_result_t *res, void *arg);
int mk_group_sync(mk_group_coord_t *gc, const mk_group_sync_t *s, mk_group_sync_cb cb, void *arg);

/* Heartbeat: returns the Kafka error code directly. */
int16_t mk_group_heartbeat(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                           const char *group_instance_id, int32_t generation);
/* One member leaves (member_id "" and an instance id: by instance).  Returns
 * the Kafka error code for that member. */
int16_t mk_group_leave(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                       const char *group_instance_id);

/* =================================================================== offsets */

typedef struct mk_group_commit_s {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata;            /* may be NULL */
    int16_t error;                   /* out: per-partition result */
} mk_group_commit_t;

/* Commit offsets.  member_id "" and generation -1 commit for a group without
 * members (admin or manual commits).  Per-partition errors are written into
 * commits[i].error; the call's own error (bad member, generation...) is
 * returned by cb.  cb runs once the offsets are durable.  The array must live
 * until cb. */
typedef void (*mk_group_commit_cb)(int16_t error, void *arg);
int mk_group_commit(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                    const char *group_instance_id, int32_t generation, mk_group_commit_t *commits, int32_t n,
                    mk_group_commit_cb cb, void *arg);

/* Offsets of a committed transaction: stored without member checks. */
int mk_group_commit_txn(mk_group_coord_t *gc, const char *group_id, mk_group_commit_t *commits, int32_t n,
                        mk_group_commit_cb cb, void *arg);

typedef struct mk_group_offset_s {
    int64_t offset;                  /* -1 if none committed */
    int32_t leader_epoch;
    const char *metadata;
} mk_group_offset_t;

/* The committed offset of one partition (offset -1 when there is none). */
void mk_group_offset_get(mk_group_coord_t *gc, const char *group_id, const char *topic, int32_t partition,
                         mk_group_offset_t *out);
/* Every committed offset of a group: cb per (topic, partition). */
typedef void (*mk_group_offset_cb)(const char *topic, int32_t partition, const mk_group_offset_t *o, void *arg);
void mk_group_offsets_foreach(mk_group_coord_t *gc, const char *group_id, mk_group_offset_cb cb, void *arg);
/* OffsetDelete of one partition: Kafka error code. */
int16_t mk_group_offset_delete(mk_group_coord_t *gc, const char *group_id, const char *topic, int32_t partition);
/* A topic was deleted: drop its offsets in every group. */
void mk_group_topic_deleted(mk_group_coord_t *gc, const char *topic);

/* ===================================================================== admin */

typedef struct mk_group_desc_s {
    const char *group_id;
    const char *state;               /* "Empty", "PreparingRebalance", ... "Dead" */
    const char *protocol_type;
    const char *protocol_name;
    int32_t member_count;
    const mk_group_member_info_t *members;
    const char *type;                /* "classic" or "consumer" (ListGroups v5 GroupType) */
} mk_group_desc_t;

/* Describe one group (state "Dead" when unknown).  cb runs before return. */
typedef void (*mk_group_desc_cb)(const mk_group_desc_t *d, void *arg);
void mk_group_describe(mk_group_coord_t *gc, const char *group_id, mk_group_desc_cb cb, void *arg);
/* Every group coordinated by broker_id (-1: all). */
void mk_group_list(mk_group_coord_t *gc, int32_t broker_id, mk_group_desc_cb cb, void *arg);
/* DeleteGroups: Kafka error code (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND). */
int16_t mk_group_delete(mk_group_coord_t *gc, const char *group_id);

/* =========================================== consumer groups (KIP-848) */

/* Partitions of one topic (by id), as the consumer group APIs carry them. */
typedef struct mk_group_tps_s {
    uint8_t topic_id[16];
    int32_t count;
    const int32_t *partitions;
} mk_group_tps_t;

typedef struct mk_group_cg_heartbeat_s {
    const char *group_id;
    const char *member_id;           /* "" only when joining with ConsumerGroupHeartbeat v0 */
    int32_t member_epoch;            /* 0 join, -1 leave, -2 static member leaves for now */
    const char *instance_id;         /* NULL: not sent */
    const char *rack_id;             /* NULL: not sent */
    int32_t rebalance_timeout_ms;    /* -1: unchanged */
    bool topics_set;                 /* SubscribedTopicNames sent (not null) */
    int32_t topic_count;
    const char *const *topics;       /* internal names */
    const char *regex;               /* SubscribedTopicRegex (over the tenant's names), NULL: unchanged */
    const char *assignor;            /* ServerAssignor, NULL: unchanged */
    bool owned_set;                  /* TopicPartitions sent (not null) */
    int32_t owned_count;
    const mk_group_tps_t *owned;
    const char *client_id, *client_host;
    const char *tenant_prefix;       /* internal-name prefix of the member's tenant ("" default) */
    int16_t version;                 /* of the request */
} mk_group_cg_heartbeat_t;

typedef struct mk_group_cg_result_s {
    int16_t error;
    const char *error_message;       /* NULL when none */
    const char *member_id;
    int32_t member_epoch;
    int32_t heartbeat_interval_ms;
    bool has_assignment;             /* Assignment is sent (else null) */
    int32_t assignment_count;
    const mk_group_tps_t *assignment;
} mk_group_cg_result_t;

/* ConsumerGroupHeartbeat.  The answer is built in a (the request's arena)
 * and valid as long as it.  Never fails: errors are in out->error. */
void mk_group_cg_heartbeat(mk_group_coord_t *gc, const mk_group_cg_heartbeat_t *hb, mk_arena_t *a,
                           mk_group_cg_result_t *out);

typedef struct mk_group_cg_member_s {
    const char *member_id, *instance_id, *rack_id, *client_id, *client_host;
    int32_t member_epoch;
    int32_t topic_count;
    const char *const *topics;       /* internal names */
    const char *regex;
    int32_t assigned_count;
    const mk_group_tps_t *assigned;
    int32_t target_count;
    const mk_group_tps_t *target;
} mk_group_cg_member_t;

typedef struct mk_group_cg_desc_s {
    int16_t error;                   /* GROUP_ID_NOT_FOUND: unknown or not a consumer group */
    const char *error_message;
    const char *state;               /* Empty, Assigning, Reconciling, Stable */
    int32_t group_epoch, assignment_epoch;
    const char *assignor;
    int32_t member_count;
    const mk_group_cg_member_t *members;
} mk_group_cg_desc_t;

/* ConsumerGroupDescribe of one group: cb runs before return. */
typedef void (*mk_group_cg_desc_cb)(const mk_group_cg_desc_t *d, void *arg);
void mk_group_cg_describe(mk_group_coord_t *gc, const char *group_id, mk_group_cg_desc_cb cb, void *arg);

/* OffsetCommit below v9 from a member that uses the consumer protocol:
 * UNSUPPORTED_VERSION (as Kafka), else 0. */
int16_t mk_group_commit_version_check(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                                      int16_t version);
/* OffsetFetch v9+ with a member id and epoch: Kafka error code. */
int16_t mk_group_offset_fetch_check(mk_group_coord_t *gc, const char *group_id, const char *member_id,
                                    int32_t member_epoch);

#endif /* MK_GROUP_H */
