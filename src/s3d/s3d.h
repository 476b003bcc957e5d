/*
 * s3d.h -- L3: the bundled S3-compatible server.
 *
 * minikora carries its own object store so that tiered storage (and anyone
 * who wants an S3 endpoint next to a Kafka one) runs on a laptop with no
 * other process.  mk_s3d_open() binds an HTTP/1.1 listener (port 9000 by
 * default) and starts a thread with a libuv loop of its own that serves it:
 * S3 traffic, its disk writes and its fsyncs never run on the brokers' loop,
 * so a slow or busy S3 client cannot stall a Kafka request.
 *
 * What it speaks: path-style S3 (http://host:port/bucket/key) with AWS
 * signature V2 and V4 (Authorization header and presigned URLs), buckets,
 * objects (ranges, copies, metadata), multi-object delete and multipart
 * uploads, with S3's XML bodies, error codes and header spellings.  One
 * access key / secret key pair is accepted; a default bucket exists from the
 * start.  The operations, limits and on-disk layout are in s3d_int.h.
 *
 * Storage: DATA/s3/<bucket>/..., each object written to a temporary file,
 * fsynced and renamed into place, so an interrupted upload never leaves a
 * partial object visible.
 *
 * Threads: mk_s3d_open(), the accessors and mk_s3d_close() run on the caller's
 * thread (main.c's loop thread); mk_s3d_stats() is safe from any thread
 * (atomic counters).  Everything else runs on the server's own thread.
 */
#ifndef MK_S3D_H
#define MK_S3D_H

#include "base/base.h"

typedef struct mk_s3d_s mk_s3d_t;

/* The S3 operations, as S3's API names them (counted in the stats). */
#define MK_S3D_OPS(X)                                                          \
    X(MK_S3D_OP_LIST_BUCKETS, "ListBuckets")                                   \
    X(MK_S3D_OP_CREATE_BUCKET, "CreateBucket")                                 \
    X(MK_S3D_OP_HEAD_BUCKET, "HeadBucket")                                     \
    X(MK_S3D_OP_DELETE_BUCKET, "DeleteBucket")                                 \
    X(MK_S3D_OP_GET_BUCKET_LOCATION, "GetBucketLocation")                      \
    X(MK_S3D_OP_GET_BUCKET_CONFIG, "GetBucketConfig")                          \
    X(MK_S3D_OP_LIST_OBJECTS, "ListObjects")                                   \
    X(MK_S3D_OP_LIST_OBJECTS_V2, "ListObjectsV2")                              \
    X(MK_S3D_OP_LIST_MULTIPART_UPLOADS, "ListMultipartUploads")                \
    X(MK_S3D_OP_PUT_OBJECT, "PutObject")                                       \
    X(MK_S3D_OP_GET_OBJECT, "GetObject")                                       \
    X(MK_S3D_OP_HEAD_OBJECT, "HeadObject")                                     \
    X(MK_S3D_OP_DELETE_OBJECT, "DeleteObject")                                 \
    X(MK_S3D_OP_DELETE_OBJECTS, "DeleteObjects")                               \
    X(MK_S3D_OP_COPY_OBJECT, "CopyObject")                                     \
    X(MK_S3D_OP_GET_OBJECT_ACL, "GetObjectAcl")                                \
    X(MK_S3D_OP_CREATE_MULTIPART_UPLOAD, "CreateMultipartUpload")              \
    X(MK_S3D_OP_UPLOAD_PART, "UploadPart")                                     \
    X(MK_S3D_OP_UPLOAD_PART_COPY, "UploadPartCopy")                            \
    X(MK_S3D_OP_COMPLETE_MULTIPART_UPLOAD, "CompleteMultipartUpload")          \
    X(MK_S3D_OP_ABORT_MULTIPART_UPLOAD, "AbortMultipartUpload")                \
    X(MK_S3D_OP_LIST_PARTS, "ListParts")                                       \
    X(MK_S3D_OP_UNKNOWN, "Unknown")

enum {
#define MK_S3D_OP_ENUM(e, name) e,
    MK_S3D_OPS(MK_S3D_OP_ENUM)
#undef MK_S3D_OP_ENUM
    MK_S3D_OP_COUNT
};

/* S3's name of an operation ("PutObject"); "Unknown" when out of range. */
const char *mk_s3d_op_name(int op);

typedef struct mk_s3d_opts_s {
    const char *data_dir;       /* objects live under DATA/s3/ */
    const char *host;           /* bind address */
    int port;                   /* 0 picks a free port */
    const char *advertise_host; /* host in the URL (default: host) */
    /* The one key pair (copied).  NULL: the pair in DATA/s3/_credentials,
     * else a new random pair written there (0600) at first start.  A pair
     * given here is written there too, so a later start keeps it. */
    const char *access_key;
    const char *secret_key;
    const char *bucket;         /* created at open if missing (default "minikora") */
    const char *region;         /* GET ?location answers it (default "us-east-1") */
    uint64_t max_object_bytes;  /* one PUT or part (default 5 GiB, S3's limit) */
} mk_s3d_opts_t;

/* Is s usable as an access key (3..128 characters of A-Z a-z 0-9) or a
 * secret key (8..128 visible ASCII characters, no spaces)? */
bool mk_s3d_access_key_valid(const char *s);
bool mk_s3d_secret_key_valid(const char *s);

/* Load DATA/s3/ (buckets, objects, uploads in progress; interrupted uploads'
 * temporary files are removed), make sure the default bucket exists, bind
 * the listener and start the server's thread.  Returns 0 and *out, or a
 * negative libuv or MK error with nothing left running; why (may be NULL)
 * gets a sentence. */
int mk_s3d_open(const mk_s3d_opts_t *opts, mk_s3d_t **out, char *why, size_t why_len);

/* The bound port, "http://host:port", the key pair, bucket and region. */
int mk_s3d_port(const mk_s3d_t *s);
const char *mk_s3d_url(const mk_s3d_t *s);
const char *mk_s3d_access_key(const mk_s3d_t *s);
const char *mk_s3d_secret_key(const mk_s3d_t *s);
const char *mk_s3d_bucket(const mk_s3d_t *s);
const char *mk_s3d_region(const mk_s3d_t *s);

/* Counters for the admin API.  A snapshot, safe from any thread. */
typedef struct mk_s3d_stats_s {
    uint64_t buckets;                     /* now */
    uint64_t objects;                     /* now, every bucket */
    uint64_t bytes;                       /* object bytes stored now */
    uint64_t uploads;                     /* multipart uploads in progress */
    uint64_t requests;                    /* answered, total */
    uint64_t requests_by_op[MK_S3D_OP_COUNT];
    uint64_t errors;                      /* answers with status >= 400 */
    uint64_t errors_5xx;
    uint64_t auth_failures;               /* 403s of signature or key checks */
    uint64_t bytes_in;                    /* request body bytes received */
    uint64_t bytes_out;                   /* response bytes sent */
    uint64_t connections;                 /* open now */
} mk_s3d_stats_t;

void mk_s3d_stats(const mk_s3d_t *s, mk_s3d_stats_t *out);

/* =================================================================== faults */

/* A fault the server injects into its own answers, for testing what its
 * clients (tiered storage) do when S3 misbehaves.  Set from any thread (the
 * fault injection of health/, the admin API, tests); the server's thread
 * reads it at every connection and request:
 *   DOWN   a new connection is closed as soon as it is accepted, and a
 *          request on an open one closes it unanswered: to a client the
 *          server looks stopped (connection refused or reset);
 *   SLOW   each request is held delay_ms before it is read (a timer on the
 *          server's loop; other connections are served meanwhile);
 *   ERROR  error_pct percent of the requests (0 = all) are answered
 *          at their headers with status 500 InternalError (or 503 SlowDown),
 *          Connection: close, nothing stored. */
enum { MK_S3D_FAULT_NONE = 0, MK_S3D_FAULT_DOWN, MK_S3D_FAULT_SLOW, MK_S3D_FAULT_ERROR };

typedef struct mk_s3d_fault_s {
    int type;                 /* MK_S3D_FAULT_* */
    int32_t delay_ms;         /* SLOW: 1..600000 */
    int32_t error_pct;        /* ERROR: 0..100 (0: every request) */
    int32_t status;           /* ERROR: 500 (default when 0) or 503 */
} mk_s3d_fault_t;

/* Replace the fault (type NONE clears it).  0, or MK_ERR_INVALID for a type
 * or value out of range (nothing changes).  Any thread. */
int mk_s3d_fault_set(mk_s3d_t *s, const mk_s3d_fault_t *f);
/* The fault now, and how many requests or connections it has hit since
 * start.  Any thread. */
void mk_s3d_fault_get(const mk_s3d_t *s, mk_s3d_fault_t *out, uint64_t *injected);
/* "none", "down", "slow", "error"; NULL out of range.  And back: -1 if unknown. */
const char *mk_s3d_fault_name(int type);
int mk_s3d_fault_find(const char *name);

/* Stop the thread (open connections are closed, an upload in progress is
 * abandoned and leaves nothing visible), then free everything.  Blocks until
 * the thread has exited.  NULL is a no-op. */
void mk_s3d_close(mk_s3d_t *s);

#endif /* MK_S3D_H */
