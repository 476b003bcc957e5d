/*
 * configs.c -- AlterConfigs and IncrementalAlterConfigs (topic and broker
 * settings), and the telemetry APIs of KIP-714.
 *
 * Topic settings are the topic's overrides (mk_cluster_topic_config_alter):
 * every setting Apache Kafka defines is accepted and validated; a few have
 * no effect yet and say so in docs/COMPATIBILITY.md (config.c's effects
 * table).  Broker settings are dynamic values on a broker id or on the
 * cluster-wide default (resource name "", Kafka's entity-default); only the
 * settings that are not read-only may change (mk_cluster_broker_config_*).
 * Both are persisted before the answer: the request is answered once every
 * write it started is durable.
 *
 * Requests are checked whole per resource, in Kafka's order: duplicate
 * resource -> INVALID_REQUEST; ACL (ALTER_CONFIGS on the topic, or on the
 * cluster for a broker) -> TOPIC_/CLUSTER_AUTHORIZATION_FAILED; unknown
 * topic -> UNKNOWN_TOPIC_OR_PARTITION; bad broker name -> INVALID_REQUEST;
 * then each setting: duplicate -> INVALID_REQUEST, unknown or read-only or
 * bad value or APPEND/SUBTRACT on a non-list -> INVALID_CONFIG.  A resource
 * with any problem changes nothing.  ValidateOnly checks and changes
 * nothing.
 *
 * Tenants: a topic is named through the session's tenant like everywhere
 * else.  Broker settings belong to the operator: only the default tenant's
 * principals may alter them (another tenant gets
 * CLUSTER_AUTHORIZATION_FAILED); every tenant may describe them.
 */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The two responses are walked as one (alter_configs). */
_Static_assert(sizeof(mk_AlterConfigsResponse_AlterConfigsResourceResponse_t) ==
                   sizeof(mk_IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_t),
               "AlterConfigs and IncrementalAlterConfigs responses differ");

enum { RES_TOPIC = 2, RES_BROKER = 4 };
enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

/* The settings of one resource, normalised: n names with their new value
 * (NULL: remove) and, for the legacy AlterConfigs, "replace all". */
typedef struct change_s {
    int32_t n;
    const char **keys;
    const char **vals;
} change_t;

/* Persistence of every resource of the request: answered at the last. */
static void alter_done(int status, void *arg)
{
    mk_req_t *req = arg;
    if (status < 0 && req->status == 0)
        req->status = status;
    if (--req->outstanding == 0)
        mk_broker_req_finish(req);
}

/* A list value with item added (APPEND) or removed (SUBTRACT), in the
 * request's arena. */
static const char *list_edit(mk_req_t *req, const char *cur, const char *item, bool add)
{
    size_t cl = cur ? strlen(cur) : 0, il = strlen(item);
    char *out = mk_arena_alloc(&req->arena, cl + il + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    bool present = false;
    const char *p = cur ? cur : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        bool same = l == il && memcmp(p, item, il) == 0;
        present |= same;
        if (l && !(same && !add)) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, p, l);
            o += l;
        }
        p += l + (e ? 1 : 0);
    }
    if (add && !present && il) {
        if (o)
            out[o++] = ',';
        memcpy(out + o, item, il);
        o += il;
    }
    out[o] = 0;
    return out;
}

/* Check one resource and fill ch; 0 or a Kafka error with why. */
static int16_t check_resource(mk_req_t *req, int8_t type, mk_str_t name, bool incremental, const void *configs,
                              int32_t nconf, change_t *ch, mk_topic_t **tp, int32_t *broker, char *why,
                              size_t why_len)
{
    *tp = NULL;
    *broker = -1;
    if (type == RES_TOPIC) {
        if (!name.ptr || !mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, name.ptr, MK_ACL_OP_ALTER_CONFIGS)) {
            snprintf(why, why_len, "not authorized to alter the topic's configs");
            return MK_KERR_TOPIC_AUTHORIZATION_FAILED;
        }
        *tp = mk_broker_req_topic(req, name);
        if (!*tp) {
            snprintf(why, why_len, "Topic %s not found", name.ptr);
            return MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    } else if (type == RES_BROKER) {
        if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER_CONFIGS) ||
            (req->sess && req->sess->tenant != mk_tenant_default())) {
            snprintf(why, why_len, "not authorized to alter broker configs (they belong to the operator)");
            return MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        }
        const char *nm = name.ptr ? name.ptr : "";
        if (*nm) {
            char *end;
            long id = strtol(nm, &end, 10);
            if (*end || id <= 0 || !mk_cluster_broker_find(req->c, (int32_t)id)) {
                snprintf(why, why_len, "Unknown broker id %s", nm);
                return MK_KERR_INVALID_REQUEST;
            }
            *broker = (int32_t)id;
        }
    } else {
        snprintf(why, why_len, "resource type %d cannot be altered here (topics and brokers only)", type);
        return MK_KERR_INVALID_REQUEST;
    }
    const mk_config_t *cfg = mk_cluster_config(req->c);
    /* Legacy AlterConfigs replaces the whole set: what is not named goes. */
    int32_t extra = 0;
    if (!incremental) {
        if (*tp)
            extra = (int32_t)(*tp)->overrides.count;
        else
            extra = (int32_t)cfg->dynamic.count;
    }
    ch->keys = mk_arena_alloc(&req->arena, sizeof(char *) * (size_t)(nconf + extra + 1));
    ch->vals = mk_arena_alloc(&req->arena, sizeof(char *) * (size_t)(nconf + extra + 1));
    ch->n = 0;
    if (!ch->keys || !ch->vals) {
        snprintf(why, why_len, "out of memory");
        return MK_KERR_UNKNOWN_SERVER_ERROR;
    }
    for (int32_t i = 0; i < nconf; i++) {
        mk_str_t cname, cval;
        int8_t op = OP_SET;
        if (incremental) {
            const mk_IncrementalAlterConfigsRequest_AlterableConfig_t *c =
                &((const mk_IncrementalAlterConfigsRequest_AlterableConfig_t *)configs)[i];
            cname = c->Name;
            cval = c->Value;
            op = c->ConfigOperation;
        } else {
            const mk_AlterConfigsRequest_AlterableConfig_t *c =
                &((const mk_AlterConfigsRequest_AlterableConfig_t *)configs)[i];
            cname = c->Name;
            cval = c->Value;
        }
        if (!cname.ptr) {
            snprintf(why, why_len, "a config without a name");
            return MK_KERR_INVALID_REQUEST;
        }
        for (int32_t j = 0; j < ch->n; j++)
            if (strcmp(ch->keys[j], cname.ptr) == 0) {
                snprintf(why, why_len, "Error due to duplicate config keys: %s", cname.ptr);
                return MK_KERR_INVALID_REQUEST;
            }
        const mk_cfg_def_t *d = *tp ? mk_cluster_cfg_topic_def(cname.ptr) : mk_cluster_cfg_def_find(cname.ptr);
        if (!d || (!*tp && d->scope != MK_CFG_SCOPE_BROKER)) {
            snprintf(why, why_len, "Unknown %s config name: %s", *tp ? "topic" : "broker", cname.ptr);
            return MK_KERR_INVALID_CONFIG;
        }
        if (!*tp && !mk_cluster_broker_config_alterable(d->name)) {
            snprintf(why, why_len, "Cannot update these configs dynamically: %s (read-only)", d->name);
            return MK_KERR_INVALID_CONFIG;
        }
        const char *nv = cval.ptr;
        if (op == OP_DELETE) {
            nv = NULL;
        } else if (op == OP_APPEND || op == OP_SUBTRACT) {
            if (d->type != MK_CFG_LIST) {
                snprintf(why, why_len, "Config value append/subtract is not allowed for config %s (not a list)",
                         d->name);
                return MK_KERR_INVALID_CONFIG;
            }
            const char *cur = *tp ? mk_cluster_topic_config(req->c, *tp, d->name, NULL)
                                  : mk_cluster_config_get_for(cfg, *broker, d->name, NULL);
            nv = list_edit(req, cur, cval.ptr ? cval.ptr : "", op == OP_APPEND);
            if (!nv) {
                snprintf(why, why_len, "out of memory");
                return MK_KERR_UNKNOWN_SERVER_ERROR;
            }
        } else if (op != OP_SET) {
            snprintf(why, why_len, "Unknown config operation %d", op);
            return MK_KERR_INVALID_REQUEST;
        } else if (!nv && !incremental) {
            snprintf(why, why_len, "Null value not supported for: %s", d->name);
            return MK_KERR_INVALID_REQUEST;
        }
        if (nv && !mk_cluster_config_value_valid(d, nv)) {
            snprintf(why, why_len, "Invalid value %s for configuration %s", nv, d->name);
            return MK_KERR_INVALID_CONFIG;
        }
        ch->keys[ch->n] = d->name;
        ch->vals[ch->n++] = nv;
    }
    if (!incremental) {
        /* Everything set before and not named now is removed. */
        size_t it = 0;
        const char *k;
        void *v;
        if (*tp) {
            while (mk_map_next(&(*tp)->overrides, &it, &k, &v)) {
                bool named = false;
                for (int32_t j = 0; j < ch->n && !named; j++)
                    named = strcmp(ch->keys[j], k) == 0;
                if (!named) {
                    ch->keys[ch->n] = mk_arena_strndup(&req->arena, k, strlen(k));
                    ch->vals[ch->n++] = NULL;
                }
            }
        } else {
            char pre[24];
            int pl = *broker < 0 ? snprintf(pre, sizeof(pre), "*|") : snprintf(pre, sizeof(pre), "%d|", *broker);
            while (mk_map_next(&cfg->dynamic, &it, &k, &v)) {
                if (strncmp(k, pre, (size_t)pl) != 0)
                    continue;
                bool named = false;
                for (int32_t j = 0; j < ch->n && !named; j++)
                    named = strcmp(ch->keys[j], k + pl) == 0;
                if (!named) {
                    ch->keys[ch->n] = mk_arena_strndup(&req->arena, k + pl, strlen(k + pl));
                    ch->vals[ch->n++] = NULL;
                }
            }
        }
        for (int32_t j = 0; j < ch->n; j++)
            if (!ch->keys[j]) {
                snprintf(why, why_len, "out of memory");
                return MK_KERR_UNKNOWN_SERVER_ERROR;
            }
    }
    return 0;
}

/* Apply a checked change; 0 or a Kafka error with why.  The request waits
 * for the write (req->outstanding). */
static int16_t apply_resource(mk_req_t *req, mk_topic_t *t, int32_t broker, const change_t *ch, char *why,
                              size_t why_len)
{
    if (ch->n == 0)
        return 0;
    req->outstanding++;
    int rc = t ? mk_cluster_topic_config_alter(req->c, t, ch->keys, ch->vals, ch->n, alter_done, req)
               : mk_cluster_broker_config_alter(req->c, broker, ch->keys, ch->vals, ch->n, alter_done, req);
    if (rc < 0) {
        req->outstanding--;
        snprintf(why, why_len, "%s", mk_strerror(rc));
        return rc == MK_ERR_INVALID ? MK_KERR_INVALID_CONFIG : MK_KERR_UNKNOWN_SERVER_ERROR;
    }
    return 0;
}

/* The two APIs differ only in their request's shape: one loop. */
static int alter_configs(mk_req_t *req, bool incremental)
{
    int32_t n;
    bool validate_only;
    if (incremental) {
        mk_IncrementalAlterConfigsRequest_t *q = req->body;
        n = q->Resources.count;
        validate_only = q->ValidateOnly;
    } else {
        mk_AlterConfigsRequest_t *q = req->body;
        n = q->Resources.count;
        validate_only = q->ValidateOnly;
    }
    if (n < 0)
        n = 0;
    /* Both responses have the same layout (ErrorCode, ErrorMessage,
     * ResourceType, ResourceName per resource). */
    mk_AlterConfigsResponse_AlterConfigsResourceResponse_t *out;
    if (incremental) {
        mk_IncrementalAlterConfigsResponse_t *r = req->resp;
        if (!MK_ARRAY_ALLOC(req, r->Responses, n, IncrementalAlterConfigsResponse_AlterConfigsResourceResponse))
            return MK_ERR_NOMEM;
        out = (mk_AlterConfigsResponse_AlterConfigsResourceResponse_t *)r->Responses.items;
    } else {
        mk_AlterConfigsResponse_t *r = req->resp;
        if (!MK_ARRAY_ALLOC(req, r->Responses, n, AlterConfigsResponse_AlterConfigsResourceResponse))
            return MK_ERR_NOMEM;
        out = r->Responses.items;
    }
    req->outstanding = 1;
    for (int32_t i = 0; i < n; i++) {
        int8_t type;
        mk_str_t name;
        const void *configs;
        int32_t nconf;
        if (incremental) {
            mk_IncrementalAlterConfigsRequest_AlterConfigsResource_t *res =
                &((mk_IncrementalAlterConfigsRequest_t *)req->body)->Resources.items[i];
            type = res->ResourceType;
            name = res->ResourceName;
            configs = res->Configs.items;
            nconf = res->Configs.count < 0 ? 0 : res->Configs.count;
        } else {
            mk_AlterConfigsRequest_AlterConfigsResource_t *res =
                &((mk_AlterConfigsRequest_t *)req->body)->Resources.items[i];
            type = res->ResourceType;
            name = res->ResourceName;
            configs = res->Configs.items;
            nconf = res->Configs.count < 0 ? 0 : res->Configs.count;
        }
        out[i].ResourceType = type;
        out[i].ResourceName = name;
        char why[300];
        int16_t err = 0;
        bool dup = false;
        for (int32_t j = 0; j < n && !dup; j++) {
            if (j == i)
                continue;
            int8_t t2;
            mk_str_t n2;
            if (incremental) {
                t2 = ((mk_IncrementalAlterConfigsRequest_t *)req->body)->Resources.items[j].ResourceType;
                n2 = ((mk_IncrementalAlterConfigsRequest_t *)req->body)->Resources.items[j].ResourceName;
            } else {
                t2 = ((mk_AlterConfigsRequest_t *)req->body)->Resources.items[j].ResourceType;
                n2 = ((mk_AlterConfigsRequest_t *)req->body)->Resources.items[j].ResourceName;
            }
            dup = t2 == type && ((!n2.ptr && !name.ptr) || (n2.ptr && name.ptr && strcmp(n2.ptr, name.ptr) == 0));
        }
        change_t ch = {0};
        mk_topic_t *t = NULL;
        int32_t broker = -1;
        if (dup) {
            err = MK_KERR_INVALID_REQUEST;
            snprintf(why, sizeof(why), "Error due to duplicate resource");
        } else {
            err = check_resource(req, type, name, incremental, configs, nconf, &ch, &t, &broker, why, sizeof(why));
        }
        if (!err && !validate_only)
            err = apply_resource(req, t, broker, &ch, why, sizeof(why));
        if (err) {
            out[i].ErrorCode = err;
            out[i].ErrorMessage = mk_broker_req_str(req, why);
            mk_info("%sAlterConfigs %s refused: %s", incremental ? "Incremental" : "", name.ptr ? name.ptr : "",
                    why);
        }
    }
    if (--req->outstanding == 0)
        return MK_REQ_DONE;
    return MK_REQ_PENDING;
}

int mk_broker_handle_alter_configs(mk_req_t *req) { return alter_configs(req, false); }
int mk_broker_handle_incremental_alter_configs(mk_req_t *req) { return alter_configs(req, true); }

/* ================================================================ telemetry */

/* KIP-714: a client asks what metrics to push.  minikora collects none, so
 * it answers as a Kafka broker without a metrics plugin or subscription
 * does: no error, the client's instance id (a new one when the client sent
 * the zero uuid), an empty metrics list and a long push interval.  A client
 * then pushes nothing (an empty RequestedMetrics list means "no
 * subscription") and logs nothing. */
int mk_broker_handle_get_telemetry_subscriptions(mk_req_t *req)
{
    mk_GetTelemetrySubscriptionsRequest_t *q = req->body;
    mk_GetTelemetrySubscriptionsResponse_t *r = req->resp;
    static const uint8_t zero[16];
    r->ClientInstanceId = q->ClientInstanceId;
    if (memcmp(q->ClientInstanceId.b, zero, 16) == 0) {
        if (getrandom(r->ClientInstanceId.b, 16, GRND_NONBLOCK) != 16) {
            uint64_t a = mk_mono_ns() ^ ((uint64_t)req->node->id << 56), b2 = (uint64_t)(uintptr_t)req ^ a * 31;
            for (int i = 0; i < 8; i++) {
                r->ClientInstanceId.b[i] = (uint8_t)(a >> (8 * i));
                r->ClientInstanceId.b[8 + i] = (uint8_t)(b2 >> (8 * i));
            }
        }
        r->ClientInstanceId.b[6] = (uint8_t)((r->ClientInstanceId.b[6] & 0x0f) | 0x40); /* version 4 */
        r->ClientInstanceId.b[8] = (uint8_t)((r->ClientInstanceId.b[8] & 0x3f) | 0x80);
    }
    r->SubscriptionId = 0;
    r->PushIntervalMs = 300000;
    r->TelemetryMaxBytes = 1048576;
    r->DeltaTemporality = true;
    r->AcceptedCompressionTypes.count = 0;
    r->RequestedMetrics.count = 0;
    return MK_REQ_DONE;
}

/* A push without a subscription: Kafka answers it with no error when the
 * client terminates, and otherwise accepts and drops it (minikora keeps no
 * client metrics).  The metrics bytes are never parsed. */
int mk_broker_handle_push_telemetry(mk_req_t *req)
{
    mk_PushTelemetryResponse_t *r = req->resp;
    r->ErrorCode = 0;
    return MK_REQ_DONE;
}
