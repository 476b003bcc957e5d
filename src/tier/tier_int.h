/*
 * tier_int.h -- internals shared by the files of tier/, its unit test (not
 * a public header: other modules include tier/tier.h).
 *
 *   codec.c   pure: the blob layouts of the remote log metadata, object
 *             keys, the manifest text, the epoch checkpoint text, the
 *             producer-state snapshot, segment ids
 *   s3.c      the S3 client (libs3) and tier's worker threads: a job runs
 *             its work on a worker and its done on the loop
 *   upload.c  the worker side of a segment copy: scan and validate the
 *             segment, digests, the read index, the PUTs, the HEAD that
 *             verifies the copy
 *   cache.c   the chunk cache: memory (LRU, bounded) and DATA/tier-cache/
 *             (LRU, bounded), filled by ranged GETs through the validator
 *   check.c   the worker side of a remote check (the scrubber's): a remote
 *             segment's manifest, then its .log read back in steps, against
 *             the CRC32C and SHA-256 the manifest and the row hold
 *   tier.c    the module: remote log metadata in memory, copy scheduling,
 *             local and total retention, reads, follower rebuild, stats
 *
 * Who calls whom: tier.c -> cache.c, check.c, s3.c, upload.c, codec.c;
 * check.c -> s3.c;
 * cache.c -> s3.c, codec.c; upload.c -> s3.c, codec.c; s3.c -> nothing of
 * tier/ but its own job callbacks.
 *
 * Blob layouts (all integers big-endian, as everywhere in minikora):
 *
 *   epochs   the leader-epoch map of a segment, entries in order:
 *              offset  size  field
 *              0       4     epoch (int32, >= 0, increasing)
 *              4       8     start offset (int64, increasing)
 *   chunks   the read index: where each chunk starts, entries in order:
 *              0       8     position in the .log object (uint64; first 0)
 *              8       8     base offset of the first batch at it
 *              16      8     largest maxTimestamp of the chunk's batches
 *            chunk i is [pos_i, pos_i+1) (the last ends at the size): whole
 *            batches; a chunk starts at the first batch at least
 *            chunk.bytes past the start of the one before.
 *   aborted  aborted transactions whose marker is in the segment:
 *              0       8     producer id
 *              8       8     first offset of the transaction
 *              16      8     offset of its abort marker
 */
#ifndef MK_TIER_INT_H
#define MK_TIER_INT_H

#include "tier/tier.h"
#include "meta/meta.h"

#include <stdatomic.h>

#define TIER_EPOCH_ENTRY 12
#define TIER_CHUNK_ENTRY 24
#define TIER_ABORTED_ENTRY 24
#define TIER_ID_LEN 22              /* base64url of 16 random bytes */
#define TIER_KEY_MAX 900

/* ================================================================= codec.c */

typedef struct tier_chunk_s {
    uint64_t pos;
    int64_t base_offset;
    int64_t max_ts;
} tier_chunk_t;

typedef struct tier_aborted_s {
    int64_t pid;
    int64_t first;
    int64_t last;
} tier_aborted_t;

/* Encoders append to b (check mk_buf_ok).  Decoders read with the checked
 * reader into an mk_malloc'd array (*out, NULL when empty) and check the
 * layout's rules (sizes, order, ranges); 0 or MK_ERR_CORRUPT / NOMEM. */
void tier_epochs_encode(mk_buf_t *b, const mk_log_epoch_entry_t *v, size_t n);
int tier_epochs_decode(const uint8_t *p, size_t n, mk_log_epoch_entry_t **out, size_t *count);
void tier_chunks_encode(mk_buf_t *b, const tier_chunk_t *v, size_t n);
/* size: the segment's bytes (every pos below it, the first 0). */
int tier_chunks_decode(const uint8_t *p, size_t n, uint64_t size, tier_chunk_t **out, size_t *count);
void tier_aborted_encode(mk_buf_t *b, const tier_aborted_t *v, size_t n);
int tier_aborted_decode(const uint8_t *p, size_t n, tier_aborted_t **out, size_t *count);

/* A new segment id: 22 characters of base64url from getrandom, NUL. */
void tier_segment_id(char out[TIER_ID_LEN + 1]);

/* The object key of one file of a remote segment:
 *   tier/<cluster id>/<topic>-<topic id>/<partition>/<20-digit start>-<segment id><ext>
 * ext is ".log", ".index", ".timeindex", ".leader-epoch-checkpoint",
 * ".snapshot" or ".manifest".  0 or MK_ERR_TOO_LARGE. */
int tier_object_key(char *out, size_t cap, const char *cluster_id, const char *topic, const uint8_t topic_id[16],
                    int32_t partition, int64_t start, const char *segment_id, const char *ext);

/* The objects of a remote segment, in upload order (the manifest last: its
 * presence says the rest is there). */
#define TIER_NEXTS 6
extern const char *const tier_exts[TIER_NEXTS];

/* Kafka's leader-epoch-checkpoint text ("0\n<n>\n<epoch> <offset>\n..."). */
void tier_epochs_checkpoint_text(mk_buf_t *b, const mk_log_epoch_entry_t *v, size_t n);

/* One producer of the producer-state snapshot. */
typedef struct tier_producer_s {
    int64_t pid;
    int16_t epoch;
    int32_t last_seq;
    int64_t last_ts;
    int64_t txn_start;            /* first offset of its open transaction, -1 */
} tier_producer_t;

/* The snapshot object: "MKPS" u16 version 1, i64 end offset, i32 count,
 * then per producer i64 pid, i16 epoch, i32 last sequence, i64 last
 * timestamp, i64 open transaction start; then i32 count and the aborted
 * entries (layout above).  Appended to b. */
void tier_snapshot_encode(mk_buf_t *b, int64_t end_offset, const tier_producer_t *v, size_t n,
                          const tier_aborted_t *ab, size_t nab);

/* The manifest (JSON text) that describes a remote segment; appended. */
typedef struct tier_manifest_s {
    const char *cluster_id, *topic, *segment_id;
    char topic_id[MK_CLUSTER_UUID_STR_LEN];
    int32_t partition, broker, leader_epoch;
    int64_t start_offset, end_offset, max_timestamp, size;
    int64_t created_ms;
    uint32_t crc32c;
    char sha256[65];
    char md5[33];
    uint64_t sizes[TIER_NEXTS];   /* bytes of each object (the manifest's own: 0) */
    size_t nchunks, nepochs, nproducers, naborted;
} tier_manifest_t;

/* Written into out (cap bytes, NUL-terminated); returns the length, or cap
 * when it did not fit.  No allocation: workers call it. */
size_t tier_manifest_text(char *out, size_t cap, const tier_manifest_t *m);

/* =================================================================== s3.c */

typedef struct tier_s3_s tier_s3_t;
typedef struct tier_job_s tier_job_t;

enum { TIER_Q_WRITE = 0, TIER_Q_READ = 1, TIER_NQUEUES };
enum { TIER_OP_PUT = 0, TIER_OP_GET, TIER_OP_HEAD, TIER_OP_DELETE };

/* One piece of work for a worker thread.  work() runs on a worker (it may
 * call the tier_s3_* requests; it must not call mk_malloc: the fault hook
 * is not thread-safe, plain malloc is fine); done() runs on the loop
 * thread afterwards and frees the job.  Embed it first in a larger struct. */
struct tier_job_s {
    void (*work)(tier_job_t *j, tier_s3_t *s3);
    void (*done)(tier_job_t *j);
    /* Frees the job without acting on it (shutdown: its done will never
     * run). */
    void (*release)(tier_job_t *j);
    tier_job_t *next;
    int queue;                    /* TIER_Q_* */
    int rc;                       /* work's result, for done */
    char why[160];                /* work's failure, for done */
};

/* Counters read by the stats (atomics: written by workers). */
typedef struct tier_s3_counters_s {
    _Atomic uint64_t requests[4], errors, bytes_up, bytes_down;
    _Atomic int64_t last_ok_ms, last_error_ms;
} tier_s3_counters_t;

/* The client and its threads (two per queue).  0 or an error. */
int tier_s3_new(uv_loop_t *loop, const mk_tier_target_t *target, int32_t timeout_ms, tier_s3_t **out);
/* Abandons the requests in flight (they fail with MK_ERR_STATE), joins the
 * threads, and releases every job whose done() will now never run --
 * queued, or finished but not yet delivered. */
void tier_s3_free(tier_s3_t *s3);
/* Queue a job (loop thread). */
void tier_s3_submit(tier_s3_t *s3, tier_job_t *j);
/* Jobs queued or running on a queue. */
int tier_s3_pending(const tier_s3_t *s3, int queue);
tier_s3_counters_t *tier_s3_counters(tier_s3_t *s3);
/* The last error text (loop thread: copied by the stats). */
void tier_s3_last_error(tier_s3_t *s3, char *out, size_t n);

/* The requests, on a worker thread.  0, MK_ERR_NOT_FOUND (404),
 * MK_ERR_IO (anything else: refused, reset, 5xx, timeout; why says
 * which), MK_ERR_STATE (shutting down). */
/* PUT len bytes of fd from off, with Content-MD5 (base64) when md5_b64. */
int tier_s3_put_fd(tier_s3_t *s3, const char *key, int fd, uint64_t off, uint64_t len, const char *md5_b64,
                   char *why, size_t why_len);
int tier_s3_put_mem(tier_s3_t *s3, const char *key, const void *p, size_t n, const char *md5_b64, char *why,
                    size_t why_len);
/* GET [off, off+len) into dst (exactly len bytes or an error). */
int tier_s3_get_range(tier_s3_t *s3, const char *key, uint64_t off, uint64_t len, uint8_t *dst, char *why,
                      size_t why_len);
/* HEAD: the object's length and ETag (without quotes). */
int tier_s3_head(tier_s3_t *s3, const char *key, uint64_t *len, char *etag, size_t etag_len, char *why,
                 size_t why_len);
/* DELETE (a missing object is fine: 0). */
int tier_s3_delete(tier_s3_t *s3, const char *key, char *why, size_t why_len);

/* ================================================================ upload.c */

/* A segment copy, prepared on the loop (everything it needs, owned by it),
 * worked on a write worker. */
typedef struct tier_upload_s {
    tier_job_t job;
    /* in */
    int fds[3];                   /* .log, .index, .timeindex (owned: closed by the worker) */
    uint64_t size;                /* the .log's bytes when sealed */
    int64_t start_offset, end_offset;   /* first offset and the offset after the last */
    uint64_t chunk_bytes;
    char keys[TIER_NEXTS][TIER_KEY_MAX];
    mk_buf_t epochs_text;         /* checkpoint object */
    mk_buf_t snapshot;            /* producer-state object */
    tier_manifest_t manifest;     /* filled further by the worker */
    uint8_t *scratch;             /* read buffer (mk_malloc'd on the loop) */
    size_t scratch_len;
    tier_chunk_t *chunks;         /* room for max_chunks (mk_malloc'd on the loop) */
    size_t max_chunks;
    /* out */
    size_t nchunks;
    int64_t max_ts;
    int64_t last_offset;
    uint32_t crc32c;
    char sha256[65];
    uint64_t bytes_sent;
    void *owner;                  /* tier.c's context */
    /* A re-upload of a remote copy found corrupt (expect): the local bytes
     * must have these digests (the manifest's), else nothing is put and the
     * job fails with MK_ERR_CORRUPT. */
    bool expect;
    uint32_t expect_crc32c;
    char expect_sha256[65];
} tier_upload_t;

/* The work function of an upload job. */
void tier_upload_work(tier_job_t *j, tier_s3_t *s3);

/* ================================================================= check.c */

/* One step of the check of a remote segment, on a READ worker.  The loop
 * submits the same job again for each step, so the running digests carry
 * over; at most one step of it is queued or running at a time.
 *   pos 0    first the manifest: HEAD (at most TIER_MANIFEST_MAX bytes),
 *            GET; its bytes must have the MD5 of its ETag, and its
 *            segment_id, start_offset, size, crc32c and sha256 must be the
 *            row's; then HEAD of the .log: its length must be the row's size
 *   each     GET [pos, pos + len) of the .log, into the running CRC32C and
 *            SHA-256; the step that reaches size compares them with the
 *            row's (finished)
 * rc: 0 sound so far; MK_ERR_CORRUPT (why: what differs, a missing object
 * included); MK_ERR_IO or MK_ERR_STATE (S3 failed or is stopping: not a
 * finding). */
#define TIER_MANIFEST_MAX 65536
typedef struct tier_check_s {
    tier_job_t job;
    /* in (loop) */
    char log_key[TIER_KEY_MAX], manifest_key[TIER_KEY_MAX];
    char segment_id[TIER_ID_LEN + 1];
    int64_t start_offset;
    uint64_t size;                /* the .log's bytes, as the row says */
    uint32_t crc32c;              /* the row's, which the manifest must hold too */
    char sha256[65];
    uint64_t pos, len;            /* this step */
    uint8_t *buf;                 /* room for len bytes (mk_malloc'd on the loop; freed there) */
    /* carried between steps (worker) */
    uint32_t run_crc;
    void *sha;                    /* EVP_MD_CTX of the running SHA-256 (freed by tier_check_free_digest) */
    /* out */
    bool finished;
    void *owner;                  /* tier.c's context */
} tier_check_t;

/* The work function of a check step. */
void tier_check_work(tier_job_t *j, tier_s3_t *s3);
/* Frees the running digest (any thread; idempotent). */
void tier_check_free_digest(tier_check_t *k);

/* ================================================================= cache.c */

typedef struct tier_cache_s tier_cache_t;

typedef struct tier_cache_opts_s {
    uv_loop_t *loop;
    tier_s3_t *s3;
    const char *dir;              /* DATA/tier-cache (emptied at open) */
    uint64_t memory_max, disk_max;
    void (*ready)(void *arg);     /* a chunk arrived or failed (loop thread) */
    void *arg;
} tier_cache_opts_t;

int tier_cache_new(const tier_cache_opts_t *o, tier_cache_t **out);
/* Queued work is dropped (its buffers freed); call after tier_s3_free(). */
void tier_cache_free(tier_cache_t *c);

/* The chunk [pos, pos + len) of the object key (a chunk of segment
 * segment_id, index k): *data and *len (valid until the next call into the
 * cache) when it is in memory (a hit), else MK_ERR_AGAIN with a read started
 * (from the disk copy, or a ranged GET validated batch by batch and written
 * to disk); MK_ERR_IO (the last read of it failed less than a second ago),
 * MK_ERR_CORRUPT (it failed validation).  *where says where it was found
 * (0 memory, 1 disk, 2 S3) when counting. */
int tier_cache_get(tier_cache_t *c, const char *segment_id, size_t k, const char *key, uint64_t pos, uint64_t len,
                   const uint8_t **data, size_t *out_len, int *where);
/* Start reading a chunk that is not cached, without waiting (read-ahead). */
void tier_cache_prefetch(tier_cache_t *c, const char *segment_id, size_t k, const char *key, uint64_t pos,
                         uint64_t len);
/* Bytes of a segment's chunks in memory and on disk (a walk of the cache:
 * stats only). */
void tier_cache_segment_bytes(const tier_cache_t *c, const char *segment_id, uint64_t *memory, uint64_t *disk);
/* Forget a segment's chunks (its remote copy is being deleted). */
void tier_cache_forget(tier_cache_t *c, const char *segment_id);

typedef struct tier_cache_stats_s {
    uint64_t hits, disk_hits, misses;
    uint64_t memory_bytes, memory_chunks, memory_max;
    uint64_t disk_bytes, disk_chunks, disk_max;
    int32_t in_flight;
} tier_cache_stats_t;

void tier_cache_stats(const tier_cache_t *c, tier_cache_stats_t *out);

#endif /* MK_TIER_INT_H */
