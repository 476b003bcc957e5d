/*
 * tier.c -- tiered storage as a module: the remote log metadata in memory,
 * copying sealed segments, local and total retention, remote reads, the
 * follower rebuild, and the counters.  (The worker side is in upload.c and
 * cache.c, the S3 client in s3.c, the layouts in codec.c; see tier_int.h.)
 *
 * Remote log metadata.  Every remote segment of every partition is a row in
 * meta/'s remote_segments and an rseg_t here, in start-offset order per
 * partition (tpart_t, keyed by topic id and partition: a topic made again
 * under an old name never meets the old rows).  The rows are loaded at
 * start; each state change is written through, and the in-memory state
 * follows the store, never leads it:
 *
 *   COPY_STARTED    row written, then the objects are put; a copy found in
 *                   this state at start never finished: it is deleted (its
 *                   objects, then the row) and the segment copied again.
 *   COPY_FINISHED   the objects are verified (upload.c) and the row says
 *                   so durably: only now is the segment read from S3, does
 *                   it count as copied (copied_end) and may the local copies
 *                   go.
 *   DELETE_STARTED  written first when a remote segment goes (total
 *                   retention, a failed copy, a deleted topic): from then on
 *                   nothing reads it; then its objects are deleted.
 *   DELETE_FINISHED the objects are gone: the row is deleted.
 * Failed deletes are retried with backoff, also across restarts (the row
 * stays DELETE_STARTED).
 *
 * Copying.  The tick (remote.log.manager.task.interval.ms; at once after a
 * segment is sealed or a leader changes) looks at every tiered partition's
 * leader log: the oldest sealed segment that ends past what S3 already holds
 * contiguously (copied_end) and at or below the high watermark and the last
 * stable offset is copied, one per partition at a time, at most
 * MAX_UPLOADS at once.  A failed copy is deleted and retried after a backoff
 * (0.5 s doubling to 30 s).
 *
 * Retention of a tiered topic (its log's own retention is off, see
 * mk_cluster_set_tiering):
 *   local   on every replica, the oldest sealed segments that end at or
 *           below copied_end and are past local.retention.ms, or keep the
 *           log above local.retention.bytes, are deleted.  Nothing that is
 *           not in S3 (verified, durable) is ever deleted locally: while S3
 *           is down, local retention is exceeded rather than data lost.
 *   total   the oldest COPY_FINISHED segments past retention.ms, or that
 *           keep the partition (S3 plus what is only local) above
 *           retention.bytes, are deleted from S3; local segments below the
 *           new log start go too.
 * The log start clients see is the first offset in S3 when that is below
 * the replica's local start (mk_tier_log_start).
 *
 * Reads.  A remote segment's read index (its chunks: whole batches, about
 * minikora.tier.chunk.bytes each) is in its row, so a read needs no extra
 * GET to find its bytes: the chunk holding the offset comes from the cache
 * (cache.c) or is fetched, and the request that asked waits (MK_ERR_AGAIN,
 * woken through the progress hook).  The next chunk is read ahead.
 *
 * Remote checks (the scrubber's, see "remote checks" below and check.c):
 * each COPY_FINISHED segment of a partition is read back at the scrub rate
 * against its row's (and manifest's) CRC32C and SHA-256; a corrupt one is
 * uploaded again from a local copy with the same bytes, or reported.
 *
 * Shutdown.  Meta writes complete after the module is gone (the store keeps
 * running them), so their callbacks hold a reference (tier_ref_t) that the
 * module clears when it goes; a callback that finds it cleared only frees
 * its own memory.
 */
#define MK_PARTITION_FIELDS
#include "tier/tier_int.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_UPLOADS 4
#define MAX_DELETES 4
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define SCRATCH_BYTES (1u << 20)
#define READ_AHEAD 2
#define MAX_EPOCHS 4096
#define NBROKERS (MK_CLUSTER_MAX_BROKERS + 1)

typedef struct rseg_s {
    char id[TIER_ID_LEN + 1];
    int64_t start, end;           /* first and last offset (inclusive) */
    int64_t max_ts;
    int64_t size;
    int state;                    /* MK_META_RSEG_* */
    int32_t broker, leader_epoch;
    uint32_t crc;
    char sha[65];
    char topic[MK_META_MAX_NAME + 1];   /* name at upload: the object keys */
    mk_log_epoch_entry_t *epochs;
    size_t nepochs;
    tier_chunk_t *chunks;
    size_t nchunks;
    tier_aborted_t *aborted;
    size_t naborted;
    int64_t event_ms;
    bool busy;                    /* a meta write or a job holds it */
    int del_attempts;
    uint64_t del_next_ms;         /* retry a failed delete then (monotonic) */
    bool check_bad;               /* the last remote check found it corrupt, with no local copy to repair it */
} rseg_t;

typedef struct tpart_s {
    char key[48];
    uint8_t topic_id[16];
    int32_t partition;
    rseg_t **segs;                /* sorted by start */
    size_t n, cap;
    bool uploading;
    int attempts;
    uint64_t next_try_ms;         /* monotonic */
    uint64_t uploads_failed;
    int64_t deleted_upto;         /* total retention took S3 up to here */
    rseg_t *retry;                /* a copy that failed: tried again, same id, after the backoff */
    char last_error[160];
    bool gap_warned;
} tpart_t;

typedef struct bctr_s {
    uint64_t uploads_done, uploads_failed, upload_bytes;
    uint64_t download_bytes, fetch_bytes, fetch_requests, fetch_errors;
    uint64_t cache_hits, cache_misses, deletes_done, deletes_failed;
    int32_t uploads_in_flight;
} bctr_t;

typedef struct tier_ref_s {
    mk_tier_t *t;                 /* NULL once the module is gone */
    long refs;
} tier_ref_t;

typedef struct tcheck_s tcheck_t;
static void check_abandon(tcheck_t *tc);

struct mk_tier_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_partition_writer_t *writer;
    mk_meta_t *meta;
    mk_tier_target_t target;
    mk_tier_hooks_t hooks;
    tier_s3_t *s3;
    tier_cache_t *cache;
    uv_timer_t *timer;            /* owned: the tick */
    tier_ref_t *ref;
    mk_map_t parts;               /* key -> tpart_t* (owned) */
    int64_t interval_ms;
    uint64_t chunk_bytes;
    int uploads, deletes;         /* in flight */
    bctr_t b[NBROKERS];
    uint64_t uploads_done, uploads_failed, deletes_done, deletes_failed, fetch_requests, fetch_errors;
    bool tick_soon;
    mk_buf_t scratch;             /* record search */
    tcheck_t *check;              /* the remote check running (owned), or NULL */
    uv_timer_t *check_timer;      /* owned: its pacing */
};

/* ================================================================ helpers */

static bctr_t *bc(mk_tier_t *t, int32_t broker) { return &t->b[broker > 0 && broker < NBROKERS ? broker : 0]; }

static void part_key(const uint8_t id[16], int32_t partition, char out[48])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[id[i] >> 4];
        out[2 * i + 1] = hx[id[i] & 15];
    }
    snprintf(out + 32, 16, "/%d", (int)partition);
}

static tpart_t *tpart_find(mk_tier_t *t, const uint8_t id[16], int32_t partition)
{
    char k[48];
    part_key(id, partition, k);
    return mk_map_get(&t->parts, k);
}

static tpart_t *tpart_get(mk_tier_t *t, const uint8_t id[16], int32_t partition)
{
    tpart_t *tp = tpart_find(t, id, partition);
    if (tp)
        return tp;
    tp = mk_calloc(1, sizeof(*tp));
    if (!tp)
        return NULL;
    part_key(id, partition, tp->key);
    memcpy(tp->topic_id, id, 16);
    tp->partition = partition;
    tp->deleted_upto = -1;
    if (mk_map_put(&t->parts, tp->key, tp) < 0) {
        mk_free(tp);
        return NULL;
    }
    return tp;
}

static tpart_t *tpart_of(mk_tier_t *t, const mk_partition_t *p) { return tpart_find(t, p->topic->id, p->index); }

static void rseg_free(rseg_t *rs)
{
    if (!rs)
        return;
    mk_free(rs->epochs);
    mk_free(rs->chunks);
    mk_free(rs->aborted);
    mk_free(rs);
}

static int tpart_insert(tpart_t *tp, rseg_t *rs)
{
    if (tp->n == tp->cap) {
        size_t cap = tp->cap ? tp->cap * 2 : 8;
        rseg_t **v = mk_realloc(tp->segs, cap * sizeof(*v));
        if (!v)
            return MK_ERR_NOMEM;
        tp->segs = v;
        tp->cap = cap;
    }
    size_t i = tp->n;
    while (i > 0 && tp->segs[i - 1]->start > rs->start) {
        tp->segs[i] = tp->segs[i - 1];
        i--;
    }
    tp->segs[i] = rs;
    tp->n++;
    return 0;
}

static void tpart_remove(tpart_t *tp, rseg_t *rs)
{
    for (size_t i = 0; i < tp->n; i++)
        if (tp->segs[i] == rs) {
            memmove(tp->segs + i, tp->segs + i + 1, (tp->n - i - 1) * sizeof(*tp->segs));
            tp->n--;
            return;
        }
}

/* The offset after the last one S3 holds without a gap from its first
 * COPY_FINISHED segment on; -1 when it holds none. */
static int64_t copied_end(const tpart_t *tp)
{
    int64_t end = -1;
    for (size_t i = 0; tp && i < tp->n; i++) {
        const rseg_t *rs = tp->segs[i];
        if (rs->state != MK_META_RSEG_COPY_FINISHED)
            continue;
        if (end >= 0 && rs->start > end)
            break;
        end = MK_MAX(end, rs->end + 1);
    }
    return end;
}

static const rseg_t *first_copied(const tpart_t *tp)
{
    for (size_t i = 0; tp && i < tp->n; i++)
        if (tp->segs[i]->state == MK_META_RSEG_COPY_FINISHED)
            return tp->segs[i];
    return NULL;
}

/* The COPY_FINISHED segment holding offset (the latest copy when copies
 * overlap), or NULL. */
static const rseg_t *seg_at(const tpart_t *tp, int64_t offset)
{
    const rseg_t *found = NULL;
    for (size_t i = 0; tp && i < tp->n; i++) {
        const rseg_t *rs = tp->segs[i];
        if (rs->start > offset)
            break;
        if (rs->state == MK_META_RSEG_COPY_FINISHED && rs->end >= offset)
            found = rs;
    }
    return found;
}

static uint64_t backoff_ms(int attempts)
{
    uint64_t ms = BACKOFF_MIN_MS;
    for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return MK_MIN(ms, (uint64_t)BACKOFF_MAX_MS);
}

static int obj_key(mk_tier_t *t, const tpart_t *tp, const rseg_t *rs, int ext, char *out, size_t cap)
{
    return tier_object_key(out, cap, mk_cluster_id(t->c), rs->topic, tp->topic_id, tp->partition, rs->start, rs->id,
                           tier_exts[ext]);
}

static void progress(mk_tier_t *t)
{
    if (t->hooks.progress)
        t->hooks.progress(t->hooks.arg);
}

static void tick_cb(uv_timer_t *h);

/* Run the tick at the next loop iteration (coalesced). */
static void tick_soon(mk_tier_t *t)
{
    if (t->tick_soon)
        return;
    t->tick_soon = true;
    uv_timer_start(t->timer, tick_cb, 0, (uint64_t)t->interval_ms);
}

/* ========================================================= meta writes */

typedef struct mwrite_s {
    tier_ref_t *ref;
    tpart_t *tp;
    rseg_t *rs;
    void (*then)(mk_tier_t *t, struct mwrite_s *w, int status);
    void *extra;                  /* an upload waiting for its COPY_STARTED row */
    void (*drop)(void *extra);    /* frees extra when the module is gone */
} mwrite_t;

static void mwrite_done(int status, void *arg)
{
    mwrite_t *w = arg;
    tier_ref_t *ref = w->ref;
    if (ref->t)
        w->then(ref->t, w, status);
    else if (w->extra && w->drop)
        w->drop(w->extra);
    if (--ref->refs == 0 && !ref->t)
        mk_free(ref);
    mk_free(w);
}

/* The row of rs as the store takes it; blobs encoded into bufs[3]. */
static void row_of(const tpart_t *tp, const rseg_t *rs, mk_buf_t bufs[3], mk_meta_remote_segment_t *r)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->topic_id, tp->topic_id, 16);
    r->partition = tp->partition;
    r->segment_id = rs->id;
    r->topic = rs->topic;
    r->start_offset = rs->start;
    r->end_offset = rs->end;
    r->max_timestamp = rs->max_ts;
    r->size_bytes = rs->size;
    r->state = rs->state;
    r->broker = rs->broker;
    r->leader_epoch = rs->leader_epoch;
    r->crc32c = rs->crc;
    r->sha256 = rs->sha;
    r->event_ms = rs->event_ms;
    if (bufs) {
        for (int i = 0; i < 3; i++)
            mk_buf_init(&bufs[i]);
        tier_epochs_encode(&bufs[0], rs->epochs, rs->nepochs);
        tier_chunks_encode(&bufs[1], rs->chunks, rs->nchunks);
        tier_aborted_encode(&bufs[2], rs->aborted, rs->naborted);
        r->epochs = bufs[0].data;
        r->epochs_len = (int32_t)bufs[0].len;
        r->chunks = bufs[1].data;
        r->chunks_len = (int32_t)bufs[1].len;
        r->aborted = bufs[2].data;
        r->aborted_len = (int32_t)bufs[2].len;
    }
}

/* Submit a write of rs (kind: PUT with every field, STATE, DELETE); then
 * runs on the loop when it is durable.  0, or an error (then is never
 * called; extra is the caller's again). */
static int mwrite(mk_tier_t *t, mk_meta_op_kind_t kind, tpart_t *tp, rseg_t *rs,
                  void (*then)(mk_tier_t *, mwrite_t *, int), void *extra, void (*drop)(void *))
{
    mwrite_t *w = mk_calloc(1, sizeof(*w));
    if (!w)
        return MK_ERR_NOMEM;
    w->ref = t->ref;
    w->tp = tp;
    w->rs = rs;
    w->then = then;
    w->extra = extra;
    w->drop = drop;
    mk_buf_t bufs[3];
    mk_meta_remote_segment_t row;
    row_of(tp, rs, kind == MK_META_REMOTE_SEGMENT_PUT ? bufs : NULL, &row);
    int rc = 0;
    if (kind == MK_META_REMOTE_SEGMENT_PUT && (!mk_buf_ok(&bufs[0]) || !mk_buf_ok(&bufs[1]) || !mk_buf_ok(&bufs[2])))
        rc = MK_ERR_NOMEM;
    if (!rc) {
        mk_meta_op_t op = {.kind = kind, .rs = &row};
        rc = mk_meta_op_submit(t->meta, t->loop, &op, mwrite_done, w);
    }
    if (kind == MK_META_REMOTE_SEGMENT_PUT)
        for (int i = 0; i < 3; i++)
            mk_buf_free(&bufs[i]);
    if (rc < 0) {
        mk_free(w);
        return rc;
    }
    t->ref->refs++;
    return 0;
}

/* ============================================================== deletion */

typedef struct djob_s {
    tier_job_t job;
    tier_ref_t *ref;
    tpart_t *tp;
    rseg_t *rs;
    char keys[TIER_NEXTS][TIER_KEY_MAX];
} djob_t;

static void djob_work(tier_job_t *j, tier_s3_t *s3)
{
    djob_t *d = (djob_t *)j;
    /* the manifest first: what is left without it is plainly incomplete */
    for (int i = TIER_NEXTS - 1; i >= 0 && j->rc == 0; i--)
        j->rc = tier_s3_delete(s3, d->keys[i], j->why, sizeof(j->why));
}

static void djob_release(tier_job_t *j)
{
    djob_t *d = (djob_t *)j;
    tier_ref_t *ref = d->ref;
    if (--ref->refs == 0 && !ref->t)
        mk_free(ref);
    mk_free(d);
}

static void row_deleted(mk_tier_t *t, mwrite_t *w, int status)
{
    rseg_t *rs = w->rs;
    if (status < 0) {
        /* the objects are gone; the row will be deleted at the next start */
        mk_warn("tier: cannot delete the row of remote segment %s: %s", rs->id, mk_strerror(status));
    }
    tier_cache_forget(t->cache, rs->id);
    tpart_remove(w->tp, rs);
    rseg_free(rs);
}

static void djob_done(tier_job_t *j)
{
    djob_t *d = (djob_t *)j;
    mk_tier_t *t = d->ref->t;
    if (t) {
        rseg_t *rs = d->rs;
        t->deletes--;
        if (j->rc == 0) {
            t->deletes_done++;
            bc(t, rs->broker)->deletes_done++;
            rs->state = MK_META_RSEG_DELETE_FINISHED;
            mk_debug("tier: remote segment %s (offsets %" PRId64 "..%" PRId64 ") deleted from S3", rs->id, rs->start,
                     rs->end);
            if (mwrite(t, MK_META_REMOTE_SEGMENT_DELETE, d->tp, rs, row_deleted, NULL, NULL) < 0) {
                tier_cache_forget(t->cache, rs->id);
                tpart_remove(d->tp, rs);
                rseg_free(rs);
            }
        } else {
            t->deletes_failed++;
            bc(t, rs->broker)->deletes_failed++;
            rs->busy = false;
            rs->del_attempts++;
            rs->del_next_ms = mk_mono_ms() + backoff_ms(rs->del_attempts);
            if (rs->del_attempts == 1 || rs->del_attempts % 10 == 0)
                mk_warn("tier: deleting remote segment %s failed (attempt %d, retried): %s", rs->id,
                        rs->del_attempts, j->why);
        }
    }
    djob_release(j);
}

/* Deletes rs's objects (its row already says DELETE_STARTED). */
static void delete_objects(mk_tier_t *t, tpart_t *tp, rseg_t *rs)
{
    if (rs->busy || t->deletes >= MAX_DELETES || mk_mono_ms() < rs->del_next_ms)
        return;
    djob_t *d = mk_calloc(1, sizeof(*d));
    if (!d)
        return;
    d->job.work = djob_work;
    d->job.done = djob_done;
    d->job.release = djob_release;
    d->job.queue = TIER_Q_WRITE;
    d->ref = t->ref;
    d->tp = tp;
    d->rs = rs;
    for (int i = 0; i < TIER_NEXTS; i++)
        obj_key(t, tp, rs, i, d->keys[i], sizeof(d->keys[i]));
    t->ref->refs++;
    rs->busy = true;
    t->deletes++;
    tier_s3_submit(t->s3, &d->job);
}

static void delete_started(mk_tier_t *t, mwrite_t *w, int status)
{
    rseg_t *rs = w->rs;
    rs->busy = false;
    if (status < 0) {
        mk_warn("tier: cannot mark remote segment %s DELETE_STARTED: %s", rs->id, mk_strerror(status));
        rs->del_next_ms = mk_mono_ms() + backoff_ms(++rs->del_attempts);
        return;
    }
    delete_objects(t, w->tp, rs);
}

/* A remote segment goes: DELETE_STARTED in memory at once (nothing reads
 * it from now on), durably, then its objects. */
static void delete_segment(mk_tier_t *t, tpart_t *tp, rseg_t *rs, const char *why)
{
    if (rs->busy)
        return;
    if (rs->state == MK_META_RSEG_COPY_FINISHED)
        mk_info("tier: %s-%d: remote segment %s (offsets %" PRId64 "..%" PRId64 ", %" PRId64 " bytes) goes: %s",
                rs->topic, (int)tp->partition, rs->id, rs->start, rs->end, rs->size, why);
    rs->state = MK_META_RSEG_DELETE_STARTED;
    rs->event_ms = mk_now_ms();
    tier_cache_forget(t->cache, rs->id);
    rs->busy = true;
    if (mwrite(t, MK_META_REMOTE_SEGMENT_STATE, tp, rs, delete_started, NULL, NULL) < 0) {
        rs->busy = false;
        rs->del_next_ms = mk_mono_ms() + backoff_ms(++rs->del_attempts);
    }
}

/* ================================================================ copying */

typedef struct up_ctx_s {
    tier_ref_t *ref;
    tpart_t *tp;
    rseg_t *rs;
    int32_t broker;
} up_ctx_t;

static void upload_release(tier_job_t *j)
{
    tier_upload_t *u = (tier_upload_t *)j;
    up_ctx_t *x = u->owner;
    for (int i = 0; i < 3; i++)
        if (u->fds[i] >= 0)
            close(u->fds[i]);
    mk_buf_free(&u->epochs_text);
    mk_buf_free(&u->snapshot);
    mk_free(u->scratch);
    mk_free(u->chunks);
    if (x) {
        if (--x->ref->refs == 0 && !x->ref->t)
            mk_free(x->ref);
        mk_free(x);
    }
    mk_free(u);
}

static void upload_drop(void *extra) { upload_release(extra); }

/* The copy of tp failed (or could not start): its partial objects go, and
 * the next attempt waits. */
static void upload_failed(mk_tier_t *t, tpart_t *tp, rseg_t *rs, int32_t broker, const char *why)
{
    tp->uploading = false;
    t->uploads--;
    bc(t, broker)->uploads_in_flight--;
    tp->attempts++;
    tp->uploads_failed++;
    t->uploads_failed++;
    bc(t, broker)->uploads_failed++;
    tp->next_try_ms = mk_mono_ms() + backoff_ms(tp->attempts);
    snprintf(tp->last_error, sizeof(tp->last_error), "%s", why);
    if (tp->attempts == 1 || tp->attempts % 10 == 0)
        mk_warn("tier: %s-%d: copying segment %" PRId64 " to S3 failed (attempt %d; retried in %llu ms, the local "
                "segment is kept): %s",
                rs->topic, (int)tp->partition, rs->start, tp->attempts,
                (unsigned long long)backoff_ms(tp->attempts), why);
    /* Kept COPY_STARTED and tried again under the same id (its objects, if
     * any got there, are overwritten), unless the segment is no longer the
     * one to copy by then (maybe_copy). */
    rs->busy = false;
    tp->retry = rs;
}

static void copy_finished(mk_tier_t *t, mwrite_t *w, int status)
{
    up_ctx_t *x = w->extra;
    tpart_t *tp = w->tp;
    rseg_t *rs = w->rs;
    if (status < 0) {
        rs->state = MK_META_RSEG_COPY_STARTED;
        upload_failed(t, tp, rs, x->broker, "the COPY_FINISHED row could not be written");
        mk_free(x);
        return;
    }
    rs->state = MK_META_RSEG_COPY_FINISHED;
    rs->busy = false;
    tp->uploading = false;
    tp->attempts = 0;
    tp->last_error[0] = 0;
    t->uploads--;
    t->uploads_done++;
    bctr_t *b = bc(t, x->broker);
    b->uploads_in_flight--;
    b->uploads_done++;
    b->upload_bytes += (uint64_t)rs->size;
    mk_info("tier: %s-%d: segment %" PRId64 "..%" PRId64 " (%" PRId64 " bytes) copied to S3 as %s", rs->topic,
            (int)tp->partition, rs->start, rs->end, rs->size, rs->id);
    mk_free(x);
    tick_soon(t); /* local retention may proceed; the next segment may go */
}

static void upload_done(tier_job_t *j)
{
    tier_upload_t *u = (tier_upload_t *)j;
    up_ctx_t *x = u->owner;
    mk_tier_t *t = x->ref->t;
    if (!t) {
        upload_release(j);
        return;
    }
    tpart_t *tp = x->tp;
    rseg_t *rs = x->rs;
    if (j->rc) {
        upload_failed(t, tp, rs, x->broker, j->why);
        upload_release(j);
        return;
    }
    rs->end = u->last_offset;
    rs->max_ts = u->max_ts;
    rs->crc = u->crc32c;
    memcpy(rs->sha, u->sha256, sizeof(rs->sha));
    rs->chunks = u->chunks;
    rs->nchunks = u->nchunks;
    u->chunks = NULL;
    rs->event_ms = mk_now_ms();
    /* The row says COPY_FINISHED first; the memory follows once it is
     * durable (copy_finished). */
    rs->state = MK_META_RSEG_COPY_FINISHED;
    u->owner = NULL; /* x travels on with the write */
    if (mwrite(t, MK_META_REMOTE_SEGMENT_PUT, tp, rs, copy_finished, x, mk_free) < 0) {
        rs->state = MK_META_RSEG_COPY_STARTED;
        u->owner = x;
        upload_failed(t, tp, rs, x->broker, "the COPY_FINISHED row could not be written");
        upload_release(j);
        return;
    }
    rs->state = MK_META_RSEG_COPY_STARTED; /* until copy_finished */
    x->ref->refs--; /* the write holds its own reference */
    upload_release(j);
}

static void copy_started(mk_tier_t *t, mwrite_t *w, int status)
{
    tier_upload_t *u = w->extra;
    up_ctx_t *x = u->owner;
    if (status < 0) {
        char why[120];
        snprintf(why, sizeof(why), "the COPY_STARTED row could not be written: %s", mk_strerror(status));
        upload_failed(t, x->tp, x->rs, x->broker, why);
        upload_release(&u->job);
        return;
    }
    tier_s3_submit(t->s3, &u->job);
}

typedef struct collect_s {
    mk_buf_t *b;
    tier_producer_t *v;
    size_t n, cap;
    tier_aborted_t *ab;
    size_t nab, abcap;
    bool oom;
} collect_t;

static void collect_producer(int64_t pid, int16_t epoch, int32_t last_seq, int64_t last_ts, int64_t txn_start,
                             void *arg)
{
    collect_t *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        tier_producer_t *v = mk_realloc(c->v, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = (tier_producer_t){pid, epoch, last_seq, last_ts, txn_start};
}

static void collect_aborted(int64_t pid, int64_t first, int64_t last, void *arg)
{
    collect_t *c = arg;
    if (c->nab == c->abcap) {
        size_t cap = c->abcap ? c->abcap * 2 : 8;
        tier_aborted_t *v = mk_realloc(c->ab, cap * sizeof(*v));
        if (!v) {
            c->oom = true;
            return;
        }
        c->ab = v;
        c->abcap = cap;
    }
    c->ab[c->nab++] = (tier_aborted_t){pid, first, last};
}

/* Fills the copy job u of local segment si (of log) as remote segment rs
 * of tp: duplicated descriptors, buffers, the companion objects (epochs
 * from rs, the producers given, the aborted transactions from rs), the
 * object keys and the manifest's fields known on the loop.  The caller
 * sets done and release.  0, MK_ERR_NOT_FOUND (the segment's files cannot
 * be opened), MK_ERR_NOMEM or another error; u is then released by the
 * caller. */
static int upload_fill(mk_tier_t *t, tpart_t *tp, rseg_t *rs, tier_upload_t *u, mk_log_t *log,
                       const mk_log_segment_info_t *si, const tier_producer_t *producers, size_t nproducers)
{
    mk_buf_init(&u->epochs_text);
    mk_buf_init(&u->snapshot);
    if (mk_log_segment_dup_fds(log, si->base_offset, u->fds) < 0)
        return MK_ERR_NOT_FOUND;
    u->job.work = tier_upload_work;
    u->job.queue = TIER_Q_WRITE;
    u->size = si->size_bytes;
    u->start_offset = si->base_offset;
    u->end_offset = si->end_offset;
    u->chunk_bytes = t->chunk_bytes;
    u->max_chunks = (size_t)(si->size_bytes / t->chunk_bytes) + 2;
    u->chunks = mk_malloc(sizeof(*u->chunks) * u->max_chunks);
    u->scratch_len = (size_t)MK_MIN((uint64_t)SCRATCH_BYTES, MK_MAX(si->size_bytes, (uint64_t)MK_BATCH_HEADER_SIZE));
    u->scratch = mk_malloc(u->scratch_len);
    tier_epochs_checkpoint_text(&u->epochs_text, rs->epochs, rs->nepochs);
    tier_snapshot_encode(&u->snapshot, si->end_offset, producers, nproducers, rs->aborted, rs->naborted);
    if (!u->chunks || !u->scratch || !mk_buf_ok(&u->epochs_text) || !mk_buf_ok(&u->snapshot))
        return MK_ERR_NOMEM;
    for (int i = 0; i < TIER_NEXTS; i++) {
        int rc = obj_key(t, tp, rs, i, u->keys[i], sizeof(u->keys[i]));
        if (rc < 0)
            return rc;
    }
    tier_manifest_t *m = &u->manifest;
    m->cluster_id = mk_cluster_id(t->c);
    m->topic = rs->topic;
    m->segment_id = rs->id;
    mk_cluster_uuid_str(tp->topic_id, m->topic_id);
    m->partition = tp->partition;
    m->broker = rs->broker;
    m->leader_epoch = rs->leader_epoch;
    m->start_offset = rs->start;
    m->size = rs->size;
    m->created_ms = rs->event_ms;
    m->nepochs = rs->nepochs;
    m->nproducers = nproducers;
    m->naborted = rs->naborted;
    return 0;
}

/* Start copying the leader's sealed segment si of p; again is the copy of
 * it that failed before (its row exists: the same id, no new row). */
static void upload_start(mk_tier_t *t, tpart_t *tp, mk_partition_t *p, mk_log_t *log, const mk_log_segment_info_t *si,
                         rseg_t *again)
{
    rseg_t *rs = again ? again : mk_calloc(1, sizeof(*rs));
    tier_upload_t *u = mk_calloc(1, sizeof(*u));
    up_ctx_t *x = mk_calloc(1, sizeof(*x));
    collect_t col = {0};
    if (!rs || !u || !x)
        goto nomem;
    u->fds[0] = u->fds[1] = u->fds[2] = -1;
    if (again) {
        mk_free(rs->epochs);
        mk_free(rs->aborted);
        mk_free(rs->chunks);
        rs->epochs = NULL;
        rs->aborted = NULL;
        rs->chunks = NULL;
        rs->nepochs = rs->naborted = rs->nchunks = 0;
    } else {
        tier_segment_id(rs->id);
    }
    rs->start = si->base_offset;
    rs->end = si->end_offset - 1;
    rs->max_ts = si->max_timestamp;
    rs->size = (int64_t)si->size_bytes;
    rs->state = MK_META_RSEG_COPY_STARTED;
    rs->broker = p->leader;
    rs->leader_epoch = p->leader_epoch;
    rs->event_ms = mk_now_ms();
    snprintf(rs->topic, sizeof(rs->topic), "%s", p->topic->name);
    /* Its leader-epoch map: the epoch in force at its start, and those that
     * began inside it. */
    mk_log_epoch_entry_t ev[64];
    size_t ne = mk_log_epoch_entries(log, ev, MK_ARRAY_LEN(ev));
    mk_log_epoch_entry_t *all = ev;
    if (ne > MK_ARRAY_LEN(ev)) {
        ne = MK_MIN(ne, (size_t)MAX_EPOCHS);
        all = mk_malloc(sizeof(*all) * ne);
        if (!all)
            goto nomem;
        mk_log_epoch_entries(log, all, ne);
    }
    rs->epochs = mk_malloc(sizeof(*rs->epochs) * (ne ? ne : 1));
    if (!rs->epochs) {
        if (all != ev)
            mk_free(all);
        goto nomem;
    }
    for (size_t i = 0; i < ne; i++) {
        if (all[i].start_offset >= si->end_offset)
            break;
        mk_log_epoch_entry_t e = all[i];
        if (e.start_offset <= si->base_offset) {
            e.start_offset = si->base_offset;
            rs->nepochs = 0; /* only the latest one at or below the start counts */
        }
        rs->epochs[rs->nepochs++] = e;
    }
    if (all != ev)
        mk_free(all);
    /* Producer state and the transactions aborted in it. */
    if (t->hooks.aborted)
        t->hooks.aborted(t->hooks.arg, p, si->base_offset, si->end_offset, collect_aborted, &col);
    if (t->hooks.producers)
        t->hooks.producers(t->hooks.arg, p, collect_producer, &col);
    if (col.oom)
        goto nomem;
    rs->aborted = col.ab;
    rs->naborted = col.nab;
    col.ab = NULL;
    /* The job. */
    int frc = upload_fill(t, tp, rs, u, log, si, col.v, col.n);
    if (frc == MK_ERR_NOT_FOUND) {
        mk_warn("tier: %s-%d: cannot open segment %" PRId64 " for copying", p->topic->name, p->index,
                si->base_offset);
        goto fail;
    }
    if (frc == MK_ERR_NOMEM)
        goto nomem;
    if (frc < 0)
        goto fail;
    u->job.done = upload_done;
    u->job.release = upload_release;
    mk_free(col.v);
    col.v = NULL;
    x->ref = t->ref;
    x->tp = tp;
    x->rs = rs;
    x->broker = rs->broker;
    u->owner = x;
    if (!again && tpart_insert(tp, rs) < 0)
        goto nomem;
    t->ref->refs++; /* x's */
    rs->busy = true;
    tp->uploading = true;
    t->uploads++;
    bc(t, rs->broker)->uploads_in_flight++;
    if (again) {
        tier_s3_submit(t->s3, &u->job); /* its COPY_STARTED row is there */
        return;
    }
    if (mwrite(t, MK_META_REMOTE_SEGMENT_PUT, tp, rs, copy_started, u, upload_drop) < 0) {
        upload_failed(t, tp, rs, x->broker, "the COPY_STARTED row could not be submitted");
        upload_release(&u->job);
    }
    return;
nomem:
    mk_warn("tier: out of memory preparing a copy of %s-%d", p->topic->name, p->index);
fail:
    mk_free(col.v);
    mk_free(col.ab);
    if (again)
        delete_segment(t, tp, rs, "its copy could not be prepared again");
    else
        rseg_free(rs);
    if (u) {
        u->owner = NULL;
        upload_release(&u->job);
    }
    mk_free(x);
    tp->next_try_ms = mk_mono_ms() + backoff_ms(++tp->attempts);
}

/* Whether a segment is past its topic's total retention.ms: it goes
 * everywhere, so it is neither copied nor kept for a copy. */
static bool past_total(const mk_topic_t *topic, int64_t max_ts, int64_t now)
{
    return topic->cfg.retention_ms >= 0 && now - max_ts > topic->cfg.retention_ms;
}

/* The leader's oldest sealed segment that S3 does not hold yet, at or below
 * bound; false if none.  pending and pending_bytes (may be NULL) count
 * them all. */
static bool next_to_copy(const mk_topic_t *topic, const tpart_t *tp, mk_log_t *log, int64_t bound,
                         mk_log_segment_info_t *out, int32_t *pending, int64_t *pending_bytes)
{
    int64_t done = copied_end(tp), now = mk_now_ms();
    bool found = false;
    size_t n = mk_log_segment_count(log);
    for (size_t i = 0; i + 1 < n; i++) {
        mk_log_segment_info_t si;
        mk_log_segment_info(log, i, &si);
        if (si.size_bytes == 0 || si.end_offset <= done || si.end_offset <= mk_log_start_offset(log) ||
            past_total(topic, si.max_timestamp, now))
            continue;
        if (pending) {
            (*pending)++;
            *pending_bytes += (int64_t)si.size_bytes;
        }
        if (!found && si.end_offset <= bound) {
            *out = si;
            found = true;
        }
    }
    return found;
}

static void maybe_copy(mk_tier_t *t, mk_partition_t *p)
{
    if (p->leader < 0 || !p->log || t->uploads >= MAX_UPLOADS)
        return;
    tpart_t *tp = tpart_get(t, p->topic->id, p->index);
    if (!tp || tp->uploading || mk_mono_ms() < tp->next_try_ms)
        return;
    int64_t bound = p->hw;
    if (t->hooks.stable_offset) {
        int64_t lso = t->hooks.stable_offset(t->hooks.arg, p);
        if (lso < 0)
            return; /* producer state loading */
        bound = MK_MIN(bound, lso);
    }
    mk_log_segment_info_t si;
    bool found = next_to_copy(p->topic, tp, p->log, bound, &si, NULL, NULL);
    rseg_t *again = tp->retry;
    tp->retry = NULL;
    if (again && (!found || again->start != si.base_offset || again->size != (int64_t)si.size_bytes ||
                  again->broker != p->leader)) {
        /* Not the segment to copy any more (a new leader, other segments):
         * what the failed copy left goes. */
        delete_segment(t, tp, again, "its copy failed and is not retried");
        again = NULL;
    }
    if (!found)
        return;
    if (again) {
        again->leader_epoch = p->leader_epoch;
        again->event_ms = mk_now_ms();
        upload_start(t, tp, p, p->log, &si, again);
        return;
    }
    int64_t done = copied_end(tp);
    if (done >= 0 && si.base_offset > done && done >= mk_log_start_offset(p->log) && !tp->gap_warned) {
        mk_warn("tier: %s-%d: S3 holds offsets up to %" PRId64 " but the leader's next segment starts at %" PRId64
                ": the offsets between are in neither", p->topic->name, p->index, done - 1, si.base_offset);
        tp->gap_warned = true;
    }
    upload_start(t, tp, p, p->log, &si, NULL);
}

/* ============================================================== retention */

/* Retention of one replica log of a tiered topic, oldest segment first:
 *   past retention.ms (the total): deleted, copied or not -- the copy in S3
 *     goes too (retain_remote), as everything of that age;
 *   in S3 (verified, durable: it ends at or below copied_end) and past
 *     local.retention.ms, or keeping the log above local.retention.bytes:
 *     deleted ("... (copied to S3)" in the log line);
 *   anything else stays, S3 down or not.
 * Segments whose copy left S3 by total retention (below deleted_upto) go
 * too. */
static void retain_local(mk_tier_t *t, const mk_topic_t *topic, tpart_t *tp, mk_log_t *log, int64_t now)
{
    (void)t;
    if (tp && tp->deleted_upto > mk_log_start_offset(log))
        mk_log_retain_to(log, tp->deleted_upto, "retention (tiered: its copy left S3)");
    int64_t limit = copied_end(tp);
    int64_t lms = topic->cfg.local_retention_ms, lbytes = topic->cfg.local_retention_bytes;
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    int64_t total = (int64_t)st.size_bytes;
    while (mk_log_segment_count(log) > 1) {
        mk_log_segment_info_t si;
        mk_log_segment_info(log, 0, &si);
        const char *why;
        if (past_total(topic, si.max_timestamp, now))
            why = "retention.ms";
        else if (limit < 0 || si.end_offset > limit)
            break; /* not in S3 (yet): kept */
        else if (lms >= 0 && now - si.max_timestamp > lms)
            why = "local.retention.ms (copied to S3)";
        else if (lbytes >= 0 && total - (int64_t)si.size_bytes >= lbytes)
            why = "local.retention.bytes (copied to S3)";
        else
            break;
        if (mk_log_retain_to(log, si.end_offset, why) < 1)
            break;
        total -= (int64_t)si.size_bytes;
    }
}

/* Total retention of p's remote segments. */
static void retain_remote(mk_tier_t *t, const mk_topic_t *topic, tpart_t *tp, mk_partition_t *p, int64_t now)
{
    int64_t rms = topic->cfg.retention_ms, rbytes = topic->cfg.retention_bytes;
    if (!tp || (rms < 0 && rbytes < 0))
        return;
    int64_t total = 0;
    int64_t done = copied_end(tp);
    for (size_t i = 0; i < tp->n; i++)
        if (tp->segs[i]->state == MK_META_RSEG_COPY_FINISHED)
            total += tp->segs[i]->size;
    if (p->log) {
        size_t n = mk_log_segment_count(p->log);
        for (size_t i = 0; i < n; i++) {
            mk_log_segment_info_t si;
            mk_log_segment_info(p->log, i, &si);
            if (si.end_offset > done)
                total += (int64_t)si.size_bytes;
        }
    }
    for (size_t i = 0; i < tp->n; i++) {
        rseg_t *rs = tp->segs[i];
        if (rs->state != MK_META_RSEG_COPY_FINISHED || rs->busy)
            continue;
        bool old = rms >= 0 && now - rs->max_ts > rms;
        bool big = rbytes >= 0 && total - rs->size >= rbytes;
        if (!old && !big)
            break;
        total -= rs->size;
        tp->deleted_upto = MK_MAX(tp->deleted_upto, rs->end + 1);
        delete_segment(t, tp, rs, old ? "retention.ms" : "retention.bytes");
    }
}

/* =================================================================== tick */

static void tick_cb(uv_timer_t *h)
{
    mk_tier_t *t = h->data;
    if (t->tick_soon) {
        t->tick_soon = false;
        uv_timer_start(t->timer, tick_cb, (uint64_t)t->interval_ms, (uint64_t)t->interval_ms);
    }
    int64_t now = mk_now_ms();
    size_t it = 0;
    mk_topic_t *topic;
    while ((topic = mk_cluster_topic_next(t->c, &it))) {
        if (!topic->cfg.tiered)
            continue;
        for (int32_t i = 0; i < topic->partition_count; i++) {
            mk_partition_t *p = &topic->partitions[i];
            tpart_t *tp = tpart_find(t, topic->id, i);
            if (p->leader >= 0)
                retain_remote(t, topic, tp, p, now);
            for (int32_t k = 0; k < p->replica_count; k++)
                if (p->replicas[k].log)
                    retain_local(t, topic, tp, p->replicas[k].log, now);
            maybe_copy(t, p);
        }
    }
    /* Partitions whose topic is gone (or were never loaded back): their
     * remote segments go; failed deletes are retried. */
    const char *k;
    void *v;
    for (size_t pi = 0; mk_map_next(&t->parts, &pi, &k, &v);) {
        tpart_t *tp = v;
        mk_topic_t *tt = mk_cluster_topic_find_id(t->c, tp->topic_id);
        bool gone = !tt || tp->partition >= tt->partition_count;
        if (gone)
            tp->retry = NULL; /* deleted below with the rest */
        for (size_t i = 0; i < tp->n; i++) {
            rseg_t *rs = tp->segs[i];
            if (rs->busy)
                continue;
            if (rs->state == MK_META_RSEG_DELETE_STARTED) {
                delete_objects(t, tp, rs);
            } else if (gone && mk_mono_ms() >= rs->del_next_ms) {
                delete_segment(t, tp, rs, "its topic was deleted");
            }
        }
        if (gone && tp->n == 0 && !tp->uploading) {
            mk_map_del(&t->parts, k);
            mk_free(tp->segs);
            mk_free(tp);
        }
    }
}

/* The partition writer's observer: a sealed segment or a new leader is a
 * reason to look at once. */
static void obs_segment(void *arg, mk_partition_t *p, int32_t broker, const mk_log_segment_event_t *ev)
{
    mk_tier_t *t = arg;
    if (ev->type == MK_LOG_SEGMENT_SEALED && broker == p->leader && p->topic->cfg.tiered)
        tick_soon(t);
}

static void obs_leader(void *arg, mk_partition_t *p)
{
    mk_tier_t *t = arg;
    if (p->topic->cfg.tiered)
        tick_soon(t);
}

/* =================================================================== load */

static int load_row(const mk_meta_remote_segment_t *r, void *arg)
{
    mk_tier_t *t = arg;
    tpart_t *tp = tpart_get(t, r->topic_id, r->partition);
    rseg_t *rs = mk_calloc(1, sizeof(*rs));
    if (!tp || !rs) {
        mk_free(rs);
        return MK_ERR_NOMEM;
    }
    snprintf(rs->id, sizeof(rs->id), "%s", r->segment_id);
    snprintf(rs->topic, sizeof(rs->topic), "%s", r->topic);
    snprintf(rs->sha, sizeof(rs->sha), "%s", r->sha256);
    rs->start = r->start_offset;
    rs->end = r->end_offset;
    rs->max_ts = r->max_timestamp;
    rs->size = r->size_bytes;
    rs->state = r->state;
    rs->broker = r->broker;
    rs->leader_epoch = r->leader_epoch;
    rs->crc = r->crc32c;
    rs->event_ms = r->event_ms;
    int rc = tier_epochs_decode(r->epochs, (size_t)r->epochs_len, &rs->epochs, &rs->nepochs);
    if (!rc)
        rc = tier_chunks_decode(r->chunks, (size_t)r->chunks_len, (uint64_t)rs->size, &rs->chunks, &rs->nchunks);
    if (!rc)
        rc = tier_aborted_decode(r->aborted, (size_t)r->aborted_len, &rs->aborted, &rs->naborted);
    if (rc == MK_ERR_NOMEM) {
        rseg_free(rs);
        return rc;
    }
    if (rc || (rs->state == MK_META_RSEG_COPY_FINISHED && rs->nchunks == 0)) {
        /* A row we cannot trust is not read from: it is deleted. */
        mk_warn("tier: remote segment %s of %s-%d: malformed metadata; it is deleted", rs->id, rs->topic,
                (int)r->partition);
        rs->state = MK_META_RSEG_DELETE_STARTED;
    }
    if (rs->state == MK_META_RSEG_COPY_STARTED) {
        mk_info("tier: %s-%d: the copy of segment %" PRId64 " (%s) did not finish before the stop: it is deleted and "
                "made again", rs->topic, (int)r->partition, rs->start, rs->id);
        rs->state = MK_META_RSEG_DELETE_STARTED;
    }
    if (tpart_insert(tp, rs) < 0) {
        rseg_free(rs);
        return MK_ERR_NOMEM;
    }
    return 0;
}

/* ================================================================ module */

int mk_tier_target_resolve(const mk_config_t *cfg, const char *bundled_url, const char *bundled_bucket,
                           const char *bundled_access_key, const char *bundled_secret_key,
                           const char *bundled_region, mk_tier_target_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (!mk_cluster_config_get_bool(cfg, "remote.log.storage.system.enable"))
        return 0;
    const char *ep = mk_cluster_config_get(cfg, "minikora.s3.endpoint");
    const char *url, *bucket, *ak, *sk, *region;
    if (ep && *ep) {
        url = ep;
        bucket = mk_cluster_config_get(cfg, "minikora.s3.bucket");
        ak = mk_cluster_config_get(cfg, "minikora.s3.access.key");
        sk = mk_cluster_config_get(cfg, "minikora.s3.secret.key");
        region = mk_cluster_config_get(cfg, "minikora.s3.region");
        out->virtual_style = strcmp(mk_cluster_config_get(cfg, "minikora.s3.uri.style"), "virtual") == 0;
        if (!bucket || !*bucket || !ak || !*ak || !sk || !*sk) {
            snprintf(why, why_len, "minikora.s3.endpoint needs minikora.s3.bucket, minikora.s3.access.key and "
                                   "minikora.s3.secret.key");
            return MK_ERR_INVALID;
        }
    } else if (bundled_url) {
        url = bundled_url;
        bucket = bundled_bucket;
        ak = bundled_access_key;
        sk = bundled_secret_key;
        region = bundled_region;
        out->bundled = true;
    } else {
        return 0;
    }
    const char *h = url;
    if (strncmp(h, "http://", 7) == 0) {
        h += 7;
    } else if (strncmp(h, "https://", 8) == 0) {
        h += 8;
        out->https = true;
    } else {
        snprintf(why, why_len, "minikora.s3.endpoint '%s' is not an http:// or https:// URL", url);
        return MK_ERR_INVALID;
    }
    size_t hl = strcspn(h, "/");
    if (hl == 0 || hl >= sizeof(out->host) || strlen(bucket) >= sizeof(out->bucket) ||
        strlen(ak) >= sizeof(out->access_key) || strlen(sk) >= sizeof(out->secret_key)) {
        snprintf(why, why_len, "the S3 endpoint, bucket or keys are too long or empty");
        return MK_ERR_INVALID;
    }
    snprintf(out->url, sizeof(out->url), "%.*s", (int)(h - url + hl), url);
    snprintf(out->host, sizeof(out->host), "%.*s", (int)hl, h);
    snprintf(out->bucket, sizeof(out->bucket), "%s", bucket);
    snprintf(out->access_key, sizeof(out->access_key), "%s", ak);
    snprintf(out->secret_key, sizeof(out->secret_key), "%s", sk);
    snprintf(out->region, sizeof(out->region), "%s", region && *region ? region : "us-east-1");
    return 1;
}

static void cache_ready(void *arg) { progress(arg); }

int mk_tier_new(uv_loop_t *loop, mk_cluster_t *c, mk_partition_writer_t *writer, const mk_tier_target_t *target,
                const mk_tier_hooks_t *hooks, const char *data_dir, mk_tier_t **out)
{
    const mk_config_t *cfg = mk_cluster_config(c);
    mk_tier_t *t = mk_calloc(1, sizeof(*t));
    if (!t)
        return MK_ERR_NOMEM;
    t->loop = loop;
    t->c = c;
    t->writer = writer;
    t->meta = mk_cluster_meta(c);
    t->target = *target;
    if (hooks)
        t->hooks = *hooks;
    t->interval_ms = MK_MAX(mk_cluster_config_get_i64(cfg, "remote.log.manager.task.interval.ms"), 10);
    t->chunk_bytes = (uint64_t)MK_MAX(mk_cluster_config_get_i64(cfg, "minikora.tier.chunk.bytes"), 4096);
    mk_map_init(&t->parts);
    mk_buf_init(&t->scratch);
    t->ref = mk_calloc(1, sizeof(*t->ref));
    t->timer = mk_malloc(sizeof(uv_timer_t));
    t->check_timer = mk_malloc(sizeof(uv_timer_t));
    if (!t->ref || !t->timer || !t->check_timer) {
        mk_free(t->ref);
        mk_free(t->timer);
        mk_free(t->check_timer);
        mk_free(t);
        return MK_ERR_NOMEM;
    }
    t->ref->t = t;
    t->ref->refs = 1;
    int rc = mk_meta_remote_segments_foreach(t->meta, load_row, t);
    if (rc < 0) {
        mk_error("tier: cannot load the remote log metadata: %s", mk_strerror(rc));
        goto fail;
    }
    rc = tier_s3_new(loop, target, (int32_t)mk_cluster_config_get_i64(cfg, "minikora.tier.request.timeout.ms"), &t->s3);
    if (rc < 0)
        goto fail;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tier-cache", data_dir);
    tier_cache_opts_t co = {loop, t->s3, dir, (uint64_t)mk_cluster_config_get_i64(cfg, "minikora.tier.cache.memory.bytes"),
                            (uint64_t)mk_cluster_config_get_i64(cfg, "minikora.tier.cache.disk.bytes"), cache_ready, t};
    rc = tier_cache_new(&co, &t->cache);
    if (rc < 0)
        goto fail;
    mk_partition_observer_t obs = {.name = "tier", .leader_changed = obs_leader, .segment = obs_segment, .arg = t};
    rc = mk_partition_writer_observe(writer, &obs);
    if (rc < 0)
        goto fail;
    uv_timer_init(loop, t->timer);
    t->timer->data = t;
    uv_timer_init(loop, t->check_timer);
    t->check_timer->data = t;
    uv_timer_start(t->timer, tick_cb, (uint64_t)t->interval_ms, (uint64_t)t->interval_ms);
    mk_cluster_set_tiering(c, true);
    size_t nsegs = 0;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&t->parts, &it, &k, &v);)
        nsegs += ((tpart_t *)v)->n;
    mk_info("tier: tiered storage to %s bucket %s%s (%zu remote segments known)", target->url, target->bucket,
            target->bundled ? " (the bundled server)" : "", nsegs);
    *out = t;
    return 0;
fail:
    tier_s3_free(t->s3);
    tier_cache_free(t->cache);
    mk_free(t->timer);
    mk_free(t->check_timer);
    mk_free(t->ref);
    const char *kk;
    void *vv;
    for (size_t it = 0; mk_map_next(&t->parts, &it, &kk, &vv);) {
        tpart_t *tp = vv;
        for (size_t i = 0; i < tp->n; i++)
            rseg_free(tp->segs[i]);
        mk_free(tp->segs);
        mk_free(tp);
    }
    mk_map_free(&t->parts);
    mk_free(t);
    return rc;
}

void mk_tier_free(mk_tier_t *t)
{
    if (!t)
        return;
    mk_cluster_set_tiering(t->c, false);
    /* The observer stays registered with the writer, which broker/ frees
     * right after this, with no event in between. */
    uv_timer_stop(t->timer);
    uv_close((uv_handle_t *)t->timer, (uv_close_cb)mk_free);
    tier_ref_t *ref = t->ref;
    ref->t = NULL;
    tier_s3_free(t->s3); /* releases the jobs: their references go */
    tier_cache_free(t->cache);
    uv_timer_stop(t->check_timer);
    uv_close((uv_handle_t *)t->check_timer, (uv_close_cb)mk_free);
    if (t->check)
        check_abandon(t->check);
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&t->parts, &it, &k, &v);) {
        tpart_t *tp = v;
        for (size_t i = 0; i < tp->n; i++)
            rseg_free(tp->segs[i]);
        mk_free(tp->segs);
        mk_free(tp);
    }
    mk_map_free(&t->parts);
    mk_buf_free(&t->scratch);
    if (--ref->refs == 0)
        mk_free(ref);
    mk_free(t);
}

const mk_tier_target_t *mk_tier_target(const mk_tier_t *t) { return &t->target; }

/* ================================================================== reads */

int64_t mk_tier_log_start(mk_tier_t *t, const mk_partition_t *p, int64_t local_start)
{
    if (!t)
        return local_start;
    const rseg_t *rs = first_copied(tpart_of(t, p));
    return rs && rs->start < local_start ? rs->start : local_start;
}

int64_t mk_tier_last_tiered_offset(mk_tier_t *t, const mk_partition_t *p)
{
    if (!t)
        return -1;
    int64_t end = copied_end(tpart_of(t, p));
    return end < 0 ? -1 : end - 1;
}

/* The chunk index of rs holding offset: the last chunk whose first batch
 * starts at or below it (0 when offset is before the first batch). */
static size_t chunk_for(const rseg_t *rs, int64_t offset)
{
    size_t lo = 0, hi = rs->nchunks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->chunks[mid].base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

static void chunk_range(const rseg_t *rs, size_t k, uint64_t *pos, uint64_t *len)
{
    *pos = rs->chunks[k].pos;
    uint64_t end = k + 1 < rs->nchunks ? rs->chunks[k + 1].pos : (uint64_t)rs->size;
    *len = end - *pos;
}

/* Lookup of chunk k of rs through the cache, counted for broker. */
static int chunk_get(mk_tier_t *t, const tpart_t *tp, const rseg_t *rs, size_t k, int32_t broker, const uint8_t **data,
                     size_t *len)
{
    char key[TIER_KEY_MAX];
    uint64_t pos, clen;
    if (obj_key(t, tp, rs, 0, key, sizeof(key)) < 0)
        return MK_ERR_INVALID;
    chunk_range(rs, k, &pos, &clen);
    int where;
    int rc = tier_cache_get(t->cache, rs->id, k, key, pos, clen, data, len, &where);
    bctr_t *b = bc(t, broker);
    if (where == 0)
        b->cache_hits++;
    else if (where > 0)
        b->cache_misses++;
    if (where == 2)
        b->download_bytes += clen;
    if (rc == 0 && *len != clen)
        return MK_ERR_CORRUPT;
    return rc;
}

static void read_ahead(mk_tier_t *t, const tpart_t *tp, const rseg_t *rs, size_t k)
{
    char key[TIER_KEY_MAX];
    if (obj_key(t, tp, rs, 0, key, sizeof(key)) < 0)
        return;
    for (size_t i = k; i < k + READ_AHEAD && i < rs->nchunks; i++) {
        uint64_t pos, len;
        chunk_range(rs, i, &pos, &len);
        tier_cache_prefetch(t->cache, rs->id, i, key, pos, len);
    }
}

int mk_tier_read(mk_tier_t *t, mk_partition_t *p, int32_t broker, int64_t offset, int64_t max_offset,
                 size_t max_bytes, mk_buf_t *out, int64_t *next)
{
    tpart_t *tp = tpart_of(t, p);
    const rseg_t *rs = seg_at(tp, offset);
    if (!rs || rs->nchunks == 0)
        return MK_ERR_RANGE;
    bctr_t *b = bc(t, broker);
    size_t mark = out->len, total = 0;
    int64_t nxt = offset;
    bool any = false, stop = false;
    int rc = 0;
    size_t k = chunk_for(rs, offset);
    for (; k < rs->nchunks && !stop; k++) {
        const uint8_t *data;
        size_t len;
        rc = chunk_get(t, tp, rs, k, broker, &data, &len);
        if (rc) {
            if (any)
                rc = 0; /* serve what we have; the rest next time */
            break;
        }
        size_t pos = 0;
        mk_batch_view_t v;
        int vr;
        while ((vr = mk_batch_view_next(data, len, &pos, &v)) == 1) {
            int64_t last = v.hdr.baseOffset + v.hdr.lastOffsetDelta;
            if (last < offset)
                continue;
            if (last >= max_offset || (total + v.size > max_bytes && any)) {
                stop = true;
                break;
            }
            mk_buf_put(out, data + v.pos, v.size);
            total += v.size;
            any = true;
            nxt = last + 1;
            if (total >= max_bytes) {
                stop = true;
                break;
            }
        }
        if (vr < 0) {
            rc = MK_ERR_CORRUPT;
            break;
        }
    }
    read_ahead(t, tp, rs, k);
    if (!mk_buf_ok(out)) {
        out->len = mark;
        out->oom = false;
        return MK_ERR_NOMEM;
    }
    if (rc) {
        out->len = mark;
        if (rc != MK_ERR_AGAIN) {
            b->fetch_errors++;
            t->fetch_errors++;
        }
        return rc;
    }
    b->fetch_requests++;
    t->fetch_requests++;
    b->fetch_bytes += total;
    *next = nxt;
    return 0;
}

void mk_tier_aborted(mk_tier_t *t, mk_partition_t *p, int64_t from, int64_t to,
                     void (*cb)(int64_t pid, int64_t first, void *arg), void *arg)
{
    tpart_t *tp = tpart_of(t, p);
    tier_aborted_t seen[64];
    size_t nseen = 0;
    for (size_t i = 0; tp && i < tp->n; i++) {
        const rseg_t *rs = tp->segs[i];
        if (rs->state != MK_META_RSEG_COPY_FINISHED)
            continue;
        for (size_t j = 0; j < rs->naborted; j++) {
            const tier_aborted_t *a = &rs->aborted[j];
            if (a->first >= to || a->last < from)
                continue;
            bool dup = false;
            for (size_t s = 0; s < nseen && !dup; s++)
                dup = seen[s].pid == a->pid && seen[s].first == a->first;
            if (dup)
                continue;
            if (nseen < MK_ARRAY_LEN(seen))
                seen[nseen++] = *a;
            cb(a->pid, a->first, arg);
        }
    }
}

typedef struct ts_find_s {
    int64_t target;
    bool exact;
    int64_t offset, timestamp;
} ts_find_t;

static int ts_cb(const mk_record_t *rec, void *arg)
{
    ts_find_t *f = arg;
    if (f->exact ? rec->timestamp == f->target : rec->timestamp >= f->target) {
        f->offset = rec->offset;
        f->timestamp = rec->timestamp;
        return 1;
    }
    return 0;
}

/* In chunk k of rs: the first batch whose maxTimestamp reaches ts (equals
 * it with exact), then the record in it.  0 (found), MK_ERR_NOT_FOUND,
 * or the chunk lookup's error. */
static int find_in_chunk(mk_tier_t *t, const tpart_t *tp, const rseg_t *rs, size_t k, int32_t broker, int64_t ts,
                         bool exact, int64_t *offset, int64_t *timestamp)
{
    const uint8_t *data;
    size_t len;
    int rc = chunk_get(t, tp, rs, k, broker, &data, &len);
    if (rc)
        return rc;
    size_t pos = 0;
    mk_batch_view_t v;
    while (mk_batch_view_next(data, len, &pos, &v) == 1) {
        if (exact ? v.hdr.maxTimestamp != ts : v.hdr.maxTimestamp < ts)
            continue;
        ts_find_t f = {ts, exact, v.hdr.baseOffset, v.hdr.maxTimestamp};
        mk_batch_records_foreach(data + v.pos, v.size, &t->scratch, 0, ts_cb, &f);
        *offset = f.offset;
        *timestamp = f.timestamp;
        return 0;
    }
    return MK_ERR_NOT_FOUND;
}

int mk_tier_offset_for_time(mk_tier_t *t, mk_partition_t *p, int32_t broker, int64_t ts, int64_t local_start,
                            int64_t *offset, int64_t *timestamp)
{
    tpart_t *tp = tpart_of(t, p);
    for (size_t i = 0; tp && i < tp->n; i++) {
        const rseg_t *rs = tp->segs[i];
        if (rs->start >= local_start)
            break;
        if (rs->state != MK_META_RSEG_COPY_FINISHED || rs->max_ts < ts)
            continue;
        for (size_t k = 0; k < rs->nchunks; k++) {
            if (rs->chunks[k].max_ts < ts)
                continue;
            int rc = find_in_chunk(t, tp, rs, k, broker, ts, false, offset, timestamp);
            if (rc != MK_ERR_NOT_FOUND)
                return rc;
        }
    }
    return MK_ERR_NOT_FOUND;
}

int mk_tier_max_timestamp(mk_tier_t *t, mk_partition_t *p, int32_t broker, int64_t local_max_ts, int64_t local_start,
                          int64_t *offset, int64_t *timestamp)
{
    tpart_t *tp = tpart_of(t, p);
    const rseg_t *best = NULL;
    for (size_t i = 0; tp && i < tp->n; i++) {
        const rseg_t *rs = tp->segs[i];
        if (rs->start >= local_start)
            break;
        if (rs->state == MK_META_RSEG_COPY_FINISHED && rs->max_ts > local_max_ts && (!best || rs->max_ts > best->max_ts))
            best = rs;
    }
    if (!best)
        return MK_ERR_NOT_FOUND;
    for (size_t k = 0; k < best->nchunks; k++)
        if (best->chunks[k].max_ts == best->max_ts)
            return find_in_chunk(t, tp, best, k, broker, best->max_ts, true, offset, timestamp);
    return MK_ERR_NOT_FOUND;
}

/* ============================================================ replication */

int mk_tier_follower_rebuild(mk_tier_t *t, mk_partition_t *p, int32_t broker, mk_log_t *log,
                             int64_t leader_local_start)
{
    tpart_t *tp = t ? tpart_of(t, p) : NULL;
    const rseg_t *rs = leader_local_start > 0 ? seg_at(tp, leader_local_start - 1) : NULL;
    int32_t epoch = -1;
    for (size_t i = 0; rs && i < rs->nepochs; i++)
        if (rs->epochs[i].start_offset <= leader_local_start - 1)
            epoch = rs->epochs[i].epoch;
    if (rs)
        mk_info("partition %s-%d: replica on broker %d is below the leader's local log start %" PRId64
                " (log start %" PRId64 " in S3): rebuilding it from the remote log metadata (epoch %d at that "
                "offset) and restarting it there",
                p->topic->name, p->index, broker, leader_local_start, mk_tier_log_start(t, p, leader_local_start),
                (int)epoch);
    int rc = mk_log_truncate_fully(log, leader_local_start);
    if (rc == 0 && epoch >= 0)
        rc = mk_log_epoch_begin(log, epoch);
    return rc;
}

/* ========================================================== remote checks */

/* One check at a time (the scrubber's pass takes one partition at a time).
 * The partition's COPY_FINISHED segments are listed by id when it starts;
 * each is looked up again before each step, so one that goes meanwhile
 * (retention, a deleted topic) is skipped.  A segment is read in steps of
 * about a tenth of a second at the rate (64 KiB to 4 MiB), one step on the
 * READ queue at a time, and the loop waits between steps for as long as
 * the bytes should have taken (the pacing timer).  A corrupt segment is
 * held (busy: no delete starts meanwhile) while a re-upload from a local
 * copy runs on the WRITE queue (upload.c with expect set). */

#define CHECK_STEP_MIN ((uint64_t)64 << 10)
#define CHECK_STEP_MAX ((uint64_t)4 << 20)

typedef struct tcheck_id_s {
    char id[TIER_ID_LEN + 1];
} tcheck_id_t;

struct tcheck_s {
    mk_tier_t *t;
    uint8_t topic_id[16];
    int32_t partition;
    uint64_t rate, step;
    mk_tier_check_cb cb;          /* NULL: cancelled */
    void *ud;
    tcheck_id_t *ids;             /* owned */
    size_t n, i;
    tier_check_t *job;            /* the segment being read (owned; NULL between segments) */
    bool in_flight;               /* a step or a re-upload is queued or running */
    uint64_t step_started_ms;
    uint64_t segments, bytes, skipped;
};

static void check_next(tcheck_t *tc);

static rseg_t *seg_by_id(tpart_t *tp, const char *id)
{
    for (size_t i = 0; tp && i < tp->n; i++)
        if (strcmp(tp->segs[i]->id, id) == 0)
            return tp->segs[i];
    return NULL;
}

static void check_job_free(tier_check_t *k)
{
    if (!k)
        return;
    tier_check_free_digest(k);
    mk_free(k->buf);
    mk_free(k);
}

static void check_job_release(tier_job_t *j) { check_job_free((tier_check_t *)j); }

static void check_free(tcheck_t *tc)
{
    if (tc->t->check == tc)
        tc->t->check = NULL;
    check_job_free(tc->job);
    mk_free(tc->ids);
    mk_free(tc);
}

/* The module goes: the queues released the step in flight, if any. */
static void check_abandon(tcheck_t *tc)
{
    if (tc->in_flight)
        tc->job = NULL;
    check_free(tc);
}

/* The check is over: it goes, then the done report (whose callback may
 * start the next check). */
static void check_finish(tcheck_t *tc)
{
    mk_tier_check_cb cb = tc->cb;
    void *ud = tc->ud;
    mk_tier_check_report_t r = {.done = true, .segments = tc->segments, .bytes = tc->bytes,
                                .skipped = tc->skipped, .partition = tc->partition, .broker = -1};
    check_free(tc);
    if (cb)
        cb(ud, &r);
}

static void check_report(tcheck_t *tc, const rseg_t *rs, int outcome, bool repeat, int32_t broker, const char *why)
{
    if (!tc->cb)
        return;
    mk_tier_check_report_t r = {.outcome = outcome, .repeat = repeat, .topic = rs->topic,
                                .partition = tc->partition, .start = rs->start, .end = rs->end,
                                .segment_id = rs->id, .broker = broker, .why = why};
    tc->cb(tc->ud, &r);
}

/* The re-upload of a corrupt segment. */
typedef struct repair_s {
    tcheck_t *tc;
    tpart_t *tp;
    rseg_t *rs;
    int32_t broker;
    char found[160];              /* what the check found */
} repair_t;

static void repair_release(tier_job_t *j)
{
    tier_upload_t *u = (tier_upload_t *)j;
    for (int i = 0; i < 3; i++)
        if (u->fds[i] >= 0)
            close(u->fds[i]);
    mk_buf_free(&u->epochs_text);
    mk_buf_free(&u->snapshot);
    mk_free(u->scratch);
    mk_free(u->chunks);
    mk_free(u->owner);
    mk_free(u);
}

static void repair_done(tier_job_t *j)
{
    tier_upload_t *u = (tier_upload_t *)j;
    repair_t *rp = u->owner;
    tcheck_t *tc = rp->tc;
    mk_tier_t *t = tc->t;
    rseg_t *rs = rp->rs;
    tc->in_flight = false;
    rs->busy = false;
    char why[400];
    if (j->rc == 0) {
        /* Readers must not keep a chunk of the bad copy: forget them all. */
        tier_cache_forget(t->cache, rs->id);
        rs->check_bad = false;
        mk_info("tier: %s-%d: remote segment %" PRId64 "..%" PRId64 " (%s) was corrupt (%s): uploaded again from "
                "broker %d's local copy",
                rs->topic, (int)tc->partition, rs->start, rs->end, rs->id, rp->found, rp->broker);
        check_report(tc, rs, MK_TIER_CHECK_REUPLOADED, false, rp->broker, rp->found);
    } else if (j->rc == MK_ERR_CORRUPT && u->bytes_sent == 0) {
        /* Nothing was put: the local copy failed validation, or is not the
         * manifest's bytes. */
        bool repeat = rs->check_bad;
        rs->check_bad = true;
        snprintf(why, sizeof(why), "broker %d's local copy differs or is bad (%s; found: %s)", rp->broker, j->why,
                 rp->found);
        check_report(tc, rs, MK_TIER_CHECK_UNREPAIRABLE, repeat, rp->broker, why);
    } else {
        snprintf(why, sizeof(why), "re-upload from broker %d failed: %s (found: %s)", rp->broker, j->why, rp->found);
        check_report(tc, rs, MK_TIER_CHECK_REUPLOAD_FAILED, false, rp->broker, why);
    }
    repair_release(j);
    tc->i++;
    check_next(tc);
}

/* A local copy of rs with the same offsets and size, on any replica (the
 * leader first): its log and segment info; NULL when none. */
static mk_log_t *local_copy(mk_tier_t *t, const tpart_t *tp, const rseg_t *rs, mk_partition_t **pp, int32_t *broker,
                            mk_log_segment_info_t *si)
{
    mk_topic_t *topic = mk_cluster_topic_find_id(t->c, tp->topic_id);
    mk_partition_t *p = topic ? mk_cluster_topic_partition(topic, tp->partition) : NULL;
    if (!p)
        return NULL;
    *pp = p;
    int32_t n = mk_partition_replica_count(p);
    for (int32_t k = -1; k < n; k++) {
        int32_t b = k < 0 ? mk_partition_leader(p) : mk_partition_replica_broker(p, k);
        if (b < 0 || (k >= 0 && b == mk_partition_leader(p)))
            continue;
        mk_log_t *log = mk_partition_replica_log(p, b);
        if (!log)
            continue;
        size_t ns = mk_log_segment_count(log);
        for (size_t i = 0; i < ns; i++) {
            mk_log_segment_info(log, i, si);
            if (si->base_offset > rs->start)
                break;
            if (!si->active && si->base_offset == rs->start && si->end_offset == rs->end + 1 &&
                (int64_t)si->size_bytes == rs->size) {
                *broker = b;
                return log;
            }
        }
    }
    return NULL;
}

/* rs was found corrupt (found says how): upload it again from a local copy
 * that has the manifest's bytes, or report it.  True when a re-upload was
 * submitted (repair_done continues the check). */
static bool repair_start(tcheck_t *tc, tpart_t *tp, rseg_t *rs, const char *found)
{
    mk_tier_t *t = tc->t;
    mk_partition_t *p = NULL;
    int32_t broker = -1;
    mk_log_segment_info_t si;
    mk_log_t *log = local_copy(t, tp, rs, &p, &broker, &si);
    char why[400];
    if (!log) {
        bool repeat = rs->check_bad;
        rs->check_bad = true;
        snprintf(why, sizeof(why), "no local copy on any replica (%s)", found);
        check_report(tc, rs, MK_TIER_CHECK_UNREPAIRABLE, repeat, -1, why);
        return false;
    }
    tier_upload_t *u = mk_calloc(1, sizeof(*u));
    repair_t *rp = mk_calloc(1, sizeof(*rp));
    collect_t col = {0};
    if (!u || !rp) {
        mk_free(u);
        mk_free(rp);
        snprintf(why, sizeof(why), "%s; out of memory preparing its re-upload", found);
        check_report(tc, rs, MK_TIER_CHECK_REUPLOAD_FAILED, false, broker, why);
        return false;
    }
    u->fds[0] = u->fds[1] = u->fds[2] = -1;
    u->owner = rp;
    rp->tc = tc;
    rp->tp = tp;
    rp->rs = rs;
    rp->broker = broker;
    snprintf(rp->found, sizeof(rp->found), "%s", found);
    if (t->hooks.producers)
        t->hooks.producers(t->hooks.arg, p, collect_producer, &col);
    int rc = col.oom ? MK_ERR_NOMEM : upload_fill(t, tp, rs, u, log, &si, col.v, col.n);
    mk_free(col.v);
    mk_free(col.ab);
    if (rc < 0) {
        snprintf(why, sizeof(why), "%s; its re-upload from broker %d could not be prepared: %s", found, broker,
                 mk_strerror(rc));
        repair_release(&u->job);
        check_report(tc, rs, MK_TIER_CHECK_REUPLOAD_FAILED, false, broker, why);
        return false;
    }
    u->job.done = repair_done;
    u->job.release = repair_release;
    u->expect = true;
    u->expect_crc32c = rs->crc;
    memcpy(u->expect_sha256, rs->sha, sizeof(u->expect_sha256));
    rs->busy = true;
    tc->in_flight = true;
    mk_info("tier: %s-%d: remote segment %" PRId64 "..%" PRId64 " (%s) is corrupt (%s): uploading it again from "
            "broker %d",
            rs->topic, (int)tc->partition, rs->start, rs->end, rs->id, found, broker);
    tier_s3_submit(t->s3, &u->job);
    return true;
}

static void check_submit(tcheck_t *tc)
{
    tier_check_t *k = tc->job;
    k->len = MK_MIN(tc->step, k->size - k->pos);
    k->job.rc = 0;
    tc->in_flight = true;
    tc->step_started_ms = uv_now(tc->t->loop);
    tier_s3_submit(tc->t->s3, &k->job);
}

static void check_timer_cb(uv_timer_t *h)
{
    mk_tier_t *t = h->data;
    tcheck_t *tc = t->check;
    if (!tc || tc->in_flight)
        return;
    if (!tc->cb) {
        check_free(tc);
        return;
    }
    if (tc->job)
        check_submit(tc);
    else
        check_next(tc);
}

/* A step came back (loop thread). */
static void check_step_done(tier_job_t *j)
{
    tier_check_t *k = (tier_check_t *)j;
    tcheck_t *tc = k->owner;
    mk_tier_t *t = tc->t;
    tc->in_flight = false;
    if (!tc->cb) {
        check_free(tc); /* frees k */
        return;
    }
    tpart_t *tp = tpart_find(t, tc->topic_id, tc->partition);
    rseg_t *rs = seg_by_id(tp, k->segment_id);
    bool there = rs && rs->state == MK_META_RSEG_COPY_FINISHED && !rs->busy;
    if (j->rc == 0 || k->finished)
        tc->bytes += k->len; /* the .log bytes read (not those of a step that failed earlier) */
    if (!there || (j->rc && j->rc != MK_ERR_CORRUPT)) {
        /* It went meanwhile, or S3 failed: not a finding. */
        if (there && j->rc != MK_ERR_STATE)
            mk_debug("tier: %s-%d: remote segment %s not checked: %s", rs->topic, (int)tc->partition, rs->id, j->why);
        tc->skipped++;
        check_job_free(k);
        tc->job = NULL;
        tc->i++;
        check_next(tc);
        return;
    }
    if (j->rc == MK_ERR_CORRUPT) {
        char found[160];
        snprintf(found, sizeof(found), "%s", j->why);
        check_job_free(k);
        tc->job = NULL;
        if (repair_start(tc, tp, rs, found))
            return;
        tc->i++;
        check_next(tc);
        return;
    }
    uint64_t stepped = k->len;
    if (k->finished) {
        tc->segments++;
        rs->check_bad = false; /* sound (again) */
        check_job_free(k);
        tc->job = NULL;
        tc->i++;
    } else {
        k->pos += k->len;
    }
    /* Pacing: the step's bytes at the rate. */
    uint64_t need = stepped * 1000 / tc->rate;
    uint64_t took = uv_now(t->loop) - tc->step_started_ms;
    uv_timer_start(t->check_timer, check_timer_cb, need > took ? need - took : 0, 0);
}

/* The next segment to check, or the end of the check. */
static void check_next(tcheck_t *tc)
{
    mk_tier_t *t = tc->t;
    if (!tc->cb) {
        check_free(tc);
        return;
    }
    tpart_t *tp = tpart_find(t, tc->topic_id, tc->partition);
    for (; tc->i < tc->n; tc->i++) {
        rseg_t *rs = seg_by_id(tp, tc->ids[tc->i].id);
        if (!rs || rs->state != MK_META_RSEG_COPY_FINISHED || rs->size <= 0)
            continue; /* it went */
        if (rs->busy) {
            tc->skipped++;
            continue;
        }
        tier_check_t *k = mk_calloc(1, sizeof(*k));
        uint64_t cap = MK_MIN(tc->step, (uint64_t)rs->size);
        if (k)
            k->buf = mk_malloc((size_t)cap);
        if (!k || !k->buf || obj_key(t, tp, rs, 0, k->log_key, sizeof(k->log_key)) < 0 ||
            obj_key(t, tp, rs, TIER_NEXTS - 1, k->manifest_key, sizeof(k->manifest_key)) < 0) {
            check_job_free(k);
            tc->skipped++;
            continue;
        }
        k->job.work = tier_check_work;
        k->job.done = check_step_done;
        k->job.release = check_job_release;
        k->job.queue = TIER_Q_READ;
        memcpy(k->segment_id, rs->id, sizeof(k->segment_id));
        k->start_offset = rs->start;
        k->size = (uint64_t)rs->size;
        k->crc32c = rs->crc;
        memcpy(k->sha256, rs->sha, sizeof(k->sha256));
        k->owner = tc;
        tc->job = k;
        check_submit(tc);
        return;
    }
    check_finish(tc);
}

int mk_tier_check(mk_tier_t *t, const uint8_t topic_id[16], int32_t partition, int64_t rate_bytes_per_sec,
                  mk_tier_check_cb cb, void *ud)
{
    if (t->check)
        return MK_ERR_STATE;
    tpart_t *tp = tpart_find(t, topic_id, partition);
    size_t n = 0;
    for (size_t i = 0; tp && i < tp->n; i++)
        n += tp->segs[i]->state == MK_META_RSEG_COPY_FINISHED;
    if (n == 0)
        return MK_ERR_NOT_FOUND;
    tcheck_t *tc = mk_calloc(1, sizeof(*tc));
    if (tc)
        tc->ids = mk_malloc(n * sizeof(*tc->ids));
    if (!tc || !tc->ids) {
        mk_free(tc);
        return MK_ERR_NOMEM;
    }
    for (size_t i = 0; i < tp->n; i++)
        if (tp->segs[i]->state == MK_META_RSEG_COPY_FINISHED)
            memcpy(tc->ids[tc->n++].id, tp->segs[i]->id, sizeof(tc->ids[0].id));
    tc->t = t;
    memcpy(tc->topic_id, topic_id, 16);
    tc->partition = partition;
    tc->rate = rate_bytes_per_sec > 0 ? (uint64_t)rate_bytes_per_sec : 1;
    tc->step = MK_MIN(MK_MAX(tc->rate / 10, CHECK_STEP_MIN), CHECK_STEP_MAX);
    tc->cb = cb;
    tc->ud = ud;
    t->check = tc;
    uv_timer_start(t->check_timer, check_timer_cb, 0, 0); /* cb never runs within this call */
    return 0;
}

void mk_tier_check_cancel(mk_tier_t *t)
{
    tcheck_t *tc = t->check;
    if (!tc)
        return;
    tc->cb = NULL;
    tc->ud = NULL;
    if (!tc->in_flight) {
        uv_timer_stop(t->check_timer);
        check_free(tc);
    }
    /* else freed when its step or re-upload comes back (or by mk_tier_free) */
}

/* ================================================================== stats */

const char *mk_tier_state_name(int state)
{
    static const char *const names[] = {"COPY_STARTED", "COPY_FINISHED", "DELETE_STARTED", "DELETE_FINISHED"};
    return state >= 0 && state < 4 ? names[state] : "?";
}

const char *mk_tier_s3_status_name(int status)
{
    static const char *const names[] = {"unknown", "ok", "failing"};
    return status >= 0 && status < 3 ? names[status] : "?";
}

void mk_tier_partition_info(mk_tier_t *t, mk_partition_t *p, mk_tier_partition_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->tiered = p->topic->cfg.tiered;
    out->local_log_start = p->log ? mk_log_start_offset(p->log) : -1;
    out->remote_log_start = -1;
    out->remote_end = -1;
    if (!t) {
        out->log_start = out->local_log_start;
        return;
    }
    tpart_t *tp = tpart_of(t, p);
    const rseg_t *first = first_copied(tp);
    out->remote_log_start = first ? first->start : -1;
    out->remote_end = mk_tier_last_tiered_offset(t, p);
    out->log_start = p->log ? mk_tier_log_start(t, p, out->local_log_start) : out->remote_log_start;
    for (size_t i = 0; tp && i < tp->n; i++) {
        const rseg_t *rs = tp->segs[i];
        if (rs->state >= 0 && rs->state < 4)
            out->segments[rs->state]++;
        if (rs->state == MK_META_RSEG_COPY_FINISHED)
            out->remote_bytes += rs->size;
        tier_cache_segment_bytes(t->cache, rs->id, &out->cache_memory_bytes, &out->cache_disk_bytes);
    }
    if (tp) {
        out->uploads_failed = tp->uploads_failed;
        snprintf(out->last_error, sizeof(out->last_error), "%s", tp->last_error);
    }
    if (p->log && out->tiered) {
        mk_log_segment_info_t si;
        next_to_copy(p->topic, tp, p->log, INT64_MAX, &si, &out->upload_pending, &out->upload_pending_bytes);
    }
}

void mk_tier_broker_stats(mk_tier_t *t, int32_t broker, mk_tier_broker_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    bctr_t *b = bc(t, broker);
    out->uploads_in_flight = b->uploads_in_flight;
    out->uploads_done = b->uploads_done;
    out->uploads_failed = b->uploads_failed;
    out->upload_bytes = b->upload_bytes;
    out->download_bytes = b->download_bytes;
    out->fetch_bytes = b->fetch_bytes;
    out->fetch_requests = b->fetch_requests;
    out->fetch_errors = b->fetch_errors;
    out->cache_hits = b->cache_hits;
    out->cache_misses = b->cache_misses;
    out->deletes_done = b->deletes_done;
    out->deletes_failed = b->deletes_failed;
    size_t it = 0;
    mk_topic_t *topic;
    while ((topic = mk_cluster_topic_next(t->c, &it))) {
        if (!topic->cfg.tiered)
            continue;
        for (int32_t i = 0; i < topic->partition_count; i++) {
            mk_partition_t *p = &topic->partitions[i];
            if (p->leader != broker || !p->log)
                continue;
            mk_log_segment_info_t si;
            next_to_copy(topic, tpart_of(t, p), p->log, INT64_MAX, &si, &out->uploads_pending,
                         &out->uploads_pending_bytes);
        }
    }
}

void mk_tier_stats(mk_tier_t *t, mk_tier_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    tier_s3_counters_t *ctr = tier_s3_counters(t->s3);
    out->s3_last_ok_ms = atomic_load(&ctr->last_ok_ms);
    out->s3_last_error_ms = atomic_load(&ctr->last_error_ms);
    out->s3_status = !out->s3_last_ok_ms && !out->s3_last_error_ms ? MK_TIER_S3_UNKNOWN
                     : out->s3_last_error_ms > out->s3_last_ok_ms   ? MK_TIER_S3_FAILING
                                                                    : MK_TIER_S3_OK;
    if (out->s3_last_error_ms)
        tier_s3_last_error(t->s3, out->s3_error, sizeof(out->s3_error));
    for (int i = 0; i < 4; i++) {
        out->requests[i] = atomic_load(&ctr->requests[i]);
        out->requests[4] += out->requests[i];
    }
    out->errors = atomic_load(&ctr->errors);
    out->upload_bytes = atomic_load(&ctr->bytes_up);
    out->download_bytes = atomic_load(&ctr->bytes_down);
    tier_cache_stats_t cs;
    tier_cache_stats(t->cache, &cs);
    out->cache_hits = cs.hits;
    out->cache_disk_hits = cs.disk_hits;
    out->cache_misses = cs.misses;
    out->cache_memory_bytes = cs.memory_bytes;
    out->cache_memory_chunks = cs.memory_chunks;
    out->cache_memory_max = cs.memory_max;
    out->cache_disk_bytes = cs.disk_bytes;
    out->cache_disk_chunks = cs.disk_chunks;
    out->cache_disk_max = cs.disk_max;
    out->downloads_in_flight = cs.in_flight;
    out->uploads_in_flight = t->uploads;
    out->deletes_in_flight = t->deletes;
    out->uploads_done = t->uploads_done;
    out->uploads_failed = t->uploads_failed;
    out->deletes_done = t->deletes_done;
    out->deletes_failed = t->deletes_failed;
    out->fetch_requests = t->fetch_requests;
    out->fetch_errors = t->fetch_errors;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&t->parts, &it, &k, &v);) {
        const tpart_t *tp = v;
        for (size_t i = 0; i < tp->n; i++) {
            const rseg_t *rs = tp->segs[i];
            if (rs->state >= 0 && rs->state < 4)
                out->segments[rs->state]++;
            if (rs->state == MK_META_RSEG_COPY_FINISHED) {
                out->remote_bytes += (uint64_t)rs->size;
                out->remote_segments++;
                out->remote_unrepairable += rs->check_bad;
            }
        }
    }
}
