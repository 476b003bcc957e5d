/*
 * broker_int.h -- internals shared by the files of broker/ (not a public
 * header: other modules include broker/broker.h).
 *
 * Life of a request (mk_req_t):
 *   frame arrives -> header decoded -> dispatch entry found and version
 *   checked -> body decoded into req->arena -> handler runs and returns
 *     MK_REQ_DONE      response in req->resp is encoded and queued now;
 *     MK_REQ_NONE      no response (Produce acks=0);
 *     MK_REQ_PENDING   the handler keeps req and calls mk_broker_req_finish() later
 *                      (a parked Fetch, a CreateTopics waiting for durable
 *                      metadata);
 *     < 0              the connection is closed (bad request), with a log line.
 *   The arena (decoded request and response) and the frame are freed after
 *   the response is queued.  If the connection closes while a request is
 *   pending, req->sess becomes NULL and the response is dropped.
 */
#ifndef MK_BROKER_INT_H
#define MK_BROKER_INT_H

#include "broker/broker.h"
#include "partition/partition.h"
#include "proto/proto.h"
#include "tenant/tenant.h"

typedef struct mk_group_coord_s mk_group_coord_t;
typedef struct mk_qos_s mk_qos_t;
typedef struct mk_qsess_s mk_qsess_t;
typedef struct mk_repl_s mk_repl_t;
typedef struct mk_txn_s mk_txn_t;

enum { MK_REQ_DONE = 0, MK_REQ_NONE = 1, MK_REQ_PENDING = 2 };

typedef struct mk_req_s mk_req_t;
typedef int (*mk_handler_fn)(mk_req_t *req);
/* What a parked request does when woken (see mk_broker_req_park). */
typedef bool (*mk_broker_park_fn)(mk_req_t *req, bool final);

/* One row of the dispatch table. */
typedef struct mk_api_s {
    int16_t key;
    int16_t min, max;          /* supported versions */
    mk_handler_fn fn;
    const mk_pmsg_t *req_msg, *resp_msg;
    const char *note;          /* for docs/COMPATIBILITY.md */
} mk_api_t;

/* A connection's state: who is on the other end and on which broker.
 * Sessions of all brokers are on one list (mk_broker_t.sessions), so a
 * revoked key or a deleted tenant can find its connections. */
typedef struct mk_session_s mk_session_t;
struct mk_session_s {
    mk_net_conn_t *conn;
    mk_cluster_broker_t *node;
    mk_broker_t *b;
    const mk_tenant_t *tenant; /* referenced (mk_tenant_ref) while the session lives */
    const char *principal;     /* "User:ANONYMOUS", or owned "User:<key>" once authenticated */
    mk_req_t *pending;         /* the request being handled, if pending */
    mk_session_t *prev, *next; /* mk_broker_t.sessions */
    /* SASL (sasl.c) */
    bool authenticated;        /* a SASL exchange succeeded */
    int sasl_mech;             /* MK_TENANT_MECH_* chosen by SaslHandshake, 0 = none yet */
    bool sasl_raw;             /* SaslHandshake v0: the next frames are bare SASL tokens */
    bool sasl_failed;          /* an exchange failed: no second try on this connection */
    mk_tenant_sasl_t *sasl;    /* owned: the exchange in progress */
    char key[MK_TENANT_KEY_LEN + 1];   /* the API key authenticated with, "" before */
    /* The client's AZ (data.c): known once a Fetch v11+ names its rack
     * (RackId, librdkafka's client.rack); cross_az when that is not node's
     * AZ.  Kept for the session's later requests (its Produces too), and
     * told to the request observer (cross-AZ bytes per tenant). */
    bool rack_known;
    bool cross_az;
    /* Counted against its tenant's connection limits (quotas.c): once it
     * authenticated, or at its first request in the default tenant. */
    bool counted;
    mk_qsess_t *q;             /* owned: byte-rate and request-time state (throttle.c), made on first request */
};

struct mk_req_s {
    mk_arena_t arena;          /* decoded request + response */
    uint8_t *frame;            /* owned; bytes fields of body point into it */
    size_t frame_len;
    mk_req_header_t hdr;
    const mk_api_t *api;
    int16_t version;
    void *body;                /* decoded request (arena) */
    void *resp;                /* response struct (arena), defaults set */
    mk_session_t *sess;        /* NULL once the connection closed */
    mk_broker_t *b;
    mk_cluster_t *c;
    mk_cluster_broker_t *node;
    uint64_t start_ns;
    /* parked Fetch */
    mk_req_t *park_prev, *park_next;
    uv_timer_t *timer;         /* owned; freed in its close callback */
    mk_broker_park_fn park_fn;
    int outstanding;           /* async operations still running */
    int status;                /* first error of those operations */
    void *ctx;                 /* handler-specific state (arena) */
    mk_buf_t data;             /* owned bytes the response points into (Fetch records) */
    /* quotas (throttle.c) */
    bool quota_done;           /* measured and throttle decided (finish runs that once) */
    int32_t mute_ms;           /* after the answer, mute the connection this long */
    bool fault_delayed;        /* a broker-slow fault's delay was applied (finish runs it once) */
};

/* A stretch of loop time spent on one request (throttle.c): the request
 * time of request_percentage.  Slices nest (a handler may finish another
 * connection's request, which dispatches its next frame); an outer slice
 * does not count the time of those inside it. */
typedef struct mk_broker_slice_s mk_broker_slice_t;
struct mk_broker_slice_s {
    mk_broker_slice_t *outer;
    mk_req_t *req;             /* whose work it is (its finish flushes the slice) */
    struct mk_qt_s *qt;        /* charged: its tenant's measures (NULL: not measured) */
    int32_t broker;
    uint64_t begin_ns, t0_ns, nested_ns;
};

struct mk_broker_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_req_t *parked;          /* Fetch requests waiting for data */
    uv_idle_t *wake;           /* owned; runs parked fetches after appends */
    bool wake_pending;
    bool closing;
    uint64_t requests;         /* counters for metrics */
    uint64_t acks_all_acked;   /* acks=all partition writes acknowledged (replicated to the ISR) */
    mk_group_coord_t *groups;  /* owned group coordinator */
    mk_partition_writer_t *writer; /* owned: the leader write path (observed by repl, txn) */
    mk_repl_t *repl;           /* owned replication manager */
    mk_txn_t *txn;             /* owned producer state and transaction coordinator */
    mk_tier_t *tier;           /* owned tiered storage, or NULL (mk_broker_tier_start) */
    struct mk_scrub_s *scrub;  /* owned: scrubber and durability audit (observes the writer) */
    mk_broker_req_cb req_cb;   /* request observer (admin/), or NULL */
    void *req_cb_ud;
    mk_tenant_registry_t *tenants; /* owned: tenants and API keys */
    mk_quota_registry_t *quotas;   /* owned: tenant and entity limits */
    struct mk_broker_limits_s *limits; /* owned: what quotas.c measures (buckets, rates, storage) */
    mk_session_t *sessions;    /* every open connection's session */
    bool auth_required;        /* minikora.auth.required */
    bool rack_aware_reads;     /* replica.selector.class is RackAwareReplicaSelector (KIP-392) */
    int32_t remote_fetch_wait_ms;  /* remote.fetch.max.wait.ms: a Fetch waiting on S3 */
    mk_qos_t *qos;             /* owned: quota measures and enforcement (throttle.c) */
    mk_broker_slice_t *slice;  /* the innermost slice running, or NULL */
};

/* ============================================================ req.c */

/* Queue req's response (if the connection is still there), let the
 * connection deliver its next frame, and free req. */
void mk_broker_req_finish(mk_req_t *req);
/* No response (Produce acks=0): let the connection deliver its next frame
 * and free req. */
void mk_broker_req_finish_none(mk_req_t *req);
/* Bad request: log fmt (with one %s for detail) and the peer, close the
 * connection, free req. */
void mk_broker_req_reject(mk_req_t *req, const char *fmt, const char *detail);
/* Arena allocation of n elements of struct type d with spec defaults. */
void *mk_broker_req_structs(mk_req_t *req, const mk_pstruct_t *d, int32_t n);
/* Arena copy of a C string as an mk_str_t. */
mk_str_t mk_broker_req_str(mk_req_t *req, const char *s);

/* Allocate arr (a generated {items, count} member) with n defaulted items. */
#define MK_ARRAY_ALLOC(req, arr, n, desc)                                                  \
    ((arr).items = mk_broker_req_structs((req), &mk_pdesc_##desc, (n)), (arr).count = (n),         \
     (arr).items != NULL || (n) == 0)

/* Parked requests.  fn(req, false) on a wake: true when req can be answered
 * now; fn(req, true) at its deadline: fill the final answer.  The request is
 * answered with mk_broker_req_finish() after fn says so. */
void mk_broker_req_park(mk_req_t *req, int32_t max_wait_ms, mk_broker_park_fn fn);
/* Re-check parked requests once the current loop iteration is done. */
void mk_broker_req_wake_soon(mk_broker_t *b);
/* A wake in the next loop turn even if nothing is parked yet (a request
 * about to park, or being re-checked now, asks for its own next turn). */
void mk_broker_req_wake_next(mk_broker_t *b);
/* Answer every parked request now (shutdown). */
void mk_broker_req_unpark_all(mk_broker_t *b);
/* The wake handle (mk_broker_new) and its release with every parked
 * request answered (mk_broker_free). */
int mk_broker_req_init(mk_broker_t *b);
void mk_broker_req_close(mk_broker_t *b);

/* ======================================================= throttle.c */

/* Measures and enforcement state, after the quota registry is open
 * (mk_broker_attach); the 1 s coordinator tick starts.  0 or MK_ERR_NOMEM. */
int mk_broker_throttle_init(mk_broker_t *b);
void mk_broker_throttle_close(mk_broker_t *b);
/* The broker-wide caps (minikora.broker.quota.*, per broker: its dynamic
 * value, the cluster default, the static one) read again after a change. */
void mk_broker_throttle_reconfig(mk_broker_t *b);
/* The session is closing: drop its quota state. */
void mk_broker_throttle_session_close(mk_session_t *s);
/* Time spent on req from now until the matching end is request time of its
 * tenant (sl lives on the caller's stack). */
void mk_broker_slice_begin(mk_broker_t *b, mk_broker_slice_t *sl, mk_req_t *req);
void mk_broker_slice_end(mk_broker_t *b, mk_broker_slice_t *sl);
/* A Fetch from a tenant already over its fetch quota here: true when it
 * should be answered at once, empty, without reading (KIP-219). */
bool mk_broker_throttle_fetch_over(mk_req_t *req);
/* Measure req as it is answered and decide its throttle time (ms, 0 when
 * within every quota): sets ThrottleTimeMs in the response, and empties the
 * response of a Fetch that came over quota (its bytes are not counted).
 * Once per request (req->quota_done). */
int32_t mk_broker_throttle_response(mk_req_t *req);
/* KIP-219: does a client of this API version throttle itself on a nonzero
 * ThrottleTimeMs (then the answer goes at once and the connection is
 * muted), or must the broker delay the answer instead? */
bool mk_broker_throttle_client_side(int16_t api_key, int16_t version);

/* ========================================================= handlers */

/* By area: topics.c, data.c, groups.c, txns.c. */
int mk_broker_handle_metadata(mk_req_t *req);
int mk_broker_handle_create_topics(mk_req_t *req);
int mk_broker_handle_delete_topics(mk_req_t *req);
int mk_broker_handle_produce(mk_req_t *req);
int mk_broker_handle_fetch(mk_req_t *req);
int mk_broker_handle_list_offsets(mk_req_t *req);
int mk_broker_handle_describe_configs(mk_req_t *req);
int mk_broker_handle_describe_cluster(mk_req_t *req);
int mk_broker_handle_unregister_broker(mk_req_t *req);
int mk_broker_handle_offset_for_leader_epoch(mk_req_t *req);
int mk_broker_handle_find_coordinator(mk_req_t *req);
int mk_broker_handle_join_group(mk_req_t *req);
int mk_broker_handle_sync_group(mk_req_t *req);
int mk_broker_handle_heartbeat(mk_req_t *req);
int mk_broker_handle_leave_group(mk_req_t *req);
int mk_broker_handle_offset_commit(mk_req_t *req);
int mk_broker_handle_offset_fetch(mk_req_t *req);
int mk_broker_handle_describe_groups(mk_req_t *req);
int mk_broker_handle_list_groups(mk_req_t *req);
int mk_broker_handle_delete_groups(mk_req_t *req);
int mk_broker_handle_offset_delete(mk_req_t *req);
int mk_broker_handle_consumer_group_heartbeat(mk_req_t *req);
int mk_broker_handle_consumer_group_describe(mk_req_t *req);
int mk_broker_handle_init_producer_id(mk_req_t *req);
int mk_broker_handle_add_partitions_to_txn(mk_req_t *req);
int mk_broker_handle_add_offsets_to_txn(mk_req_t *req);
int mk_broker_handle_end_txn(mk_req_t *req);
int mk_broker_handle_txn_offset_commit(mk_req_t *req);
int mk_broker_handle_describe_producers(mk_req_t *req);
int mk_broker_handle_describe_transactions(mk_req_t *req);
int mk_broker_handle_list_transactions(mk_req_t *req);
/* sasl.c */
int mk_broker_handle_sasl_handshake(mk_req_t *req);
int mk_broker_handle_sasl_authenticate(mk_req_t *req);
int mk_broker_handle_create_acls(mk_req_t *req);
int mk_broker_handle_describe_acls(mk_req_t *req);
int mk_broker_handle_delete_acls(mk_req_t *req);
/* scram.c */
int mk_broker_handle_describe_user_scram_credentials(mk_req_t *req);
int mk_broker_handle_alter_user_scram_credentials(mk_req_t *req);
/* A bare SASL token on a session after a v0 SaslHandshake (kafka-python's
 * form): answered with a bare token, or the connection closed.  Takes
 * ownership of frame. */
void mk_broker_sasl_raw_token(mk_session_t *s, uint8_t *frame, size_t len);
/* Whether a request with this API key may run on s now (auth.required). */
bool mk_broker_sasl_allowed(const mk_session_t *s, int16_t api_key);

/* configs.c: AlterConfigs, IncrementalAlterConfigs; telemetry (KIP-714). */
int mk_broker_handle_alter_configs(mk_req_t *req);
int mk_broker_handle_incremental_alter_configs(mk_req_t *req);
int mk_broker_handle_get_telemetry_subscriptions(mk_req_t *req);
int mk_broker_handle_push_telemetry(mk_req_t *req);
/* partitions.c: the admin APIs on partitions. */
int mk_broker_handle_create_partitions(mk_req_t *req);
int mk_broker_handle_delete_records(mk_req_t *req);
int mk_broker_handle_elect_leaders(mk_req_t *req);
int mk_broker_handle_alter_partition_reassignments(mk_req_t *req);
int mk_broker_handle_list_partition_reassignments(mk_req_t *req);
int mk_broker_handle_describe_log_dirs(mk_req_t *req);
int mk_broker_handle_describe_topic_partitions(mk_req_t *req);

/* quotas.c: Kafka's quota APIs (KIP-546) over the session's tenant. */
int mk_broker_handle_describe_client_quotas(mk_req_t *req);
int mk_broker_handle_alter_client_quotas(mk_req_t *req);

/* ========================================================= quotas.c */

/* The limits this layer enforces itself; see quotas.c.  State made with the
 * layer (mk_broker_attach) and freed with it. */
int mk_broker_limits_init(mk_broker_t *b);
void mk_broker_limits_free(mk_broker_t *b);
/* Apply the tenant-wide limits declared in the configuration
 * (minikora.tenant.<id>.quotas=KEY=VALUE[,...]; the tenant is made if
 * needed).  0, or MK_ERR_INVALID with a log line naming the setting. */
int mk_broker_limits_declare(mk_broker_t *b, const mk_config_t *cfg);
/* controller_mutation_rate (KIP-599): charge partitions created or deleted
 * to the session tenant's bucket and its matched entity's.  strict
 * (CreateTopics v6+, DeleteTopics v5+): false when a bucket is exhausted --
 * nothing charged, answer THROTTLING_QUOTA_EXCEEDED with why; otherwise
 * charged, true.  *throttle_ms rises to the time until the buckets refill
 * (strict: only on a refusal). */
bool mk_broker_limits_mutation(mk_req_t *req, bool strict, int32_t partitions, int32_t *throttle_ms, char *why,
                               size_t why_len);
/* max_partitions: may the session's tenant add more partitions?  *have is
 * its count (computed once when < 0; the caller adds what it creates).
 * false: over the limit, why names it (POLICY_VIOLATION). */
bool mk_broker_limits_partitions(mk_req_t *req, int64_t *have, int32_t more, char *why, size_t why_len);
/* The session tenant's partitions, all topics. */
int64_t mk_broker_limits_partition_count(mk_req_t *req);
/* max_storage_bytes: NULL when the tenant may still produce, else the
 * message (arena) of the POLICY_VIOLATION each partition gets. */
const char *mk_broker_limits_storage_full(mk_req_t *req);
/* max_connections and connection_creation_rate (tenant-wide and per ip
 * entity) for session s joining tenant t: true and s counted, or false and
 * why names the limit (s is then to be refused and closed). */
bool mk_broker_limits_connection(mk_broker_t *b, mk_session_t *s, const mk_tenant_t *t, char *why, size_t why_len);
/* The same for an unauthenticated session's first counted request (the
 * default tenant's connections; ApiVersions and SASL requests are not
 * counted): false -> close the connection with why. */
bool mk_broker_limits_first_request(mk_req_t *req, char *why, size_t why_len);

/* Whether the session's principal may do op on the resource (ACL codes of
 * tenant.h; name as the client gave it).  A tenant without ACLs allows
 * everything. */
bool mk_broker_req_authorized(mk_req_t *req, int8_t resource_type, const char *name, int8_t op);
/* 0 when it may, else the error Kafka gives a denial on that resource type:
 * TOPIC_, GROUP_, TRANSACTIONAL_ID_ or CLUSTER_AUTHORIZATION_FAILED. */
int16_t mk_broker_req_acl_error(mk_req_t *req, int8_t resource_type, mk_str_t name, int8_t op);
/* Whether it may do op on at least one resource of the type (InitProducerId
 * without a transactional id: WRITE on any topic). */
bool mk_broker_req_authorized_any(mk_req_t *req, int8_t resource_type, int8_t op);

/* ===================================================== names (req.c) */

/* The internal (tenant-namespaced) form of a client name: topic, group or
 * transactional id; NULL for a null name.  Arena-allocated when it differs. */
const char *mk_broker_req_internal(mk_req_t *req, mk_str_t name);
/* Resolve a client topic name through the session's tenant. */
mk_topic_t *mk_broker_req_topic(mk_req_t *req, mk_str_t name);
/* A new topic of the session's tenant goes to the tenant's cell. */
void mk_broker_req_topic_cell(mk_req_t *req, mk_topic_spec_t *spec);
/* Resolve a client topic id: another tenant's topic is not found. */
mk_topic_t *mk_broker_req_topic_id(mk_req_t *req, const uint8_t id[16]);
/* The client-visible name of a topic. */
mk_str_t mk_broker_req_topic_name(mk_req_t *req, const mk_topic_t *t);
/* Where this request's client should reach broker b, for every answer that
 * names a broker's address (Metadata, DescribeCluster, FindCoordinator,
 * Produce/Fetch leader endpoints): b's endpoint (mk_cluster_broker_endpoint:
 * advertise host, port mapping) on the kind of listener the request came in
 * on, the SSL one for a TLS connection.  The host is copied into the
 * request's arena, so a mapping changed while the request is parked cannot
 * pull it away. */
void mk_broker_req_endpoint(mk_req_t *req, const mk_cluster_broker_t *b, mk_str_t *host, int32_t *port);

#endif /* MK_BROKER_INT_H */
