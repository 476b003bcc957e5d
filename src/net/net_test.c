/*
 * net_test.c -- unit tests of net/'s TLS: the certificates it makes (files,
 * modes, reuse, re-issue for a new host under the same CA), and the engine
 * over memory BIOs driven by hand against an OpenSSL client that verifies
 * the chain and the host name: handshake, data both ways, bytes that are not
 * TLS, a send before the handshake.  No sockets, no loop.
 */
#include "net/net_int.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int failures;
#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);    \
        }                                                                   \
    } while (0)

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static bool same_file(const char *path, const char *bytes, size_t len)
{
    size_t n;
    char *b = slurp(path, &n);
    bool same = b && n == len && memcmp(b, bytes, n) == 0;
    free(b);
    return same;
}

/* A verifying client in memory: its BIOs are what the "network" carries. */
typedef struct client_s {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *in, *out;
} client_t;

static bool client_init(client_t *c, const char *ca, const char *host)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || SSL_CTX_load_verify_locations(c->ctx, ca, NULL) != 1)
        return false;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    c->in = BIO_new(BIO_s_mem());
    c->out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->in, -1);
    SSL_set_bio(c->ssl, c->in, c->out);
    SSL_set1_host(c->ssl, host);
    SSL_set_connect_state(c->ssl);
    return true;
}

static void client_free(client_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
}

/* Move client ciphertext to the server and back until both sides are idle;
 * returns false if the server engine fails.  Plaintext the server yields is
 * appended to got. */
static bool pump(client_t *c, mk_net_tls_conn_t *s, uint8_t *got, size_t *got_len, size_t cap)
{
    for (int round = 0; round < 20; round++) {
        uint8_t buf[16384];
        int n;
        bool moved = false;
        SSL_do_handshake(c->ssl);
        while ((n = BIO_read(c->out, buf, sizeof(buf))) > 0) {
            if (mk_net_tls_conn_feed(s, buf, (size_t)n) < 0)
                return false;
            moved = true;
        }
        char why[256];
        ssize_t r;
        while ((r = mk_net_tls_conn_read(s, got + *got_len, cap - *got_len, why, sizeof(why))) > 0)
            *got_len += (size_t)r;
        if (r < 0)
            return false;
        size_t len;
        uint8_t *out = mk_net_tls_conn_take(s, &len);
        if (out) {
            BIO_write(c->in, out, (int)len);
            mk_free(out);
            moved = true;
        }
        if (!moved && SSL_is_init_finished(c->ssl) && mk_net_tls_conn_ready(s))
            return true;
    }
    return SSL_is_init_finished(c->ssl) && mk_net_tls_conn_ready(s);
}

static void test_certs_and_engine(const char *dir)
{
    char why[512], ca[600], cak[600], pem[600], key[600];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cak, sizeof(cak), "%s/ca.key", dir);
    snprintf(pem, sizeof(pem), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    CHECK(mk_net_tls_certs_ensure(dir, "127.0.0.1", why, sizeof(why)) == 0);
    struct stat st;
    CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(cak, &st) == 0 && (st.st_mode & 0777) == 0600);
    size_t ca_len, pem_len;
    char *ca_bytes = slurp(ca, &ca_len), *pem_bytes = slurp(pem, &pem_len);
    CHECK(ca_bytes && pem_bytes);
    /* a second start reuses everything */
    CHECK(mk_net_tls_certs_ensure(dir, "localhost", why, sizeof(why)) == 0);
    CHECK(same_file(ca, ca_bytes, ca_len) && same_file(pem, pem_bytes, pem_len));
    /* a new host: same CA, new server certificate */
    CHECK(mk_net_tls_certs_ensure(dir, "kafka.example", why, sizeof(why)) == 0);
    CHECK(same_file(ca, ca_bytes, ca_len) && !same_file(pem, pem_bytes, pem_len));

    mk_net_tls_t *t = NULL;
    CHECK(mk_net_tls_new(pem, key, &t, why, sizeof(why)) == 0);
    CHECK(mk_net_tls_new(pem, ca, &t, why, sizeof(why)) == MK_ERR_INVALID); /* not a key */
    CHECK(mk_net_tls_new("/nonexistent.pem", key, &t, why, sizeof(why)) == MK_ERR_INVALID);
    CHECK(strstr(why, "/nonexistent.pem") != NULL);
    if (!t)
        goto out;

    /* handshake and data both ways, the client checking chain and names */
    const char *names[] = {"127.0.0.1", "localhost", "kafka.example"};
    for (size_t i = 0; i < MK_ARRAY_LEN(names); i++) {
        client_t c = {0};
        CHECK(client_init(&c, ca, names[i]));
        mk_net_tls_conn_t *s = mk_net_tls_conn_new(t);
        CHECK(mk_net_tls_conn_write(s, (const uint8_t *)"x", 1, why, sizeof(why)) == MK_ERR_STATE);
        uint8_t got[256];
        size_t got_len = 0;
        CHECK(pump(&c, s, got, &got_len, sizeof(got)));
        CHECK(SSL_get_verify_result(c.ssl) == X509_V_OK);
        CHECK(SSL_write(c.ssl, "ping-frame", 10) == 10);
        CHECK(pump(&c, s, got, &got_len, sizeof(got)));
        CHECK(got_len == 10 && memcmp(got, "ping-frame", 10) == 0);
        CHECK(mk_net_tls_conn_write(s, (const uint8_t *)"pong", 4, why, sizeof(why)) == 0);
        size_t len;
        uint8_t *out = mk_net_tls_conn_take(s, &len);
        CHECK(out && len > 4 && !memmem(out, len, "pong", 4)); /* encrypted */
        BIO_write(c.in, out, (int)len);
        mk_free(out);
        char back[16] = "";
        CHECK(SSL_read(c.ssl, back, sizeof(back)) == 4 && memcmp(back, "pong", 4) == 0);
        mk_net_tls_conn_free(s);
        client_free(&c);
    }

    /* a client that expects another name refuses the certificate */
    {
        client_t c = {0};
        CHECK(client_init(&c, ca, "other.example"));
        mk_net_tls_conn_t *s = mk_net_tls_conn_new(t);
        uint8_t got[64];
        size_t got_len = 0;
        pump(&c, s, got, &got_len, sizeof(got));
        CHECK(!SSL_is_init_finished(c.ssl));
        mk_net_tls_conn_free(s);
        client_free(&c);
        ERR_clear_error();
    }

    /* bytes that are not TLS: a plaintext Kafka ApiVersions frame, then random bytes */
    {
        const uint8_t kafka[] = {0, 0, 0, 14, 0, 18, 0, 0, 0, 0, 0, 7, 0, 4, 'k', 'c', 'a', 't'};
        mk_net_tls_conn_t *s = mk_net_tls_conn_new(t);
        uint8_t buf[64];
        CHECK(mk_net_tls_conn_feed(s, kafka, sizeof(kafka)) == 0);
        CHECK(mk_net_tls_conn_read(s, buf, sizeof(buf), why, sizeof(why)) < 0);
        CHECK(strstr(why, "TLS handshake failed") != NULL);
        mk_net_tls_conn_free(s);
        srand(10);
        for (int k = 0; k < 50; k++) {
            uint8_t junk[512];
            for (size_t j = 0; j < sizeof(junk); j++)
                junk[j] = (uint8_t)rand();
            s = mk_net_tls_conn_new(t);
            CHECK(mk_net_tls_conn_feed(s, junk, sizeof(junk)) == 0);
            CHECK(mk_net_tls_conn_read(s, buf, sizeof(buf), why, sizeof(why)) <= 0);
            mk_net_tls_conn_free(s);
        }
    }
    /* the context can go while a session still holds it */
    mk_net_tls_conn_t *late = mk_net_tls_conn_new(t);
    mk_net_tls_free(t);
    mk_net_tls_conn_free(late);
out:
    free(ca_bytes);
    free(pem_bytes);
}

int main(void)
{
    char dir[] = "/tmp/mk-net-test-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char sub[64];
    snprintf(sub, sizeof(sub), "%s/tls", dir);
    test_certs_and_engine(sub);
    mk_rm_rf(dir);
    if (failures) {
        fprintf(stderr, "net_test: %d failures\n", failures);
        return 1;
    }
    printf("net_test: ok\n");
    return 0;
}
