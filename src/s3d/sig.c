/*
 * sig.c -- who sent this request: AWS signatures V2 and V4, in the
 * Authorization header and in presigned URLs, and the aws-chunked body
 * encoding whose chunks V4 signs one by one.
 *
 * V2 (what Debian's libs3 2.0, s3cmd --signature-v2 and old SDKs send):
 *   StringToSign = Method \n Content-MD5 \n Content-Type \n Date \n
 *                  CanonicalizedAmzHeaders CanonicalizedResource
 *   Signature    = base64(HMAC-SHA1(secret, StringToSign))
 * where Date is empty when x-amz-date is sent (it is then among the amz
 * headers) and is the Expires value of a presigned URL; the amz headers are
 * the x-amz-* ones, lower case, sorted, "name:value\n", repeated names
 * joined with ","; the resource is the path as sent plus the sub-resources
 * that S3 signs (acl, uploadId, partNumber, ...), sorted, decoded.
 *
 * V4 (awscli, boto3, s3cmd's default):
 *   CanonicalRequest = Method \n URI \n Query \n Headers \n SignedHeaders \n Payload
 *   StringToSign     = "AWS4-HMAC-SHA256" \n Timestamp \n Scope \n hex(SHA256(CanonicalRequest))
 *   SigningKey       = HMAC chain of "AWS4"+secret over date, region, "s3", "aws4_request"
 *   Signature        = hex(HMAC-SHA256(SigningKey, StringToSign))
 * S3 does not normalise the URI; the query is sorted and encoded by AWS's
 * rules; the payload line is the x-amz-content-sha256 header (a hex digest
 * that ops.c checks against the body, UNSIGNED-PAYLOAD, or one of the
 * STREAMING-* values that announce aws-chunked bodies).  A client's path
 * is tried as AWS encodes it and, if that fails, exactly as sent (clients
 * differ on the characters they leave unencoded).
 *
 * Both versions check the request's time against ours (15 minutes either
 * way) and a presigned URL's expiry.  Signatures are compared in constant
 * time.  The region of a V4 scope is whatever the client signed with.
 *
 * aws-chunked: "hex-size;chunk-signature=sig\r\n" data "\r\n" ... "0;...\r\n"
 * then trailers and "\r\n".  Each chunk's signature chains from the
 * previous one (the seed is the request's own signature) over the hash of
 * the chunk, so a body cannot be altered or cut and stay valid.
 */
#include "s3d/s3d_int.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ================================================================= digests */

int mk_s3_hash_init(mk_s3_hash_t *h, const EVP_MD *md)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx)
        return MK_ERR_NOMEM;
    if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
        return MK_ERR_NOMEM;
    }
    return 0;
}

void mk_s3_hash_update(mk_s3_hash_t *h, const void *p, size_t n)
{
    if (h->ctx && n)
        EVP_DigestUpdate(h->ctx, p, n);
}

size_t mk_s3_hash_final(mk_s3_hash_t *h, uint8_t *out)
{
    unsigned len = 0;
    if (h->ctx) {
        EVP_DigestFinal_ex(h->ctx, out, &len);
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
    return len;
}

void mk_s3_hash_free(mk_s3_hash_t *h)
{
    if (h->ctx)
        EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void mk_s3_sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    unsigned len = 0;
    EVP_Digest(p, n, d, &len, EVP_sha256(), NULL);
    mk_s3_hex(d, 32, out);
}

static void hmac256(const void *key, size_t klen, const char *msg, size_t mlen, uint8_t out[32])
{
    unsigned len = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &len);
}

void mk_s3_v4_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                          uint8_t out[32])
{
    char k0[200];
    size_t kl = (size_t)snprintf(k0, sizeof(k0), "AWS4%s", secret);
    if (kl >= sizeof(k0))
        kl = sizeof(k0) - 1;
    uint8_t a[32], b[32];
    hmac256(k0, kl, date8, strlen(date8), a);
    hmac256(a, 32, region, strlen(region), b);
    hmac256(b, 32, service, strlen(service), a);
    hmac256(a, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k0, sizeof(k0));
}

void mk_s3_v4_hmac_hex(const uint8_t key[32], const char *msg, char out[65])
{
    uint8_t d[32];
    hmac256(key, 32, msg, strlen(msg), d);
    mk_s3_hex(d, 32, out);
}

void mk_s3_v2_sign(const char *secret, const char *sts, char out[32])
{
    uint8_t d[20];
    unsigned len = 20;
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)sts, strlen(sts), d, &len);
    mk_s3_base64(d, 20, out);
}

static bool same(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* ======================================================================= V2 */

/* The query parameters that are part of V2's CanonicalizedResource. */
static const char *const v2_subresources[] = {
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory", "lifecycle",
    "location", "logging", "metrics", "notification", "object-lock", "partNumber", "policy", "replication",
    "requestPayment", "response-cache-control", "response-content-disposition", "response-content-encoding",
    "response-content-language", "response-content-type", "response-expires", "restore", "select",
    "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website",
};

static bool is_subresource(const char *name)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(v2_subresources); i++)
        if (strcmp(v2_subresources[i], name) == 0)
            return true;
    return false;
}

static int cmp_param_name(const void *a, const void *b)
{
    const mk_s3_param_t *x = *(const mk_s3_param_t *const *)a, *y = *(const mk_s3_param_t *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_hdr_name(const void *a, const void *b)
{
    const mk_s3_hdr_t *x = *(const mk_s3_hdr_t *const *)a, *y = *(const mk_s3_hdr_t *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x < y ? -1 : x > y); /* stable: keep the order of repeated names */
}

const char *mk_s3_req_header(const mk_s3_req_t *r, const char *name)
{
    for (int i = 0; i < r->nhdrs; i++)
        if (strcmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    return NULL;
}

char *mk_s3_v2_string_to_sign(const mk_s3_req_t *req, const mk_s3_query_t *q, const char *date_line,
                              bool decoded_path, mk_arena_t *a)
{
    mk_buf_t b;
    mk_buf_init(&b);
    const char *md5 = mk_s3_req_header(req, "content-md5"), *ctype = mk_s3_req_header(req, "content-type");
    const char *date = date_line;
    if (!date)
        date = mk_s3_req_header(req, "x-amz-date") ? "" : mk_s3_req_header(req, "date");
    mk_buf_put(&b, req->method, strlen(req->method));
    mk_buf_put(&b, "\n", 1);
    if (md5)
        mk_buf_put(&b, md5, strlen(md5));
    mk_buf_put(&b, "\n", 1);
    if (ctype)
        mk_buf_put(&b, ctype, strlen(ctype));
    mk_buf_put(&b, "\n", 1);
    if (date)
        mk_buf_put(&b, date, strlen(date));
    mk_buf_put(&b, "\n", 1);

    /* CanonicalizedAmzHeaders */
    const mk_s3_hdr_t **amz = mk_arena_alloc(a, sizeof(*amz) * (size_t)(req->nhdrs + 1));
    int na = 0;
    for (int i = 0; amz && i < req->nhdrs; i++)
        if (strncmp(req->hdrs[i].name, "x-amz-", 6) == 0)
            amz[na++] = &req->hdrs[i];
    if (na)
        qsort(amz, (size_t)na, sizeof(*amz), cmp_hdr_name);
    for (int i = 0; i < na; i++) {
        bool cont = i > 0 && strcmp(amz[i]->name, amz[i - 1]->name) == 0;
        if (cont) {
            b.len--; /* replace the previous "\n" with "," */
            mk_buf_put(&b, ",", 1);
        } else {
            mk_buf_put(&b, amz[i]->name, strlen(amz[i]->name));
            mk_buf_put(&b, ":", 1);
        }
        mk_buf_put(&b, amz[i]->value, strlen(amz[i]->value));
        mk_buf_put(&b, "\n", 1);
    }

    /* CanonicalizedResource */
    if (decoded_path) {
        size_t pl = strlen(req->raw_path);
        char *d = mk_arena_alloc(a, pl + 1);
        if (d && mk_s3_pct_decode(req->raw_path, pl, false, d) >= 0)
            mk_buf_put(&b, d, strlen(d));
        else
            mk_buf_put(&b, req->raw_path, pl);
    } else {
        mk_buf_put(&b, req->raw_path, strlen(req->raw_path));
    }
    const mk_s3_param_t **sub = q->n ? mk_arena_alloc(a, sizeof(*sub) * (size_t)q->n) : NULL;
    int ns = 0;
    for (int i = 0; sub && i < q->n; i++)
        if (is_subresource(q->v[i].name))
            sub[ns++] = &q->v[i];
    if (ns)
        qsort(sub, (size_t)ns, sizeof(*sub), cmp_param_name);
    for (int i = 0; i < ns; i++) {
        mk_buf_put(&b, i ? "&" : "?", 1);
        mk_buf_put(&b, sub[i]->name, strlen(sub[i]->name));
        if (sub[i]->has_value) {
            mk_buf_put(&b, "=", 1);
            mk_buf_put(&b, sub[i]->value, strlen(sub[i]->value));
        }
    }
    char *out = mk_buf_ok(&b) ? mk_arena_strndup(a, (const char *)b.data, b.len) : NULL;
    mk_buf_free(&b);
    return out;
}

static void fail(mk_s3_auth_t *o, int err, const char *why)
{
    o->err = err;
    o->why = why;
}

/* The request time (x-amz-date or Date) within MK_S3_SKEW_MS of now. */
static bool time_ok(const mk_s3_req_t *req, mk_s3_auth_t *o)
{
    const char *xd = mk_s3_req_header(req, "x-amz-date"), *d = mk_s3_req_header(req, "date");
    int64_t t;
    bool parsed = xd ? (mk_s3_parse_http_date(xd, &t) == 0 || mk_s3_parse_amz_date(xd, &t) == 0)
                     : (d && mk_s3_parse_http_date(d, &t) == 0);
    if (!parsed) {
        fail(o, MK_S3E_ACCESS_DENIED, "AWS authentication requires a valid Date or x-amz-date header");
        return false;
    }
    if (t > req->now_ms + MK_S3_SKEW_MS || t < req->now_ms - MK_S3_SKEW_MS) {
        fail(o, MK_S3E_TIME_SKEWED, NULL);
        return false;
    }
    return true;
}

static void check_v2(const mk_s3_req_t *req, const mk_s3_query_t *q, const mk_s3_creds_t *creds, const char *key,
                     const char *sig, const char *expires, mk_arena_t *a, mk_s3_auth_t *o)
{
    o->version = 2;
    o->access_key = key;
    if (strcmp(key, creds->access_key) != 0) {
        fail(o, MK_S3E_INVALID_ACCESS_KEY, NULL);
        return;
    }
    if (expires) {
        char *end;
        long long e = strtoll(expires, &end, 10);
        if (!*expires || *end || e < 0) {
            fail(o, MK_S3E_AUTH_QUERY_ERROR, "Expires is not a number of seconds");
            return;
        }
        if (e * 1000 < req->now_ms) {
            fail(o, MK_S3E_ACCESS_DENIED, "Request has expired");
            return;
        }
    } else if (!time_ok(req, o)) {
        return;
    }
    /* The Date line: the presigned Expires; else empty when x-amz-date is
     * sent, as AWS specifies -- but botocore signs the Date header even
     * then, so that is tried second.  The path: as sent, then decoded. */
    const char *dates[2] = {expires, NULL};
    if (!expires && mk_s3_req_header(req, "x-amz-date") && mk_s3_req_header(req, "date"))
        dates[1] = mk_s3_req_header(req, "date");
    for (int d = 0; d < 2; d++) {
        if (d && !dates[1])
            break;
        for (int decoded = 0; decoded < 2; decoded++) {
            char *sts = mk_s3_v2_string_to_sign(req, q, dates[d], decoded, a);
            if (!sts) {
                fail(o, MK_S3E_INTERNAL, NULL);
                return;
            }
            if (!decoded && !d)
                o->string_to_sign = sts;
            char want[32];
            mk_s3_v2_sign(creds->secret_key, sts, want);
            if (same(want, sig)) {
                o->err = MK_S3E_NONE;
                return;
            }
            if (strchr(req->raw_path, '%') == NULL)
                break; /* decoding would change nothing */
        }
    }
    fail(o, MK_S3E_SIGNATURE_MISMATCH, NULL);
}

/* ======================================================================= V4 */

/* "name=value" strings by name, then value. */
static int cmp_name_value(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t xl = strcspn(x, "="), yl = strcspn(y, "=");
    int c = memcmp(x, y, MK_MIN(xl, yl));
    if (!c)
        c = xl < yl ? -1 : xl > yl;
    return c ? c : strcmp(x + xl, y + yl);
}

/* Append a header value with its blanks trimmed and inner runs of blanks
 * collapsed to one space, as V4's canonical headers want. */
static void put_trimall(mk_buf_t *b, const char *v)
{
    bool space = false, any = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = any;
            continue;
        }
        if (space)
            mk_buf_put(b, " ", 1);
        space = false;
        any = true;
        mk_buf_put(b, v, 1);
    }
}

char *mk_s3_v4_canonical_request(const mk_s3_req_t *req, const mk_s3_query_t *q, const char *signed_headers,
                                 const char *payload, bool raw_path, mk_arena_t *a)
{
    mk_buf_t b;
    mk_buf_init(&b);
    mk_buf_put(&b, req->method, strlen(req->method));
    mk_buf_put(&b, "\n", 1);
    size_t pl = strlen(req->raw_path);
    if (!pl) {
        mk_buf_put(&b, "/", 1);
    } else if (raw_path) {
        mk_buf_put(&b, req->raw_path, pl);
    } else {
        char *d = mk_arena_alloc(a, pl + 1);
        if (d && mk_s3_pct_decode(req->raw_path, pl, false, d) >= 0)
            mk_s3_uri_encode(&b, d, strlen(d), true);
        else
            mk_buf_put(&b, req->raw_path, pl);
    }
    mk_buf_put(&b, "\n", 1);

    /* the query: every parameter but the signature, name=value encoded by
     * AWS's rules (from the raw bytes, '+' being a plus), sorted */
    char **enc = q->n ? mk_arena_alloc(a, sizeof(char *) * (size_t)q->n) : NULL;
    int ne = 0;
    for (int i = 0; enc && i < q->n; i++) {
        const mk_s3_param_t *p = &q->v[i];
        if (strcmp(p->name, "X-Amz-Signature") == 0)
            continue;
        char *n = mk_arena_alloc(a, p->raw_name_len + 1), *v = mk_arena_alloc(a, p->raw_value_len + 1);
        if (!n || !v || mk_s3_pct_decode(p->raw_name, p->raw_name_len, false, n) < 0 ||
            mk_s3_pct_decode(p->raw_value, p->raw_value_len, false, v) < 0)
            continue; /* cannot happen: the same bytes parsed before */
        mk_buf_t e;
        mk_buf_init(&e);
        mk_s3_uri_encode(&e, n, strlen(n), false);
        mk_buf_put(&e, "=", 1);
        mk_s3_uri_encode(&e, v, strlen(v), false);
        enc[ne] = mk_buf_ok(&e) ? mk_arena_strndup(a, (const char *)e.data, e.len) : NULL;
        mk_buf_free(&e);
        if (enc[ne])
            ne++;
    }
    /* by encoded name, then encoded value (byte order) */
    if (ne)
        qsort(enc, (size_t)ne, sizeof(char *), cmp_name_value);
    for (int i = 0; i < ne; i++) {
        if (i)
            mk_buf_put(&b, "&", 1);
        mk_buf_put(&b, enc[i], strlen(enc[i]));
    }
    mk_buf_put(&b, "\n", 1);

    /* the signed headers, in the order the client listed them (sorted) */
    const char *p = signed_headers;
    while (*p) {
        size_t l = strcspn(p, ";");
        char name[128];
        if (l < sizeof(name)) {
            memcpy(name, p, l);
            name[l] = 0;
            for (size_t i = 0; i < l; i++)
                if (name[i] >= 'A' && name[i] <= 'Z')
                    name[i] = (char)(name[i] + 32);
            mk_buf_put(&b, name, l);
            mk_buf_put(&b, ":", 1);
            bool first = true;
            for (int i = 0; i < req->nhdrs; i++) {
                if (strcmp(req->hdrs[i].name, name) != 0)
                    continue;
                if (!first)
                    mk_buf_put(&b, ",", 1);
                put_trimall(&b, req->hdrs[i].value);
                first = false;
            }
            mk_buf_put(&b, "\n", 1);
        }
        p += l;
        if (*p == ';')
            p++;
    }
    mk_buf_put(&b, "\n", 1);
    mk_buf_put(&b, signed_headers, strlen(signed_headers));
    mk_buf_put(&b, "\n", 1);
    mk_buf_put(&b, payload, strlen(payload));
    char *out = mk_buf_ok(&b) ? mk_arena_strndup(a, (const char *)b.data, b.len) : NULL;
    mk_buf_free(&b);
    return out;
}

/* Split "AK/20130524/us-east-1/s3/aws4_request" into its parts. */
static bool parse_credential(const char *c, mk_arena_t *a, const char **key, const char **date8, const char **region,
                             const char **service, const char **term)
{
    const char *parts[5];
    size_t lens[5];
    const char *p = c;
    for (int i = 0; i < 5; i++) {
        const char *slash = i < 4 ? strchr(p, '/') : NULL;
        if (i < 4 && !slash)
            return false;
        parts[i] = p;
        lens[i] = slash ? (size_t)(slash - p) : strlen(p);
        p = slash ? slash + 1 : p + lens[i];
    }
    *key = mk_arena_strndup(a, parts[0], lens[0]);
    *date8 = mk_arena_strndup(a, parts[1], lens[1]);
    *region = mk_arena_strndup(a, parts[2], lens[2]);
    *service = mk_arena_strndup(a, parts[3], lens[3]);
    *term = mk_arena_strndup(a, parts[4], lens[4]);
    return *key && *date8 && *region && *service && *term && lens[1] == 8 && lens[2] > 0 &&
           !strchr(*term, '/');
}

static bool all_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void check_v4(const mk_s3_req_t *req, const mk_s3_query_t *q, const mk_s3_creds_t *creds,
                     const char *credential, const char *signed_headers, const char *sig, const char *amz_date,
                     const char *expires, bool presigned, mk_arena_t *a, mk_s3_auth_t *o)
{
    int malformed = presigned ? MK_S3E_AUTH_QUERY_ERROR : MK_S3E_AUTH_HEADER_MALFORMED;
    o->version = 4;
    o->presigned = presigned;
    const char *key, *date8, *region, *service, *term;
    if (!credential || !signed_headers || !sig ||
        !parse_credential(credential, a, &key, &date8, &region, &service, &term)) {
        fail(o, malformed, "the Credential, SignedHeaders or Signature is missing or malformed");
        return;
    }
    o->access_key = key;
    if (strcmp(key, creds->access_key) != 0) {
        fail(o, MK_S3E_INVALID_ACCESS_KEY, NULL);
        return;
    }
    if (strcmp(service, "s3") != 0 || strcmp(term, "aws4_request") != 0) {
        fail(o, malformed, "the credential scope must end with s3/aws4_request");
        return;
    }
    if (!all_hex(sig, 64)) {
        fail(o, malformed, "the signature is not 64 lower-case hex digits");
        return;
    }
    /* the timestamp: x-amz-date (or X-Amz-Date), else Date */
    int64_t t;
    char stamp[17];
    if (amz_date && mk_s3_parse_amz_date(amz_date, &t) == 0) {
        memcpy(stamp, amz_date, 17);
    } else if (!amz_date && !presigned && mk_s3_req_header(req, "date") &&
               mk_s3_parse_http_date(mk_s3_req_header(req, "date"), &t) == 0) {
        char iso[32];
        mk_s3_iso_date(t, iso); /* 2013-05-24T00:00:00.000Z -> 20130524T000000Z */
        snprintf(stamp, sizeof(stamp), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", iso, iso + 5, iso + 8, iso + 11, iso + 14,
                 iso + 17);
    } else {
        fail(o, presigned ? MK_S3E_AUTH_QUERY_ERROR : MK_S3E_ACCESS_DENIED,
             "AWS authentication requires a valid x-amz-date or Date");
        return;
    }
    if (memcmp(stamp, date8, 8) != 0) {
        fail(o, malformed, "the credential's date is not the request's date");
        return;
    }
    if (presigned) {
        char *end;
        long long e = expires ? strtoll(expires, &end, 10) : -1;
        if (!expires || !*expires || *end || e < 1 || e > MK_S3_MAX_PRESIGN_S) {
            fail(o, MK_S3E_AUTH_QUERY_ERROR, "X-Amz-Expires must be 1 to 604800 seconds");
            return;
        }
        if (t > req->now_ms + MK_S3_SKEW_MS) {
            fail(o, MK_S3E_TIME_SKEWED, NULL);
            return;
        }
        if (t + e * 1000 < req->now_ms) {
            fail(o, MK_S3E_ACCESS_DENIED, "Request has expired");
            return;
        }
        o->payload = MK_S3_UNSIGNED;
        const char *qp = mk_s3_query_get(q, "X-Amz-Content-Sha256");
        if (qp)
            o->payload = qp;
    } else {
        if (t > req->now_ms + MK_S3_SKEW_MS || t < req->now_ms - MK_S3_SKEW_MS) {
            fail(o, MK_S3E_TIME_SKEWED, NULL);
            return;
        }
        o->payload = mk_s3_req_header(req, "x-amz-content-sha256");
        if (!o->payload) {
            fail(o, MK_S3E_INVALID_REQUEST, "Missing required header for this request: x-amz-content-sha256");
            return;
        }
        if (strcmp(o->payload, MK_S3_UNSIGNED) != 0 && strcmp(o->payload, MK_S3_STREAMING) != 0 &&
            strcmp(o->payload, MK_S3_STREAMING_TRAILER) != 0 &&
            strcmp(o->payload, MK_S3_STREAMING_UNSIGNED_TRAILER) != 0 && !all_hex(o->payload, 64)) {
            fail(o, MK_S3E_INVALID_ARGUMENT, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or "
                                             "a SHA-256 hex digest");
            return;
        }
    }
    memcpy(o->amz_date, stamp, 17);
    snprintf(o->scope, sizeof(o->scope), "%s/%s/%s/%s", date8, region, service, term);
    mk_s3_v4_signing_key(creds->secret_key, date8, region, service, o->signing_key);
    for (int raw = 0; raw < 2; raw++) {
        char *cr = mk_s3_v4_canonical_request(req, q, signed_headers, o->payload, raw, a);
        if (!cr) {
            fail(o, MK_S3E_INTERNAL, NULL);
            return;
        }
        char hash[65];
        mk_s3_sha256_hex(cr, strlen(cr), hash);
        char *sts = mk_arena_sprintf(a, "AWS4-HMAC-SHA256\n%s\n%s\n%s", stamp, o->scope, hash);
        if (!sts) {
            fail(o, MK_S3E_INTERNAL, NULL);
            return;
        }
        if (!raw) {
            o->canonical_request = cr;
            o->string_to_sign = sts;
        }
        char want[65];
        mk_s3_v4_hmac_hex(o->signing_key, sts, want);
        if (same(want, sig)) {
            memcpy(o->seed, sig, 65);
            o->err = MK_S3E_NONE;
            return;
        }
    }
    fail(o, MK_S3E_SIGNATURE_MISMATCH, NULL);
}

/* "Credential=..., SignedHeaders=..., Signature=..." -> the three values. */
static void parse_v4_header(const char *v, mk_arena_t *a, const char **cred, const char **sh, const char **sig)
{
    *cred = *sh = *sig = NULL;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t l = strcspn(p, ",");
        const char *eq = memchr(p, '=', l);
        if (eq) {
            size_t nl = (size_t)(eq - p);
            size_t vl = l - nl - 1;
            while (vl && (eq[vl] == ' '))
                vl--;
            char *val = mk_arena_strndup(a, eq + 1, vl);
            if (nl == 10 && strncmp(p, "Credential", 10) == 0)
                *cred = val;
            else if (nl == 13 && strncmp(p, "SignedHeaders", 13) == 0)
                *sh = val;
            else if (nl == 9 && strncmp(p, "Signature", 9) == 0)
                *sig = val;
        }
        p += l;
    }
}

void mk_s3_auth_check(const mk_s3_req_t *req, const mk_s3_query_t *q, const mk_s3_creds_t *creds, mk_arena_t *a,
                      mk_s3_auth_t *o)
{
    memset(o, 0, sizeof(*o));
    const char *auth = mk_s3_req_header(req, "authorization");
    if (auth) {
        if (strncmp(auth, "AWS4-HMAC-SHA256 ", 17) == 0) {
            const char *cred, *sh, *sig;
            parse_v4_header(auth + 17, a, &cred, &sh, &sig);
            check_v4(req, q, creds, cred, sh, sig, mk_s3_req_header(req, "x-amz-date"), NULL, false, a, o);
            return;
        }
        if (strncmp(auth, "AWS ", 4) == 0) {
            const char *colon = strrchr(auth + 4, ':');
            if (!colon || colon == auth + 4) {
                o->version = 2;
                fail(o, MK_S3E_INVALID_ARGUMENT, "Authorization header is invalid -- one and only one ' ' "
                                                 "(space) required");
                return;
            }
            char *key = mk_arena_strndup(a, auth + 4, (size_t)(colon - auth - 4));
            if (!key) {
                fail(o, MK_S3E_INTERNAL, NULL);
                return;
            }
            check_v2(req, q, creds, key, colon + 1, NULL, a, o);
            return;
        }
        fail(o, MK_S3E_INVALID_ARGUMENT, "Unsupported Authorization Type");
        return;
    }
    const char *alg = mk_s3_query_get(q, "X-Amz-Algorithm");
    if (alg) {
        if (strcmp(alg, "AWS4-HMAC-SHA256") != 0) {
            o->version = 4;
            fail(o, MK_S3E_AUTH_QUERY_ERROR, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
            return;
        }
        check_v4(req, q, creds, mk_s3_query_get(q, "X-Amz-Credential"), mk_s3_query_get(q, "X-Amz-SignedHeaders"),
                 mk_s3_query_get(q, "X-Amz-Signature"), mk_s3_query_get(q, "X-Amz-Date"),
                 mk_s3_query_get(q, "X-Amz-Expires"), true, a, o);
        return;
    }
    const char *ak = mk_s3_query_get(q, "AWSAccessKeyId"), *sig = mk_s3_query_get(q, "Signature"),
               *exp = mk_s3_query_get(q, "Expires");
    if (ak || sig) {
        if (!ak || !sig || !exp) {
            o->version = 2;
            o->presigned = true;
            fail(o, MK_S3E_AUTH_QUERY_ERROR, "AWSAccessKeyId, Signature and Expires are all needed");
            return;
        }
        o->presigned = true;
        check_v2(req, q, creds, ak, sig, exp, a, o);
        return;
    }
    fail(o, MK_S3E_ACCESS_DENIED, "Anonymous access is not allowed");
}

/* ============================================================== aws-chunked */

enum { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER, CH_END_CRLF, CH_DONE };

int mk_s3_chunked_init(mk_s3_chunked_t *c, const char *mode, const mk_s3_auth_t *auth)
{
    memset(c, 0, sizeof(*c));
    mk_buf_init(&c->trailers);
    c->state = CH_SIZE;
    c->signed_chunks = strcmp(mode, MK_S3_STREAMING) == 0 || strcmp(mode, MK_S3_STREAMING_TRAILER) == 0;
    c->trailer = strcmp(mode, MK_S3_STREAMING_TRAILER) == 0 || strcmp(mode, MK_S3_STREAMING_UNSIGNED_TRAILER) == 0;
    c->auth = auth;
    if (c->signed_chunks)
        memcpy(c->prev_sig, auth->seed, 65);
    return 0;
}

void mk_s3_chunked_free(mk_s3_chunked_t *c)
{
    mk_s3_hash_free(&c->chunk_hash);
    mk_buf_free(&c->trailers);
}

static int ch_fail(mk_s3_chunked_t *c, int err)
{
    if (!c->err)
        c->err = err;
    return c->err;
}

/* The signature of the chunk just read (its hash is final). */
static int ch_verify(mk_s3_chunked_t *c)
{
    uint8_t d[EVP_MAX_MD_SIZE];
    char hex[65];
    if (c->chunk_hash.ctx) {
        mk_s3_hash_final(&c->chunk_hash, d);
        mk_s3_hex(d, 32, hex);
    } else {
        memcpy(hex, MK_S3_EMPTY_SHA256, 65);
    }
    char sts[512], want[65];
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", c->auth->amz_date, c->auth->scope,
             c->prev_sig, MK_S3_EMPTY_SHA256, hex);
    mk_s3_v4_hmac_hex(c->auth->signing_key, sts, want);
    if (!same(want, c->chunk_sig))
        return ch_fail(c, MK_S3E_SIGNATURE_MISMATCH);
    memcpy(c->prev_sig, want, 65);
    return 0;
}

/* A complete chunk-size line: "hex[;chunk-signature=sig]". */
static int ch_size_line(mk_s3_chunked_t *c)
{
    const char *l = c->line;
    uint64_t size = 0;
    int n = 0;
    while (l[n] && l[n] != ';') {
        int h = l[n];
        int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (v < 0 || n >= 15)
            return ch_fail(c, MK_S3E_INVALID_REQUEST);
        size = size * 16 + (uint64_t)v;
        n++;
    }
    if (!n)
        return ch_fail(c, MK_S3E_INVALID_REQUEST);
    if (c->signed_chunks) {
        static const char pre[] = ";chunk-signature=";
        if (strncmp(l + n, pre, sizeof(pre) - 1) != 0 || !all_hex(l + n + sizeof(pre) - 1, 64))
            return ch_fail(c, MK_S3E_SIGNATURE_MISMATCH);
        memcpy(c->chunk_sig, l + n + sizeof(pre) - 1, 65);
    }
    c->left = size;
    if (size > 0) {
        if (c->signed_chunks && mk_s3_hash_init(&c->chunk_hash, EVP_sha256()) < 0)
            return ch_fail(c, MK_S3E_INTERNAL);
        c->state = CH_DATA;
        return 0;
    }
    if (c->signed_chunks && ch_verify(c))
        return c->err;
    c->state = c->trailer ? CH_TRAILER : CH_END_CRLF;
    return 0;
}

/* A complete trailer line ("" ends the trailers). */
static int ch_trailer_line(mk_s3_chunked_t *c)
{
    if (!c->line_len) {
        if (c->signed_chunks && c->trailer) {
            /* the trailer signature chains from the last chunk's */
            char hex[65], sts[512], want[65];
            mk_s3_sha256_hex(c->trailers.data ? (const char *)c->trailers.data : "", c->trailers.len, hex);
            snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", c->auth->amz_date,
                     c->auth->scope, c->prev_sig, hex);
            mk_s3_v4_hmac_hex(c->auth->signing_key, sts, want);
            if (!same(want, c->trailer_sig))
                return ch_fail(c, MK_S3E_SIGNATURE_MISMATCH);
        }
        c->state = CH_DONE;
        return 0;
    }
    const char *colon = strchr(c->line, ':');
    if (!colon)
        return ch_fail(c, MK_S3E_INVALID_REQUEST);
    size_t nl = (size_t)(colon - c->line);
    const char *v = colon + 1;
    while (*v == ' ')
        v++;
    if (nl == 23 && strncasecmp(c->line, "x-amz-trailer-signature", 23) == 0) {
        snprintf(c->trailer_sig, sizeof(c->trailer_sig), "%s", v);
        return 0;
    }
    if (c->trailers.len + c->line_len + 2 > 4096)
        return ch_fail(c, MK_S3E_INVALID_REQUEST);
    for (size_t i = 0; i < nl; i++) {
        char ch = c->line[i];
        ch = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        mk_buf_put(&c->trailers, &ch, 1);
    }
    mk_buf_put(&c->trailers, ":", 1);
    mk_buf_put(&c->trailers, v, strlen(v));
    mk_buf_put(&c->trailers, "\n", 1);
    return mk_buf_ok(&c->trailers) ? 0 : ch_fail(c, MK_S3E_INTERNAL);
}

int mk_s3_chunked_feed(mk_s3_chunked_t *c, const uint8_t *p, size_t n, mk_s3_sink_fn sink, void *ud)
{
    size_t i = 0;
    while (i < n && !c->err) {
        if (c->state == CH_DATA) {
            size_t take = (size_t)MK_MIN((uint64_t)(n - i), c->left);
            mk_s3_hash_update(&c->chunk_hash, p + i, take);
            int rc = sink(ud, p + i, take);
            if (rc)
                return ch_fail(c, rc);
            c->decoded += take;
            c->left -= take;
            i += take;
            if (!c->left) {
                if (c->signed_chunks && ch_verify(c))
                    return c->err;
                c->state = CH_DATA_CRLF;
                c->line_len = 0;
            }
            continue;
        }
        if (c->state == CH_DONE)
            return ch_fail(c, MK_S3E_INVALID_REQUEST); /* bytes after the end */
        /* a line: collect up to "\r\n" */
        char ch = (char)p[i++];
        if (ch == '\n' && c->line_len && c->line[c->line_len - 1] == '\r') {
            c->line[--c->line_len] = 0;
            int rc = 0;
            switch (c->state) {
            case CH_SIZE: rc = ch_size_line(c); break;
            case CH_DATA_CRLF:
            case CH_END_CRLF:
                if (c->line_len)
                    rc = ch_fail(c, MK_S3E_INVALID_REQUEST);
                else
                    c->state = c->state == CH_DATA_CRLF ? CH_SIZE : CH_DONE;
                break;
            case CH_TRAILER: rc = ch_trailer_line(c); break;
            default: rc = ch_fail(c, MK_S3E_INVALID_REQUEST);
            }
            c->line_len = 0;
            if (rc)
                return c->err;
            continue;
        }
        if (c->line_len + 2 > sizeof(c->line) || ch == 0)
            return ch_fail(c, MK_S3E_INVALID_REQUEST);
        c->line[c->line_len++] = ch;
        c->line[c->line_len] = 0;
    }
    return c->err;
}

int mk_s3_chunked_finish(mk_s3_chunked_t *c)
{
    if (c->err)
        return c->err;
    return c->state == CH_DONE ? MK_S3E_NONE : ch_fail(c, MK_S3E_INCOMPLETE_BODY);
}

const char *mk_s3_chunked_trailer(const mk_s3_chunked_t *c, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *p = c->trailers.data ? (const char *)c->trailers.data : "", *end = p + c->trailers.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && memcmp(p, name, nl) == 0) {
            snprintf(out, n, "%.*s", (int)(eol - p - nl - 1), p + nl + 1);
            return out;
        }
        p = eol + 1;
    }
    return NULL;
}
