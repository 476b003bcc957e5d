/*
 * broker.c -- the dispatch table, sessions, and the life of a request.
 *
 * The table below is the one place that says what minikora supports: the
 * ApiVersions answer and docs/COMPATIBILITY.md (`minikora apis --markdown`)
 * are both generated from it.  Versions are the spec's validVersions except
 * where a row narrows them (Produce v0-2 and Fetch v0-3 need the old message
 * formats v0/v1, which minikora does not keep).
 *
 * Bad input policy (every case logs one line with the peer):
 *   unknown API key, unsupported version (but ApiVersions), undecodable
 *   header or body  -> the connection is closed, as Kafka does;
 *   ApiVersions with a version we do not know -> a v0 answer with
 *   UNSUPPORTED_VERSION and our API list, so the client can retry.
 */
#include "broker/broker_int.h"
#include "group/group.h"
#include "repl/repl.h"
#include "txn/txn.h"

#include <stdlib.h>
#include <string.h>

/* ============================================================ dispatch table */

#define API(name, lo, fn, note) \
    {MK_API_##name, lo, -1, fn, &mk_pmsg_##name##Request, &mk_pmsg_##name##Response, note}
#define API_UPTO(name, lo, hi, fn, note) \
    {MK_API_##name, lo, hi, fn, &mk_pmsg_##name##Request, &mk_pmsg_##name##Response, note}

static mk_api_t apis[] = {
    API(Produce, 3, mk_broker_handle_produce, "acks 0/1/all; v0-2 need message format v0/v1 and are not offered"),
    API(Fetch, 4, mk_broker_handle_fetch,
        "long polling (max_wait_ms/min_bytes), byte limits, topic ids v13+; fetch sessions declined "
        "(SessionId 0: every fetch is a full fetch); v0-3 need message format v0/v1 and are not offered"),
    API(ListOffsets, -1, mk_broker_handle_list_offsets, "earliest, latest, by timestamp, max timestamp"),
    API(Metadata, -1, mk_broker_handle_metadata, "racks = AZs, topic ids, auto-create"),
    API(OffsetForLeaderEpoch, -1, mk_broker_handle_offset_for_leader_epoch, "single leader epoch per partition"),
    API(ApiVersions, -1, mk_broker_handle_api_versions, "v0 answer to unknown versions"),
    API(CreateTopics, -1, mk_broker_handle_create_topics,
        "validate-only, configs, assignments; replication factor up to the brokers of a cell (one per AZ)"),
    API(DeleteTopics, -1, mk_broker_handle_delete_topics, "by name and by topic id"),
    API(DescribeConfigs, -1, mk_broker_handle_describe_configs, "topics and brokers, synonyms, documentation"),
    API(DescribeCluster, -1, mk_broker_handle_describe_cluster, ""),
    API(FindCoordinator, -1, mk_broker_handle_find_coordinator,
        "groups and transactional ids (batched keys v4+)"),
    API(JoinGroup, -1, mk_broker_handle_join_group, "classic protocol, MEMBER_ID_REQUIRED v4+, static membership"),
    API(SyncGroup, -1, mk_broker_handle_sync_group, ""),
    API(Heartbeat, -1, mk_broker_handle_heartbeat, ""),
    API(LeaveGroup, -1, mk_broker_handle_leave_group, "batched members v3+"),
    API(OffsetCommit, -1, mk_broker_handle_offset_commit, "answered once the offsets are durable"),
    API(OffsetFetch, -1, mk_broker_handle_offset_fetch, "multi-group form v8+"),
    API(DescribeGroups, -1, mk_broker_handle_describe_groups, ""),
    API(ListGroups, -1, mk_broker_handle_list_groups, "state and type filters"),
    API(DeleteGroups, -1, mk_broker_handle_delete_groups, ""),
    API(OffsetDelete, -1, mk_broker_handle_offset_delete, ""),
    API(InitProducerId, -1, mk_broker_handle_init_producer_id, "idempotent and transactional; epoch bump (KIP-360)"),
    API(AddPartitionsToTxn, -1, mk_broker_handle_add_partitions_to_txn, "batched form v4+ (verify-only honoured)"),
    API(AddOffsetsToTxn, -1, mk_broker_handle_add_offsets_to_txn, ""),
    API_UPTO(EndTxn, 0, 4, mk_broker_handle_end_txn,
             "markers written to every partition before the answer; v5 (transactions v2, an epoch bump "
             "per transaction, KIP-890 part 2) is not offered yet"),
    API(TxnOffsetCommit, -1, mk_broker_handle_txn_offset_commit, "offsets applied when the transaction commits"),
    API(DescribeProducers, -1, mk_broker_handle_describe_producers, ""),
    API(DescribeTransactions, -1, mk_broker_handle_describe_transactions, ""),
    API(ListTransactions, -1, mk_broker_handle_list_transactions, "state, producer id and duration filters"),
};

static void apis_init(void)
{
    static bool done;
    if (done)
        return;
    for (size_t i = 0; i < MK_ARRAY_LEN(apis); i++) {
        if (apis[i].min < 0)
            apis[i].min = apis[i].req_msg->vmin;
        if (apis[i].max < 0)
            apis[i].max = apis[i].req_msg->vmax;
    }
    done = true;
}

const mk_api_t *mk_broker_api_find(int16_t key)
{
    apis_init();
    for (size_t i = 0; i < MK_ARRAY_LEN(apis); i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

const mk_api_t *mk_broker_apis(int *count)
{
    apis_init();
    *count = (int)MK_ARRAY_LEN(apis);
    return apis;
}

void mk_broker_apis_markdown(FILE *out)
{
    int n;
    const mk_api_t *a = mk_broker_apis(&n);
    fprintf(out, "# Kafka API compatibility\n\n"
                 "Generated from the dispatch table in `src/broker/broker.c` by `make compat`\n"
                 "(`./minikora apis --markdown`); `make test` fails when this file is stale.\n\n"
                 "Versions are those of the Apache Kafka message specs in `../shared/kafka-protocol/`,\n"
                 "except Produce v0-2 and Fetch v0-3, which need the old message formats v0/v1\n"
                 "that minikora does not keep (record batches are magic v2 only), and EndTxn v5\n"
                 "(transactions v2).\n\n"
                 "| API | key | versions | spec versions | notes |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++)
        fprintf(out, "| %.*s | %d | %d-%d | %d-%d | %s |\n", (int)(strlen(a[i].req_msg->name) - 7),
                a[i].req_msg->name, a[i].key, a[i].min, a[i].max, a[i].req_msg->vmin, a[i].req_msg->vmax,
                a[i].note);
    fprintf(out, "\nEvery other API key is answered by closing the connection, as Apache Kafka does\n"
                 "for a request it cannot parse; it is not listed in ApiVersions.\n");
}

/* ================================================================== requests */

void *mk_broker_req_structs(mk_req_t *req, const mk_pstruct_t *d, int32_t n)
{
    if (n <= 0)
        return NULL;
    uint8_t *p = mk_arena_alloc(&req->arena, d->size * (size_t)n);
    if (!p)
        return NULL;
    for (int32_t i = 0; i < n; i++)
        mk_proto_struct_defaults(d, p + d->size * (size_t)i);
    return p;
}

mk_str_t mk_broker_req_str(mk_req_t *req, const char *s)
{
    if (!s)
        return mk_str(NULL);
    mk_str_t r = {mk_arena_strndup(&req->arena, s, strlen(s)), (int32_t)strlen(s)};
    return r;
}

const char *mk_broker_req_internal(mk_req_t *req, mk_str_t name)
{
    if (!name.ptr)
        return NULL;
    const mk_tenant_t *t = req->sess ? req->sess->tenant : mk_tenant_default();
    return mk_tenant_to_internal(t, name.ptr, &req->arena);
}

mk_topic_t *mk_broker_req_topic(mk_req_t *req, mk_str_t name)
{
    const char *internal = mk_broker_req_internal(req, name);
    return internal ? mk_cluster_topic_find(req->c, internal) : NULL;
}

mk_str_t mk_broker_req_topic_name(mk_req_t *req, const mk_topic_t *t)
{
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    return mk_str(mk_tenant_to_external(tn, t->name));
}

static void req_free(mk_req_t *req)
{
    mk_arena_free(&req->arena);
    mk_buf_free(&req->data);
    mk_free(req->frame);
    mk_free(req);
}

/* The request is over: tell the observer (admin/ metrics), then free it. */
static void req_done(mk_req_t *req, bool rejected)
{
    mk_broker_t *b = req->b;
    if (b && b->req_cb) {
        mk_broker_req_info_t info = {req->node ? req->node->id : -1,
                                     req->hdr.RequestApiKey,
                                     req->hdr.RequestApiVersion,
                                     mk_mono_ns() - req->start_ns,
                                     rejected,
                                     req->hdr.ClientId.ptr,
                                     rejected ? NULL : req->body,
                                     rejected ? NULL : req->resp};
        b->req_cb(&info, b->req_cb_ud);
    }
    req_free(req);
}

/* Encode header + body with the 4-byte size prefix and queue it. */
static void req_send(mk_req_t *req, const mk_pmsg_t *msg, int16_t version, const void *body, bool flexible_hdr)
{
    mk_buf_t w;
    mk_buf_init(&w);
    /* Records gathered for a Fetch dominate the size: one allocation, no regrowth. */
    mk_buf_reserve(&w, req->data.len + 4096);
    mk_buf_put_i32(&w, 0);
    mk_buf_put_i32(&w, req->hdr.CorrelationId);
    if (flexible_hdr)
        mk_buf_put_uvarint(&w, 0);
    int rc = mk_proto_encode(msg, version, body, &w);
    if (rc < 0 || !mk_buf_ok(&w)) {
        mk_error("cannot encode %s v%d response: %s", msg->name, version, mk_strerror(rc < 0 ? rc : MK_ERR_NOMEM));
        mk_buf_free(&w);
        mk_net_conn_close(req->sess->conn, "response encoding failed");
        return;
    }
    mk_buf_patch_i32(&w, 0, (int32_t)(w.len - 4));
    size_t len;
    uint8_t *data = mk_buf_steal(&w, &len);
    mk_net_conn_send(req->sess->conn, data, len);
}

void mk_broker_req_finish(mk_req_t *req)
{
    mk_session_t *s = req->sess;
    if (s) {
        s->pending = NULL;
        req_send(req, req->api->resp_msg, req->version, req->resp,
                 mk_proto_resp_header_flexible(req->api->key, req->version));
        mk_net_conn_done(s->conn);
    }
    req_done(req, false);
}

static void req_reject(mk_req_t *req, const char *fmt, const char *detail)
{
    char why[256];
    snprintf(why, sizeof(why), fmt, detail);
    mk_warn("broker %d, client %s (%s): %s", req->node->id, mk_net_conn_peer(req->sess->conn),
            req->hdr.ClientId.ptr ? req->hdr.ClientId.ptr : "-", why);
    mk_net_conn_close(req->sess->conn, "bad request");
    req_done(req, true);
}

/* ApiVersions at a version we do not know: answer in v0 format (Kafka's rule
 * so that any client can read it) with UNSUPPORTED_VERSION and our list. */
static void api_versions_fallback(mk_req_t *req)
{
    req->version = 0;
    req->resp = mk_broker_req_structs(req, &mk_pdesc_ApiVersionsResponse, 1);
    if (!req->resp || mk_broker_handle_api_versions(req) < 0) {
        req_reject(req, "%s", "out of memory");
        return;
    }
    ((mk_ApiVersionsResponse_t *)req->resp)->ErrorCode = MK_KERR_UNSUPPORTED_VERSION;
    mk_info("client %s asked ApiVersions v%d; answered v0 with UNSUPPORTED_VERSION",
            mk_net_conn_peer(req->sess->conn), req->hdr.RequestApiVersion);
    req_send(req, &mk_pmsg_ApiVersionsResponse, 0, req->resp, false);
    mk_net_conn_done(req->sess->conn);
    req_done(req, false);
}

static void frame_cb(mk_net_conn_t *conn, uint8_t *frame, size_t len, void *ud)
{
    mk_cluster_broker_t *node = ud;
    mk_session_t *s = mk_net_conn_get_data(conn);
    mk_req_t *req = mk_calloc(1, sizeof(*req));
    if (!req || !s) {
        mk_free(frame);
        mk_free(req);
        mk_net_conn_close(conn, "out of memory");
        return;
    }
    mk_arena_init(&req->arena);
    req->frame = frame;
    req->frame_len = len;
    req->sess = s;
    req->b = s->b;
    req->c = node->cluster;
    req->node = node;
    req->start_ns = mk_mono_ns();
    s->b->requests++;

    mk_reader_t r;
    mk_rd_init(&r, frame, len);
    int rc = mk_proto_req_header_decode(&r, &req->arena, &req->hdr);
    if (rc == MK_ERR_NOT_FOUND || (rc == 0 && !mk_broker_api_find(req->hdr.RequestApiKey))) {
        char k[16];
        snprintf(k, sizeof(k), "%d", req->hdr.RequestApiKey);
        req_reject(req, "unknown or unsupported API key %s", k);
        return;
    }
    if (rc < 0) {
        req_reject(req, "malformed request header: %s", mk_strerror(rc));
        return;
    }
    const mk_api_t *api = mk_broker_api_find(req->hdr.RequestApiKey);
    req->api = api;
    req->version = req->hdr.RequestApiVersion;
    if (req->version < api->min || req->version > api->max) {
        if (api->key == MK_API_ApiVersions) {
            api_versions_fallback(req);
            return;
        }
        char v[96];
        snprintf(v, sizeof(v), "%s v%d (supported v%d-v%d)", api->req_msg->name, req->version, api->min,
                 api->max);
        req_reject(req, "unsupported version: %s", v);
        return;
    }
    req->body = mk_arena_alloc(&req->arena, api->req_msg->body->size);
    req->resp = mk_broker_req_structs(req, api->resp_msg->body, 1);
    if (!req->body || !req->resp) {
        req_reject(req, "%s", "out of memory");
        return;
    }
    rc = mk_proto_decode(api->req_msg, req->version, &r, &req->arena, req->body);
    if (rc < 0) {
        char v[128];
        snprintf(v, sizeof(v), "%s v%d: %s at byte %zu of %zu", api->req_msg->name, req->version,
                 mk_strerror(rc), len - mk_rd_remaining(&r), len);
        req_reject(req, "malformed request body %s", v);
        return;
    }
    s->pending = req;
    rc = api->fn(req);
    if (rc == MK_REQ_PENDING)
        return;
    if (rc < 0) {
        s->pending = NULL;
        req_reject(req, "request refused: %s", mk_strerror(rc));
        return;
    }
    if (rc == MK_REQ_NONE) {
        s->pending = NULL;
        mk_net_conn_done(conn);
        req_done(req, false);
        return;
    }
    mk_broker_req_finish(req);
}

/* ================================================================== sessions */

static void accept_cb(mk_net_conn_t *conn, void *ud)
{
    mk_cluster_broker_t *node = ud;
    mk_session_t *s = mk_calloc(1, sizeof(*s));
    if (!s) {
        mk_net_conn_close(conn, "out of memory");
        return;
    }
    s->conn = conn;
    s->node = node;
    s->b = mk_cluster_handler_ud(node->cluster);
    s->tenant = mk_tenant_default();
    s->principal = "User:ANONYMOUS";
    mk_net_conn_set_data(conn, s);
    mk_debug("broker %d: connection from %s", node->id, mk_net_conn_peer(conn));
}

static void close_cb(mk_net_conn_t *conn, void *ud)
{
    mk_session_t *s = mk_net_conn_get_data(conn);
    if (!s)
        return;
    if (s->pending)
        s->pending->sess = NULL; /* the request finishes alone, answer dropped */
    mk_net_conn_set_data(conn, NULL);
    mk_free(s);
}

mk_net_handler_t mk_broker_net_handler(void)
{
    mk_net_handler_t h = {accept_cb, frame_cb, close_cb};
    return h;
}

/* ==================================================================== broker */

static void wake_cb(uv_idle_t *idle)
{
    mk_broker_t *b = idle->data;
    uv_idle_stop(idle);
    b->wake_pending = false;
    mk_broker_wake_fetches(b);
}

int mk_broker_new(uv_loop_t *loop, mk_broker_t **out)
{
    mk_broker_t *b = mk_calloc(1, sizeof(*b));
    if (!b)
        return MK_ERR_NOMEM;
    b->loop = loop;
    b->wake = mk_calloc(1, sizeof(*b->wake));
    if (!b->wake) {
        mk_free(b);
        return MK_ERR_NOMEM;
    }
    uv_idle_init(loop, b->wake);
    b->wake->data = b;
    apis_init();
    *out = b;
    return 0;
}

/* The transaction coordinator's way to write a marker as p's leader. */
static int marker_append(void *arg, mk_partition_t *p, uint8_t *batch, size_t len)
{
    mk_broker_t *b = arg;
    if (!p->log)
        return MK_ERR_STATE;
    mk_log_append_info_t info;
    int rc = mk_log_append(p->log, batch, len, p->leader_epoch, mk_now_ms(), &info);
    if (rc < 0)
        return rc;
    mk_txn_after_append(b->txn, p, batch, len);
    if (b->repl)
        mk_repl_on_append(b->repl, p);
    mk_broker_wake_soon(b);
    return 0;
}

/* High watermarks or ISRs moved: parked Produce and Fetch requests re-check. */
static void repl_progress_cb(void *arg) { mk_broker_wake_soon(arg); }

mk_repl_t *mk_broker_repl(mk_broker_t *b) { return b->repl; }

mk_group_coord_t *mk_broker_groups(mk_broker_t *b) { return b->groups; }

void mk_broker_set_req_cb(mk_broker_t *b, mk_broker_req_cb cb, void *ud)
{
    b->req_cb = cb;
    b->req_cb_ud = ud;
}

int mk_broker_topic_create(mk_broker_t *b, const mk_topic_spec_t *spec, mk_topic_t **out)
{
    int rc = mk_cluster_topic_create(b->c, spec, NULL, NULL, out);
    if (rc == 0 && b->repl)
        mk_repl_topic_created(b->repl, *out);
    return rc;
}

int mk_broker_topic_delete(mk_broker_t *b, mk_topic_t *t)
{
    char *name = mk_strdup(t->name);
    if (!name)
        return MK_ERR_NOMEM;
    int rc = mk_cluster_topic_delete(b->c, t, NULL, NULL);
    if (rc == 0 && b->groups)
        mk_group_topic_deleted(b->groups, name);
    mk_free(name);
    /* Parked fetches may name the deleted topic: let them see it go. */
    mk_broker_wake_soon(b);
    return rc;
}

int mk_broker_attach(mk_broker_t *b, mk_cluster_t *c)
{
    b->c = c;
    const mk_config_t *cfg = mk_cluster_config(c);
    mk_group_config_t gcfg = {
        (int32_t)mk_cluster_config_get_i64(cfg, "group.initial.rebalance.delay.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.min.session.timeout.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.max.session.timeout.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "group.max.size"),
        mk_cluster_config_get_i64(cfg, "offsets.retention.minutes") * 60000,
        (int32_t)mk_cluster_config_get_i64(cfg, "offset.metadata.max.bytes"),
    };
    int rc = mk_group_coord_new(b->loop, c, &gcfg, &b->groups);
    if (rc < 0)
        return rc;
    mk_repl_config_t rcfg = {
        mk_cluster_config_get_i64(cfg, "replica.lag.time.max.ms"),
        (int32_t)mk_cluster_config_get_i64(cfg, "minikora.cross.az.latency.ms"),
        mk_cluster_config_get_bool(cfg, "auto.leader.rebalance.enable"),
        mk_cluster_config_get_bool(cfg, "unclean.leader.election.enable"),
    };
    rc = mk_repl_new(b->loop, c, &rcfg, repl_progress_cb, b, &b->repl);
    if (rc < 0)
        return rc;
    mk_repl_start_all(b->repl);
    return mk_txn_new(b->loop, c, b->groups, marker_append, b, &b->txn);
}

void mk_broker_wake_soon(mk_broker_t *b)
{
    if (b->wake_pending || b->closing || !b->parked)
        return;
    b->wake_pending = true;
    uv_idle_start(b->wake, wake_cb);
}

void mk_broker_free(mk_broker_t *b)
{
    if (!b)
        return;
    b->closing = true;
    mk_broker_unpark_all(b);
    mk_txn_free(b->txn);
    b->txn = NULL;
    mk_group_coord_free(b->groups);
    b->groups = NULL;
    mk_repl_free(b->repl);
    b->repl = NULL;
    uv_close((uv_handle_t *)b->wake, (uv_close_cb)mk_free);
    mk_free(b);
}
