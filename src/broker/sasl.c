/*
 * sasl.c -- SaslHandshake (17) and SaslAuthenticate (36): binding a
 * connection to a tenant.
 *
 * The mechanisms (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and their crypto live
 * in tenant/ (mk_tenant_sasl_*); this file speaks Kafka around them:
 *
 *   SaslHandshake v1 + SaslAuthenticate   librdkafka, the Java client, kafkajs:
 *                                         each token in a SaslAuthenticate
 *                                         request, each challenge in its
 *                                         response.
 *   SaslHandshake v0 + bare tokens        kafka-python 2.0: after the
 *                                         handshake, tokens travel as bare
 *                                         size-prefixed frames and so do
 *                                         the answers (dispatch.c hands them
 *                                         to mk_broker_sasl_raw_token()).
 *
 * On success the session gets the key's tenant and the principal
 * "User:<key>", and the connection leaves the pre-authentication frame
 * limit.  A failure is answered with SASL_AUTHENTICATION_FAILED (58) and a
 * sentence, and logged with the peer; in the bare-token form, which has no
 * error field, the connection is closed with the log line instead (what
 * Kafka does).  Kafka closes the connection after a failure; here the error
 * is answered and any further SASL request on that connection closes it, so
 * each connection gets one password guess (one PBKDF2).  Re-authentication (KIP-368) is not offered: a second
 * handshake on an authenticated connection gets ILLEGAL_SASL_STATE.
 *
 * A tenant's connection limits (max_connections, connection_creation_rate,
 * its ip entities' rates; quotas.c) are checked once the credentials are
 * right: a connection over one gets SASL_AUTHENTICATION_FAILED with a
 * sentence naming the limit and is closed (in the bare-token form, closed),
 * with a log line.
 *
 * minikora.auth.required: any request other than ApiVersions, SaslHandshake
 * and SaslAuthenticate before authentication closes the connection with a
 * log line, as Kafka does on a SASL listener (dispatch.c asks
 * mk_broker_sasl_allowed() before decoding the body).
 */
#include "broker/broker_int.h"

#include <string.h>

bool mk_broker_sasl_allowed(const mk_session_t *s, int16_t api_key)
{
    if (!s->b->auth_required || s->authenticated)
        return true;
    return api_key == MK_API_ApiVersions || api_key == MK_API_SaslHandshake || api_key == MK_API_SaslAuthenticate;
}

/* The exchange succeeded: bind the session to the key's tenant t (the
 * reference mk_tenant_sasl_tenant() gave, taken over here). */
static void sasl_bind(mk_session_t *s, const mk_tenant_t *t)
{
    char *principal = mk_malloc(5 + MK_TENANT_KEY_LEN + 1);
    if (principal)
        snprintf(principal, 5 + MK_TENANT_KEY_LEN + 1, "User:%s", mk_tenant_sasl_key(s->sasl));
    mk_tenant_unref(s->tenant);
    s->tenant = t;
    if (s->principal && strcmp(s->principal, "User:ANONYMOUS") != 0)
        mk_free((char *)s->principal);
    s->principal = principal ? principal : "User:ANONYMOUS";
    snprintf(s->key, sizeof(s->key), "%s", mk_tenant_sasl_key(s->sasl));
    s->authenticated = true;
    s->sasl_raw = false;
    mk_tenant_sasl_free(s->sasl);
    s->sasl = NULL;
    mk_net_conn_set_authenticated(s->conn);
    mk_info("broker %d: client %s authenticated as %s (tenant %s)", s->node->id, mk_net_conn_peer(s->conn),
            s->principal, t->id);
}

static void sasl_failed(mk_session_t *s, const char *why)
{
    mk_warn("broker %d: client %s: SASL authentication failed: %s", s->node->id, mk_net_conn_peer(s->conn), why);
    mk_tenant_sasl_free(s->sasl);
    s->sasl = NULL;
    s->sasl_mech = 0;
    s->sasl_raw = false;
    s->sasl_failed = true;
}

/* After a failed exchange the client has its error; a second attempt on the
 * same connection closes it (one password guess per connection, as Kafka,
 * which closes the connection after the failure). */
static int sasl_retry_refused(mk_session_t *s)
{
    mk_warn("broker %d: client %s: SASL request after a failed authentication; closing", s->node->id,
            mk_net_conn_peer(s->conn));
    return MK_ERR_STATE;
}

/* The credentials are right, but the tenant is at one of its connection
 * limits (quotas.c): answer SASL_AUTHENTICATION_FAILED naming the limit,
 * then close the connection.  The answer is queued before the close, so the
 * client reads the reason (Kafka too answers a failed authentication and
 * then closes).  req is finished here: returns MK_REQ_PENDING. */
static int sasl_refuse_over_limit(mk_req_t *req, const char *lim)
{
    mk_SaslAuthenticateResponse_t *r = req->resp;
    mk_session_t *s = req->sess;
    mk_net_conn_t *conn = s->conn;
    char why[300];
    snprintf(why, sizeof(why), "connection refused: %s", lim);
    sasl_failed(s, why);
    r->ErrorCode = MK_KERR_SASL_AUTHENTICATION_FAILED;
    r->ErrorMessage = mk_broker_req_str(req, why);
    r->AuthBytes.ptr = (const uint8_t *)"";
    r->AuthBytes.len = 0;
    mk_broker_req_finish(req);
    mk_net_conn_close(conn, "over a tenant connection limit");
    return MK_REQ_PENDING;
}

int mk_broker_handle_sasl_handshake(mk_req_t *req)
{
    mk_SaslHandshakeRequest_t *q = req->body;
    mk_SaslHandshakeResponse_t *r = req->resp;
    mk_session_t *s = req->sess;
    if (s->sasl_failed)
        return sasl_retry_refused(s);
    int n;
    const char *const *names = mk_tenant_mechs(&n);
    r->Mechanisms.items = mk_arena_alloc(&req->arena, sizeof(mk_str_t) * (size_t)n);
    if (!r->Mechanisms.items)
        return MK_ERR_NOMEM;
    r->Mechanisms.count = n;
    for (int i = 0; i < n; i++)
        r->Mechanisms.items[i] = mk_str(names[i]);
    if (s->authenticated || s->sasl) {
        r->ErrorCode = MK_KERR_ILLEGAL_SASL_STATE;
        mk_warn("broker %d: client %s: SaslHandshake on a connection that %s", s->node->id,
                mk_net_conn_peer(s->conn), s->authenticated ? "has authenticated" : "is authenticating");
        return MK_REQ_DONE;
    }
    int mech = mk_tenant_mech_find(q->Mechanism.ptr, q->Mechanism.ptr ? (size_t)q->Mechanism.len : 0);
    if (!mech) {
        r->ErrorCode = MK_KERR_UNSUPPORTED_SASL_MECHANISM;
        mk_warn("broker %d: client %s asked for SASL mechanism '%.64s', not enabled", s->node->id,
                mk_net_conn_peer(s->conn), q->Mechanism.ptr ? q->Mechanism.ptr : "");
        return MK_REQ_DONE;
    }
    s->sasl = mk_tenant_sasl_new(s->b->tenants, mech);
    if (!s->sasl)
        return MK_ERR_NOMEM;
    s->sasl_mech = mech;
    s->sasl_raw = req->version == 0;
    return MK_REQ_DONE;
}

int mk_broker_handle_sasl_authenticate(mk_req_t *req)
{
    mk_SaslAuthenticateRequest_t *q = req->body;
    mk_SaslAuthenticateResponse_t *r = req->resp;
    mk_session_t *s = req->sess;
    if (s->sasl_failed)
        return sasl_retry_refused(s);
    if (!s->sasl) {
        r->ErrorCode = MK_KERR_ILLEGAL_SASL_STATE;
        r->ErrorMessage = mk_str(s->authenticated ? "already authenticated" : "SaslAuthenticate before SaslHandshake");
        mk_warn("broker %d: client %s: %s", s->node->id, mk_net_conn_peer(s->conn), r->ErrorMessage.ptr);
        return MK_REQ_DONE;
    }
    char why[160];
    int rc = mk_tenant_sasl_step(s->sasl, q->AuthBytes.ptr, q->AuthBytes.ptr ? (size_t)q->AuthBytes.len : 0,
                                 &req->data, why, sizeof(why));
    if (rc < 0) {
        sasl_failed(s, why);
        r->ErrorCode = MK_KERR_SASL_AUTHENTICATION_FAILED;
        r->ErrorMessage = mk_broker_req_str(req, why);
        return MK_REQ_DONE;
    }
    if (!mk_buf_ok(&req->data))
        return MK_ERR_NOMEM;
    r->ErrorMessage = mk_str(NULL);
    r->AuthBytes.ptr = req->data.len ? req->data.data : (const uint8_t *)"";
    r->AuthBytes.len = (int32_t)req->data.len;
    if (rc == MK_TENANT_SASL_DONE) {
        const mk_tenant_t *t = mk_tenant_sasl_tenant(s->sasl);
        char lim[200];
        if (!mk_broker_limits_connection(s->b, s, t, lim, sizeof(lim))) {
            mk_tenant_unref(t);
            return sasl_refuse_over_limit(req, lim);
        }
        sasl_bind(s, t);
    }
    return MK_REQ_DONE;
}

void mk_broker_sasl_raw_token(mk_session_t *s, uint8_t *frame, size_t len)
{
    mk_buf_t out;
    mk_buf_init(&out);
    mk_buf_put_i32(&out, 0);
    char why[160];
    int rc = s->sasl ? mk_tenant_sasl_step(s->sasl, frame, len, &out, why, sizeof(why)) : MK_ERR_STATE;
    mk_free(frame);
    if (rc < 0 || !mk_buf_ok(&out)) {
        if (rc == MK_ERR_STATE)
            snprintf(why, sizeof(why), "no SASL exchange in progress");
        else if (rc >= 0)
            snprintf(why, sizeof(why), "out of memory");
        sasl_failed(s, why);
        mk_buf_free(&out);
        mk_net_conn_close(s->conn, "SASL authentication failed");
        return;
    }
    mk_buf_patch_i32(&out, 0, (int32_t)(out.len - 4));
    const mk_tenant_t *t = rc == MK_TENANT_SASL_DONE ? mk_tenant_sasl_tenant(s->sasl) : NULL;
    char lim[200];
    if (t && !mk_broker_limits_connection(s->b, s, t, lim, sizeof(lim))) {
        /* The bare-token form has no error field: the close is the answer. */
        char msg[300];
        snprintf(msg, sizeof(msg), "connection refused: %s", lim);
        mk_tenant_unref(t);
        sasl_failed(s, msg);
        mk_buf_free(&out);
        mk_net_conn_close(s->conn, "over a tenant connection limit");
        return;
    }
    if (t)
        sasl_bind(s, t);
    size_t n;
    uint8_t *data = mk_buf_steal(&out, &n);
    mk_net_conn_send(s->conn, data, n);
    mk_net_conn_done(s->conn);
}
