/*
 * tls.c -- TLS for the Kafka listeners (OpenSSL): server contexts, the
 * per-connection engine over memory BIOs, and the certificates minikora makes
 * for itself.
 *
 * Engine: every TLS connection is an SSL object in accept state whose read
 * BIO and write BIO are both BIO_s_mem.  net.c feeds what libuv read into the
 * read BIO and pulls plaintext out with SSL_read (which runs the handshake
 * as it goes); responses go in with SSL_write and the write BIO's ciphertext
 * comes out as one buffer for uv_write.  OpenSSL never sees a socket, so it
 * can never block the loop; WANT_READ just means "wait for the next read
 * callback".  The memory BIOs grow as needed: the input side is bounded by
 * libuv's read size (a 64 KiB chunk at a time, decrypted at once), the output
 * side by net.c's write high-water mark, as for PLAINTEXT.
 *
 * Certificates: unless the operator gives a certificate and key, the first
 * start makes <data>/tls/ with
 *   ca.pem      self-signed CA certificate (clients' ssl.ca.location)
 *   ca.key      its EC P-256 key, mode 0600 (to issue server.pem again)
 *   server.pem  server certificate signed by the CA; subjectAltName
 *               DNS:localhost, IP:127.0.0.1 and the advertise host
 *   server.key  its EC P-256 key, mode 0600
 * and later starts reuse them, so clients keep trusting the same CA.  Key
 * generation and file I/O are blocking work: they run once at startup, before
 * the loop serves, which is acceptable (EC P-256 keys take well under a
 * millisecond; there is no RSA prime search).
 *
 * Threads: mk_net_tls_certs_ensure and mk_net_tls_new run at startup on the
 * main thread; everything else on the loop thread.
 */
#include "net/net_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct mk_net_tls_s {
    SSL_CTX *ctx;
};

struct mk_net_tls_conn_s {
    SSL *ssl;
    BIO *rbio, *wbio;         /* owned by ssl */
};

/* The first queued OpenSSL error as text (and clear the queue). */
static void ssl_why(char *why, size_t why_len, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "no detail";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    if (why && why_len)
        snprintf(why, why_len, "%s: %s", what, buf);
}

/* ============================================================== server context */

int mk_net_tls_new(const char *cert_file, const char *key_file, mk_net_tls_t **out, char *why, size_t why_len)
{
    mk_net_tls_t *t = mk_calloc(1, sizeof(*t));
    if (!t)
        return MK_ERR_NOMEM;
    t->ctx = SSL_CTX_new(TLS_server_method());
    if (!t->ctx) {
        ssl_why(why, why_len, "SSL_CTX_new");
        mk_free(t);
        return MK_ERR_NOMEM;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
        char what[4200];
        snprintf(what, sizeof(what), "certificate %s", cert_file);
        ssl_why(why, why_len, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        char what[4200];
        snprintf(what, sizeof(what), "private key %s", key_file);
        ssl_why(why, why_len, what);
        goto fail;
    }
    if (SSL_CTX_check_private_key(t->ctx) != 1) {
        ssl_why(why, why_len, "the key does not match the certificate");
        goto fail;
    }
    *out = t;
    return 0;
fail:
    SSL_CTX_free(t->ctx);
    mk_free(t);
    return MK_ERR_INVALID;
}

void mk_net_tls_free(mk_net_tls_t *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    mk_free(t);
}

/* ================================================================= the engine */

mk_net_tls_conn_t *mk_net_tls_conn_new(mk_net_tls_t *t)
{
    mk_net_tls_conn_t *tc = mk_calloc(1, sizeof(*tc));
    if (!tc)
        return NULL;
    tc->ssl = SSL_new(t->ctx);
    tc->rbio = BIO_new(BIO_s_mem());
    tc->wbio = BIO_new(BIO_s_mem());
    if (!tc->ssl || !tc->rbio || !tc->wbio) {
        SSL_free(tc->ssl);
        BIO_free(tc->rbio);
        BIO_free(tc->wbio);
        mk_free(tc);
        ERR_clear_error();
        return NULL;
    }
    /* An empty memory BIO reports "retry", not EOF: more may come. */
    BIO_set_mem_eof_return(tc->rbio, -1);
    SSL_set_bio(tc->ssl, tc->rbio, tc->wbio);
    SSL_set_accept_state(tc->ssl);
    return tc;
}

void mk_net_tls_conn_free(mk_net_tls_conn_t *tc)
{
    if (!tc)
        return;
    SSL_free(tc->ssl); /* frees both BIOs */
    mk_free(tc);
}

int mk_net_tls_conn_feed(mk_net_tls_conn_t *tc, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = BIO_write(tc->rbio, p, chunk);
        if (w <= 0) {
            ERR_clear_error();
            return MK_ERR_NOMEM;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t mk_net_tls_conn_read(mk_net_tls_conn_t *tc, uint8_t *buf, size_t cap, char *why, size_t why_len)
{
    size_t got = 0;
    int r = SSL_read_ex(tc->ssl, buf, cap, &got);
    if (r == 1)
        return (ssize_t)got;
    int e = SSL_get_error(tc->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* memory wbio never refuses; treat as "later" */
        ERR_clear_error();
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        snprintf(why, why_len, "peer closed the TLS session");
        return MK_ERR_INVALID;
    default:
        ssl_why(why, why_len, SSL_is_init_finished(tc->ssl) ? "TLS error" : "TLS handshake failed");
        return MK_ERR_INVALID;
    }
}

int mk_net_tls_conn_write(mk_net_tls_conn_t *tc, const uint8_t *p, size_t n, char *why, size_t why_len)
{
    if (!SSL_is_init_finished(tc->ssl)) {
        snprintf(why, why_len, "TLS send before the handshake completed");
        return MK_ERR_STATE;
    }
    while (n > 0) {
        size_t w = 0;
        if (SSL_write_ex(tc->ssl, p, n, &w) != 1) {
            ssl_why(why, why_len, "TLS write");
            return MK_ERR_STATE;
        }
        p += w;
        n -= w;
    }
    return 0;
}

uint8_t *mk_net_tls_conn_take(mk_net_tls_conn_t *tc, size_t *len)
{
    size_t n = BIO_ctrl_pending(tc->wbio);
    *len = n;
    if (n == 0)
        return NULL;
    uint8_t *out = mk_malloc(n);
    if (!out)
        return NULL;
    size_t got = 0;
    if (BIO_read_ex(tc->wbio, out, n, &got) != 1 || got != n) {
        ERR_clear_error();
        mk_free(out);
        return NULL;
    }
    return out;
}

bool mk_net_tls_conn_ready(const mk_net_tls_conn_t *tc) { return SSL_is_init_finished(tc->ssl) == 1; }

/* =============================================================== certificates */

static EVP_PKEY *key_generate(void)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (kc && EVP_PKEY_keygen_init(kc) == 1 && EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kc, NID_X9_62_prime256v1) == 1)
        EVP_PKEY_keygen(kc, &k);
    EVP_PKEY_CTX_free(kc);
    return k;
}

static bool ext_add(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (!e)
        return false;
    bool ok = X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

static bool is_ip(const char *h)
{
    uint8_t a[16];
    return inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1;
}

/* A certificate for key, signed by issuer (NULL: self-signed CA). */
static X509 *cert_make(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, const char *host)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    if (!x || !serial)
        goto fail;
    X509_set_version(x, 2);
    if (BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)))
        goto fail;
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
    if (X509_set_pubkey(x, key) != 1)
        goto fail;
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"minikora", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    bool ok = ext_add(x, &v3, NID_subject_key_identifier, "hash");
    if (!issuer) {
        ok = ok && ext_add(x, &v3, NID_basic_constraints, "critical,CA:TRUE") &&
             ext_add(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        char san[600];
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1");
        if (host && *host && strcmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0 &&
            strlen(host) < 256)
            snprintf(san + strlen(san), sizeof(san) - strlen(san), ",%s:%s", is_ip(host) ? "IP" : "DNS", host);
        ok = ok && ext_add(x, &v3, NID_authority_key_identifier, "keyid:always") &&
             ext_add(x, &v3, NID_basic_constraints, "critical,CA:FALSE") &&
             ext_add(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
             ext_add(x, &v3, NID_ext_key_usage, "serverAuth") && ext_add(x, &v3, NID_subject_alt_name, san);
    }
    if (!ok || X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0)
        goto fail;
    BN_free(serial);
    return x;
fail:
    BN_free(serial);
    X509_free(x);
    return NULL;
}

/* Write through path.tmp and a rename; keys get mode 0600. */
static bool pem_write(const char *path, X509 *cert, EVP_PKEY *key)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, key ? 0600 : 0644);
    if (fd < 0)
        return false;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return false;
    }
    bool ok = cert ? PEM_write_X509(f, cert) == 1 : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return false;
    }
    return true;
}

static X509 *cert_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *key_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static bool cert_covers(X509 *x, const char *host)
{
    if (!host || !*host)
        return true;
    if (is_ip(host))
        return X509_check_ip_asc(x, host, 0) == 1;
    return X509_check_host(x, host, 0, 0, NULL) == 1;
}

int mk_net_tls_certs_ensure(const char *dir, const char *host, char *why, size_t why_len)
{
    char ca_pem[4200], ca_key[4200], srv_pem[4200], srv_key[4200];
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", dir);
    snprintf(srv_pem, sizeof(srv_pem), "%s/server.pem", dir);
    snprintf(srv_key, sizeof(srv_key), "%s/server.key", dir);
    if (mk_mkdir_p(dir) < 0) {
        snprintf(why, why_len, "cannot create %s: %s", dir, strerror(errno));
        return MK_ERR_IO;
    }
    chmod(dir, 0700);

    int rc = MK_ERR_IO;
    X509 *ca = cert_read(ca_pem), *srv = cert_read(srv_pem);
    EVP_PKEY *cak = key_read(ca_key), *srvk = key_read(srv_key);
    ERR_clear_error(); /* missing files leave errors queued */
    if (ca && srv && srvk && X509_check_private_key(srv, srvk) == 1 && cert_covers(srv, host)) {
        rc = 0; /* reuse everything */
        goto out;
    }
    if (!ca || !cak || X509_check_private_key(ca, cak) != 1) {
        X509_free(ca);
        EVP_PKEY_free(cak);
        cak = key_generate();
        ca = cak ? cert_make(cak, "minikora CA", NULL, NULL, NULL) : NULL;
        if (!ca || !pem_write(ca_key, NULL, cak) || !pem_write(ca_pem, ca, NULL)) {
            ssl_why(why, why_len, "cannot make the CA in the data directory");
            goto out;
        }
        mk_info("tls: made a new CA %s", ca_pem);
    }
    X509_free(srv);
    EVP_PKEY_free(srvk);
    srvk = key_generate();
    srv = srvk ? cert_make(srvk, host && *host ? host : "localhost", ca, cak, host) : NULL;
    if (!srv || !pem_write(srv_key, NULL, srvk) || !pem_write(srv_pem, srv, NULL)) {
        ssl_why(why, why_len, "cannot make the server certificate in the data directory");
        goto out;
    }
    bool extra = host && *host && strcmp(host, "localhost") != 0 && strcmp(host, "127.0.0.1") != 0;
    mk_info("tls: issued %s for localhost, 127.0.0.1%s%s", srv_pem, extra ? ", " : "", extra ? host : "");
    rc = 0;
out:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(srvk);
    ERR_clear_error();
    return rc;
}
