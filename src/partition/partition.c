/*
 * partition.c -- the leader write path, the high watermark, and the
 * observer list (see partition.h for the order of an append and for which
 * module writes which field of a partition).
 *
 * Invariants:
 *   - Every leader append -- Produce and transaction markers -- runs
 *     mk_partition_append(); nothing else calls mk_log_append() for a leader.
 *   - A refused append leaves the log exactly as it was: every batch of the
 *     record set is validated before the first byte is appended.
 *   - The high watermark is written here only, and only moves up except when
 *     a new leader's log end is lower (mk_partition_hw_clamp) or the
 *     partition starts over (mk_partition_hw_reset).
 *   - Each batch header is parsed once, by the validation walk, into an
 *     mk_batch_view_t; the log appends from the views and rewrites them with
 *     what it assigned (offsets, epoch), LogAppendTime is set through them,
 *     and the observers receive them.
 */
#define MK_PARTITION_FIELDS
#include "partition/partition.h"
#include "proto/proto.h"

#include <string.h>

/* Decompression bound for the deep validation of a produced batch. */
#define MAX_UNCOMPRESSED (256u << 20)
#define MAX_OBSERVERS 8
/* Batches of one record set parsed on the stack; more go to the heap. */
#define STACK_BATCHES 8

struct mk_partition_writer_s {
    mk_cluster_t *c;
    mk_partition_observer_t obs[MAX_OBSERVERS];
    int nobs;
    mk_partition_progress_cb progress_cb;
    void *progress_arg;
};

/* ================================================================ accessors */

int32_t mk_partition_leader(const mk_partition_t *p) { return p->leader; }
int32_t mk_partition_leader_epoch(const mk_partition_t *p) { return p->leader_epoch; }
int32_t mk_partition_index(const mk_partition_t *p) { return p->index; }
mk_topic_t *mk_partition_topic(const mk_partition_t *p) { return p->topic; }
mk_log_t *mk_partition_log(const mk_partition_t *p) { return p->log; }
int64_t mk_partition_hw(const mk_partition_t *p) { return p->hw; }
int32_t mk_partition_replica_count(const mk_partition_t *p) { return p->replica_count; }

int32_t mk_partition_replica_broker(const mk_partition_t *p, int32_t k)
{
    return k >= 0 && k < p->replica_count ? p->replicas[k].broker : -1;
}

static const mk_replica_t *replica_of(const mk_partition_t *p, int32_t broker)
{
    for (int32_t k = 0; p && k < p->replica_count; k++)
        if (p->replicas[k].broker == broker)
            return &p->replicas[k];
    return NULL;
}

mk_log_t *mk_partition_replica_log(const mk_partition_t *p, int32_t broker)
{
    const mk_replica_t *r = replica_of(p, broker);
    return r ? r->log : NULL;
}

bool mk_partition_replica_in_isr(const mk_partition_t *p, int32_t broker)
{
    const mk_replica_t *r = replica_of(p, broker);
    return r && r->in_isr;
}

bool mk_partition_replica_settled(const mk_partition_t *p, int32_t broker)
{
    const mk_replica_t *r = replica_of(p, broker);
    return r && r->log && (broker == p->leader || (r->in_isr && !r->needs_truncate));
}

int32_t mk_partition_isr_size(const mk_partition_t *p)
{
    int32_t n = 0;
    for (int32_t k = 0; k < p->replica_count; k++)
        n += p->replicas[k].in_isr;
    return n;
}

/* ===================================================================== HW */

bool mk_partition_hw_update(mk_partition_t *p)
{
    if (!p->log)
        return false;
    int64_t hw = mk_log_end_offset(p->log);
    for (int32_t k = 0; k < p->replica_count; k++) {
        const mk_replica_t *rp = &p->replicas[k];
        if (!rp->in_isr || !rp->log || rp->broker == p->leader)
            continue;
        /* A follower that has not yet truncated to this leader's epoch
         * boundary may hold a stale tail of an earlier leader at the very
         * offsets this leader writes: its log end says nothing, so the HW
         * waits for its first round (issue 16; tests/test_hw_window.py). */
        if (rp->needs_truncate)
            hw = MK_MIN(hw, p->hw);
        else
            hw = MK_MIN(hw, MK_MIN(rp->acked_leo, mk_log_end_offset(rp->log)));
    }
    if (hw > p->hw) {
        p->hw = hw;
        return true;
    }
    return false;
}

void mk_partition_hw_clamp(mk_partition_t *p)
{
    if (p->log) {
        int64_t leo = mk_log_end_offset(p->log);
        if (p->hw > leo)
            p->hw = leo;
    }
    mk_partition_hw_update(p);
}

void mk_partition_hw_reset(mk_partition_t *p)
{
    p->hw = 0;
    mk_partition_hw_update(p);
}

/* ================================================================= writer */

/* Every replica log's segment events, forwarded by the cluster. */
static void segment_cb(void *arg, mk_partition_t *p, int32_t broker, const mk_log_segment_event_t *ev)
{
    mk_partition_writer_t *w = arg;
    for (int i = 0; i < w->nobs; i++)
        if (w->obs[i].segment)
            w->obs[i].segment(w->obs[i].arg, p, broker, ev);
}

/* The storage I/O gate let held operations go: appends parked on it retry. */
static void io_wake_cb(void *arg, int32_t broker)
{
    (void)broker;
    mk_partition_writer_progress(arg);
}

int mk_partition_writer_new(mk_cluster_t *c, mk_partition_writer_t **out)
{
    mk_partition_writer_t *w = mk_calloc(1, sizeof(*w));
    if (!w)
        return MK_ERR_NOMEM;
    w->c = c;
    mk_cluster_set_segment_cb(c, segment_cb, w);
    mk_log_io_set_wake_cb(io_wake_cb, w);
    *out = w;
    return 0;
}

void mk_partition_writer_free(mk_partition_writer_t *w)
{
    if (!w)
        return;
    mk_cluster_set_segment_cb(w->c, NULL, NULL);
    mk_log_io_set_wake_cb(NULL, NULL);
    mk_free(w);
}

int mk_partition_writer_observe(mk_partition_writer_t *w, const mk_partition_observer_t *o)
{
    if (w->nobs == MAX_OBSERVERS)
        return MK_ERR_NOMEM;
    w->obs[w->nobs++] = *o;
    return 0;
}

void mk_partition_writer_unobserve(mk_partition_writer_t *w, void *arg)
{
    int keep = 0;
    for (int i = 0; i < w->nobs; i++)
        if (w->obs[i].arg != arg)
            w->obs[keep++] = w->obs[i];
    w->nobs = keep;
}

void mk_partition_writer_set_progress_cb(mk_partition_writer_t *w, mk_partition_progress_cb cb, void *arg)
{
    w->progress_cb = cb;
    w->progress_arg = arg;
}

void mk_partition_writer_progress(mk_partition_writer_t *w)
{
    if (w->progress_cb)
        w->progress_cb(w->progress_arg);
}

void mk_partition_writer_leader_changed(mk_partition_writer_t *w, mk_partition_t *p)
{
    for (int i = 0; i < w->nobs; i++)
        if (w->obs[i].leader_changed)
            w->obs[i].leader_changed(w->obs[i].arg, p);
}

/* ==================================================================== reads */

int16_t mk_partition_read_check(mk_partition_writer_t *w, const mk_partition_t *p, int32_t broker, int64_t offset,
                                int64_t *limit)
{
    *limit = INT64_MAX;
    for (int i = 0; i < w->nobs; i++) {
        if (!w->obs[i].read_check)
            continue;
        int16_t err = w->obs[i].read_check(w->obs[i].arg, p, broker, offset, limit);
        if (err)
            return err;
    }
    return 0;
}

/* ============================================================== validation */

/* Walk the record set once: every batch framed, within max.message.bytes,
 * magic v2, and through the one validator, which hands out each batch's
 * view (the header parsed once, passed down from here on).  Returns the
 * number of batches (>= 1) or -(Kafka error) with a->why set.  *views
 * starts as the caller's stack array of STACK_BATCHES; for more it becomes
 * an mk_malloc'd array the caller frees (when it differs from the stack
 * array), even on error. */
static int walk_batches(const mk_topic_t *t, uint8_t *recs, size_t len, mk_batch_view_t **views,
                        mk_partition_append_t *a)
{
    if (!recs || len == 0) {
        snprintf(a->why, sizeof(a->why), "produce request without records");
        return -MK_KERR_CORRUPT_MESSAGE;
    }
    mk_batch_view_t *stack = *views;
    int cap = STACK_BATCHES, n = 0;
    for (size_t pos = 0; pos < len; n++) {
        int64_t size = mk_batch_size(recs + pos, len - pos);
        if (size < 0 || (uint64_t)size > len - pos) {
            snprintf(a->why, sizeof(a->why), "record batch %d at byte %zu is truncated or has a bad length", n, pos);
            return -MK_KERR_CORRUPT_MESSAGE;
        }
        if (size > t->cfg.max_message_bytes) {
            snprintf(a->why, sizeof(a->why), "record batch of %lld bytes is over max.message.bytes (%lld)",
                     (long long)size, (long long)t->cfg.max_message_bytes);
            return -MK_KERR_MESSAGE_TOO_LARGE;
        }
        if (size > MK_BATCH_OFF_MAGIC && recs[pos + MK_BATCH_OFF_MAGIC] != MK_BATCH_MAGIC) {
            snprintf(a->why, sizeof(a->why), "record batch magic %d: only magic v2 is supported",
                     recs[pos + MK_BATCH_OFF_MAGIC]);
            return -MK_KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        }
        if (n == cap) {
            mk_batch_view_t *nv = mk_malloc(sizeof(*nv) * (size_t)cap * 2);
            if (!nv) {
                snprintf(a->why, sizeof(a->why), "out of memory");
                return -MK_KERR_UNKNOWN_SERVER_ERROR;
            }
            memcpy(nv, *views, sizeof(*nv) * (size_t)n);
            if (*views != stack)
                mk_free(*views);
            *views = nv;
            cap *= 2;
        }
        mk_batch_view_t *v = &(*views)[n];
        char vwhy[160];
        bool fixed; /* maxTimestamp recomputed from the records (Kafka's validator does) */
        /* A compacted topic needs a key on every record (Kafka's validator:
         * INVALID_RECORD, "Compacted topic cannot accept message without key"). */
        int rc = mk_batch_validate_append_ex(recs + pos, (size_t)size,
                                             t->cfg.cleanup_compact ? MK_BATCH_VALIDATE_KEYED : 0, MAX_UNCOMPRESSED,
                                             NULL, v, &fixed, vwhy, sizeof(vwhy));
        if (rc == MK_ERR_INVALID) {
            snprintf(a->why, sizeof(a->why),
                     "Compacted topic cannot accept message without key in topic %s (record batch %d: %s)", t->name, n,
                     vwhy);
            return -MK_KERR_INVALID_RECORD;
        }
        if (rc < 0) {
            snprintf(a->why, sizeof(a->why), "record batch %d: %s", n, vwhy);
            if (rc == MK_ERR_UNSUPPORTED)
                return -MK_KERR_UNSUPPORTED_COMPRESSION_TYPE;
            if (rc == MK_ERR_TOO_LARGE)
                return -MK_KERR_MESSAGE_TOO_LARGE;
            return -MK_KERR_CORRUPT_MESSAGE;
        }
        v->pos = pos;
        pos += (size_t)size;
    }
    return n;
}

/* A marker built by the coordinator: trusted, its header parsed once. */
static int view_control(const uint8_t *recs, size_t len, mk_batch_view_t *v, mk_partition_append_t *a)
{
    if (mk_batch_view_parse(recs, len, v) < 0 || v->size != len) {
        snprintf(a->why, sizeof(a->why), "control batch is not one whole batch");
        return -MK_KERR_CORRUPT_MESSAGE;
    }
    return 1;
}

/* ================================================================== append */

int16_t mk_partition_append(mk_partition_writer_t *w, mk_partition_t *p, uint8_t *recs, size_t len,
                            mk_partition_append_t *a)
{
    a->base_offset = -1;
    a->end_offset = -1;
    a->log_append_time = -1;
    a->log_start_offset = -1;
    a->duplicate = false;
    a->loading = false;
    a->stepped = false;
    a->why[0] = 0;
    if (!p->log || p->leader < 0) {
        snprintf(a->why, sizeof(a->why), "not the leader");
        return MK_KERR_NOT_LEADER_OR_FOLLOWER;
    }
    const mk_topic_t *t = p->topic;
    if (!a->control && a->acks == -1 && mk_partition_isr_size(p) < t->cfg.min_insync_replicas) {
        snprintf(a->why, sizeof(a->why), "fewer in-sync replicas than min.insync.replicas");
        return MK_KERR_NOT_ENOUGH_REPLICAS;
    }
    mk_batch_view_t stack[STACK_BATCHES], *views = stack;
    int n = a->control ? view_control(recs, len, views, a) : walk_batches(t, recs, len, &views, a);
    int16_t err = 0;
    if (n < 0) {
        err = (int16_t)-n;
        goto done;
    }
    /* Idempotent and transactional producers: sequences and epochs. */
    if (!a->control && views[0].hdr.producerId >= 0)
        for (int i = 0; i < w->nobs; i++) {
            if (!w->obs[i].check)
                continue;
            int64_t dup = -1;
            int rc = w->obs[i].check(w->obs[i].arg, p, &views[0].hdr, &dup);
            if (rc == MK_PARTITION_DUPLICATE) {
                /* A retry of a batch we have: its first answer again. */
                a->duplicate = true;
                a->base_offset = dup;
                a->end_offset = dup + views[0].hdr.lastOffsetDelta + 1;
                a->log_start_offset = mk_log_start_offset(p->log);
                goto done;
            }
            if (rc == MK_PARTITION_LOADING) {
                a->loading = true;
                snprintf(a->why, sizeof(a->why), "producer state is loading");
                err = MK_KERR_NOT_LEADER_OR_FOLLOWER;
                goto done;
            }
            if (rc) {
                err = (int16_t)rc;
                goto done;
            }
        }
    int64_t now = mk_now_ms();
    if (!a->control && t->cfg.log_append_time) {
        for (int i = 0; i < n; i++)
            mk_batch_view_set_log_append_time(recs, &views[i], now);
        a->log_append_time = now;
    }
    mk_log_append_info_t info;
    /* A large set of batches is written in steps, one per loop turn, while
     * its Produce waits parked and retries (log.h): no turn writes all of
     * a 1 MB batch.  Not for acks=0 (no answer to wait for), control
     * batches, nor LogAppendTime (its bytes change with every try). */
    bool stepped = false;
    int rc = !a->control && a->acks != 0 && !t->cfg.log_append_time
                 ? mk_log_append_views_stepped(p->log, recs, len, views, (size_t)n, p->leader_epoch, now,
                                               MK_LOG_STEP_BYTES, &stepped, &info)
                 : mk_log_append_views(p->log, recs, len, views, (size_t)n, p->leader_epoch, now, &info);
    if (rc == MK_ERR_AGAIN && stepped) {
        a->loading = a->stepped = true; /* the caller parks it, retries next turn */
        snprintf(a->why, sizeof(a->why), "being written in steps");
        err = MK_KERR_REQUEST_TIMED_OUT;
        goto done;
    }
    if (rc == MK_ERR_AGAIN) {
        /* Held at the storage I/O gate (a stalled or slow disk): nothing
         * appended; the caller parks and retries after the wake, as for a
         * loading producer state. */
        a->loading = true;
        a->log_append_time = -1;
        snprintf(a->why, sizeof(a->why), "storage is not making progress");
        err = MK_KERR_REQUEST_TIMED_OUT;
        goto done;
    }
    if (rc < 0) {
        snprintf(a->why, sizeof(a->why), "%s", mk_strerror(rc));
        mk_error("partition %s-%d: append failed: %s", t->name, p->index, mk_strerror(rc));
        err = MK_KERR_KAFKA_STORAGE_ERROR;
        a->log_append_time = -1;
        goto done;
    }
    a->base_offset = info.first_offset;
    a->end_offset = info.end_offset;
    a->log_start_offset = mk_log_start_offset(p->log);
    /* The views now say what the append assigned (offsets, epoch). */
    for (int i = 0; i < w->nobs; i++)
        if (w->obs[i].appended)
            w->obs[i].appended(w->obs[i].arg, p, recs, views, n);
    mk_partition_hw_update(p);
    mk_partition_writer_progress(w);
done:
    if (views != stack)
        mk_free(views);
    return err;
}
