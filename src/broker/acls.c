/*
 * acls.c -- CreateAcls, DescribeAcls and DeleteAcls over the session's own
 * tenant: each tenant has its own set of bindings (tenant/acl.c), named with
 * the names its clients use, so a tenant can neither see nor change another
 * tenant's ACLs.  The APIs themselves need ALTER (create, delete) or
 * DESCRIBE (describe) on the cluster resource, as in Kafka; a tenant
 * without ACLs allows its principals everything, so the first binding can
 * always be created.  Every change is persisted through the tenant registry.
 */
#include "broker/broker_int.h"

#include <string.h>

/* The set of the session's tenant (created on demand), or NULL (OOM). */
static mk_tenant_acls_t *session_acls(mk_req_t *req, bool create)
{
    const mk_tenant_t *t = req->sess ? req->sess->tenant : mk_tenant_default();
    return mk_tenant_acls_of(req->b->tenants, t, create);
}

static void save(mk_req_t *req)
{
    const mk_tenant_t *t = req->sess ? req->sess->tenant : mk_tenant_default();
    mk_tenant_acls_save(req->b->tenants, t);
}

/* ================================================================ CreateAcls */

int mk_broker_handle_create_acls(mk_req_t *req)
{
    mk_CreateAclsRequest_t *q = req->body;
    mk_CreateAclsResponse_t *r = req->resp;
    if (!MK_ARRAY_ALLOC(req, r->Results, q->Creations.count, CreateAclsResponse_AclCreationResult))
        return MK_ERR_NOMEM;
    bool allowed = mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER);
    bool changed = false;
    for (int32_t i = 0; i < q->Creations.count; i++) {
        const mk_CreateAclsRequest_AclCreation_t *c = &q->Creations.items[i];
        mk_CreateAclsResponse_AclCreationResult_t *res = &r->Results.items[i];
        if (!allowed) {
            res->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
            continue;
        }
        mk_tenant_acl_t a = {c->ResourceType, (char *)c->ResourceName.ptr, c->ResourcePatternType,
                             (char *)c->Principal.ptr, (char *)c->Host.ptr, c->Operation, c->PermissionType};
        const char *why = mk_tenant_acl_check(&a);
        mk_tenant_acls_t *s = why ? NULL : session_acls(req, true);
        int rc = why ? MK_ERR_INVALID : s ? mk_tenant_acls_add(s, &a) : MK_ERR_NOMEM;
        if (rc < 0) {
            res->ErrorCode = rc == MK_ERR_INVALID ? MK_KERR_INVALID_REQUEST : MK_KERR_UNKNOWN_SERVER_ERROR;
            res->ErrorMessage = mk_broker_req_str(req, why ? why : mk_strerror(rc));
            continue;
        }
        changed = true;
    }
    if (changed)
        save(req);
    return MK_REQ_DONE;
}

/* ============================================================== DescribeAcls */

typedef struct describe_ctx_s {
    mk_req_t *req;
    mk_DescribeAclsResponse_DescribeAclsResource_t *res;  /* grown in the arena */
    int32_t n, cap;
    int oom;
} describe_ctx_t;

/* Group bindings by resource (type, name, pattern), as the response does. */
static void describe_cb(const mk_tenant_acl_t *a, void *arg)
{
    describe_ctx_t *c = arg;
    mk_DescribeAclsResponse_DescribeAclsResource_t *res = NULL;
    for (int32_t i = 0; i < c->n; i++)
        if (c->res[i].ResourceType == a->resource_type && c->res[i].PatternType == a->pattern_type &&
            strcmp(c->res[i].ResourceName.ptr, a->name) == 0)
            res = &c->res[i];
    if (!res) {
        if (c->n == c->cap) {
            int32_t cap = c->cap ? c->cap * 2 : 8;
            mk_DescribeAclsResponse_DescribeAclsResource_t *n =
                mk_broker_req_structs(c->req, &mk_pdesc_DescribeAclsResponse_DescribeAclsResource, cap);
            if (!n) {
                c->oom = 1;
                return;
            }
            if (c->n)
                memcpy(n, c->res, sizeof(*n) * (size_t)c->n);
            c->res = n;
            c->cap = cap;
        }
        res = &c->res[c->n++];
        res->ResourceType = a->resource_type;
        res->ResourceName = mk_broker_req_str(c->req, a->name);
        res->PatternType = a->pattern_type;
    }
    int32_t k = res->Acls.count;
    mk_DescribeAclsResponse_AclDescription_t *items =
        mk_broker_req_structs(c->req, &mk_pdesc_DescribeAclsResponse_AclDescription, k + 1);
    if (!items) {
        c->oom = 1;
        return;
    }
    if (k)
        memcpy(items, res->Acls.items, sizeof(*items) * (size_t)k);
    items[k].Principal = mk_broker_req_str(c->req, a->principal);
    items[k].Host = mk_broker_req_str(c->req, a->host);
    items[k].Operation = a->operation;
    items[k].PermissionType = a->permission;
    res->Acls.items = items;
    res->Acls.count = k + 1;
}

int mk_broker_handle_describe_acls(mk_req_t *req)
{
    mk_DescribeAclsRequest_t *q = req->body;
    mk_DescribeAclsResponse_t *r = req->resp;
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        return MK_REQ_DONE;
    }
    mk_tenant_acl_filter_t f = {q->ResourceTypeFilter, q->ResourceNameFilter.ptr, q->PatternTypeFilter,
                                q->PrincipalFilter.ptr, q->HostFilter.ptr, q->Operation, q->PermissionType};
    const char *why = mk_tenant_acl_filter_check(&f);
    if (why) {
        r->ErrorCode = MK_KERR_INVALID_REQUEST;
        r->ErrorMessage = mk_broker_req_str(req, why);
        return MK_REQ_DONE;
    }
    describe_ctx_t c = {req, NULL, 0, 0, 0};
    mk_tenant_acls_describe(session_acls(req, false), &f, describe_cb, &c);
    if (c.oom)
        return MK_ERR_NOMEM;
    r->Resources.items = c.res;
    r->Resources.count = c.n;
    return MK_REQ_DONE;
}

/* ================================================================ DeleteAcls */

typedef struct delete_ctx_s {
    mk_req_t *req;
    mk_DeleteAclsResponse_DeleteAclsMatchingAcl_t *items;
    int32_t n, cap;
    int oom;
} delete_ctx_t;

static void delete_cb(const mk_tenant_acl_t *a, void *arg)
{
    delete_ctx_t *c = arg;
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 8;
        mk_DeleteAclsResponse_DeleteAclsMatchingAcl_t *n =
            mk_broker_req_structs(c->req, &mk_pdesc_DeleteAclsResponse_DeleteAclsMatchingAcl, cap);
        if (!n) {
            c->oom = 1;
            return;
        }
        if (c->n)
            memcpy(n, c->items, sizeof(*n) * (size_t)c->n);
        c->items = n;
        c->cap = cap;
    }
    mk_DeleteAclsResponse_DeleteAclsMatchingAcl_t *m = &c->items[c->n++];
    m->ResourceType = a->resource_type;
    m->ResourceName = mk_broker_req_str(c->req, a->name);
    m->PatternType = a->pattern_type;
    m->Principal = mk_broker_req_str(c->req, a->principal);
    m->Host = mk_broker_req_str(c->req, a->host);
    m->Operation = a->operation;
    m->PermissionType = a->permission;
}

int mk_broker_handle_delete_acls(mk_req_t *req)
{
    mk_DeleteAclsRequest_t *q = req->body;
    mk_DeleteAclsResponse_t *r = req->resp;
    if (!MK_ARRAY_ALLOC(req, r->FilterResults, q->Filters.count, DeleteAclsResponse_DeleteAclsFilterResult))
        return MK_ERR_NOMEM;
    bool allowed = mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER);
    bool changed = false;
    for (int32_t i = 0; i < q->Filters.count; i++) {
        const mk_DeleteAclsRequest_DeleteAclsFilter_t *qf = &q->Filters.items[i];
        mk_DeleteAclsResponse_DeleteAclsFilterResult_t *res = &r->FilterResults.items[i];
        if (!allowed) {
            res->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
            continue;
        }
        mk_tenant_acl_filter_t f = {qf->ResourceTypeFilter, qf->ResourceNameFilter.ptr, qf->PatternTypeFilter,
                                    qf->PrincipalFilter.ptr, qf->HostFilter.ptr, qf->Operation,
                                    qf->PermissionType};
        const char *why = mk_tenant_acl_filter_check(&f);
        if (why) {
            res->ErrorCode = MK_KERR_INVALID_REQUEST;
            res->ErrorMessage = mk_broker_req_str(req, why);
            continue;
        }
        mk_tenant_acls_t *s = session_acls(req, false);
        if (!s)
            continue;
        delete_ctx_t c = {req, NULL, 0, 0, 0};
        if (mk_tenant_acls_delete(s, &f, delete_cb, &c) > 0)
            changed = true;
        if (c.oom)
            return MK_ERR_NOMEM;
        res->MatchingAcls.items = c.items;
        res->MatchingAcls.count = c.n;
    }
    if (changed)
        save(req);
    return MK_REQ_DONE;
}
