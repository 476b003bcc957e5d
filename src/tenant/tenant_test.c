/*
 * tenant_test.c -- unit test of tenant/: names (prefixes, the default
 * tenant's escape of '~', visibility), tenant ids, the registry (create,
 * keys, revoke, remove) persisted in a meta store and loaded back, PLAIN and
 * a full SCRAM-SHA-256 / SCRAM-SHA-512 exchange with the client side
 * computed here (RFC 5802), garbage tokens for every mechanism, credentials
 * set from a client's SaltedPassword (per mechanism; deleting the last one
 * revokes the key) and the stored form from before per-mechanism salts.
 * Standalone program; exits 0 when every check passes.
 */
#include "meta/meta.h"
#include "tenant/tenant_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
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

static void test_names(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    const mk_tenant_t *d = mk_tenant_default();
    CHECK(strcmp(mk_tenant_to_internal(d, "orders", &a), "orders") == 0);
    CHECK(strcmp(mk_tenant_to_internal(d, "x~y", &a), "~x~y") == 0);
    CHECK(mk_tenant_to_internal(d, NULL, &a) == NULL);
    CHECK(mk_tenant_visible(d, "orders"));
    CHECK(mk_tenant_visible(d, "~x~y"));
    CHECK(!mk_tenant_visible(d, "acme~orders"));
    CHECK(strcmp(mk_tenant_to_external(d, "~x~y"), "x~y") == 0);
    mk_tenant_registry_t *r;
    CHECK(mk_tenant_registry_open(NULL, NULL, &r) == 0);
    mk_tenant_t *t;
    CHECK(mk_tenant_create(r, "acme", 1, &t) == 0);
    CHECK(strcmp(mk_tenant_to_internal(t, "orders", &a), "acme~orders") == 0);
    CHECK(strcmp(mk_tenant_to_internal(t, "x~y", &a), "acme~x~y") == 0);
    CHECK(mk_tenant_visible(t, "acme~orders"));
    CHECK(!mk_tenant_visible(t, "orders"));
    CHECK(!mk_tenant_visible(t, "acme-2~orders"));
    CHECK(!mk_tenant_visible(t, "~acme~orders"));
    CHECK(strcmp(mk_tenant_to_external(t, "acme~orders"), "orders") == 0);
    CHECK(mk_tenant_create(r, "acme", 0, NULL) == MK_ERR_EXISTS);
    CHECK(mk_tenant_create(r, "Acme", 0, NULL) == MK_ERR_INVALID);
    CHECK(mk_tenant_find(r, "default") == d);
    mk_tenant_registry_close(r);
    CHECK(mk_tenant_id_valid("a-1"));
    CHECK(!mk_tenant_id_valid(""));
    CHECK(!mk_tenant_id_valid("default"));
    CHECK(!mk_tenant_id_valid("minikora-health")); /* health/'s internal tenant */
    CHECK(!mk_tenant_id_valid("a~b"));
    CHECK(!mk_tenant_id_valid("abcdefghijabcdefghijabcdefghijabc")); /* 33 */
    mk_arena_free(&a);
}

/* One SASL step; returns the status and the server's answer in out. */
static int step(mk_tenant_sasl_t *s, const char *tok, size_t len, char *out, size_t out_len)
{
    mk_buf_t b;
    mk_buf_init(&b);
    char why[160];
    int rc = mk_tenant_sasl_step(s, (const uint8_t *)tok, len, &b, why, sizeof(why));
    size_t n = b.len < out_len - 1 ? b.len : out_len - 1;
    if (n)
        memcpy(out, b.data, n);
    out[n] = 0;
    mk_buf_free(&b);
    return rc;
}

static int plain(mk_tenant_registry_t *r, const char *key, const char *secret)
{
    char tok[256], out[64];
    int n = snprintf(tok, sizeof(tok), "%c%s%c%s", 0, key, 0, secret);
    mk_tenant_sasl_t *s = mk_tenant_sasl_new(r, MK_TENANT_MECH_PLAIN);
    int rc = step(s, tok, (size_t)n, out, sizeof(out));
    if (rc == MK_TENANT_SASL_DONE)
        mk_tenant_unref(mk_tenant_sasl_tenant(s));
    mk_tenant_sasl_free(s);
    return rc;
}

/* The client side of SCRAM, computed independently with OpenSSL. */
static int scram(mk_tenant_registry_t *r, int mech, const char *key, const char *secret, bool tamper)
{
    const EVP_MD *md = mech == MK_TENANT_MECH_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
    int hl = EVP_MD_size(md);
    mk_tenant_sasl_t *s = mk_tenant_sasl_new(r, mech);
    char first[128], sf[256], final[512], sfinal[256];
    snprintf(first, sizeof(first), "n,,n=%s,r=fyko+d2lbbFgONRv9qkxdawL", key);
    int rc = step(s, first, strlen(first), sf, sizeof(sf));
    if (rc != MK_TENANT_SASL_CONTINUE) {
        mk_tenant_sasl_free(s);
        return rc;
    }
    /* r=<nonce>,s=<salt>,i=<n> */
    char nonce[160], salt64[64];
    int iters = 0;
    CHECK(sscanf(sf, "r=%159[^,],s=%63[^,],i=%d", nonce, salt64, &iters) == 3);
    CHECK(strncmp(nonce, "fyko+d2lbbFgONRv9qkxdawL", 24) == 0 && iters == MK_TENANT_SCRAM_ITERATIONS);
    uint8_t salt[64], salted[64], ck[64], stored[64], sig[64], proof[64], sk[64], ssig[64];
    int sl = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    sl -= (salt64[strlen(salt64) - 1] == '=') + (salt64[strlen(salt64) - 2] == '=');
    unsigned int ol;
    CHECK(PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, sl, iters, md, hl, salted) == 1);
    HMAC(md, salted, hl, (const unsigned char *)"Client Key", 10, ck, &ol);
    EVP_Digest(ck, (size_t)hl, stored, &ol, md, NULL);
    char wo[256], am[768];
    snprintf(wo, sizeof(wo), "c=biws,r=%s", nonce);
    snprintf(am, sizeof(am), "%s,%s,%s", first + 3, sf, wo);
    HMAC(md, stored, hl, (const unsigned char *)am, strlen(am), sig, &ol);
    for (int i = 0; i < hl; i++)
        proof[i] = ck[i] ^ sig[i];
    if (tamper)
        proof[0] ^= 1;
    char proof64[128];
    EVP_EncodeBlock((unsigned char *)proof64, proof, hl);
    snprintf(final, sizeof(final), "%s,p=%s", wo, proof64);
    rc = step(s, final, strlen(final), sfinal, sizeof(sfinal));
    if (rc == MK_TENANT_SASL_DONE) {
        HMAC(md, salted, hl, (const unsigned char *)"Server Key", 10, sk, &ol);
        HMAC(md, sk, hl, (const unsigned char *)am, strlen(am), ssig, &ol);
        char v[160];
        strcpy(v, "v=");
        EVP_EncodeBlock((unsigned char *)v + 2, ssig, hl);
        CHECK(strcmp(v, sfinal) == 0); /* the server proved it knows ServerKey */
        const mk_tenant_t *t = mk_tenant_sasl_tenant(s);
        CHECK(t && strcmp(mk_tenant_sasl_key(s), key) == 0);
        mk_tenant_unref(t);
    }
    mk_tenant_sasl_free(s);
    return rc;
}

static void test_registry_and_sasl(void)
{
    char dir[] = "/tmp/tenant_test.XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/meta.db", dir);
    mk_meta_t *m;
    CHECK(mk_meta_open(path, &m) == 0);
    mk_tenant_registry_t *r;
    CHECK(mk_tenant_registry_open(NULL, m, &r) == 0);
    mk_tenant_t *acme, *other;
    CHECK(mk_tenant_create(r, "acme", 1, &acme) == 0);
    CHECK(mk_tenant_create(r, "other", 0, &other) == 0);
    char key[MK_TENANT_KEY_LEN + 1], secret[MK_TENANT_SECRET_LEN + 1], key2[MK_TENANT_KEY_LEN + 1],
        secret2[MK_TENANT_SECRET_LEN + 1];
    CHECK(mk_tenant_key_create(r, acme, key, secret) == 0);
    CHECK(mk_tenant_key_create(r, other, key2, secret2) == 0);
    mk_tenant_registry_close(r);

    /* Loaded back: both tenants, both keys; secrets were never stored. */
    CHECK(mk_tenant_registry_open(NULL, m, &r) == 0);
    acme = mk_tenant_find(r, "acme");
    CHECK(acme && acme->cell == 1 && mk_tenant_find(r, "other"));
    size_t it = 0;
    CHECK(strcmp(mk_tenant_key_next(r, acme, &it), key) == 0 && !mk_tenant_key_next(r, acme, &it));
    char *v = NULL;
    char kvkey[96];
    snprintf(kvkey, sizeof(kvkey), "tenant/acme/key/%s", key);
    CHECK(mk_meta_kv_get(m, kvkey, &v) == 0 && !strstr(v, secret));
    mk_free(v);

    CHECK(plain(r, key, secret) == MK_TENANT_SASL_DONE);
    CHECK(plain(r, key, secret2) == MK_ERR_INVALID);
    CHECK(plain(r, "AAAAAAAAAAAAAAAA", secret) == MK_ERR_INVALID);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_256, key, secret, false) == MK_TENANT_SASL_DONE);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_512, key2, secret2, false) == MK_TENANT_SASL_DONE);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_512, key, secret, true) == MK_ERR_INVALID);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_256, key, secret2, false) == MK_ERR_INVALID);

    /* Garbage of every shape for every mechanism, at both SCRAM steps. */
    srand(7);
    for (int mech = MK_TENANT_MECH_PLAIN; mech <= MK_TENANT_MECH_SCRAM_SHA_512; mech++)
        for (int i = 0; i < 2000; i++) {
            char tok[600], out[256];
            size_t n = (size_t)(rand() % (int)sizeof(tok));
            for (size_t j = 0; j < n; j++)
                tok[j] = "n,=rcpsvia\0AZ09+/"[rand() % 17];
            mk_tenant_sasl_t *s = mk_tenant_sasl_new(r, mech);
            int rc = step(s, tok, n, out, sizeof(out));
            if (rc == MK_TENANT_SASL_CONTINUE)
                rc = step(s, tok, n, out, sizeof(out));
            CHECK(rc == MK_ERR_INVALID);
            mk_tenant_sasl_free(s);
        }
    char big[5000];
    memset(big, 'n', sizeof(big));
    mk_tenant_sasl_t *s = mk_tenant_sasl_new(r, MK_TENANT_MECH_SCRAM_SHA_256);
    char out[64];
    CHECK(step(s, big, sizeof(big), out, sizeof(out)) == MK_ERR_INVALID);
    CHECK(step(s, "n,,n=x,r=y", 10, out, sizeof(out)) == MK_ERR_INVALID); /* over after a failure */
    mk_tenant_sasl_free(s);

    /* Revoke and remove; a session's reference keeps a removed tenant alive. */
    CHECK(mk_tenant_key_revoke(r, acme, key2) == MK_ERR_NOT_FOUND);
    CHECK(mk_tenant_key_revoke(r, acme, key) == 0);
    CHECK(plain(r, key, secret) == MK_ERR_INVALID);
    other = mk_tenant_find(r, "other");
    mk_tenant_ref(other);
    CHECK(mk_tenant_remove(r, other) == 0);
    CHECK(!mk_tenant_find(r, "other") && strcmp(other->id, "other") == 0);
    CHECK(plain(r, key2, secret2) == MK_ERR_INVALID);
    mk_tenant_unref(other);
    mk_tenant_registry_close(r);
    CHECK(mk_tenant_registry_open(NULL, m, &r) == 0);
    CHECK(mk_tenant_find(r, "acme") && !mk_tenant_find(r, "other"));
    it = 0;
    CHECK(!mk_tenant_key_next(r, mk_tenant_find(r, "acme"), &it));
    mk_tenant_registry_close(r);

    /* A corrupt stored entry fails the start instead of half-loading. */
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = "tenant/bad", .value = "cell=x"};
    CHECK(mk_meta_op_run(m, &op) == 0);
    CHECK(mk_tenant_registry_open(NULL, m, &r) == MK_ERR_CORRUPT);
    mk_meta_close(m);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* SaltedPassword of pw for mech, as a Kafka admin client computes it. */
static void salted_pw(int mech, const char *pw, const uint8_t *salt, int sl, int it, uint8_t *out)
{
    const EVP_MD *md = mech == MK_TENANT_MECH_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
    CHECK(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sl, it, md, EVP_MD_size(md), out) == 1);
}

static void test_scram_credentials(void)
{
    char dir[] = "/tmp/tenant_test.XXXXXX", path[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/meta.db", dir);
    mk_meta_t *m;
    CHECK(mk_meta_open(path, &m) == 0);
    mk_tenant_registry_t *r;
    CHECK(mk_tenant_registry_open(NULL, m, &r) == 0);
    mk_tenant_t *a, *b;
    CHECK(mk_tenant_create(r, "acme", 0, &a) == 0 && mk_tenant_create(r, "other", 0, &b) == 0);
    const char *k = "KEYKEYKEYKEY0001";
    const uint8_t salt[16] = "0123456789abcdef";
    uint8_t sp256[32], sp512[64];
    salted_pw(MK_TENANT_MECH_SCRAM_SHA_256, "password-1", salt, 16, 4096, sp256);
    salted_pw(MK_TENANT_MECH_SCRAM_SHA_512, "password-1", salt, 16, 4096, sp512);
    /* bad forms */
    CHECK(mk_tenant_key_scram_set(r, a, "short", MK_TENANT_MECH_SCRAM_SHA_512, 4096, salt, 16, sp512, 64) ==
          MK_ERR_INVALID);
    CHECK(mk_tenant_key_scram_set(r, a, k, MK_TENANT_MECH_SCRAM_SHA_512, 4095, salt, 16, sp512, 64) ==
          MK_ERR_INVALID);
    CHECK(mk_tenant_key_scram_set(r, a, k, MK_TENANT_MECH_SCRAM_SHA_512, 4096, salt, 16, sp256, 32) ==
          MK_ERR_INVALID);
    CHECK(mk_tenant_key_scram_set(r, a, k, MK_TENANT_MECH_PLAIN, 4096, salt, 16, sp256, 32) == MK_ERR_INVALID);
    CHECK(!mk_tenant_key_find(r, k));
    /* a new key with SHA-512 only: SCRAM-SHA-512 and PLAIN log in, SHA-256 does not */
    CHECK(mk_tenant_key_scram_set(r, a, k, MK_TENANT_MECH_SCRAM_SHA_512, 4096, salt, 16, sp512, 64) == 0);
    CHECK(mk_tenant_key_scram_set(r, b, k, MK_TENANT_MECH_SCRAM_SHA_512, 4096, salt, 16, sp512, 64) ==
          MK_ERR_EXISTS);
    CHECK(mk_tenant_key_scram_iterations(r, a, k, MK_TENANT_MECH_SCRAM_SHA_512) == 4096);
    CHECK(mk_tenant_key_scram_iterations(r, a, k, MK_TENANT_MECH_SCRAM_SHA_256) == 0);
    CHECK(mk_tenant_key_scram_iterations(r, b, k, MK_TENANT_MECH_SCRAM_SHA_512) == 0);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_512, k, "password-1", false) == MK_TENANT_SASL_DONE);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_256, k, "password-1", false) == MK_ERR_INVALID);
    CHECK(plain(r, k, "password-1") == MK_TENANT_SASL_DONE);
    CHECK(mk_tenant_key_scram_set(r, a, k, MK_TENANT_MECH_SCRAM_SHA_256, 4096, salt, 16, sp256, 32) == 0);
    mk_tenant_registry_close(r);

    /* Rewrite the stored entry in the old form (one salt and count for both). */
    char kvkey[96], *v = NULL;
    snprintf(kvkey, sizeof(kvkey), "tenant/acme/key/%s", k);
    CHECK(mk_meta_kv_get(m, kvkey, &v) == 0);
    char c256[256], c512[400], old[1024];
    CHECK(sscanf(v, "c256=4096:%*[0-9a-f]:%255s c512=4096:%*[0-9a-f]:%399s", c256, c512) == 2);
    mk_free(v);
    snprintf(old, sizeof(old), "i=4096 s=30313233343536373839616263646566 k256=%s k512=%s", c256, c512);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = kvkey, .value = old};
    CHECK(mk_meta_op_run(m, &op) == 0);
    CHECK(mk_tenant_registry_open(NULL, m, &r) == 0);
    a = mk_tenant_find(r, "acme");
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_256, k, "password-1", false) == MK_TENANT_SASL_DONE);
    CHECK(scram(r, MK_TENANT_MECH_SCRAM_SHA_512, k, "password-1", false) == MK_TENANT_SASL_DONE);
    /* delete one mechanism, then the other: the key is revoked */
    CHECK(mk_tenant_key_scram_delete(r, mk_tenant_find(r, "other"), k, MK_TENANT_MECH_SCRAM_SHA_256) ==
          MK_ERR_NOT_FOUND);
    CHECK(mk_tenant_key_scram_delete(r, a, k, MK_TENANT_MECH_SCRAM_SHA_256) == 0);
    CHECK(mk_tenant_key_scram_delete(r, a, k, MK_TENANT_MECH_SCRAM_SHA_256) == MK_ERR_NOT_FOUND);
    CHECK(plain(r, k, "password-1") == MK_TENANT_SASL_DONE); /* PLAIN falls back to SHA-512 */
    CHECK(mk_tenant_key_scram_delete(r, a, k, MK_TENANT_MECH_SCRAM_SHA_512) == 0);
    CHECK(!mk_tenant_key_find(r, k));
    mk_tenant_registry_close(r);
    mk_meta_close(m);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_ERROR + 1);
    test_names();
    test_registry_and_sasl();
    test_scram_credentials();
    printf("tenant_test: ok\n");
    return 0;
}
