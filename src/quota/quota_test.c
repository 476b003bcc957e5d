/*
 * quota_test.c -- unit test of quota/: keys and value bounds, entity shapes,
 * the registry (tenant-wide and entity limits, Kafka's precedence, removal,
 * names that need escaping) persisted in a meta store and loaded back,
 * stored garbage skipped; windowed rates and throttle times against Kafka's
 * formula; token buckets; the split over brokers and a saturated broker's
 * scaling.  Standalone program; exits 0 when every check passes.
 */
#include "meta/meta.h"
#include "quota/quota.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define NEAR(a, b, eps) (fabs((double)(a) - (double)(b)) <= (eps))

static void test_keys(void)
{
    CHECK(mk_quota_key_find("producer_byte_rate") == MK_QUOTA_PRODUCER_BYTE_RATE);
    CHECK(mk_quota_key_find("max_storage_bytes") == MK_QUOTA_MAX_STORAGE_BYTES);
    CHECK(mk_quota_key_find("nope") == -1 && mk_quota_key_find(NULL) == -1);
    CHECK(strcmp(mk_quota_key_name(MK_QUOTA_REQUEST_PERCENTAGE), "request_percentage") == 0);
    CHECK(mk_quota_key_name(MK_QUOTA__COUNT) == NULL && mk_quota_key_name(-1) == NULL);
    CHECK(mk_quota_value_valid(MK_QUOTA_PRODUCER_BYTE_RATE, 1048576));
    CHECK(!mk_quota_value_valid(MK_QUOTA_PRODUCER_BYTE_RATE, 0));
    CHECK(!mk_quota_value_valid(MK_QUOTA_PRODUCER_BYTE_RATE, -5));
    CHECK(!mk_quota_value_valid(MK_QUOTA_PRODUCER_BYTE_RATE, NAN));
    CHECK(!mk_quota_value_valid(MK_QUOTA_PRODUCER_BYTE_RATE, INFINITY));
    CHECK(!mk_quota_value_valid(MK_QUOTA_PRODUCER_BYTE_RATE, 1e300));
    CHECK(mk_quota_value_valid(MK_QUOTA_REQUEST_PERCENTAGE, 250));
    CHECK(!mk_quota_value_valid(MK_QUOTA_REQUEST_PERCENTAGE, 1e6));
    CHECK(!mk_quota_value_valid(MK_QUOTA_MAX_PARTITIONS, 1e10));
    CHECK(!mk_quota_value_valid(MK_QUOTA__COUNT, 1));

    mk_quota_entity_t u = {"alice", NULL, NULL}, c = {NULL, "app", NULL}, uc = {"alice", "", NULL},
                      ip = {NULL, NULL, "10.0.0.1"}, bad = {"alice", NULL, "10.0.0.1"}, none = {0};
    CHECK(mk_quota_entity_valid(&u, -1) && mk_quota_entity_valid(&c, -1) && mk_quota_entity_valid(&uc, -1));
    CHECK(mk_quota_entity_valid(&ip, -1) && !mk_quota_entity_valid(&bad, -1) && !mk_quota_entity_valid(&none, -1));
    CHECK(mk_quota_entity_valid(&u, MK_QUOTA_PRODUCER_BYTE_RATE));
    CHECK(!mk_quota_entity_valid(&u, MK_QUOTA_CONNECTION_CREATION_RATE));
    CHECK(!mk_quota_entity_valid(&u, MK_QUOTA_MAX_PARTITIONS));
    CHECK(mk_quota_entity_valid(&ip, MK_QUOTA_CONNECTION_CREATION_RATE));
    CHECK(!mk_quota_entity_valid(&ip, MK_QUOTA_CONSUMER_BYTE_RATE));
}

typedef struct seen_s {
    int n;
    bool weird_found;
} seen_t;

static int each_cb(const mk_quota_entity_t *e, const mk_quota_limits_t *l, void *arg)
{
    seen_t *s = arg;
    s->n++;
    if (e->client_id && strcmp(e->client_id, "we/ird id=&%") == 0 && !e->user)
        s->weird_found = mk_quota_limit(l, MK_QUOTA_CONSUMER_BYTE_RATE) == 777;
    return 0;
}

static void check_precedence(mk_quota_registry_t *r)
{
    const int P = MK_QUOTA_PRODUCER_BYTE_RATE;
    /* only client-id limits in initech: <default> client-id, then client-id */
    CHECK(mk_quota_client_limit(r, "initech", "bob", "other", P) == 100);
    CHECK(mk_quota_client_limit(r, "initech", "bob", "app", P) == 200);
    /* in acme the <default> user applies to every user without a limit of its own, and
     * beats a client-id limit */
    CHECK(mk_quota_client_limit(r, "acme", "bob", "other", P) == 300);
    CHECK(mk_quota_client_limit(r, "acme", "carol", "app", P) == 300);
    /* user beats <default> user; user + client-id beats user */
    CHECK(mk_quota_client_limit(r, "acme", "alice", "other", P) == 400);
    CHECK(mk_quota_client_limit(r, "acme", "alice", "app", P) == 500);
    /* which entity matched: what a per-match measure is keyed by */
    bool bu, bc;
    CHECK(mk_quota_client_match(r, "acme", "alice", "other", P, &bu, &bc) == 400 && bu && !bc);
    CHECK(mk_quota_client_match(r, "acme", "alice", "app", P, &bu, &bc) == 500 && bu && bc);
    CHECK(mk_quota_client_match(r, "initech", "bob", "other", P, &bu, &bc) == 100 && !bu && bc);
    CHECK(mk_quota_client_match(r, "globex", "bob", "other", P, &bu, &bc) == 0 && !bu && !bc);
    /* per key: alice has no consumer limit of her own, the weird client id has one */
    CHECK(mk_quota_client_limit(r, "acme", "alice", "app", MK_QUOTA_CONSUMER_BYTE_RATE) == 0);
    CHECK(mk_quota_client_limit(r, "acme", "zed", "we/ird id=&%", MK_QUOTA_CONSUMER_BYTE_RATE) == 777);
    /* tenants are apart */
    CHECK(mk_quota_client_limit(r, "globex", "alice", "app", P) == 0);
    CHECK(mk_quota_limit(mk_quota_tenant(r, "acme"), MK_QUOTA_MAX_PARTITIONS) == 10);
    CHECK(mk_quota_limit(mk_quota_tenant(r, "globex"), MK_QUOTA_MAX_PARTITIONS) == 0);
    CHECK(mk_quota_ip_limit(r, "acme", "10.0.0.1", MK_QUOTA_CONNECTION_CREATION_RATE) == 5);
    CHECK(mk_quota_ip_limit(r, "acme", "10.0.0.2", MK_QUOTA_CONNECTION_CREATION_RATE) == 50);
    seen_t s = {0};
    CHECK(mk_quota_each(r, "acme", each_cb, &s) == 0);
    CHECK(s.n == 8 && s.weird_found);
}

static void test_registry(void)
{
    char dir[] = "/tmp/quota_test.XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/meta.db", dir);
    mk_meta_t *m;
    CHECK(mk_meta_open(path, &m) == 0);
    mk_quota_registry_t *r;
    CHECK(mk_quota_registry_open(NULL, m, &r) == 0);
    const int P = MK_QUOTA_PRODUCER_BYTE_RATE;
    uint64_t v0 = mk_quota_version(r);
    mk_quota_entity_t dc = {NULL, "", NULL}, c = {NULL, "app", NULL}, du = {"", NULL, NULL}, u = {"alice", NULL, NULL},
                      uc = {"alice", "app", NULL}, udc = {"alice", "", NULL}, dudc = {"", "", NULL},
                      w = {NULL, "we/ird id=&%", NULL}, ip = {NULL, NULL, "10.0.0.1"}, dip = {NULL, NULL, "", };
    CHECK(mk_quota_set(r, "acme", &dc, P, 100, false) == 0);
    CHECK(mk_quota_set(r, "acme", &c, P, 200, false) == 0);
    CHECK(mk_quota_set(r, "acme", &du, P, 300, false) == 0);
    CHECK(mk_quota_set(r, "acme", &u, P, 400, false) == 0);
    CHECK(mk_quota_set(r, "acme", &uc, P, 500, false) == 0);
    CHECK(mk_quota_set(r, "acme", &w, MK_QUOTA_CONSUMER_BYTE_RATE, 777, false) == 0);
    CHECK(mk_quota_set(r, "acme", &ip, MK_QUOTA_CONNECTION_CREATION_RATE, 5, false) == 0);
    CHECK(mk_quota_set(r, "acme", &dip, MK_QUOTA_CONNECTION_CREATION_RATE, 50, false) == 0);
    CHECK(mk_quota_set(r, "acme", &udc, P, 450, false) == 0);
    CHECK(mk_quota_set(r, "initech", &dc, P, 100, false) == 0);
    CHECK(mk_quota_set(r, "initech", &c, P, 200, false) == 0);
    CHECK(mk_quota_set(r, "acme", NULL, MK_QUOTA_MAX_PARTITIONS, 10, false) == 0);
    CHECK(mk_quota_version(r) > v0);
    /* refused, and nothing changes */
    CHECK(mk_quota_set(r, "acme", &u, MK_QUOTA_CONNECTION_CREATION_RATE, 5, false) == MK_ERR_INVALID);
    CHECK(mk_quota_set(r, "acme", &u, P, -1, false) == MK_ERR_INVALID);
    CHECK(mk_quota_set(r, "acme", NULL, P, 1e300, false) == MK_ERR_INVALID);
    CHECK(mk_quota_set(r, "", NULL, P, 1, false) == MK_ERR_INVALID);
    CHECK(mk_quota_set(r, "acme", NULL, 99, 1, false) == MK_ERR_INVALID);
    /* alice + <default> client-id sits between alice + app and alice */
    CHECK(mk_quota_client_limit(r, "acme", "alice", "other", P) == 450);
    CHECK(mk_quota_set(r, "acme", &udc, P, 0, true) == 0);
    /* <default> user + <default> client-id, then removing it again */
    CHECK(mk_quota_set(r, "acme", &dudc, P, 350, false) == 0);
    CHECK(mk_quota_client_limit(r, "acme", "carol", "x", P) == 350);
    CHECK(mk_quota_set(r, "acme", &dudc, P, 0, true) == 0);
    CHECK(mk_quota_set(r, "acme", &dudc, P, 0, true) == 0); /* absent: fine */
    check_precedence(r);
    mk_quota_registry_close(r);

    /* loaded back, with a garbage entry skipped */
    mk_meta_op_t junk = {.kind = MK_META_KV_SET, .key = "quota/acme/user=x&bogus=1", .value = "producer_byte_rate=5"};
    CHECK(mk_meta_op_run(m, &junk) == 0);
    mk_meta_op_t junk2 = {.kind = MK_META_KV_SET, .key = "quota/acme/ip=1.2.3.4", .value = "producer_byte_rate=5"};
    CHECK(mk_meta_op_run(m, &junk2) == 0);
    mk_meta_op_t junk3 = {.kind = MK_META_KV_SET, .key = "quota/globex", .value = "producer_byte_rate=-3"};
    CHECK(mk_meta_op_run(m, &junk3) == 0);
    CHECK(mk_quota_registry_open(NULL, m, &r) == 0);
    check_precedence(r);
    CHECK(mk_quota_ip_limit(r, "acme", "1.2.3.4", MK_QUOTA_CONNECTION_CREATION_RATE) == 50);
    /* removing a tenant removes its stored limits */
    mk_quota_tenant_remove(r, "acme");
    CHECK(mk_quota_client_limit(r, "acme", "alice", "app", P) == 0);
    mk_quota_registry_close(r);
    CHECK(mk_quota_registry_open(NULL, m, &r) == 0);
    CHECK(mk_quota_client_limit(r, "acme", "alice", "app", P) == 0);
    CHECK(mk_quota_limit(mk_quota_tenant(r, "acme"), MK_QUOTA_MAX_PARTITIONS) == 0);
    mk_quota_registry_close(r);
    mk_meta_close(m);
    CHECK(mk_rm_rf(dir) == 0);
}

static void test_rate(void)
{
    mk_quota_rate_t r;
    mk_quota_rate_init(&r, 11, 1000);
    CHECK(mk_quota_rate_get(&r, 0) == 0);
    CHECK(mk_quota_rate_throttle_ms(&r, 0, 100, 10000) == 0);
    /* 1000 bytes at t=0: over the minimum span of 10 windows, 100/s */
    mk_quota_rate_record(&r, 0, 1000);
    CHECK(NEAR(mk_quota_rate_get(&r, 0), 100, 1e-9));
    CHECK(mk_quota_rate_throttle_ms(&r, 0, 100, 10000) == 0);
    /* 2000 more: 300/s against 100/s: (300 - 100) / 100 x 10 s = 20 s, capped */
    mk_quota_rate_record(&r, 500, 2000);
    CHECK(NEAR(mk_quota_rate_get(&r, 500), 300, 1e-9));
    CHECK(mk_quota_rate_throttle_ms(&r, 500, 100, 10000) == 10000);
    CHECK(mk_quota_rate_throttle_ms(&r, 500, 250, 60000) == 2000); /* (300-250)/250 x 10000 */
    CHECK(mk_quota_rate_throttle_ms(&r, 500, 0, 60000) == 0);
    /* a steady 100/s for 30 s stays at 100/s; old windows expire */
    mk_quota_rate_init(&r, 11, 1000);
    for (int64_t t = 0; t < 30000; t += 100)
        mk_quota_rate_record(&r, t, 10);
    double rate = mk_quota_rate_get(&r, 30000);
    CHECK(rate > 90 && rate < 111);
    CHECK(mk_quota_rate_get(&r, 30000 + 12000) == 0);
    /* windows clamp */
    mk_quota_rate_init(&r, 1000, 0);
    CHECK(r.n == MK_QUOTA_MAX_WINDOWS && r.window_ms == 1);
}

static void test_bucket(void)
{
    mk_quota_bucket_t b;
    mk_quota_bucket_init(&b, 10, 10, 0); /* 10 mutations/s, burst 10 */
    CHECK(mk_quota_bucket_ready(&b, 0));
    mk_quota_bucket_take(&b, 0, 30); /* one big request goes in: -20 */
    CHECK(!mk_quota_bucket_ready(&b, 0));
    int64_t t = mk_quota_bucket_throttle_ms(&b, 0);
    CHECK(t >= 2000 && t <= 2002);
    CHECK(!mk_quota_bucket_ready(&b, 1999));
    CHECK(mk_quota_bucket_ready(&b, 2002));
    CHECK(mk_quota_bucket_throttle_ms(&b, 2002) == 0);
    /* refill is capped at the burst */
    CHECK(mk_quota_bucket_ready(&b, 100000) && NEAR(b.tokens, 10, 1e-9));
    /* a new rate: the past refills at the old one, tokens over the new burst go */
    mk_quota_bucket_take(&b, 100000, 20);                  /* -10 */
    mk_quota_bucket_set(&b, 100, 50, 100500);              /* +5 at 10/s: -5 */
    CHECK(NEAR(b.tokens, -5, 1e-9) && b.rate == 100 && b.burst == 50);
    CHECK(mk_quota_bucket_ready(&b, 100600) && NEAR(b.tokens, 5, 1e-9));
    mk_quota_bucket_set(&b, 100, 2, 200000);               /* saved up: capped at 2 */
    CHECK(NEAR(b.tokens, 2, 1e-9));
}

static void test_share(void)
{
    double out[3];
    double use[3] = {0, 0, 0};
    mk_quota_split(use, 3, 300, 0.1, out);
    CHECK(NEAR(out[0], 100, 1e-9) && NEAR(out[1], 100, 1e-9) && NEAR(out[2], 100, 1e-9));
    double one[3] = {5000, 0, 0};
    mk_quota_split(one, 3, 300, 0.1, out);
    CHECK(NEAR(out[0] + out[1] + out[2], 300, 1e-9));
    CHECK(NEAR(out[0], 280, 1e-9) && NEAR(out[1], 10, 1e-9));
    double q[4] = {100, 300, 0, 0}, d[4] = {1000, 1000, 1000, 10}, a[4];
    /* fits: everyone gets what it asks */
    mk_quota_scale(q, d, 4, 5000, a);
    CHECK(a[0] == 1000 && a[3] == 10);
    /* saturated at 800: quota holders by weight (200, 600), nothing left */
    mk_quota_scale(q, d, 4, 800, a);
    CHECK(NEAR(a[0], 200, 1e-6) && NEAR(a[1], 600, 1e-6) && NEAR(a[2], 0, 1e-6));
    /* saturated at 2500: holders get their demand (2000), 500 left shared: 10 and 490 */
    mk_quota_scale(q, d, 4, 2500, a);
    CHECK(NEAR(a[0], 1000, 1e-6) && NEAR(a[1], 1000, 1e-6));
    CHECK(NEAR(a[3], 10, 1e-6) && NEAR(a[2], 490, 1e-6));
    double sum = a[0] + a[1] + a[2] + a[3];
    CHECK(sum <= 2500 + 1e-6);
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_ERROR);
    test_keys();
    test_registry();
    test_rate();
    test_bucket();
    test_share();
    printf("quota_test: ok\n");
    return 0;
}
