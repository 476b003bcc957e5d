/*
 * dispatch.c -- the dispatch table, frame handling and sessions.
 *
 * The table below is the one place that says what minikora supports: the
 * ApiVersions answer and docs/COMPATIBILITY.md (`minikora apis --markdown`)
 * are both generated from it, which is why ApiVersions is answered here.
 * Versions are the spec's validVersions except where a row narrows them
 * (Produce v0-2 and Fetch v0-3 need the old message formats v0/v1, which
 * minikora does not keep).
 *
 * A frame's path: header decoded -> table row found and version checked ->
 * body decoded into the request's arena -> the row's handler -> the
 * request's end in req.c.  Handlers never call back into this file.
 *
 * Bad input policy (every case logs one line with the peer):
 *   unknown API key, unsupported version (but ApiVersions), undecodable
 *   header or body  -> the connection is closed, as Kafka does;
 *   ApiVersions with a version we do not know -> a v0 answer with
 *   UNSUPPORTED_VERSION and our API list, so the client can retry.
 */
#include "broker/broker_int.h"

#include <string.h>

/* ============================================================ dispatch table */

static int api_versions(mk_req_t *req);

#define API(name, lo, fn, note) \
    {MK_API_##name, lo, -1, fn, &mk_pmsg_##name##Request, &mk_pmsg_##name##Response, note}
#define API_UPTO(name, lo, hi, fn, note) \
    {MK_API_##name, lo, hi, fn, &mk_pmsg_##name##Request, &mk_pmsg_##name##Response, note}

static mk_api_t apis[] = {
    API(Produce, 3, mk_broker_handle_produce,
        "acks 0/1/all; zstd batches below v7 get UNSUPPORTED_COMPRESSION_TYPE; a CreateTime batch's MaxTimestamp is "
        "recomputed from its records; v0-2 need message format v0/v1 and are not offered"),
    API(Fetch, 4, mk_broker_handle_fetch,
        "long polling (max_wait_ms/min_bytes), byte limits, topic ids v13+; fetch sessions declined "
        "(SessionId 0: every fetch is a full fetch); a topic with compression.type=zstd gets "
        "UNSUPPORTED_COMPRESSION_TYPE below v10 (as Kafka); v0-3 need message format v0/v1 and are not offered"),
    API(ListOffsets, -1, mk_broker_handle_list_offsets, "earliest, latest, by timestamp, max timestamp"),
    API(Metadata, -1, mk_broker_handle_metadata, "racks = AZs, topic ids, auto-create"),
    API(OffsetForLeaderEpoch, -1, mk_broker_handle_offset_for_leader_epoch, "single leader epoch per partition"),
    API(ApiVersions, -1, api_versions, "v0 answer to unknown versions"),
    API(CreateTopics, -1, mk_broker_handle_create_topics,
        "validate-only, configs, assignments; replication factor up to the brokers of a cell (one per AZ); "
        "controller_mutation_rate (KIP-599: THROTTLING_QUOTA_EXCEEDED from v6) and max_partitions "
        "(POLICY_VIOLATION)"),
    API(DeleteTopics, -1, mk_broker_handle_delete_topics,
        "by name and by topic id; controller_mutation_rate (THROTTLING_QUOTA_EXCEEDED from v5)"),
    API(DescribeConfigs, -1, mk_broker_handle_describe_configs,
        "topics and brokers (by id, or \"\" for the cluster-wide dynamic defaults); sources DYNAMIC_TOPIC_CONFIG, "
        "DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG; synonyms, "
        "documentation"),
    API(AlterConfigs, -1, mk_broker_handle_alter_configs,
        "topics (every Kafka topic config; the whole override set replaced) and brokers (settings not read-only, "
        "on a broker id or \"\" for the cluster default); validated, persisted, in effect at once; validate-only"),
    API(IncrementalAlterConfigs, -1, mk_broker_handle_incremental_alter_configs,
        "SET, DELETE, APPEND and SUBTRACT (lists); topics and brokers as AlterConfigs"),
    API(CreatePartitions, -1, mk_broker_handle_create_partitions,
        "the topic's cell, one replica per AZ; assignments checked (a tenant's stay in its cell); validate-only; "
        "max_partitions and controller_mutation_rate (THROTTLING_QUOTA_EXCEEDED from v3)"),
    API(DeleteRecords, -1, mk_broker_handle_delete_records,
        "moves the log start (offset -1: the high watermark), persisted, followed by the followers; the low "
        "watermark is the lowest log start in the ISR"),
    API(ElectLeaders, -1, mk_broker_handle_elect_leaders,
        "preferred (a controlled switch) and unclean (partitions without a leader); null partitions: all of the "
        "tenant's"),
    API(AlterPartitionReassignments, -1, mk_broker_handle_alter_partition_reassignments,
        "online: new replicas catch up and join the ISR, the lead switches, old replicas go; null replicas "
        "cancel; one replica per AZ, a tenant's in its cell"),
    API(ListPartitionReassignments, -1, mk_broker_handle_list_partition_reassignments,
        "replicas, adding and removing of each reassignment in flight"),
    API(DescribeLogDirs, -1, mk_broker_handle_describe_log_dirs,
        "the answering broker's log directory: replicas with size and offset lag, total and usable bytes"),
    API(DescribeTopicPartitions, -1, mk_broker_handle_describe_topic_partitions,
        "KIP-966: topics in name order, ResponsePartitionLimit and cursor paging; no eligible leader replicas "
        "(empty lists)"),
    API(GetTelemetrySubscriptions, -1, mk_broker_handle_get_telemetry_subscriptions,
        "KIP-714: answered with no subscription (no metrics requested), so clients push nothing"),
    API(PushTelemetry, -1, mk_broker_handle_push_telemetry, "KIP-714: accepted and dropped"),
    API(DescribeCluster, -1, mk_broker_handle_describe_cluster, ""),
    API(UnregisterBroker, -1, mk_broker_handle_unregister_broker,
        "removes (retires) a drained broker: refused (INVALID_REQUEST, with a message) while it holds replicas or "
        "is the last broker of its AZ in its cell; the operator's only"),
    API(FindCoordinator, -1, mk_broker_handle_find_coordinator,
        "groups and transactional ids (batched keys v4+)"),
    API(JoinGroup, -1, mk_broker_handle_join_group, "classic protocol, MEMBER_ID_REQUIRED v4+, static membership"),
    API(SyncGroup, -1, mk_broker_handle_sync_group, ""),
    API(Heartbeat, -1, mk_broker_handle_heartbeat, ""),
    API(LeaveGroup, -1, mk_broker_handle_leave_group, "batched members v3+"),
    API(OffsetCommit, -1, mk_broker_handle_offset_commit,
        "answered once the offsets are durable; consumer group members commit with their member epoch "
        "(STALE_MEMBER_EPOCH), from v9 (UNSUPPORTED_VERSION below, as Kafka)"),
    API(OffsetFetch, -1, mk_broker_handle_offset_fetch, "multi-group form v8+"),
    API(DescribeGroups, -1, mk_broker_handle_describe_groups,
        "consumer groups too (protocol type consumer, the assignor as protocol data)"),
    API(ListGroups, -1, mk_broker_handle_list_groups, "state and type filters (classic, consumer)"),
    API(DeleteGroups, -1, mk_broker_handle_delete_groups, ""),
    API(OffsetDelete, -1, mk_broker_handle_offset_delete, ""),
    API(ConsumerGroupHeartbeat, -1, mk_broker_handle_consumer_group_heartbeat,
        "KIP-848: server-side assignors uniform (default) and range, member epochs, reconciliation through owned "
        "partitions, rebalance and session timeouts, static members, SubscribedTopicRegex (v1, POSIX extended, whole "
        "name), classic members in consumer groups and conversions (group.consumer.migration.policy)"),
    API(ConsumerGroupDescribe, -1, mk_broker_handle_consumer_group_describe,
        "members, epochs, current and target assignments; TOPIC_AUTHORIZATION_FAILED as Kafka"),
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
    API(SaslHandshake, -1, mk_broker_handle_sasl_handshake,
        "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 with a tenant's API key; v0 (bare tokens after the handshake) too"),
    API(SaslAuthenticate, -1, mk_broker_handle_sasl_authenticate,
        "binds the connection to the key's tenant; failures answer SASL_AUTHENTICATION_FAILED (also over the "
        "tenant's max_connections or connection_creation_rate, then closed); no re-authentication"),
    API(CreateAcls, -1, mk_broker_handle_create_acls, "the tenant's own ACLs; needs ALTER on the cluster once ACLs exist"),
    API(DescribeAcls, -1, mk_broker_handle_describe_acls, "literal, prefixed, match and any filters"),
    API(DeleteAcls, -1, mk_broker_handle_delete_acls, ""),
    API(DescribeUserScramCredentials, -1, mk_broker_handle_describe_user_scram_credentials,
        "users are the session tenant's API keys; another tenant's keys are not found"),
    API(AlterUserScramCredentials, -1, mk_broker_handle_alter_user_scram_credentials,
        "sets or deletes a mechanism of the tenant's API key (a new valid key id creates the key; no mechanism "
        "left revokes it)"),
    API(DescribeClientQuotas, -1, mk_broker_handle_describe_client_quotas,
        "the session tenant's entities (user = API key, client-id, ip; exact, default and any filters, strict); "
        "tenant-wide limits are not entities"),
    API(AlterClientQuotas, -1, mk_broker_handle_alter_client_quotas,
        "the session tenant's entities; each entry checked whole (keys per entity type, values > 0 and sane, whole "
        "numbers where Kafka's are integers), validate-only"),
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

static const mk_api_t *api_find(int16_t key)
{
    apis_init();
    for (size_t i = 0; i < MK_ARRAY_LEN(apis); i++)
        if (apis[i].key == key)
            return &apis[i];
    return NULL;
}

static const mk_api_t *apis_all(int *count)
{
    apis_init();
    *count = (int)MK_ARRAY_LEN(apis);
    return apis;
}

/* Markdown-safe: a default with '|' would break the table (none has one). */
static const char *cfg_type_name(int type)
{
    switch (type) {
    case MK_CFG_BOOL: return "boolean";
    case MK_CFG_STRING: return "string";
    case MK_CFG_INT: return "int";
    case MK_CFG_SHORT: return "short";
    case MK_CFG_LONG: return "long";
    case MK_CFG_DOUBLE: return "double";
    case MK_CFG_LIST: return "list";
    }
    return "?";
}

/* KIP-848 consumer groups: what is offered and what differs from Kafka 4.0. */
static void kip848_markdown(FILE *out)
{
    fprintf(out,
            "\n## KIP-848 consumer groups\n\n"
            "ConsumerGroupHeartbeat and ConsumerGroupDescribe run beside the classic protocol, in the same\n"
            "coordinator (`src/group/consumer.c`, assignors in `src/group/assign.c`):\n\n"
            "- Server-side assignors `uniform` (balanced and sticky; the default) and `range` (per topic,\n"
            "  contiguous ranges with members in instance id, else member id, order), chosen with\n"
            "  ServerAssignor (Kafka's class names work too); `group.consumer.assignors` lists the allowed\n"
            "  ones, the first being the default.\n"
            "- Member epochs, the group epoch and the target assignment epoch; a partition goes to a new\n"
            "  member only after its previous owner stopped reporting it in TopicPartitions; a member that\n"
            "  does not revoke within its RebalanceTimeoutMs is fenced.\n"
            "- `group.consumer.session.timeout.ms` (45000), `group.consumer.heartbeat.interval.ms` (5000),\n"
            "  their min/max settings, `group.consumer.max.size`, `group.consumer.migration.policy`\n"
            "  (bidirectional, as Kafka 4.0).\n"
            "- Subscriptions by topic names, and by SubscribedTopicRegex (v1) over the tenant's topics; the\n"
            "  regex is POSIX extended and must match the whole name (Kafka uses RE2/J: simple patterns\n"
            "  such as `orders-.*` behave the same; back-references and patterns over 4096 bytes get\n"
            "  INVALID_REGULAR_EXPRESSION).  Regex matches are not filtered by topic ACLs.\n"
            "- Static members (InstanceId; epoch -2 keeps the assignment until the session ends; a new\n"
            "  member id takes it over; UNRELEASED_INSTANCE_ID otherwise), leaving with epoch -1.\n"
            "- Errors as Kafka 4.0: INVALID_REQUEST, UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH,\n"
            "  UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID, GROUP_ID_NOT_FOUND, UNSUPPORTED_ASSIGNOR,\n"
            "  GROUP_MAX_SIZE_REACHED, INVALID_REGULAR_EXPRESSION, TOPIC_AUTHORIZATION_FAILED.\n"
            "- OffsetCommit takes the member epoch as the generation (STALE_MEMBER_EPOCH), OffsetFetch v9\n"
            "  checks it; ListGroups (GroupType, types filter) and DescribeGroups show consumer groups.\n"
            "- Conversions: an empty group changes type when a member of the other protocol joins; a\n"
            "  classic JoinGroup to a non-empty consumer group makes a classic member of it (its\n"
            "  assignment comes from the server through SyncGroup); with the policy upgrade or\n"
            "  bidirectional a consumer heartbeat converts a non-empty classic group of protocol type\n"
            "  consumer, and with downgrade or bidirectional a consumer group whose last consumer-protocol\n"
            "  member leaves becomes classic again and rebalances.\n"
            "- Membership is in memory (as for classic groups); committed offsets are persisted.  Rack-aware\n"
            "  assignment is not done (RackId is kept and described).\n");
}

/* The topic configs section, from config.c's table: every topic config
 * Apache Kafka defines, its broker default, and whether it has an effect. */
static void configs_markdown(FILE *out)
{
    int n;
    const mk_cfg_def_t *defs = mk_cluster_cfg_defs(&n);
    fprintf(out, "\n## Topic configs\n\n"
                 "Generated from the settings table in `src/cluster/config.c`. Every topic config Apache\n"
                 "Kafka 3.9 defines is accepted by CreateTopics, AlterConfigs and IncrementalAlterConfigs,\n"
                 "validated against Kafka's type and range (a bad value gets INVALID_CONFIG), stored, and\n"
                 "reported by DescribeConfigs with its source and synonyms. Changes take effect at once,\n"
                 "without a restart. The ones marked below are accepted and stored but have no effect yet.\n\n"
                 "| config | type | default | broker default (synonym) | effect |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        if (defs[i].scope != MK_CFG_SCOPE_TOPIC)
            continue;
        const char *eff = mk_cluster_cfg_effect(defs[i].name);
        fprintf(out, "| `%s` | %s | %s%s%s | %s%s%s | %s |\n", defs[i].name, cfg_type_name(defs[i].type),
                *defs[i].dflt ? "`" : "", *defs[i].dflt ? defs[i].dflt : "(empty)", *defs[i].dflt ? "`" : "",
                defs[i].broker_name ? "`" : "", defs[i].broker_name ? defs[i].broker_name : "-",
                defs[i].broker_name ? "`" : "", eff ? eff : "as in Kafka");
    }
    fprintf(out, "\nBroker settings that are not read-only (DescribeConfigs says which) can be changed at\n"
                 "runtime with AlterConfigs or IncrementalAlterConfigs on a broker id, or on the cluster-wide\n"
                 "default (resource name \"\"); they are kept in the metadata store and survive restarts. A\n"
                 "per-broker value of a topic's default setting (`log.retention.ms` ...) is stored and shown,\n"
                 "but topics take their defaults from the cluster-wide value, since a topic's replicas span\n"
                 "brokers; `minikora.broker.quota.*` apply per broker.\n");
}

void mk_broker_apis_markdown(FILE *out)
{
    int n;
    const mk_api_t *a = apis_all(&n);
    fprintf(out, "# Kafka API compatibility\n\n"
                 "Generated from the dispatch table in `src/broker/dispatch.c` by `make compat`\n"
                 "(`./minikora apis --markdown`); `make test` fails when this file is stale.\n\n"
                 "The spec versions are those of Apache Kafka's message specs (the JSON files under\n"
                 "`clients/src/main/resources/common/message/` in apache/kafka) at trunk commit\n"
                 "`1d231b35b844` of 23 October 2024, between the 3.9 and 4.0 releases, from which\n"
                 "`src/proto/kafka_gen.c` is generated: the versions of Apache Kafka 3.9.0, plus\n"
                 "ListOffsets v10, EndTxn v5, ConsumerGroupHeartbeat v1 and UpdateFeatures v2.\n"
                 "minikora offers all of them except Produce v0-2 and Fetch v0-3, which need the old\n"
                 "message formats v0/v1 that minikora does not keep (record batches are magic v2\n"
                 "only), and EndTxn v5 (transactions v2).\n\n"
                 "| API | key | versions | spec versions | notes |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++)
        fprintf(out, "| %.*s | %d | %d-%d | %d-%d | %s |\n", (int)(strlen(a[i].req_msg->name) - 7),
                a[i].req_msg->name, a[i].key, a[i].min, a[i].max, a[i].req_msg->vmin, a[i].req_msg->vmax,
                a[i].note);
    fprintf(out, "\nEvery other API key is answered by closing the connection, as Apache Kafka does\n"
                 "for a request it cannot parse; it is not listed in ApiVersions.\n");
    kip848_markdown(out);
    configs_markdown(out);
}

void mk_broker_apis_table(FILE *out, int width)
{
    int n;
    const mk_api_t *a = apis_all(&n);
    int name_w = 3;
    for (int i = 0; i < n; i++)
        name_w = MK_MAX(name_w, (int)strlen(a[i].req_msg->name) - 7);
    /* API, key, versions, spec: fixed; notes take what is left. */
    int notes_col = name_w + 2 + 5 + 10 + 10; /* "%-*s  %4d %-9s %-9s " */
    int notes_w = MK_MAX(width, 60) - notes_col;
    if (notes_w < 20)
        notes_w = 20;
    fprintf(out, "%-*s  %4s %-9s %-9s %s\n", name_w, "API", "KEY", "VERSIONS", "SPEC", "NOTES");
    for (int i = 0; i < n; i++) {
        char v[24], sv[24];
        snprintf(v, sizeof(v), "%d-%d", a[i].min, a[i].max);
        snprintf(sv, sizeof(sv), "%d-%d", a[i].req_msg->vmin, a[i].req_msg->vmax);
        fprintf(out, "%-*.*s  %4d %-9s %-*s", name_w, (int)strlen(a[i].req_msg->name) - 7, a[i].req_msg->name,
                a[i].key, v, a[i].note[0] ? 10 : 0, sv);
        /* Word-wrap the note under its column. */
        const char *p = a[i].note;
        bool first = true;
        while (*p) {
            while (*p == ' ')
                p++;
            int len = (int)strlen(p), cut = len;
            if (len > notes_w) {
                cut = notes_w;
                while (cut > 0 && p[cut] != ' ')
                    cut--;
                if (cut == 0)
                    cut = notes_w;
            }
            fprintf(out, "%*s%.*s\n", first ? 0 : notes_col, "", cut, p);
            first = false;
            p += cut;
        }
        if (first)
            fputc('\n', out);
    }
    fprintf(out, "\nOther API keys are not offered: such a request closes the connection.\n");
}

/* =============================================================== ApiVersions */

static int api_versions(mk_req_t *req)
{
    mk_ApiVersionsResponse_t *r = req->resp;
    int n;
    const mk_api_t *a = apis_all(&n);
    if (!MK_ARRAY_ALLOC(req, r->ApiKeys, n, ApiVersionsResponse_ApiVersion))
        return MK_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        r->ApiKeys.items[i].ApiKey = a[i].key;
        r->ApiKeys.items[i].MinVersion = a[i].min;
        r->ApiKeys.items[i].MaxVersion = a[i].max;
    }
    r->FinalizedFeaturesEpoch = -1;
    return MK_REQ_DONE;
}

/* ApiVersions at a version we do not know: answer in v0 format (Kafka's rule
 * so that any client can read it) with UNSUPPORTED_VERSION and our list.
 * ApiVersions responses always use header v0, so finishing at version 0 is
 * exactly that answer. */
static void api_versions_fallback(mk_req_t *req)
{
    int16_t asked = req->version;
    req->version = 0;
    req->resp = mk_broker_req_structs(req, &mk_pdesc_ApiVersionsResponse, 1);
    if (!req->resp || api_versions(req) < 0) {
        mk_broker_req_reject(req, "%s", "out of memory");
        return;
    }
    ((mk_ApiVersionsResponse_t *)req->resp)->ErrorCode = MK_KERR_UNSUPPORTED_VERSION;
    mk_info("client %s asked ApiVersions v%d; answered v0 with UNSUPPORTED_VERSION",
            mk_net_conn_peer(req->sess->conn), asked);
    mk_broker_req_finish(req);
}

/* =================================================================== frames */

static void frame_cb(mk_net_conn_t *conn, uint8_t *frame, size_t len, void *ud)
{
    mk_cluster_broker_t *node = ud;
    mk_session_t *s = mk_net_conn_get_data(conn);
    if (s && !s->b) { /* the request layer is gone (shutdown) */
        mk_free(frame);
        mk_net_conn_close(conn, "shutting down");
        return;
    }
    if (s && s->sasl_raw) {
        mk_broker_sasl_raw_token(s, frame, len);
        return;
    }
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
    if (rc == MK_ERR_NOT_FOUND || (rc == 0 && !api_find(req->hdr.RequestApiKey))) {
        char k[16];
        snprintf(k, sizeof(k), "%d", req->hdr.RequestApiKey);
        mk_broker_req_reject(req, "unknown or unsupported API key %s", k);
        return;
    }
    if (rc < 0) {
        mk_broker_req_reject(req, "malformed request header: %s", mk_strerror(rc));
        return;
    }
    const mk_api_t *api = api_find(req->hdr.RequestApiKey);
    req->api = api;
    if (!mk_broker_sasl_allowed(s, api->key)) {
        mk_broker_req_reject(req, "%s before SASL authentication (minikora.auth.required)", api->req_msg->name);
        return;
    }
    char why[200];
    if (!mk_broker_limits_first_request(req, why, sizeof(why))) {
        mk_broker_req_reject(req, "connection refused: %s", why);
        return;
    }
    req->version = req->hdr.RequestApiVersion;
    if (req->version < api->min || req->version > api->max) {
        if (api->key == MK_API_ApiVersions) {
            api_versions_fallback(req);
            return;
        }
        char v[96];
        snprintf(v, sizeof(v), "%s v%d (supported v%d-v%d)", api->req_msg->name, req->version, api->min,
                 api->max);
        mk_broker_req_reject(req, "unsupported version: %s", v);
        return;
    }
    req->body = mk_arena_alloc(&req->arena, api->req_msg->body->size);
    req->resp = mk_broker_req_structs(req, api->resp_msg->body, 1);
    if (!req->body || !req->resp) {
        mk_broker_req_reject(req, "%s", "out of memory");
        return;
    }
    rc = mk_proto_decode(api->req_msg, req->version, &r, &req->arena, req->body);
    if (rc < 0) {
        char v[128];
        snprintf(v, sizeof(v), "%s v%d: %s at byte %zu of %zu", api->req_msg->name, req->version,
                 mk_strerror(rc), len - mk_rd_remaining(&r), len);
        mk_broker_req_reject(req, "malformed request body %s", v);
        return;
    }
    s->pending = req;
    /* From here the loop's time is the tenant's request time (throttle.c);
     * the slice outlives req, which the lines below may free. */
    mk_broker_t *b = s->b;
    mk_broker_slice_t sl;
    mk_broker_slice_begin(b, &sl, req);
    /* KIP-219: a Fetch over quota is answered at once, empty (throttle.c). */
    if (api->key == MK_API_Fetch && mk_broker_throttle_fetch_over(req))
        rc = MK_REQ_DONE;
    else
        rc = api->fn(req);
    if (rc == MK_REQ_PENDING) {
        /* nothing */
    } else if (rc < 0) {
        s->pending = NULL;
        mk_broker_req_reject(req, "request refused: %s", mk_strerror(rc));
    } else if (rc == MK_REQ_NONE) {
        mk_broker_req_finish_none(req);
    } else {
        mk_broker_req_finish(req);
    }
    mk_broker_slice_end(b, &sl);
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
    s->next = s->b->sessions;
    if (s->next)
        s->next->prev = s;
    s->b->sessions = s;
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
    if (s->prev)
        s->prev->next = s->next;
    else if (s->b)
        s->b->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    mk_net_conn_set_data(conn, NULL);
    mk_broker_throttle_session_close(s);
    mk_tenant_sasl_free(s->sasl);
    mk_tenant_unref(s->tenant);
    if (strcmp(s->principal, "User:ANONYMOUS") != 0)
        mk_free((char *)s->principal);
    mk_free(s);
}

mk_net_handler_t mk_broker_net_handler(void)
{
    mk_net_handler_t h = {accept_cb, frame_cb, close_cb};
    return h;
}

