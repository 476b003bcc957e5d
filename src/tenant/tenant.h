/*
 * tenant.h -- L2: tenants (logical clusters) and their namespaces.
 *
 * Every request is handled on behalf of the principal and tenant bound to its
 * connection.  Topic, group and transactional-id names pass through this
 * module in one place: to_internal() when a name comes from a client,
 * to_external() / visible() when one goes back.  For now there is one default
 * tenant whose namespace is the identity; the tenant issue fills this in
 * (prefixes per tenant, quotas, ACLs) without touching the handlers.
 */
#ifndef MK_TENANT_H
#define MK_TENANT_H

#include "base/base.h"

typedef struct mk_tenant_s {
    const char *id;        /* "default" */
    const char *prefix;    /* internal name prefix; "" for the default tenant */
} mk_tenant_t;

/* The tenant of unauthenticated connections. */
const mk_tenant_t *mk_tenant_default(void);
/* Internal name of a client-supplied resource name (allocated in a when it
 * differs; may return name itself). */
const char *mk_tenant_to_internal(const mk_tenant_t *t, const char *name, mk_arena_t *a);
/* Whether an internal name belongs to tenant t. */
bool mk_tenant_visible(const mk_tenant_t *t, const char *internal);
/* The name a client of tenant t sees for an internal name (points into it). */
const char *mk_tenant_to_external(const mk_tenant_t *t, const char *internal);

#endif /* MK_TENANT_H */
