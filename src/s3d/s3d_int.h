/*
 * s3d_int.h -- internals shared by the files of s3d/, its unit test and its
 * fuzz target (not a public header: other modules include s3d/s3d.h).
 *
 *   codec.c   the text S3 needs: percent-encoding (AWS's rules), query
 *             strings, hex and base64, HTTP and ISO 8601 dates, Range
 *             headers, XML escaping, bucket-name and key checks (pure)
 *   sig.c     AWS signatures V2 and V4 (header and presigned), payload
 *             hashes, the aws-chunked body decoder with chunk signatures
 *             (OpenSSL)
 *   xml.c     the few request bodies S3 sends as XML, parsed with expat
 *             into a small bounded tree
 *   store.c   the objects on disk: buckets, the in-memory sorted index of
 *             each bucket, object files (header + data) written through a
 *             temporary file, multipart uploads
 *   http.c    the HTTP/1.1 server on the s3d loop: http_parser, bounded
 *             URL and headers, streamed request bodies, streamed file
 *             responses, 100-continue, S3's fixed headers and errors, on
 *             httpd/'s listener, writes and lingering close (shared with
 *             admin/)
 *   ops.c     the S3 operations: routing, authentication, bodies, XML
 *             answers and S3's errors; the handler http.c calls
 *   s3d.c     the module: open/close, the thread and its loop, the key
 *             pair, the counters
 *
 * Life of a request: bytes arrive -> http.c parses the request line and
 * headers (bounded) into an mk_s3_req_t -> ops.c's begin routes it, checks
 * its signature and prepares a body sink (a temporary file, a bounded XML
 * buffer, or nothing) -> body bytes go through ops.c's body (aws-chunked
 * decoding, hashing, writing) -> ops.c's complete verifies the payload and
 * commits, filling an mk_s3_resp_t -> http.c writes it (a small body, or a
 * file range streamed as the socket drains) -> ops.c's end releases the
 * request.  Everything runs on the s3d thread.
 *
 * Who calls whom (no two files call each other):
 *   s3d.c -> http.c, ops.c, store.c
 *   http.c -> the handler given to mk_s3_http_open() (ops.c) only
 *   ops.c -> store.c, sig.c, xml.c, codec.c
 *   store.c -> sig.c (digests), codec.c; sig.c -> codec.c
 *   xml.c, codec.c -> nothing of s3d/
 */
#ifndef MK_S3D_INT_H
#define MK_S3D_INT_H

#include "s3d/s3d.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <uv.h>

/* ==================================================================== limits */

#define MK_S3_MAX_URL 16384                  /* request target, bytes */
#define MK_S3_MAX_HEADER_BYTES 65536         /* all header names and values */
#define MK_S3_MAX_HEADERS 200                /* header lines */
#define MK_S3_MAX_KEY 1024                   /* object key, bytes (S3's limit) */
#define MK_S3_MAX_USER_META 2048             /* x-amz-meta-* names + values (S3's limit) */
#define MK_S3_MAX_META_VALUE 4096            /* one stored header's value */
#define MK_S3_MAX_XML ((size_t)2 << 20)      /* an XML request body */
#define MK_S3_MAX_XML_NODES 60000            /* elements in one XML body */
#define MK_S3_MAX_XML_DEPTH 16
#define MK_S3_MAX_DISCARD 65536              /* body of an operation that takes none */
#define MK_S3_MAX_CONNS 256                  /* open connections */
#define MK_S3_MAX_OUT ((size_t)4 << 20)      /* unsent bytes before reading pauses */
#define MK_S3_STREAM_CHUNK ((size_t)256 << 10) /* file bytes per write of a GET */
#define MK_S3_IDLE_MS 120000                 /* a silent connection is closed */
#define MK_S3_LINGER_MS 2000                 /* draining after a last answer */
#define MK_S3_DEFAULT_MAX_OBJECT ((uint64_t)5 << 30) /* one PUT or part: 5 GiB */
#define MK_S3_MIN_PART ((uint64_t)5 << 20)   /* every part but the last */
#define MK_S3_MAX_PARTS 10000
#define MK_S3_MAX_DELETE 1000                /* keys in one DeleteObjects */
#define MK_S3_MAX_BUCKETS 100
#define MK_S3_MAX_LIST 1000                  /* max-keys ceiling */
#define MK_S3_SKEW_MS (15 * 60 * 1000)       /* allowed clock difference */
#define MK_S3_MAX_PRESIGN_S 604800           /* X-Amz-Expires ceiling (7 days) */
#define MK_S3_ETAG_MAX 48                    /* "md5hex" or "md5hex-N", no quotes */

/* ==================================================================== errors */

/* S3's error codes: {enum, Code, HTTP status, Message}.  MK_S3E_NONE is 0. */
#define MK_S3_ERRORS(X)                                                                              \
    X(MK_S3E_NONE, "", 200, "")                                                                      \
    X(MK_S3E_ACCESS_DENIED, "AccessDenied", 403, "Access Denied")                                    \
    X(MK_S3E_AUTH_HEADER_MALFORMED, "AuthorizationHeaderMalformed", 400,                             \
      "The authorization header is malformed.")                                                      \
    X(MK_S3E_AUTH_QUERY_ERROR, "AuthorizationQueryParametersError", 400,                             \
      "Query-string authentication parameters are malformed.")                                      \
    X(MK_S3E_BAD_DIGEST, "BadDigest", 400, "The Content-MD5 you specified did not match what we received.") \
    X(MK_S3E_BUCKET_EXISTS, "BucketAlreadyOwnedByYou", 409,                                          \
      "Your previous request to create the named bucket succeeded and you already own it.")          \
    X(MK_S3E_BUCKET_NOT_EMPTY, "BucketNotEmpty", 409, "The bucket you tried to delete is not empty.") \
    X(MK_S3E_ENTITY_TOO_LARGE, "EntityTooLarge", 400,                                                \
      "Your proposed upload exceeds the maximum allowed object size.")                               \
    X(MK_S3E_ENTITY_TOO_SMALL, "EntityTooSmall", 400,                                                \
      "Your proposed upload is smaller than the minimum allowed object size.")                       \
    X(MK_S3E_INCOMPLETE_BODY, "IncompleteBody", 400,                                                 \
      "You did not provide the number of bytes specified by the Content-Length HTTP header.")        \
    X(MK_S3E_INTERNAL, "InternalError", 500, "We encountered an internal error. Please try again.")  \
    X(MK_S3E_INVALID_ACCESS_KEY, "InvalidAccessKeyId", 403,                                          \
      "The AWS Access Key Id you provided does not exist in our records.")                           \
    X(MK_S3E_INVALID_ARGUMENT, "InvalidArgument", 400, "Invalid Argument")                           \
    X(MK_S3E_INVALID_BUCKET_NAME, "InvalidBucketName", 400, "The specified bucket is not valid.")    \
    X(MK_S3E_INVALID_DIGEST, "InvalidDigest", 400, "The Content-MD5 you specified is not valid.")    \
    X(MK_S3E_INVALID_PART, "InvalidPart", 400,                                                       \
      "One or more of the specified parts could not be found. The part may not have been uploaded, " \
      "or the specified entity tag may not match the part's entity tag.")                            \
    X(MK_S3E_INVALID_PART_ORDER, "InvalidPartOrder", 400,                                            \
      "The list of parts was not in ascending order. Parts must be ordered by part number.")         \
    X(MK_S3E_INVALID_RANGE, "InvalidRange", 416, "The requested range is not satisfiable")           \
    X(MK_S3E_INVALID_REQUEST, "InvalidRequest", 400, "Invalid Request")                              \
    X(MK_S3E_INVALID_URI, "InvalidURI", 400, "Couldn't parse the specified URI.")                    \
    X(MK_S3E_KEY_TOO_LONG, "KeyTooLongError", 400, "Your key is too long.")                          \
    X(MK_S3E_MALFORMED_XML, "MalformedXML", 400,                                                     \
      "The XML you provided was not well-formed or did not validate against our published schema.") \
    X(MK_S3E_METADATA_TOO_LARGE, "MetadataTooLarge", 400,                                            \
      "Your metadata headers exceed the maximum allowed metadata size.")                             \
    X(MK_S3E_MAX_MESSAGE_LENGTH, "MaxMessageLengthExceeded", 400, "Your request was too big.")        \
    X(MK_S3E_METHOD_NOT_ALLOWED, "MethodNotAllowed", 405,                                            \
      "The specified method is not allowed against this resource.")                                  \
    X(MK_S3E_MISSING_LENGTH, "MissingContentLength", 411, "You must provide the Content-Length HTTP header.") \
    X(MK_S3E_MISSING_SECURITY_HEADER, "MissingSecurityHeader", 400,                                  \
      "Your request is missing a required header.")                                                  \
    X(MK_S3E_NO_SUCH_BUCKET, "NoSuchBucket", 404, "The specified bucket does not exist")             \
    X(MK_S3E_NO_SUCH_KEY, "NoSuchKey", 404, "The specified key does not exist.")                     \
    X(MK_S3E_NO_SUCH_UPLOAD, "NoSuchUpload", 404,                                                    \
      "The specified multipart upload does not exist. The upload ID may be invalid, or the upload "  \
      "may have been aborted or completed.")                                                         \
    X(MK_S3E_NO_SUCH_POLICY, "NoSuchBucketPolicy", 404, "The bucket policy does not exist")          \
    X(MK_S3E_NO_SUCH_CORS, "NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")  \
    X(MK_S3E_NO_SUCH_LIFECYCLE, "NoSuchLifecycleConfiguration", 404,                                 \
      "The lifecycle configuration does not exist")                                                  \
    X(MK_S3E_NO_SUCH_TAGSET, "NoSuchTagSet", 404, "The TagSet does not exist")                       \
    X(MK_S3E_NO_SUCH_WEBSITE, "NoSuchWebsiteConfiguration", 404,                                     \
      "The specified bucket does not have a website configuration")                                  \
    X(MK_S3E_NO_SUCH_ENCRYPTION, "ServerSideEncryptionConfigurationNotFoundError", 404,              \
      "The server side encryption configuration was not found")                                      \
    X(MK_S3E_NOT_IMPLEMENTED, "NotImplemented", 501,                                                 \
      "A header or query you provided implies functionality that is not implemented.")               \
    X(MK_S3E_NOT_MODIFIED, "NotModified", 304, "Not Modified")                                       \
    X(MK_S3E_PRECONDITION_FAILED, "PreconditionFailed", 412,                                         \
      "At least one of the preconditions you specified did not hold.")                               \
    X(MK_S3E_HEADERS_TOO_LARGE, "RequestHeaderSectionTooLarge", 400,                                 \
      "Your request header section exceeds the maximum allowed size.")                               \
    X(MK_S3E_URI_TOO_LONG, "RequestURITooLong", 414, "The request URI is too long.")                 \
    X(MK_S3E_TIME_SKEWED, "RequestTimeTooSkewed", 403,                                               \
      "The difference between the request time and the current time is too large.")                  \
    X(MK_S3E_SIGNATURE_MISMATCH, "SignatureDoesNotMatch", 403,                                       \
      "The request signature we calculated does not match the signature you provided. Check your "   \
      "key and signing method.")                                                                     \
    X(MK_S3E_SLOW_DOWN, "SlowDown", 503, "Please reduce your request rate.")                         \
    X(MK_S3E_TOO_MANY_BUCKETS, "TooManyBuckets", 400,                                                \
      "You have attempted to create more buckets than allowed.")                                     \
    X(MK_S3E_CONTENT_SHA256_MISMATCH, "XAmzContentSHA256Mismatch", 400,                              \
      "The provided 'x-amz-content-sha256' header does not match what was computed.")                \
    X(MK_S3E_BAD_CHECKSUM, "BadDigest", 400,                                                         \
      "The checksum you specified did not match the calculated checksum.")

enum {
#define MK_S3E_ENUM(e, code, status, msg) e,
    MK_S3_ERRORS(MK_S3E_ENUM)
#undef MK_S3E_ENUM
    MK_S3E_COUNT
};

const char *mk_s3_err_code(int e);
int mk_s3_err_status(int e);
const char *mk_s3_err_message(int e);

/* ============================================================ request, answer */

typedef struct mk_s3_hdr_s {
    const char *name;        /* lower case */
    const char *value;       /* as sent, leading and trailing blanks removed */
} mk_s3_hdr_t;

/* One request as http.c hands it over.  Everything lives in the arena, freed
 * after the answer is queued. */
typedef struct mk_s3_req_s {
    mk_arena_t arena;
    const char *method;       /* "GET", "PUT", ... */
    const char *raw_path;     /* the target's path as sent (percent-encoded) */
    const char *raw_query;    /* the query as sent, without '?'; "" if none */
    mk_s3_hdr_t *hdrs;
    int nhdrs;
    bool has_length;          /* Content-Length was given */
    uint64_t content_length;
    bool chunked;             /* Transfer-Encoding: chunked */
    bool expect_continue;
    int64_t now_ms;           /* wall clock at the headers */
    char id[17];              /* x-amz-request-id */
    void *op;                 /* ops.c's state for this request */
} mk_s3_req_t;

/* The first header of that (lower-case) name, or NULL. */
const char *mk_s3_req_header(const mk_s3_req_t *r, const char *name);

/* An answer: status, extra header lines, and a small body or a file range. */
typedef struct mk_s3_resp_s {
    int status;
    mk_buf_t head;            /* extra header lines, "Name: value\r\n" each */
    mk_buf_t body;            /* small body (XML) */
    const char *content_type; /* of body; NULL for none */
    int fd;                   /* >= 0: then stream [off, off + len) of it; owned */
    uint64_t off, len;
    bool head_only;           /* HEAD: Content-Length is len (or body.len), no body sent */
    bool close;               /* Connection: close after this answer */
    bool no_body;             /* 204 / 304: no Content-Length, no body */
} mk_s3_resp_t;

void mk_s3_resp_init(mk_s3_resp_t *r);
void mk_s3_resp_free(mk_s3_resp_t *r);   /* closes fd if still set */
void mk_s3_resp_header(mk_s3_resp_t *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* begin()'s answers */
enum { MK_S3_BODY = 0, MK_S3_ANSWERED = 1 };

/* What http.c calls; ops.c implements it.  All on the s3d thread. */
typedef struct mk_s3_handler_s {
    /* The headers are complete.  MK_S3_BODY: send me the body (body, then
     * complete); MK_S3_ANSWERED: resp is the answer and the body (if any)
     * is not read (the connection closes after the answer when one is
     * still coming). */
    int (*begin)(void *ud, mk_s3_req_t *req, mk_s3_resp_t *resp);
    /* A piece of the body.  MK_S3_BODY to go on, MK_S3_ANSWERED to stop
     * with resp as the answer (the connection closes after it). */
    int (*body)(void *ud, mk_s3_req_t *req, const uint8_t *p, size_t n, mk_s3_resp_t *resp);
    /* The whole body arrived: fill resp. */
    void (*complete)(void *ud, mk_s3_req_t *req, mk_s3_resp_t *resp);
    /* Called once for every answer or abandoned request, just before the
     * answer is queued (status) or when the connection went away first
     * (status 0).  req is NULL for an answer to bytes that never became a
     * request, and req->op is NULL when begin() was not reached. */
    void (*end)(void *ud, mk_s3_req_t *req, int status);
    /* Bytes counted for the stats (any thread reads them). */
    void (*count)(void *ud, uint64_t in, uint64_t out, int conns_delta);
} mk_s3_handler_t;

/* =================================================================== http.c */

typedef struct mk_s3_http_s mk_s3_http_t;

/* The fault switch (s3d.h, mk_s3d_fault_set): written by any thread, read
 * by http.c on the s3d thread.  One packed word, so a reader never sees
 * half of a change. */
typedef struct mk_s3_fault_state_s {
    _Atomic uint64_t word;    /* type | pct << 8 | status << 16 | delay_ms << 32 */
    _Atomic uint64_t injected;
} mk_s3_fault_state_t;

/* Listen on host:port (0: a free port) on loop.  0 and *out, or a negative
 * libuv/MK error with nothing left open.  Runs on the thread that will run
 * the loop (or before it runs). */
int mk_s3_http_open(uv_loop_t *loop, const char *host, int port, const mk_s3_handler_t *h, void *ud,
                    mk_s3_http_t **out);
int mk_s3_http_port(const mk_s3_http_t *s);
/* The fault switch http.c obeys (borrowed; NULL: none).  Before the loop runs. */
void mk_s3_http_set_fault(mk_s3_http_t *s, mk_s3_fault_state_t *f);
/* Close idle and lingering connections; called every second. */
void mk_s3_http_sweep(mk_s3_http_t *s, uint64_t now_ms);
/* Close the listener and every connection (end(status 0) for requests in
 * flight); memory goes in libuv close callbacks. */
void mk_s3_http_close(mk_s3_http_t *s);

/* ================================================================== codec.c */

/* Percent-decode [s, s+n) into dst (room for n + 1), NUL-terminated.
 * plus_space: '+' means ' ' (query strings).  The length, or -1 for a bad
 * escape or a decoded NUL byte. */
ssize_t mk_s3_pct_decode(const char *s, size_t n, bool plus_space, char *dst);
/* AWS's URI encoding: A-Z a-z 0-9 - _ . ~ stay, '/' stays if keep_slash,
 * every other byte becomes %XX (upper-case hex). */
void mk_s3_uri_encode(mk_buf_t *out, const char *s, size_t n, bool keep_slash);

typedef struct mk_s3_param_s {
    const char *name;         /* decoded */
    const char *value;        /* decoded; "" when there was no '=' */
    bool has_value;
    const char *raw_name, *raw_value;   /* as sent (not NUL-terminated) */
    size_t raw_name_len, raw_value_len;
} mk_s3_param_t;

typedef struct mk_s3_query_s {
    mk_s3_param_t *v;
    int n;
} mk_s3_query_t;

#define MK_S3_MAX_PARAMS 64
/* Split a raw query string ("a=1&b") into decoded parameters in the arena.
 * 0, or -1 for a bad escape, too many parameters or no memory. */
int mk_s3_query_parse(const char *raw, mk_arena_t *a, mk_s3_query_t *q);
/* The first parameter of that name, or NULL. */
const mk_s3_param_t *mk_s3_query_find(const mk_s3_query_t *q, const char *name);
const char *mk_s3_query_get(const mk_s3_query_t *q, const char *name);

void mk_s3_hex(const uint8_t *p, size_t n, char *out);         /* lower case, NUL */
/* Decode 2n hex digits; 0 or -1. */
int mk_s3_unhex(const char *s, size_t n, uint8_t *out);
/* Standard base64 with padding, NUL-terminated; returns the length. */
size_t mk_s3_base64(const uint8_t *p, size_t n, char *out);
/* Decode strict base64 (padding required); length or -1. */
ssize_t mk_s3_unbase64(const char *s, size_t n, uint8_t *out, size_t cap);

/* "Wed, 12 Oct 2009 17:50:00 GMT" (IMF-fixdate) and "2009-10-12T17:50:00.000Z". */
void mk_s3_http_date(int64_t ms, char out[32]);
void mk_s3_iso_date(int64_t ms, char out[32]);
/* HTTP dates (IMF-fixdate, RFC 850, asctime, and "+0000" zones as libs3
 * sends them); 0 and *ms or -1. */
int mk_s3_parse_http_date(const char *s, int64_t *ms);
/* ISO 8601 basic, "20130524T000000Z"; 0 and *ms or -1. */
int mk_s3_parse_amz_date(const char *s, int64_t *ms);

/* A Range header against an object of size bytes: 0 with [*off, *off+*len),
 * 1 when the header is to be ignored (not one bytes range: the whole object
 * is sent), -1 when unsatisfiable (416 InvalidRange). */
int mk_s3_range_parse(const char *v, uint64_t size, uint64_t *off, uint64_t *len);

/* Escape &, <, >, ", ' for XML text and attributes. */
void mk_s3_xml_escape(mk_buf_t *out, const char *s, size_t n);
/* <name>escaped text</name> */
void mk_s3_xml_elem(mk_buf_t *out, const char *name, const char *text);

bool mk_s3_utf8_valid(const char *s, size_t n);
/* CRC-32 (IEEE, as zlib and x-amz-checksum-crc32 compute it); chain from 0. */
uint32_t mk_s3_crc32(uint32_t crc, const void *p, size_t n);
/* S3's bucket naming rules: 3..63 of a-z 0-9 . -, a letter or digit at
 * both ends, no "..", not an IPv4 address. */
bool mk_s3_bucket_name_valid(const char *s);
/* A key: 1..MK_S3_MAX_KEY bytes of valid UTF-8 without control characters,
 * and no path segment "." or "..".  MK_S3E_NONE or the error to answer. */
int mk_s3_key_check(const char *key, size_t n);

/* ==================================================================== sig.c */

/* Streaming digests (OpenSSL EVP). */
typedef struct mk_s3_hash_s {
    EVP_MD_CTX *ctx;          /* NULL when off */
} mk_s3_hash_t;

int mk_s3_hash_init(mk_s3_hash_t *h, const EVP_MD *md);   /* 0 or MK_ERR_NOMEM */
void mk_s3_hash_update(mk_s3_hash_t *h, const void *p, size_t n);
/* Final digest into out (room for EVP_MAX_MD_SIZE); its length.  Frees. */
size_t mk_s3_hash_final(mk_s3_hash_t *h, uint8_t *out);
void mk_s3_hash_free(mk_s3_hash_t *h);
/* hex(SHA-256(p, n)) */
void mk_s3_sha256_hex(const void *p, size_t n, char out[65]);

#define MK_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MK_S3_UNSIGNED "UNSIGNED-PAYLOAD"
#define MK_S3_STREAMING "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define MK_S3_STREAMING_TRAILER "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define MK_S3_STREAMING_UNSIGNED_TRAILER "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

typedef struct mk_s3_creds_s {
    const char *access_key;
    const char *secret_key;
} mk_s3_creds_t;

/* What a request's signature check found. */
typedef struct mk_s3_auth_s {
    int version;              /* 2 or 4 (0 before a check) */
    bool presigned;
    int err;                  /* MK_S3E_* (NONE: authenticated) */
    const char *why;          /* a sentence for the error's Message, or NULL */
    const char *access_key;   /* the one the request named (arena), or NULL */
    /* V4: what the aws-chunked decoder needs to check chunk signatures */
    const char *payload;      /* the x-amz-content-sha256 value, or UNSIGNED-PAYLOAD */
    uint8_t signing_key[32];
    char seed[65];            /* the request's signature, hex */
    char amz_date[17];        /* 20130524T000000Z */
    char scope[192];          /* 20130524/us-east-1/s3/aws4_request */
    /* For SignatureDoesNotMatch bodies (arena; may be NULL) */
    const char *string_to_sign;
    const char *canonical_request;
} mk_s3_auth_t;

/* Check the request's signature (V2 or V4, Authorization header or
 * presigned query) with the one key pair, at now_ms.  Fills *out; out->err
 * is MK_S3E_NONE when the request is authentic.  A request with no
 * signature at all is AccessDenied. */
void mk_s3_auth_check(const mk_s3_req_t *req, const mk_s3_query_t *q, const mk_s3_creds_t *creds,
                      mk_arena_t *a, mk_s3_auth_t *out);

/* The pieces, for the unit test: V2's StringToSign (date_line NULL: from
 * the headers, else that line, e.g. the Expires of a presigned URL) and its
 * base64 HMAC-SHA1; V4's canonical request (raw_path: the path as sent,
 * else decoded and encoded again by AWS's rules), signing key and hex
 * signature. */
char *mk_s3_v2_string_to_sign(const mk_s3_req_t *req, const mk_s3_query_t *q, const char *date_line,
                              bool decoded_path, mk_arena_t *a);
void mk_s3_v2_sign(const char *secret, const char *sts, char out[32]);
char *mk_s3_v4_canonical_request(const mk_s3_req_t *req, const mk_s3_query_t *q, const char *signed_headers,
                                 const char *payload, bool raw_path, mk_arena_t *a);
void mk_s3_v4_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                          uint8_t out[32]);
void mk_s3_v4_hmac_hex(const uint8_t key[32], const char *msg, char out[65]);

/* The aws-chunked body decoder: "hex-size[;chunk-signature=sig]\r\n" data
 * "\r\n" ..., a 0-size chunk, then trailers ("name:value\r\n") and "\r\n".
 * With signed chunks every chunk's signature is checked against the seed
 * signature chain; with a trailer, x-amz-trailer-signature too (signed) and
 * any x-amz-checksum-* trailer against the data. */
typedef struct mk_s3_chunked_s {
    int state;
    bool signed_chunks;
    bool trailer;
    const mk_s3_auth_t *auth; /* borrowed (signed) */
    char prev_sig[65];
    char chunk_sig[65];
    uint64_t left;            /* data bytes left in this chunk */
    uint64_t decoded;         /* data bytes so far */
    char line[512];           /* a chunk header or trailer line, bounded */
    size_t line_len;
    mk_s3_hash_t chunk_hash;  /* SHA-256 of the current chunk (signed) */
    mk_buf_t trailers;        /* canonical trailers "name:value\n" (bounded) */
    char trailer_sig[65];
    int err;                  /* sticky MK_S3E_* */
} mk_s3_chunked_t;

/* mode: the x-amz-content-sha256 value (one of the STREAMING ones). */
int mk_s3_chunked_init(mk_s3_chunked_t *c, const char *mode, const mk_s3_auth_t *auth);
/* Decode raw body bytes, passing data to sink.  MK_S3E_NONE, or the error
 * (sticky; the sink's non-zero return is passed on as is). */
typedef int (*mk_s3_sink_fn)(void *ud, const uint8_t *p, size_t n);
int mk_s3_chunked_feed(mk_s3_chunked_t *c, const uint8_t *p, size_t n, mk_s3_sink_fn sink, void *ud);
/* The body ended: MK_S3E_NONE if it ended where the encoding does. */
int mk_s3_chunked_finish(mk_s3_chunked_t *c);
/* A trailer's value ("x-amz-checksum-crc32c"), or NULL. */
const char *mk_s3_chunked_trailer(const mk_s3_chunked_t *c, const char *name, char *out, size_t n);
void mk_s3_chunked_free(mk_s3_chunked_t *c);

/* ==================================================================== xml.c */

typedef struct mk_s3_xnode_s mk_s3_xnode_t;
struct mk_s3_xnode_s {
    const char *name;         /* local name (any "prefix:" removed) */
    const char *text;         /* the element's own character data */
    size_t text_len;
    mk_s3_xnode_t *child;     /* first child element */
    mk_s3_xnode_t *next;      /* next sibling */
};

/* Parse a whole XML document (a request body) into a tree in the arena.
 * NULL when it is not well-formed, has a DOCTYPE, is deeper than
 * MK_S3_MAX_XML_DEPTH or has more than MK_S3_MAX_XML_NODES elements. */
mk_s3_xnode_t *mk_s3_xml_parse(const char *p, size_t n, mk_arena_t *a);
/* The first child element of that name, or NULL. */
mk_s3_xnode_t *mk_s3_xml_child(const mk_s3_xnode_t *n, const char *name);

/* ================================================================== store.c */

typedef struct mk_s3_store_s mk_s3_store_t;
typedef struct mk_s3_bucket_s mk_s3_bucket_t;

/* One object of a bucket's index (sorted by key bytes). */
typedef struct mk_s3_obj_s {
    char *key;                /* owned, NUL-terminated */
    size_t key_len;
    uint64_t size;
    int64_t mtime_ms;
    char etag[MK_S3_ETAG_MAX + 1];
} mk_s3_obj_t;

/* A stored header of an object: content-type, content-encoding,
 * content-disposition, content-language, cache-control, expires,
 * x-amz-meta-*. */
typedef struct mk_s3_pair_s {
    const char *name;         /* lower case */
    const char *value;
} mk_s3_pair_t;

/* An object file's header, as read back. */
typedef struct mk_s3_objhdr_s {
    uint64_t size;
    int64_t mtime_ms;
    char etag[MK_S3_ETAG_MAX + 1];
    const char *bucket;       /* arena */
    const char *key;
    size_t key_len;
    mk_s3_pair_t *pairs;
    int npairs;
    uint32_t data_off;        /* where the data starts in the file */
} mk_s3_objhdr_t;

typedef struct mk_s3_upload_s {
    char id[33];
    char *bucket;             /* owned */
    char *key;
    size_t key_len;
    int64_t initiated_ms;
} mk_s3_upload_t;

/* Counters the store keeps current (read from any thread). */
typedef struct mk_s3_store_counts_s {
    _Atomic uint64_t buckets, objects, bytes, uploads;
} mk_s3_store_counts_t;

/* Open DATA/s3 (made if missing): load buckets, objects and uploads; empty
 * _tmp/.  0 and *out, or MK_ERR_IO / MK_ERR_NOMEM with why filled. */
int mk_s3_store_open(const char *data_dir, mk_s3_store_counts_t *counts, mk_s3_store_t **out, char *why,
                     size_t why_len);
void mk_s3_store_close(mk_s3_store_t *st);
const char *mk_s3_store_root(const mk_s3_store_t *st);

/* Buckets. */
int mk_s3_store_bucket_count(const mk_s3_store_t *st);
mk_s3_bucket_t *mk_s3_store_bucket_at(mk_s3_store_t *st, int i);    /* by name */
mk_s3_bucket_t *mk_s3_store_bucket(mk_s3_store_t *st, const char *name);
const char *mk_s3_bucket_name(const mk_s3_bucket_t *b);
int64_t mk_s3_bucket_created_ms(const mk_s3_bucket_t *b);
/* 0, MK_ERR_EXISTS, MK_ERR_RANGE (too many), MK_ERR_IO. */
int mk_s3_store_bucket_create(mk_s3_store_t *st, const char *name, int64_t now_ms);
/* 0, MK_ERR_NOT_FOUND, MK_ERR_STATE (not empty), MK_ERR_IO.  Aborts the
 * bucket's multipart uploads. */
int mk_s3_store_bucket_delete(mk_s3_store_t *st, const char *name);

/* A bucket's index. */
size_t mk_s3_bucket_count(const mk_s3_bucket_t *b);
const mk_s3_obj_t *mk_s3_bucket_at(const mk_s3_bucket_t *b, size_t i);
/* Index of the first key >= key (count if none). */
size_t mk_s3_bucket_lower_bound(const mk_s3_bucket_t *b, const char *key, size_t len);
const mk_s3_obj_t *mk_s3_bucket_find(const mk_s3_bucket_t *b, const char *key, size_t len);

/* Open an object for reading: fd (caller owns) and its header (arena).
 * 0, MK_ERR_NOT_FOUND, MK_ERR_CORRUPT or MK_ERR_IO. */
int mk_s3_store_object_open(mk_s3_store_t *st, const mk_s3_bucket_t *b, const char *key, size_t key_len,
                            mk_arena_t *a, int *fd, mk_s3_objhdr_t *hdr);
/* 0 (also when missing) or MK_ERR_IO. */
int mk_s3_store_object_delete(mk_s3_store_t *st, mk_s3_bucket_t *b, const char *key, size_t key_len);

/* A new object or part being written: a temporary file in _tmp/ whose
 * header space is reserved up front (the metadata is known; size and ETag
 * are fixed-width and written at commit). */
typedef struct mk_s3_writer_s {
    int fd;                   /* -1 when idle */
    char path[64];            /* _tmp/<name>, relative to the store root */
    uint32_t hdr_len;
    uint64_t written;         /* data bytes */
    mk_buf_t hdr;             /* the header as reserved */
    char bucket[64];          /* where it goes */
    char *key;                /* owned */
    size_t key_len;
} mk_s3_writer_t;

void mk_s3_writer_init(mk_s3_writer_t *w);
/* Start a file for bucket/key with these stored headers.  0 or MK_ERR_IO. */
int mk_s3_writer_begin(mk_s3_store_t *st, mk_s3_writer_t *w, const char *bucket, const char *key, size_t key_len,
                       const mk_s3_pair_t *pairs, int npairs);
/* Append data.  0 or MK_ERR_IO (disk full, ...). */
int mk_s3_writer_write(mk_s3_writer_t *w, const void *p, size_t n);
/* Append [off, off+len) of an open file (fd), hashing it into h if not
 * NULL.  0, MK_ERR_IO or MK_ERR_NOMEM. */
int mk_s3_writer_copy(mk_s3_writer_t *w, int fd, uint64_t off, uint64_t len, mk_s3_hash_t *h);
/* Finish as the object bucket/key given at begin: header, fsync, rename,
 * index.  0, MK_ERR_NOT_FOUND (the bucket went away meanwhile) or
 * MK_ERR_IO.  The writer is idle after it either way. */
int mk_s3_writer_commit(mk_s3_store_t *st, mk_s3_writer_t *w, const char *etag, int64_t mtime_ms);
/* Drop the temporary file.  Idle writers are fine. */
void mk_s3_writer_abort(mk_s3_store_t *st, mk_s3_writer_t *w);

/* Multipart uploads. */
int mk_s3_store_upload_count(const mk_s3_store_t *st);
const mk_s3_upload_t *mk_s3_store_upload_at(const mk_s3_store_t *st, int i);
const mk_s3_upload_t *mk_s3_store_upload(const mk_s3_store_t *st, const char *id);
/* 0 and id (33 bytes), or MK_ERR_IO. */
int mk_s3_store_upload_create(mk_s3_store_t *st, const char *bucket, const char *key, size_t key_len,
                              const mk_s3_pair_t *pairs, int npairs, int64_t now_ms, char id[33]);
/* Finish a part (written with mk_s3_writer_begin) as part number of the
 * upload.  0, MK_ERR_NOT_FOUND (no such upload) or MK_ERR_IO. */
int mk_s3_writer_commit_part(mk_s3_store_t *st, mk_s3_writer_t *w, const char *upload_id, int number,
                             const char *etag, int64_t mtime_ms);

typedef struct mk_s3_part_s {
    int number;
    uint64_t size;
    int64_t mtime_ms;
    char etag[MK_S3_ETAG_MAX + 1];
} mk_s3_part_t;

/* The parts uploaded so far, by number (arena).  0 or MK_ERR_NOT_FOUND. */
int mk_s3_store_upload_parts(mk_s3_store_t *st, const char *id, mk_arena_t *a, mk_s3_part_t **parts, int *n);
/* The stored headers given at initiation (arena). */
int mk_s3_store_upload_meta(mk_s3_store_t *st, const char *id, mk_arena_t *a, mk_s3_objhdr_t *hdr);
/* Assemble the listed parts (numbers ascending, ETags matching) into the
 * object, then drop the upload.  0 with etag filled; MK_ERR_NOT_FOUND (no
 * upload or bucket), MK_ERR_INVALID (*bad_part: a missing part or wrong
 * ETag), MK_ERR_RANGE (a part but the last smaller than MK_S3_MIN_PART),
 * MK_ERR_IO. */
int mk_s3_store_upload_complete(mk_s3_store_t *st, const char *id, const int *numbers, const char *const *etags,
                                int n, int64_t now_ms, char etag[MK_S3_ETAG_MAX + 1], int *bad_part);
/* 0 or MK_ERR_NOT_FOUND. */
int mk_s3_store_upload_abort(mk_s3_store_t *st, const char *id);

/* Stored header names that an object keeps (lower case). */
bool mk_s3_stored_header(const char *name);

/* The object file header, for the unit and fuzz tests: encode / decode. */
void mk_s3_objhdr_encode(mk_buf_t *out, const char *bucket, const char *key, size_t key_len,
                         const mk_s3_pair_t *pairs, int npairs, uint64_t size, int64_t mtime_ms, const char *etag);
/* 0, or MK_ERR_CORRUPT / MK_ERR_TRUNCATED (*need: the header length). */
int mk_s3_objhdr_decode(const uint8_t *p, size_t n, mk_arena_t *a, mk_s3_objhdr_t *h, uint32_t *need);

/* ==================================================================== ops.c */

typedef struct mk_s3_ops_s mk_s3_ops_t;

typedef struct mk_s3_counters_s {
    _Atomic uint64_t requests, errors, errors_5xx, auth_failures, bytes_in, bytes_out, connections;
    _Atomic uint64_t by_op[MK_S3D_OP_COUNT];
} mk_s3_counters_t;

typedef struct mk_s3_ops_opts_s {
    mk_s3_store_t *store;     /* borrowed */
    mk_s3_creds_t creds;      /* borrowed strings */
    const char *region;
    uint64_t max_object_bytes;
    mk_s3_counters_t *counters;
} mk_s3_ops_opts_t;

mk_s3_ops_t *mk_s3_ops_new(const mk_s3_ops_opts_t *o);
void mk_s3_ops_free(mk_s3_ops_t *ops);
/* The handler for mk_s3_http_open(); ud is the mk_s3_ops_t. */
const mk_s3_handler_t *mk_s3_ops_handler(void);

#endif /* MK_S3D_INT_H */
