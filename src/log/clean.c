/*
 * clean.c -- log compaction: Kafka's log cleaner, for one log at a time.
 *
 * What a cleaning does (Kafka's semantics, learnt from its documentation):
 *   - Range: the sealed segments from the first one up to the first that is
 *     not cleanable: the active segment, a segment holding offsets at or
 *     above the limit the owner gives (the high watermark), or one whose
 *     largest timestamp is younger than min.compaction.lag.ms.  Whole
 *     segments only.  The end of the range (the base of the first segment
 *     left out) becomes the cleaner checkpoint, cleaned_to (Kafka's
 *     firstDirtyOffset): below it the log is compacted, at and above it
 *     "dirty".
 *   - When: dirty bytes / (clean + dirty bytes) >= min.cleanable.dirty.ratio,
 *     or a dirty segment is older than max.compaction.lag.ms, or a tombstone
 *     kept by an earlier cleaning has passed its delete horizon.
 *   - Key map: a first pass over the range notes, per key (a 128-bit hash of
 *     its bytes), the offset of its latest record.  Aborted transactional
 *     batches do not count (see below).
 *   - Rewrite: every batch of the range is read again (and checked by the
 *     one validator, as is every batch the rewrite makes) and rewritten by
 *     batch/'s mk_batch_filter(): a record is kept when it is the latest of
 *     its key; a tombstone (null value) is kept until its batch's delete
 *     horizon (KIP-534: set to now + delete.retention.ms by the cleaning
 *     that first keeps it, carried in the batch), then removed.  Records
 *     without a key (written before the topic was compacted) are kept.
 *     Offsets never change: a batch keeps its baseOffset and lastOffsetDelta
 *     and loses records inside (gaps are normal in a compacted log), a batch
 *     left empty goes, except the last data batch of a producer, kept as a
 *     bare header so that its sequence survives (as Kafka does).
 *   - Transactions: a first header pass follows each producer's
 *     transactional batches to its marker.  Data of an aborted transaction
 *     is removed (an empty header is kept for the producer's last batch);
 *     data whose marker is not in the range (still open at the limit) is
 *     left exactly as it is and does not enter the key map.  Markers
 *     (control batches) are always kept: Kafka removes a marker once its
 *     transaction's data is gone and its own delete horizon passed; we do
 *     not yet, which only costs a few bytes.
 *   - Segments are grouped as Kafka does: consecutive input segments whose
 *     sizes add up to at most segment.bytes become one output segment,
 *     named by the first one's base, so segment counts shrink.  An output
 *     that would be empty is dropped unless it is the first segment of the
 *     log, which keeps its base (the log start never moves by compaction);
 *     an empty output keeps the largest timestamp of its inputs as its file
 *     time, so that retention (compact,delete) judges it as before.
 *
 * Threads: mk_log_clean_maybe() (loop) picks the range and opens a cursor
 * (duplicated descriptors) over it; the three passes and the writing of
 * the new segments (<base>.log/.index/.timeindex.cleaned, written through
 * segment.c's append, so the indexes follow the one index rule, then
 * fsynced, and <base>.range.cleaned holding the group's end offset) run on
 * the threadpool.  The loop only swaps: the job is dropped when the log was
 * truncated meanwhile (the history it read is gone); a group whose input
 * segments are no longer all there (retention) is dropped alone.  One
 * cleaning runs at a time in the process.
 *
 * The swap (Kafka's .swap protocol), per group, on the loop:
 *   1. <base>.range.cleaned, .index.cleaned, .timeindex.cleaned, and last
 *      .log.cleaned are renamed to .swap: the rename of the .log is the
 *      commit point;
 *   2. the input segments are deleted (renamed to .deleted, unlinked on
 *      the threadpool);
 *   3. the .swap files are renamed to their plain names, the .log last,
 *      and the range file is removed.
 * Open recovers (mk_log_clean_recover_dir, before the segments are listed):
 * *.cleaned files are removed (a cleaning that did not commit); for each
 * <base>.log.swap, the segments with a base in [base, end) (end from the
 * range file) are removed and the swap files get their plain names; .swap
 * files without a .log.swap are removed.
 *
 * Checkpoint file "cleaner-offset-checkpoint" in the log directory, text:
 * "<cleaned_to> <earliest tombstone horizon or -1>\n".
 */
#include "log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define CLEAN_CHECKPOINT "cleaner-offset-checkpoint"
#define CLEAN_MAP_MAX ((size_t)1 << 22)   /* distinct keys one cleaning maps (~100 MB) */
#define CLEAN_RETRY_MS 60000              /* after a failed cleaning */
#define CLEAN_MAX_UNCOMPRESSED 0          /* batch/'s default bound */

/* ================================================================ stats */

static mk_log_cleaner_stats_t cleaner_stats = {.last_run_ms = -1};

void mk_log_cleaner_stats(mk_log_cleaner_stats_t *out) { *out = cleaner_stats; }

/* ============================================================ hash table */

/* Open addressing over 128-bit keys with an int64 value; a (0, 0) key
 * marks an empty slot (a real key with both halves 0 is stored as (0, 1)). */
typedef struct htab_ent_s {
    uint64_t a, b;
    int64_t v;
} htab_ent_t;

typedef struct htab_s {
    htab_ent_t *e;
    size_t cap, n;
} htab_t;

static void htab_free(htab_t *t)
{
    mk_free(t->e);
    memset(t, 0, sizeof(*t));
}

static htab_ent_t *htab_slot(const htab_t *t, uint64_t a, uint64_t b)
{
    size_t i = (size_t)(a ^ (b * 0x9e3779b97f4a7c15ull)) & (t->cap - 1);
    for (;;) {
        htab_ent_t *e = &t->e[i];
        if ((e->a == 0 && e->b == 0) || (e->a == a && e->b == b))
            return e;
        i = (i + 1) & (t->cap - 1);
    }
}

static int htab_grow(htab_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    htab_ent_t *old = t->e;
    size_t ocap = t->cap;
    t->e = mk_calloc(cap, sizeof(*t->e));
    if (!t->e) {
        t->e = old;
        return MK_ERR_NOMEM;
    }
    t->cap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].a || old[i].b)
            *htab_slot(t, old[i].a, old[i].b) = old[i];
    mk_free(old);
    return 0;
}

/* Inserts or replaces; 0 or MK_ERR_NOMEM. */
static int htab_put(htab_t *t, uint64_t a, uint64_t b, int64_t v)
{
    if (a == 0 && b == 0)
        b = 1;
    if ((t->n + 1) * 10 > t->cap * 7) {
        int rc = htab_grow(t);
        if (rc)
            return rc;
    }
    htab_ent_t *e = htab_slot(t, a, b);
    if (!e->a && !e->b) {
        e->a = a;
        e->b = b;
        t->n++;
    }
    e->v = v;
    return 0;
}

/* The value, or -1 when absent. */
static int64_t htab_get(const htab_t *t, uint64_t a, uint64_t b)
{
    if (!t->cap)
        return -1;
    if (a == 0 && b == 0)
        b = 1;
    const htab_ent_t *e = htab_slot(t, a, b);
    return (e->a || e->b) ? e->v : -1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Two independent 64-bit FNV-1a hashes of the key (and its length), mixed:
 * a 128-bit digest, as Kafka keeps a digest per key rather than the key. */
static void key_hash(const uint8_t *k, int32_t n, uint64_t *a, uint64_t *b)
{
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull ^ (uint64_t)n;
    for (int32_t i = 0; i < n; i++) {
        h1 = (h1 ^ k[i]) * 0x100000001b3ull;
        h2 = (h2 ^ (uint64_t)(k[i] + 0x5bu)) * 0x100000001b3ull;
    }
    *a = mix64(h1 ^ (uint64_t)n);
    *b = mix64(h2 + 0x632be59bd9b4e019ull);
}

/* ================================================================= jobs */

/* What a batch is to the cleaning, from the transaction pass. */
enum { KIND_PLAIN = 0, KIND_ABORTED = 1, KIND_OPEN = 2 };

typedef struct clean_in_s {
    mk_log_seg_t *seg;         /* the log's segment when the job began (compared, never used) */
    int64_t base;
    uint64_t size;
    int64_t max_ts;            /* its largest timestamp (file time when none) */
} clean_in_t;

typedef struct clean_group_s {
    size_t from, to;           /* input segments [from, to) */
    int64_t end;               /* base of the segment after the group */
    mk_log_seg_t *out;         /* the new segment (".cleaned"), NULL when dropped */
    bool keep_empty;           /* the log's first segment: kept even when empty */
} clean_group_t;

typedef struct producer_s {
    int64_t last_base;         /* base offset of its last data batch in the range */
    int64_t *pending;          /* bases of its transactional batches since its last marker */
    size_t npending, cap;
} producer_t;

struct mk_log_clean_s {
    uv_work_t req;
    mk_log_t *log;             /* NULL once detached (close, destroy) */
    char *dir;                 /* owned copy */
    struct uv_loop_s *loop;
    uint64_t log_id, truncations;
    int32_t index_interval;
    int64_t now_ms, delete_retention_ms;
    mk_log_cursor_t *cur;      /* over the input segments */
    size_t nin;
    clean_in_t *in;            /* owned */
    size_t ngroups;
    clean_group_t *groups;     /* owned */
    int64_t end;               /* cleaned_to once swapped in */
    volatile int cancel;       /* set on detach; the worker stops early */
    /* worker state */
    htab_t keys;               /* key digest -> latest offset */
    htab_t batches;            /* base offset -> KIND_* (aborted, open) */
    htab_t pids;               /* producerId -> index in producers */
    producer_t *producers;
    size_t nproducers, producers_cap;
    int64_t horizon;           /* earliest delete horizon of a kept tombstone, -1 */
    /* results */
    int rc;
    char why[192];
    uint64_t bytes_read, bytes_written, records_removed, batches_removed;
    double map_fill;
    uint64_t start_ns, took_ns;
};

static int clean_running;      /* cleanings in flight (loop thread) */

static void job_free(mk_log_clean_t *j)
{
    if (!j)
        return;
    mk_log_cursor_close(j->cur);
    for (size_t g = 0; g < j->ngroups; g++)
        if (j->groups[g].out)
            mk_log_seg_close(j->groups[g].out);
    for (size_t i = 0; i < j->nproducers; i++)
        mk_free(j->producers[i].pending);
    mk_free(j->producers);
    htab_free(&j->keys);
    htab_free(&j->batches);
    htab_free(&j->pids);
    mk_free(j->groups);
    mk_free(j->in);
    mk_free(j->dir);
    mk_free(j);
}

static int range_path(const char *dir, int64_t base, const char *sfx, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%020" PRId64 ".range%s", dir, base, sfx);
    return (n < 0 || (size_t)n >= cap) ? MK_ERR_TOO_LARGE : 0;
}

/* Removes a group's output files (any suffix they have now) and its range
 * file. */
static void group_discard(mk_log_clean_t *j, clean_group_t *g)
{
    if (g->out) {
        mk_log_seg_delete(g->out, NULL);
        g->out = NULL;
    }
    char path[PATH_MAX];
    const char *sfxs[] = {".cleaned", ".swap"};
    for (size_t i = 0; i < MK_ARRAY_LEN(sfxs); i++)
        if (range_path(j->dir, j->in[g->from].base, sfxs[i], path, sizeof(path)) == 0)
            unlink(path);
}

/* ================================================================ worker */

static void job_fail(mk_log_clean_t *j, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(mk_log_clean_t *j, int rc, const char *fmt, ...)
{
    if (j->rc)
        return;
    j->rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
}

static producer_t *producer_get(mk_log_clean_t *j, int64_t pid)
{
    int64_t i = htab_get(&j->pids, (uint64_t)pid, 0x70696473ull);
    if (i >= 0)
        return &j->producers[i];
    if (j->nproducers == j->producers_cap) {
        size_t cap = j->producers_cap ? j->producers_cap * 2 : 16;
        producer_t *p = mk_realloc(j->producers, cap * sizeof(*p));
        if (!p)
            return NULL;
        j->producers = p;
        j->producers_cap = cap;
    }
    if (htab_put(&j->pids, (uint64_t)pid, 0x70696473ull, (int64_t)j->nproducers))
        return NULL;
    producer_t *p = &j->producers[j->nproducers++];
    memset(p, 0, sizeof(*p));
    p->last_base = -1;
    return p;
}

static int batch_kind(const mk_log_clean_t *j, int64_t base)
{
    int64_t k = htab_get(&j->batches, (uint64_t)base, 0x62617463ull);
    return k < 0 ? KIND_PLAIN : (int)k;
}

/* Reads the batch v into buf and checks it (CRC, header, compacted record
 * counts): the cleaner never rewrites bytes it cannot vouch for. */
static int read_batch(mk_log_clean_t *j, const mk_batch_view_t *v, mk_buf_t *buf)
{
    int rc = mk_log_cursor_read(j->cur, v, buf);
    if (rc)
        return rc;
    j->bytes_read += v->size;
    char why[160];
    rc = mk_batch_validate_ex(buf->data, buf->len, MK_BATCH_VALIDATE_COMPACTED, 0, NULL, why, sizeof(why));
    if (rc) {
        int64_t seg;
        mk_log_cursor_where(j->cur, &seg);
        job_fail(j, MK_ERR_CORRUPT, "segment %" PRId64 ": batch at offset %" PRId64 ": %s", seg,
                 v->hdr.baseOffset, why);
    }
    return rc;
}

/* Pass 1, headers (and markers): each producer's transactions followed to
 * their markers; aborted and still-open batches noted. */
static int pass_txn(mk_log_clean_t *j, mk_buf_t *buf)
{
    mk_batch_view_t v;
    int rc;
    while ((rc = mk_log_cursor_next(j->cur, &v)) == 1) {
        if (j->cancel)
            return MK_ERR_STATE;
        const mk_batch_hdr_t *h = &v.hdr;
        if (h->producerId < 0)
            continue;
        producer_t *p = producer_get(j, h->producerId);
        if (!p)
            return MK_ERR_NOMEM;
        if (!mk_batch_hdr_is_control(h))
            p->last_base = h->baseOffset; /* its last data batch: its sequence */
        if (!mk_batch_hdr_is_transactional(h))
            continue;
        if (!mk_batch_hdr_is_control(h)) {
            if (p->npending == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 8;
                int64_t *np = mk_realloc(p->pending, cap * sizeof(*np));
                if (!np)
                    return MK_ERR_NOMEM;
                p->pending = np;
                p->cap = cap;
            }
            p->pending[p->npending++] = h->baseOffset;
            continue;
        }
        rc = read_batch(j, &v, buf);
        if (rc)
            return rc;
        int type = mk_batch_control_type(buf->data, buf->len);
        if (type == 0) /* ABORT */
            for (size_t i = 0; i < p->npending; i++)
                if (htab_put(&j->batches, (uint64_t)p->pending[i], 0x62617463ull, KIND_ABORTED))
                    return MK_ERR_NOMEM;
        if (type == 0 || type == 1)
            p->npending = 0;
    }
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < j->nproducers; k++)
        for (size_t i = 0; i < j->producers[k].npending; i++)
            if (htab_put(&j->batches, (uint64_t)j->producers[k].pending[i], 0x62617463ull, KIND_OPEN))
                return MK_ERR_NOMEM;
    return 0;
}

static int map_cb(const mk_record_t *rec, void *arg)
{
    mk_log_clean_t *j = arg;
    if (rec->key_len < 0)
        return 0;
    if (j->keys.n >= CLEAN_MAP_MAX)
        return MK_ERR_TOO_LARGE;
    uint64_t a, b;
    key_hash(rec->key, rec->key_len, &a, &b);
    return htab_put(&j->keys, a, b, rec->offset);
}

/* Pass 2, records: the latest offset of every key, over the batches that
 * count (not markers, not aborted, not open). */
static int pass_map(mk_log_clean_t *j, mk_buf_t *buf, mk_buf_t *scratch)
{
    mk_log_cursor_rewind(j->cur);
    mk_batch_view_t v;
    int rc;
    while ((rc = mk_log_cursor_next(j->cur, &v)) == 1) {
        if (j->cancel)
            return MK_ERR_STATE;
        if (mk_batch_hdr_is_control(&v.hdr) || batch_kind(j, v.hdr.baseOffset) != KIND_PLAIN ||
            v.hdr.recordCount == 0)
            continue;
        rc = read_batch(j, &v, buf);
        if (rc)
            return rc;
        rc = mk_batch_records_foreach(buf->data, buf->len, scratch, CLEAN_MAX_UNCOMPRESSED, map_cb, j);
        if (rc == MK_ERR_TOO_LARGE && j->keys.n >= CLEAN_MAP_MAX) {
            job_fail(j, rc, "more than %zu distinct keys in the range: not cleaned", CLEAN_MAP_MAX);
            return rc;
        }
        if (rc)
            return rc;
    }
    j->map_fill = j->keys.cap ? 100.0 * (double)j->keys.n / (double)CLEAN_MAP_MAX : 0;
    return rc < 0 ? rc : 0;
}

/* The filter's question for a plain batch's record. */
typedef struct keep_ctx_s {
    mk_log_clean_t *j;
    int64_t horizon;           /* the batch's delete horizon, -1 none */
} keep_ctx_t;

static int keep_cb(const mk_record_t *rec, void *arg)
{
    keep_ctx_t *k = arg;
    mk_log_clean_t *j = k->j;
    if (rec->key_len < 0)
        return 1;
    uint64_t a, b;
    key_hash(rec->key, rec->key_len, &a, &b);
    int64_t latest = htab_get(&j->keys, a, b);
    if (latest > rec->offset)
        return 0; /* a later record of the key */
    if (rec->value_len < 0) {
        /* a tombstone: until the horizon, set now when the batch has none */
        int64_t horizon = k->horizon >= 0 ? k->horizon : j->now_ms + j->delete_retention_ms;
        if (k->horizon >= 0 && j->now_ms >= k->horizon)
            return 0;
        if (j->horizon < 0 || horizon < j->horizon)
            j->horizon = horizon;
    }
    return 1;
}

static int drop_cb(const mk_record_t *rec, void *arg)
{
    (void)rec;
    (void)arg;
    return 0;
}

/* Appends the batch bytes [p, p+n) to the group's output segment. */
static int out_append(mk_log_clean_t *j, clean_group_t *g, const uint8_t *p, size_t n)
{
    mk_batch_view_t v;
    int rc = mk_log_view_parse(p, n, &v);
    if (rc)
        return rc;
    v.pos = 0;
    rc = mk_log_seg_append(g->out, p, n, &v, 1, j->index_interval, j->now_ms, 0);
    if (rc == 0)
        j->bytes_written += n;
    return rc;
}

/* Pass 3: every batch of the range through the filter into its group's
 * output segment, fsynced with its range file. */
static int pass_write(mk_log_clean_t *j, mk_buf_t *buf, mk_buf_t *scratch, mk_buf_t *out)
{
    mk_log_cursor_rewind(j->cur);
    size_t gi = 0;
    clean_group_t *g = NULL;
    mk_batch_view_t v;
    int rc;
    for (;;) {
        int more = mk_log_cursor_next(j->cur, &v);
        if (more < 0)
            return more;
        if (j->cancel)
            return MK_ERR_STATE;
        int64_t seg = -1;
        if (more)
            mk_log_cursor_where(j->cur, &seg);
        /* open the groups up to the one of this batch's segment (all at the end) */
        while (gi < j->ngroups && (!more || j->in[j->groups[gi].from].base <= seg)) {
            g = &j->groups[gi++];
            rc = mk_log_seg_open_sfx(j->dir, j->in[g->from].base, ".cleaned", true, &g->out);
            if (rc)
                return rc;
        }
        if (!more)
            break;
        const mk_batch_hdr_t *h = &v.hdr;
        rc = read_batch(j, &v, buf);
        if (rc)
            return rc;
        int kind = mk_batch_hdr_is_control(h) ? KIND_OPEN : batch_kind(j, h->baseOffset);
        if (kind == KIND_OPEN) { /* markers and open transactions: as they are */
            rc = out_append(j, g, buf->data, buf->len);
            if (rc)
                return rc;
            continue;
        }
        bool last_of_producer = false;
        if (h->producerId >= 0) {
            producer_t *p = producer_get(j, h->producerId);
            last_of_producer = p && p->last_base == h->baseOffset;
        }
        keep_ctx_t k = {j, mk_batch_hdr_delete_horizon(h)};
        mk_batch_filter_result_t res;
        mk_buf_reset(out);
        rc = mk_batch_filter(buf->data, buf->len, kind == KIND_ABORTED ? -1 : j->now_ms + j->delete_retention_ms,
                             last_of_producer, scratch, CLEAN_MAX_UNCOMPRESSED,
                             kind == KIND_ABORTED ? drop_cb : keep_cb, &k, out, &res);
        if (rc)
            return rc;
        j->records_removed += (uint64_t)res.dropped;
        if (!res.written) {
            j->batches_removed++;
            continue;
        }
        if (res.rewritten) {
            /* the one validator checks what the rewrite made, records too */
            char why[160];
            rc = mk_batch_validate_ex(out->data, out->len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED,
                                      CLEAN_MAX_UNCOMPRESSED, scratch, why, sizeof(why));
            if (rc) {
                job_fail(j, rc, "the rewrite of the batch at offset %" PRId64 " does not validate: %s", h->baseOffset,
                         why);
                return rc;
            }
        }
        rc = out_append(j, g, out->data, out->len);
        if (rc)
            return rc;
    }
    /* fsync every output and write its range file */
    for (size_t i = 0; i < j->ngroups; i++) {
        clean_group_t *gr = &j->groups[i];
        if (gr->out->st.size == 0 && gr->keep_empty) {
            /* the first segment stays, empty, judged by retention as its inputs were */
            int64_t ts = -1;
            for (size_t k = gr->from; k < gr->to; k++)
                ts = MK_MAX(ts, j->in[k].max_ts);
            if (ts >= 0) {
                struct timespec tv[2] = {{ts / 1000, (ts % 1000) * 1000000}, {ts / 1000, (ts % 1000) * 1000000}};
                if (mk_log_seg_files_get(gr->out) == 0) {
                    if (futimens(gr->out->fd, tv) == 0)
                        gr->out->st.mtime_ms = ts;
                    mk_log_seg_files_put(gr->out);
                }
            }
        }
        rc = mk_log_seg_sync(gr->out);
        if (rc)
            return rc;
        char name[64], text[32];
        snprintf(name, sizeof(name), "%020" PRId64 ".range.cleaned", j->in[gr->from].base);
        snprintf(text, sizeof(text), "%" PRId64 "\n", gr->end);
        rc = mk_log_file_replace(j->dir, name, text, strlen(text), true);
        if (rc)
            return rc;
    }
    return 0;
}

/* Threadpool (or in place without a loop): the three passes. */
static void clean_work_cb(uv_work_t *req)
{
    mk_log_clean_t *j = req->data;
    j->start_ns = uv_hrtime();
    mk_buf_t buf, scratch, out;
    mk_buf_init(&buf);
    mk_buf_init(&scratch);
    mk_buf_init(&out);
    int rc = pass_txn(j, &buf);
    if (!rc)
        rc = pass_map(j, &buf, &scratch);
    if (!rc)
        rc = pass_write(j, &buf, &scratch, &out);
    if (rc)
        job_fail(j, rc, "%s", mk_strerror(rc));
    mk_buf_free(&buf);
    mk_buf_free(&scratch);
    mk_buf_free(&out);
    mk_log_cursor_close(j->cur);
    j->cur = NULL;
    mk_batch_codec_thread_release();
    j->took_ns = uv_hrtime() - j->start_ns;
}

/* ================================================================== swap */

static int save_checkpoint(mk_log_t *log)
{
    char text[64];
    snprintf(text, sizeof(text), "%" PRId64 " %" PRId64 "\n", log->cleaned_to, log->clean_horizon);
    int rc = mk_log_file_replace(log->dir, CLEAN_CHECKPOINT, text, strlen(text), false);
    if (rc)
        mk_warn("log: %s: cannot write %s: %s", log->dir, CLEAN_CHECKPOINT, strerror(errno));
    return rc;
}

/* The group's inputs are still the log's segments [*first, *first + n),
 * none of them active. */
static bool group_inputs_stand(const mk_log_t *log, const mk_log_clean_t *j, const clean_group_t *g,
                               size_t *first)
{
    size_t i = mk_log_int_find_seg(log, j->in[g->from].base);
    if (i + (g->to - g->from) >= log->nsegs)
        return false;
    for (size_t k = g->from; k < g->to; k++) {
        const mk_log_seg_t *s = log->segs[i + (k - g->from)];
        if (s != j->in[k].seg || s->base_offset != j->in[k].base || s->st.size != j->in[k].size)
            return false;
    }
    *first = i;
    return true;
}

/* Loop thread: steps 1-3 of the swap for one group (file header). */
static int group_swap(mk_log_t *log, mk_log_clean_t *j, clean_group_t *g, size_t first)
{
    char from[PATH_MAX], to[PATH_MAX];
    int64_t base = j->in[g->from].base;
    if (range_path(j->dir, base, ".cleaned", from, sizeof(from)) || range_path(j->dir, base, ".swap", to, sizeof(to)))
        return MK_ERR_TOO_LARGE;
    if (rename(from, to) != 0 || mk_log_seg_rename(g->out, ".swap") != 0) {
        mk_error("log: %s: cannot commit the cleaned segment %" PRId64 ": %s", log->dir, base, strerror(errno));
        return MK_ERR_IO;
    }
    /* committed: the inputs go, the output takes their place */
    size_t n = g->to - g->from;
    bool empty = g->out->st.size == 0 && !g->keep_empty;
    for (size_t k = 0; k < n; k++)
        mk_log_seg_delete(log->segs[first + k], log->cfg.loop);
    size_t keep = empty ? 0 : 1;
    if (!empty)
        log->segs[first] = g->out;
    memmove(log->segs + first + keep, log->segs + first + n, (log->nsegs - first - n) * sizeof(*log->segs));
    log->nsegs -= n - keep;
    mk_log_seg_t *out = g->out;
    g->out = NULL;
    if (mk_log_seg_rename(out, NULL) != 0)
        mk_error("log: %s: cleaned segment %" PRId64 " left as .swap (the next open completes it)", log->dir, base);
    else
        unlink(to);
    out->dirty = false;
    if (empty)
        mk_log_seg_delete(out, log->cfg.loop);
    return 0;
}

/* Loop thread: the swap, or the discarding of a job that cannot be. */
static void clean_after_cb(uv_work_t *req, int status)
{
    mk_log_clean_t *j = req->data;
    mk_log_t *log = j->log;
    clean_running--;
    cleaner_stats.running = clean_running;
    if (status < 0 && !j->rc)
        job_fail(j, MK_ERR_IO, "cancelled");
    if (log)
        log->clean = NULL;
    const char *abort_why = NULL; /* the job is sound but the log moved on */
    if (!log)
        abort_why = "the log was closed";
    else if (!j->rc && (log->truncations != j->truncations || log->id != j->log_id))
        abort_why = "the log was truncated meanwhile";
    else if (!j->rc && log->io_err)
        abort_why = "the log failed";
    if (j->rc || abort_why) {
        if (j->rc && log) {
            cleaner_stats.failures++;
            log->clean_failed_ms = j->now_ms;
            mk_error("log: %s: cleaning failed: %s", j->dir, j->why);
        } else if (abort_why) {
            cleaner_stats.aborted++;
            mk_info("log: %s: cleaning given up: %s", j->dir, abort_why);
        }
        for (size_t g = 0; g < j->ngroups; g++)
            group_discard(j, &j->groups[g]);
        job_free(j);
        return;
    }
    size_t swapped = 0;
    for (size_t gi = 0; gi < j->ngroups; gi++) {
        clean_group_t *g = &j->groups[gi];
        size_t first;
        if (!group_inputs_stand(log, j, g, &first) || group_swap(log, j, g, first) != 0) {
            group_discard(j, g);
            continue;
        }
        swapped++;
    }
    log->dir_dirty = true;
    log->cleaned_to = MK_MAX(log->cleaned_to, j->end);
    log->clean_horizon = j->horizon;
    log->last_clean_ms = mk_now_ms();
    log->clean_runs++;
    mk_log_int_refresh(log);
    save_checkpoint(log);
    cleaner_stats.runs++;
    cleaner_stats.bytes_read += j->bytes_read;
    cleaner_stats.bytes_written += j->bytes_written;
    cleaner_stats.records_removed += j->records_removed;
    cleaner_stats.batches_removed += j->batches_removed;
    cleaner_stats.last_recopy_percent = j->bytes_read ? 100.0 * (double)j->bytes_written / (double)j->bytes_read : 0;
    cleaner_stats.max_clean_time_secs = (double)j->took_ns / 1e9;
    cleaner_stats.max_buffer_utilization_percent = j->map_fill;
    cleaner_stats.last_run_ms = log->last_clean_ms;
    mk_info("log: %s: cleaned offsets up to %" PRId64 ": %zu of %zu segment groups swapped, %" PRIu64
            " records removed, %" PRIu64 " -> %" PRIu64 " bytes, %.1f ms",
            log->dir, j->end, swapped, j->ngroups, j->records_removed, j->bytes_read, j->bytes_written,
            (double)j->took_ns / 1e6);
    if (log->cfg.loop)
        mk_log_flush(log);
    job_free(j);
}

/* ============================================================ scheduling */

/* How many leading segments may be cleaned now, their clean and dirty
 * bytes, and the index of the first dirty one (-1 none). */
static size_t cleanable(const mk_log_t *log, int64_t limit, int64_t now_ms, uint64_t *clean, uint64_t *dirty,
                        int64_t *first_dirty)
{
    size_t n = 0;
    *clean = *dirty = 0;
    *first_dirty = -1;
    while (n + 1 < log->nsegs) {
        const mk_log_seg_t *s = log->segs[n];
        if (s->st.next_offset > limit || log->segs[n + 1]->base_offset > limit)
            break;
        int64_t ts = mk_log_int_seg_largest_ts(s);
        if (log->cfg.min_compaction_lag_ms > 0 && now_ms - ts < log->cfg.min_compaction_lag_ms)
            break;
        if (s->base_offset >= log->cleaned_to) {
            *dirty += s->st.size;
            if (*first_dirty < 0)
                *first_dirty = (int64_t)n;
        } else {
            *clean += s->st.size;
        }
        n++;
    }
    return n;
}

void mk_log_clean_info(const mk_log_t *log, mk_log_clean_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->cleaned_offset = log->cleaned_to;
    int64_t oldest;
    cleanable(log, INT64_MAX, INT64_MAX, &out->clean_bytes, &out->dirty_bytes, &oldest);
    uint64_t total = out->clean_bytes + out->dirty_bytes;
    out->dirty_ratio = total ? (double)out->dirty_bytes / (double)total : 0;
    out->running = log->clean != NULL;
    out->last_clean_ms = log->last_clean_ms;
    out->runs = log->clean_runs;
    out->tombstone_horizon = log->clean_horizon;
}

int64_t mk_log_cleaned_offset(const mk_log_t *log) { return log->cleaned_to; }

/* Groups of consecutive inputs within segment.bytes and the 31-bit
 * relative offsets of one segment. */
static int make_groups(mk_log_clean_t *j, const mk_log_t *log)
{
    j->groups = mk_calloc(j->nin, sizeof(*j->groups));
    if (!j->groups)
        return MK_ERR_NOMEM;
    size_t i = 0;
    while (i < j->nin) {
        clean_group_t *g = &j->groups[j->ngroups++];
        g->from = i;
        uint64_t bytes = j->in[i].size;
        i++;
        while (i < j->nin && bytes + j->in[i].size <= (uint64_t)log->cfg.segment_bytes &&
               log->segs[i + 1]->base_offset - j->in[g->from].base <= INT32_MAX) {
            bytes += j->in[i].size;
            i++;
        }
        g->to = i;
        g->end = log->segs[i]->base_offset;
        g->keep_empty = g->from == 0;
    }
    return 0;
}

/* Loop thread (log.h). */
int mk_log_clean_maybe(mk_log_t *log, int64_t limit, int64_t now_ms)
{
    if (!log->cfg.compact || log->clean || clean_running > 0 || log->io_err)
        return 0;
    if (log->clean_failed_ms > 0 && now_ms - log->clean_failed_ms < CLEAN_RETRY_MS)
        return 0;
    uint64_t clean, dirty;
    int64_t oldest;
    size_t n = cleanable(log, limit, now_ms, &clean, &dirty, &oldest);
    if (n == 0)
        return 0;
    double ratio = clean + dirty ? (double)dirty / (double)(clean + dirty) : 0;
    bool due = dirty > 0 && ratio >= log->cfg.min_cleanable_ratio;
    if (!due && dirty > 0 && log->cfg.max_compaction_lag_ms != INT64_MAX && oldest >= 0) {
        /* Kafka judges by the first dirty segment's earliest time: its first
         * batch's timestamp (one header read, page cache). */
        mk_log_seg_t *s = log->segs[oldest];
        mk_buf_t hb;
        mk_buf_init(&hb);
        mk_batch_view_t v;
        int64_t first_ts = mk_log_int_seg_largest_ts(s);
        if (s->st.size >= MK_BATCH_HEADER_SIZE && s->ops->read(s->impl, 0, MK_BATCH_HEADER_SIZE, &hb) == 0 &&
            mk_log_view_parse(hb.data, hb.len, &v) == 0 && v.hdr.maxTimestamp >= 0)
            first_ts = v.hdr.maxTimestamp;
        mk_buf_free(&hb);
        due = now_ms - first_ts > log->cfg.max_compaction_lag_ms;
    }
    if (!due && log->clean_horizon >= 0 && now_ms >= log->clean_horizon)
        due = true;
    if (!due)
        return 0;

    mk_log_clean_t *j = mk_calloc(1, sizeof(*j));
    if (!j)
        return MK_ERR_NOMEM;
    j->req.data = j;
    j->log = log;
    j->loop = log->cfg.loop;
    j->dir = mk_strdup(log->dir);
    j->log_id = log->id;
    j->truncations = log->truncations;
    j->index_interval = log->cfg.index_interval_bytes;
    j->now_ms = now_ms;
    j->delete_retention_ms = log->cfg.delete_retention_ms;
    j->horizon = -1;
    j->nin = n;
    j->in = mk_calloc(n, sizeof(*j->in));
    j->end = log->segs[n]->base_offset;
    int rc = j->dir && j->in ? 0 : MK_ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        mk_log_seg_t *s = log->segs[i];
        j->in[i] = (clean_in_t){s, s->base_offset, s->st.size, mk_log_int_seg_largest_ts(s)};
    }
    if (!rc)
        rc = make_groups(j, log);
    if (!rc)
        rc = mk_log_cursor_open(log, &j->cur);
    if (rc) {
        job_free(j);
        return rc;
    }
    mk_log_int_cursor_limit(j->cur, n);
    mk_debug("log: %s: cleaning %zu segments below offset %" PRId64 " (dirty ratio %.2f)", log->dir, n, j->end,
             ratio);
    log->clean = j;
    clean_running++;
    cleaner_stats.running = clean_running;
    if (!j->loop) {
        clean_work_cb(&j->req);
        clean_after_cb(&j->req, 0);
        return 1;
    }
    if (uv_queue_work(j->loop, &j->req, clean_work_cb, clean_after_cb) != 0) {
        log->clean = NULL;
        clean_running--;
        cleaner_stats.running = clean_running;
        job_free(j);
        return MK_ERR_IO;
    }
    return 1;
}

/* Close and destroy: the job goes on alone, stops early and discards what
 * it wrote (log_int.h). */
void mk_log_clean_detach(mk_log_t *log)
{
    if (!log->clean)
        return;
    log->clean->log = NULL;
    log->clean->cancel = 1;
    log->clean = NULL;
}

/* ============================================================= recovery */

static int64_t read_int_file(const char *path, int64_t *second)
{
    char text[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || v < 0)
        return -1;
    if (second) {
        char *end2;
        long long w = strtoll(end, &end2, 10);
        *second = end2 == end ? -1 : w;
    }
    return v;
}

int64_t mk_log_clean_read_checkpoint(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, CLEAN_CHECKPOINT) >= (int)sizeof(path))
        return 0;
    int64_t v = read_int_file(path, NULL);
    return v < 0 ? 0 : v;
}

int64_t mk_log_cleaned_offset_dir(const char *dir) { return mk_log_clean_read_checkpoint(dir); }

/* The horizon half of the checkpoint, for open: -1 when none is kept (or
 * the log was never cleaned: its tombstones have no horizon yet, and the
 * dirty ratio brings the first cleaning). */
static int64_t read_checkpoint_horizon(const char *dir)
{
    char path[PATH_MAX];
    int64_t h = 0;
    if (snprintf(path, sizeof(path), "%s/%s", dir, CLEAN_CHECKPOINT) >= (int)sizeof(path) ||
        read_int_file(path, &h) < 0)
        return -1;
    return h;
}

static bool name_is(const char *name, const char *ext, const char *sfx, int64_t *base)
{
    size_t n = strlen(name), el = strlen(ext), sl = strlen(sfx);
    if (n != 20 + el + sl || strncmp(name + 20, ext, el) != 0 || strcmp(name + 20 + el, sfx) != 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static bool has_sfx(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && strcmp(s + n - m, sfx) == 0;
}

/* Completes the swap of the segment at base (open, blocking). */
static int finish_swap(const char *dir, int64_t base)
{
    char path[PATH_MAX];
    if (range_path(dir, base, ".swap", path, sizeof(path)))
        return MK_ERR_TOO_LARGE;
    int64_t end = read_int_file(path, NULL);
    DIR *d = opendir(dir);
    if (!d)
        return MK_ERR_IO;
    struct dirent *e;
    static const char *const exts[] = {".log", ".index", ".timeindex"};
    while ((e = readdir(d)) != NULL) {
        int64_t b;
        for (size_t i = 0; i < MK_ARRAY_LEN(exts); i++)
            if (name_is(e->d_name, exts[i], "", &b) && b >= base && (end < 0 ? b == base : b < end)) {
                mk_warn("log: %s: completing an interrupted cleaning: removing %s", dir, e->d_name);
                unlinkat(dirfd(d), e->d_name, 0);
            }
    }
    closedir(d);
    for (size_t i = 0; i < MK_ARRAY_LEN(exts); i++) {
        char from[PATH_MAX], to[PATH_MAX];
        snprintf(from, sizeof(from), "%s/%020" PRId64 "%s.swap", dir, base, exts[i]);
        snprintf(to, sizeof(to), "%s/%020" PRId64 "%s", dir, base, exts[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            return MK_ERR_IO;
    }
    unlink(path);
    return 0;
}

/* Open's recovery of an interrupted cleaning (file header). */
int mk_log_clean_recover_dir(const char *dir)
{
    DIR *d;
    int orc = mk_log_opendir(dir, &d);
    if (orc)
        return orc;
    int64_t swaps[64];
    size_t nswaps = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t b;
        if (has_sfx(e->d_name, ".cleaned")) {
            unlinkat(dirfd(d), e->d_name, 0);
        } else if (name_is(e->d_name, ".log", ".swap", &b) && nswaps < MK_ARRAY_LEN(swaps)) {
            swaps[nswaps++] = b;
        }
    }
    closedir(d);
    for (size_t i = 0; i < nswaps; i++) {
        int rc = finish_swap(dir, swaps[i]);
        if (rc)
            return rc;
    }
    /* .swap leftovers of a cleaning that did not commit */
    orc = mk_log_opendir(dir, &d);
    if (orc)
        return orc;
    while ((e = readdir(d)) != NULL)
        if (has_sfx(e->d_name, ".swap"))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    return 0;
}

/* Open: the horizon half of the checkpoint (log_int.h). */
int64_t mk_log_clean_open_horizon(const char *dir) { return read_checkpoint_horizon(dir); }
