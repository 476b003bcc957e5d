/*
 * s3d_test.c -- unit test of s3d/: the text codecs (percent-encoding,
 * queries, base64, dates, Range headers, XML escaping, names, CRC-32),
 * signatures V2 and V4 (header and presigned) against vectors computed with
 * botocore's signers, the aws-chunked decoder against the chunk signatures
 * of AWS's chunked-upload example (recomputed with Python's hmac), the XML
 * reader's refusals (DOCTYPE, depth, garbage), the object file header, and
 * the store on disk: buckets, objects, copies, multipart uploads, reload,
 * and an interrupted upload that leaves nothing.
 * Standalone program; exits 0 when every check passes.
 */
#include "s3d/s3d_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T20130524 1369353600000LL /* 2013-05-24T00:00:00Z */

/* ==================================================================== codec */

static void test_codec(void)
{
    char out[256];
    CHECK(mk_s3_pct_decode("a%20b+c%2Fd", 11, false, out) == 7 && strcmp(out, "a b+c/d") == 0);
    CHECK(mk_s3_pct_decode("a+b", 3, true, out) == 3 && strcmp(out, "a b") == 0);
    CHECK(mk_s3_pct_decode("%4", 2, false, out) < 0);
    CHECK(mk_s3_pct_decode("%zz", 3, false, out) < 0);
    CHECK(mk_s3_pct_decode("a%00", 4, false, out) < 0); /* no NUL may hide in a name */
    CHECK(mk_s3_pct_decode("abc%", 4, false, out) < 0);

    mk_buf_t b;
    mk_buf_init(&b);
    mk_s3_uri_encode(&b, "a b/c~d+e=é", 12, true);
    CHECK(b.len == strlen("a%20b/c~d%2Be%3D%C3%A9") && memcmp(b.data, "a%20b/c~d%2Be%3D%C3%A9", b.len) == 0);
    mk_buf_reset(&b);
    mk_s3_uri_encode(&b, "x/y", 3, false);
    CHECK(b.len == 5 && memcmp(b.data, "x%2Fy", 5) == 0);

    mk_arena_t a;
    mk_arena_init(&a);
    mk_s3_query_t q;
    CHECK(mk_s3_query_parse("uploads&prefix=a%2Fb&x=&max-keys=5&&", &a, &q) == 0);
    CHECK(q.n == 4);
    CHECK(mk_s3_query_find(&q, "uploads") && !mk_s3_query_find(&q, "uploads")->has_value);
    CHECK(strcmp(mk_s3_query_get(&q, "prefix"), "a/b") == 0);
    CHECK(strcmp(mk_s3_query_get(&q, "x"), "") == 0 && mk_s3_query_find(&q, "x")->has_value);
    CHECK(mk_s3_query_get(&q, "nope") == NULL);
    CHECK(mk_s3_query_parse("a=%zz", &a, &q) < 0);
    char many[400] = "";
    for (int i = 0; i < 70; i++)
        strcat(many, "a&");
    CHECK(mk_s3_query_parse(many, &a, &q) < 0); /* parameter count bounded */

    uint8_t raw[16], back[16];
    for (int i = 0; i < 16; i++)
        raw[i] = (uint8_t)(i * 17);
    char b64[32];
    for (size_t n = 0; n <= 16; n++) {
        mk_s3_base64(raw, n, b64);
        CHECK(mk_s3_unbase64(b64, strlen(b64), back, sizeof(back)) == (ssize_t)n && memcmp(raw, back, n) == 0);
    }
    CHECK(mk_s3_unbase64("abc", 3, back, 16) < 0);
    CHECK(mk_s3_unbase64("a=bc", 4, back, 16) < 0);
    CHECK(mk_s3_unbase64("ab!c", 4, back, 16) < 0);
    CHECK(mk_s3_unbase64("AAAAAAAA", 8, back, 5) < 0); /* bounded by cap */
    char hex[33];
    mk_s3_hex(raw, 16, hex);
    CHECK(strcmp(hex, "00112233445566778899aabbccddeeff") == 0);
    CHECK(mk_s3_unhex(hex, 16, back) == 0 && memcmp(back, raw, 16) == 0);
    CHECK(mk_s3_unhex("0g", 1, back) < 0);

    /* dates */
    char d[32];
    mk_s3_http_date(T20130524 + 1234, d);
    CHECK(strcmp(d, "Fri, 24 May 2013 00:00:01 GMT") == 0);
    mk_s3_iso_date(T20130524 + 1234, d);
    CHECK(strcmp(d, "2013-05-24T00:00:01.234Z") == 0);
    int64_t ms;
    CHECK(mk_s3_parse_http_date("Fri, 24 May 2013 00:00:01 GMT", &ms) == 0 && ms == T20130524 + 1000);
    CHECK(mk_s3_parse_http_date("Fri, 24 May 2013 02:00:01 +0200", &ms) == 0 && ms == T20130524 + 1000);
    CHECK(mk_s3_parse_http_date("Friday, 24-May-13 00:00:01 GMT", &ms) == 0 && ms == T20130524 + 1000);
    CHECK(mk_s3_parse_http_date("Fri May 24 00:00:01 2013", &ms) == 0 && ms == T20130524 + 1000);
    CHECK(mk_s3_parse_http_date("Fri, 31 Feb 2013 00:00:01 GMT", &ms) < 0);
    CHECK(mk_s3_parse_http_date("Fri, 24 May 2013 00:00:01 CEST", &ms) < 0);
    CHECK(mk_s3_parse_http_date("yesterday", &ms) < 0);
    CHECK(mk_s3_parse_amz_date("20130524T000000Z", &ms) == 0 && ms == T20130524);
    CHECK(mk_s3_parse_amz_date("20130524T000000", &ms) < 0);
    CHECK(mk_s3_parse_amz_date("2013052AT000000Z", &ms) < 0);
    CHECK(mk_s3_parse_amz_date("20131324T000000Z", &ms) < 0);

    /* ranges against a 100-byte object */
    uint64_t off, len;
    CHECK(mk_s3_range_parse("bytes=0-9", 100, &off, &len) == 0 && off == 0 && len == 10);
    CHECK(mk_s3_range_parse("bytes=90-", 100, &off, &len) == 0 && off == 90 && len == 10);
    CHECK(mk_s3_range_parse("bytes=90-1000", 100, &off, &len) == 0 && off == 90 && len == 10);
    CHECK(mk_s3_range_parse("bytes=-10", 100, &off, &len) == 0 && off == 90 && len == 10);
    CHECK(mk_s3_range_parse("bytes=-1000", 100, &off, &len) == 0 && off == 0 && len == 100);
    CHECK(mk_s3_range_parse("bytes=99-99", 100, &off, &len) == 0 && off == 99 && len == 1);
    CHECK(mk_s3_range_parse("bytes=100-", 100, &off, &len) == -1);
    CHECK(mk_s3_range_parse("bytes=-0", 100, &off, &len) == -1);
    CHECK(mk_s3_range_parse("bytes=0-", 0, &off, &len) == -1);
    CHECK(mk_s3_range_parse("bytes=5-2", 100, &off, &len) == 1);  /* invalid: ignored */
    CHECK(mk_s3_range_parse("bytes=0-1,5-6", 100, &off, &len) == 1);
    CHECK(mk_s3_range_parse("items=0-1", 100, &off, &len) == 1);
    CHECK(mk_s3_range_parse("bytes=x-1", 100, &off, &len) == 1);
    CHECK(mk_s3_range_parse("bytes=99999999999999999999-", 100, &off, &len) == 1);
    CHECK(mk_s3_range_parse(NULL, 100, &off, &len) == 1);

    /* XML escaping */
    mk_buf_reset(&b);
    mk_s3_xml_escape(&b, "a<b>&\"'\n\x01z", 10);
    const char *want = "a&lt;b&gt;&amp;&quot;&apos;&#10;?z";
    CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
    mk_buf_free(&b);

    /* names */
    CHECK(mk_s3_bucket_name_valid("minikora"));
    CHECK(mk_s3_bucket_name_valid("a.b-c"));
    CHECK(!mk_s3_bucket_name_valid("ab"));
    CHECK(!mk_s3_bucket_name_valid("Upper"));
    CHECK(!mk_s3_bucket_name_valid("a..b"));
    CHECK(!mk_s3_bucket_name_valid("-ab"));
    CHECK(!mk_s3_bucket_name_valid("ab-"));
    CHECK(!mk_s3_bucket_name_valid("_tmp"));
    CHECK(!mk_s3_bucket_name_valid("192.168.1.1"));
    CHECK(!mk_s3_bucket_name_valid("a/b"));
    CHECK(!mk_s3_bucket_name_valid(".."));
    CHECK(mk_s3_key_check("a/b/c.txt", 9) == MK_S3E_NONE);
    CHECK(mk_s3_key_check("a/..b/c", 7) == MK_S3E_NONE);
    CHECK(mk_s3_key_check("../etc/passwd", 13) == MK_S3E_INVALID_ARGUMENT);
    CHECK(mk_s3_key_check("a/../b", 6) == MK_S3E_INVALID_ARGUMENT);
    CHECK(mk_s3_key_check("a/.", 3) == MK_S3E_INVALID_ARGUMENT);
    CHECK(mk_s3_key_check("a\nb", 3) == MK_S3E_INVALID_ARGUMENT);
    CHECK(mk_s3_key_check("a\xff", 2) == MK_S3E_INVALID_ARGUMENT);
    CHECK(mk_s3_key_check("", 0) == MK_S3E_INVALID_ARGUMENT);
    char longkey[MK_S3_MAX_KEY + 2];
    memset(longkey, 'k', sizeof(longkey));
    CHECK(mk_s3_key_check(longkey, MK_S3_MAX_KEY) == MK_S3E_NONE);
    CHECK(mk_s3_key_check(longkey, MK_S3_MAX_KEY + 1) == MK_S3E_KEY_TOO_LONG);
    CHECK(mk_s3_utf8_valid("\xc3\xa9", 2));
    CHECK(!mk_s3_utf8_valid("\xc0\xaf", 2));      /* overlong '/' */
    CHECK(!mk_s3_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
    CHECK(!mk_s3_utf8_valid("\xe2\x82", 2));      /* cut short */
    CHECK(mk_s3_crc32(0, "123456789", 9) == 0xcbf43926u);
    CHECK(mk_s3_crc32(mk_s3_crc32(0, "1234", 4), "56789", 5) == 0xcbf43926u);
    CHECK(strcmp(mk_s3_err_code(MK_S3E_NO_SUCH_KEY), "NoSuchKey") == 0 && mk_s3_err_status(MK_S3E_INVALID_RANGE) == 416);
    mk_arena_free(&a);
}

/* ============================================================== signatures */

static mk_s3_req_t *mkreq(mk_arena_t *a, const char *method, const char *path, const char *query, int64_t now,
                          const char *const *hdrs)
{
    mk_s3_req_t *r = mk_arena_alloc(a, sizeof(*r));
    r->method = method;
    r->raw_path = path;
    r->raw_query = query;
    r->now_ms = now;
    int n = 0;
    while (hdrs[2 * n])
        n++;
    r->hdrs = mk_arena_alloc(a, sizeof(mk_s3_hdr_t) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        r->hdrs[i].name = hdrs[2 * i];
        r->hdrs[i].value = hdrs[2 * i + 1];
    }
    r->nhdrs = n;
    return r;
}

static int check_auth(const mk_s3_req_t *r, const char *ak, const char *sk, mk_arena_t *a, mk_s3_auth_t *o)
{
    mk_s3_query_t q;
    CHECK(mk_s3_query_parse(r->raw_query, a, &q) == 0);
    mk_s3_creds_t c = {ak, sk};
    mk_s3_auth_check(r, &q, &c, a, o);
    return o->err;
}

static void test_sig_v4(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    mk_s3_auth_t o;
    /* AWS's GET example; canonical request and signature as botocore's
     * S3SigV4Auth computes them */
    const char *h[] = {"host", "examplebucket.s3.amazonaws.com", "range", "bytes=0-9", "x-amz-content-sha256",
                       MK_S3_EMPTY_SHA256, "x-amz-date", "20130524T000000Z", "authorization",
                       "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;"
                       "range;x-amz-content-sha256;x-amz-date,Signature="
                       "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                       NULL};
    mk_s3_req_t *r = mkreq(&a, "GET", "/test.txt", "", T20130524 + 60000, h);
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_NONE);
    CHECK(o.version == 4 && !o.presigned && strcmp(o.payload, MK_S3_EMPTY_SHA256) == 0);
    CHECK(strcmp(o.canonical_request,
                 "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                 "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                 "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    CHECK(check_auth(r, AK, "wrong-secret-key", &a, &o) == MK_S3E_SIGNATURE_MISMATCH);
    CHECK(check_auth(r, "AKIAOTHER", SK, &a, &o) == MK_S3E_INVALID_ACCESS_KEY);
    r->now_ms = T20130524 + 3600 * 1000;
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_TIME_SKEWED);
    r->now_ms = T20130524;
    r->hdrs[1].value = "bytes=0-10"; /* a signed header changed */
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_SIGNATURE_MISMATCH);
    r->hdrs[1].value = "bytes=0-9";
    r->nhdrs = 4; /* no Authorization at all */
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_ACCESS_DENIED);
    const char *nosha[] = {"host", "h", "x-amz-date", "20130524T000000Z", "authorization",
                           "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;"
                           "x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
                           NULL};
    CHECK(check_auth(mkreq(&a, "GET", "/b/k", "", T20130524, nosha), AK, SK, &a, &o) == MK_S3E_INVALID_REQUEST);
    const char *bad[] = {"authorization", "AWS4-HMAC-SHA256 Credential=garbage", NULL};
    CHECK(check_auth(mkreq(&a, "GET", "/", "", T20130524, bad), AK, SK, &a, &o) == MK_S3E_AUTH_HEADER_MALFORMED);

    /* presigned, path style, a key with a space and a tilde (botocore's
     * S3SigV4QueryAuth, 86400 s) */
    const char *ph[] = {"host", "127.0.0.1:9000", NULL};
    const char *pq = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1"
                     "%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                     "&X-Amz-Signature=42c37318a8c33e7f90172cee0e4acc12a68e6d64923a3416dd94673e39515bb4";
    r = mkreq(&a, "GET", "/examplebucket/a%20b/c~d.txt", pq, T20130524 + 3600 * 1000, ph);
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_NONE && o.presigned && strcmp(o.payload, MK_S3_UNSIGNED) == 0);
    r->now_ms = T20130524 + 86401LL * 1000;
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_ACCESS_DENIED); /* expired */
    r->now_ms = T20130524;
    r->raw_path = "/examplebucket/a%20b/c~e.txt";
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_SIGNATURE_MISMATCH);
    mk_arena_free(&a);
}

static void test_sig_v2(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    mk_s3_auth_t o;
    int64_t t = 1175024202000LL; /* Tue, 27 Mar 2007 19:36:42 GMT */
    /* botocore's HmacV1Auth with that Date */
    const char *h1[] = {"date", "Tue, 27 Mar 2007 19:36:42 +0000", "authorization",
                        "AWS " AK ":bWq2s1WEIj+Ydj0vQ697zp+IXMU=", NULL};
    mk_s3_req_t *r = mkreq(&a, "GET", "/johnsmith/photos/puppy.jpg", "", t, h1);
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_NONE && o.version == 2);
    CHECK(strcmp(o.string_to_sign, "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg") == 0);
    CHECK(check_auth(r, AK, "another-secret", &a, &o) == MK_S3E_SIGNATURE_MISMATCH);
    CHECK(check_auth(r, "NOTME", SK, &a, &o) == MK_S3E_INVALID_ACCESS_KEY);
    r->now_ms = t + 20 * 60 * 1000;
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_TIME_SKEWED);

    /* sub-resources (sorted, decoded) and x-amz-meta headers (sorted) */
    const char *h2[] = {"date", "Tue, 27 Mar 2007 19:36:42 +0000", "content-md5", "XrY7u+Ae7tCTyyK7j1rNww==",
                        "content-type", "text/plain", "x-amz-meta-b", "two", "x-amz-meta-a", "one", "authorization",
                        "AWS " AK ":qOCnSnr2r5SQe92TK4AmWxlfsdk=", NULL};
    r = mkreq(&a, "PUT", "/b/k%20ey", "uploadId=abc&partNumber=2&other=1", t, h2);
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_NONE);
    /* x-amz-date with a Date too: botocore signs the Date line anyway */
    const char *h3[] = {"date", "Tue, 27 Mar 2007 19:36:42 +0000", "x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000",
                        "authorization", "AWS " AK ":5HmdjyX5JbuYxhD891Fa4c7Qo3w=", NULL};
    CHECK(check_auth(mkreq(&a, "GET", "/b/k", "", t, h3), AK, SK, &a, &o) == MK_S3E_NONE);
    /* x-amz-date alone (libs3): the Date line is empty, as AWS specifies */
    char sig[32];
    mk_s3_v2_sign(SK, "GET\n\n\n\nx-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\n/b/k?acl", sig);
    char auth[96];
    snprintf(auth, sizeof(auth), "AWS %s:%s", AK, sig);
    const char *h4[] = {"x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000", "authorization", auth, NULL};
    CHECK(check_auth(mkreq(&a, "GET", "/b/k", "acl", t, h4), AK, SK, &a, &o) == MK_S3E_NONE);
    /* presigned: Expires in the Date line */
    mk_s3_v2_sign(SK, "GET\n\n\n1175025000\n/b/k", sig);
    mk_buf_t qb;
    mk_buf_init(&qb);
    mk_buf_put(&qb, "AWSAccessKeyId=" AK "&Expires=1175025000&Signature=", strlen("AWSAccessKeyId=" AK "&Expires=1175025000&Signature="));
    mk_s3_uri_encode(&qb, sig, strlen(sig), false);
    mk_buf_put(&qb, "", 1);
    const char *none[] = {NULL};
    r = mkreq(&a, "GET", "/b/k", (const char *)qb.data, t, none);
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_NONE && o.presigned);
    r->now_ms = 1175025001000LL;
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_ACCESS_DENIED);
    mk_buf_free(&qb);
    const char *h5[] = {"authorization", "AWS nocolon", NULL};
    CHECK(check_auth(mkreq(&a, "GET", "/", "", t, h5), AK, SK, &a, &o) == MK_S3E_INVALID_ARGUMENT);
    mk_arena_free(&a);
}

/* ============================================================= aws-chunked */

static int sink_count(void *ud, const uint8_t *p, size_t n)
{
    size_t *count = ud;
    for (size_t i = 0; i < n; i++)
        if (p[i] != 'a')
            return MK_S3E_INTERNAL;
    *count += n;
    return 0;
}

static int sink_any(void *ud, const uint8_t *p, size_t n)
{
    (void)p;
    *(size_t *)ud += n;
    return 0;
}

/* AWS's chunked example: 66560 bytes of 'a' in chunks of 65536 and 1024. */
static void chunked_body(mk_buf_t *b, const char *sig1)
{
    static char a64[65536];
    memset(a64, 'a', sizeof(a64));
    const char *s1 = "10000;chunk-signature=";
    mk_buf_put(b, s1, strlen(s1));
    mk_buf_put(b, sig1, 64);
    mk_buf_put(b, "\r\n", 2);
    mk_buf_put(b, a64, 65536);
    const char *s2 = "\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n";
    mk_buf_put(b, s2, strlen(s2));
    mk_buf_put(b, a64, 1024);
    const char *s3 = "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n";
    mk_buf_put(b, s3, strlen(s3));
}

static void test_chunked(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    const char *h[] = {"host", "s3.amazonaws.com", "x-amz-date", "20130524T000000Z", "x-amz-storage-class",
                       "REDUCED_REDUNDANCY", "content-encoding", "aws-chunked", "x-amz-decoded-content-length", "66560",
                       "content-length", "66824", "x-amz-content-sha256", MK_S3_STREAMING, "authorization",
                       "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request,SignedHeaders="
                       "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                       "x-amz-decoded-content-length;x-amz-storage-class,Signature="
                       "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                       NULL};
    mk_s3_req_t *r = mkreq(&a, "PUT", "/examplebucket/chunkObject.txt", "", T20130524, h);
    mk_s3_auth_t o;
    CHECK(check_auth(r, AK, SK, &a, &o) == MK_S3E_NONE && strcmp(o.payload, MK_S3_STREAMING) == 0);

    mk_buf_t body;
    mk_buf_init(&body);
    chunked_body(&body, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    CHECK(body.len == 66824);
    /* whole, and in awkward pieces */
    for (size_t step = 1; step <= body.len; step = step * 7 + 1) {
        mk_s3_chunked_t c;
        mk_s3_chunked_init(&c, MK_S3_STREAMING, &o);
        size_t count = 0;
        for (size_t i = 0; i < body.len; i += step)
            CHECK(mk_s3_chunked_feed(&c, body.data + i, MK_MIN(step, body.len - i), sink_count, &count) == 0);
        CHECK(mk_s3_chunked_finish(&c) == MK_S3E_NONE && count == 66560 && c.decoded == 66560);
        mk_s3_chunked_free(&c);
    }
    /* a changed byte breaks the chain */
    mk_s3_chunked_t c;
    size_t count = 0;
    body.data[66000] = 'b'; /* in the second chunk */
    mk_s3_chunked_init(&c, MK_S3_STREAMING, &o);
    CHECK(mk_s3_chunked_feed(&c, body.data, body.len, sink_any, &count) == MK_S3E_SIGNATURE_MISMATCH);
    mk_s3_chunked_free(&c);
    body.data[66000] = 'a';
    /* a changed signature, a cut body, bytes after the end */
    mk_buf_t bad;
    mk_buf_init(&bad);
    chunked_body(&bad, "bd80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    mk_s3_chunked_init(&c, MK_S3_STREAMING, &o);
    count = 0;
    CHECK(mk_s3_chunked_feed(&c, bad.data, bad.len, sink_count, &count) == MK_S3E_SIGNATURE_MISMATCH);
    mk_s3_chunked_free(&c);
    mk_s3_chunked_init(&c, MK_S3_STREAMING, &o);
    CHECK(mk_s3_chunked_feed(&c, body.data, body.len - 10, sink_count, &count) == 0);
    CHECK(mk_s3_chunked_finish(&c) == MK_S3E_INCOMPLETE_BODY);
    mk_s3_chunked_free(&c);
    mk_s3_chunked_init(&c, MK_S3_STREAMING, &o);
    count = 0;
    CHECK(mk_s3_chunked_feed(&c, body.data, body.len, sink_count, &count) == 0);
    CHECK(mk_s3_chunked_feed(&c, (const uint8_t *)"x", 1, sink_count, &count) != 0);
    mk_s3_chunked_free(&c);
    /* garbage sizes and over-long lines */
    const char *garbage[] = {"zz;chunk-signature=x\r\n", "1234567890123456;chunk-signature=\r\n", ";\r\n"};
    for (size_t i = 0; i < MK_ARRAY_LEN(garbage); i++) {
        mk_s3_chunked_init(&c, MK_S3_STREAMING, &o);
        CHECK(mk_s3_chunked_feed(&c, (const uint8_t *)garbage[i], strlen(garbage[i]), sink_count, &count) != 0);
        mk_s3_chunked_free(&c);
    }
    char longline[2000];
    memset(longline, '1', sizeof(longline));
    mk_s3_chunked_init(&c, MK_S3_STREAMING_UNSIGNED_TRAILER, NULL);
    CHECK(mk_s3_chunked_feed(&c, (const uint8_t *)longline, sizeof(longline), sink_count, &count) != 0);
    mk_s3_chunked_free(&c);

    /* unsigned chunks with a trailer */
    const char *ut = "5\r\naaaaa\r\n3\r\naaa\r\n0\r\nx-amz-checksum-crc32c:sOO8/Q==\r\n\r\n";
    mk_s3_chunked_init(&c, MK_S3_STREAMING_UNSIGNED_TRAILER, NULL);
    count = 0;
    CHECK(mk_s3_chunked_feed(&c, (const uint8_t *)ut, strlen(ut), sink_count, &count) == 0);
    CHECK(mk_s3_chunked_finish(&c) == MK_S3E_NONE && count == 8);
    char tv[64];
    CHECK(mk_s3_chunked_trailer(&c, "x-amz-checksum-crc32c", tv, sizeof(tv)) && strcmp(tv, "sOO8/Q==") == 0);
    CHECK(!mk_s3_chunked_trailer(&c, "x-amz-checksum-crc32", tv, sizeof(tv)));
    mk_s3_chunked_free(&c);
    mk_buf_free(&body);
    mk_buf_free(&bad);
    mk_arena_free(&a);
}

/* ===================================================================== XML */

static void test_xml(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    const char *ok = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<Part><ETag>&quot;a1&quot;</ETag><PartNumber>1</PartNumber></Part>"
                     "<Part><PartNumber>2</PartNumber><ETag>b&#x32;</ETag></Part></CompleteMultipartUpload>";
    mk_s3_xnode_t *root = mk_s3_xml_parse(ok, strlen(ok), &a);
    CHECK(root && strcmp(root->name, "CompleteMultipartUpload") == 0);
    mk_s3_xnode_t *p1 = mk_s3_xml_child(root, "Part");
    CHECK(p1 && strcmp(mk_s3_xml_child(p1, "ETag")->text, "\"a1\"") == 0);
    CHECK(strcmp(mk_s3_xml_child(p1->next, "ETag")->text, "b2") == 0);
    CHECK(!mk_s3_xml_child(root, "Nope"));
    const char *prefixed = "<s3:Delete xmlns:s3=\"x\"><s3:Object><s3:Key>k &amp; v</s3:Key></s3:Object></s3:Delete>";
    root = mk_s3_xml_parse(prefixed, strlen(prefixed), &a);
    CHECK(root && strcmp(root->name, "Delete") == 0);
    CHECK(strcmp(mk_s3_xml_child(mk_s3_xml_child(root, "Object"), "Key")->text, "k & v") == 0);
    const char *refused[] = {
        "",
        "<a>",
        "<a></b>",
        "<a/><b/>",
        "not xml",
        "<a>\xff</a>",
        "<!DOCTYPE a [<!ENTITY x \"xx\">]><a>&x;</a>",
        "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><a>&lol2;</a>",
        "<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>",
        "<a>&undefined;</a>",
    };
    for (size_t i = 0; i < MK_ARRAY_LEN(refused); i++)
        CHECK(mk_s3_xml_parse(refused[i], strlen(refused[i]), &a) == NULL);
    /* depth is bounded */
    mk_buf_t deep;
    mk_buf_init(&deep);
    for (int i = 0; i < MK_S3_MAX_XML_DEPTH + 1; i++)
        mk_buf_put(&deep, "<a>", 3);
    for (int i = 0; i < MK_S3_MAX_XML_DEPTH + 1; i++)
        mk_buf_put(&deep, "</a>", 4);
    CHECK(mk_s3_xml_parse((const char *)deep.data, deep.len, &a) == NULL);
    deep.len = (MK_S3_MAX_XML_DEPTH) * 3;
    for (int i = 0; i < MK_S3_MAX_XML_DEPTH; i++)
        mk_buf_put(&deep, "</a>", 4);
    CHECK(mk_s3_xml_parse((const char *)deep.data, deep.len, &a) != NULL);
    mk_buf_free(&deep);
    mk_arena_free(&a);
}

/* ============================================================ object files */

static void test_objhdr(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    mk_s3_pair_t pairs[] = {{"content-type", "text/plain"}, {"x-amz-meta-who", "me"}};
    mk_buf_t b;
    mk_buf_init(&b);
    mk_s3_objhdr_encode(&b, "bkt", "a/key", 5, pairs, 2, 12345, T20130524, "0123456789abcdef0123456789abcdef-2");
    mk_s3_objhdr_t h;
    uint32_t need = 0;
    CHECK(mk_s3_objhdr_decode(b.data, b.len, &a, &h, &need) == 0);
    CHECK(h.size == 12345 && h.mtime_ms == T20130524 && strcmp(h.etag, "0123456789abcdef0123456789abcdef-2") == 0);
    CHECK(strcmp(h.bucket, "bkt") == 0 && h.key_len == 5 && memcmp(h.key, "a/key", 5) == 0);
    CHECK(h.npairs == 2 && strcmp(h.pairs[1].name, "x-amz-meta-who") == 0 && strcmp(h.pairs[1].value, "me") == 0);
    CHECK(h.data_off == b.len && need == b.len);
    CHECK(mk_s3_objhdr_decode(b.data, b.len - 1, &a, &h, &need) == MK_ERR_TRUNCATED && need == b.len);
    CHECK(mk_s3_objhdr_decode(b.data, 10, &a, &h, &need) == MK_ERR_TRUNCATED);
    for (size_t i = 0; i < b.len; i++) { /* every single-byte change is caught */
        b.data[i] ^= 0x40;
        int rc = mk_s3_objhdr_decode(b.data, b.len, &a, &h, NULL);
        CHECK(rc == MK_ERR_CORRUPT || rc == MK_ERR_TRUNCATED);
        b.data[i] ^= 0x40;
    }
    mk_buf_free(&b);
    mk_arena_free(&a);
}

/* =================================================================== store */

static void put_object(mk_s3_store_t *st, const char *bucket, const char *key, const char *data, size_t n)
{
    mk_s3_writer_t w;
    mk_s3_writer_init(&w);
    mk_s3_pair_t ct = {"content-type", "text/plain"};
    CHECK(mk_s3_writer_begin(st, &w, bucket, key, strlen(key), &ct, 1) == 0);
    CHECK(mk_s3_writer_write(&w, data, n / 2) == 0);
    CHECK(mk_s3_writer_write(&w, data + n / 2, n - n / 2) == 0);
    CHECK(mk_s3_writer_commit(st, &w, "00000000000000000000000000000000", mk_now_ms()) == 0);
}

static void read_object(mk_s3_store_t *st, const char *bucket, const char *key, char *out, size_t *n)
{
    mk_arena_t a;
    mk_arena_init(&a);
    int fd;
    mk_s3_objhdr_t h;
    mk_s3_bucket_t *b = mk_s3_store_bucket(st, bucket);
    CHECK(b && mk_s3_store_object_open(st, b, key, strlen(key), &a, &fd, &h) == 0);
    CHECK(pread(fd, out, h.size, h.data_off) == (ssize_t)h.size);
    *n = h.size;
    close(fd);
    mk_arena_free(&a);
}

static size_t count_dir(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", path);
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    CHECK(f && fscanf(f, "%zu", &n) == 1);
    pclose(f);
    return n;
}

static void test_store(void)
{
    char dir[] = "/tmp/s3d_test-XXXXXX";
    CHECK(mkdtemp(dir));
    mk_s3_store_counts_t counts = {0};
    mk_s3_store_t *st;
    char why[256];
    CHECK(mk_s3_store_open(dir, &counts, &st, why, sizeof(why)) == 0);
    CHECK(mk_s3_store_bucket_create(st, "one", 1000) == 0);
    CHECK(mk_s3_store_bucket_create(st, "one", 1000) == MK_ERR_EXISTS);
    CHECK(mk_s3_store_bucket_create(st, "Bad_Name", 1000) == MK_ERR_INVALID);
    CHECK(mk_s3_store_bucket_create(st, "two", 2000) == 0);
    CHECK(mk_s3_store_bucket_count(st) == 2 && atomic_load(&counts.buckets) == 2);
    put_object(st, "one", "b/2", "hello", 5);
    put_object(st, "one", "a/1", "world!", 6);
    put_object(st, "one", "../../escape", "x", 1); /* the store never makes paths of keys */
    put_object(st, "one", "b/2", "HELLO again", 11); /* replaced */
    mk_s3_bucket_t *b = mk_s3_store_bucket(st, "one");
    CHECK(mk_s3_bucket_count(b) == 3 && atomic_load(&counts.objects) == 3 && atomic_load(&counts.bytes) == 18);
    CHECK(strcmp(mk_s3_bucket_at(b, 0)->key, "../../escape") == 0 && strcmp(mk_s3_bucket_at(b, 2)->key, "b/2") == 0);
    char buf[64];
    size_t n;
    read_object(st, "one", "b/2", buf, &n);
    CHECK(n == 11 && memcmp(buf, "HELLO again", 11) == 0);
    char p[512];
    snprintf(p, sizeof(p), "%s/s3", dir);
    CHECK(count_dir(p) == 4); /* _tmp _uploads one two: nothing escaped */
    CHECK(mk_s3_store_bucket_delete(st, "one") == MK_ERR_STATE);

    /* an interrupted upload: its temporary file goes, nothing is indexed */
    mk_s3_writer_t w;
    mk_s3_writer_init(&w);
    CHECK(mk_s3_writer_begin(st, &w, "one", "partial", 7, NULL, 0) == 0);
    CHECK(mk_s3_writer_write(&w, "abc", 3) == 0);
    snprintf(p, sizeof(p), "%s/s3/_tmp", dir);
    CHECK(count_dir(p) == 1);
    mk_s3_writer_abort(st, &w);
    CHECK(count_dir(p) == 0 && !mk_s3_bucket_find(b, "partial", 7));
    /* one left behind (a crash) is removed at the next open */
    CHECK(mk_s3_writer_begin(st, &w, "one", "partial", 7, NULL, 0) == 0);
    CHECK(mk_s3_writer_write(&w, "abc", 3) == 0);
    close(w.fd);
    w.fd = -1;
    mk_s3_writer_abort(st, &w);

    /* multipart: two parts, the first big enough */
    char id[33];
    mk_s3_pair_t ct = {"content-type", "app/x"};
    CHECK(mk_s3_store_upload_create(st, "two", "big", 3, &ct, 1, 5000, id) == 0);
    CHECK(mk_s3_store_upload(st, id) && mk_s3_store_upload_count(st) == 1);
    size_t psz = (size_t)MK_S3_MIN_PART;
    char *part = malloc(psz);
    memset(part, 'p', psz);
    CHECK(mk_s3_writer_begin(st, &w, "two", "big", 3, NULL, 0) == 0);
    CHECK(mk_s3_writer_write(&w, part, psz) == 0);
    CHECK(mk_s3_writer_commit_part(st, &w, id, 1, "11111111111111111111111111111111", 6000) == 0);
    CHECK(mk_s3_writer_begin(st, &w, "two", "big", 3, NULL, 0) == 0);
    CHECK(mk_s3_writer_write(&w, "tail", 4) == 0);
    CHECK(mk_s3_writer_commit_part(st, &w, id, 2, "22222222222222222222222222222222", 6000) == 0);
    mk_arena_t a;
    mk_arena_init(&a);
    mk_s3_part_t *parts;
    int np;
    CHECK(mk_s3_store_upload_parts(st, id, &a, &parts, &np) == 0 && np == 2 && parts[1].size == 4);
    int nums[] = {1, 2};
    const char *tags_bad[] = {"11111111111111111111111111111111", "33333333333333333333333333333333"};
    const char *tags[] = {"11111111111111111111111111111111", "22222222222222222222222222222222"};
    char etag[MK_S3_ETAG_MAX + 1];
    int bad;
    CHECK(mk_s3_store_upload_complete(st, id, nums, tags_bad, 2, 7000, etag, &bad) == MK_ERR_INVALID && bad == 1);
    int rev[] = {2, 1};
    const char *rtags[] = {tags[1], tags[0]};
    CHECK(mk_s3_store_upload_complete(st, id, rev, rtags, 2, 7000, etag, &bad) == MK_ERR_RANGE); /* part 2 too small */
    CHECK(mk_s3_store_upload_complete(st, id, nums, tags, 2, 7000, etag, &bad) == 0);
    CHECK(strlen(etag) == 34 && strcmp(etag + 32, "-2") == 0);
    CHECK(!mk_s3_store_upload(st, id) && mk_s3_store_upload_complete(st, id, nums, tags, 2, 7000, etag, &bad) ==
                                             MK_ERR_NOT_FOUND);
    const mk_s3_obj_t *big = mk_s3_bucket_find(mk_s3_store_bucket(st, "two"), "big", 3);
    CHECK(big && big->size == psz + 4 && strcmp(big->etag, etag) == 0);
    /* an upload to abort */
    CHECK(mk_s3_store_upload_create(st, "two", "gone", 4, NULL, 0, 5000, id) == 0);
    CHECK(mk_s3_store_upload_abort(st, id) == 0 && mk_s3_store_upload_abort(st, id) == MK_ERR_NOT_FOUND);
    /* one left open across the restart */
    CHECK(mk_s3_store_upload_create(st, "two", "kept", 4, NULL, 0, 5000, id) == 0);
    mk_s3_store_close(st);

    /* reload: the same buckets, objects, sizes, ETags, metadata and upload */
    mk_s3_store_counts_t c2 = {0};
    CHECK(mk_s3_store_open(dir, &c2, &st, why, sizeof(why)) == 0);
    CHECK(atomic_load(&c2.buckets) == 2 && atomic_load(&c2.objects) == 4 &&
          atomic_load(&c2.bytes) == 18 + psz + 4 && atomic_load(&c2.uploads) == 1);
    snprintf(p, sizeof(p), "%s/s3/_tmp", dir);
    CHECK(count_dir(p) == 0);
    CHECK(mk_s3_store_upload(st, id) && strcmp(mk_s3_store_upload(st, id)->key, "kept") == 0);
    read_object(st, "one", "a/1", buf, &n);
    CHECK(n == 6 && memcmp(buf, "world!", 6) == 0);
    char *got = malloc(psz + 4);
    mk_s3_objhdr_t h;
    int fd;
    CHECK(mk_s3_store_object_open(st, mk_s3_store_bucket(st, "two"), "big", 3, &a, &fd, &h) == 0);
    CHECK(h.size == psz + 4 && pread(fd, got, psz + 4, h.data_off) == (ssize_t)(psz + 4));
    CHECK(memcmp(got, part, psz) == 0 && memcmp(got + psz, "tail", 4) == 0);
    CHECK(h.npairs == 1 && strcmp(h.pairs[0].value, "app/x") == 0);
    close(fd);
    free(got);
    free(part);
    /* copy a range into a part */
    CHECK(mk_s3_store_object_open(st, mk_s3_store_bucket(st, "one"), "b/2", 3, &a, &fd, &h) == 0);
    CHECK(mk_s3_writer_begin(st, &w, "one", "copy", 4, h.pairs, h.npairs) == 0);
    CHECK(mk_s3_writer_copy(&w, fd, h.data_off + 6, 5, NULL) == 0);
    CHECK(mk_s3_writer_commit(st, &w, "44444444444444444444444444444444", 8000) == 0);
    close(fd);
    read_object(st, "one", "copy", buf, &n);
    CHECK(n == 5 && memcmp(buf, "again", 5) == 0);
    /* deletes, then the bucket */
    b = mk_s3_store_bucket(st, "one");
    const char *keys[] = {"b/2", "a/1", "../../escape", "copy", "never-there"};
    for (size_t i = 0; i < MK_ARRAY_LEN(keys); i++)
        CHECK(mk_s3_store_object_delete(st, b, keys[i], strlen(keys[i])) == 0);
    CHECK(mk_s3_bucket_count(b) == 0);
    CHECK(mk_s3_store_bucket_delete(st, "one") == 0 && !mk_s3_store_bucket(st, "one"));
    CHECK(mk_s3_store_bucket_delete(st, "one") == MK_ERR_NOT_FOUND);
    /* a commit into a bucket that went away meanwhile */
    CHECK(mk_s3_store_bucket_create(st, "three", 1) == 0);
    CHECK(mk_s3_writer_begin(st, &w, "three", "k", 1, NULL, 0) == 0);
    CHECK(mk_s3_store_bucket_delete(st, "three") == 0);
    CHECK(mk_s3_writer_commit(st, &w, "55555555555555555555555555555555", 1) == MK_ERR_NOT_FOUND);
    mk_arena_free(&a);
    mk_s3_store_close(st);
    mk_rm_rf(dir);
}

/* ================================================================== module */

/* One request over a blocking socket; the answer (until the server closes
 * or the answer is complete) into out. */
static size_t http_call(int port, const char *req, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        out[n] = 0;
        const char *end = strstr(out, "\r\n\r\n"), *cl = strstr(out, "Content-Length: ");
        if (end && cl && n >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
            break;
    }
    out[n] = 0;
    close(fd);
    return n;
}

static void test_module(void)
{
    char dir[] = "/tmp/s3d_test-XXXXXX";
    CHECK(mkdtemp(dir));
    mk_s3d_opts_t o = {dir, "127.0.0.1", 0, "localhost", NULL, NULL, "first-bucket", NULL, 0};
    mk_s3d_t *s;
    char why[256];
    CHECK(mk_s3d_open(&o, &s, why, sizeof(why)) == 0);
    char url[64];
    snprintf(url, sizeof(url), "http://localhost:%d", mk_s3d_port(s));
    CHECK(strcmp(mk_s3d_url(s), url) == 0 && strcmp(mk_s3d_bucket(s), "first-bucket") == 0);
    CHECK(strlen(mk_s3d_access_key(s)) == 20 && strlen(mk_s3d_secret_key(s)) == 40);
    CHECK(strcmp(mk_s3d_region(s), "us-east-1") == 0);
    char ak[32], sk[64];
    snprintf(ak, sizeof(ak), "%s", mk_s3d_access_key(s));
    snprintf(sk, sizeof(sk), "%s", mk_s3d_secret_key(s));
    /* the server answers on its own thread while this one waits */
    char resp[4096];
    http_call(mk_s3d_port(s), "GET /first-bucket HTTP/1.1\r\nHost: x\r\n\r\n", resp, sizeof(resp));
    CHECK(strncmp(resp, "HTTP/1.1 403 ", 13) == 0 && strstr(resp, "<Code>AccessDenied</Code>"));
    CHECK(strstr(resp, "\r\nx-amz-request-id: ") && strstr(resp, "\r\nContent-Length: "));
    http_call(mk_s3d_port(s), "NOT HTTP\r\n\r\n", resp, sizeof(resp));
    CHECK(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
    /* a V2-signed ListBuckets */
    char date[32], sts[128], sig[32], req[512];
    mk_s3_http_date(mk_now_ms(), date);
    snprintf(sts, sizeof(sts), "GET\n\n\n%s\n/", date);
    mk_s3_v2_sign(sk, sts, sig);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nDate: %s\r\nAuthorization: AWS %s:%s\r\n\r\n", date,
             ak, sig);
    http_call(mk_s3d_port(s), req, resp, sizeof(resp));
    CHECK(strncmp(resp, "HTTP/1.1 200 ", 13) == 0 && strstr(resp, "<Name>first-bucket</Name>"));
    mk_s3d_stats_t st;
    mk_s3d_stats(s, &st);
    CHECK(st.buckets == 1 && st.objects == 0 && st.requests == 3 && st.errors == 2 && st.auth_failures == 1);
    CHECK(st.requests_by_op[MK_S3D_OP_LIST_BUCKETS] == 1 && st.requests_by_op[MK_S3D_OP_LIST_OBJECTS] == 1);
    CHECK(st.bytes_out > 0 && strcmp(mk_s3d_op_name(MK_S3D_OP_PUT_OBJECT), "PutObject") == 0);
    mk_s3d_close(s);
    /* the key pair is kept: a second open has the same one */
    CHECK(mk_s3d_open(&o, &s, why, sizeof(why)) == 0);
    CHECK(strcmp(mk_s3d_access_key(s), ak) == 0 && strcmp(mk_s3d_secret_key(s), sk) == 0);
    int port = mk_s3d_port(s);
    /* the port is taken: a second server on it fails cleanly */
    mk_s3d_opts_t o2 = o;
    o2.port = port;
    mk_s3d_t *s2;
    CHECK(mk_s3d_open(&o2, &s2, why, sizeof(why)) < 0 && why[0]);
    mk_s3d_close(s);
    /* keys must come as a pair, and be valid */
    o2.port = 0;
    o2.access_key = "ONLYKEY";
    CHECK(mk_s3d_open(&o2, &s2, why, sizeof(why)) == MK_ERR_INVALID);
    o2.secret_key = "has space";
    CHECK(mk_s3d_open(&o2, &s2, why, sizeof(why)) == MK_ERR_INVALID);
    CHECK(mk_s3d_access_key_valid("MK0123") && !mk_s3d_access_key_valid("a/b") && !mk_s3d_access_key_valid("ab"));
    CHECK(mk_s3d_secret_key_valid("12345678") && !mk_s3d_secret_key_valid("1234567"));
    mk_s3d_close(NULL);
    mk_rm_rf(dir);
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_ERROR + 1);
    test_codec();
    test_sig_v4();
    test_sig_v2();
    test_chunked();
    test_xml();
    test_objhdr();
    test_store();
    test_module();
    printf("s3d_test: ok\n");
    return 0;
}
