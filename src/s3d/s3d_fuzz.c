/*
 * s3d_fuzz.c -- libFuzzer target for what the bundled S3 server parses
 * itself (http_parser and expat do the rest).  The first byte picks:
 *
 *   0  a query string, then percent-decoding and AWS encoding of it
 *   1  a Range header against an object size
 *   2  HTTP and ISO 8601 dates
 *   3  an XML request body
 *   4  an object file header
 *   5  an aws-chunked body (signed, and unsigned with trailers), fed in
 *      pieces whose sizes come from the input
 *   6  a whole request: "METHOD target\n" then "name: value" lines, a blank
 *      line and a body; its signature is checked as sent (V2 and V4 paths),
 *      then signed properly (V4, UNSIGNED-PAYLOAD) and run through the
 *      operations (routing, listings, uploads, multipart, XML bodies)
 *      against a store in a temporary directory
 *   7  names: keys, bucket names, UTF-8
 *
 * Nothing may crash, leak or read out of bounds.
 */
#include "s3d/s3d_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AK "MKFUZZFUZZFUZZFUZZ00"
#define SK "fuzz-secret-key-0123456789"

static mk_s3_store_t *store;
static mk_s3_ops_t *ops;
static mk_s3_store_counts_t counts;
static mk_s3_counters_t ctr;

static char dir[] = "/tmp/s3d_fuzz-XXXXXX";

static void cleanup(void)
{
    mk_s3_ops_free(ops);
    mk_s3_store_close(store);
    mk_rm_rf(dir);
}

static void setup(void)
{
    if (ops)
        return;
    mk_logger_set_level(MK_LOGGER_ERROR + 1);
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    char why[256];
    if (mk_s3_store_open(dir, &counts, &store, why, sizeof(why)) < 0)
        abort();
    mk_s3_store_bucket_create(store, "fuzz", 1);
    mk_s3_ops_opts_t o = {store, {AK, SK}, "us-east-1", 1 << 20, &ctr};
    ops = mk_s3_ops_new(&o);
}

static int sink_any(void *ud, const uint8_t *p, size_t n)
{
    (void)p;
    *(size_t *)ud += n;
    return 0;
}

/* Parse "METHOD target\nname: value\n...\n\nbody" into a request. */
static mk_s3_req_t *parse_req(const char *s, size_t n, mk_arena_t *a, const char **body, size_t *body_len)
{
    mk_s3_req_t *r = mk_arena_alloc(a, sizeof(*r));
    char *text = mk_arena_strndup(a, s, n);
    if (!r || !text)
        return NULL;
    mk_arena_init(&r->arena); /* the operations' own, freed after each run */
    char *nl = strchr(text, '\n');
    if (!nl)
        return NULL;
    *nl = 0;
    char *sp = strchr(text, ' ');
    if (!sp)
        return NULL;
    *sp = 0;
    r->method = text;
    char *target = sp + 1;
    char *q = strchr(target, '?');
    if (q)
        *q++ = 0;
    r->raw_path = target[0] == '/' ? target : "/";
    r->raw_query = q ? q : "";
    r->hdrs = mk_arena_alloc(a, sizeof(mk_s3_hdr_t) * (MK_S3_MAX_HEADERS + 4));
    if (!r->hdrs)
        return NULL;
    char *line = nl + 1;
    *body = "";
    *body_len = 0;
    while (line < text + n) {
        char *e = strchr(line, '\n');
        if (e)
            *e = 0;
        if (!*line) {
            if (e) {
                *body = e + 1;
                *body_len = (size_t)(text + n - (e + 1));
            }
            break;
        }
        char *c = strchr(line, ':');
        if (c && r->nhdrs < MK_S3_MAX_HEADERS) {
            *c = 0;
            for (char *p = line; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p + 32);
            char *v = c + 1;
            while (*v == ' ')
                v++;
            r->hdrs[r->nhdrs].name = line;
            r->hdrs[r->nhdrs].value = v;
            r->nhdrs++;
        }
        if (!e)
            break;
        line = e + 1;
    }
    r->now_ms = 1369353600000LL;
    snprintf(r->id, sizeof(r->id), "0000000000000001");
    return r;
}

static void run_ops(mk_s3_req_t *r, const char *body, size_t body_len)
{
    const mk_s3_handler_t *h = mk_s3_ops_handler();
    r->has_length = true;
    r->content_length = body_len;
    mk_s3_resp_t resp;
    mk_s3_resp_init(&resp);
    int rc = h->begin(ops, r, &resp);
    if (rc == MK_S3_BODY) {
        size_t at = 0;
        while (at < body_len && rc == MK_S3_BODY) {
            size_t piece = MK_MIN(body_len - at, (size_t)(1 + (body[at] & 63)));
            rc = h->body(ops, r, (const uint8_t *)body + at, piece, &resp);
            at += piece;
        }
        if (rc == MK_S3_BODY)
            h->complete(ops, r, &resp);
    }
    h->end(ops, r, resp.status);
    mk_s3_resp_free(&resp);
    mk_arena_free(&r->arena);
}

static void fuzz_request(const char *s, size_t n)
{
    setup();
    mk_arena_t a;
    mk_arena_init(&a);
    const char *body;
    size_t blen;
    mk_s3_req_t *r = parse_req(s, n, &a, &body, &blen);
    if (!r) {
        mk_arena_free(&a);
        return;
    }
    /* as sent: whatever signature it carries is checked */
    mk_s3_query_t q;
    if (mk_s3_query_parse(r->raw_query, &a, &q) == 0) {
        mk_s3_creds_t c = {AK, SK};
        mk_s3_auth_t o;
        mk_s3_auth_check(r, &q, &c, &a, &o);
        (void)mk_s3_v2_string_to_sign(r, &q, NULL, true, &a);
        (void)mk_s3_v4_canonical_request(r, &q, "host;x-amz-date;;X-Odd;range", MK_S3_UNSIGNED, false, &a);
        run_ops(r, body, blen);
        /* signed: the operations themselves */
        mk_s3_hdr_t *hd = r->hdrs;
        int nh = 0;
        for (int i = 0; i < r->nhdrs; i++)
            if (strcmp(hd[i].name, "authorization") != 0 && strcmp(hd[i].name, "x-amz-date") != 0 &&
                strcmp(hd[i].name, "x-amz-content-sha256") != 0 && strcmp(hd[i].name, "host") != 0)
                hd[nh++] = hd[i];
        hd[nh++] = (mk_s3_hdr_t){"host", "127.0.0.1:9000"};
        hd[nh++] = (mk_s3_hdr_t){"x-amz-content-sha256", MK_S3_UNSIGNED};
        hd[nh++] = (mk_s3_hdr_t){"x-amz-date", "20130524T000000Z"};
        r->nhdrs = nh;
        char *cr = mk_s3_v4_canonical_request(r, &q, "host;x-amz-content-sha256;x-amz-date", MK_S3_UNSIGNED, false,
                                              &a);
        if (cr) {
            char hash[65], sig[65];
            mk_s3_sha256_hex(cr, strlen(cr), hash);
            char *sts = mk_arena_sprintf(&a, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n%s",
                                         hash);
            uint8_t key[32];
            mk_s3_v4_signing_key(SK, "20130524", "us-east-1", "s3", key);
            mk_s3_v4_hmac_hex(key, sts, sig);
            hd[nh++] = (mk_s3_hdr_t){"authorization",
                                     mk_arena_sprintf(&a, "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/"
                                                          "aws4_request, SignedHeaders=host;x-amz-content-sha256;"
                                                          "x-amz-date, Signature=%s",
                                                      sig)};
            r->nhdrs = nh;
            mk_arena_init(&r->arena);
            r->op = NULL;
            run_ops(r, body, blen);
        }
    }
    mk_arena_free(&a);
}

static void fuzz_chunked(const uint8_t *d, size_t n)
{
    static const char *const modes[] = {MK_S3_STREAMING, MK_S3_STREAMING_TRAILER, MK_S3_STREAMING_UNSIGNED_TRAILER};
    mk_s3_auth_t auth;
    memset(&auth, 0, sizeof(auth));
    memcpy(auth.seed, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9", 65);
    memcpy(auth.amz_date, "20130524T000000Z", 17);
    snprintf(auth.scope, sizeof(auth.scope), "20130524/us-east-1/s3/aws4_request");
    for (size_t m = 0; m < MK_ARRAY_LEN(modes); m++) {
        mk_s3_chunked_t c;
        mk_s3_chunked_init(&c, modes[m], &auth);
        size_t count = 0, at = 0;
        while (at < n) {
            size_t piece = MK_MIN(n - at, (size_t)(1 + d[at] % 97));
            if (mk_s3_chunked_feed(&c, d + at, piece, sink_any, &count))
                break;
            at += piece;
        }
        (void)mk_s3_chunked_finish(&c);
        char tv[64];
        (void)mk_s3_chunked_trailer(&c, "x-amz-checksum-crc32", tv, sizeof(tv));
        mk_s3_chunked_free(&c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    if (!s)
        return 0;
    memcpy(s, d, n);
    s[n] = 0;
    mk_arena_t a;
    mk_arena_init(&a);
    switch (data[0] % 8) {
    case 0: {
        mk_s3_query_t q;
        if (mk_s3_query_parse(s, &a, &q) == 0) {
            for (int i = 0; i < q.n; i++) {
                mk_buf_t b;
                mk_buf_init(&b);
                mk_s3_uri_encode(&b, q.v[i].value, strlen(q.v[i].value), true);
                mk_buf_put(&b, "", 1);
                char *back = mk_arena_alloc(&a, b.len + 1);
                /* encoding then decoding gives the value back */
                if (back && mk_buf_ok(&b) && mk_s3_pct_decode((const char *)b.data, b.len - 1, false, back) >= 0 &&
                    strcmp(back, q.v[i].value) != 0)
                    abort();
                mk_buf_free(&b);
            }
        }
        char *out = malloc(n + 1);
        (void)mk_s3_pct_decode(s, strlen(s), true, out);
        free(out);
        break;
    }
    case 1: {
        uint64_t sz = 0, off, len;
        for (size_t i = 0; i < n && i < 8; i++)
            sz = sz << 8 | d[i];
        int rc = mk_s3_range_parse(n > 8 ? s + 8 : "", sz, &off, &len);
        if (rc == 0 && (len == 0 || off + len > sz || off + len < off))
            abort(); /* a satisfiable range lies inside the object */
        break;
    }
    case 2: {
        int64_t ms;
        if (mk_s3_parse_http_date(s, &ms) == 0) {
            char out[32];
            mk_s3_http_date(ms, out);
        }
        (void)mk_s3_parse_amz_date(s, &ms);
        break;
    }
    case 3: {
        mk_s3_xnode_t *root = mk_s3_xml_parse(s, n, &a);
        for (mk_s3_xnode_t *c = root ? root->child : NULL; c; c = c->next)
            (void)mk_s3_xml_child(c, "ETag");
        break;
    }
    case 4: {
        mk_s3_objhdr_t h;
        uint32_t need;
        (void)mk_s3_objhdr_decode(d, n, &a, &h, &need);
        break;
    }
    case 5: fuzz_chunked(d, n); break;
    case 6: fuzz_request(s, n); break;
    case 7: {
        (void)mk_s3_key_check(s, n);
        (void)mk_s3_bucket_name_valid(s);
        (void)mk_s3_utf8_valid(s, n);
        mk_buf_t b;
        mk_buf_init(&b);
        mk_s3_xml_escape(&b, s, n);
        mk_buf_free(&b);
        break;
    }
    }
    mk_arena_free(&a);
    free(s);
    return 0;
}
