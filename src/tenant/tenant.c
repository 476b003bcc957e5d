/*
 * tenant.c -- the default tenant and the one place names are namespaced.
 * Internal name = tenant prefix + client name.  The default tenant's prefix
 * is empty, so internal and external names coincide.
 */
#include "tenant/tenant.h"

#include <string.h>

static const mk_tenant_t default_tenant = {"default", ""};

const mk_tenant_t *mk_tenant_default(void) { return &default_tenant; }

const char *mk_tenant_to_internal(const mk_tenant_t *t, const char *name, mk_arena_t *a)
{
    if (!t->prefix[0] || !name)
        return name;
    return mk_arena_sprintf(a, "%s%s", t->prefix, name);
}

bool mk_tenant_visible(const mk_tenant_t *t, const char *internal)
{
    return strncmp(internal, t->prefix, strlen(t->prefix)) == 0;
}

const char *mk_tenant_to_external(const mk_tenant_t *t, const char *internal)
{
    return internal + strlen(t->prefix);
}
