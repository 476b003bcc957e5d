/*
 * scram.c -- the server side of SASL PLAIN (RFC 4616) and SCRAM-SHA-256 /
 * SCRAM-SHA-512 (RFC 5802, RFC 7677) against the registry's API keys.
 *
 * Why OpenSSL here: SCRAM needs PBKDF2, HMAC and SHA-2 that interoperate
 * bit for bit with every Kafka client, and must compare secrets in constant
 * time.  libcrypto's PKCS5_PBKDF2_HMAC, HMAC, EVP digests, CRYPTO_memcmp and
 * RAND_bytes are the reviewed implementations of exactly that; a home-grown
 * copy would be a liability.  This file is the only user of OpenSSL in
 * tenant/ (net/ and s3d/ use it for their own reasons).
 *
 * Credentials.  A key keeps, per hash, salt, iterations, StoredKey = H(HMAC(SaltedPassword,
 * "Client Key")) and ServerKey = HMAC(SaltedPassword, "Server Key") for both
 * hashes (either may be absent).  PLAIN derives the SHA-256 (else SHA-512) StoredKey from the password given and
 * compares (one PBKDF2 of 4096 iterations, about a millisecond: bounded work
 * on the loop, as for the SCRAM HMACs).
 *
 * SCRAM exchange (server view):
 *   client-first   "n,,n=<key>,r=<client nonce>"   (gs2 header "n," or "y,"; an
 *                  authzid "a=..." is accepted; channel binding "p=" is not)
 *   server-first   "r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>"
 *   client-final   "c=<base64 gs2 header>,r=<nonce>,p=<base64 ClientProof>"; as
 *                  Kafka does, the nonce need only end with the combined nonce
 *                  (librdkafka sends the client nonce before it once more)
 *   server-final   "v=<base64 ServerSignature>"
 * Every token is bounded (MK_TENANT_SASL_MAX_TOKEN), copied once into a
 * NUL-terminated buffer (a NUL inside fails) and parsed with lengths known.
 */
#include "tenant/tenant_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#define MK_TENANT_SASL_MAX_TOKEN 4096

static const char *const mech_names[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};

int mk_tenant_mech_find(const char *name, size_t len)
{
    for (int i = 0; i < 3; i++)
        if (name && strlen(mech_names[i]) == len && memcmp(mech_names[i], name, len) == 0)
            return i + 1;
    return 0;
}

const char *const *mk_tenant_mechs(int *n)
{
    *n = 3;
    return mech_names;
}

int mk_tenant_random(void *p, size_t n) { return RAND_bytes(p, (int)n) == 1 ? 0 : MK_ERR_IO; }

static const EVP_MD *mech_md(int mech, size_t *len)
{
    *len = mech == MK_TENANT_MECH_SCRAM_SHA_512 ? 64 : 32;
    return mech == MK_TENANT_MECH_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

static bool hmac(const EVP_MD *md, const uint8_t *key, size_t klen, const void *msg, size_t mlen, uint8_t *out)
{
    unsigned int olen = 0;
    return HMAC(md, key, (int)klen, msg, mlen, out, &olen) != NULL;
}

static bool digest(const EVP_MD *md, const uint8_t *in, size_t n, uint8_t *out)
{
    unsigned int olen = 0;
    return EVP_Digest(in, n, out, &olen, md, NULL) == 1;
}

int mk_tenant_scram_derive(int mech, const char *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
                           int32_t iterations, uint8_t *stored, uint8_t *server)
{
    size_t hl;
    const EVP_MD *md = mech_md(mech, &hl);
    uint8_t salted[64], client_key[64];
    if (PKCS5_PBKDF2_HMAC(password, (int)pw_len, salt, (int)salt_len, iterations, md, (int)hl, salted) != 1 ||
        !hmac(md, salted, hl, "Client Key", 10, client_key) || !digest(md, client_key, hl, stored) ||
        !hmac(md, salted, hl, "Server Key", 10, server))
        return MK_ERR_INVALID;
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return 0;
}

int mk_tenant_scram_from_salted(int mech, const uint8_t *salted, size_t len, uint8_t *stored, uint8_t *server)
{
    size_t hl;
    const EVP_MD *md = mech_md(mech, &hl);
    uint8_t client_key[64];
    if (len != hl || !hmac(md, salted, hl, "Client Key", 10, client_key) || !digest(md, client_key, hl, stored) ||
        !hmac(md, salted, hl, "Server Key", 10, server))
        return MK_ERR_INVALID;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return 0;
}

/* =================================================================== base64 */

static void b64_put(mk_buf_t *out, const uint8_t *p, size_t n)
{
    char enc[4 * 64 / 3 + 8];
    int m = EVP_EncodeBlock((unsigned char *)enc, p, (int)n); /* n <= 64 here */
    mk_buf_put(out, enc, (size_t)m);
}

/* Decode base64 s[0..n) into out (at most cap bytes).  Returns the length or -1. */
static int b64_get(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4 || n / 4 * 3 > cap)
        return -1;
    int m = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (m < 0)
        return -1;
    if (s[n - 1] == '=')
        m--;
    if (s[n - 2] == '=')
        m--;
    return m;
}

/* ================================================================ exchange */

enum { ST_START, ST_FIRST_SENT, ST_OVER };

struct mk_tenant_sasl_s {
    mk_tenant_registry_t *r;
    int mech;
    int state;
    char key[MK_TENANT_KEY_LEN + 1];
    const mk_tenant_t *tenant;        /* referenced after DONE, until taken */
    char *first_bare;                 /* owned: client-first-message-bare */
    char *server_first;               /* owned */
    char *gs2;                        /* owned: the gs2 header as sent */
    char nonce[128];                  /* client nonce + server nonce */
};

mk_tenant_sasl_t *mk_tenant_sasl_new(mk_tenant_registry_t *r, int mech)
{
    mk_tenant_sasl_t *s = mk_calloc(1, sizeof(*s));
    if (s) {
        s->r = r;
        s->mech = mech;
    }
    return s;
}

void mk_tenant_sasl_free(mk_tenant_sasl_t *s)
{
    if (!s)
        return;
    mk_free(s->first_bare);
    mk_free(s->server_first);
    mk_free(s->gs2);
    mk_free(s);
}

const mk_tenant_t *mk_tenant_sasl_tenant(mk_tenant_sasl_t *s)
{
    const mk_tenant_t *t = s->tenant;
    s->tenant = NULL;
    return t;
}

const char *mk_tenant_sasl_key(const mk_tenant_sasl_t *s) { return s->key; }

static int fail(mk_tenant_sasl_t *s, char *why, size_t n, const char *msg)
{
    s->state = ST_OVER;
    snprintf(why, n, "%s", msg);
    return MK_ERR_INVALID;
}

/* A key id as a client wrote it: exactly MK_TENANT_KEY_LEN of [A-Z0-9]
 * (so no SCRAM escapes), then found in the registry. */
static mk_tenant_key_t *key_lookup(mk_tenant_sasl_t *s, const char *p, size_t n)
{
    if (n != MK_TENANT_KEY_LEN)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9')))
            return NULL;
    memcpy(s->key, p, n);
    s->key[n] = 0;
    return mk_tenant_key_find(s->r, s->key);
}

static int done(mk_tenant_sasl_t *s, mk_tenant_key_t *k)
{
    s->state = ST_OVER;
    s->tenant = k->tenant;
    mk_tenant_ref(k->tenant);
    return MK_TENANT_SASL_DONE;
}

/* PLAIN: "[authzid] NUL authcid NUL passwd"; authzid empty or the key. */
static int plain_step(mk_tenant_sasl_t *s, const char *tok, size_t len, char *why, size_t wn)
{
    const char *z1 = memchr(tok, 0, len);
    const char *z2 = z1 ? memchr(z1 + 1, 0, len - (size_t)(z1 + 1 - tok)) : NULL;
    if (!z1 || !z2)
        return fail(s, why, wn, "malformed PLAIN token");
    const char *user = z1 + 1, *pw = z2 + 1;
    size_t ulen = (size_t)(z2 - user), pwlen = len - (size_t)(pw - tok);
    if (z1 != tok && ((size_t)(z1 - tok) != ulen || memcmp(tok, user, ulen) != 0))
        return fail(s, why, wn, "Authentication failed: authorization id must be empty or the username");
    mk_tenant_key_t *k = key_lookup(s, user, ulen);
    if (!k || memchr(pw, 0, pwlen))
        return fail(s, why, wn, "Authentication failed: Invalid username or password");
    int mech = k->sha256.iterations ? MK_TENANT_MECH_SCRAM_SHA_256 : MK_TENANT_MECH_SCRAM_SHA_512;
    const mk_tenant_cred_t *cr = mk_tenant_key_cred(k, mech);
    size_t hl = mech == MK_TENANT_MECH_SCRAM_SHA_512 ? 64 : 32;
    uint8_t stored[64], server[64];
    if (mk_tenant_scram_derive(mech, pw, pwlen, cr->salt, cr->salt_len, cr->iterations, stored, server) < 0 ||
        CRYPTO_memcmp(stored, cr->stored, hl) != 0)
        return fail(s, why, wn, "Authentication failed: Invalid username or password");
    return done(s, k);
}

/* The value of attribute "x=" that starts at p (up to the next ',' or end). */
static bool attr(const char *p, char name, const char **v, size_t *vn)
{
    if (p[0] != name || p[1] != '=')
        return false;
    *v = p + 2;
    const char *e = strchr(*v, ',');
    *vn = e ? (size_t)(e - *v) : strlen(*v);
    return true;
}

static int scram_first(mk_tenant_sasl_t *s, const char *tok, mk_buf_t *out, char *why, size_t wn)
{
    /* gs2-header: ("n" | "y") "," [ "a=" authzid ] "," */
    if ((tok[0] != 'n' && tok[0] != 'y') || tok[1] != ',')
        return fail(s, why, wn, "SCRAM: channel binding is not supported; expected a gs2 header n,, or y,,");
    const char *p = tok + 2;
    const char *bare = strchr(p, ',');
    if (!bare || (bare != p && p[0] != 'a'))
        return fail(s, why, wn, "SCRAM: malformed client-first message");
    bare++;
    const char *user, *cn;
    size_t ulen, cnlen;
    if (!attr(bare, 'n', &user, &ulen) || user[ulen] != ',' || !attr(user + ulen + 1, 'r', &cn, &cnlen) ||
        cnlen == 0 || cnlen > 64)
        return fail(s, why, wn, "SCRAM: malformed client-first message");
    for (size_t i = 0; i < cnlen; i++)
        if (cn[i] < 0x21 || cn[i] > 0x7e)
            return fail(s, why, wn, "SCRAM: malformed client nonce");
    mk_tenant_key_t *k = key_lookup(s, user, ulen);
    if (!k || !mk_tenant_key_cred(k, s->mech)->iterations)
        return fail(s, why, wn, "Authentication failed: Invalid user credentials");
    const mk_tenant_cred_t *cr = mk_tenant_key_cred(k, s->mech);
    uint8_t rnd[24];
    if (mk_tenant_random(rnd, sizeof(rnd)) < 0)
        return fail(s, why, wn, "SCRAM: no randomness");
    memcpy(s->nonce, cn, cnlen);
    mk_buf_t n;
    mk_buf_init(&n);
    b64_put(&n, rnd, sizeof(rnd));
    memcpy(s->nonce + cnlen, n.data, n.len);
    s->nonce[cnlen + n.len] = 0;
    mk_buf_free(&n);
    s->gs2 = mk_malloc((size_t)(bare - tok) + 1);
    s->first_bare = mk_strdup(bare);
    mk_buf_t sf;
    mk_buf_init(&sf);
    mk_buf_put(&sf, "r=", 2);
    mk_buf_put(&sf, s->nonce, strlen(s->nonce));
    mk_buf_put(&sf, ",s=", 3);
    b64_put(&sf, cr->salt, cr->salt_len);
    char it[24];
    int itn = snprintf(it, sizeof(it), ",i=%d", cr->iterations);
    mk_buf_put(&sf, it, (size_t)itn);
    mk_buf_put(&sf, "", 1);
    if (!s->gs2 || !s->first_bare || !mk_buf_ok(&sf)) {
        mk_buf_free(&sf);
        return fail(s, why, wn, "out of memory");
    }
    memcpy(s->gs2, tok, (size_t)(bare - tok));
    s->gs2[bare - tok] = 0;
    size_t len;
    s->server_first = (char *)mk_buf_steal(&sf, &len);
    mk_buf_put(out, s->server_first, len - 1);
    s->state = ST_FIRST_SENT;
    return MK_TENANT_SASL_CONTINUE;
}

static int scram_final(mk_tenant_sasl_t *s, const char *tok, mk_buf_t *out, char *why, size_t wn)
{
    const char *c, *r, *pr;
    size_t cl, rl, prl;
    if (!attr(tok, 'c', &c, &cl) || c[cl] != ',' || !attr(c + cl + 1, 'r', &r, &rl) || r[rl] != ',')
        return fail(s, why, wn, "SCRAM: malformed client-final message");
    const char *pstart = strstr(r + rl, ",p=");
    if (!pstart || !attr(pstart + 1, 'p', &pr, &prl) || pr[prl] != 0)
        return fail(s, why, wn, "SCRAM: malformed client-final message");
    uint8_t cb[128];
    int cbn = b64_get(c, cl, cb, sizeof(cb));
    if (cbn < 0 || (size_t)cbn != strlen(s->gs2) || memcmp(cb, s->gs2, (size_t)cbn) != 0)
        return fail(s, why, wn, "SCRAM: channel binding data does not match the gs2 header");
    /* Kafka's rule: the nonce must end with the combined nonce (librdkafka
     * sends client nonce + combined nonce). */
    size_t nl = strlen(s->nonce);
    if (rl < nl || memcmp(r + rl - nl, s->nonce, nl) != 0)
        return fail(s, why, wn, "SCRAM: nonce mismatch");
    mk_tenant_key_t *k = mk_tenant_key_find(s->r, s->key);
    if (!k || !mk_tenant_key_cred(k, s->mech)->iterations)
        return fail(s, why, wn, "Authentication failed: Invalid user credentials");
    size_t hl;
    const EVP_MD *md = mech_md(s->mech, &hl);
    const uint8_t *stored = mk_tenant_key_cred(k, s->mech)->stored;
    const uint8_t *server = mk_tenant_key_cred(k, s->mech)->server;
    uint8_t proof[96];
    int pn = b64_get(pr, prl, proof, sizeof(proof));
    if (pn != (int)hl)
        return fail(s, why, wn, "Authentication failed: Invalid user credentials");
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    mk_buf_t am;
    mk_buf_init(&am);
    mk_buf_put(&am, s->first_bare, strlen(s->first_bare));
    mk_buf_put(&am, ",", 1);
    mk_buf_put(&am, s->server_first, strlen(s->server_first));
    mk_buf_put(&am, ",", 1);
    mk_buf_put(&am, tok, (size_t)(pstart - tok));
    uint8_t sig[64], ck[64], h[64], ssig[64];
    bool ok = mk_buf_ok(&am) && hmac(md, stored, hl, am.data, am.len, sig);
    if (ok) {
        for (size_t i = 0; i < hl; i++)
            ck[i] = proof[i] ^ sig[i];
        ok = digest(md, ck, hl, h) && CRYPTO_memcmp(h, stored, hl) == 0 &&
             hmac(md, server, hl, am.data, am.len, ssig);
    }
    mk_buf_free(&am);
    if (!ok)
        return fail(s, why, wn, "Authentication failed: Invalid user credentials");
    mk_buf_put(out, "v=", 2);
    b64_put(out, ssig, hl);
    return done(s, k);
}

int mk_tenant_sasl_step(mk_tenant_sasl_t *s, const uint8_t *token, size_t len, mk_buf_t *out, char *why,
                        size_t why_len)
{
    if (s->state == ST_OVER)
        return fail(s, why, why_len, "SASL exchange already over");
    mk_reader_t rd;
    mk_rd_init(&rd, token, len);
    if (len > MK_TENANT_SASL_MAX_TOKEN)
        return fail(s, why, why_len, "SASL token too large");
    const uint8_t *p = mk_rd_bytes(&rd, len);
    if (!mk_rd_ok(&rd) || (len && !p))
        return fail(s, why, why_len, "malformed SASL token");
    char buf[MK_TENANT_SASL_MAX_TOKEN + 1];
    if (len)
        memcpy(buf, p, len);
    buf[len] = 0;
    if (s->mech == MK_TENANT_MECH_PLAIN)
        return plain_step(s, buf, len, why, why_len);
    if (memchr(buf, 0, len))
        return fail(s, why, why_len, "SCRAM: NUL byte in a SCRAM message");
    if (s->state == ST_START)
        return scram_first(s, buf, out, why, why_len);
    return scram_final(s, buf, out, why, why_len);
}
