/*
 * scram.c -- DescribeUserScramCredentials and AlterUserScramCredentials over
 * the session's own tenant.  A "user" is an API key id of that tenant; its
 * SCRAM-SHA-256 and SCRAM-SHA-512 credentials are the key's (tenant/), so a
 * credential set here is one a client then logs in with.  A tenant sees and
 * changes only its own keys: a key of another tenant answers exactly as an
 * unknown user does (RESOURCE_NOT_FOUND), except that an upsertion cannot
 * take its id (key ids are unique over all tenants).
 *
 * As in Kafka: the APIs need DESCRIBE (describe) or ALTER (alter) on the
 * cluster; a user named twice in one request gets DUPLICATE_RESOURCE;
 * iterations outside 4096..16384 UNACCEPTABLE_CREDENTIAL; a mechanism other
 * than 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512) UNSUPPORTED_SASL_MECHANISM.
 * An upsertion stores StoredKey and ServerKey derived from the client's
 * SaltedPassword (a few HMACs, no PBKDF2: bounded work on the loop); an
 * upsertion naming a valid new key id creates that key; deleting a key's
 * last mechanism revokes the key.  The default tenant has no keys: it
 * describes none and may alter none.
 */
#include "broker/broker_int.h"

#include <stdio.h>
#include <string.h>

/* Kafka's mechanism codes. */
enum { SCRAM_SHA_256 = 1, SCRAM_SHA_512 = 2 };

static int mech_of(int8_t code)
{
    return code == SCRAM_SHA_256 ? MK_TENANT_MECH_SCRAM_SHA_256
           : code == SCRAM_SHA_512 ? MK_TENANT_MECH_SCRAM_SHA_512
                                   : 0;
}

static const mk_tenant_t *session_tenant(mk_req_t *req)
{
    return req->sess ? req->sess->tenant : mk_tenant_default();
}

/* ============================================= DescribeUserScramCredentials */

/* Fill res for key of t: its mechanisms, or RESOURCE_NOT_FOUND. */
static int describe_one(mk_req_t *req, const mk_tenant_t *t, const char *key,
                        mk_DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult_t *res)
{
    res->User = mk_broker_req_str(req, key);
    res->ErrorMessage = mk_str(NULL);
    int32_t it[2];
    int n = 0;
    for (int i = 0; i < 2; i++) {
        it[i] = t == mk_tenant_default() ? 0 : mk_tenant_key_scram_iterations(req->b->tenants, t, key, mech_of((int8_t)(i + 1)));
        n += it[i] > 0;
    }
    if (n == 0) {
        res->ErrorCode = MK_KERR_RESOURCE_NOT_FOUND;
        char msg[128];
        snprintf(msg, sizeof(msg), "Attempt to describe a user credential that does not exist: %.64s", key);
        res->ErrorMessage = mk_broker_req_str(req, msg);
        return 0;
    }
    if (!MK_ARRAY_ALLOC(req, res->CredentialInfos, n, DescribeUserScramCredentialsResponse_CredentialInfo))
        return MK_ERR_NOMEM;
    for (int i = 0, j = 0; i < 2; i++)
        if (it[i] > 0) {
            res->CredentialInfos.items[j].Mechanism = (int8_t)(i + 1);
            res->CredentialInfos.items[j++].Iterations = it[i];
        }
    return 0;
}

int mk_broker_handle_describe_user_scram_credentials(mk_req_t *req)
{
    mk_DescribeUserScramCredentialsRequest_t *q = req->body;
    mk_DescribeUserScramCredentialsResponse_t *r = req->resp;
    const mk_tenant_t *t = session_tenant(req);
    r->ErrorMessage = mk_str(NULL);
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        return MK_REQ_DONE;
    }
    if (q->Users.count < 0) {  /* null: every key of the tenant */
        int32_t n = 0;
        size_t it = 0;
        if (t != mk_tenant_default())
            while (mk_tenant_key_next(req->b->tenants, t, &it))
                n++;
        if (!MK_ARRAY_ALLOC(req, r->Results, n, DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult))
            return MK_ERR_NOMEM;
        it = 0;
        const char *k;
        for (int32_t i = 0; i < n && (k = mk_tenant_key_next(req->b->tenants, t, &it)); i++)
            if (describe_one(req, t, k, &r->Results.items[i]) < 0)
                return MK_ERR_NOMEM;
        return MK_REQ_DONE;
    }
    if (!MK_ARRAY_ALLOC(req, r->Results, q->Users.count,
                        DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult))
        return MK_ERR_NOMEM;
    int32_t n = 0;  /* one result per distinct user, in request order */
    for (int32_t i = 0; i < q->Users.count; i++) {
        const char *name = q->Users.items[i].Name.ptr ? q->Users.items[i].Name.ptr : "";
        bool dup = false, seen = false;
        for (int32_t j = 0; j < q->Users.count; j++)
            if (j != i && mk_str_eq(q->Users.items[j].Name, name)) {
                dup = true;
                seen = seen || j < i;
            }
        if (seen)
            continue;
        mk_DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult_t *res = &r->Results.items[n++];
        if (dup) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "Cannot describe SCRAM credentials for the same user twice in a single request: %.64s", name);
            res->User = mk_broker_req_str(req, name);
            res->ErrorCode = MK_KERR_DUPLICATE_RESOURCE;
            res->ErrorMessage = mk_broker_req_str(req, msg);
            continue;
        }
        if (describe_one(req, t, name, res) < 0)
            return MK_ERR_NOMEM;
    }
    r->Results.count = n;
    return MK_REQ_DONE;
}

/* ================================================ AlterUserScramCredentials */

static void result(mk_req_t *req, mk_AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_t *res,
                   const char *user, int16_t code, const char *msg)
{
    res->User = mk_broker_req_str(req, user);
    res->ErrorCode = code;
    res->ErrorMessage = msg ? mk_broker_req_str(req, msg) : mk_str(NULL);
}

/* How often name occurs over deletions and upsertions. */
static int occurrences(const mk_AlterUserScramCredentialsRequest_t *q, const char *name)
{
    int n = 0;
    for (int32_t i = 0; i < q->Deletions.count; i++)
        n += mk_str_eq(q->Deletions.items[i].Name, name);
    for (int32_t i = 0; i < q->Upsertions.count; i++)
        n += mk_str_eq(q->Upsertions.items[i].Name, name);
    return n;
}

/* The error of one operation, or 0 after applying it. */
static int16_t alter_one(mk_req_t *req, mk_tenant_t *t, const char *name, int8_t mech_code,
                         const mk_AlterUserScramCredentialsRequest_ScramCredentialUpsertion_t *up, const char **msg)
{
    int mech = mech_of(mech_code);
    if (!*name) {
        *msg = "Username must not be empty";
        return MK_KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!mech) {
        *msg = "Unknown SCRAM mechanism";
        return MK_KERR_UNSUPPORTED_SASL_MECHANISM;
    }
    if (t == mk_tenant_default()) {
        *msg = "SCRAM credentials are API keys of a tenant: authenticate as one of its keys";
        return MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
    }
    if (!up) {
        if (mk_tenant_key_scram_delete(req->b->tenants, t, name, mech) < 0) {
            *msg = "Attempt to delete a user credential that does not exist";
            return MK_KERR_RESOURCE_NOT_FOUND;
        }
        return 0;
    }
    if (up->Iterations < MK_TENANT_SCRAM_MIN_ITERATIONS) {
        *msg = "Too few iterations";
        return MK_KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (up->Iterations > MK_TENANT_SCRAM_MAX_ITERATIONS) {
        *msg = "Too many iterations";
        return MK_KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!up->Salt.ptr || up->Salt.len <= 0 || !up->SaltedPassword.ptr || up->SaltedPassword.len <= 0) {
        *msg = "Salt and salted password must not be empty";
        return MK_KERR_UNACCEPTABLE_CREDENTIAL;
    }
    int rc = mk_tenant_key_scram_set(req->b->tenants, t, name, mech, up->Iterations, up->Salt.ptr,
                                     (size_t)up->Salt.len, up->SaltedPassword.ptr, (size_t)up->SaltedPassword.len);
    if (rc == MK_ERR_INVALID) {
        *msg = "The user must be an API key id (16 of A-Z 0-9), the salt 1..64 bytes and the salted password "
               "as long as the mechanism's hash";
        return MK_KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (rc == MK_ERR_EXISTS) {
        *msg = "This user name is not available";
        return MK_KERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (rc < 0) {
        *msg = mk_strerror(rc);
        return MK_KERR_UNKNOWN_SERVER_ERROR;
    }
    return 0;
}

int mk_broker_handle_alter_user_scram_credentials(mk_req_t *req)
{
    mk_AlterUserScramCredentialsRequest_t *q = req->body;
    mk_AlterUserScramCredentialsResponse_t *r = req->resp;
    int32_t nd = q->Deletions.count < 0 ? 0 : q->Deletions.count;
    int32_t nu = q->Upsertions.count < 0 ? 0 : q->Upsertions.count;
    /* One result per distinct user, in request order. */
    if (!MK_ARRAY_ALLOC(req, r->Results, nd + nu, AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult))
        return MK_ERR_NOMEM;
    bool allowed = mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER);
    mk_tenant_t *t = (mk_tenant_t *)session_tenant(req);
    int32_t n = 0;
    for (int32_t i = 0; i < nd + nu; i++) {
        bool del = i < nd;
        const mk_AlterUserScramCredentialsRequest_ScramCredentialUpsertion_t *up =
            del ? NULL : &q->Upsertions.items[i - nd];
        mk_str_t nm = del ? q->Deletions.items[i].Name : up->Name;
        int8_t mech = del ? q->Deletions.items[i].Mechanism : up->Mechanism;
        const char *name = nm.ptr ? nm.ptr : "";
        bool seen = false;
        for (int32_t j = 0; j < n && !seen; j++)
            seen = mk_str_eq(r->Results.items[j].User, name);
        if (seen)
            continue;
        mk_AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_t *res = &r->Results.items[n++];
        const char *msg = NULL;
        int16_t code;
        if (!allowed)
            code = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        else if (occurrences(q, name) > 1) {
            code = MK_KERR_DUPLICATE_RESOURCE;
            msg = "A user credential cannot be altered twice in the same request";
        } else
            code = alter_one(req, t, name, mech, up, &msg);
        result(req, res, name, code, msg);
    }
    r->Results.count = n;
    return MK_REQ_DONE;
}
