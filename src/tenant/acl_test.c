/*
 * acl_test.c -- unit tests of a tenant's ACLs: Kafka's authorizer rules
 * (deny wins, implied DESCRIBE, wildcard and prefixed patterns, principal and
 * host wildcards, allow when no binding names the resource), filters, and
 * the text form round trip with corrupt input refused.
 */
#include "tenant/tenant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static mk_tenant_acl_t acl(int8_t rt, const char *name, int8_t pt, const char *who, int8_t op, int8_t perm)
{
    mk_tenant_acl_t a = {rt, (char *)name, pt, (char *)who, (char *)"*", op, perm};
    return a;
}

static void add(mk_tenant_acls_t *s, mk_tenant_acl_t a) { CHECK(mk_tenant_acls_add(s, &a) == 0); }

static bool can(const mk_tenant_acls_t *s, const char *who, int8_t rt, const char *name, int8_t op)
{
    return mk_tenant_acls_authorize(s, who, "127.0.0.1", rt, name, op);
}

static void count_cb(const mk_tenant_acl_t *a, void *arg)
{
    (void)a;
    (*(int *)arg)++;
}

static void test_authorize(void)
{
    mk_tenant_acls_t *s;
    CHECK(mk_tenant_acls_new(&s) == 0);
    /* no bindings: everything allowed */
    CHECK(can(s, "User:a", MK_ACL_RES_TOPIC, "orders", MK_ACL_OP_WRITE));
    CHECK(can(NULL, "User:a", MK_ACL_RES_GROUP, "g", MK_ACL_OP_READ));

    add(s, acl(MK_ACL_RES_TOPIC, "orders", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW));
    CHECK(can(s, "User:a", MK_ACL_RES_TOPIC, "orders", MK_ACL_OP_READ));
    CHECK(can(s, "User:a", MK_ACL_RES_TOPIC, "orders", MK_ACL_OP_DESCRIBE)); /* implied by READ */
    CHECK(!can(s, "User:a", MK_ACL_RES_TOPIC, "orders", MK_ACL_OP_WRITE));
    CHECK(!can(s, "User:b", MK_ACL_RES_TOPIC, "orders", MK_ACL_OP_READ));   /* named: b has nothing */
    CHECK(can(s, "User:b", MK_ACL_RES_TOPIC, "payments", MK_ACL_OP_WRITE)); /* not named at all */

    /* prefixed allow, literal deny wins */
    add(s, acl(MK_ACL_RES_TOPIC, "pay", MK_ACL_PAT_PREFIXED, "User:*", MK_ACL_OP_ALL, MK_ACL_PERM_ALLOW));
    add(s, acl(MK_ACL_RES_TOPIC, "payroll", MK_ACL_PAT_LITERAL, "User:b", MK_ACL_OP_READ, MK_ACL_PERM_DENY));
    CHECK(can(s, "User:b", MK_ACL_RES_TOPIC, "payments", MK_ACL_OP_WRITE));
    CHECK(can(s, "User:b", MK_ACL_RES_TOPIC, "payroll", MK_ACL_OP_WRITE));
    CHECK(!can(s, "User:b", MK_ACL_RES_TOPIC, "payroll", MK_ACL_OP_READ));
    CHECK(can(s, "User:c", MK_ACL_RES_TOPIC, "payroll", MK_ACL_OP_READ));

    /* literal "*" names every topic: now every topic is named */
    add(s, acl(MK_ACL_RES_TOPIC, "*", MK_ACL_PAT_LITERAL, "User:admin", MK_ACL_OP_ALL, MK_ACL_PERM_ALLOW));
    CHECK(!can(s, "User:b", MK_ACL_RES_TOPIC, "fresh", MK_ACL_OP_WRITE));
    CHECK(can(s, "User:admin", MK_ACL_RES_TOPIC, "fresh", MK_ACL_OP_DELETE));
    /* other resource types are not named */
    CHECK(can(s, "User:b", MK_ACL_RES_GROUP, "fresh", MK_ACL_OP_READ));

    /* host */
    mk_tenant_acl_t h = acl(MK_ACL_RES_GROUP, "g", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW);
    h.host = "10.0.0.1";
    add(s, h);
    CHECK(!can(s, "User:a", MK_ACL_RES_GROUP, "g", MK_ACL_OP_READ));
    CHECK(mk_tenant_acls_authorize(s, "User:a", "10.0.0.1", MK_ACL_RES_GROUP, "g", MK_ACL_OP_READ));

    /* ALTER_CONFIGS implies DESCRIBE_CONFIGS; DENY ALL refuses every op */
    add(s, acl(MK_ACL_RES_CLUSTER, "kafka-cluster", MK_ACL_PAT_LITERAL, "User:ops", MK_ACL_OP_ALTER_CONFIGS,
               MK_ACL_PERM_ALLOW));
    CHECK(can(s, "User:ops", MK_ACL_RES_CLUSTER, "kafka-cluster", MK_ACL_OP_DESCRIBE_CONFIGS));
    CHECK(!can(s, "User:ops", MK_ACL_RES_CLUSTER, "kafka-cluster", MK_ACL_OP_CREATE));
    add(s, acl(MK_ACL_RES_CLUSTER, "kafka-cluster", MK_ACL_PAT_LITERAL, "User:ops", MK_ACL_OP_ALL, MK_ACL_PERM_DENY));
    CHECK(!can(s, "User:ops", MK_ACL_RES_CLUSTER, "kafka-cluster", MK_ACL_OP_DESCRIBE_CONFIGS));

    /* a duplicate is not added twice */
    int before = mk_tenant_acls_count(s);
    add(s, acl(MK_ACL_RES_TOPIC, "orders", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW));
    CHECK(mk_tenant_acls_count(s) == before);
    mk_tenant_acls_free(s);
}

static void test_invalid_and_filters(void)
{
    mk_tenant_acls_t *s;
    CHECK(mk_tenant_acls_new(&s) == 0);
    mk_tenant_acl_t bad[] = {
        acl(MK_ACL_RES_ANY, "t", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW),
        acl(MK_ACL_RES_TOPIC, "t", MK_ACL_PAT_MATCH, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW),
        acl(MK_ACL_RES_TOPIC, "t", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_ANY, MK_ACL_PERM_ALLOW),
        acl(MK_ACL_RES_TOPIC, "t", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ANY),
        acl(MK_ACL_RES_TOPIC, "", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW),
        acl(MK_ACL_RES_TOPIC, "t", MK_ACL_PAT_LITERAL, "Group:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW),
        acl(MK_ACL_RES_CLUSTER, "other", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_ALTER, MK_ACL_PERM_ALLOW),
        acl(99, "t", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(mk_tenant_acl_check(&bad[i]) != NULL);
        CHECK(mk_tenant_acls_add(s, &bad[i]) == MK_ERR_INVALID);
    }
    add(s, acl(MK_ACL_RES_TOPIC, "orders", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW));
    add(s, acl(MK_ACL_RES_TOPIC, "ord", MK_ACL_PAT_PREFIXED, "User:b", MK_ACL_OP_WRITE, MK_ACL_PERM_ALLOW));
    add(s, acl(MK_ACL_RES_TOPIC, "*", MK_ACL_PAT_LITERAL, "User:c", MK_ACL_OP_DESCRIBE, MK_ACL_PERM_ALLOW));
    add(s, acl(MK_ACL_RES_GROUP, "orders", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW));

    mk_tenant_acl_filter_t all = {MK_ACL_RES_ANY, NULL, MK_ACL_PAT_ANY, NULL, NULL, MK_ACL_OP_ANY, MK_ACL_PERM_ANY};
    CHECK(mk_tenant_acl_filter_check(&all) == NULL);
    int n = 0;
    mk_tenant_acls_describe(s, &all, count_cb, &n);
    CHECK(n == 4);
    mk_tenant_acl_filter_t match = all;
    match.resource_type = MK_ACL_RES_TOPIC;
    match.pattern_type = MK_ACL_PAT_MATCH;
    match.name = "orders";
    n = 0;
    mk_tenant_acls_describe(s, &match, count_cb, &n);
    CHECK(n == 3); /* the literal, the prefix and the wildcard */
    mk_tenant_acl_filter_t lit = all;
    lit.pattern_type = MK_ACL_PAT_LITERAL;
    lit.name = "orders";
    n = 0;
    mk_tenant_acls_describe(s, &lit, count_cb, &n);
    CHECK(n == 2); /* topic and group */
    mk_tenant_acl_filter_t badf = all;
    badf.operation = 42;
    CHECK(mk_tenant_acl_filter_check(&badf) != NULL);

    mk_tenant_acl_filter_t byp = all;
    byp.principal = "User:a";
    n = 0;
    CHECK(mk_tenant_acls_delete(s, &byp, count_cb, &n) == 2 && n == 2);
    CHECK(mk_tenant_acls_count(s) == 2);
    mk_tenant_acls_free(s);
}

static bool can_any(const mk_tenant_acls_t *s, const char *who, int8_t rt, int8_t op)
{
    return mk_tenant_acls_authorize_any(s, who, "127.0.0.1", rt, op);
}

/* "op on at least one resource of the type" (InitProducerId's WRITE on any
 * topic). */
static void test_authorize_any(void)
{
    mk_tenant_acls_t *s;
    CHECK(mk_tenant_acls_new(&s) == 0);
    CHECK(can_any(s, "User:a", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    CHECK(can_any(NULL, "User:a", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    /* only literal names are bound: other topics are named by nothing */
    add(s, acl(MK_ACL_RES_TOPIC, "orders", MK_ACL_PAT_LITERAL, "User:b", MK_ACL_OP_WRITE, MK_ACL_PERM_DENY));
    CHECK(can_any(s, "User:a", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    /* a wildcard names every topic: now an ALLOW is needed */
    add(s, acl(MK_ACL_RES_TOPIC, "*", MK_ACL_PAT_LITERAL, "User:admin", MK_ACL_OP_ALL, MK_ACL_PERM_ALLOW));
    CHECK(!can_any(s, "User:a", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    CHECK(can_any(s, "User:admin", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    /* READ does not count for WRITE; a literal WRITE not denied does */
    add(s, acl(MK_ACL_RES_TOPIC, "logs", MK_ACL_PAT_LITERAL, "User:a", MK_ACL_OP_READ, MK_ACL_PERM_ALLOW));
    CHECK(!can_any(s, "User:a", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    add(s, acl(MK_ACL_RES_TOPIC, "orders", MK_ACL_PAT_LITERAL, "User:b", MK_ACL_OP_WRITE, MK_ACL_PERM_ALLOW));
    CHECK(!can_any(s, "User:b", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE)); /* the same literal is denied */
    add(s, acl(MK_ACL_RES_TOPIC, "pay", MK_ACL_PAT_PREFIXED, "User:b", MK_ACL_OP_WRITE, MK_ACL_PERM_ALLOW));
    CHECK(can_any(s, "User:b", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    add(s, acl(MK_ACL_RES_TOPIC, "pa", MK_ACL_PAT_PREFIXED, "User:b", MK_ACL_OP_ALL, MK_ACL_PERM_DENY));
    CHECK(!can_any(s, "User:b", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE)); /* a shorter denied prefix covers it */
    /* a wildcard DENY refuses even the wildcard ALLOW */
    add(s, acl(MK_ACL_RES_TOPIC, "*", MK_ACL_PAT_LITERAL, "User:admin", MK_ACL_OP_WRITE, MK_ACL_PERM_DENY));
    CHECK(!can_any(s, "User:admin", MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE));
    CHECK(can_any(s, "User:admin", MK_ACL_RES_TOPIC, MK_ACL_OP_READ));
    /* another resource type is not named */
    CHECK(can_any(s, "User:a", MK_ACL_RES_GROUP, MK_ACL_OP_READ));
    mk_tenant_acls_free(s);
}

static void test_encode_decode(void)
{
    mk_tenant_acls_t *s, *t;
    CHECK(mk_tenant_acls_new(&s) == 0 && mk_tenant_acls_new(&t) == 0);
    add(s, acl(MK_ACL_RES_TOPIC, "orders v2 \xc3\xa9", MK_ACL_PAT_PREFIXED, "User:a b", MK_ACL_OP_READ,
               MK_ACL_PERM_DENY));
    add(s, acl(MK_ACL_RES_TRANSACTIONAL_ID, "tx", MK_ACL_PAT_LITERAL, "User:*", MK_ACL_OP_WRITE, MK_ACL_PERM_ALLOW));
    mk_buf_t b;
    mk_buf_init(&b);
    CHECK(mk_tenant_acls_encode(s, &b) == 0);
    CHECK(mk_tenant_acls_decode(t, (const char *)b.data, b.len) == 0);
    CHECK(mk_tenant_acls_count(t) == 2);
    CHECK(!can(t, "User:a b", MK_ACL_RES_TOPIC, "orders v2 \xc3\xa9-x", MK_ACL_OP_READ));
    CHECK(can(t, "User:z", MK_ACL_RES_TRANSACTIONAL_ID, "tx", MK_ACL_OP_WRITE));
    /* "2 3 3 3 6f 557365723a61 2a" is topic "o", literal, READ, DENY, User:a, host "*" */
    mk_tenant_acls_t *ok;
    CHECK(mk_tenant_acls_new(&ok) == 0);
    const char *good = "2 3 3 2 6f 557365723a61 2a\n";
    CHECK(mk_tenant_acls_decode(ok, good, strlen(good)) == 0 && mk_tenant_acls_count(ok) == 1);
    mk_tenant_acls_free(ok);
    const char *corrupt[] = {"2 3 3 2 zz 557365723a61 2a\n", "2 3 3 2 6f\n", "2 3 3 9 6f 557365723a61 2a\n",
                             "x 3 3 2 6f 557365723a61 2a\n", "2 3 3 2 6f 557365723a61 2a extra\n",
                             "2 3 3 2 6 557365723a61 2a\n", "2 3 3 2 6f00 557365723a61 2a\n",
                             "999999999999 3 3 2 6f 557365723a61 2a\n", "2 3 3 2 6f 55 2a\n"};
    for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
        mk_tenant_acls_t *u;
        CHECK(mk_tenant_acls_new(&u) == 0);
        CHECK(mk_tenant_acls_decode(u, corrupt[i], strlen(corrupt[i])) == MK_ERR_CORRUPT);
        mk_tenant_acls_free(u);
    }
    mk_buf_free(&b);
    mk_tenant_acls_free(s);
    mk_tenant_acls_free(t);
}

int main(void)
{
    test_authorize();
    test_invalid_and_filters();
    test_authorize_any();
    test_encode_decode();
    printf("acl_test: ok\n");
    return 0;
}
