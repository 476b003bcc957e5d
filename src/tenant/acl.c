/*
 * acl.c -- one tenant's ACLs: Kafka's bindings, filters and authorizer
 * semantics, kept apart from the names so a tenant's rules never see
 * another tenant's resources.
 *
 * A binding is {resource type, name, pattern type, principal, host,
 * operation, permission}, with Kafka's numeric codes (see tenant.h).  Names
 * are the names the tenant's clients use (never internal names).
 *
 * Authorization, as Kafka's AclAuthorizer decides it:
 *   - a binding matches a request when its resource type is the request's,
 *     its pattern matches the name (LITERAL: equal, or the name "*";
 *     PREFIXED: the name starts with it), its principal is the request's or
 *     "User:*", its host is the request's or "*", and its operation is the
 *     request's or ALL;
 *   - any matching DENY refuses;
 *   - else any matching ALLOW permits, where an ALLOW of READ, WRITE, DELETE
 *     or ALTER also permits DESCRIBE, and an ALLOW of ALTER_CONFIGS also
 *     permits DESCRIBE_CONFIGS (Kafka's implied operations);
 *   - a resource that no binding names at all (of any principal or
 *     operation) follows allow.everyone.if.no.acl.found, which a tenant has
 *     on: a tenant with no ACLs allows its own principals everything.
 *
 * "May do op on at least one resource of a type" (Kafka's
 * authorizeByResourceType, which InitProducerId without a transactional id
 * uses for WRITE on any topic): yes when some resource of the type is named
 * by no binding (only a literal "*" names them all), or when an ALLOW of the
 * principal covers the wildcard, or a literal or prefixed name that no DENY
 * of the principal covers whole (the same literal, or a prefix of it).
 *
 * Persistence: mk_tenant_acls_encode() writes the set as text, one binding
 * per line, "<rtype> <ptype> <op> <perm> <hex name> <hex principal> <hex
 * host>"; mk_tenant_acls_decode() reads it back through the checked reader
 * rules (every field validated, a bad line refuses the whole text).
 *
 * Threads: loop thread (pure data; no I/O).
 */
#include "tenant/tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mk_tenant_acls_s {
    mk_tenant_acl_t *items;    /* owned, strings owned */
    int n, cap;
};

/* ================================================================ helpers */

static bool valid_resource(int8_t t) { return t >= MK_ACL_RES_TOPIC && t <= MK_ACL_RES_USER; }
static bool valid_pattern(int8_t p) { return p == MK_ACL_PAT_LITERAL || p == MK_ACL_PAT_PREFIXED; }
static bool valid_op(int8_t o) { return o >= MK_ACL_OP_ALL && o <= MK_ACL_OP_DESCRIBE_TOKENS; }
static bool valid_perm(int8_t p) { return p == MK_ACL_PERM_DENY || p == MK_ACL_PERM_ALLOW; }

static void acl_free_strings(mk_tenant_acl_t *a)
{
    mk_free(a->name);
    mk_free(a->principal);
    mk_free(a->host);
}

static bool str_eq(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }

static bool same(const mk_tenant_acl_t *a, const mk_tenant_acl_t *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           a->operation == b->operation && a->permission == b->permission && str_eq(a->name, b->name) &&
           str_eq(a->principal, b->principal) && str_eq(a->host, b->host);
}

/* ================================================================ the set */

int mk_tenant_acls_new(mk_tenant_acls_t **out)
{
    mk_tenant_acls_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    *out = s;
    return 0;
}

void mk_tenant_acls_free(mk_tenant_acls_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        acl_free_strings(&s->items[i]);
    mk_free(s->items);
    mk_free(s);
}

int mk_tenant_acls_count(const mk_tenant_acls_t *s) { return s ? s->n : 0; }

const char *mk_tenant_acl_check(const mk_tenant_acl_t *a)
{
    if (!valid_resource(a->resource_type))
        return "unknown or ANY resource type";
    if (!valid_pattern(a->pattern_type))
        return "the pattern type must be LITERAL or PREFIXED";
    if (!valid_op(a->operation))
        return "unknown or ANY operation";
    if (!valid_perm(a->permission))
        return "the permission must be ALLOW or DENY";
    if (!a->name || !a->name[0])
        return "empty resource name";
    if (!a->principal || strncmp(a->principal, "User:", 5) != 0 || !a->principal[5])
        return "the principal must be User:<name>";
    if (!a->host || !a->host[0])
        return "empty host";
    if (a->resource_type == MK_ACL_RES_CLUSTER && strcmp(a->name, MK_ACL_CLUSTER_NAME) != 0)
        return "the cluster resource is named kafka-cluster";
    return NULL;
}

int mk_tenant_acls_add(mk_tenant_acls_t *s, const mk_tenant_acl_t *a)
{
    if (mk_tenant_acl_check(a))
        return MK_ERR_INVALID;
    for (int i = 0; i < s->n; i++)
        if (same(&s->items[i], a))
            return 0; /* Kafka: creating an existing binding succeeds */
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        mk_tenant_acl_t *n = mk_realloc(s->items, sizeof(*n) * (size_t)cap);
        if (!n)
            return MK_ERR_NOMEM;
        s->items = n;
        s->cap = cap;
    }
    mk_tenant_acl_t c = *a;
    c.name = mk_strdup(a->name);
    c.principal = mk_strdup(a->principal);
    c.host = mk_strdup(a->host);
    if (!c.name || !c.principal || !c.host) {
        acl_free_strings(&c);
        return MK_ERR_NOMEM;
    }
    s->items[s->n++] = c;
    return 0;
}

/* ================================================================ filters */

static bool filter_matches(const mk_tenant_acl_filter_t *f, const mk_tenant_acl_t *a)
{
    if (f->resource_type != MK_ACL_RES_ANY && f->resource_type != a->resource_type)
        return false;
    if (f->operation != MK_ACL_OP_ANY && f->operation != a->operation)
        return false;
    if (f->permission != MK_ACL_PERM_ANY && f->permission != a->permission)
        return false;
    if (f->principal && !str_eq(f->principal, a->principal))
        return false;
    if (f->host && !str_eq(f->host, a->host))
        return false;
    switch (f->pattern_type) {
    case MK_ACL_PAT_ANY:
        return !f->name || str_eq(f->name, a->name);
    case MK_ACL_PAT_LITERAL:
    case MK_ACL_PAT_PREFIXED:
        return a->pattern_type == f->pattern_type && (!f->name || str_eq(f->name, a->name));
    case MK_ACL_PAT_MATCH:
        /* Bindings that would apply to the named resource. */
        if (!f->name)
            return true;
        if (a->pattern_type == MK_ACL_PAT_LITERAL)
            return str_eq(a->name, f->name) || strcmp(a->name, "*") == 0;
        return strncmp(f->name, a->name, strlen(a->name)) == 0;
    }
    return false;
}

const char *mk_tenant_acl_filter_check(const mk_tenant_acl_filter_t *f)
{
    if (f->resource_type != MK_ACL_RES_ANY && !valid_resource(f->resource_type))
        return "unknown resource type";
    if (f->pattern_type != MK_ACL_PAT_ANY && f->pattern_type != MK_ACL_PAT_MATCH && !valid_pattern(f->pattern_type))
        return "unknown pattern type";
    if (f->operation != MK_ACL_OP_ANY && !valid_op(f->operation))
        return "unknown operation";
    if (f->permission != MK_ACL_PERM_ANY && !valid_perm(f->permission))
        return "unknown permission";
    return NULL;
}

void mk_tenant_acls_describe(const mk_tenant_acls_t *s, const mk_tenant_acl_filter_t *f, mk_tenant_acl_cb cb,
                             void *arg)
{
    for (int i = 0; s && i < s->n; i++)
        if (filter_matches(f, &s->items[i]))
            cb(&s->items[i], arg);
}

int mk_tenant_acls_delete(mk_tenant_acls_t *s, const mk_tenant_acl_filter_t *f, mk_tenant_acl_cb cb, void *arg)
{
    int keep = 0, deleted = 0;
    for (int i = 0; i < s->n; i++) {
        if (filter_matches(f, &s->items[i])) {
            if (cb)
                cb(&s->items[i], arg);
            acl_free_strings(&s->items[i]);
            deleted++;
        } else {
            s->items[keep++] = s->items[i];
        }
    }
    s->n = keep;
    return deleted;
}

/* ========================================================== authorization */

static bool name_matches(const mk_tenant_acl_t *a, const char *name)
{
    if (a->pattern_type == MK_ACL_PAT_LITERAL)
        return strcmp(a->name, "*") == 0 || strcmp(a->name, name) == 0;
    return strncmp(name, a->name, strlen(a->name)) == 0;
}

/* Whether binding a is about this principal at this host. */
static bool applies_to(const mk_tenant_acl_t *a, const char *principal, const char *host)
{
    if (strcmp(a->principal, "User:*") != 0 && strcmp(a->principal, principal) != 0)
        return false;
    return strcmp(a->host, "*") == 0 || (host && strcmp(a->host, host) == 0);
}

static bool is_wildcard(const mk_tenant_acl_t *a)
{
    return a->pattern_type == MK_ACL_PAT_LITERAL && strcmp(a->name, "*") == 0;
}

/* Whether an ALLOW of operation `granted` permits `op` (ALL, or implied). */
static bool allow_covers(int8_t granted, int8_t op)
{
    if (granted == MK_ACL_OP_ALL || granted == op)
        return true;
    if (op == MK_ACL_OP_DESCRIBE)
        return granted == MK_ACL_OP_READ || granted == MK_ACL_OP_WRITE || granted == MK_ACL_OP_DELETE ||
               granted == MK_ACL_OP_ALTER;
    if (op == MK_ACL_OP_DESCRIBE_CONFIGS)
        return granted == MK_ACL_OP_ALTER_CONFIGS;
    return false;
}

bool mk_tenant_acls_authorize(const mk_tenant_acls_t *s, const char *principal, const char *host,
                              int8_t resource_type, const char *name, int8_t op)
{
    bool named = false, allowed = false;
    for (int i = 0; s && i < s->n; i++) {
        const mk_tenant_acl_t *a = &s->items[i];
        if (a->resource_type != resource_type || !name_matches(a, name))
            continue;
        named = true;
        if (!applies_to(a, principal, host))
            continue;
        if (a->permission == MK_ACL_PERM_DENY && (a->operation == MK_ACL_OP_ALL || a->operation == op))
            return false;
        if (a->permission == MK_ACL_PERM_ALLOW && allow_covers(a->operation, op))
            allowed = true;
    }
    return allowed || !named; /* allow.everyone.if.no.acl.found */
}

/* Whether a DENY of the principal for op covers every name that ALLOW a
 * names: the same literal, or a prefix of a's name (literal or prefixed). */
static bool deny_covers(const mk_tenant_acls_t *s, const mk_tenant_acl_t *allow, const char *principal,
                        const char *host, int8_t op)
{
    for (int i = 0; i < s->n; i++) {
        const mk_tenant_acl_t *d = &s->items[i];
        if (d->resource_type != allow->resource_type || d->permission != MK_ACL_PERM_DENY ||
            (d->operation != op && d->operation != MK_ACL_OP_ALL) || !applies_to(d, principal, host))
            continue;
        if (d->pattern_type == MK_ACL_PAT_LITERAL && allow->pattern_type == MK_ACL_PAT_LITERAL &&
            strcmp(d->name, allow->name) == 0)
            return true;
        if (d->pattern_type == MK_ACL_PAT_PREFIXED && strncmp(allow->name, d->name, strlen(d->name)) == 0)
            return true;
    }
    return false;
}

bool mk_tenant_acls_authorize_any(const mk_tenant_acls_t *s, const char *principal, const char *host,
                                  int8_t resource_type, int8_t op)
{
    bool wildcard_named = false, wildcard_allowed = false;
    for (int i = 0; s && i < s->n; i++) {
        const mk_tenant_acl_t *a = &s->items[i];
        if (a->resource_type != resource_type)
            continue;
        wildcard_named |= is_wildcard(a);
        if (!applies_to(a, principal, host))
            continue;
        if (a->permission == MK_ACL_PERM_DENY && is_wildcard(a) &&
            (a->operation == op || a->operation == MK_ACL_OP_ALL))
            return false; /* denied on every resource of the type */
        if (a->permission == MK_ACL_PERM_ALLOW && is_wildcard(a) && allow_covers(a->operation, op))
            wildcard_allowed = true;
    }
    if (!wildcard_named || wildcard_allowed)
        return true; /* a name no binding names, or the wildcard allowed */
    for (int i = 0; i < s->n; i++) {
        const mk_tenant_acl_t *a = &s->items[i];
        if (a->resource_type == resource_type && a->permission == MK_ACL_PERM_ALLOW && !is_wildcard(a) &&
            (a->operation == op || a->operation == MK_ACL_OP_ALL) && applies_to(a, principal, host) &&
            !deny_covers(s, a, principal, host, op))
            return true;
    }
    return false;
}

/* ============================================================ persistence */

static void put_hex(mk_buf_t *b, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    for (; *s; s++) {
        char two[2] = {hx[(uint8_t)*s >> 4], hx[(uint8_t)*s & 15]};
        mk_buf_put(b, two, 2);
    }
}

int mk_tenant_acls_encode(const mk_tenant_acls_t *s, mk_buf_t *out)
{
    for (int i = 0; i < s->n; i++) {
        const mk_tenant_acl_t *a = &s->items[i];
        char head[64];
        int n = snprintf(head, sizeof(head), "%d %d %d %d ", a->resource_type, a->pattern_type, a->operation,
                         a->permission);
        mk_buf_put(out, head, (size_t)n);
        put_hex(out, a->name);
        mk_buf_put(out, " ", 1);
        put_hex(out, a->principal);
        mk_buf_put(out, " ", 1);
        put_hex(out, a->host);
        mk_buf_put(out, "\n", 1);
    }
    return mk_buf_ok(out) ? 0 : MK_ERR_NOMEM;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode one hex field [p, p+n) into a fresh NUL-terminated string. */
static char *hex_field(const char *p, size_t n)
{
    if (n == 0 || n % 2 || n > 2048)
        return NULL;
    char *out = mk_malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(p[i]), lo = hexval(p[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            mk_free(out);
            return NULL;
        }
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[n / 2] = 0;
    return out;
}

int mk_tenant_acls_decode(mk_tenant_acls_t *s, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll == 0)
            continue;
        /* four small integers, then three hex fields */
        int v[4], used = 0;
        char buf[512];
        if (ll >= sizeof(buf) + 4096)
            return MK_ERR_CORRUPT;
        const char *q = line, *end = line + ll;
        for (int k = 0; k < 4; k++) {
            size_t i = 0;
            while (q < end && *q != ' ' && i < 8)
                buf[i++] = *q++;
            if (q >= end || *q != ' ' || i == 0)
                return MK_ERR_CORRUPT;
            buf[i] = 0;
            char *e;
            long x = strtol(buf, &e, 10);
            if (*e || x < -128 || x > 127)
                return MK_ERR_CORRUPT;
            v[k] = (int)x;
            q++;
            used++;
        }
        const char *f[3];
        size_t fl[3];
        for (int k = 0; k < 3; k++) {
            f[k] = q;
            while (q < end && *q != ' ')
                q++;
            fl[k] = (size_t)(q - f[k]);
            if (k < 2) {
                if (q >= end)
                    return MK_ERR_CORRUPT;
                q++;
            }
        }
        if (q != end)
            return MK_ERR_CORRUPT;
        mk_tenant_acl_t a = {(int8_t)v[0], NULL, (int8_t)v[1], NULL, NULL, (int8_t)v[2], (int8_t)v[3]};
        a.name = hex_field(f[0], fl[0]);
        a.principal = hex_field(f[1], fl[1]);
        a.host = hex_field(f[2], fl[2]);
        int rc = a.name && a.principal && a.host ? mk_tenant_acls_add(s, &a) : MK_ERR_CORRUPT;
        acl_free_strings(&a);
        if (rc < 0)
            return rc == MK_ERR_INVALID ? MK_ERR_CORRUPT : rc;
        (void)used;
    }
    return 0;
}
