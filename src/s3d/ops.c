/*
 * ops.c -- the S3 operations of the bundled server: the handler http.c
 * calls (begin, body, complete, end), routing, authentication, request
 * bodies and S3's XML answers and errors.
 *
 * Routing is path style: "/" is the service, "/bucket" a bucket,
 * "/bucket/key" an object; the method and the sub-resources of the query
 * (?uploads, ?uploadId=, ?partNumber=, ?delete, ?location, ?acl, ...) pick
 * the operation (see route()).  The route is decided first, for the
 * counters, then the signature is checked (sig.c), then the route's own
 * errors are answered: a request that is not authentic learns nothing about
 * buckets and keys.
 *
 * Bodies: at begin() every operation states what it takes.
 *   file     PutObject, UploadPart: a temporary file (store.c), opened only
 *            after the bucket or upload, the key, the metadata and the
 *            declared size were checked, so a refused upload costs nothing;
 *   xml      CompleteMultipartUpload, DeleteObjects, CreateBucket, PUT ?acl:
 *            kept in memory up to MK_S3_MAX_XML;
 *   discard  everything else: up to MK_S3_MAX_DISCARD bytes, read and hashed
 *            but not kept.
 * Every body goes through the same sink: the aws-chunked decoder first
 * when the client streams (STREAMING-* payloads: chunk signatures checked
 * as they arrive), then SHA-256 (when x-amz-content-sha256 names a digest),
 * MD5 (the ETag, and Content-MD5), an x-amz-checksum-* if one was given,
 * and the byte count against the declared length.  complete() checks all
 * of them before anything is committed: a body that does not match its
 * hashes is never stored.
 *
 * Answers: XML by hand with escaping (codec.c), S3's element names and
 * namespace; errors as <Error><Code>..</Code><Message>..</Message>... with
 * S3's status for the code.  Header names are S3's spellings.
 *
 * Threads: the s3d thread only; the counters are atomics (s3d.c reads them).
 */
#include "s3d/s3d_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define OWNER "<Owner><ID>minikora</ID><DisplayName>minikora</DisplayName></Owner>"

struct mk_s3_ops_s {
    mk_s3_store_t *store;
    mk_s3_creds_t creds;
    const char *region;
    uint64_t max_object;
    mk_s3_counters_t *ctr;
};

enum { BODY_DISCARD, BODY_XML, BODY_FILE };
enum { CK_NONE, CK_CRC32, CK_CRC32C, CK_SHA1, CK_SHA256 };

typedef struct op_s {
    int op;                   /* MK_S3D_OP_* */
    int route_err;            /* an error the route found (answered after auth) */
    const char *route_why;
    char *bucket;             /* decoded; "" for the service */
    char *key;                /* decoded; "" for a bucket */
    size_t key_len;
    mk_s3_query_t q;
    mk_s3_auth_t auth;
    int body;                 /* BODY_* */
    mk_buf_t xml;
    uint64_t received;        /* decoded body bytes */
    uint64_t limit;           /* most decoded bytes accepted */
    bool has_expect;          /* expect_len is known */
    uint64_t expect_len;
    bool aws_chunked;
    mk_s3_chunked_t ch;
    bool ch_init;
    mk_s3_hash_t sha256;      /* x-amz-content-sha256 is a digest */
    mk_s3_hash_t md5;
    uint8_t want_md5[16];
    bool has_md5;
    int ck;                   /* CK_*: x-amz-checksum-* to check */
    const char *ck_name;      /* its header name */
    uint32_t crc;
    mk_s3_hash_t ck_hash;
    mk_s3_writer_t w;
    int part;                 /* UploadPart: part number */
    const char *upload_id;
    int err;                  /* sticky error found in the body */
} op_t;

const char *mk_s3d_op_name(int op)
{
    static const char *const names[] = {
#define MK_S3D_OP_NAME(e, name) name,
        MK_S3D_OPS(MK_S3D_OP_NAME)
#undef MK_S3D_OP_NAME
    };
    return op >= 0 && op < MK_S3D_OP_COUNT ? names[op] : "Unknown";
}

/* ================================================================ answers */

static void xml_start(mk_s3_resp_t *r, const char *root)
{
    r->content_type = "application/xml";
    mk_buf_put(&r->body, XML_DECL, strlen(XML_DECL));
    mk_buf_put(&r->body, "<", 1);
    mk_buf_put(&r->body, root, strlen(root));
    mk_buf_put(&r->body, " xmlns=\"" XMLNS "\">", strlen(" xmlns=\"" XMLNS "\">"));
}

static void xml_end(mk_s3_resp_t *r, const char *root)
{
    mk_buf_put(&r->body, "</", 2);
    mk_buf_put(&r->body, root, strlen(root));
    mk_buf_put(&r->body, ">", 1);
}

static void xml_u64(mk_buf_t *b, const char *name, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
    mk_s3_xml_elem(b, name, t);
}

static void xml_etag(mk_buf_t *b, const char *etag)
{
    char t[MK_S3_ETAG_MAX + 4];
    snprintf(t, sizeof(t), "\"%s\"", etag);
    mk_s3_xml_elem(b, "ETag", t);
}

static void xml_date(mk_buf_t *b, const char *name, int64_t ms)
{
    char d[32];
    mk_s3_iso_date(ms, d);
    mk_s3_xml_elem(b, name, d);
}

/* A text that may be quoted in XML: valid UTF-8, else "?". */
static void xml_text(mk_buf_t *b, const char *name, const char *s, size_t n)
{
    if (!mk_s3_utf8_valid(s, n)) {
        s = "?";
        n = 1;
    }
    mk_buf_put(b, "<", 1);
    mk_buf_put(b, name, strlen(name));
    mk_buf_put(b, ">", 1);
    mk_s3_xml_escape(b, s, n);
    mk_buf_put(b, "</", 2);
    mk_buf_put(b, name, strlen(name));
    mk_buf_put(b, ">", 1);
}

/* The error answer, with what S3 adds for some codes. */
static int fail(op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r, int err, const char *why)
{
    mk_buf_reset(&r->body);
    mk_buf_reset(&r->head);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->head_only = false;
    r->status = mk_s3_err_status(err);
    if (err == MK_S3E_NOT_MODIFIED) {
        r->no_body = true;
        return MK_S3_ANSWERED;
    }
    r->content_type = "application/xml";
    mk_buf_t *b = &r->body;
    mk_buf_put(b, XML_DECL "<Error>", strlen(XML_DECL "<Error>"));
    mk_s3_xml_elem(b, "Code", mk_s3_err_code(err));
    mk_s3_xml_elem(b, "Message", why ? why : mk_s3_err_message(err));
    if (op) {
        if (op->bucket && op->bucket[0])
            xml_text(b, "BucketName", op->bucket, strlen(op->bucket));
        if (op->key && op->key_len && (err == MK_S3E_NO_SUCH_KEY || err == MK_S3E_KEY_TOO_LONG ||
                                       err == MK_S3E_PRECONDITION_FAILED))
            xml_text(b, "Key", op->key, MK_MIN(op->key_len, (size_t)MK_S3_MAX_KEY));
        if (op->upload_id && err == MK_S3E_NO_SUCH_UPLOAD)
            xml_text(b, "UploadId", op->upload_id, strlen(op->upload_id));
        if (err == MK_S3E_SIGNATURE_MISMATCH || err == MK_S3E_INVALID_ACCESS_KEY) {
            if (op->auth.access_key)
                xml_text(b, "AWSAccessKeyId", op->auth.access_key, strlen(op->auth.access_key));
            if (err == MK_S3E_SIGNATURE_MISMATCH && op->auth.string_to_sign)
                xml_text(b, "StringToSign", op->auth.string_to_sign, strlen(op->auth.string_to_sign));
            if (err == MK_S3E_SIGNATURE_MISMATCH && op->auth.canonical_request)
                xml_text(b, "CanonicalRequest", op->auth.canonical_request,
                         strlen(op->auth.canonical_request));
        }
    }
    if (req) {
        xml_text(b, "Resource", req->raw_path, strlen(req->raw_path));
        mk_s3_xml_elem(b, "RequestId", req->id);
        mk_s3_xml_elem(b, "HostId", "minikora");
    }
    mk_buf_put(b, "</Error>", 8);
    return MK_S3_ANSWERED;
}

/* ================================================================ routing */

static bool has(const op_t *op, const char *name) { return mk_s3_query_find(&op->q, name) != NULL; }

/* Bucket sub-resources we answer from a canned state (nothing configured). */
static const char *const bucket_config[] = {"acl", "versioning", "policy", "cors", "lifecycle", "tagging",
                                            "website", "encryption", "logging", "requestPayment",
                                            "notification", "replication", "accelerate", "object-lock",
                                            "ownershipControls", "publicAccessBlock", "policyStatus",
                                            "analytics", "metrics", "inventory", "intelligent-tiering"};

static const char *config_param(const op_t *op)
{
    for (size_t i = 0; i < MK_ARRAY_LEN(bucket_config); i++)
        if (has(op, bucket_config[i]))
            return bucket_config[i];
    return NULL;
}

static void route(op_t *op, const mk_s3_req_t *req)
{
    const char *m = req->method;
    bool get = strcmp(m, "GET") == 0, put = strcmp(m, "PUT") == 0, head = strcmp(m, "HEAD") == 0;
    bool del = strcmp(m, "DELETE") == 0, post = strcmp(m, "POST") == 0;
    op->op = MK_S3D_OP_UNKNOWN;
    if (!op->bucket[0]) {
        if (get)
            op->op = MK_S3D_OP_LIST_BUCKETS;
        else
            op->route_err = MK_S3E_METHOD_NOT_ALLOWED;
        return;
    }
    if (!op->key_len) {
        const char *cfg = config_param(op);
        if (get && has(op, "location"))
            op->op = MK_S3D_OP_GET_BUCKET_LOCATION;
        else if (get && has(op, "uploads"))
            op->op = MK_S3D_OP_LIST_MULTIPART_UPLOADS;
        else if (get && has(op, "versions"))
            op->route_err = MK_S3E_NOT_IMPLEMENTED;
        else if ((get || put || del) && cfg)
            op->op = MK_S3D_OP_GET_BUCKET_CONFIG;
        else if (get && mk_s3_query_get(&op->q, "list-type"))
            op->op = MK_S3D_OP_LIST_OBJECTS_V2;
        else if (get)
            op->op = MK_S3D_OP_LIST_OBJECTS;
        else if (put)
            op->op = MK_S3D_OP_CREATE_BUCKET;
        else if (head)
            op->op = MK_S3D_OP_HEAD_BUCKET;
        else if (del)
            op->op = MK_S3D_OP_DELETE_BUCKET;
        else if (post && has(op, "delete"))
            op->op = MK_S3D_OP_DELETE_OBJECTS;
        else
            op->route_err = post ? MK_S3E_NOT_IMPLEMENTED : MK_S3E_METHOD_NOT_ALLOWED;
        return;
    }
    bool upload = has(op, "uploadId");
    bool copy = mk_s3_req_header(req, "x-amz-copy-source") != NULL;
    static const char *const unsupported[] = {"tagging", "retention", "legal-hold", "restore", "select",
                                              "torrent", "attributes", "versionId"};
    for (size_t i = 0; i < MK_ARRAY_LEN(unsupported); i++) {
        const char *v = mk_s3_query_get(&op->q, unsupported[i]);
        /* versionId=null is what a client sends for the only version */
        if (v && !(strcmp(unsupported[i], "versionId") == 0 && strcmp(v, "null") == 0)) {
            op->route_err = MK_S3E_NOT_IMPLEMENTED;
            return;
        }
    }
    if (put && upload && has(op, "partNumber"))
        op->op = copy ? MK_S3D_OP_UPLOAD_PART_COPY : MK_S3D_OP_UPLOAD_PART;
    else if ((put || get) && has(op, "acl"))
        op->op = MK_S3D_OP_GET_OBJECT_ACL;
    else if (put && upload)
        op->route_err = MK_S3E_INVALID_ARGUMENT, op->route_why = "UploadPart needs partNumber";
    else if (put)
        op->op = copy ? MK_S3D_OP_COPY_OBJECT : MK_S3D_OP_PUT_OBJECT;
    else if (get && upload)
        op->op = MK_S3D_OP_LIST_PARTS;
    else if (get)
        op->op = MK_S3D_OP_GET_OBJECT;
    else if (head)
        op->op = MK_S3D_OP_HEAD_OBJECT;
    else if (del && upload)
        op->op = MK_S3D_OP_ABORT_MULTIPART_UPLOAD;
    else if (del)
        op->op = MK_S3D_OP_DELETE_OBJECT;
    else if (post && has(op, "uploads"))
        op->op = MK_S3D_OP_CREATE_MULTIPART_UPLOAD;
    else if (post && upload)
        op->op = MK_S3D_OP_COMPLETE_MULTIPART_UPLOAD;
    else
        op->route_err = post ? MK_S3E_NOT_IMPLEMENTED : MK_S3E_METHOD_NOT_ALLOWED;
}

/* "/bucket/key" -> decoded bucket and key. */
static int split_path(op_t *op, const char *path, mk_arena_t *a)
{
    const char *p = path[0] == '/' ? path + 1 : path;
    const char *slash = strchr(p, '/');
    size_t bl = slash ? (size_t)(slash - p) : strlen(p);
    const char *k = slash ? slash + 1 : "";
    size_t kl = strlen(k);
    op->bucket = mk_arena_alloc(a, bl + 1);
    op->key = mk_arena_alloc(a, kl + 1);
    if (!op->bucket || !op->key)
        return MK_S3E_INTERNAL;
    ssize_t n = mk_s3_pct_decode(p, bl, false, op->bucket);
    ssize_t m = n < 0 ? -1 : mk_s3_pct_decode(k, kl, false, op->key);
    if (n < 0 || m < 0) {
        op->bucket[0] = 0;
        op->key[0] = 0;
        return MK_S3E_INVALID_URI;
    }
    op->key_len = (size_t)m;
    return MK_S3E_NONE;
}

/* ============================================================ body sinks */

static int sink(void *ud, const uint8_t *p, size_t n)
{
    op_t *op = ud;
    if (op->received + n > op->limit)
        return op->body == BODY_FILE ? MK_S3E_ENTITY_TOO_LARGE : MK_S3E_MAX_MESSAGE_LENGTH;
    op->received += n;
    mk_s3_hash_update(&op->sha256, p, n);
    mk_s3_hash_update(&op->md5, p, n);
    if (op->ck == CK_CRC32)
        op->crc = mk_s3_crc32(op->crc, p, n);
    else if (op->ck == CK_CRC32C)
        op->crc = mk_crc32c(op->crc, p, n);
    else
        mk_s3_hash_update(&op->ck_hash, p, n);
    if (op->body == BODY_FILE) {
        if (mk_s3_writer_write(&op->w, p, n) < 0)
            return MK_S3E_INTERNAL;
    } else if (op->body == BODY_XML) {
        mk_buf_put(&op->xml, p, n);
        if (!mk_buf_ok(&op->xml))
            return MK_S3E_INTERNAL;
    }
    return 0;
}

/* The stored headers of a new object from the request's; MK_S3E_*. */
static int request_meta(const mk_s3_req_t *req, mk_arena_t *a, mk_s3_pair_t **out, int *n)
{
    mk_s3_pair_t *v = mk_arena_alloc(a, sizeof(*v) * (size_t)(req->nhdrs + 1));
    if (!v)
        return MK_S3E_INTERNAL;
    int count = 0;
    size_t user = 0;
    for (int i = 0; i < req->nhdrs; i++) {
        const mk_s3_hdr_t *h = &req->hdrs[i];
        if (!mk_s3_stored_header(h->name))
            continue;
        size_t vl = strlen(h->value);
        if (strncmp(h->name, "x-amz-meta-", 11) == 0)
            user += strlen(h->name) - 11 + vl;
        if (user > MK_S3_MAX_USER_META || vl > MK_S3_MAX_META_VALUE || strlen(h->name) > 255 || count >= 256)
            return MK_S3E_METADATA_TOO_LARGE;
        bool dup = false;
        for (int j = 0; j < count; j++) /* a repeated header keeps its first value */
            dup = dup || strcmp(v[j].name, h->name) == 0;
        if (!dup) {
            v[count].name = h->name;
            v[count].value = h->value;
            count++;
        }
    }
    *out = v;
    *n = count;
    return MK_S3E_NONE;
}

/* Which x-amz-checksum-* (header or announced trailer) to compute. */
static void pick_checksum(op_t *op, const mk_s3_req_t *req)
{
    static const struct {
        const char *name;
        int ck;
    } algs[] = {{"x-amz-checksum-crc32", CK_CRC32},
                {"x-amz-checksum-crc32c", CK_CRC32C},
                {"x-amz-checksum-sha1", CK_SHA1},
                {"x-amz-checksum-sha256", CK_SHA256}};
    const char *trailer = mk_s3_req_header(req, "x-amz-trailer");
    for (size_t i = 0; i < MK_ARRAY_LEN(algs); i++) {
        if (mk_s3_req_header(req, algs[i].name) || (trailer && strcasecmp(trailer, algs[i].name) == 0)) {
            op->ck = algs[i].ck;
            op->ck_name = algs[i].name;
            if (op->ck == CK_SHA1)
                mk_s3_hash_init(&op->ck_hash, EVP_sha1());
            else if (op->ck == CK_SHA256)
                mk_s3_hash_init(&op->ck_hash, EVP_sha256());
            return;
        }
    }
}

/* Set up the body: what is expected, which digests are checked.  MK_S3E_*. */
static int body_setup(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, int kind, uint64_t limit)
{
    op->body = kind;
    op->limit = limit;
    const char *payload = op->auth.version == 4 ? op->auth.payload : NULL;
    op->aws_chunked = payload && strncmp(payload, "STREAMING-", 10) == 0;
    if (op->aws_chunked) {
        const char *dl = mk_s3_req_header(req, "x-amz-decoded-content-length");
        char *end;
        unsigned long long v = dl ? strtoull(dl, &end, 10) : 0;
        if (!dl || !*dl || *end || dl[0] == '-')
            return MK_S3E_MISSING_LENGTH;
        op->has_expect = true;
        op->expect_len = v;
        mk_s3_chunked_init(&op->ch, payload, &op->auth);
        op->ch_init = true;
    } else if (req->has_length) {
        op->has_expect = true;
        op->expect_len = req->content_length;
    }
    if (op->has_expect && op->expect_len > limit)
        return kind == BODY_FILE ? MK_S3E_ENTITY_TOO_LARGE : MK_S3E_MAX_MESSAGE_LENGTH;
    if (payload && strlen(payload) == 64 && mk_s3_hash_init(&op->sha256, EVP_sha256()) < 0)
        return MK_S3E_INTERNAL;
    const char *md5 = mk_s3_req_header(req, "content-md5");
    if (md5) {
        if (mk_s3_unbase64(md5, strlen(md5), op->want_md5, sizeof(op->want_md5)) != 16)
            return MK_S3E_INVALID_DIGEST;
        op->has_md5 = true;
    }
    if ((kind == BODY_FILE || op->has_md5) && mk_s3_hash_init(&op->md5, EVP_md5()) < 0)
        return MK_S3E_INTERNAL;
    pick_checksum(op, req);
    (void)ops;
    return MK_S3E_NONE;
}

/* The whole body is in: lengths and digests.  MK_S3E_*. */
static int body_check(op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r, uint8_t md5_out[16])
{
    if (op->aws_chunked) {
        int e = mk_s3_chunked_finish(&op->ch);
        if (e)
            return e;
    }
    if (op->has_expect && op->received != op->expect_len)
        return MK_S3E_INCOMPLETE_BODY;
    uint8_t d[EVP_MAX_MD_SIZE];
    if (op->sha256.ctx) {
        char hex[65];
        mk_s3_hash_final(&op->sha256, d);
        mk_s3_hex(d, 32, hex);
        if (strcmp(hex, op->auth.payload) != 0)
            return MK_S3E_CONTENT_SHA256_MISMATCH;
    }
    if (op->md5.ctx) {
        mk_s3_hash_final(&op->md5, d);
        if (md5_out)
            memcpy(md5_out, d, 16);
        if (op->has_md5 && memcmp(d, op->want_md5, 16) != 0)
            return MK_S3E_BAD_DIGEST;
    }
    if (op->ck) {
        char got[64], tv[128];
        const char *want = mk_s3_req_header(req, op->ck_name);
        if (!want && op->ch_init)
            want = mk_s3_chunked_trailer(&op->ch, op->ck_name, tv, sizeof(tv));
        if (!want)
            return MK_S3E_INVALID_REQUEST;
        if (op->ck == CK_CRC32 || op->ck == CK_CRC32C) {
            uint8_t be[4] = {(uint8_t)(op->crc >> 24), (uint8_t)(op->crc >> 16), (uint8_t)(op->crc >> 8),
                             (uint8_t)op->crc};
            mk_s3_base64(be, 4, got);
        } else {
            size_t n = mk_s3_hash_final(&op->ck_hash, d);
            mk_s3_base64(d, n, got);
        }
        if (strcmp(got, want) != 0)
            return MK_S3E_BAD_CHECKSUM;
        mk_s3_resp_header(r, op->ck_name, "%s", got);
    }
    return MK_S3E_NONE;
}

/* ================================================================ helpers */

static mk_s3_bucket_t *need_bucket(mk_s3_ops_t *ops, op_t *op, int *err)
{
    mk_s3_bucket_t *b = mk_s3_store_bucket(ops->store, op->bucket);
    if (!b)
        *err = MK_S3E_NO_SUCH_BUCKET;
    return b;
}

static void strip_etag(const char *in, char *out, size_t n)
{
    while (*in == ' ')
        in++;
    if (strncmp(in, "W/", 2) == 0)
        in += 2;
    if (*in == '"')
        in++;
    snprintf(out, n, "%s", in);
    size_t l = strlen(out);
    while (l && (out[l - 1] == '"' || out[l - 1] == ' '))
        out[--l] = 0;
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p + 32);
}

/* Does an If-Match / If-None-Match list name this ETag ("*" names any)? */
static bool etag_listed(const char *list, const char *etag)
{
    const char *p = list;
    while (*p) {
        size_t l = strcspn(p, ",");
        char one[128];
        snprintf(one, sizeof(one), "%.*s", (int)MK_MIN(l, sizeof(one) - 1), p);
        char e[128];
        strip_etag(one, e, sizeof(e));
        if (strcmp(e, "*") == 0 || strcmp(e, etag) == 0)
            return true;
        p += l;
        if (*p == ',')
            p++;
    }
    return false;
}

/* S3's conditional requests; MK_S3E_NONE, PRECONDITION_FAILED or NOT_MODIFIED. */
static int conditions(const mk_s3_req_t *req, const char *prefix, const char *etag, int64_t mtime_ms)
{
    char name[64];
    snprintf(name, sizeof(name), "%sif-match", prefix);
    const char *im = mk_s3_req_header(req, name);
    snprintf(name, sizeof(name), "%sif-none-match", prefix);
    const char *inm = mk_s3_req_header(req, name);
    snprintf(name, sizeof(name), "%sif-modified-since", prefix);
    const char *ims = mk_s3_req_header(req, name);
    snprintf(name, sizeof(name), "%sif-unmodified-since", prefix);
    const char *ius = mk_s3_req_header(req, name);
    int64_t t, secs = mtime_ms / 1000 * 1000;
    if (im && !etag_listed(im, etag))
        return MK_S3E_PRECONDITION_FAILED;
    if (!im && ius && mk_s3_parse_http_date(ius, &t) == 0 && secs > t)
        return MK_S3E_PRECONDITION_FAILED;
    int not_mod = prefix[0] ? MK_S3E_PRECONDITION_FAILED : MK_S3E_NOT_MODIFIED;
    if (inm && etag_listed(inm, etag))
        return not_mod;
    if (!inm && ims && mk_s3_parse_http_date(ims, &t) == 0 && secs <= t)
        return not_mod;
    return MK_S3E_NONE;
}

/* The object's own headers: ETag, Last-Modified, the stored ones. */
static void object_headers(mk_s3_resp_t *r, const mk_s3_objhdr_t *h, const mk_s3_query_t *q)
{
    char date[32];
    mk_s3_http_date(h->mtime_ms, date);
    mk_s3_resp_header(r, "ETag", "\"%s\"", h->etag);
    mk_s3_resp_header(r, "Last-Modified", "%s", date);
    mk_s3_resp_header(r, "Accept-Ranges", "bytes");
    static const struct {
        const char *stored, *spelled, *override;
    } std[] = {{"content-type", "Content-Type", "response-content-type"},
               {"content-encoding", "Content-Encoding", "response-content-encoding"},
               {"content-disposition", "Content-Disposition", "response-content-disposition"},
               {"content-language", "Content-Language", "response-content-language"},
               {"cache-control", "Cache-Control", "response-cache-control"},
               {"expires", "Expires", "response-expires"}};
    for (size_t i = 0; i < MK_ARRAY_LEN(std); i++) {
        const char *v = q ? mk_s3_query_get(q, std[i].override) : NULL;
        for (int j = 0; !v && j < h->npairs; j++)
            if (strcmp(h->pairs[j].name, std[i].stored) == 0)
                v = h->pairs[j].value;
        if (!v && i == 0)
            v = "binary/octet-stream";
        if (v)
            mk_s3_resp_header(r, std[i].spelled, "%s", v);
    }
    for (int j = 0; j < h->npairs; j++)
        if (strncmp(h->pairs[j].name, "x-amz-meta-", 11) == 0)
            mk_s3_resp_header(r, h->pairs[j].name, "%s", h->pairs[j].value);
    mk_s3_resp_header(r, "x-amz-storage-class", "STANDARD");
}

/* "x-amz-copy-source: /bucket/key[?versionId=...]" -> bucket, key. */
static int copy_source(const mk_s3_req_t *req, mk_arena_t *a, char **bucket, char **key, size_t *key_len)
{
    const char *v = mk_s3_req_header(req, "x-amz-copy-source");
    if (!v)
        return MK_S3E_INVALID_ARGUMENT;
    size_t n = strcspn(v, "?");
    if (v[n]) {
        const char *ver = strstr(v + n, "versionId=");
        if (ver && strncmp(ver + 10, "null", 4) != 0)
            return MK_S3E_NOT_IMPLEMENTED;
    }
    char *d = mk_arena_alloc(a, n + 1);
    ssize_t dl = d ? mk_s3_pct_decode(v, n, false, d) : -1;
    if (dl < 0)
        return MK_S3E_INVALID_ARGUMENT;
    char *p = d[0] == '/' ? d + 1 : d;
    char *slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1])
        return MK_S3E_INVALID_ARGUMENT;
    *slash = 0;
    *bucket = p;
    *key = slash + 1;
    *key_len = strlen(slash + 1);
    return MK_S3E_NONE;
}

/* ======================================================== bucket answers */

static int do_list_buckets(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    (void)op;
    (void)req;
    xml_start(r, "ListAllMyBucketsResult");
    mk_buf_put(&r->body, OWNER "<Buckets>", strlen(OWNER "<Buckets>"));
    for (int i = 0; i < mk_s3_store_bucket_count(ops->store); i++) {
        mk_s3_bucket_t *b = mk_s3_store_bucket_at(ops->store, i);
        mk_buf_put(&r->body, "<Bucket>", 8);
        mk_s3_xml_elem(&r->body, "Name", mk_s3_bucket_name(b));
        xml_date(&r->body, "CreationDate", mk_s3_bucket_created_ms(b));
        mk_buf_put(&r->body, "</Bucket>", 9);
    }
    mk_buf_put(&r->body, "</Buckets>", 10);
    xml_end(r, "ListAllMyBucketsResult");
    return MK_S3E_NONE;
}

static int do_create_bucket(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    if (!mk_s3_bucket_name_valid(op->bucket))
        return MK_S3E_INVALID_BUCKET_NAME;
    if (op->xml.len) {
        mk_s3_xnode_t *root = mk_s3_xml_parse((const char *)op->xml.data, op->xml.len, (mk_arena_t *)&req->arena);
        if (!root || strcmp(root->name, "CreateBucketConfiguration") != 0)
            return MK_S3E_MALFORMED_XML;
    }
    int rc = mk_s3_store_bucket_create(ops->store, op->bucket, req->now_ms);
    if (rc == MK_ERR_EXISTS)
        return MK_S3E_BUCKET_EXISTS;
    if (rc == MK_ERR_RANGE)
        return MK_S3E_TOO_MANY_BUCKETS;
    if (rc)
        return MK_S3E_INTERNAL;
    mk_s3_resp_header(r, "Location", "/%s", op->bucket);
    mk_info("s3: bucket %s created", op->bucket);
    return MK_S3E_NONE;
}

static int do_delete_bucket(mk_s3_ops_t *ops, op_t *op, mk_s3_resp_t *r)
{
    int rc = mk_s3_store_bucket_delete(ops->store, op->bucket);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_BUCKET;
    if (rc == MK_ERR_STATE)
        return MK_S3E_BUCKET_NOT_EMPTY;
    if (rc)
        return MK_S3E_INTERNAL;
    r->status = 204;
    r->no_body = true;
    mk_info("s3: bucket %s deleted", op->bucket);
    return MK_S3E_NONE;
}

static const char ACL[] = "<AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                          "xsi:type=\"CanonicalUser\"><ID>minikora</ID><DisplayName>minikora</DisplayName>"
                          "</Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>";

static void acl_body(mk_s3_resp_t *r)
{
    xml_start(r, "AccessControlPolicy");
    mk_buf_put(&r->body, OWNER, strlen(OWNER));
    mk_buf_put(&r->body, ACL, sizeof(ACL) - 1);
    xml_end(r, "AccessControlPolicy");
}

/* GET/PUT/DELETE of a bucket's configuration: nothing is ever configured. */
static int do_bucket_config(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = 0;
    if (!need_bucket(ops, op, &err))
        return err;
    const char *c = config_param(op);
    if (strcmp(req->method, "PUT") == 0)
        return strcmp(c, "acl") == 0 ? MK_S3E_NONE : MK_S3E_NOT_IMPLEMENTED; /* ACLs: accepted, not kept */
    if (strcmp(req->method, "DELETE") == 0) {
        r->status = 204;
        r->no_body = true;
        return MK_S3E_NONE;
    }
    static const struct {
        const char *name;
        int err;
        const char *root, *inner;
    } canned[] = {
        {"versioning", 0, "VersioningConfiguration", ""},
        {"logging", 0, "BucketLoggingStatus", ""},
        {"notification", 0, "NotificationConfiguration", ""},
        {"requestPayment", 0, "RequestPaymentConfiguration", "<Payer>BucketOwner</Payer>"},
        {"accelerate", 0, "AccelerateConfiguration", ""},
        {"policy", MK_S3E_NO_SUCH_POLICY, NULL, NULL},
        {"cors", MK_S3E_NO_SUCH_CORS, NULL, NULL},
        {"lifecycle", MK_S3E_NO_SUCH_LIFECYCLE, NULL, NULL},
        {"tagging", MK_S3E_NO_SUCH_TAGSET, NULL, NULL},
        {"website", MK_S3E_NO_SUCH_WEBSITE, NULL, NULL},
        {"encryption", MK_S3E_NO_SUCH_ENCRYPTION, NULL, NULL},
    };
    if (strcmp(c, "acl") == 0) {
        acl_body(r);
        return MK_S3E_NONE;
    }
    for (size_t i = 0; i < MK_ARRAY_LEN(canned); i++) {
        if (strcmp(canned[i].name, c) != 0)
            continue;
        if (canned[i].err)
            return canned[i].err;
        xml_start(r, canned[i].root);
        mk_buf_put(&r->body, canned[i].inner, strlen(canned[i].inner));
        xml_end(r, canned[i].root);
        return MK_S3E_NONE;
    }
    return MK_S3E_NOT_IMPLEMENTED;
}

/* ================================================================ listings */

/* The smallest string above every string that starts with p (p's last byte
 * that is not 0xff, plus one, cut there); false when there is none. */
static bool prefix_successor(const char *p, size_t n, char *out, size_t *out_len)
{
    while (n && (unsigned char)p[n - 1] == 0xff)
        n--;
    if (!n)
        return false;
    memcpy(out, p, n);
    out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    *out_len = n;
    return true;
}

typedef struct list_item_s {
    const mk_s3_obj_t *obj;   /* NULL: a common prefix */
    const char *prefix;
    size_t prefix_len;
} list_item_t;

/* The shared walk of ListObjects V1 and V2.  Items go into the arena. */
static int list_walk(const mk_s3_bucket_t *b, const char *prefix, const char *delim, const char *after,
                     size_t after_len, int max, mk_arena_t *a, list_item_t **items, int *count, bool *truncated)
{
    size_t plen = strlen(prefix), dlen = strlen(delim);
    *items = mk_arena_alloc(a, sizeof(list_item_t) * (size_t)(max + 1));
    if (!*items)
        return MK_S3E_INTERNAL;
    *count = 0;
    *truncated = false;
    size_t n = mk_s3_bucket_count(b);
    size_t i = mk_s3_bucket_lower_bound(b, prefix, plen);
    if (after && after_len) {
        size_t j = mk_s3_bucket_lower_bound(b, after, after_len);
        const mk_s3_obj_t *o = mk_s3_bucket_at(b, j);
        if (o && o->key_len == after_len && memcmp(o->key, after, after_len) == 0)
            j++;
        if (j > i)
            i = j;
    }
    char succ[MK_S3_MAX_KEY + 8];
    while (i < n) {
        const mk_s3_obj_t *o = mk_s3_bucket_at(b, i);
        if (o->key_len < plen || memcmp(o->key, prefix, plen) != 0)
            break;
        const char *d = NULL;
        if (dlen) {
            const char *rest = o->key + plen;
            size_t rl = o->key_len - plen;
            for (size_t k = 0; k + dlen <= rl && !d; k++)
                if (memcmp(rest + k, delim, dlen) == 0)
                    d = rest + k;
        }
        if (d) {
            size_t cpl = (size_t)(d - o->key) + dlen;
            /* skip the whole group: every key that starts with the prefix */
            size_t sl;
            size_t next = n;
            if (prefix_successor(o->key, cpl, succ, &sl))
                next = mk_s3_bucket_lower_bound(b, succ, sl);
            /* a group at or before the marker was listed already */
            bool listed = after && after_len >= cpl && memcmp(after, o->key, cpl) == 0;
            if (!listed) {
                if (*count == max) {
                    *truncated = true;
                    break;
                }
                (*items)[*count].obj = NULL;
                (*items)[*count].prefix = o->key;
                (*items)[*count].prefix_len = cpl;
                (*count)++;
            }
            i = next > i ? next : i + 1;
            continue;
        }
        if (*count == max) {
            *truncated = true;
            break;
        }
        (*items)[*count].obj = o;
        (*items)[*count].prefix = NULL;
        (*count)++;
        i++;
    }
    return MK_S3E_NONE;
}

/* Key or prefix as the listing shows it: URL-encoded with encoding-type=url. */
static void list_text(mk_buf_t *b, const char *name, const char *s, size_t n, bool url)
{
    if (!url) {
        xml_text(b, name, s, n);
        return;
    }
    mk_buf_t e;
    mk_buf_init(&e);
    mk_s3_uri_encode(&e, s, n, true);
    xml_text(b, name, e.data ? (const char *)e.data : "", e.len);
    mk_buf_free(&e);
}

static int do_list_objects(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r, bool v2)
{
    int err = 0;
    mk_s3_bucket_t *b = need_bucket(ops, op, &err);
    if (!b)
        return err;
    const char *prefix = mk_s3_query_get(&op->q, "prefix"), *delim = mk_s3_query_get(&op->q, "delimiter");
    const char *enc = mk_s3_query_get(&op->q, "encoding-type"), *mk = mk_s3_query_get(&op->q, "max-keys");
    prefix = prefix ? prefix : "";
    delim = delim ? delim : "";
    bool url = enc && strcmp(enc, "url") == 0;
    if (enc && !url) {
        op->route_why = "Invalid Encoding Method specified in Request";
        return MK_S3E_INVALID_ARGUMENT;
    }
    int max = MK_S3_MAX_LIST;
    if (mk) {
        char *end;
        long v = strtol(mk, &end, 10);
        if (!*mk || *end || v < 0) {
            op->route_why = "max-keys must be a non-negative integer";
            return MK_S3E_INVALID_ARGUMENT;
        }
        max = v > MK_S3_MAX_LIST ? MK_S3_MAX_LIST : (int)v;
    }
    const char *after = NULL, *token = NULL, *start_after = NULL;
    size_t after_len = 0;
    if (v2) {
        token = mk_s3_query_get(&op->q, "continuation-token");
        start_after = mk_s3_query_get(&op->q, "start-after");
        if (token) {
            size_t tl = strlen(token);
            char *k = mk_arena_alloc((mk_arena_t *)&req->arena, tl / 2 + 1);
            if (!k || tl % 2 || tl / 2 > MK_S3_MAX_KEY || mk_s3_unhex(token, tl / 2, (uint8_t *)k) < 0) {
                op->route_why = "The continuation token provided is incorrect";
                return MK_S3E_INVALID_ARGUMENT;
            }
            after = k;
            after_len = tl / 2;
        } else if (start_after) {
            after = start_after;
            after_len = strlen(start_after);
        }
    } else {
        after = mk_s3_query_get(&op->q, "marker");
        after_len = after ? strlen(after) : 0;
    }
    list_item_t *items;
    int count;
    bool truncated;
    err = list_walk(b, prefix, delim, after, after_len, max, (mk_arena_t *)&req->arena, &items, &count, &truncated);
    if (err)
        return err;

    mk_buf_t *o = &r->body;
    xml_start(r, "ListBucketResult");
    mk_s3_xml_elem(o, "Name", op->bucket);
    list_text(o, "Prefix", prefix, strlen(prefix), url);
    if (v2) {
        if (token)
            mk_s3_xml_elem(o, "ContinuationToken", token);
        if (start_after)
            list_text(o, "StartAfter", start_after, strlen(start_after), url);
        xml_u64(o, "KeyCount", (uint64_t)count);
    } else {
        list_text(o, "Marker", after ? after : "", after_len, url);
    }
    xml_u64(o, "MaxKeys", (uint64_t)max);
    if (delim[0])
        list_text(o, "Delimiter", delim, strlen(delim), url);
    mk_s3_xml_elem(o, "IsTruncated", truncated ? "true" : "false");
    if (truncated && count) {
        const list_item_t *last = &items[count - 1];
        const char *lk = last->obj ? last->obj->key : last->prefix;
        size_t ll = last->obj ? last->obj->key_len : last->prefix_len;
        if (v2) {
            char *hex = mk_arena_alloc((mk_arena_t *)&req->arena, ll * 2 + 1);
            if (!hex)
                return MK_S3E_INTERNAL;
            mk_s3_hex((const uint8_t *)lk, ll, hex);
            mk_s3_xml_elem(o, "NextContinuationToken", hex);
        } else {
            list_text(o, "NextMarker", lk, ll, url);
        }
    }
    if (url)
        mk_s3_xml_elem(o, "EncodingType", "url");
    bool owner = !v2 || (mk_s3_query_get(&op->q, "fetch-owner") &&
                         strcmp(mk_s3_query_get(&op->q, "fetch-owner"), "true") == 0);
    for (int i = 0; i < count; i++) {
        const mk_s3_obj_t *ob = items[i].obj;
        if (!ob)
            continue;
        mk_buf_put(o, "<Contents>", 10);
        list_text(o, "Key", ob->key, ob->key_len, url);
        xml_date(o, "LastModified", ob->mtime_ms);
        xml_etag(o, ob->etag);
        xml_u64(o, "Size", ob->size);
        if (owner)
            mk_buf_put(o, OWNER, strlen(OWNER));
        mk_s3_xml_elem(o, "StorageClass", "STANDARD");
        mk_buf_put(o, "</Contents>", 11);
    }
    for (int i = 0; i < count; i++) {
        if (items[i].obj)
            continue;
        mk_buf_put(o, "<CommonPrefixes>", 16);
        list_text(o, "Prefix", items[i].prefix, items[i].prefix_len, url);
        mk_buf_put(o, "</CommonPrefixes>", 17);
    }
    xml_end(r, "ListBucketResult");
    return MK_S3E_NONE;
}

static int cmp_upload(const void *a, const void *b)
{
    const mk_s3_upload_t *x = *(const mk_s3_upload_t *const *)a, *y = *(const mk_s3_upload_t *const *)b;
    int c = memcmp(x->key, y->key, MK_MIN(x->key_len, y->key_len));
    if (!c)
        c = x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
    if (!c)
        c = x->initiated_ms < y->initiated_ms ? -1 : x->initiated_ms > y->initiated_ms;
    return c ? c : strcmp(x->id, y->id);
}

static int do_list_uploads(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = 0;
    if (!need_bucket(ops, op, &err))
        return err;
    const char *prefix = mk_s3_query_get(&op->q, "prefix");
    prefix = prefix ? prefix : "";
    size_t pl = strlen(prefix);
    int n = mk_s3_store_upload_count(ops->store), count = 0;
    const mk_s3_upload_t **v = mk_arena_alloc((mk_arena_t *)&req->arena, sizeof(*v) * (size_t)(n + 1));
    if (!v)
        return MK_S3E_INTERNAL;
    for (int i = 0; i < n; i++) {
        const mk_s3_upload_t *u = mk_s3_store_upload_at(ops->store, i);
        if (strcmp(u->bucket, op->bucket) == 0 && u->key_len >= pl && memcmp(u->key, prefix, pl) == 0)
            v[count++] = u;
    }
    if (count)
        qsort(v, (size_t)count, sizeof(*v), cmp_upload);
    mk_buf_t *o = &r->body;
    xml_start(r, "ListMultipartUploadsResult");
    mk_s3_xml_elem(o, "Bucket", op->bucket);
    mk_s3_xml_elem(o, "KeyMarker", "");
    mk_s3_xml_elem(o, "UploadIdMarker", "");
    xml_text(o, "Prefix", prefix, pl);
    xml_u64(o, "MaxUploads", 1000);
    mk_s3_xml_elem(o, "IsTruncated", count > 1000 ? "true" : "false"); /* no markers: the first 1000 */
    for (int i = 0; i < count && i < 1000; i++) {
        mk_buf_put(o, "<Upload>", 8);
        xml_text(o, "Key", v[i]->key, v[i]->key_len);
        mk_s3_xml_elem(o, "UploadId", v[i]->id);
        mk_buf_put(o, "<Initiator><ID>minikora</ID><DisplayName>minikora</DisplayName></Initiator>", 75);
        mk_buf_put(o, OWNER, strlen(OWNER));
        mk_s3_xml_elem(o, "StorageClass", "STANDARD");
        xml_date(o, "Initiated", v[i]->initiated_ms);
        mk_buf_put(o, "</Upload>", 9);
    }
    xml_end(r, "ListMultipartUploadsResult");
    return MK_S3E_NONE;
}

/* ================================================================ objects */

static int do_put_object(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    uint8_t md5[16];
    int e = body_check(op, req, r, md5);
    if (e)
        return e;
    char etag[33];
    mk_s3_hex(md5, 16, etag);
    int rc = mk_s3_writer_commit(ops->store, &op->w, etag, req->now_ms);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_BUCKET;
    if (rc)
        return MK_S3E_INTERNAL;
    mk_s3_resp_header(r, "ETag", "\"%s\"", etag);
    return MK_S3E_NONE;
}

static int do_get_object(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r, bool head)
{
    int err = 0;
    mk_s3_bucket_t *b = need_bucket(ops, op, &err);
    if (!b)
        return err;
    if (!mk_s3_bucket_find(b, op->key, op->key_len))
        return MK_S3E_NO_SUCH_KEY;
    int fd;
    mk_s3_objhdr_t h;
    int rc = mk_s3_store_object_open(ops->store, b, op->key, op->key_len, (mk_arena_t *)&req->arena, &fd, &h);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_KEY;
    if (rc)
        return MK_S3E_INTERNAL;
    int c = conditions(req, "", h.etag, h.mtime_ms);
    if (c) {
        close(fd);
        if (c == MK_S3E_NOT_MODIFIED) {
            char date[32];
            mk_s3_http_date(h.mtime_ms, date);
            r->status = 304;
            r->no_body = true;
            mk_s3_resp_header(r, "ETag", "\"%s\"", h.etag);
            mk_s3_resp_header(r, "Last-Modified", "%s", date);
            return MK_S3E_NONE;
        }
        return c;
    }
    uint64_t off = 0, len = h.size;
    const char *range = mk_s3_req_header(req, "range");
    const char *pn = mk_s3_query_get(&op->q, "partNumber");
    if (pn && strcmp(pn, "1") != 0) {
        close(fd);
        op->route_why = "partNumber must be 1 for an object stored whole";
        return MK_S3E_INVALID_ARGUMENT; /* objects are stored whole: one part */
    }
    int rr = mk_s3_range_parse(range, h.size, &off, &len);
    if (rr < 0) {
        close(fd);
        fail(op, req, r, MK_S3E_INVALID_RANGE, NULL);
        /* S3 says which range and what size */
        r->body.len -= 8; /* "</Error>" */
        xml_text(&r->body, "RangeRequested", range, strlen(range));
        xml_u64(&r->body, "ActualObjectSize", h.size);
        mk_buf_put(&r->body, "</Error>", 8);
        mk_s3_resp_header(r, "Content-Range", "bytes */%llu", (unsigned long long)h.size);
        return -1; /* answered */
    }
    object_headers(r, &h, &op->q);
    if (rr == 0) {
        r->status = 206;
        mk_s3_resp_header(r, "Content-Range", "bytes %llu-%llu/%llu", (unsigned long long)off,
                          (unsigned long long)(off + len - 1), (unsigned long long)h.size);
    } else {
        off = 0;
        len = h.size;
    }
    r->len = len;
    if (head) {
        close(fd);
        r->head_only = true;
        return MK_S3E_NONE;
    }
    r->fd = fd;
    r->off = h.data_off + off;
    return MK_S3E_NONE;
}

static int do_delete_object(mk_s3_ops_t *ops, op_t *op, mk_s3_resp_t *r)
{
    int err = 0;
    mk_s3_bucket_t *b = need_bucket(ops, op, &err);
    if (!b)
        return err;
    if (mk_s3_store_object_delete(ops->store, b, op->key, op->key_len) < 0)
        return MK_S3E_INTERNAL;
    r->status = 204;
    r->no_body = true;
    return MK_S3E_NONE;
}

static int do_delete_objects(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = 0;
    mk_s3_bucket_t *b = need_bucket(ops, op, &err);
    if (!b)
        return err;
    mk_arena_t *a = (mk_arena_t *)&req->arena;
    mk_s3_xnode_t *root = mk_s3_xml_parse(op->xml.data ? (const char *)op->xml.data : "", op->xml.len, a);
    if (!root || strcmp(root->name, "Delete") != 0)
        return MK_S3E_MALFORMED_XML;
    mk_s3_xnode_t *qn = mk_s3_xml_child(root, "Quiet");
    bool quiet = qn && strncmp(qn->text, "true", 4) == 0;
    int n = 0;
    for (mk_s3_xnode_t *c = root->child; c; c = c->next)
        if (strcmp(c->name, "Object") == 0 && ++n > MK_S3_MAX_DELETE)
            return MK_S3E_MALFORMED_XML;
    if (n == 0)
        return MK_S3E_MALFORMED_XML;
    for (mk_s3_xnode_t *c = root->child; c; c = c->next)
        if (strcmp(c->name, "Object") == 0 && !mk_s3_xml_child(c, "Key"))
            return MK_S3E_MALFORMED_XML;
    mk_buf_t *o = &r->body;
    xml_start(r, "DeleteResult");
    for (mk_s3_xnode_t *c = root->child; c; c = c->next) {
        if (strcmp(c->name, "Object") != 0)
            continue;
        mk_s3_xnode_t *k = mk_s3_xml_child(c, "Key");
        int kerr = mk_s3_key_check(k->text, k->text_len);
        if (!kerr && mk_s3_store_object_delete(ops->store, b, k->text, k->text_len) < 0)
            kerr = MK_S3E_INTERNAL;
        if (kerr) {
            mk_buf_put(o, "<Error>", 7);
            xml_text(o, "Key", k->text, k->text_len);
            mk_s3_xml_elem(o, "Code", mk_s3_err_code(kerr));
            mk_s3_xml_elem(o, "Message", mk_s3_err_message(kerr));
            mk_buf_put(o, "</Error>", 8);
        } else if (!quiet) {
            mk_buf_put(o, "<Deleted>", 9);
            xml_text(o, "Key", k->text, k->text_len);
            mk_buf_put(o, "</Deleted>", 10);
        }
    }
    xml_end(r, "DeleteResult");
    return MK_S3E_NONE;
}

/* CopyObject and UploadPartCopy: the source, opened and checked. */
static int open_source(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, int *fd, mk_s3_objhdr_t *h)
{
    char *sb, *sk;
    size_t skl;
    int e = copy_source(req, (mk_arena_t *)&req->arena, &sb, &sk, &skl);
    if (e)
        return e;
    e = mk_s3_key_check(sk, skl);
    if (e)
        return e;
    mk_s3_bucket_t *b = mk_s3_store_bucket(ops->store, sb);
    if (!b)
        return MK_S3E_NO_SUCH_BUCKET;
    if (!mk_s3_bucket_find(b, sk, skl))
        return MK_S3E_NO_SUCH_KEY;
    int rc = mk_s3_store_object_open(ops->store, b, sk, skl, (mk_arena_t *)&req->arena, fd, h);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_KEY;
    if (rc)
        return MK_S3E_INTERNAL;
    e = conditions(req, "x-amz-copy-source-", h->etag, h->mtime_ms);
    if (e) {
        close(*fd);
        return e;
    }
    (void)op;
    return MK_S3E_NONE;
}

static int do_copy_object(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = 0;
    if (!need_bucket(ops, op, &err))
        return err;
    const char *dir = mk_s3_req_header(req, "x-amz-metadata-directive");
    bool replace = dir && strcasecmp(dir, "REPLACE") == 0;
    if (dir && !replace && strcasecmp(dir, "COPY") != 0)
        return MK_S3E_INVALID_ARGUMENT;
    int fd;
    mk_s3_objhdr_t h;
    err = open_source(ops, op, req, &fd, &h);
    if (err)
        return err;
    if (!replace && strcmp(h.bucket, op->bucket) == 0 && h.key_len == op->key_len &&
        memcmp(h.key, op->key, op->key_len) == 0) {
        close(fd);
        op->route_why = "This copy request is illegal because it is trying to copy an object to itself "
                        "without changing the object's metadata.";
        return MK_S3E_INVALID_REQUEST;
    }
    mk_s3_pair_t *pairs = h.pairs;
    int np = h.npairs;
    if (replace && (err = request_meta(req, (mk_arena_t *)&req->arena, &pairs, &np)) != 0) {
        close(fd);
        return err;
    }
    mk_s3_hash_t md5 = {0};
    int rc = mk_s3_hash_init(&md5, EVP_md5());
    if (rc == 0)
        rc = mk_s3_writer_begin(ops->store, &op->w, op->bucket, op->key, op->key_len, pairs, np);
    if (rc == 0)
        rc = mk_s3_writer_copy(&op->w, fd, h.data_off, h.size, &md5);
    close(fd);
    uint8_t d[EVP_MAX_MD_SIZE];
    char etag[33];
    mk_s3_hash_final(&md5, d);
    mk_s3_hex(d, 16, etag);
    if (rc == 0)
        rc = mk_s3_writer_commit(ops->store, &op->w, etag, req->now_ms);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_BUCKET;
    if (rc)
        return MK_S3E_INTERNAL;
    xml_start(r, "CopyObjectResult");
    xml_date(&r->body, "LastModified", req->now_ms);
    xml_etag(&r->body, etag);
    xml_end(r, "CopyObjectResult");
    return MK_S3E_NONE;
}

static int do_object_acl(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = 0;
    mk_s3_bucket_t *b = need_bucket(ops, op, &err);
    if (!b)
        return err;
    if (!mk_s3_bucket_find(b, op->key, op->key_len))
        return MK_S3E_NO_SUCH_KEY;
    if (strcmp(req->method, "GET") == 0)
        acl_body(r);
    return MK_S3E_NONE; /* PUT: ACLs are accepted, not kept */
}

/* ============================================================== multipart */

/* ?uploadId= names an upload of this bucket and key. */
static int need_upload(mk_s3_ops_t *ops, op_t *op)
{
    op->upload_id = mk_s3_query_get(&op->q, "uploadId");
    const mk_s3_upload_t *u = op->upload_id ? mk_s3_store_upload(ops->store, op->upload_id) : NULL;
    if (!u || strcmp(u->bucket, op->bucket) != 0 || u->key_len != op->key_len ||
        memcmp(u->key, op->key, op->key_len) != 0)
        return MK_S3E_NO_SUCH_UPLOAD;
    return MK_S3E_NONE;
}

static int part_number(op_t *op)
{
    const char *pn = mk_s3_query_get(&op->q, "partNumber");
    char *end;
    long v = pn ? strtol(pn, &end, 10) : 0;
    if (!pn || !*pn || *end || v < 1 || v > MK_S3_MAX_PARTS) {
        op->route_why = "Part number must be an integer between 1 and 10000, inclusive";
        return -1;
    }
    op->part = (int)v;
    return 0;
}

static int do_create_upload(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = 0;
    if (!need_bucket(ops, op, &err))
        return err;
    mk_s3_pair_t *pairs;
    int np;
    err = request_meta(req, (mk_arena_t *)&req->arena, &pairs, &np);
    if (err)
        return err;
    char id[33];
    if (mk_s3_store_upload_create(ops->store, op->bucket, op->key, op->key_len, pairs, np, req->now_ms, id) < 0)
        return MK_S3E_INTERNAL;
    xml_start(r, "InitiateMultipartUploadResult");
    mk_s3_xml_elem(&r->body, "Bucket", op->bucket);
    xml_text(&r->body, "Key", op->key, op->key_len);
    mk_s3_xml_elem(&r->body, "UploadId", id);
    xml_end(r, "InitiateMultipartUploadResult");
    return MK_S3E_NONE;
}

static int do_upload_part(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    uint8_t md5[16];
    int e = body_check(op, req, r, md5);
    if (e)
        return e;
    char etag[33];
    mk_s3_hex(md5, 16, etag);
    int rc = mk_s3_writer_commit_part(ops->store, &op->w, op->upload_id, op->part, etag, req->now_ms);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_UPLOAD;
    if (rc)
        return MK_S3E_INTERNAL;
    mk_s3_resp_header(r, "ETag", "\"%s\"", etag);
    return MK_S3E_NONE;
}

static int do_upload_part_copy(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = need_upload(ops, op);
    if (err)
        return err;
    if (part_number(op) < 0)
        return MK_S3E_INVALID_ARGUMENT;
    int fd;
    mk_s3_objhdr_t h;
    err = open_source(ops, op, req, &fd, &h);
    if (err)
        return err;
    uint64_t off = 0, len = h.size;
    const char *range = mk_s3_req_header(req, "x-amz-copy-source-range");
    if (range) {
        /* "bytes=first-last", both given, inside the object */
        unsigned long long a, b;
        int n = 0;
        if (sscanf(range, "bytes=%llu-%llu%n", &a, &b, &n) != 2 || range[n] || a > b || b >= h.size) {
            close(fd);
            op->route_why = "The x-amz-copy-source-range value must be of the form bytes=first-last where "
                            "first and last are the zero-based offsets of the first and last bytes to copy";
            return MK_S3E_INVALID_ARGUMENT;
        }
        off = a;
        len = b - a + 1;
    }
    if (len > ops->max_object) {
        close(fd);
        return MK_S3E_ENTITY_TOO_LARGE;
    }
    mk_s3_hash_t md5 = {0};
    int rc = mk_s3_hash_init(&md5, EVP_md5());
    if (rc == 0)
        rc = mk_s3_writer_begin(ops->store, &op->w, op->bucket, op->key, op->key_len, NULL, 0);
    if (rc == 0)
        rc = mk_s3_writer_copy(&op->w, fd, h.data_off + off, len, &md5);
    close(fd);
    uint8_t d[EVP_MAX_MD_SIZE];
    char etag[33];
    mk_s3_hash_final(&md5, d);
    mk_s3_hex(d, 16, etag);
    if (rc == 0)
        rc = mk_s3_writer_commit_part(ops->store, &op->w, op->upload_id, op->part, etag, req->now_ms);
    if (rc == MK_ERR_NOT_FOUND)
        return MK_S3E_NO_SUCH_UPLOAD;
    if (rc)
        return MK_S3E_INTERNAL;
    xml_start(r, "CopyPartResult");
    xml_date(&r->body, "LastModified", req->now_ms);
    xml_etag(&r->body, etag);
    xml_end(r, "CopyPartResult");
    return MK_S3E_NONE;
}

static int do_complete_upload(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = need_upload(ops, op);
    if (err)
        return err;
    mk_arena_t *a = (mk_arena_t *)&req->arena;
    mk_s3_xnode_t *root = mk_s3_xml_parse(op->xml.data ? (const char *)op->xml.data : "", op->xml.len, a);
    if (!root || strcmp(root->name, "CompleteMultipartUpload") != 0)
        return MK_S3E_MALFORMED_XML;
    int n = 0;
    for (mk_s3_xnode_t *c = root->child; c; c = c->next)
        if (strcmp(c->name, "Part") == 0 && ++n > MK_S3_MAX_PARTS)
            return MK_S3E_MALFORMED_XML;
    if (!n)
        return MK_S3E_MALFORMED_XML;
    int *nums = mk_arena_alloc(a, sizeof(int) * (size_t)n);
    const char **etags = mk_arena_alloc(a, sizeof(char *) * (size_t)n);
    if (!nums || !etags)
        return MK_S3E_INTERNAL;
    int i = 0;
    for (mk_s3_xnode_t *c = root->child; c; c = c->next) {
        if (strcmp(c->name, "Part") != 0)
            continue;
        mk_s3_xnode_t *pn = mk_s3_xml_child(c, "PartNumber"), *et = mk_s3_xml_child(c, "ETag");
        if (!pn || !et)
            return MK_S3E_MALFORMED_XML;
        char *end;
        long v = strtol(pn->text, &end, 10);
        while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
            end++;
        if (!pn->text[0] || *end || v < 1 || v > MK_S3_MAX_PARTS)
            return MK_S3E_MALFORMED_XML;
        char *e = mk_arena_alloc(a, et->text_len + 1);
        if (!e)
            return MK_S3E_INTERNAL;
        strip_etag(et->text, e, et->text_len + 1);
        if (i && v <= nums[i - 1])
            return MK_S3E_INVALID_PART_ORDER;
        nums[i] = (int)v;
        etags[i] = e;
        i++;
    }
    char etag[MK_S3_ETAG_MAX + 1];
    int bad;
    int rc = mk_s3_store_upload_complete(ops->store, op->upload_id, nums, etags, n, req->now_ms, etag, &bad);
    if (rc == MK_ERR_NOT_FOUND)
        return mk_s3_store_upload(ops->store, op->upload_id) ? MK_S3E_NO_SUCH_BUCKET : MK_S3E_NO_SUCH_UPLOAD;
    if (rc == MK_ERR_INVALID)
        return MK_S3E_INVALID_PART;
    if (rc == MK_ERR_RANGE)
        return MK_S3E_ENTITY_TOO_SMALL;
    if (rc)
        return MK_S3E_INTERNAL;
    const char *host = mk_s3_req_header(req, "host");
    mk_buf_t loc;
    mk_buf_init(&loc);
    mk_buf_put(&loc, "http://", 7);
    if (host)
        mk_buf_put(&loc, host, strlen(host));
    mk_buf_put(&loc, "/", 1);
    mk_buf_put(&loc, op->bucket, strlen(op->bucket));
    mk_buf_put(&loc, "/", 1);
    mk_s3_uri_encode(&loc, op->key, op->key_len, true);
    xml_start(r, "CompleteMultipartUploadResult");
    xml_text(&r->body, "Location", loc.data ? (const char *)loc.data : "", loc.len);
    mk_buf_free(&loc);
    mk_s3_xml_elem(&r->body, "Bucket", op->bucket);
    xml_text(&r->body, "Key", op->key, op->key_len);
    xml_etag(&r->body, etag);
    xml_end(r, "CompleteMultipartUploadResult");
    return MK_S3E_NONE;
}

static int do_abort_upload(mk_s3_ops_t *ops, op_t *op, mk_s3_resp_t *r)
{
    int err = need_upload(ops, op);
    if (err)
        return err;
    mk_s3_store_upload_abort(ops->store, op->upload_id);
    r->status = 204;
    r->no_body = true;
    return MK_S3E_NONE;
}

static int do_list_parts(mk_s3_ops_t *ops, op_t *op, const mk_s3_req_t *req, mk_s3_resp_t *r)
{
    int err = need_upload(ops, op);
    if (err)
        return err;
    mk_s3_part_t *parts;
    int n;
    if (mk_s3_store_upload_parts(ops->store, op->upload_id, (mk_arena_t *)&req->arena, &parts, &n) < 0)
        return MK_S3E_INTERNAL;
    const char *ms = mk_s3_query_get(&op->q, "max-parts"), *mk = mk_s3_query_get(&op->q, "part-number-marker");
    long max = ms ? strtol(ms, NULL, 10) : 1000, marker = mk ? strtol(mk, NULL, 10) : 0;
    if (max < 0 || max > 1000)
        max = 1000;
    mk_buf_t *o = &r->body;
    xml_start(r, "ListPartsResult");
    mk_s3_xml_elem(o, "Bucket", op->bucket);
    xml_text(o, "Key", op->key, op->key_len);
    mk_s3_xml_elem(o, "UploadId", op->upload_id);
    mk_buf_put(o, "<Initiator><ID>minikora</ID><DisplayName>minikora</DisplayName></Initiator>", 75);
    mk_buf_put(o, OWNER, strlen(OWNER));
    mk_s3_xml_elem(o, "StorageClass", "STANDARD");
    xml_u64(o, "PartNumberMarker", (uint64_t)(marker > 0 ? marker : 0));
    int shown = 0, last = 0;
    bool truncated = false;
    mk_buf_t parts_xml;
    mk_buf_init(&parts_xml);
    for (int i = 0; i < n; i++) {
        if (parts[i].number <= marker)
            continue;
        if (shown == max) {
            truncated = true;
            break;
        }
        mk_buf_put(&parts_xml, "<Part>", 6);
        xml_u64(&parts_xml, "PartNumber", (uint64_t)parts[i].number);
        xml_date(&parts_xml, "LastModified", parts[i].mtime_ms);
        xml_etag(&parts_xml, parts[i].etag);
        xml_u64(&parts_xml, "Size", parts[i].size);
        mk_buf_put(&parts_xml, "</Part>", 7);
        last = parts[i].number;
        shown++;
    }
    xml_u64(o, "NextPartNumberMarker", (uint64_t)last);
    xml_u64(o, "MaxParts", (uint64_t)max);
    mk_s3_xml_elem(o, "IsTruncated", truncated ? "true" : "false");
    mk_buf_put(o, parts_xml.data, parts_xml.len);
    if (!mk_buf_ok(&parts_xml))
        o->oom = true;
    mk_buf_free(&parts_xml);
    xml_end(r, "ListPartsResult");
    return MK_S3E_NONE;
}

/* ================================================================ handler */

static int begin_cb(void *ud, mk_s3_req_t *req, mk_s3_resp_t *r)
{
    mk_s3_ops_t *ops = ud;
    mk_arena_t *a = &req->arena;
    op_t *op = mk_arena_alloc(a, sizeof(*op));
    if (!op)
        return fail(NULL, req, r, MK_S3E_INTERNAL, NULL);
    mk_buf_init(&op->xml);
    mk_s3_writer_init(&op->w);
    req->op = op;
    int e = split_path(op, req->raw_path, a);
    if (e == MK_S3E_NONE && mk_s3_query_parse(req->raw_query, a, &op->q) < 0)
        e = MK_S3E_INVALID_URI;
    if (e) {
        op->op = MK_S3D_OP_UNKNOWN;
        return fail(op, req, r, e, NULL);
    }
    route(op, req);
    mk_s3_auth_check(req, &op->q, &ops->creds, a, &op->auth);
    if (op->auth.err) {
        if (op->auth.err == MK_S3E_SIGNATURE_MISMATCH || op->auth.err == MK_S3E_INVALID_ACCESS_KEY ||
            op->auth.err == MK_S3E_ACCESS_DENIED || op->auth.err == MK_S3E_TIME_SKEWED)
            atomic_fetch_add(&ops->ctr->auth_failures, 1);
        mk_debug("s3: %s %s refused: %s", req->method, req->raw_path, mk_s3_err_code(op->auth.err));
        return fail(op, req, r, op->auth.err, op->auth.why);
    }
    if (op->route_err)
        return fail(op, req, r, op->route_err, op->route_why);
    /* names: a bucket operation needs a bucket name that could exist, an
     * object operation a key we accept */
    if (op->op != MK_S3D_OP_LIST_BUCKETS && op->op != MK_S3D_OP_CREATE_BUCKET &&
        !mk_s3_bucket_name_valid(op->bucket))
        return fail(op, req, r, MK_S3E_NO_SUCH_BUCKET, NULL);
    if (op->key_len && (e = mk_s3_key_check(op->key, op->key_len)) != 0)
        return fail(op, req, r, e, e == MK_S3E_INVALID_ARGUMENT ? "Object key is not valid: it must be "
                                                                   "UTF-8 without control characters, "
                                                                   "with no '.' or '..' path segment"
                                                                 : NULL);

    int kind = BODY_DISCARD;
    uint64_t limit = MK_S3_MAX_DISCARD;
    switch (op->op) {
    case MK_S3D_OP_PUT_OBJECT:
    case MK_S3D_OP_UPLOAD_PART: {
        if (!req->has_length && !req->chunked)
            return fail(op, req, r, MK_S3E_MISSING_LENGTH, NULL);
        if (op->op == MK_S3D_OP_PUT_OBJECT && !mk_s3_store_bucket(ops->store, op->bucket))
            return fail(op, req, r, MK_S3E_NO_SUCH_BUCKET, NULL);
        if (op->op == MK_S3D_OP_UPLOAD_PART) {
            if ((e = need_upload(ops, op)) != 0)
                return fail(op, req, r, e, NULL);
            if (part_number(op) < 0)
                return fail(op, req, r, MK_S3E_INVALID_ARGUMENT, op->route_why);
        }
        kind = BODY_FILE;
        limit = ops->max_object;
        break;
    }
    case MK_S3D_OP_COMPLETE_MULTIPART_UPLOAD:
    case MK_S3D_OP_DELETE_OBJECTS:
    case MK_S3D_OP_CREATE_BUCKET:
    case MK_S3D_OP_GET_BUCKET_CONFIG:
    case MK_S3D_OP_GET_OBJECT_ACL:
        kind = BODY_XML;
        limit = MK_S3_MAX_XML;
        break;
    default: break;
    }
    e = body_setup(ops, op, req, kind, limit);
    if (e)
        return fail(op, req, r, e, NULL);
    if (kind == BODY_FILE) {
        mk_s3_pair_t *pairs = NULL;
        int np = 0;
        if (op->op == MK_S3D_OP_PUT_OBJECT && (e = request_meta(req, a, &pairs, &np)) != 0)
            return fail(op, req, r, e, NULL);
        if (mk_s3_writer_begin(ops->store, &op->w, op->bucket, op->key, op->key_len, pairs, np) < 0)
            return fail(op, req, r, MK_S3E_INTERNAL, NULL);
    }
    return MK_S3_BODY;
}

static int body_cb(void *ud, mk_s3_req_t *req, const uint8_t *p, size_t n, mk_s3_resp_t *r)
{
    (void)ud;
    op_t *op = req->op;
    int e = op->aws_chunked ? mk_s3_chunked_feed(&op->ch, p, n, sink, op) : sink(op, p, n);
    if (e) {
        op->err = e;
        return fail(op, req, r, e, NULL);
    }
    return MK_S3_BODY;
}

static void complete_cb(void *ud, mk_s3_req_t *req, mk_s3_resp_t *r)
{
    mk_s3_ops_t *ops = ud;
    op_t *op = req->op;
    int e = MK_S3E_NONE;
    /* the file operations check their body themselves (they need the MD5) */
    if (op->body != BODY_FILE)
        e = body_check(op, req, r, NULL);
    if (!e) {
        switch (op->op) {
        case MK_S3D_OP_LIST_BUCKETS: e = do_list_buckets(ops, op, req, r); break;
        case MK_S3D_OP_CREATE_BUCKET: e = do_create_bucket(ops, op, req, r); break;
        case MK_S3D_OP_HEAD_BUCKET:
            if (!need_bucket(ops, op, &e))
                break;
            mk_s3_resp_header(r, "x-amz-bucket-region", "%s", ops->region);
            break;
        case MK_S3D_OP_DELETE_BUCKET: e = do_delete_bucket(ops, op, r); break;
        case MK_S3D_OP_GET_BUCKET_LOCATION:
            if (!need_bucket(ops, op, &e))
                break;
            r->content_type = "application/xml";
            mk_buf_put(&r->body, XML_DECL, strlen(XML_DECL));
            mk_buf_put(&r->body, "<LocationConstraint xmlns=\"" XMLNS "\">",
                       strlen("<LocationConstraint xmlns=\"" XMLNS "\">"));
            /* us-east-1 is S3's empty location */
            if (strcmp(ops->region, "us-east-1") != 0)
                mk_s3_xml_escape(&r->body, ops->region, strlen(ops->region));
            mk_buf_put(&r->body, "</LocationConstraint>", 21);
            break;
        case MK_S3D_OP_GET_BUCKET_CONFIG: e = do_bucket_config(ops, op, req, r); break;
        case MK_S3D_OP_LIST_OBJECTS: e = do_list_objects(ops, op, req, r, false); break;
        case MK_S3D_OP_LIST_OBJECTS_V2: e = do_list_objects(ops, op, req, r, true); break;
        case MK_S3D_OP_LIST_MULTIPART_UPLOADS: e = do_list_uploads(ops, op, req, r); break;
        case MK_S3D_OP_PUT_OBJECT: e = do_put_object(ops, op, req, r); break;
        case MK_S3D_OP_GET_OBJECT: e = do_get_object(ops, op, req, r, false); break;
        case MK_S3D_OP_HEAD_OBJECT: e = do_get_object(ops, op, req, r, true); break;
        case MK_S3D_OP_DELETE_OBJECT: e = do_delete_object(ops, op, r); break;
        case MK_S3D_OP_DELETE_OBJECTS: e = do_delete_objects(ops, op, req, r); break;
        case MK_S3D_OP_COPY_OBJECT: e = do_copy_object(ops, op, req, r); break;
        case MK_S3D_OP_GET_OBJECT_ACL: e = do_object_acl(ops, op, req, r); break;
        case MK_S3D_OP_CREATE_MULTIPART_UPLOAD: e = do_create_upload(ops, op, req, r); break;
        case MK_S3D_OP_UPLOAD_PART: e = do_upload_part(ops, op, req, r); break;
        case MK_S3D_OP_UPLOAD_PART_COPY: e = do_upload_part_copy(ops, op, req, r); break;
        case MK_S3D_OP_COMPLETE_MULTIPART_UPLOAD: e = do_complete_upload(ops, op, req, r); break;
        case MK_S3D_OP_ABORT_MULTIPART_UPLOAD: e = do_abort_upload(ops, op, r); break;
        case MK_S3D_OP_LIST_PARTS: e = do_list_parts(ops, op, req, r); break;
        default: e = MK_S3E_NOT_IMPLEMENTED; break;
        }
    }
    if (e > 0)
        fail(op, req, r, e, op->route_why);
    /* e < 0: the handler answered an error of its own */
}

static void end_cb(void *ud, mk_s3_req_t *req, int status)
{
    mk_s3_ops_t *ops = ud;
    op_t *op = req ? req->op : NULL;
    int opn = MK_S3D_OP_UNKNOWN;
    if (op) {
        opn = op->op;
        mk_s3_writer_abort(ops->store, &op->w); /* committed writers are idle: no-op */
        if (op->ch_init)
            mk_s3_chunked_free(&op->ch);
        mk_s3_hash_free(&op->sha256);
        mk_s3_hash_free(&op->md5);
        mk_s3_hash_free(&op->ck_hash);
        mk_buf_free(&op->xml);
    }
    mk_s3_counters_t *c = ops->ctr;
    atomic_fetch_add(&c->requests, 1);
    atomic_fetch_add(&c->by_op[opn >= 0 && opn < MK_S3D_OP_COUNT ? opn : MK_S3D_OP_UNKNOWN], 1);
    if (status == 0 || status >= 400)
        atomic_fetch_add(&c->errors, 1);
    if (status >= 500)
        atomic_fetch_add(&c->errors_5xx, 1);
    if (op)
        mk_debug("s3: %s %s%s%s -> %d (%s)", req->method, req->raw_path, req->raw_query[0] ? "?" : "",
                 req->raw_query, status, mk_s3d_op_name(opn));
}

static void count_cb(void *ud, uint64_t in, uint64_t out, int conns)
{
    mk_s3_ops_t *ops = ud;
    if (in)
        atomic_fetch_add(&ops->ctr->bytes_in, in);
    if (out)
        atomic_fetch_add(&ops->ctr->bytes_out, out);
    if (conns > 0)
        atomic_fetch_add(&ops->ctr->connections, 1);
    else if (conns < 0)
        atomic_fetch_sub(&ops->ctr->connections, 1);
}

static const mk_s3_handler_t handler = {begin_cb, body_cb, complete_cb, end_cb, count_cb};

const mk_s3_handler_t *mk_s3_ops_handler(void) { return &handler; }

mk_s3_ops_t *mk_s3_ops_new(const mk_s3_ops_opts_t *o)
{
    mk_s3_ops_t *ops = mk_calloc(1, sizeof(*ops));
    if (!ops)
        return NULL;
    ops->store = o->store;
    ops->creds = o->creds;
    ops->region = o->region;
    ops->max_object = o->max_object_bytes ? o->max_object_bytes : MK_S3_DEFAULT_MAX_OBJECT;
    ops->ctr = o->counters;
    return ops;
}

void mk_s3_ops_free(mk_s3_ops_t *ops) { mk_free(ops); }
