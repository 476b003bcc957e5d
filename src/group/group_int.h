/*
 * group_int.h -- internals of group/, shared by its files and its unit test:
 *
 *   group.c     the map of groups, the classic protocol (JoinGroup/SyncGroup),
 *               committed offsets, the 100 ms tick, admin views;
 *   consumer.c  KIP-848 consumer groups (ConsumerGroupHeartbeat), their
 *               reconciliation, timeouts, conversions with classic groups;
 *   assign.c    the server-side assignors (uniform, range): pure functions.
 *
 * A group_t is one group id of either type.  Its committed offsets belong to
 * the id, not the type, so they survive a conversion.  The classic fields are
 * used while type is MK_GROUP_CLASSIC; cg (consumer.c's state) while it is
 * MK_GROUP_CONSUMER.
 */
#ifndef MK_GROUP_INT_H
#define MK_GROUP_INT_H

#include "group/group.h"
#include "meta/meta.h"

enum { ST_EMPTY, ST_PREPARING, ST_COMPLETING, ST_STABLE };
enum { MK_GROUP_CLASSIC, MK_GROUP_CONSUMER };

#define OFFSETS_PARTITIONS 50

typedef struct member_s {
    struct member_s *next;
    char *member_id, *instance_id, *client_id, *client_host, *protocol_type;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    int32_t nprotocols;
    char **proto_names;
    uint8_t **proto_meta;
    int32_t *proto_meta_len;
    uint8_t *assignment;
    int32_t assignment_len;
    mk_group_join_cb join_cb;
    void *join_arg;
    mk_group_sync_cb sync_cb;
    void *sync_arg;
    uint64_t last_seen_ms;
    bool awaiting_sync;   /* joined this generation, SyncGroup not seen yet */
} member_t;

typedef struct pending_id_s {
    struct pending_id_s *next;
    char *member_id;
    uint64_t deadline_ms;
} pending_id_t;

typedef struct offset_entry_s {
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ms;
    int64_t expire_ms;      /* explicit expiry, -1 = none (commits here never set one) */
} offset_entry_t;

typedef struct mk_cgroup_s mk_cgroup_t;   /* consumer.c */

typedef struct group_s {
    char *id;
    int type;               /* MK_GROUP_CLASSIC or MK_GROUP_CONSUMER */
    mk_cgroup_t *cg;        /* owned consumer group state (type CONSUMER), else NULL */
    /* classic protocol */
    int state;
    int32_t generation;
    char *protocol_type, *protocol_name, *leader;
    member_t *members;
    int nmembers;
    pending_id_t *pending;
    uint64_t deadline_ms;   /* end of the current join or sync phase */
    uint64_t delay_until_ms; /* group.initial.rebalance.delay.ms of an empty group */
    mk_map_t offsets;       /* "topic\x1fpartition" -> offset_entry_t* */
} group_t;

struct mk_group_coord_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_meta_t *meta;
    mk_group_config_t cfg;
    mk_map_t groups;        /* id -> group_t* */
    uv_timer_t *tick;       /* owned; freed in its close callback */
    int64_t last_expire_ms;
};

/* ========================================================== deferred answers */

/* Answers to classic requests are deep-copied into a batch and run after
 * every state change is complete (see group.c's header on re-entrancy). */
typedef struct answer_s {
    struct answer_s *next;
    bool is_join;
    mk_group_join_cb join_cb;
    mk_group_sync_cb sync_cb;
    void *arg;
    mk_group_join_result_t join;
    mk_group_sync_result_t sync;
} answer_t;

typedef struct batch_s {
    mk_arena_t arena;
    answer_t *head, *tail;
} batch_t;

void mk_group_batch_init(batch_t *b);
/* Run every answer of b in order, then free b's arena. */
void mk_group_batch_run(batch_t *b);
/* Queue an answer (NULL when out of memory). */
answer_t *mk_group_batch_add(batch_t *b);
/* Copies into b's arena (NULL stays NULL; bytes never NULL). */
const char *mk_group_batch_dup(batch_t *b, const char *s);
const uint8_t *mk_group_batch_dupb(batch_t *b, const uint8_t *p, int32_t n);
void mk_group_answer_join_error(batch_t *b, mk_group_join_cb cb, void *arg, int16_t err, const char *member_id);

/* ===================================================================== groups */

/* The group of id, created (as an empty classic group) when create is set. */
group_t *mk_group_get(mk_group_coord_t *gc, const char *id, bool create);
/* Drop every classic member and pending id of g (answering nothing): used
 * when an empty classic group becomes a consumer group. */
void mk_group_classic_reset(group_t *g);
uint64_t mk_group_now_ms(void);
/* Add a classic member to g as j describes it (no answer pending): a
 * consumer group's classic member when the group is downgraded. */
void mk_group_classic_adopt(group_t *g, const mk_group_join_t *j);
/* Start a rebalance of g (just downgraded) from generation. */
void mk_group_classic_start_rebalance(mk_group_coord_t *gc, group_t *g, int32_t generation, batch_t *b);

/* ============================================= topic-partition sets (sorted) */

typedef struct mk_gtp_s {
    uint8_t id[16];         /* topic id */
    int32_t partition;
} mk_gtp_t;

/* A set of topic partitions: sorted by (id, partition), no duplicates once
 * mk_gtps_sort() ran.  Owned arrays: free with mk_gtps_free(). */
typedef struct mk_gtps_s {
    mk_gtp_t *v;
    int32_t n, cap;
} mk_gtps_t;

void mk_gtps_free(mk_gtps_t *l);
void mk_gtps_clear(mk_gtps_t *l);
/* Append (unsorted until mk_gtps_sort).  0 or MK_ERR_NOMEM. */
int mk_gtps_add(mk_gtps_t *l, const uint8_t id[16], int32_t partition);
void mk_gtps_sort(mk_gtps_t *l);
bool mk_gtps_has(const mk_gtps_t *l, const uint8_t id[16], int32_t partition);
bool mk_gtps_equal(const mk_gtps_t *a, const mk_gtps_t *b);
/* dst = src (dst's old contents freed).  0 or MK_ERR_NOMEM. */
int mk_gtps_copy(mk_gtps_t *dst, const mk_gtps_t *src);
int mk_gtp_cmp(const mk_gtp_t *a, const mk_gtp_t *b);

/* ================================================================= assignors */

typedef struct mk_asg_topic_s {
    uint8_t id[16];
    const char *name;
    int32_t partitions;
} mk_asg_topic_t;

typedef struct mk_asg_member_s {
    const char *member_id;
    const char *instance_id;     /* static member's, or NULL: orders before member_id */
    const bool *subscribed;      /* [ntopics]: whether it subscribes to topics[i] */
    const mk_gtps_t *current;    /* its present target (kept where balance allows), or NULL */
    mk_gtps_t out;               /* result, sorted; the caller frees it */
} mk_asg_member_t;

/* An assignor: fills every members[i].out with partitions of the topics the
 * member subscribes to, each partition of a subscribed topic to exactly one
 * member.  Pure (no I/O, deterministic).  0 or MK_ERR_NOMEM. */
typedef int (*mk_asg_fn)(const mk_asg_topic_t *topics, int32_t ntopics, mk_asg_member_t *members,
                         int32_t nmembers);

/* uniform: balanced (counts differ by at most one among members with the
 * same subscription) and sticky (a member keeps what balance allows). */
int mk_group_assign_uniform(const mk_asg_topic_t *topics, int32_t ntopics, mk_asg_member_t *members,
                            int32_t nmembers);
/* range: per topic, members subscribed to it in order (instance id for a
 * static member, else member id, so a rolling bounce of static members keeps
 * the ranges) take contiguous ranges; the first (partitions % members) take
 * one more. */
int mk_group_assign_range(const mk_asg_topic_t *topics, int32_t ntopics, mk_asg_member_t *members,
                          int32_t nmembers);
/* The assignor called name ("uniform", "range", or Kafka's class names), or NULL. */
mk_asg_fn mk_group_assignor_find(const char *name, const char **canonical);

/* ============================================================ consumer.c */

void mk_group_cg_free(mk_cgroup_t *cg);
int mk_group_cg_member_count(const group_t *g);
/* The consumer group's state name: Empty, Assigning, Reconciling, Stable. */
const char *mk_group_cg_state(const group_t *g);
/* Session and rebalance timeouts of a consumer group's members. */
void mk_group_cg_tick(mk_group_coord_t *gc, group_t *g, uint64_t now, batch_t *b);
/* OffsetCommit / OffsetFetch checks of a consumer group: Kafka error code. */
int16_t mk_group_cg_offset_check(group_t *g, const char *member_id, int32_t epoch, bool commit);
/* DescribeGroups / ListGroups view of a consumer group. */
void mk_group_cg_describe_classic(mk_group_coord_t *gc, group_t *g, mk_group_desc_cb cb, void *arg);
/* Whether a member of the consumer group subscribes to the (internal) topic. */
bool mk_group_cg_subscribes(group_t *g, const char *topic);
/* Classic requests to a non-empty consumer group (members that use the
 * classic protocol inside a consumer group, as Kafka 4.0 allows). */
void mk_group_cg_classic_join(mk_group_coord_t *gc, group_t *g, const mk_group_join_t *j, mk_group_join_cb cb,
                              void *arg, batch_t *b);
void mk_group_cg_classic_sync(mk_group_coord_t *gc, group_t *g, const mk_group_sync_t *s, mk_group_sync_cb cb,
                              void *arg, batch_t *b);
int16_t mk_group_cg_classic_heartbeat(mk_group_coord_t *gc, group_t *g, const char *member_id,
                                      const char *instance_id, int32_t generation);
int16_t mk_group_cg_classic_leave(mk_group_coord_t *gc, group_t *g, const char *member_id, const char *instance_id,
                                  batch_t *b);

#endif /* MK_GROUP_INT_H */
