/*
 * topics.c -- handlers for the cluster-shaped APIs: Metadata, CreateTopics,
 * DeleteTopics, DescribeConfigs, DescribeCluster (ApiVersions is answered
 * by dispatch.c, from the table).
 *
 * Each handler reads req->body (decoded request) and fills req->resp, whose
 * fields already hold the spec defaults.  Names go through the session's
 * tenant (mk_broker_req_topic / mk_broker_req_topic_name), never straight to the cluster.
 *
 * DescribeConfigs answers every source Kafka has: a topic's override
 * (DYNAMIC_TOPIC_CONFIG), a broker's dynamic value (DYNAMIC_BROKER_CONFIG),
 * the cluster-wide dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG), the
 * file or flag (STATIC_BROKER_CONFIG) and the default, with synonyms in
 * Kafka's order; the settings that AlterConfigs changes are in configs.c.
 *
 * ACLs (Kafka's operations): Metadata topic DESCRIBE (CREATE to auto-create);
 * CreateTopics topic or cluster CREATE, and topic DESCRIBE_CONFIGS for the
 * configs in the answer; DeleteTopics topic DELETE; DescribeConfigs topic
 * DESCRIBE_CONFIGS, or cluster DESCRIBE_CONFIGS for a broker.  A denied
 * resource is refused before it is looked up.
 *
 * The tenant's limits (quotas.c): a topic past max_partitions gets
 * POLICY_VIOLATION (CreateTopics, validate-only too, and auto-create);
 * created and deleted partitions are charged to controller_mutation_rate
 * (KIP-599), which refuses with THROTTLING_QUOTA_EXCEEDED from CreateTopics
 * v6 and DeleteTopics v5 and accepts with the throttle time before; either
 * way the handler sets ThrottleTimeMs and throttle.c then mutes the
 * connection for it (KIP-219), or holds an old client's answer.
 */
#include "broker/broker_int.h"
#include "group/group.h"
#include "repl/repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_OPS_UNKNOWN INT32_MIN  /* "not requested" in Kafka's encoding */

/* ================================================================== Metadata */

static void fill_brokers_metadata(mk_req_t *req, mk_MetadataResponse_t *r)
{
    int n = mk_cluster_broker_count(req->c), live = 0;
    for (int i = 0; i < n; i++)
        live += mk_cluster_broker_at(req->c, i)->running;
    if (!MK_ARRAY_ALLOC(req, r->Brokers, live, MetadataResponse_MetadataResponseBroker))
        return;
    int k = 0;
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(req->c, i);
        if (!b->running)
            continue;
        r->Brokers.items[k].NodeId = b->id;
        mk_broker_req_endpoint(req, b, &r->Brokers.items[k].Host, &r->Brokers.items[k].Port);
        r->Brokers.items[k].Rack = mk_str(b->az);
        k++;
    }
}

static void fill_topic_metadata(mk_req_t *req, mk_MetadataResponse_MetadataResponseTopic_t *out, mk_topic_t *t)
{
    out->ErrorCode = MK_KERR_NONE;
    out->Name = mk_broker_req_topic_name(req, t);
    memcpy(out->TopicId.b, t->id, 16);
    out->IsInternal = false;
    out->TopicAuthorizedOperations = AUTH_OPS_UNKNOWN;
    if (!MK_ARRAY_ALLOC(req, out->Partitions, t->partition_count, MetadataResponse_MetadataResponsePartition))
        return;
    for (int32_t p = 0; p < t->partition_count; p++) {
        mk_MetadataResponse_MetadataResponsePartition_t *mp = &out->Partitions.items[p];
        mk_partition_t *part = mk_cluster_topic_partition(t, p);
        mk_cluster_broker_t *leader = mk_cluster_broker_find(req->c, mk_partition_leader(part));
        bool up = leader && leader->running && mk_partition_log(part);
        mp->PartitionIndex = p;
        mp->LeaderId = up ? mk_partition_leader(part) : -1;
        mp->LeaderEpoch = mk_partition_leader_epoch(part);
        mp->ErrorCode = up ? MK_KERR_NONE : MK_KERR_LEADER_NOT_AVAILABLE;
        int32_t n = mk_partition_replica_count(part);
        int32_t *reps = mk_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)n * 3 + 4);
        if (!reps)
            return;
        int32_t *isr = reps + n, *off = reps + 2 * n;
        int ni = 0, no = 0;
        for (int32_t k = 0; k < n; k++) {
            int32_t id = mk_partition_replica_broker(part, k);
            mk_cluster_broker_t *b = mk_cluster_broker_find(req->c, id);
            reps[k] = id;
            /* An offline partition keeps listing its last in-sync replica, as Kafka does. */
            if (mk_partition_replica_in_isr(part, id) && (mk_partition_replica_log(part, id) || !up))
                isr[ni++] = id;
            if (!b || !b->running)
                off[no++] = id;
        }
        mp->ReplicaNodes.items = reps;
        mp->ReplicaNodes.count = n;
        mp->IsrNodes.items = isr;
        mp->IsrNodes.count = ni;
        mp->OfflineReplicas.items = off;
        mp->OfflineReplicas.count = no;
    }
}

/* Auto-create (Metadata with AllowAutoTopicCreation and
 * auto.create.topics.enable): the topic exists in memory at once and is
 * persisted in the background. */
static mk_topic_t *auto_create(mk_req_t *req, const char *name, int16_t *err)
{
    const mk_config_t *cfg = mk_cluster_config(req->c);
    char why[256];
    if (!mk_cluster_topic_name_valid(name, why, sizeof(why))) {
        *err = MK_KERR_INVALID_TOPIC_EXCEPTION;
        return NULL;
    }
    mk_topic_spec_t spec = {0};
    spec.name = mk_broker_req_internal(req, mk_str(name));
    mk_broker_req_topic_cell(req, &spec);
    spec.partitions = (int32_t)mk_cluster_config_get_i64(cfg, "num.partitions");
    spec.replication_factor =
        (int16_t)MK_MIN(mk_cluster_config_get_i64(cfg, "default.replication.factor"), mk_cluster_cell_size(req->c));
    if (spec.replication_factor < 1)
        spec.replication_factor = 1;
    int64_t have = -1;
    if (!mk_broker_limits_partitions(req, &have, spec.partitions, why, sizeof(why))) {
        *err = MK_KERR_POLICY_VIOLATION;
        mk_info("auto-create of topic %s refused: %s", name, why);
        return NULL;
    }
    mk_topic_t *t = NULL;
    int rc = mk_cluster_topic_create(req->c, &spec, NULL, NULL, &t);
    if (rc == 0 && req->b->repl)
        mk_repl_topic_created(req->b->repl, t);
    if (rc < 0) {
        *err = MK_KERR_UNKNOWN_SERVER_ERROR;
        mk_warn("auto-create of topic %s failed: %s", name, mk_strerror(rc));
        return NULL;
    }
    return t;
}

int mk_broker_handle_metadata(mk_req_t *req)
{
    mk_MetadataRequest_t *q = req->body;
    mk_MetadataResponse_t *r = req->resp;
    fill_brokers_metadata(req, r);
    r->ClusterId = mk_str(mk_cluster_id(req->c));
    r->ControllerId = mk_cluster_controller_id(req->c);
    r->ClusterAuthorizedOperations = AUTH_OPS_UNKNOWN;

    /* v0: an empty list means all topics; v1+: null means all. */
    bool all = q->Topics.count < 0 || (req->version == 0 && q->Topics.count == 0);
    if (all) {
        const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
        int n = mk_cluster_topic_count(req->c), k = 0;
        if (!MK_ARRAY_ALLOC(req, r->Topics, n, MetadataResponse_MetadataResponseTopic))
            return MK_ERR_NOMEM;
        size_t it = 0;
        mk_topic_t *t;
        while ((t = mk_cluster_topic_next(req->c, &it)) && k < n)
            if (mk_tenant_visible(tn, t->name) &&
                mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, mk_broker_req_topic_name(req, t).ptr,
                                         MK_ACL_OP_DESCRIBE))
                fill_topic_metadata(req, &r->Topics.items[k++], t);
        r->Topics.count = k;
        return MK_REQ_DONE;
    }
    bool may_create = q->AllowAutoTopicCreation && mk_cluster_config_get_bool(mk_cluster_config(req->c), "auto.create.topics.enable");
    if (!MK_ARRAY_ALLOC(req, r->Topics, q->Topics.count, MetadataResponse_MetadataResponseTopic))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < q->Topics.count; i++) {
        mk_MetadataRequest_MetadataRequestTopic_t *qt = &q->Topics.items[i];
        mk_MetadataResponse_MetadataResponseTopic_t *rt = &r->Topics.items[i];
        rt->TopicAuthorizedOperations = AUTH_OPS_UNKNOWN;
        mk_topic_t *t = NULL;
        if (qt->Name.ptr) {
            rt->Name = qt->Name;
            if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_DESCRIBE)) {
                rt->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            t = mk_broker_req_topic(req, qt->Name);
            if (!t && may_create && !mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_CREATE) &&
                !mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_CREATE)) {
                rt->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (!t && may_create) {
                int16_t err = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                t = auto_create(req, qt->Name.ptr, &err);
                rt->ErrorCode = err;
            } else if (!t) {
                char why[256];
                rt->ErrorCode = mk_cluster_topic_name_valid(qt->Name.ptr, why, sizeof(why))
                                    ? MK_KERR_UNKNOWN_TOPIC_OR_PARTITION
                                    : MK_KERR_INVALID_TOPIC_EXCEPTION;
            }
        } else {
            t = mk_broker_req_topic_id(req, qt->TopicId.b);
            rt->TopicId = qt->TopicId;
            if (!t)
                rt->ErrorCode = MK_KERR_UNKNOWN_TOPIC_ID;
        }
        if (t)
            fill_topic_metadata(req, rt, t);
    }
    return MK_REQ_DONE;
}

/* ============================================================== CreateTopics */

static void create_done(int status, void *arg)
{
    mk_req_t *req = arg;
    if (status < 0 && req->status == 0)
        req->status = status;
    if (--req->outstanding == 0) {
        if (req->status < 0) {
            /* The topics exist in memory; only their persistence failed. */
            mk_CreateTopicsResponse_t *r = req->resp;
            for (int32_t i = 0; i < r->Topics.count; i++)
                if (r->Topics.items[i].ErrorCode == 0) {
                    r->Topics.items[i].ErrorCode = MK_KERR_KAFKA_STORAGE_ERROR;
                    r->Topics.items[i].ErrorMessage = mk_str("metadata could not be persisted");
                }
        }
        mk_broker_req_finish(req);
    }
}

static void describe_topic_configs(mk_req_t *req, mk_CreateTopicsResponse_CreatableTopicResult_t *rt,
                                   const mk_topic_t *t, int32_t nconf, const mk_str_t *keys, const mk_str_t *vals)
{
    int ndefs, n = 0;
    const mk_cfg_def_t *defs = mk_cluster_cfg_defs(&ndefs);
    for (int i = 0; i < ndefs; i++)
        n += defs[i].scope == MK_CFG_SCOPE_TOPIC;
    if (!MK_ARRAY_ALLOC(req, rt->Configs, n, CreateTopicsResponse_CreatableTopicConfigs))
        return;
    int k = 0;
    for (int i = 0; i < ndefs; i++) {
        if (defs[i].scope != MK_CFG_SCOPE_TOPIC)
            continue;
        mk_CreateTopicsResponse_CreatableTopicConfigs_t *c = &rt->Configs.items[k++];
        int source = 5;
        const char *v = mk_cluster_topic_config(req->c, t, defs[i].name, &source);
        for (int32_t j = 0; !t && j < nconf; j++)
            if (mk_str_eq(keys[j], defs[i].name)) {
                v = vals[j].ptr;
                source = 1;
            }
        c->Name = mk_str(defs[i].name);
        c->Value = mk_str(v);
        c->ReadOnly = defs[i].read_only;
        c->ConfigSource = (int8_t)source;
        c->IsSensitive = false;
    }
}

int mk_broker_handle_create_topics(mk_req_t *req)
{
    mk_CreateTopicsRequest_t *q = req->body;
    mk_CreateTopicsResponse_t *r = req->resp;
    const mk_config_t *cfg = mk_cluster_config(req->c);
    if (!MK_ARRAY_ALLOC(req, r->Topics, q->Topics.count, CreateTopicsResponse_CreatableTopicResult))
        return MK_ERR_NOMEM;
    req->outstanding = 1; /* held until the loop below is done */
    int64_t have = -1;      /* the tenant's partitions (max_partitions), counted once */
    int32_t throttle = 0;   /* controller_mutation_rate */
    for (int32_t i = 0; i < q->Topics.count; i++) {
        mk_CreateTopicsRequest_CreatableTopic_t *qt = &q->Topics.items[i];
        mk_CreateTopicsResponse_CreatableTopicResult_t *rt = &r->Topics.items[i];
        rt->Name = qt->Name;
        char why[300];
        int16_t err = 0;
        int32_t parts = qt->NumPartitions;
        int16_t rf = qt->ReplicationFactor;
        bool dup = false;
        for (int32_t j = 0; j < i; j++)
            dup |= mk_str_eq(q->Topics.items[j].Name, qt->Name.ptr);
        if (dup) {
            err = MK_KERR_INVALID_REQUEST;
            snprintf(why, sizeof(why), "topic '%s' appears more than once in the request", qt->Name.ptr);
        } else if (!mk_cluster_topic_name_valid(qt->Name.ptr, why, sizeof(why))) {
            err = MK_KERR_INVALID_TOPIC_EXCEPTION;
        } else if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_CREATE) &&
                   !mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_CREATE)) {
            err = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            snprintf(why, sizeof(why), "not authorized to create topic '%s'", qt->Name.ptr);
        } else if (mk_broker_req_topic(req, qt->Name)) {
            err = MK_KERR_TOPIC_ALREADY_EXISTS;
            snprintf(why, sizeof(why), "Topic '%s' already exists.", qt->Name.ptr);
        }
        int cell = mk_cluster_cell_size(req->c);
        /* A tenant's explicit assignments stay in its cell.  The default
         * tenant's may name any broker, as on Kafka: an existing user's
         * assignment keeps working (its topic's cell is then the first
         * replica's). */
        int32_t tenant_cell =
            req->sess && req->sess->tenant != mk_tenant_default() ? req->sess->tenant->cell : -1;
        if (!err && qt->Assignments.count > 0) {
            if (parts != -1 || rf != -1) {
                err = MK_KERR_INVALID_REQUEST;
                snprintf(why, sizeof(why), "give either assignments or partitions/replication factor, not both");
            }
            parts = qt->Assignments.count;
            rf = (int16_t)qt->Assignments.items[0].BrokerIds.count;
            for (int32_t a = 0; !err && a < qt->Assignments.count; a++) {
                mk_CreateTopicsRequest_CreatableReplicaAssignment_t *as = &qt->Assignments.items[a];
                bool ok = as->PartitionIndex == a && as->BrokerIds.count == rf && rf >= 1 && rf <= cell;
                for (int32_t x = 0; ok && x < as->BrokerIds.count; x++) {
                    mk_cluster_broker_t *bk = mk_cluster_broker_find(req->c, as->BrokerIds.items[x]);
                    /* A tenant's partitions stay in its cell. */
                    ok = bk != NULL && (tenant_cell < 0 || bk->cell == tenant_cell);
                    for (int32_t y = 0; ok && y < x; y++)
                        ok = as->BrokerIds.items[x] != as->BrokerIds.items[y];
                }
                if (!ok) {
                    err = MK_KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(why, sizeof(why),
                             "assignment of partition %d must name partitions 0..n-1 in order, each with the same "
                             "number (1..%d) of distinct existing brokers%s",
                             as->PartitionIndex, cell, tenant_cell < 0 ? "" : " of the tenant's cell");
                }
            }
        }
        const char **keys = NULL, **vals = NULL;
        mk_str_t *ks = NULL, *vs = NULL;
        if (!err && qt->Configs.count > 0) {
            keys = mk_arena_alloc(&req->arena, sizeof(char *) * (size_t)qt->Configs.count);
            vals = mk_arena_alloc(&req->arena, sizeof(char *) * (size_t)qt->Configs.count);
            ks = mk_arena_alloc(&req->arena, sizeof(mk_str_t) * (size_t)qt->Configs.count);
            vs = mk_arena_alloc(&req->arena, sizeof(mk_str_t) * (size_t)qt->Configs.count);
            if (!keys || !vals || !ks || !vs)
                return MK_ERR_NOMEM;
            for (int32_t c = 0; c < qt->Configs.count; c++) {
                keys[c] = qt->Configs.items[c].Name.ptr;
                vals[c] = qt->Configs.items[c].Value.ptr;
                ks[c] = qt->Configs.items[c].Name;
                vs[c] = qt->Configs.items[c].Value;
            }
        }
        if (!err) {
            if (parts == -1)
                parts = (int32_t)mk_cluster_config_get_i64(cfg, "num.partitions");
            if (rf == -1)
                rf = (int16_t)MK_MIN(mk_cluster_config_get_i64(cfg, "default.replication.factor"), cell);
            /* Partitions, replication factor and configs: the cluster's one
             * check; the messages are Kafka's. */
            mk_topic_spec_t check = {NULL, parts, rf, qt->Configs.count, keys, vals, NULL, false, 0};
            int32_t bad = 0;
            mk_CreateTopicsRequest_CreatableTopicConfig_t *cf = NULL;
            switch (mk_cluster_topic_spec_check(req->c, &check, &bad)) {
            case MK_CLUSTER_SPEC_PARTITIONS:
                err = MK_KERR_INVALID_PARTITIONS;
                snprintf(why, sizeof(why), "Number of partitions must be between 1 and %d, not %d.",
                         MK_CLUSTER_MAX_PARTITIONS, parts);
                break;
            case MK_CLUSTER_SPEC_REPLICATION:
                err = MK_KERR_INVALID_REPLICATION_FACTOR;
                snprintf(why, sizeof(why),
                         "Replication factor must be between 1 and %d (the brokers of a cell, one per AZ), not %d.",
                         cell, rf);
                break;
            case MK_CLUSTER_SPEC_CONFIG_NAME:
                cf = &qt->Configs.items[bad];
                err = MK_KERR_INVALID_CONFIG;
                snprintf(why, sizeof(why), "Unknown topic config name: %s", cf->Name.ptr);
                break;
            case MK_CLUSTER_SPEC_CONFIG_VALUE:
                cf = &qt->Configs.items[bad];
                err = MK_KERR_INVALID_CONFIG;
                snprintf(why, sizeof(why), "Invalid value %s for configuration %s",
                         cf->Value.ptr ? cf->Value.ptr : "null", cf->Name.ptr);
                break;
            }
        }
        /* The tenant's limits: max_partitions (a policy, validate-only
         * too), then the partition mutation quota (KIP-599: strict from v6;
         * validate-only is not charged). */
        if (!err && !mk_broker_limits_partitions(req, &have, parts, why, sizeof(why)))
            err = MK_KERR_POLICY_VIOLATION;
        if (!err && !q->validateOnly && !mk_broker_limits_mutation(req, req->version >= 6, parts, &throttle, why,
                                                                   sizeof(why)))
            err = MK_KERR_THROTTLING_QUOTA_EXCEEDED;
        if (err) {
            rt->ErrorCode = err;
            rt->ErrorMessage = mk_broker_req_str(req, why);
            mk_info("CreateTopics %s refused: %s", qt->Name.ptr, why);
            continue;
        }
        /* Partitions, replication factor and configs are told only to a
         * principal that may DESCRIBE_CONFIGS the topic (else they stay -1). */
        bool show = mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_DESCRIBE_CONFIGS);
        if (show) {
            rt->NumPartitions = parts;
            rt->ReplicationFactor = rf;
        } else {
            rt->TopicConfigErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
        }
        if (q->validateOnly) {
            if (show)
                describe_topic_configs(req, rt, NULL, qt->Configs.count, ks, vs);
            continue;
        }
        int32_t *assignment = NULL;
        if (qt->Assignments.count > 0) {
            assignment = mk_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)parts * (size_t)rf);
            if (!assignment)
                return MK_ERR_NOMEM;
            for (int32_t a = 0; a < parts; a++)
                for (int32_t x = 0; x < rf; x++)
                    assignment[a * rf + x] = qt->Assignments.items[a].BrokerIds.items[x];
        }
        mk_topic_spec_t spec = {mk_broker_req_internal(req, qt->Name), parts, rf,
                                qt->Configs.count, keys, vals, assignment, false, 0};
        mk_broker_req_topic_cell(req, &spec);
        mk_topic_t *t = NULL;
        req->outstanding++;
        int rc = mk_cluster_topic_create(req->c, &spec, create_done, req, &t);
        if (rc < 0) {
            req->outstanding--;
            rt->ErrorCode = rc == MK_ERR_EXISTS ? MK_KERR_TOPIC_ALREADY_EXISTS : MK_KERR_UNKNOWN_SERVER_ERROR;
            rt->ErrorMessage = mk_str(mk_strerror(rc));
            continue;
        }
        if (req->b->repl)
            mk_repl_topic_created(req->b->repl, t);
        if (have >= 0)
            have += parts;
        memcpy(rt->TopicId.b, t->id, 16);
        if (show)
            describe_topic_configs(req, rt, t, 0, NULL, NULL);
    }
    r->ThrottleTimeMs = throttle;
    if (--req->outstanding == 0)
        return MK_REQ_DONE;
    return MK_REQ_PENDING;
}

/* ============================================================== DeleteTopics */

static void delete_done(int status, void *arg)
{
    mk_req_t *req = arg;
    if (status < 0 && req->status == 0)
        req->status = status;
    if (--req->outstanding == 0)
        mk_broker_req_finish(req);
}

int mk_broker_handle_delete_topics(mk_req_t *req)
{
    mk_DeleteTopicsRequest_t *q = req->body;
    mk_DeleteTopicsResponse_t *r = req->resp;
    /* v0-5 name topics in TopicNames; v6+ in Topics (name or id). */
    int32_t n = req->version >= 6 ? q->Topics.count : q->TopicNames.count;
    if (n < 0)
        n = 0;
    if (!MK_ARRAY_ALLOC(req, r->Responses, n, DeleteTopicsResponse_DeletableTopicResult))
        return MK_ERR_NOMEM;
    bool enabled = mk_cluster_config_get_bool(mk_cluster_config(req->c), "delete.topic.enable");
    int32_t throttle = 0; /* controller_mutation_rate (KIP-599: strict from v5) */
    req->outstanding = 1;
    for (int32_t i = 0; i < n; i++) {
        mk_DeleteTopicsResponse_DeletableTopicResult_t *rt = &r->Responses.items[i];
        mk_topic_t *t = NULL;
        if (req->version >= 6) {
            mk_DeleteTopicsRequest_DeleteTopicState_t *qt = &q->Topics.items[i];
            if (qt->Name.ptr) {
                rt->Name = qt->Name;
                t = mk_broker_req_topic(req, qt->Name);
            } else {
                rt->TopicId = qt->TopicId;
                t = mk_broker_req_topic_id(req, qt->TopicId.b);
            }
            if (!t)
                rt->ErrorCode = qt->Name.ptr ? MK_KERR_UNKNOWN_TOPIC_OR_PARTITION : MK_KERR_UNKNOWN_TOPIC_ID;
        } else {
            rt->Name = q->TopicNames.items[i];
            t = mk_broker_req_topic(req, rt->Name);
            if (!t)
                rt->ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        if (!t)
            continue;
        rt->Name = mk_broker_req_str(req, mk_broker_req_topic_name(req, t).ptr);
        memcpy(rt->TopicId.b, t->id, 16);
        if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, rt->Name.ptr, MK_ACL_OP_DELETE)) {
            rt->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        if (!enabled) {
            rt->ErrorCode = MK_KERR_TOPIC_DELETION_DISABLED;
            continue;
        }
        char why[300];
        if (!mk_broker_limits_mutation(req, req->version >= 5, t->partition_count, &throttle, why, sizeof(why))) {
            rt->ErrorCode = MK_KERR_THROTTLING_QUOTA_EXCEEDED;
            rt->ErrorMessage = mk_broker_req_str(req, why);
            mk_info("DeleteTopics %s refused: %s", rt->Name.ptr, why);
            continue;
        }
        req->outstanding++;
        char *name = mk_arena_strndup(&req->arena, t->name, strlen(t->name));
        int rc = mk_cluster_topic_delete(req->c, t, delete_done, req);
        if (rc == 0 && name && req->b->groups)
            mk_group_topic_deleted(req->b->groups, name);
        if (rc < 0) {
            req->outstanding--;
            rt->ErrorCode = MK_KERR_UNKNOWN_SERVER_ERROR;
            rt->ErrorMessage = mk_str(mk_strerror(rc));
        }
    }
    r->ThrottleTimeMs = throttle;
    /* Parked fetches may name a deleted topic: let them see it go. */
    mk_broker_req_wake_soon(req->b);
    if (--req->outstanding == 0)
        return MK_REQ_DONE;
    return MK_REQ_PENDING;
}

/* =========================================================== DescribeConfigs */

enum { RES_TOPIC = 2, RES_BROKER = 4 };

static bool key_wanted(const mk_DescribeConfigsRequest_DescribeConfigsResource_t *res, const char *name)
{
    if (res->ConfigurationKeys.count < 0)
        return true;
    for (int32_t i = 0; i < res->ConfigurationKeys.count; i++)
        if (mk_str_eq(res->ConfigurationKeys.items[i], name))
            return true;
    return false;
}

static void describe_one(mk_req_t *req, const mk_DescribeConfigsRequest_t *q,
                         const mk_DescribeConfigsRequest_DescribeConfigsResource_t *res,
                         mk_DescribeConfigsResponse_DescribeConfigsResult_t *out)
{
    out->ResourceType = res->ResourceType;
    out->ResourceName = res->ResourceName;
    mk_topic_t *t = NULL;
    int32_t broker = -1;       /* a broker resource's id; -1: no particular broker */
    bool defaults_only = false;
    if (res->ResourceType == RES_TOPIC &&
        !mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, res->ResourceName.ptr, MK_ACL_OP_DESCRIBE_CONFIGS)) {
        out->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
        out->ErrorMessage = mk_str("not authorized to describe the topic's configs");
        return;
    }
    if (res->ResourceType == RES_BROKER &&
        !mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE_CONFIGS)) {
        out->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        out->ErrorMessage = mk_str("not authorized to describe the cluster's configs");
        return;
    }
    if (res->ResourceType == RES_TOPIC) {
        t = mk_broker_req_topic(req, res->ResourceName);
        if (!t) {
            out->ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            out->ErrorMessage = mk_str("Topic not found");
            return;
        }
    } else if (res->ResourceType == RES_BROKER) {
        const char *nm = res->ResourceName.ptr ? res->ResourceName.ptr : "";
        char *end;
        long id = strtol(nm, &end, 10);
        if (*nm && (*end || !mk_cluster_broker_find(req->c, (int32_t)id))) {
            out->ErrorCode = MK_KERR_INVALID_REQUEST;
            out->ErrorMessage = mk_str("Unknown broker id");
            return;
        }
        broker = *nm ? (int32_t)id : -1;
        defaults_only = !*nm;
    } else {
        out->ErrorCode = MK_KERR_INVALID_REQUEST;
        out->ErrorMessage = mk_str("Only topic and broker resources can be described");
        return;
    }
    int ndefs;
    const mk_cfg_def_t *defs = mk_cluster_cfg_defs(&ndefs);
    int scope = t ? MK_CFG_SCOPE_TOPIC : MK_CFG_SCOPE_BROKER;
    const mk_config_t *cfg = mk_cluster_config(req->c);
    /* Broker "" (Kafka's entity-default): only the cluster-wide dynamic values. */
#define LISTED(d) ((d)->scope == scope && key_wanted(res, (d)->name) && \
                   (!defaults_only || mk_cluster_config_dynamic(cfg, -1, (d)->name)))
    int n = 0;
    for (int i = 0; i < ndefs; i++)
        n += LISTED(&defs[i]);
    if (!MK_ARRAY_ALLOC(req, out->Configs, n, DescribeConfigsResponse_DescribeConfigsResourceResult))
        return;
    int k = 0;
    for (int i = 0; i < ndefs; i++) {
        const mk_cfg_def_t *d = &defs[i];
        if (!LISTED(d))
            continue;
        mk_DescribeConfigsResponse_DescribeConfigsResourceResult_t *c = &out->Configs.items[k++];
        int source;
        const char *v;
        if (t)
            v = mk_cluster_topic_config(req->c, t, d->name, &source);
        else
            v = mk_cluster_config_get_for(cfg, broker, d->name, &source);
        c->Name = mk_str(d->name);
        c->Value = mk_str(v);
        c->ReadOnly = t ? false : !mk_cluster_broker_config_alterable(d->name);
        c->IsDefault = source == MK_CFG_SRC_DEFAULT;
        c->ConfigSource = (int8_t)source;
        c->IsSensitive = false;
        c->ConfigType = (int8_t)d->type;
        if (q->IncludeDocumentation) {
            const char *eff = mk_cluster_cfg_effect(d->name);
            if (eff) {
                char doc[600];
                snprintf(doc, sizeof(doc), "%s (minikora: %s.)", d->doc, eff);
                c->Documentation = mk_broker_req_str(req, doc);
            } else {
                c->Documentation = mk_str(d->doc);
            }
        }
        if (q->IncludeSynonyms) {
            /* Kafka's order, most specific first: the topic override; the
             * broker's own dynamic value; the cluster-wide dynamic default;
             * the static value; the default.  A topic setting's broker
             * synonym is named by its broker name. */
            mk_DescribeConfigsResponse_DescribeConfigsSynonym_t syn[5];
            int ns = 0;
            if (t && mk_map_get(&t->overrides, d->name)) {
                syn[ns].Name = mk_str(d->name);
                syn[ns].Value = mk_str(mk_map_get(&t->overrides, d->name));
                syn[ns++].Source = MK_CFG_SRC_DYNAMIC_TOPIC;
            }
            const char *bn = t ? d->broker_name : d->name;
            const char *sv;
            if (bn && broker >= 0 && (sv = mk_cluster_config_dynamic(cfg, broker, bn))) {
                syn[ns].Name = mk_str(bn);
                syn[ns].Value = mk_str(sv);
                syn[ns++].Source = MK_CFG_SRC_DYNAMIC_BROKER;
            }
            if (bn && (sv = mk_cluster_config_dynamic(cfg, -1, bn))) {
                syn[ns].Name = mk_str(bn);
                syn[ns].Value = mk_str(sv);
                syn[ns++].Source = MK_CFG_SRC_DYNAMIC_DEFAULT_BROKER;
            }
            if (bn && (sv = mk_cluster_config_static(cfg, bn))) {
                syn[ns].Name = mk_str(bn);
                syn[ns].Value = mk_str(sv);
                syn[ns++].Source = MK_CFG_SRC_STATIC_BROKER;
            }
            const mk_cfg_def_t *bd = bn ? mk_cluster_cfg_def_find(bn) : NULL;
            syn[ns].Name = mk_str(bn ? bn : d->name);
            syn[ns].Value = mk_str(bd ? bd->dflt : d->dflt);
            syn[ns++].Source = MK_CFG_SRC_DEFAULT;
            if (MK_ARRAY_ALLOC(req, c->Synonyms, ns, DescribeConfigsResponse_DescribeConfigsSynonym))
                memcpy(c->Synonyms.items, syn, sizeof(syn[0]) * (size_t)ns);
        }
    }
#undef LISTED
}

int mk_broker_handle_describe_configs(mk_req_t *req)
{
    mk_DescribeConfigsRequest_t *q = req->body;
    mk_DescribeConfigsResponse_t *r = req->resp;
    int32_t n = q->Resources.count < 0 ? 0 : q->Resources.count;
    if (!MK_ARRAY_ALLOC(req, r->Results, n, DescribeConfigsResponse_DescribeConfigsResult))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++)
        describe_one(req, q, &q->Resources.items[i], &r->Results.items[i]);
    return MK_REQ_DONE;
}

/* =========================================================== DescribeCluster */

int mk_broker_handle_describe_cluster(mk_req_t *req)
{
    mk_DescribeClusterRequest_t *q = req->body;
    mk_DescribeClusterResponse_t *r = req->resp;
    if (q->EndpointType != 1) { /* 1 = brokers; 2 = controllers (KIP-919) */
        r->ErrorCode = MK_KERR_UNSUPPORTED_ENDPOINT_TYPE;
        r->ErrorMessage = mk_str("only the broker endpoint type is served");
        return MK_REQ_DONE;
    }
    r->EndpointType = 1;
    r->ClusterId = mk_str(mk_cluster_id(req->c));
    r->ControllerId = mk_cluster_controller_id(req->c);
    r->ClusterAuthorizedOperations = AUTH_OPS_UNKNOWN;
    int n = mk_cluster_broker_count(req->c), live = 0;
    for (int i = 0; i < n; i++)
        live += mk_cluster_broker_at(req->c, i)->running;
    if (!MK_ARRAY_ALLOC(req, r->Brokers, live, DescribeClusterResponse_DescribeClusterBroker))
        return MK_ERR_NOMEM;
    int k = 0;
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(req->c, i);
        if (!b->running)
            continue;
        r->Brokers.items[k].BrokerId = b->id;
        mk_broker_req_endpoint(req, b, &r->Brokers.items[k].Host, &r->Brokers.items[k].Port);
        r->Brokers.items[k].Rack = mk_str(b->az);
        k++;
    }
    return MK_REQ_DONE;
}

/* ========================================================== UnregisterBroker */

/* Kafka's way to remove a broker for good (KIP-631's UnregisterBroker, what
 * kafka-cluster.sh unregister sends).  Here it is the admin API's removal
 * (mk_repl_broker_remove): the operator's only (the default tenant, ALTER
 * on the cluster), refused with a message while the broker holds replicas
 * (drain it first: POST /v1/brokers/{id}/drain) or is the last of its AZ in
 * its cell; an unknown or already retired id is BROKER_ID_NOT_REGISTERED. */
int mk_broker_handle_unregister_broker(mk_req_t *req)
{
    mk_UnregisterBrokerRequest_t *q = req->body;
    mk_UnregisterBrokerResponse_t *r = req->resp;
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER) ||
        (req->sess && req->sess->tenant != mk_tenant_default())) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        r->ErrorMessage = mk_str("not authorized to unregister brokers (they belong to the operator)");
        return MK_REQ_DONE;
    }
    int64_t left = 0;
    int rc = req->b->repl ? mk_repl_broker_remove(req->b->repl, q->BrokerId, &left) : MK_ERR_STATE;
    mk_cluster_broker_t *b = mk_cluster_broker_find(req->c, q->BrokerId);
    char why[200];
    why[0] = 0;
    r->ErrorMessage = mk_str(NULL); /* null without an error, as Kafka */
    if (rc == MK_ERR_NOT_FOUND || rc == MK_ERR_EXISTS) {
        r->ErrorCode = MK_KERR_BROKER_ID_NOT_REGISTERED;
        snprintf(why, sizeof(why), "broker %d is not registered%s", (int)q->BrokerId,
                 rc == MK_ERR_EXISTS ? " (already removed)" : "");
    } else if (rc == MK_ERR_STATE) {
        r->ErrorCode = MK_KERR_INVALID_REQUEST;
        snprintf(why, sizeof(why), "broker %d still holds %lld replicas: drain it first (POST /v1/brokers/%d/drain)",
                 (int)q->BrokerId, (long long)left, (int)q->BrokerId);
    } else if (rc == MK_ERR_RANGE && b) {
        r->ErrorCode = MK_KERR_INVALID_REQUEST;
        snprintf(why, sizeof(why), "broker %d is the last broker of %s in cell %d", (int)q->BrokerId, b->az,
                 (int)b->cell);
    } else if (rc < 0) {
        r->ErrorCode = MK_KERR_UNKNOWN_SERVER_ERROR;
        snprintf(why, sizeof(why), "cannot remove broker %d: %s", (int)q->BrokerId, mk_strerror(rc));
    }
    if (why[0]) {
        char *m = mk_arena_strndup(&req->arena, why, strlen(why));
        if (m)
            r->ErrorMessage = mk_str(m);
    }
    if (rc == 0)
        mk_info("broker %d removed (UnregisterBroker)", (int)q->BrokerId);
    return MK_REQ_DONE;
}
