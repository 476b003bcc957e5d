/*
 * req.c -- the life of a request: helpers handlers use to build answers,
 * the end of a request (answer queued, next frame released, request freed),
 * and parked requests.
 *
 * A handler that cannot answer yet parks its request with a park function
 * (a Fetch waiting for MinBytes, an acks=all Produce waiting for the ISR).
 * The answer of an old client over quota is parked too, for its throttle
 * time (KIP-219, throttle.c), before it is sent.
 * Appends and high-watermark moves call mk_broker_req_wake_soon(): once the
 * current loop iteration is done, an idle handle runs every parked
 * request's park function, so a burst of produces costs one re-check.  A
 * timer per parked request answers it with what it has at its deadline.
 *
 * This file calls no handler by name: the dispatch table (dispatch.c) calls
 * handlers, handlers call this file, and parked requests come back only
 * through the park function they registered.
 */
#include "broker/broker_int.h"
#include "fault/fault.h"

#include <stdio.h>
#include <string.h>

/* ================================================================= helpers */

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

void mk_broker_req_endpoint(mk_req_t *req, const mk_cluster_broker_t *b, mk_str_t *host, int32_t *port)
{
    bool tls = b->tls_port > 0 && req->sess && mk_net_conn_is_tls(req->sess->conn);
    int p;
    *host = mk_broker_req_str(req, mk_cluster_broker_endpoint(req->c, b, tls, &p));
    *port = p;
}

mk_topic_t *mk_broker_req_topic_id(mk_req_t *req, const uint8_t id[16])
{
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    mk_topic_t *t = mk_cluster_topic_find_id(req->c, id);
    return t && mk_tenant_visible(tn, t->name) ? t : NULL;
}

void mk_broker_req_topic_cell(mk_req_t *req, mk_topic_spec_t *spec)
{
    const mk_tenant_t *t = req->sess ? req->sess->tenant : mk_tenant_default();
    spec->pin_cell = t->cell >= 0;
    spec->cell = t->cell;
}

mk_str_t mk_broker_req_topic_name(mk_req_t *req, const mk_topic_t *t)
{
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    return mk_str(mk_tenant_to_external(tn, t->name));
}

/* ========================================================== authorization */

/* The session's ACL set, or NULL when everything is allowed (no session, no
 * registry, or a tenant without ACLs); the peer's address without its port
 * ("ip:port", "[v6]:port") in host. */
static const mk_tenant_acls_t *req_acls(mk_req_t *req, char *host, size_t host_len, const char **h)
{
    if (!req->sess || !req->b->tenants)
        return NULL;
    const mk_tenant_acls_t *acls = mk_tenant_acls_of(req->b->tenants, req->sess->tenant, false);
    if (!acls || mk_tenant_acls_count(acls) == 0)
        return NULL; /* no ACLs: the tenant's principals may do everything */
    snprintf(host, host_len, "%s", mk_net_conn_peer(req->sess->conn));
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = 0;
    *h = host;
    if (host[0] == '[') {
        *h = host + 1;
        char *rb = strchr(host, ']');
        if (rb)
            *rb = 0;
    }
    return acls;
}

bool mk_broker_req_authorized(mk_req_t *req, int8_t resource_type, const char *name, int8_t op)
{
    char host[64];
    const char *h = NULL;
    const mk_tenant_acls_t *acls = req_acls(req, host, sizeof(host), &h);
    return !acls || mk_tenant_acls_authorize(acls, req->sess->principal, h, resource_type, name ? name : "", op);
}

int16_t mk_broker_req_acl_error(mk_req_t *req, int8_t resource_type, mk_str_t name, int8_t op)
{
    if (mk_broker_req_authorized(req, resource_type, name.ptr, op))
        return 0;
    switch (resource_type) {
    case MK_ACL_RES_TOPIC:
        return MK_KERR_TOPIC_AUTHORIZATION_FAILED;
    case MK_ACL_RES_GROUP:
        return MK_KERR_GROUP_AUTHORIZATION_FAILED;
    case MK_ACL_RES_TRANSACTIONAL_ID:
        return MK_KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    default:
        return MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
    }
}

bool mk_broker_req_authorized_any(mk_req_t *req, int8_t resource_type, int8_t op)
{
    char host[64];
    const char *h = NULL;
    const mk_tenant_acls_t *acls = req_acls(req, host, sizeof(host), &h);
    return !acls || mk_tenant_acls_authorize_any(acls, req->sess->principal, h, resource_type, op);
}

/* ============================================================ end of a request */

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
                                     rejected ? NULL : req->resp,
                                     NULL,
                                     NULL,
                                     false};
        /* A rejected request's connection is already closed (its session may be
         * gone): it is counted without a tenant. */
        const mk_tenant_t *tn = !rejected && req->sess ? req->sess->tenant : mk_tenant_default();
        info.tenant = tn->id;
        info.tenant_prefix = tn->prefix;
        info.client_cross_az = !rejected && req->sess && req->sess->cross_az;
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

/* Park function of an answer held back for an old client's throttle time:
 * ready at its deadline only. */
static bool throttle_delay(mk_req_t *req, bool final)
{
    (void)req;
    return final;
}

void mk_broker_req_finish(mk_req_t *req)
{
    mk_session_t *s = req->sess;
    if (s && !req->fault_delayed && !req->b->closing && req->node) {
        /* A broker-slow fault (fault/): the answer leaves delay_ms later,
         * parked on a timer like a throttled one -- the loop goes on, and the
         * connection's next frame waits for this answer, as it would on a
         * slow broker. */
        req->fault_delayed = true;
        int64_t d = mk_fault_broker_delay_ms(req->node->id);
        if (d > 0) {
            s->pending = req;
            mk_broker_req_park(req, (int32_t)d, throttle_delay);
            return;
        }
    }
    if (s && !req->quota_done && !req->b->closing) {
        /* Quotas (throttle.c), once per request.  KIP-219: a client that
         * throttles itself gets the answer now and the connection is muted;
         * an older one gets the answer after the throttle time. */
        int32_t ms = mk_broker_throttle_response(req);
        if (ms > 0 && !mk_broker_throttle_client_side(req->api->key, req->version)) {
            s->pending = req;
            mk_net_conn_mute(s->conn, (uint64_t)ms);
            mk_broker_req_park(req, ms, throttle_delay);
            return;
        }
        req->mute_ms = ms;
    }
    if (s) {
        /* req stays the session's pending request while it is sent: if sending
         * closes the connection, the close clears req->sess before the session
         * is freed. */
        s->pending = req;
        req_send(req, req->api->resp_msg, req->version, req->resp,
                 mk_proto_resp_header_flexible(req->api->key, req->version));
        if (req->sess) {
            s->pending = NULL;
            if (req->mute_ms > 0)
                mk_net_conn_mute(s->conn, (uint64_t)req->mute_ms);
            mk_net_conn_done(s->conn);
        }
    }
    req_done(req, false);
}

void mk_broker_req_reject(mk_req_t *req, const char *fmt, const char *detail)
{
    char why[256];
    snprintf(why, sizeof(why), fmt, detail);
    mk_warn("broker %d, client %s (%s): %s", req->node->id, mk_net_conn_peer(req->sess->conn),
            req->hdr.ClientId.ptr ? req->hdr.ClientId.ptr : "-", why);
    mk_net_conn_close(req->sess->conn, "bad request");
    req_done(req, true);
}

void mk_broker_req_finish_none(mk_req_t *req)
{
    mk_session_t *s = req->sess;
    if (s) {
        /* No answer to carry a throttle time (Produce acks=0): the connection
         * is muted all the same, as Kafka does. */
        int32_t ms = !req->quota_done && !req->b->closing ? mk_broker_throttle_response(req) : 0;
        s->pending = NULL;
        if (ms > 0)
            mk_net_conn_mute(s->conn, (uint64_t)ms);
        mk_net_conn_done(s->conn);
    }
    req_done(req, false);
}

/* ========================================================== parked requests */

static void park_unlink(mk_broker_t *b, mk_req_t *req)
{
    if (req->park_prev)
        req->park_prev->park_next = req->park_next;
    else if (b->parked == req)
        b->parked = req->park_next;
    if (req->park_next)
        req->park_next->park_prev = req->park_prev;
    req->park_prev = req->park_next = NULL;
}

static void park_link(mk_broker_t *b, mk_req_t *req)
{
    req->park_prev = NULL;
    req->park_next = b->parked;
    if (b->parked)
        b->parked->park_prev = req;
    b->parked = req;
}

static void timer_free_cb(uv_handle_t *h) { mk_free(h); }

static void park_release_timer(mk_req_t *req)
{
    if (req->timer) {
        uv_timer_stop(req->timer);
        uv_close((uv_handle_t *)req->timer, timer_free_cb);
        req->timer = NULL;
    }
}

static void park_timeout_cb(uv_timer_t *timer)
{
    mk_req_t *req = timer->data;
    mk_broker_t *b = req->b;
    park_unlink(b, req);
    park_release_timer(req);
    mk_broker_slice_t sl;
    mk_broker_slice_begin(b, &sl, req);
    if (req->sess)
        req->park_fn(req, true);
    mk_broker_req_finish(req);
    mk_broker_slice_end(b, &sl);
}

void mk_broker_req_park(mk_req_t *req, int32_t max_wait_ms, mk_broker_park_fn fn)
{
    mk_broker_t *b = req->b;
    req->park_fn = fn;
    req->timer = mk_malloc(sizeof(uv_timer_t));
    if (!req->timer) {
        mk_broker_req_finish(req); /* answer now with what we have */
        return;
    }
    uv_timer_init(b->loop, req->timer);
    req->timer->data = req;
    uv_timer_start(req->timer, park_timeout_cb, (uint64_t)max_wait_ms, 0);
    park_link(b, req);
}

/* Re-check every parked request once.  Take the list: requests that stay
 * parked are linked again; requests parked meanwhile (by frames dispatched
 * from mk_broker_req_finish) land on the fresh list and wait for the next
 * wake. */
static void wake_parked(mk_broker_t *b)
{
    mk_req_t *list = b->parked;
    b->parked = NULL;
    while (list) {
        mk_req_t *req = list;
        list = req->park_next;
        if (list)
            list->park_prev = NULL;
        req->park_prev = req->park_next = NULL;
        /* A re-check is request time of its tenant (throttle.c). */
        mk_broker_slice_t sl;
        mk_broker_slice_begin(b, &sl, req);
        if (!req->sess || req->park_fn(req, false)) {
            park_release_timer(req);
            mk_broker_req_finish(req);
            mk_broker_slice_end(b, &sl);
            continue;
        }
        mk_broker_slice_end(b, &sl);
        park_link(b, req);
    }
}

void mk_broker_req_unpark_all(mk_broker_t *b)
{
    while (b->parked) {
        mk_req_t *req = b->parked;
        park_unlink(b, req);
        park_release_timer(req);
        mk_broker_req_finish(req);
    }
}

/* ============================================================= wake handle */

static void wake_cb(uv_idle_t *idle)
{
    mk_broker_t *b = idle->data;
    uv_idle_stop(idle);
    b->wake_pending = false;
    wake_parked(b);
}

int mk_broker_req_init(mk_broker_t *b)
{
    b->wake = mk_calloc(1, sizeof(*b->wake));
    if (!b->wake)
        return MK_ERR_NOMEM;
    uv_idle_init(b->loop, b->wake);
    b->wake->data = b;
    return 0;
}

void mk_broker_req_close(mk_broker_t *b)
{
    mk_broker_req_unpark_all(b);
    if (b->wake)
        uv_close((uv_handle_t *)b->wake, (uv_close_cb)mk_free);
    b->wake = NULL;
}

void mk_broker_req_wake_next(mk_broker_t *b)
{
    if (b->wake_pending || b->closing || !b->wake)
        return;
    b->wake_pending = true;
    uv_idle_start(b->wake, wake_cb);
}

void mk_broker_req_wake_soon(mk_broker_t *b)
{
    if (b->parked)
        mk_broker_req_wake_next(b);
}

