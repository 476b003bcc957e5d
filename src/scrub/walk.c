/*
 * walk.c -- one partition's replicas read side by side: every batch through
 * the one validator, the replicas compared by batch checksum.
 *
 * Each replica is read through its own cursor (log/), in offset order.  A
 * batch is read whole and checked alone (mk_batch_validate_ex: header,
 * lengths, CRC32C; not the records: the CRC covers them and they were
 * checked deeply when produced) and against the batch before it
 * (mk_batch_validate_next: offsets contiguous, epochs not going back).
 * The validator runs in its compacted mode (batches with fewer records
 * than offsets are what a compacted log holds); below w->compacted_to
 * (the largest cleaner checkpoint of the replicas) gaps are compaction's
 * and replicas are not compared: each compacts its own log.
 * What fails becomes a bad range of offsets on that replica:
 *   - a batch whose bytes fail: from the offset expected there to its last
 *     offset when its header still agrees with where it stands, else up to
 *     the next sound batch ("open" until then);
 *   - a header the cursor cannot even frame: the rest of that segment (the
 *     cursor skips to the next one);
 *   - offsets that no batch holds between two sound batches: a gap;
 *   - a sound batch that differs from the other replicas' at its offset:
 *     diverged.
 * A read that fails (I/O error, no memory) is not bad data: the replica's
 * walk stops with r->io_error and its findings are not judged.
 *
 * Comparison: after every replica has its next sound batch in hand, the
 * lowest base offset among them is compared across the replicas that are
 * compared (the leader and its settled followers) and hold a batch there:
 * size, CRC, last offset and leader epoch.  The majority is right; a tie
 * goes to the leader.  Below w->committed (the high watermark) every
 * difference counts; above it only one between batches of the same leader
 * epoch (an unreconciled suffix of another epoch is replication's business,
 * not corruption).  A replica that diverged is not compared further.
 *
 * Everything here is pure over the cursors and may run on any thread (the
 * scrubber's workers, the offline verify); one thread at a time per walk.
 */
#include "scrub/scrub_int.h"

#include <stdarg.h>
#include <string.h>

#define OPEN_END (-2)   /* a range that ends before the next sound batch */

const char *scrub_bad_name(int kind)
{
    switch (kind) {
    case SCRUB_BAD_DIVERGED:
        return "diverged";
    case SCRUB_BAD_GAP:
        return "gap";
    default:
        return "corrupt";
    }
}

void scrub_walk_init(scrub_walk_t *w, const char *name, int64_t committed)
{
    memset(w, 0, sizeof(*w));
    w->name = name;
    w->committed = committed;
    mk_buf_init(&w->buf);
}

int scrub_walk_add(scrub_walk_t *w, int32_t broker, mk_log_cursor_t *cur, int64_t start, bool compare,
                   bool leader)
{
    if (w->n == SCRUB_MAX_REPLICAS) {
        mk_log_cursor_close(cur);
        return MK_ERR_RANGE;
    }
    scrub_rep_t *r = &w->reps[w->n++];
    memset(r, 0, sizeof(*r));
    r->broker = broker;
    r->cur = cur;
    r->start = start;
    r->compare = compare;
    r->leader = leader;
    r->open_range = -1;
    r->bad_from = INT64_MAX;
    return 0;
}

void scrub_walk_free(scrub_walk_t *w)
{
    for (int i = 0; i < w->n; i++)
        mk_log_cursor_close(w->reps[i].cur);
    w->n = 0;
    mk_buf_free(&w->buf);
}

static int64_t last_of(const mk_batch_hdr_t *h) { return mk_batch_hdr_last_offset(h); }

/* Records bad offsets [from, to] (to OPEN_END: up to the next sound batch)
 * of kind on r; the first finding's sentence is kept. */
static void rep_bad(const scrub_walk_t *w, scrub_rep_t *r, int kind, int64_t from, int64_t to, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void rep_bad(const scrub_walk_t *w, scrub_rep_t *r, int kind, int64_t from, int64_t to, const char *fmt, ...)
{
    if (from < 0)
        from = 0;
    if (to != OPEN_END && to < from)
        to = from;
    if (from < r->bad_from)
        r->bad_from = from;
    if (!r->why[0]) {
        int n = snprintf(r->why, sizeof(r->why), "%s on broker %d: ", w->name ? w->name : "?", r->broker);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof(r->why))
            vsnprintf(r->why + n, sizeof(r->why) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    scrub_range_t *last = r->nranges ? &r->ranges[r->nranges - 1] : NULL;
    if (last && last->kind == kind && last->to != OPEN_END && last->to != INT64_MAX && from <= last->to + 1) {
        if (to == OPEN_END) {
            last->to = OPEN_END;
            r->open_range = r->nranges - 1;
        } else if (to > last->to) {
            last->to = to;
        }
        return;
    }
    if (r->nranges == SCRUB_MAX_RANGES) {
        /* Too many to keep apart: everything after the last one is bad. */
        last->to = INT64_MAX;
        r->open_range = -1;
        return;
    }
    r->ranges[r->nranges] = (scrub_range_t){from, to, kind};
    if (to == OPEN_END)
        r->open_range = r->nranges;
    r->nranges++;
}

/* The offset r's next batch should start at. */
static int64_t expected(const scrub_rep_t *r, int64_t segment_base)
{
    if (r->has_prev)
        return last_of(&r->prev) + 1;
    return segment_base >= 0 ? segment_base : r->start;
}

/* Reads r on until it holds its next sound batch (r->have) or is done,
 * recording what is bad on the way.  Returns the bytes read. */
static uint64_t rep_advance(scrub_walk_t *w, scrub_rep_t *r)
{
    uint64_t spent = 0;
    while (!r->done && !r->have) {
        mk_batch_view_t v;
        int rc = mk_log_cursor_next(r->cur, &v);
        if (rc == 0) {
            r->done = true;
            break;
        }
        int64_t seg;
        mk_log_cursor_where(r->cur, &seg);
        int64_t want = expected(r, seg);
        if (rc == MK_ERR_IO || rc == MK_ERR_NOMEM) {
            /* The disk (or memory) failed, not the data: nothing to judge. */
            r->io_error = rc;
            r->done = true;
            break;
        }
        if (rc < 0) {
            /* Nothing of the rest of this segment can be framed. */
            rep_bad(w, r, SCRUB_BAD_CORRUPT, want, OPEN_END,
                    "segment %020lld: the batch expected at offset %lld cannot be read (%s); the rest of the segment "
                    "is unreadable",
                    (long long)seg, (long long)want, mk_strerror(rc));
            r->has_prev = false;
            if (!mk_log_cursor_skip_segment(r->cur))
                r->done = true;
            continue;
        }
        r->batches++;
        r->bytes += v.size;
        spent += v.size;
        char why[160];
        rc = mk_log_cursor_read(r->cur, &v, &w->buf);
        if (rc == MK_ERR_IO || rc == MK_ERR_NOMEM) {
            r->io_error = rc;
            r->done = true;
            break;
        }
        if (rc == 0)
            rc = mk_batch_validate_ex(w->buf.data, w->buf.len, MK_BATCH_VALIDATE_COMPACTED, 0, NULL, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "read failed: %s", mk_strerror(rc));
        if (rc < 0) {
            bool placed = v.hdr.baseOffset == want && v.hdr.lastOffsetDelta >= 0 && last_of(&v.hdr) >= want;
            rep_bad(w, r, SCRUB_BAD_CORRUPT, want, placed ? last_of(&v.hdr) : OPEN_END,
                    "segment %020lld: batch at offset %lld (byte %llu, %u bytes): %s", (long long)seg,
                    (long long)want, (unsigned long long)v.pos, v.size, why);
            r->has_prev = placed;
            if (placed)
                r->prev = v.hdr;
            continue;
        }
        rc = mk_batch_validate_next(r->has_prev ? &r->prev : NULL, &v.hdr, why, sizeof(why));
        if (rc < 0) {
            bool gap = r->has_prev && v.hdr.baseOffset > want && v.hdr.lastOffsetDelta >= 0 &&
                       v.hdr.partitionLeaderEpoch >= r->prev.partitionLeaderEpoch;
            if (!gap) {
                rep_bad(w, r, SCRUB_BAD_CORRUPT, want, OPEN_END, "segment %020lld: %s", (long long)seg, why);
                r->has_prev = false;
                continue;
            }
            if (want >= w->compacted_to)
                rep_bad(w, r, SCRUB_BAD_GAP, want, v.hdr.baseOffset - 1, "segment %020lld: %s", (long long)seg, why);
        }
        if (r->open_range >= 0) {
            scrub_range_t *o = &r->ranges[r->open_range];
            o->to = MK_MAX(o->from, v.hdr.baseOffset - 1);
            r->open_range = -1;
        }
        r->v = v;
        r->have = true;
        r->prev = v.hdr;
        r->has_prev = true;
    }
    if (r->done && r->open_range >= 0) {
        r->ranges[r->open_range].to = INT64_MAX;
        r->open_range = -1;
    }
    return spent;
}

/* Two replicas' batches at one offset hold the same thing. */
static bool same_batch(const mk_batch_view_t *a, const mk_batch_view_t *b)
{
    return a->size == b->size && a->hdr.crc == b->hdr.crc && a->hdr.lastOffsetDelta == b->hdr.lastOffsetDelta &&
           a->hdr.partitionLeaderEpoch == b->hdr.partitionLeaderEpoch;
}

/* Compares the compared replicas that hold a batch at offset m. */
static void compare_at(scrub_walk_t *w, int64_t m)
{
    scrub_rep_t *g[SCRUB_MAX_REPLICAS];
    int n = 0;
    for (int i = 0; i < w->n; i++)
        if (w->reps[i].have && w->reps[i].compare && w->reps[i].v.hdr.baseOffset == m)
            g[n++] = &w->reps[i];
    if (n < 2 || m < w->compacted_to)
        return;
    int best = 0, best_votes = -1;
    bool best_leader = false;
    for (int i = 0; i < n; i++) {
        int votes = 0;
        for (int j = 0; j < n; j++)
            votes += same_batch(&g[i]->v, &g[j]->v);
        if (votes > best_votes || (votes == best_votes && g[i]->leader && !best_leader)) {
            best = i;
            best_votes = votes;
            best_leader = g[i]->leader;
        }
    }
    const mk_batch_view_t *ref = &g[best]->v;
    for (int i = 0; i < n; i++) {
        const mk_batch_view_t *v = &g[i]->v;
        if (same_batch(v, ref))
            continue;
        if (m >= w->committed && v->hdr.partitionLeaderEpoch != ref->hdr.partitionLeaderEpoch)
            continue;
        rep_bad(w, g[i], SCRUB_BAD_DIVERGED, m, last_of(&v->hdr),
                "batch at offset %lld differs from the other replicas' (%u bytes, crc %08x, epoch %d, last offset "
                "%lld; theirs %u bytes, crc %08x, epoch %d, last offset %lld)%s",
                (long long)m, v->size, v->hdr.crc, v->hdr.partitionLeaderEpoch, (long long)last_of(&v->hdr),
                ref->size, ref->hdr.crc, ref->hdr.partitionLeaderEpoch, (long long)last_of(&ref->hdr),
                m < w->committed ? " below the high watermark" : "");
        g[i]->compare = false;
    }
}

uint64_t scrub_walk_step(scrub_walk_t *w, uint64_t budget)
{
    uint64_t spent = 0;
    while (!w->finished && (budget == 0 || spent < budget)) {
        for (int i = 0; i < w->n; i++)
            spent += rep_advance(w, &w->reps[i]);
        int64_t m = INT64_MAX;
        for (int i = 0; i < w->n; i++)
            if (w->reps[i].have && w->reps[i].v.hdr.baseOffset < m)
                m = w->reps[i].v.hdr.baseOffset;
        if (m == INT64_MAX) {
            w->finished = true;
            break;
        }
        compare_at(w, m);
        for (int i = 0; i < w->n; i++)
            if (w->reps[i].have && w->reps[i].v.hdr.baseOffset == m)
                w->reps[i].have = false;
    }
    return spent;
}
