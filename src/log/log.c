/*
 * log.c -- one Kafka partition's log: a directory of segments, the append
 * and read paths, recovery on open, flush policy, retention.
 *
 * Directory (path chosen by the caller, e.g. data/broker-1/orders-0/):
 *
 *   00000000000000000000.log/.index/.timeindex   segments by base offset
 *   00000000000000004711.log/.index/.timeindex   (layouts: segment.c)
 *   log-start-offset     text "<offset>\n": start offset moved by
 *                        DeleteRecords beyond the first segment's base
 *   clean-shutdown       text "<active base> <active size>\n": written by
 *                        mk_log_close() (or mk_log_close_async(), unless
 *                        the directory was reopened meanwhile) after
 *                        everything was fsynced; removed by open.  While it matches, open trusts
 *                        the active segment like a sealed one.
 *   leader-epoch-checkpoint  the leader-epoch cache (layout: epoch.c)
 *   *.deleted, *.tmp     leftovers of deletion / checkpointing; open
 *                        removes them
 *
 * Invariants:
 *   - segs[] is sorted by base offset and never empty; the last segment is
 *     the active one, the only one appended to.
 *   - every batch of segs[i] has offsets in [segs[i].base, segs[i+1].base);
 *     gaps between segments are allowed (follower appends, truncation).
 *   - start_offset <= end offset (the active segment's next offset), and
 *     start_offset >= segs[0].base.
 *   - size_bytes and the cached max timestamp summarise the segments.
 *
 * Append (leader): the batches come with their views (mk_batch_view_t from
 * batch/, the one module that knows the layout), parsed once by the caller
 * (mk_log_append_views) or by one walk here (mk_log_append); planning,
 * offset assignment, the epoch cache and the segment's indexes all read
 * the views and never parse a header again.  Offsets are assigned by
 * rewriting baseOffset and partitionLeaderEpoch in place through the view
 * writers (neither is covered by the CRC), roll when the active segment would
 * exceed segment.bytes, is older than segment.ms since its first append,
 * its index is full or relative offsets would overflow, then pwrite() the
 * bytes and the new index entries.  On error the segment truncates back.
 * Writes land in the page cache; durability is the flush policy's business.
 *
 * Flush: fsync never runs on the loop thread.  When a flush starts, the
 * descriptors of every segment written since the last one (and of the
 * directory when files were created or removed) are dup()ed into a work
 * request for libuv's threadpool.  The request owns those duplicates and
 * closes them on the worker after fsync, so segments may be rolled, deleted
 * or closed while it runs; if the log is closed meanwhile the request is
 * detached (its log pointer cleared) and frees itself on completion.  Each
 * loop has at most MK_LOG_FLUSH_INFLIGHT flushes started; mk_log_flush()
 * beyond that puts the log in the loop's queue, holding no descriptor, and
 * it starts (dup()ing then, covering what was written meanwhile) when an
 * earlier flush ends -- 15,000 replica logs in one process would otherwise
 * hold dup()ed descriptors by the ten thousand outside the segment cache's
 * bound.  Close and destroy take a waiting log out of its queue.  A flush
 * that cannot start (EMFILE even after the segment cache let go of its
 * descriptors) keeps its dirty marks and is retried by mk_log_tick().
 * flushed_offset moves only when a started flush ends.  A failed fsync
 * leaves the log failed: appends return MK_ERR_IO from then on, as data
 * may be lost (the kernel drops dirty pages after a failed writeback).
 * Kafka also fsyncs a rolled segment in the background; so do we when a
 * loop is configured.
 *
 * Recovery on open: segments are listed and sorted; the older ones are
 * trusted (index sanity checks plus a header scan of the tail after the
 * last index entry); the active one is fully validated unless the clean
 * shutdown marker matches it.  See mk_log_seg_recover().
 *
 * Retention (mk_log_retain, called periodically by the owner): whole
 * segments only, oldest first: those below the start offset, those whose
 * largest timestamp (file mtime when no batch has one) is older than
 * retention.ms, then those that keep the log above retention.bytes.
 *
 * Leader epochs (cache and file: epoch.c): every append records its
 * batches' partitionLeaderEpoch (room is reserved before the bytes are
 * written, so the cache cannot fail to follow them); truncation, retention
 * and DeleteRecords trim it.  A change rewrites the checkpoint at once:
 * fsynced on the spot without a loop, else fsynced by a flush requested
 * right away (its descriptor joins the flush's) -- except entries that
 * start at the log end (mk_log_epoch_begin()'s, and those an append adds
 * for its own batches), which wait for the next flush like the batches
 * they describe: recovery after a crash replays the active segment (below),
 * and a roll requests a flush that carries the checkpoint.  (Kafka fsyncs
 * on every assign instead, KAFKA-16541; its recovery does not replay.)  A
 * failed rewrite removes the stale file -- the next open would rebuild it
 * from the batches -- and the next flush tries again.  Recovery loads the file and drops entries
 * at or past the end offset; after a crash it also replays the active
 * segment's batches from the latest entry's start offset on, for epochs
 * that reached the disk before the file did (Kafka's segment recovery does
 * the same); a missing or malformed file is rebuilt by scanning every
 * segment's headers.  An epoch that began in a segment rolled within the
 * moments before a crash, before the rewritten file reached the disk, can
 * be missed: older segments are trusted, as their indexes are.
 */
#include "log/log_int.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define CLEAN_MARKER "clean-shutdown"
#define START_CHECKPOINT "log-start-offset"


/* Source of mk_log_id(): opens may happen on any thread (tests). */
static uint64_t log_next_id;

/* One fsync request on the threadpool; owns its duplicated descriptors. */
struct mk_log_flush_s {
    uv_work_t req;
    mk_log_t *log;             /* NULL once detached by close/destroy */
    mk_log_flushq_t *q;        /* the loop's queue whose slot it holds */
    int64_t upto;              /* end offset when requested */
    int err;                   /* errno of the first failed fsync (worker) */
    bool ran;                  /* the worker closed the descriptors */
    size_t nfds;
    int fds[];
};

/* ================================================================ config */

/* Kafka defaults; no loop, no validator (log.h). */
void mk_log_config_default(mk_log_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_bytes = 1073741824;
    cfg->segment_ms = 604800000;
    cfg->retention_ms = 604800000;
    cfg->retention_bytes = -1;
    cfg->index_interval_bytes = 4096;
    cfg->segment_index_bytes = 10485760;
    cfg->flush_messages = INT64_MAX;
    cfg->flush_ms = INT64_MAX;
    cfg->min_cleanable_ratio = 0.5;
    cfg->max_compaction_lag_ms = INT64_MAX;
    cfg->delete_retention_ms = 86400000;
}

/* Kafka's validators for the same configs, roughly. */
static bool config_ok(const mk_log_config_t *c)
{
    return c->segment_bytes >= 14 && c->segment_bytes <= INT32_MAX && c->segment_ms >= 1 &&
           c->retention_ms >= -1 && c->retention_bytes >= -1 && c->index_interval_bytes >= 0 &&
           c->segment_index_bytes >= 4 && c->flush_messages >= 1 && c->flush_ms >= 0 &&
           c->min_cleanable_ratio >= 0 && c->min_cleanable_ratio <= 1 && c->min_compaction_lag_ms >= 0 &&
           c->max_compaction_lag_ms >= 1 && c->delete_retention_ms >= 0;
}

/* Validates and copies cfg; MK_ERR_INVALID keeps the old one.  Loop thread. */
int mk_log_set_config(mk_log_t *log, const mk_log_config_t *cfg)
{
    if (!config_ok(cfg))
        return MK_ERR_INVALID;
    int32_t domain = log->cfg.io_domain;
    log->cfg = *cfg;
    log->cfg.io_domain = domain; /* fixed at open */
    return 0;
}

/* ============================================================== helpers */

static mk_log_seg_t *log_active(const mk_log_t *log) { return log->segs[log->nsegs - 1]; }

/* Offset accessors (log.h); O(1), loop thread. */
int64_t mk_log_start_offset(const mk_log_t *log) { return log->start_offset; }

/* The active segment's next offset. */
int64_t mk_log_end_offset(const mk_log_t *log) { return log_active(log)->st.next_offset; }

/* Owned by log; valid until close/destroy. */
const char *mk_log_dir(const mk_log_t *log) { return log->dir; }

void mk_log_set_segment_cb(mk_log_t *log, mk_log_segment_cb cb, void *arg)
{
    log->segment_cb = cb;
    log->segment_arg = arg;
}

static int64_t seg_largest_ts(const mk_log_seg_t *seg);

/* Tell the segment observer about seg; bytes_after: the log's bytes once a
 * deleted seg is gone (else its bytes now). */
static void log_segment_event(mk_log_t *log, int type, const mk_log_seg_t *seg, const char *reason,
                              uint64_t bytes_after)
{
    if (!log->segment_cb)
        return;
    mk_log_segment_event_t ev = {type,   seg->base_offset,    seg->st.next_offset, seg->st.size,
                                 reason, seg_largest_ts(seg), bytes_after};
    if (type == MK_LOG_SEGMENT_DELETED && seg->base_offset < log->cleaned_to) {
        /* compacted: the segment accounts for the offsets up to the next
         * one's base, its last batches may have gone by compaction */
        for (size_t i = 0; i + 1 < log->nsegs; i++)
            if (log->segs[i] == seg)
                ev.end_offset = MK_MAX(ev.end_offset, MK_MIN(log->segs[i + 1]->base_offset, log->cleaned_to));
    }
    log->segment_cb(&ev, log->segment_arg);
}

uint64_t mk_log_id(const mk_log_t *log) { return log->id; }
uint64_t mk_log_truncations(const mk_log_t *log) { return log->truncations; }

static int log_push_seg(mk_log_t *log, mk_log_seg_t *seg)
{
    if (log->nsegs == log->segs_cap) {
        size_t cap = log->segs_cap ? log->segs_cap * 2 : 8;
        mk_log_seg_t **p = mk_realloc(log->segs, cap * sizeof(*p));
        if (!p)
            return MK_ERR_NOMEM;
        log->segs = p;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = seg;
    return 0;
}

/* Index of the last segment with base <= offset, or 0. */
static size_t log_find_seg(const mk_log_t *log, int64_t offset)
{
    size_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

/* Recomputes what summarises the segments after segments changed. */
static void log_refresh(mk_log_t *log)
{
    log->size_bytes = 0;
    log->max_ts = log->max_ts_base = log->max_ts_last = -1;
    for (size_t i = 0; i < log->nsegs; i++) {
        const mk_log_seg_t *seg = log->segs[i];
        log->size_bytes += seg->st.size;
        if (seg->st.max_ts > log->max_ts) {
            log->max_ts = seg->st.max_ts;
            log->max_ts_base = seg->st.max_ts_base;
            log->max_ts_last = seg->st.max_ts_last;
        }
    }
    int64_t end = mk_log_end_offset(log);
    log->start_offset = MK_MIN(MK_MAX(log->start_offset, log->segs[0]->base_offset), end);
    log->flushed_offset = MK_MIN(log->flushed_offset, end);
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? MK_ERR_TOO_LARGE : 0;
}

/* Reads a small text file of ours into buf (NUL-terminated).  Returns the
 * length, or -1 if absent, unreadable or longer than cap - 1. */
static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do {
        n = read(fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Parses a non-negative decimal int64 at *p, then skips one separator
 * (space or newline).  false on anything else. */
static bool parse_u63(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        int d = *s++ - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (*s != ' ' && *s != '\n')
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* Writes "text" to dir/name through a temporary file and rename(). */
static int write_small_file(const mk_log_t *log, const char *name, const char *text)
{
    int rc = mk_log_file_replace(log->dir, name, text, strlen(text), false);
    if (rc)
        mk_warn("log: %s: cannot write %s: %s", log->dir, name, strerror(errno));
    return rc;
}

/* Persists the start offset when it is above the first segment's base
 * (else the segments say it all and the checkpoint goes). */
static int log_save_start(mk_log_t *log)
{
    if (log->start_offset > log->segs[0]->base_offset) {
        char text[32];
        snprintf(text, sizeof(text), "%" PRId64 "\n", log->start_offset);
        return write_small_file(log, START_CHECKPOINT, text);
    }
    char path[PATH_MAX];
    if (path_join(path, sizeof(path), log->dir, START_CHECKPOINT) == 0 && unlink(path) == 0)
        log->dir_dirty = true;
    return 0;
}

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return MK_ERR_TOO_LARGE;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            mk_error("log: mkdir %s: %s", path, strerror(errno));
            return MK_ERR_IO;
        }
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        mk_error("log: %s is not a directory", dir);
        return MK_ERR_IO;
    }
    return 0;
}

/* ========================================================= leader epochs */

static void log_fail(mk_log_t *log, const char *what);

/* Opens the epoch checkpoint for an fsync; -1 with errno (ENOENT: none). */
static int log_epochs_fd(const mk_log_t *log)
{
    char path[PATH_MAX];
    if (path_join(path, sizeof(path), log->dir, MK_LOG_EPOCH_CHECKPOINT)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Rewrites the checkpoint after the cache changed: fsynced here without a
 * loop; with one, marked for the next flush.  On failure the stale file is
 * removed (the next open rebuilds it) and the next flush retries; a file
 * that can be neither written nor removed takes the log offline. */
static void log_epochs_save(mk_log_t *log)
{
    bool sync = log->cfg.loop == NULL;
    int rc = mk_log_epochs_save(&log->epochs, sync);
    if (rc) {
        char path[PATH_MAX];
        mk_warn("log: %s: cannot write %s: %s", log->dir, MK_LOG_EPOCH_CHECKPOINT,
                rc == MK_ERR_IO ? strerror(errno) : mk_strerror(rc));
        log->epochs_stale = true;
        if (path_join(path, sizeof(path), log->dir, MK_LOG_EPOCH_CHECKPOINT) == 0) {
            if (unlink(path) == 0)
                log->dir_dirty = true;
            else if (errno != ENOENT)
                log_fail(log, "removing a stale " MK_LOG_EPOCH_CHECKPOINT);
        }
        return;
    }
    log->epochs_stale = false;
    if (!sync) {
        log->epochs_unsynced = true;
        log->dir_dirty = true;
    }
}

/* The cache changed outside an append: persist it, and with a loop request
 * the flush that fsyncs it. */
static void log_epochs_changed(mk_log_t *log)
{
    log_epochs_save(log);
    if (log->epochs_unsynced)
        mk_log_flush(log);
}

/* Feeds the headers of the batches of segments [from, nsegs) whose base
 * offset is >= from_offset to the cache, as appends do.  A segment whose
 * headers stop parsing keeps what came before, with a warning.  Returns 1
 * when the cache changed, 0, MK_ERR_IO or MK_ERR_NOMEM. */
static int log_epochs_scan(mk_log_t *log, size_t from, int64_t from_offset)
{
    int changed = 0;
    for (size_t i = from; i < log->nsegs; i++) {
        mk_log_seg_t *seg = log->segs[i];
        mk_log_scan_t s;
        mk_log_scan_init(&s, seg, mk_log_seg_lookup(seg, from_offset), false);
        mk_batch_view_t h;
        int rc;
        while ((rc = mk_log_scan_next(&s, &h, NULL)) == 1) {
            if (h.hdr.baseOffset < from_offset)
                continue;
            rc = mk_log_epochs_assign(&log->epochs, h.hdr.partitionLeaderEpoch, h.hdr.baseOffset);
            if (rc < 0)
                break;
            changed |= rc;
        }
        mk_log_scan_free(&s);
        if (rc == MK_ERR_IO || rc == MK_ERR_NOMEM)
            return rc;
        if (rc < 0)
            mk_warn("log: %s: segment %" PRId64 ": %s; leader epochs after it are not cached",
                    log->dir, seg->base_offset, mk_strerror(rc));
    }
    return changed;
}

/* Open path, after the segments are recovered: the cache from its
 * checkpoint, reconciled with the batches (file header).  crashed: the
 * active segment was fully validated.  Blocking.  Returns 0, MK_ERR_IO,
 * MK_ERR_NOMEM, MK_ERR_TOO_LARGE. */
static int log_epochs_open(mk_log_t *log, bool crashed)
{
    mk_log_epochs_t *c = &log->epochs;
    int rc = mk_log_epochs_load(c);
    bool changed = false;
    if (rc == MK_ERR_NOT_FOUND || rc == MK_ERR_CORRUPT) {
        if (rc == MK_ERR_CORRUPT)
            mk_warn("log: %s: %s is malformed, rebuilding it from the batches", log->dir,
                    MK_LOG_EPOCH_CHECKPOINT);
        rc = log_epochs_scan(log, 0, 0);
        changed = true;
    } else if (rc == 0) {
        /* The file may describe data that the crash took away ... */
        changed = mk_log_epochs_truncate_end(c, mk_log_end_offset(log));
        /* ... or miss epochs of data that reached the disk before it did:
         * the batches from the latest entry on are replayed, earlier ones
         * it already describes (epochs need not increase along the log: a
         * lower epoch rewrites the cache's tail, see assign). */
        if (crashed)
            rc = log_epochs_scan(log, log->nsegs - 1, c->n ? c->v[c->n - 1].start_offset : 0);
    }
    if (rc < 0)
        return rc;
    changed |= rc > 0;
    changed |= mk_log_epochs_truncate_end(c, mk_log_end_offset(log));
    changed |= mk_log_epochs_truncate_start(c, log->start_offset);
    if (changed)
        log_epochs_save(log);
    return 0;
}

/* ================================================================= open */

/* "<20 digits><ext>" -> base offset. */
static bool parse_seg_name(const char *name, const char *ext, int64_t *base)
{
    size_t n = strlen(name), el = strlen(ext);
    if (n != 20 + el || strcmp(name + 20, ext) != 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        int d = name[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *base = v;
    return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* opendir() for the log's own directories: on EMFILE/ENFILE the segment
 * descriptor cache lets go of what it may and the open is tried once more.
 * 0, or MK_ERR_NOFILES (named in the log line) or MK_ERR_IO. */
int mk_log_opendir(const char *dir, DIR **out)
{
    DIR *d = opendir(dir);
    if (!d && (errno == EMFILE || errno == ENFILE) && mk_log_seg_files_shed())
        d = opendir(dir); /* the segment cache let go of its descriptors */
    *out = d;
    if (d)
        return 0;
    int e = errno;
    mk_error("log: opendir %s: %s", dir, strerror(e));
    return e == EMFILE || e == ENFILE ? MK_ERR_NOFILES : MK_ERR_IO;
}

/* Lists segment base offsets (sorted) into *out (owned by the caller),
 * removing leftovers and index files without a .log. */
static int log_list_segments(mk_log_t *log, int64_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d;
    int orc = mk_log_opendir(log->dir, &d);
    if (orc)
        return orc;
    int64_t *bases = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t base;
        if (has_suffix(e->d_name, ".deleted") || has_suffix(e->d_name, ".tmp")) {
            unlinkat(dirfd(d), e->d_name, 0);
        } else if (parse_seg_name(e->d_name, ".log", &base)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                int64_t *p = mk_realloc(bases, cap * sizeof(*p));
                if (!p) {
                    rc = MK_ERR_NOMEM;
                    break;
                }
                bases = p;
            }
            bases[n++] = base;
        }
    }
    if (!rc && n > 1)
        qsort(bases, n, sizeof(*bases), cmp_i64);
    rewinddir(d);
    while (!rc && (e = readdir(d)) != NULL) {
        int64_t base;
        if ((parse_seg_name(e->d_name, ".index", &base) ||
             parse_seg_name(e->d_name, ".timeindex", &base)) &&
            !bsearch(&base, bases, n, sizeof(*bases), cmp_i64)) {
            mk_info("log: %s: removing orphan index %s", log->dir, e->d_name);
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    closedir(d);
    if (rc) {
        mk_free(bases);
        return rc;
    }
    *out = bases;
    *count = n;
    return 0;
}

/* Reads and removes the clean shutdown marker; base -1 if none. */
static void log_take_marker(mk_log_t *log, int64_t *base, int64_t *size)
{
    char path[PATH_MAX], text[64];
    *base = *size = -1;
    if (path_join(path, sizeof(path), log->dir, CLEAN_MARKER))
        return;
    if (read_small_file(path, text, sizeof(text)) > 0) {
        const char *p = text;
        int64_t b, s;
        if (parse_u63(&p, &b) && parse_u63(&p, &s) && *p == '\0') {
            *base = b;
            *size = s;
        }
    }
    unlink(path);
}

/* The persisted start offset, or -1. */
static int64_t log_read_start(const mk_log_t *log)
{
    char path[PATH_MAX], text[32];
    int64_t v;
    const char *p = text;
    if (path_join(path, sizeof(path), log->dir, START_CHECKPOINT) ||
        read_small_file(path, text, sizeof(text)) <= 0 || !parse_u63(&p, &v) || *p != '\0')
        return -1;
    return v;
}

static void closing_overtake(const char *dir);
static void log_io_retry(void *log) { mk_log_flush(log); }

static void log_free(mk_log_t *log)
{
    mk_log_io_detach(&log->io);
    for (size_t i = 0; i < log->nsegs; i++)
        mk_log_seg_close(log->segs[i]);
    mk_log_epochs_free(&log->epochs);
    mk_free(log->segs);
    mk_free(log->dir);
    mk_free(log);
}

/* Recovers dir into a new log owned by *out (log.h); blocks on disk reads
 * while recovering, so call it at startup or off the hot path. */
int mk_log_open(const char *dir, const mk_log_config_t *cfg, mk_log_t **out)
{
    *out = NULL;
    if (!dir || !*dir || !config_ok(cfg))
        return MK_ERR_INVALID;
    /* Opening writes (the directory, a new segment, markers): the gate's
     * write errors refuse it; a held open is not modelled (it runs). */
    mk_log_io_slot_t gate = {.domain = cfg->io_domain > 0 && cfg->io_domain < MK_LOG_IO_DOMAINS ? cfg->io_domain : 0};
    uint64_t t0;
    int grc = mk_log_io_begin(&gate, MK_LOG_IO_WRITE, &t0);
    if (grc == MK_ERR_IO) {
        mk_error("log: %s: open failed: %s (injected disk-error)", dir, mk_strerror(grc));
        mk_log_io_failed(&gate); /* the directory is offline, as for a log that fails */
        return MK_ERR_IO;
    }
    int rc = mkdir_p(dir);
    if (rc)
        return rc;
    mk_log_t *log = mk_calloc(1, sizeof(*log));
    if (!log)
        return MK_ERR_NOMEM;
    log->dir = mk_strdup(dir);
    if (!log->dir) {
        mk_free(log);
        return MK_ERR_NOMEM;
    }
    for (size_t n = strlen(log->dir); n > 1 && log->dir[n - 1] == '/'; n--)
        log->dir[n - 1] = '\0';
    closing_overtake(log->dir); /* before the marker is looked for */
    mk_log_epochs_init(&log->epochs, log->dir);
    log->cfg = *cfg;
    mk_log_io_attach(&log->io, cfg->io_domain, log_io_retry, log);
    int64_t now = mk_now_ms();

    int64_t clean_base, clean_size;
    log_take_marker(log, &clean_base, &clean_size);
    rc = mk_log_clean_recover_dir(log->dir);
    if (rc)
        goto fail;
    int64_t *bases;
    size_t nbases;
    rc = log_list_segments(log, &bases, &nbases);
    if (rc)
        goto fail;
    int64_t ckpt = log_read_start(log);
    bool crashed = false; /* the active segment was fully validated */
    for (size_t i = 0; i < nbases && !rc; i++) {
        mk_log_seg_t *seg;
        rc = mk_log_seg_open(log->dir, bases[i], false, &seg);
        if (rc)
            break;
        rc = log_push_seg(log, seg);
        if (rc) {
            mk_log_seg_close(seg);
            break;
        }
        bool active = i + 1 == nbases;
        struct stat sb;
        bool trust = !active;
        if (active && clean_base == bases[i] && mk_log_seg_files_get(seg) == 0) {
            trust = fstat(seg->fd, &sb) == 0 && (int64_t)sb.st_size == clean_size;
            mk_log_seg_files_put(seg);
        }
        crashed = active && !trust;
        int64_t limit = active ? INT64_MAX : bases[i + 1];
        rc = mk_log_seg_recover(seg, limit, trust, cfg->index_interval_bytes, cfg->validate,
                                cfg->validate_arg, now);
    }
    mk_free(bases);
    if (rc)
        goto fail;
    if (log->nsegs == 0) {
        mk_log_seg_t *seg;
        rc = mk_log_seg_open(log->dir, MK_MAX(ckpt, 0), true, &seg);
        if (rc)
            goto fail;
        rc = log_push_seg(log, seg);
        if (rc) {
            mk_log_seg_close(seg);
            goto fail;
        }
        log->dir_dirty = true;
    }
    log->start_offset = MK_MAX(ckpt, 0);
    log->cleaned_to = MK_MIN(mk_log_clean_read_checkpoint(log->dir), mk_log_end_offset(log));
    log->clean_horizon = mk_log_clean_open_horizon(log->dir);
    log->last_clean_ms = -1;
    log->id = __atomic_add_fetch(&log_next_id, 1, __ATOMIC_RELAXED);
    log->flushed_offset = mk_log_end_offset(log);
    log->last_flush_ms = now;
    log_refresh(log);
    rc = log_epochs_open(log, crashed);
    if (rc)
        goto fail;
    if (!grc)
        mk_log_io_end(&log->io, MK_LOG_IO_WRITE, t0, 0);
    mk_debug("log: %s: opened, %zu segments, offsets [%" PRId64 ", %" PRId64 ")", log->dir,
             log->nsegs, log->start_offset, mk_log_end_offset(log));
    *out = log;
    return 0;
fail:
    mk_error("log: %s: open failed: %s", log->dir, mk_strerror(rc));
    log_free(log);
    return rc;
}

/* ================================================================ flush */

static int log_fsync_dir(const mk_log_t *log)
{
    int fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return MK_ERR_IO;
    int rc = fsync(fd) == 0 ? 0 : MK_ERR_IO;
    close(fd);
    return rc;
}

static void log_fail(mk_log_t *log, const char *what)
{
    if (!log->io_err)
        mk_error("log: %s: %s failed; the log is offline", log->dir, what);
    log->io_err = MK_ERR_IO;
    mk_log_io_failed(&log->io);
}

/* fsyncs dirty segments (all when all) and the directory, here and now. */
static int log_flush_sync(mk_log_t *log, bool all)
{
    int rc = 0;
    int64_t upto = mk_log_end_offset(log);
    for (size_t i = 0; i < log->nsegs; i++) {
        mk_log_seg_t *seg = log->segs[i];
        if (!all && !seg->dirty)
            continue;
        if (mk_log_seg_sync(seg))
            rc = MK_ERR_IO;
        else
            seg->dirty = false;
    }
    if (all || log->epochs_unsynced) {
        int fd = log_epochs_fd(log);
        if (fd >= 0) {
            if (fsync(fd) != 0)
                rc = MK_ERR_IO;
            close(fd);
        } else if (errno != ENOENT) {
            rc = MK_ERR_IO;
        }
    }
    if ((all || log->dir_dirty) && log_fsync_dir(log))
        rc = MK_ERR_IO;
    if (rc) {
        log_fail(log, "fsync");
        return rc;
    }
    log->epochs_unsynced = false;
    log->dir_dirty = false;
    log->flushed_offset = MK_MAX(log->flushed_offset, upto);
    return 0;
}

/* ------------------------------------------------------- the flush queue
 *
 * A flush holds duplicates of its files' descriptors from the moment it is
 * handed to the threadpool until a worker has fsynced them.  With thousands
 * of logs in one process, handing every request over at once would hold
 * descriptors outside the segment cache's bound (and queue them behind
 * SQLite's work).  So each loop lets at most MK_LOG_FLUSH_INFLIGHT
 * (log_int.h) of its flushes be on the threadpool; the other logs wait in
 * the loop's FIFO without any descriptor and start, collecting whatever is
 * dirty by then, as earlier ones end (a log waits at most once: requests
 * made meanwhile are covered by its turn).  The queue is per loop because
 * brokers of different embedded clusters may run their loops on different
 * threads: a queue is touched by its loop's thread only, and the lock
 * guards just the list of queues.  A queue exists while it holds or runs
 * something, and is freed when idle. */

struct mk_log_flushq_s {
    mk_per_loop_t link;        /* on flushqs, by loop */
    size_t inflight;           /* this loop's flush requests on the threadpool */
    mk_log_t *head, *tail;     /* logs waiting for a slot, oldest first */
};

static mk_per_loop_t *flushqs;

/* loop's queue, created when missing; NULL on allocation failure. */
static mk_log_flushq_t *flushq_get(uv_loop_t *loop)
{
    return mk_per_loop_get(&flushqs, loop, sizeof(mk_log_flushq_t));
}

/* Frees q when nothing runs or waits in it any more. */
static void flushq_release(mk_log_flushq_t *q)
{
    if (!q->inflight && !q->head)
        mk_per_loop_free(&flushqs, q);
}

static void flushq_push(mk_log_flushq_t *q, mk_log_t *log)
{
    assert(!log->flushq && !log->flush);
    log->flushq = q;
    log->flushq_prev = q->tail;
    log->flushq_next = NULL;
    if (q->tail)
        q->tail->flushq_next = log;
    else
        q->head = log;
    q->tail = log;
}

/* Takes log out of its queue (it still holds no descriptor). */
static void flushq_remove(mk_log_t *log)
{
    mk_log_flushq_t *q = log->flushq;
    if (log->flushq_prev)
        log->flushq_prev->flushq_next = log->flushq_next;
    else
        q->head = log->flushq_next;
    if (log->flushq_next)
        log->flushq_next->flushq_prev = log->flushq_prev;
    else
        q->tail = log->flushq_prev;
    log->flushq = NULL;
    log->flushq_prev = log->flushq_next = NULL;
}

static int log_flush_start(mk_log_t *log, mk_log_flushq_t *q);

/* Starts waiting flushes while q has free slots.  A log whose start fails
 * is not queued again (mk_log_tick() retries it), so this ends. */
static void flushq_run(mk_log_flushq_t *q)
{
    while (q->inflight < MK_LOG_FLUSH_INFLIGHT && q->head) {
        mk_log_t *log = q->head;
        flushq_remove(log);
        if (!log->io_err)
            log_flush_start(log, q);
    }
}

/* Threadpool: fsync and close the duplicated descriptors. */
static void flush_work_cb(uv_work_t *req)
{
    mk_log_flush_t *w = req->data;
    for (size_t i = 0; i < w->nfds; i++) {
        if (fsync(w->fds[i]) != 0 && !w->err)
            w->err = errno;
        close(w->fds[i]);
    }
    w->ran = true;
}

/* Loop thread: the log (if still open) learns what was fsynced; the slot
 * goes to the next waiting log. */
static void flush_after_cb(uv_work_t *req, int status)
{
    mk_log_flush_t *w = req->data;
    mk_log_flushq_t *q = w->q;
    if (!w->ran) {
        for (size_t i = 0; i < w->nfds; i++)
            close(w->fds[i]);
    }
    assert(q->inflight > 0);
    q->inflight--;
    mk_log_t *log = w->log;
    if (log) {
        log->flush = NULL;
        log->io.flight_ms = 0;
        mk_log_io_end(&log->io, MK_LOG_IO_FSYNC, log->flush_t0, status < 0 || w->err ? MK_ERR_IO : 0);
        if (status < 0 || w->err) {
            mk_error("log: %s: fsync: %s", log->dir,
                     status < 0 ? uv_strerror(status) : strerror(w->err));
            log_fail(log, "fsync");
        } else {
            log->flushed_offset = MK_MAX(log->flushed_offset, w->upto);
            log->flushed_offset = MK_MIN(log->flushed_offset, mk_log_end_offset(log));
        }
        if (log->flush_again && !log->io_err) {
            log->flush_again = false;
            mk_log_flush(log); /* behind the logs already waiting */
        }
    }
    mk_free(w);
    flushq_run(q);
    flushq_release(q);
}

/* Duplicates into w the descriptors of every dirty segment, of the epoch
 * checkpoint when it was rewritten, and of the directory when entries
 * changed.  0, MK_ERR_NOFILES or MK_ERR_IO (w keeps what it got). */
static int flush_collect(mk_log_t *log, mk_log_flush_t *w)
{
    int rc = 0;
    for (size_t i = 0; i < log->nsegs && !rc; i++) {
        mk_log_seg_t *seg = log->segs[i];
        if (!seg->dirty)
            continue;
        if ((rc = mk_log_seg_files_get(seg)) != 0)
            break;
        int fds[] = {seg->fd, seg->idx_fd, seg->tidx_fd};
        for (size_t j = 0; j < MK_ARRAY_LEN(fds) && !rc; j++) {
            int fd = fcntl(fds[j], F_DUPFD_CLOEXEC, 0);
            if (fd < 0)
                rc = errno == EMFILE || errno == ENFILE ? MK_ERR_NOFILES : MK_ERR_IO;
            else
                w->fds[w->nfds++] = fd;
        }
        mk_log_seg_files_put(seg);
    }
    if (!rc && log->epochs_unsynced) {
        int fd = log_epochs_fd(log);
        if (fd >= 0)
            w->fds[w->nfds++] = fd;
        else if (errno == EMFILE || errno == ENFILE)
            rc = MK_ERR_NOFILES;
        else if (errno != ENOENT)
            rc = MK_ERR_IO;
    }
    if (!rc && log->dir_dirty) {
        int fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            w->fds[w->nfds++] = fd;
        else
            rc = errno == EMFILE || errno == ENFILE ? MK_ERR_NOFILES : MK_ERR_IO;
    }
    return rc;
}

/* Hands log's flush to the threadpool now, in one of q's slots: the gate,
 * then the duplicates (q NULL: only when nothing is dirty, no slot is
 * needed).  A flush that cannot start (no descriptors even after the
 * segment cache let go of its own, no memory, no threadpool) leaves the
 * dirty marks in place and flush_retry set: mk_log_tick() asks again, close
 * fsyncs them anyway.  Returns 0 (also then) or the sticky MK_ERR_IO. */
static int log_flush_start(mk_log_t *log, mk_log_flushq_t *q)
{
    /* The gate: an injected EIO fails the log as a real one would; a held
     * fsync waits there and is re-requested by the gate (no worker thread
     * waits, no slot is taken). */
    uint64_t t0;
    int grc = mk_log_io_begin(&log->io, MK_LOG_IO_FSYNC, &t0);
    if (grc == MK_ERR_AGAIN) {
        log->io.flush_held = true;
        return 0;
    }
    if (grc == MK_ERR_IO) {
        log_fail(log, "fsync (injected EIO)");
        return MK_ERR_IO;
    }
    size_t ndirty = 0;
    for (size_t i = 0; i < log->nsegs; i++)
        ndirty += log->segs[i]->dirty;
    if (ndirty == 0 && !log->dir_dirty && !log->epochs_unsynced) {
        log->flushed_offset = mk_log_end_offset(log);
        log->io.wait_ms[MK_LOG_IO_FSYNC] = 0;
        log->flush_retry = false;
        return 0;
    }
    assert(q && q->inflight < MK_LOG_FLUSH_INFLIGHT);
    /* three files per dirty segment, the epoch checkpoint, the directory */
    mk_log_flush_t *w = mk_calloc(1, sizeof(*w) + sizeof(int) * (3 * ndirty + 2));
    int rc = w ? 0 : MK_ERR_NOMEM;
    if (w) {
        rc = flush_collect(log, w);
        if (rc == MK_ERR_NOFILES && mk_log_seg_files_shed()) {
            /* descriptors held elsewhere: the cache let go of its own */
            for (size_t i = 0; i < w->nfds; i++)
                close(w->fds[i]);
            w->nfds = 0;
            rc = flush_collect(log, w);
        }
        w->log = log;
        w->q = q;
        w->upto = mk_log_end_offset(log);
        w->req.data = w;
    }
    const char *why = rc == MK_ERR_NOMEM ? mk_strerror(rc) : strerror(errno);
    int urc = rc ? 0 : uv_queue_work(log->cfg.loop, &w->req, flush_work_cb, flush_after_cb);
    if (urc) {
        rc = MK_ERR_IO;
        why = uv_strerror(urc);
    }
    if (rc) {
        if (!log->flush_retry)
            mk_warn("log: %s: cannot start a flush, retrying in a second: %s", log->dir, why);
        log->flush_retry = true;
        log->io.wait_ms[MK_LOG_IO_FSYNC] = 0; /* not in flight: nothing ages */
        if (w) {
            for (size_t i = 0; i < w->nfds; i++)
                close(w->fds[i]);
            mk_free(w);
        }
        return 0;
    }
    q->inflight++;
    for (size_t i = 0; i < log->nsegs; i++)
        log->segs[i]->dirty = false;
    log->dir_dirty = false;
    log->epochs_unsynced = false;
    log->flush_retry = false;
    log->flush = w;
    log->flush_t0 = t0;
    log->io.flight_ms = log->io.wait_ms[MK_LOG_IO_FSYNC] ? log->io.wait_ms[MK_LOG_IO_FSYNC] : t0 / 1000000u;
    return 0;
}

/* Requests an fsync: threadpool with a loop, here without (log.h).
 * Returns 0 or the sticky MK_ERR_IO.  Loop thread. */
int mk_log_flush(mk_log_t *log)
{
    if (log->io_err)
        return log->io_err;
    if (log->epochs_stale)
        log_epochs_save(log); /* retry a failed checkpoint write */
    log->last_flush_ms = mk_now_ms();
    log->unflushed = 0;
    if (!log->cfg.loop)
        return log_flush_sync(log, false);
    if (log->flush) {
        log->flush_again = true;
        return 0;
    }
    if (log->flushq)
        return 0; /* it collects everything dirty when its turn comes */
    bool dirty = log->dir_dirty || log->epochs_unsynced;
    for (size_t i = 0; i < log->nsegs && !dirty; i++)
        dirty = log->segs[i]->dirty;
    if (!dirty)
        return log_flush_start(log, NULL);
    mk_log_flushq_t *q = flushq_get(log->cfg.loop);
    if (!q) {
        if (!log->flush_retry)
            mk_warn("log: %s: cannot start a flush, retrying in a second: %s", log->dir,
                    mk_strerror(MK_ERR_NOMEM));
        log->flush_retry = true;
        return 0;
    }
    if (q->inflight < MK_LOG_FLUSH_INFLIGHT && !q->head) {
        int rc = log_flush_start(log, q);
        flushq_release(q);
        return rc;
    }
    flushq_push(q, log);
    return 0;
}

/* flush.ms check and the retry of a flush that could not start; call
 * about once a second on the loop thread. */
void mk_log_tick(mk_log_t *log, int64_t now_ms)
{
    if (log->io_err)
        return;
    if (log->flush_retry) {
        mk_log_flush(log);
        return;
    }
    if (log->cfg.flush_ms == INT64_MAX || log->unflushed == 0)
        return;
    if (now_ms - log->last_flush_ms >= log->cfg.flush_ms)
        mk_log_flush(log);
}

/* ================================================================ close */

/* Detaches an in-flight flush (it finishes and frees itself) or takes a
 * waiting one out of its queue (it holds nothing yet; the dirty marks stay
 * for whoever fsyncs next). */
static void log_detach_flush(mk_log_t *log)
{
    if (log->flush) {
        log->flush->log = NULL;
        log->flush = NULL;
    }
    if (log->flushq) {
        mk_log_flushq_t *q = log->flushq;
        flushq_remove(log);
        flushq_release(q);
    }
}

/* The loop-thread part of both closes: detaches an in-flight flush and
 * retries a failed checkpoint write.  Returns whether every segment must
 * be fsynced (a flush in flight covers segments no longer marked dirty). */
static bool log_close_begin(mk_log_t *log)
{
    bool all = log->flush != NULL;
    log_detach_flush(log);
    mk_log_clean_detach(log);
    mk_log_io_detach(&log->io); /* the gate retries nothing of a closing log */
    if (!log->io_err && log->epochs_stale)
        log_epochs_save(log);
    return all;
}

/* The blocking part: every fsync.  No allocation, so it may run on a
 * worker thread once nothing else touches log. */
static int log_close_sync(mk_log_t *log, bool all)
{
    int rc = log->io_err;
    if (!rc)
        rc = log_flush_sync(log, all);
    return rc;
}

/* The end of both closes: the clean marker when everything was fsynced
 * (and marker is wanted), then log is freed. */
static void log_close_end(mk_log_t *log, int rc, bool marker)
{
    if (!rc && marker) {
        char text[64];
        const mk_log_seg_t *a = log_active(log);
        snprintf(text, sizeof(text), "%" PRId64 " %" PRIu64 "\n", a->base_offset, a->st.size);
        write_small_file(log, CLEAN_MARKER, text);
    }
    log_free(log);
}

/* fsyncs synchronously (blocks), writes the clean marker, frees log. */
int mk_log_close(mk_log_t *log)
{
    if (!log)
        return 0;
    bool all = log_close_begin(log);
    int rc = log_close_sync(log, all);
    log_close_end(log, rc, true);
    return rc;
}

/* One syncfs() for every log of a filesystem at shutdown (log.h). */
int mk_log_syncfs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return MK_ERR_IO;
    int rc = syncfs(fd) == 0 ? 0 : MK_ERR_IO;
    if (rc)
        mk_error("log: syncfs %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* mk_log_close() after a successful mk_log_syncfs() that followed the
 * log's last write: nothing left to fsync, unless closing writes again (a
 * checkpoint still to rewrite), in which case it is an mk_log_close().
 * The clean shutdown marker is written only when the active segment holds
 * at least MARKER_MIN_BYTES: creating a file costs milliseconds on a busy
 * ext4 (inode allocation), 30,000 of them took over a minute, while fully
 * validating a small active segment at the next open costs less than that. */
#define MARKER_MIN_BYTES (1u << 20)

int mk_log_close_synced(mk_log_t *log)
{
    if (!log)
        return 0;
    if (log->io_err || log->epochs_stale)
        return mk_log_close(log);
    /* What log_close_begin() lets go of, but for the fsync: a cleaning job
     * in flight (its after callback would find log freed), the gate. */
    log_detach_flush(log);
    mk_log_clean_detach(log);
    mk_log_io_detach(&log->io);
    log->flushed_offset = mk_log_end_offset(log);
    log_close_end(log, 0, log_active(log)->st.size >= MARKER_MIN_BYTES);
    return 0;
}

/* ---------------------------------------------------------- async close
 *
 * mk_log_close_async() hands the log to a work request: the worker fsyncs
 * and closes the files, the after-work callback (loop thread) writes the
 * clean marker, frees the log and calls back.  Nothing of it is needed by
 * a reopen of the directory, which may therefore happen while the close is
 * in flight (a broker started right after it was stopped).  The one hazard
 * is the marker: written after the reopen, it would describe the old
 * close, not the reopened log, and let a later open trust an active
 * segment that the reopened log changed.  So in-flight closes are listed
 * by directory; mk_log_open() marks one it overtakes, and that close
 * writes no marker (its fsyncs still run).  The reopen itself found no
 * marker and validated the active segment fully: correct, merely slower.
 * The list is touched on the loop thread only (open, close_async, the
 * after-work callback); a mutex keeps it sound should logs of different
 * threads ever share the process. */

typedef struct log_close_s log_close_t;

struct log_close_s {
    uv_work_t req;
    mk_log_t *log;             /* owned until freed in the after-work callback */
    bool all;                  /* fsync every segment */
    bool overtaken;            /* the directory was reopened meanwhile */
    int rc;                    /* what the worker's fsyncs returned */
    mk_log_close_cb cb;
    void *arg;
    log_close_t *next;         /* in the closing list */
};

static pthread_mutex_t closing_lock = PTHREAD_MUTEX_INITIALIZER;
static log_close_t *closing;   /* in-flight asynchronous closes */

static void closing_remove(log_close_t *w)
{
    for (log_close_t **pp = &closing; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
}

/* mk_log_open() is reopening dir: in-flight closes of it write no marker. */
static void closing_overtake(const char *dir)
{
    pthread_mutex_lock(&closing_lock);
    for (log_close_t *w = closing; w; w = w->next)
        if (strcmp(w->log->dir, dir) == 0)
            w->overtaken = true;
    pthread_mutex_unlock(&closing_lock);
}

/* Threadpool: fsyncs, then closes the files (the loop no longer touches
 * the log).  No allocation. */
static void close_work_cb(uv_work_t *req)
{
    log_close_t *w = req->data;
    mk_log_t *log = w->log;
    w->rc = log_close_sync(log, w->all);
    for (size_t i = 0; i < log->nsegs; i++)
        log->segs[i]->ops->close(log->segs[i]->impl);
}

/* Loop thread: marker unless overtaken, free, then the callback. */
static void close_after_cb(uv_work_t *req, int status)
{
    log_close_t *w = req->data;
    if (status < 0) /* cancelled before it ran: do its work here */
        close_work_cb(req);
    pthread_mutex_lock(&closing_lock);
    closing_remove(w);
    bool overtaken = w->overtaken;
    pthread_mutex_unlock(&closing_lock);
    if (overtaken)
        mk_debug("log: %s: reopened while closing; no clean shutdown marker", w->log->dir);
    log_close_end(w->log, w->rc, !overtaken);
    if (w->cb)
        w->cb(w->rc, w->arg);
    mk_free(w);
}

/* mk_log_close() with the blocking part on loop's threadpool (log.h).
 * Loop thread. */
int mk_log_close_async(mk_log_t *log, struct uv_loop_s *loop, mk_log_close_cb cb, void *arg)
{
    if (!log || !loop)
        return MK_ERR_INVALID;
    log_close_t *w = mk_calloc(1, sizeof(*w));
    if (!w)
        return MK_ERR_NOMEM;
    mk_log_flush_t *inflight = log->flush;
    bool waiting = log->flushq != NULL;
    w->req.data = w;
    w->log = log;
    w->cb = cb;
    w->arg = arg;
    w->all = log_close_begin(log);
    pthread_mutex_lock(&closing_lock);
    w->next = closing;
    closing = w;
    if (uv_queue_work(loop, &w->req, close_work_cb, close_after_cb) != 0) {
        closing_remove(w);
        pthread_mutex_unlock(&closing_lock);
        if (inflight) { /* undo the detach: the log is the caller's again */
            inflight->log = log;
            log->flush = inflight;
        }
        if (waiting) /* back in a queue (at its end) */
            mk_log_flush(log);
        mk_free(w);
        return MK_ERR_IO;
    }
    pthread_mutex_unlock(&closing_lock);
    return 0;
}

/* Unlinks the files of a flat directory, then the directory.  0 or
 * MK_ERR_IO (errno kept).  Any thread: no allocation through mk_malloc. */
static int remove_flat_dir(const char *dir)
{
    int rc = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT)
                rc = MK_ERR_IO;
        }
        closedir(d);
    }
    if (rmdir(dir) != 0 && errno != ENOENT)
        rc = MK_ERR_IO;
    return rc;
}

typedef struct dir_delete_s {
    uv_work_t req;
    int rc;
    char path[];
} dir_delete_t;

static void dir_delete_work_cb(uv_work_t *req)
{
    dir_delete_t *w = (dir_delete_t *)req;
    w->rc = remove_flat_dir(w->path);
}

static void dir_delete_after_cb(uv_work_t *req, int status)
{
    dir_delete_t *w = (dir_delete_t *)req;
    if (status < 0 || w->rc)
        mk_warn("log: %s: could not remove the directory completely", w->path);
    mk_free(w);
}

/* Removes the directory and frees log; no fsync.  Loop thread.  With a loop
 * the directory is first renamed to <dir>.<n>-delete, as Kafka does: the
 * name is free again at once, and the files are unlinked on the threadpool
 * (unlinking can wait on the disk, e.g. for discards). */
int mk_log_destroy(mk_log_t *log)
{
    if (!log)
        return 0;
    log_detach_flush(log);
    mk_log_clean_detach(log);
    mk_log_io_detach(&log->io);
    for (size_t i = 0; i < log->nsegs; i++)
        mk_log_seg_close(log->segs[i]);
    log->nsegs = 0;
    if (log->cfg.loop) {
        static unsigned seq;
        size_t n = strlen(log->dir) + 48;
        dir_delete_t *w = mk_malloc(sizeof(*w) + n);
        if (w) {
            snprintf(w->path, n, "%s.%d-%u-delete", log->dir, (int)getpid(), ++seq);
            if (rename(log->dir, w->path) == 0 &&
                uv_queue_work(log->cfg.loop, &w->req, dir_delete_work_cb, dir_delete_after_cb) == 0) {
                mk_info("log: %s: deleted (files removed in the background)", log->dir);
                log_free(log);
                return 0;
            }
            /* Renamed but not queued: remove it here. */
            if (access(w->path, F_OK) == 0 && remove_flat_dir(w->path) == 0) {
                mk_free(w);
                log_free(log);
                return 0;
            }
            mk_free(w);
        }
    }
    int rc = remove_flat_dir(log->dir);
    if (rc)
        mk_warn("log: %s: could not remove the directory completely: %s", log->dir,
                strerror(errno));
    else
        mk_info("log: %s: deleted", log->dir);
    log_free(log);
    return rc;
}

/* =============================================================== append */

typedef struct append_plan_s {
    int64_t first;     /* offset of the first batch */
    int64_t last;      /* last offset of the last batch */
    int32_t count;     /* batches */
    int64_t max_ts;
} append_plan_t;

/* Walks the views (no parsing: they were parsed once, by the caller or
 * by the wrappers below) and works out the offsets.  The views must tile
 * [0, len) exactly and pass the log's header checks. */
static int append_plan(const mk_log_t *log, size_t len, const mk_batch_view_t *views, size_t n,
                       bool assign, append_plan_t *pl)
{
    memset(pl, 0, sizeof(*pl));
    pl->first = -1;
    pl->max_ts = -1;
    if (len == 0 || n == 0)
        return MK_ERR_INVALID;
    if (len > UINT32_MAX)
        return MK_ERR_TOO_LARGE;
    int64_t next = mk_log_end_offset(log);
    uint64_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const mk_batch_view_t *v = &views[i];
        const mk_batch_hdr_t *h = &v->hdr;
        if (v->pos != pos || v->size < MK_BATCH_HEADER_SIZE || v->size > len - pos ||
            mk_log_view_check(v) != 0)
            return MK_ERR_INVALID;
        int64_t base = assign ? next : h->baseOffset;
        if (base < next || base > INT64_MAX - 1 - h->lastOffsetDelta || pl->count == INT32_MAX)
            return MK_ERR_INVALID;
        if (pl->first < 0)
            pl->first = base;
        next = base + h->lastOffsetDelta + 1;
        pl->last = next - 1;
        pl->count++;
        pl->max_ts = MK_MAX(pl->max_ts, h->maxTimestamp);
        pos += v->size;
    }
    if (pos != len)
        return MK_ERR_INVALID;
    if (pl->last - pl->first > INT32_MAX)
        return MK_ERR_TOO_LARGE; /* cannot be indexed within one segment */
    return 0;
}

/* Rewrites baseOffset and partitionLeaderEpoch of each planned batch, in
 * the bytes and the views alike (batch/'s view writers). */
static void append_assign(uint8_t *p, mk_batch_view_t *views, size_t n, int64_t first, int32_t epoch)
{
    int64_t next = first;
    for (size_t i = 0; i < n; i++) {
        mk_batch_view_set_base_offset(p, &views[i], next);
        mk_batch_view_set_leader_epoch(p, &views[i], epoch);
        next += (int64_t)views[i].hdr.lastOffsetDelta + 1;
    }
}

/* Before the bytes go out: room for every epoch entry the batches (with
 * their final epochs) can add, so that noting them afterwards cannot fail. */
static int log_epochs_reserve(mk_log_t *log, const mk_batch_view_t *views, size_t nviews)
{
    int32_t prev = mk_log_epochs_latest(&log->epochs);
    size_t n = 0;
    for (size_t i = 0; i < nviews; i++) {
        int32_t epoch = views[i].hdr.partitionLeaderEpoch;
        if (epoch >= 0 && epoch != prev) {
            n++;
            prev = epoch;
        }
    }
    return mk_log_epochs_reserve(&log->epochs, n);
}

/* After the bytes are in: every batch's epoch goes to the cache (Kafka's
 * maybeAssignEpochStartOffset), which is persisted if it changed. */
static void log_epochs_note(mk_log_t *log, const mk_batch_view_t *views, size_t nviews)
{
    bool changed = false;
    for (size_t i = 0; i < nviews; i++) {
        int rc = mk_log_epochs_assign(&log->epochs, views[i].hdr.partitionLeaderEpoch,
                                      views[i].hdr.baseOffset);
        assert(rc >= 0); /* room was reserved */
        changed |= rc > 0;
    }
    /* a follower that jumped ahead of an empty log moved the start */
    changed |= mk_log_epochs_truncate_start(&log->epochs, log->start_offset);
    if (changed)
        log_epochs_save(log);
}

static bool log_should_roll(const mk_log_t *log, const mk_log_seg_t *seg, size_t len,
                            const append_plan_t *pl, int64_t now_ms)
{
    const mk_log_seg_state_t *st = &seg->st;
    if (st->size == 0)
        return false;
    uint64_t idx_need = (uint64_t)(st->nidx + (size_t)pl->count) * MK_LOG_IDX_ENTRY;
    uint64_t tidx_need = (uint64_t)(st->ntidx + (size_t)pl->count) * MK_LOG_TIDX_ENTRY;
    return st->size + len > (uint64_t)log->cfg.segment_bytes ||
           (st->roll_base_ms >= 0 && now_ms - st->roll_base_ms > log->cfg.segment_ms) ||
           idx_need > (uint64_t)log->cfg.segment_index_bytes ||
           tidx_need > (uint64_t)log->cfg.segment_index_bytes ||
           pl->last - seg->base_offset > INT32_MAX;
}

/* Starts a new active segment at base.  An empty active segment is replaced
 * instead (a follower jumping ahead, or retention's roll of nothing). */
static int log_roll(mk_log_t *log, int64_t base)
{
    log->wgen++;
    mk_log_seg_t *old = log_active(log);
    if (old->st.size == 0 && old->base_offset == base)
        return 0;
    mk_log_seg_t *seg;
    int rc = mk_log_seg_open(log->dir, base, true, &seg);
    if (rc)
        return rc;
    if (old->st.size == 0) {
        log->segs[log->nsegs - 1] = seg;
        mk_log_seg_delete(old, log->cfg.loop);
    } else {
        rc = log_push_seg(log, seg);
        if (rc) {
            mk_log_seg_delete(seg, NULL);
            return rc;
        }
    }
    log->dir_dirty = true;
    log_refresh(log);
    mk_debug("log: %s: rolled to segment %" PRId64, log->dir, base);
    if (log->nsegs >= 2 && log->segs[log->nsegs - 2] == old)
        log_segment_event(log, MK_LOG_SEGMENT_SEALED, old, NULL, log->size_bytes);
    /* Kafka fsyncs the rolled segment in the background; without a loop
     * that would block, so only close or an explicit flush does it. */
    if (log->cfg.loop)
        mk_log_flush(log);
    return 0;
}

static int log_append_planned_io(mk_log_t *log, const uint8_t *p, size_t len, const mk_batch_view_t *views,
                                 size_t nviews, const append_plan_t *pl, int64_t now_ms,
                                 mk_log_append_info_t *info, const mk_log_prewrite_t *pw);

/* The gate (log.h) before a write: held writes return MK_ERR_AGAIN before
 * any byte is written or any offset is taken; an injected EIO fails the
 * log.  0: write, then mk_log_io_end(). */
static int log_write_begin(mk_log_t *log, uint64_t *t0)
{
    int rc = mk_log_io_begin(&log->io, MK_LOG_IO_WRITE, t0);
    if (rc == MK_ERR_IO)
        log_fail(log, "write (injected EIO)");
    return rc == MK_ERR_AGAIN || rc == MK_ERR_IO ? rc : 0;
}

static int log_append_planned(mk_log_t *log, const uint8_t *p, size_t len, const mk_batch_view_t *views,
                              size_t nviews, const append_plan_t *pl, int64_t now_ms,
                              mk_log_append_info_t *info, const mk_log_prewrite_t *pw)
{
    uint64_t t0;
    int rc = log_write_begin(log, &t0);
    if (rc)
        return rc;
    rc = log_append_planned_io(log, p, len, views, nviews, pl, now_ms, info, pw);
    mk_log_io_end(&log->io, MK_LOG_IO_WRITE, t0, rc); /* a rolled-back failure keeps the log */
    return rc;
}

static int log_append_planned_io(mk_log_t *log, const uint8_t *p, size_t len, const mk_batch_view_t *views,
                                 size_t nviews, const append_plan_t *pl, int64_t now_ms,
                                 mk_log_append_info_t *info, const mk_log_prewrite_t *pw)
{
    mk_log_seg_t *active = log_active(log);
    int rc = log_epochs_reserve(log, views, nviews);
    if (!rc && ((active->st.size == 0 && active->base_offset != pl->first) ||
                log_should_roll(log, active, len, pl, now_ms)))
        rc = log_roll(log, pl->first);
    if (rc)
        return rc;
    active = log_active(log);
    /* A prewrite counts only if nothing wrote, rolled or truncated since.
     * The header fields an append rewrites (baseOffset, batchLength,
     * partitionLeaderEpoch: the first 16 bytes of each batch) go in again. */
    size_t skip = pw && pw->wgen == log->wgen && pw->seg == active && pw->pos == active->st.size
                      ? MK_MIN(pw->done, len) : 0;
    log->wgen++;
    for (size_t i = 0; i < nviews && views[i].pos < skip && !rc; i++)
        rc = mk_log_seg_prewrite(active, p + views[i].pos, MK_MIN((size_t)16, skip - views[i].pos),
                                 active->st.size + views[i].pos);
    if (rc)
        return rc;
    rc = mk_log_seg_append(active, p, len, views, nviews, log->cfg.index_interval_bytes, now_ms, skip);
    if (rc == MK_ERR_STATE) {
        log_fail(log, "append rollback");
        return MK_ERR_IO;
    }
    if (rc)
        return rc;
    log->size_bytes += len;
    log_epochs_note(log, views, nviews);
    if (active->st.max_ts > log->max_ts) {
        log->max_ts = active->st.max_ts;
        log->max_ts_base = active->st.max_ts_base;
        log->max_ts_last = active->st.max_ts_last;
    }
    if (info) {
        info->first_offset = pl->first;
        info->last_offset = pl->last;
        info->end_offset = mk_log_end_offset(log);
        info->batch_count = pl->count;
        info->max_timestamp = pl->max_ts;
    }
    /* An epoch this append began (its checkpoint rewritten, epochs_unsynced)
     * asks for no flush of its own: its entry starts at one of these
     * batches, which are not fsynced either; the next flush (policy, roll,
     * close) carries it, and recovery after a crash replays the active
     * segment's epochs (log_epochs_open).  Flushing here cost a flush per
     * replica log at every topic creation and leader change: 15,000 at
     * once with 5000 partitions x RF 3. */
    log->unflushed += pl->last - pl->first + 1;
    if (log->unflushed >= log->cfg.flush_messages ||
        (log->cfg.flush_ms != INT64_MAX && now_ms - log->last_flush_ms >= log->cfg.flush_ms))
        mk_log_flush(log); /* a failure is logged and sticks; this append is in */
    return 0;
}

/* Leader append over views the caller parsed once (log.h): no header is
 * parsed here.  Loop thread; page-cache writes only. */
int mk_log_append_views(mk_log_t *log, uint8_t *batches, size_t len, mk_batch_view_t *views,
                        size_t nviews, int32_t leader_epoch, int64_t now_ms,
                        mk_log_append_info_t *info)
{
    if (log->io_err)
        return log->io_err;
    append_plan_t pl;
    int rc = append_plan(log, len, views, nviews, true, &pl);
    if (rc)
        return rc;
    append_assign(batches, views, nviews, pl.first, leader_epoch);
    return log_append_planned(log, batches, len, views, nviews, &pl, now_ms, info, NULL);
}

/* Views for the parsing wrappers: on the stack for the usual few batches,
 * else one allocation for the call. */
#define APPEND_STACK_VIEWS 32

typedef struct append_views_s {
    mk_batch_view_t stack[APPEND_STACK_VIEWS];
    mk_batch_view_t *v;        /* stack, or owned */
    size_t n;
} append_views_t;

/* One walk over the batches' headers into av.  Returns 0, MK_ERR_INVALID
 * (not whole v2 batches), MK_ERR_TOO_LARGE, MK_ERR_NOMEM. */
static int append_views_parse(append_views_t *av, const uint8_t *p, size_t len)
{
    av->v = av->stack;
    av->n = 0;
    if (len == 0)
        return MK_ERR_INVALID;
    if (len > UINT32_MAX)
        return MK_ERR_TOO_LARGE;
    int rc = mk_batch_views_parse(p, len, av->stack, APPEND_STACK_VIEWS, &av->n);
    if (rc == MK_ERR_TOO_LARGE) {
        av->v = mk_malloc(av->n * sizeof(*av->v));
        if (!av->v) {
            av->v = av->stack;
            return MK_ERR_NOMEM;
        }
        rc = mk_batch_views_parse(p, len, av->v, av->n, &av->n);
    }
    return rc ? MK_ERR_INVALID : 0;
}

static void append_views_free(append_views_t *av)
{
    if (av->v != av->stack)
        mk_free(av->v);
}

/* Leader append: parses the headers once, then mk_log_append_views()
 * (log.h).  Loop thread; page-cache writes only. */
int mk_log_append(mk_log_t *log, uint8_t *batches, size_t len, int32_t leader_epoch,
                  int64_t now_ms, mk_log_append_info_t *info)
{
    if (log->io_err)
        return log->io_err;
    append_views_t av;
    int rc = append_views_parse(&av, batches, len);
    if (!rc)
        rc = mk_log_append_views(log, batches, len, av.v, av.n, leader_epoch, now_ms, info);
    append_views_free(&av);
    return rc;
}

/* Follower append: offsets kept as given, must be >= end (log.h). */
int mk_log_append_replica_prewritten(mk_log_t *log, const uint8_t *batches, size_t len, int64_t now_ms,
                                     const mk_log_prewrite_t *pw, mk_log_append_info_t *info)
{
    if (log->io_err)
        return log->io_err;
    append_views_t av;
    append_plan_t pl;
    int rc = append_views_parse(&av, batches, len);
    if (!rc)
        rc = append_plan(log, len, av.v, av.n, false, &pl);
    if (!rc)
        rc = log_append_planned(log, batches, len, av.v, av.n, &pl, now_ms, info, pw);
    append_views_free(&av);
    return rc;
}

int mk_log_append_replica(mk_log_t *log, const uint8_t *batches, size_t len, int64_t now_ms,
                          mk_log_append_info_t *info)
{
    return mk_log_append_replica_prewritten(log, batches, len, now_ms, NULL, info);
}

static bool prewrite_valid(const mk_log_t *log, const mk_log_prewrite_t *pw)
{
    const mk_log_seg_t *active = log->segs[log->nsegs - 1];
    return pw->wgen == log->wgen && pw->seg == active && pw->pos == active->st.size;
}

/* (Re)starts pw where an append planned as pl will land: the active segment,
 * unrolled (else MK_ERR_UNSUPPORTED: such an append is not stepped). */
static int prewrite_start(mk_log_t *log, mk_log_prewrite_t *pw, size_t len, const append_plan_t *pl)
{
    mk_log_seg_t *active = log_active(log);
    if ((active->st.size == 0 && active->base_offset != pl->first) ||
        log_should_roll(log, active, len, pl, mk_now_ms()))
        return MK_ERR_UNSUPPORTED;
    pw->seg = active;
    pw->pos = active->st.size;
    pw->done = 0;
    pw->wgen = log->wgen;
    return 0;
}

/* The next step of pw (log.h): at most max more bytes go where the append
 * will put them, past the active segment's end, through the storage gate.
 * 1 when all of them are written, 0 when more are left, or an error. */
static int prewrite_step(mk_log_t *log, mk_log_prewrite_t *pw, const uint8_t *batches, size_t len, size_t max)
{
    if (pw->done >= len)
        return 1;
    size_t n = MK_MIN(max, len - pw->done);
    uint64_t t0;
    int rc = log_write_begin(log, &t0);
    if (rc)
        return rc;
    rc = mk_log_seg_prewrite(log_active(log), batches + pw->done, n, pw->pos + pw->done);
    mk_log_io_end(&log->io, MK_LOG_IO_WRITE, t0, rc);
    if (rc)
        return rc;
    pw->done += n;
    return pw->done >= len ? 1 : 0;
}

int mk_log_prewrite(mk_log_t *log, mk_log_prewrite_t *pw, const uint8_t *batches, size_t len, size_t max)
{
    if (log->io_err)
        return log->io_err;
    if (pw->done == 0 || !prewrite_valid(log, pw)) {
        append_views_t av;
        append_plan_t pl;
        int rc = append_views_parse(&av, batches, len);
        if (!rc)
            rc = append_plan(log, len, av.v, av.n, false, &pl);
        append_views_free(&av);
        if (!rc)
            rc = prewrite_start(log, pw, len, &pl);
        if (rc)
            return rc;
    }
    return prewrite_step(log, pw, batches, len, max);
}

static uint32_t views_sig(const uint8_t *p, const mk_batch_view_t *views, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c = mk_crc32c(c, p + views[i].pos + 8, 4);   /* batchLength */
        c = mk_crc32c(c, p + views[i].pos + 17, 4);  /* crc */
    }
    return c;
}

int mk_log_append_views_stepped(mk_log_t *log, uint8_t *batches, size_t len, mk_batch_view_t *views,
                                size_t nviews, int32_t leader_epoch, int64_t now_ms, size_t step, bool *stepped,
                                mk_log_append_info_t *info)
{
    *stepped = false;
    if (log->io_err)
        return log->io_err;
    if (len <= step || nviews == 0)
        return mk_log_append_views(log, batches, len, views, nviews, leader_epoch, now_ms, info);
    /* Planned once: the steps write past the end and change nothing it uses. */
    append_plan_t pl;
    int rc = append_plan(log, len, views, nviews, true, &pl);
    if (rc)
        return rc;
    uint32_t sig = views_sig(batches, views, nviews);
    bool same = log->lstage.p == batches && log->lstage.len == len && log->lstage.sig == sig;
    if (same && log->lstage.pw.done > 0 && !prewrite_valid(log, &log->lstage.pw)) {
        /* Voided by another write: append at once. */
        memset(&log->lstage, 0, sizeof(log->lstage));
        return mk_log_append_views(log, batches, len, views, nviews, leader_epoch, now_ms, info);
    }
    if (!same && log->lstage.p && log->lstage.pw.done > 0 && prewrite_valid(log, &log->lstage.pw))
        /* Another append is in steps: this one goes at once (and voids those,
         * which then go at once too), rather than each restarting the other. */
        return mk_log_append_views(log, batches, len, views, nviews, leader_epoch, now_ms, info);
    if (!same) {
        memset(&log->lstage, 0, sizeof(log->lstage));
        log->lstage.p = batches;
        log->lstage.len = len;
        log->lstage.sig = sig;
    }
    rc = log->lstage.pw.done == 0 ? prewrite_start(log, &log->lstage.pw, len, &pl) : 0;
    if (!rc)
        rc = prewrite_step(log, &log->lstage.pw, batches, len, step);
    if (rc == 0) {
        *stepped = true;
        return MK_ERR_AGAIN;
    }
    mk_log_prewrite_t pw = log->lstage.pw;
    memset(&log->lstage, 0, sizeof(log->lstage));
    if (rc == MK_ERR_AGAIN || rc == MK_ERR_IO)
        return rc; /* held at the gate; or failed */
    append_assign(batches, views, nviews, pl.first, leader_epoch);
    return log_append_planned(log, batches, len, views, nviews, &pl, now_ms, info, pw.done == len ? &pw : NULL);
}

/* ================================================================= read */

static int scan_error(const mk_log_t *log, const mk_log_seg_t *seg, int rc)
{
    if (rc == MK_ERR_IO || rc == MK_ERR_NOMEM)
        return rc;
    mk_error("log: %s: corrupt batch in segment %" PRId64 " (%s)", log->dir, seg->base_offset,
             mk_strerror(rc));
    return MK_ERR_CORRUPT;
}

static int log_read_io(mk_log_t *log, int64_t fetch_offset, int64_t max_offset, size_t max_bytes,
                       bool min_one_batch, mk_buf_t *out, int64_t *next_offset_out);

/* Whole batches from the one holding fetch_offset, bounded by max_bytes
 * and max_offset, appended to out (unchanged on error).  Passes the gate
 * (MK_ERR_AGAIN while held).  Loop thread. */
int mk_log_read_upto(mk_log_t *log, int64_t fetch_offset, int64_t max_offset, size_t max_bytes,
                     bool min_one_batch, mk_buf_t *out, int64_t *next_offset_out)
{
    int64_t end = mk_log_end_offset(log);
    if (fetch_offset < log->start_offset || fetch_offset > end)
        return MK_ERR_RANGE;
    if (fetch_offset == end || max_offset <= fetch_offset) {
        *next_offset_out = fetch_offset; /* nothing to read: no I/O */
        return 0;
    }
    if (log->io_err)
        return log->io_err;
    uint64_t t0;
    int grc = mk_log_io_begin(&log->io, MK_LOG_IO_READ, &t0);
    if (grc == MK_ERR_AGAIN)
        return grc;
    if (grc == MK_ERR_IO) {
        log_fail(log, "read (injected EIO)");
        return grc;
    }
    grc = log_read_io(log, fetch_offset, max_offset, max_bytes, min_one_batch, out, next_offset_out);
    mk_log_io_end(&log->io, MK_LOG_IO_READ, t0, grc);
    return grc;
}

static int log_read_io(mk_log_t *log, int64_t fetch_offset, int64_t max_offset, size_t max_bytes,
                       bool min_one_batch, mk_buf_t *out, int64_t *next_offset_out)
{
    size_t mark = out->len, total = 0;
    int64_t next = fetch_offset;
    bool any = false, done = false;
    int rc = 0;
    for (size_t i = log_find_seg(log, fetch_offset); i < log->nsegs && !done && !rc; i++) {
        mk_log_seg_t *seg = log->segs[i];
        if (seg->st.next_offset <= fetch_offset)
            continue; /* empty, or a gap: the batch lives further on */
        mk_log_scan_t s;
        mk_log_scan_init(&s, seg, mk_log_seg_lookup(seg, fetch_offset), false);
        mk_batch_view_t h;
        uint64_t run_from = 0, run_to = 0;
        while ((rc = mk_log_scan_next(&s, &h, NULL)) == 1) {
            int64_t last = h.hdr.baseOffset + h.hdr.lastOffsetDelta;
            if (last < fetch_offset)
                continue;
            if (last >= max_offset || (total + h.size > max_bytes && (any || !min_one_batch))) {
                done = true;
                break;
            }
            if (run_to == 0)
                run_from = h.pos;
            run_to = h.pos + h.size;
            total += h.size;
            any = true;
            next = last + 1;
            if (total >= max_bytes) {
                done = true;
                break;
            }
        }
        mk_log_scan_free(&s);
        if (rc < 0)
            rc = scan_error(log, seg, rc);
        else
            rc = 0;
        if (!rc && run_to > run_from)
            rc = seg->ops->read(seg->impl, run_from, (size_t)(run_to - run_from), out);
    }
    if (rc) {
        out->len = mark;
        return rc;
    }
    *next_offset_out = next;
    return 0;
}

/* mk_log_read_upto() without an offset bound. */
int mk_log_read(mk_log_t *log, int64_t fetch_offset, size_t max_bytes, bool min_one_batch,
                mk_buf_t *out, int64_t *next_offset_out)
{
    return mk_log_read_upto(log, fetch_offset, INT64_MAX, max_bytes, min_one_batch, out,
                            next_offset_out);
}

/* ============================================================ timestamps */

/* First batch with maxTimestamp >= ts at or above the start offset:
 * time index, then a header scan.  MK_ERR_NOT_FOUND if none. */
int mk_log_offset_for_time(mk_log_t *log, int64_t ts, int64_t *offset, int64_t *timestamp)
{
    for (size_t i = 0; i < log->nsegs; i++) {
        mk_log_seg_t *seg = log->segs[i];
        if (seg->st.max_ts < ts || seg->st.next_offset <= log->start_offset)
            continue;
        mk_log_scan_t s;
        mk_log_scan_init(&s, seg, mk_log_seg_time_lookup(seg, ts), false);
        mk_batch_view_t h;
        int rc;
        while ((rc = mk_log_scan_next(&s, &h, NULL)) == 1) {
            if (h.hdr.maxTimestamp >= ts && h.hdr.baseOffset + h.hdr.lastOffsetDelta >= log->start_offset)
                break;
        }
        mk_log_scan_free(&s);
        if (rc < 0)
            return scan_error(log, seg, rc);
        if (rc == 1) {
            *offset = h.hdr.baseOffset;
            *timestamp = h.hdr.maxTimestamp;
            return 0;
        }
    }
    return MK_ERR_NOT_FOUND;
}

/* The cached largest-timestamp batch; resolves its base offset with one
 * scan when it was loaded from a time index. */
int mk_log_max_timestamp(mk_log_t *log, mk_log_ts_t *out)
{
    if (log->max_ts < 0)
        return MK_ERR_NOT_FOUND;
    if (log->max_ts_base < 0) {
        /* Loaded from a time index, which keeps only the last offset. */
        mk_log_seg_t *seg = log->segs[log_find_seg(log, log->max_ts_last)];
        mk_log_scan_t s;
        mk_log_scan_init(&s, seg, mk_log_seg_lookup(seg, log->max_ts_last), false);
        mk_batch_view_t h;
        int rc;
        while ((rc = mk_log_scan_next(&s, &h, NULL)) == 1) {
            if (h.hdr.baseOffset + h.hdr.lastOffsetDelta >= log->max_ts_last)
                break;
        }
        mk_log_scan_free(&s);
        if (rc < 0)
            return scan_error(log, seg, rc);
        if (rc == 0)
            return MK_ERR_CORRUPT;
        log->max_ts_base = seg->st.max_ts_base = h.hdr.baseOffset;
    }
    out->timestamp = log->max_ts;
    out->base_offset = log->max_ts_base;
    out->last_offset = log->max_ts_last;
    return 0;
}

/* ============================================================ retention */

static void log_delete_front(mk_log_t *log, size_t n, const char *why)
{
    log->wgen++;
    uint64_t left = log->size_bytes;
    for (size_t i = 0; i < n; i++) {
        mk_log_seg_t *seg = log->segs[i];
        mk_info("log: %s: deleting segment %" PRId64 " (offsets up to %" PRId64 ", %" PRIu64
                " bytes): %s",
                log->dir, seg->base_offset, seg->st.next_offset, seg->st.size, why);
        left -= MK_MIN(left, seg->st.size);
        log_segment_event(log, MK_LOG_SEGMENT_DELETED, seg, why, left);
        mk_log_seg_delete(seg, log->cfg.loop);
    }
    memmove(log->segs, log->segs + n, (log->nsegs - n) * sizeof(*log->segs));
    log->nsegs -= n;
    log->dir_dirty = true;
    log_refresh(log);
    log_save_start(log);
    if (mk_log_epochs_truncate_start(&log->epochs, log->start_offset))
        log_epochs_changed(log);
}

/* Segments (never the active one) wholly below the start offset. */
static size_t log_count_below_start(const mk_log_t *log)
{
    size_t n = 0;
    /* An empty sealed segment (the first one, compacted to nothing) holds
     * the log start: it is below it only once the next segment is. */
    while (n + 1 < log->nsegs && log->segs[n]->st.next_offset <= log->start_offset &&
           (log->segs[n]->st.size > 0 || log->segs[n + 1]->base_offset <= log->start_offset))
        n++;
    return n;
}

static int64_t seg_largest_ts(const mk_log_seg_t *seg)
{
    return seg->st.max_ts >= 0 ? seg->st.max_ts : seg->st.mtime_ms;
}

/* Deletes expired / excess / below-start segments; returns how many. */
int mk_log_retain(mk_log_t *log, int64_t now_ms)
{
    int deleted = 0;
    size_t n = log_count_below_start(log);
    if (n) {
        log_delete_front(log, n, "below the log start offset");
        deleted += (int)n;
    }
    if (log->cfg.retention_ms >= 0) {
        n = 0;
        /* an empty sealed segment (a compacted first segment) goes by its
         * file time, which the cleaner set to its inputs' largest timestamp */
        while (n < log->nsegs && (log->segs[n]->st.size > 0 || n + 1 < log->nsegs) &&
               now_ms - seg_largest_ts(log->segs[n]) > log->cfg.retention_ms)
            n++;
        if (n > 0 && n == log->nsegs) {
            int rc = log_roll(log, mk_log_end_offset(log));
            if (rc)
                return rc;
        }
        if (n) {
            log_delete_front(log, n, "retention.ms");
            deleted += (int)n;
        }
    }
    if (log->cfg.retention_bytes >= 0) {
        int64_t diff = (int64_t)log->size_bytes - log->cfg.retention_bytes;
        n = 0;
        while (n + 1 < log->nsegs && diff - (int64_t)log->segs[n]->st.size >= 0)
            diff -= (int64_t)log->segs[n++]->st.size;
        if (n) {
            log_delete_front(log, n, "retention.bytes");
            deleted += (int)n;
        }
    }
    return deleted;
}

/* Moves the start offset up (persisted); deletes segments below it; why
 * names the cause in the segment events. */
static int log_start_move(mk_log_t *log, int64_t offset, const char *why)
{
    if (offset < 0 || offset > mk_log_end_offset(log))
        return MK_ERR_RANGE;
    if (offset <= log->start_offset)
        return 0;
    int64_t before = log->start_offset;
    log->start_offset = offset;
    int rc = log_save_start(log);
    size_t n = log_count_below_start(log);
    if (n)
        log_delete_front(log, n, why);
    if (mk_log_epochs_truncate_start(&log->epochs, log->start_offset))
        log_epochs_changed(log);
    if (log->segment_cb) {
        mk_log_segment_event_t ev = {MK_LOG_SEGMENT_START, before, offset, log->size_bytes, why, -1,
                                     log->size_bytes};
        log->segment_cb(&ev, log->segment_arg);
    }
    return rc;
}

int mk_log_delete_records(mk_log_t *log, int64_t offset) { return log_start_move(log, offset, "DeleteRecords"); }

int mk_log_start_follow(mk_log_t *log, int64_t offset) { return log_start_move(log, offset, "leader log start"); }

/* Follower truncation: drops batches whose last offset >= offset; full
 * (Kafka's truncateFullyAndStartAt) empties the log and restarts it there. */
static int log_truncate(mk_log_t *log, int64_t offset, bool full)
{
    log->wgen++;
    if (offset < 0)
        return MK_ERR_INVALID;
    if (log->io_err)
        return log->io_err;
    if (!full && offset >= mk_log_end_offset(log))
        return 0;
    int rc = 0;
    int64_t now = mk_now_ms();
    bool epochs_changed;
    if (full || offset < log->start_offset || offset <= log->segs[0]->base_offset) {
        mk_info("log: %s: truncating fully, restarting at offset %" PRId64, log->dir, offset);
        for (size_t i = 0; i < log->nsegs; i++)
            mk_log_seg_delete(log->segs[i], log->cfg.loop);
        log->nsegs = 0;
        mk_log_seg_t *seg;
        rc = mk_log_seg_open(log->dir, offset, true, &seg);
        if (!rc) {
            rc = log_push_seg(log, seg); /* cannot fail: capacity remains */
            log->start_offset = offset;
            log->flushed_offset = offset;
        }
        if (rc) {
            log_fail(log, "truncation");
            return rc;
        }
        epochs_changed = mk_log_epochs_clear(&log->epochs); /* Kafka: clearAndFlush */
    } else {
        mk_info("log: %s: truncating to offset %" PRId64 " (end was %" PRId64 ")", log->dir,
                offset, mk_log_end_offset(log));
        while (log_active(log)->base_offset >= offset) {
            mk_log_seg_delete(log_active(log), log->cfg.loop);
            log->nsegs--;
        }
        rc = mk_log_seg_truncate(log_active(log), offset, log->cfg.index_interval_bytes, now);
        if (rc) {
            log_fail(log, "truncation");
            return rc;
        }
        /* The new end is <= offset when a batch straddled it: epochs that
         * began in that batch are gone with it. */
        epochs_changed = mk_log_epochs_truncate_end(&log->epochs, mk_log_end_offset(log));
    }
    log->truncations++;
    log->dir_dirty = true;
    log_refresh(log);
    log_save_start(log);
    if (log->cleaned_to > mk_log_end_offset(log) || full)
        log->cleaned_to = full ? 0 : log_active(log)->base_offset;
    if (epochs_changed)
        log_epochs_changed(log);
    return 0;
}

int mk_log_truncate_to(mk_log_t *log, int64_t offset) { return log_truncate(log, offset, false); }

int mk_log_truncate_fully(mk_log_t *log, int64_t offset) { return log_truncate(log, offset, true); }

/* ======================================================== leader epochs */

/* Kafka's endOffsetForEpoch over the cache (log.h).  O(log epochs). */
int mk_log_end_offset_for_epoch(mk_log_t *log, int32_t epoch, int32_t *epoch_out,
                                int64_t *end_offset_out)
{
    mk_log_epochs_end_offset(&log->epochs, epoch, mk_log_end_offset(log), epoch_out,
                             end_offset_out);
    return 0;
}

/* -1 when no epoch is cached.  O(1). */
int32_t mk_log_latest_epoch(const mk_log_t *log) { return mk_log_epochs_latest(&log->epochs); }

/* A new leader's epoch starts at the log end (log.h); persisted as any
 * cache change.  Loop thread. */
int mk_log_epoch_begin(mk_log_t *log, int32_t epoch)
{
    if (epoch < 0 || epoch < mk_log_epochs_latest(&log->epochs))
        return MK_ERR_INVALID;
    if (log->io_err)
        return log->io_err;
    int rc = mk_log_epochs_assign(&log->epochs, epoch, mk_log_end_offset(log));
    /* Written, not flushed at once: the entry starts at the log end, and an
     * entry without data is dropped by the next open anyway, so it needs no
     * more durability than the batches that will follow it (their flush
     * covers the checkpoint).  A flush here cost five fsyncs per partition
     * replica at every topic creation and leader change. */
    if (rc > 0)
        log_epochs_save(log);
    return rc < 0 ? rc : 0;
}

/* ================================================================ stats */

/* Snapshot of sizes and offsets for metrics; O(1). */
void mk_log_stats(const mk_log_t *log, mk_log_stats_t *out)
{
    out->size_bytes = log->size_bytes;
    out->segment_count = (int32_t)log->nsegs;
    out->start_offset = log->start_offset;
    out->end_offset = mk_log_end_offset(log);
    out->flushed_offset = log->flushed_offset;
    out->flush_in_flight = log->flush != NULL || log->flushq != NULL;
    out->io_error = log->io_err;
}

/* ==================================================== segments (tiering) */

size_t mk_log_segment_count(const mk_log_t *log) { return log->nsegs; }

void mk_log_segment_info(const mk_log_t *log, size_t i, mk_log_segment_info_t *out)
{
    const mk_log_seg_t *seg = log->segs[i];
    out->base_offset = seg->base_offset;
    out->end_offset = seg->st.next_offset;
    out->size_bytes = seg->st.size;
    out->max_timestamp = seg_largest_ts(seg);
    out->active = i + 1 == log->nsegs;
}

int mk_log_segment_dup_fds(mk_log_t *log, int64_t base, int fds[3])
{
    size_t i = log_find_seg(log, base);
    mk_log_seg_t *seg = log->segs[i];
    if (seg->base_offset != base)
        return MK_ERR_NOT_FOUND;
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc;
    int src[3] = {seg->fd, seg->idx_fd, seg->tidx_fd};
    for (int k = 0; k < 3; k++) {
        fds[k] = src[k] >= 0 ? fcntl(src[k], F_DUPFD_CLOEXEC, 0) : -1;
        if (fds[k] < 0) {
            while (k-- > 0)
                close(fds[k]);
            rc = MK_ERR_IO;
            break;
        }
    }
    mk_log_seg_files_put(seg);
    return rc;
}

/* Tiered retention: whole sealed segments ending at or below offset. */
int mk_log_retain_to(mk_log_t *log, int64_t offset, const char *why)
{
    size_t n = 0;
    while (n + 1 < log->nsegs && log->segs[n]->st.next_offset <= offset)
        n++;
    if (n)
        log_delete_front(log, n, why);
    return (int)n;
}

size_t mk_log_epoch_entries(const mk_log_t *log, mk_log_epoch_entry_t *out, size_t cap)
{
    for (size_t i = 0; i < log->epochs.n && i < cap; i++) {
        out[i].epoch = log->epochs.v[i].epoch;
        out[i].start_offset = log->epochs.v[i].start_offset;
    }
    return log->epochs.n;
}

/* ================================================================== cursors */

/* A cursor owns duplicated descriptors of the segments as they were when it
 * was opened, and their sizes then: appends after that are not seen,
 * retention may unlink a file (the descriptor keeps it readable), and
 * nothing of the log itself is touched, so the cursor may run on a worker
 * while the loop goes on appending.  A cursor over a directory
 * (mk_log_cursor_open_dir) opens the segment files read-only instead. */
typedef struct cursor_seg_s {
    int fd;
    uint64_t size;
    int64_t base;              /* the segment's base offset (file name) */
} cursor_seg_t;

struct mk_log_cursor_s {
    int64_t end_offset;        /* the log end when opened; -1 for a directory */
    size_t nsegs, cur;         /* cur: the segment of the last view */
    uint64_t pos;              /* next file position in segs[cur] */
    cursor_seg_t segs[];
};

int mk_log_cursor_open(mk_log_t *log, mk_log_cursor_t **out)
{
    /* The scan's reads run on a worker through its own descriptors; its
     * open asks the gate (held while the disk stalls, EIO when reads fail). */
    int grc = mk_log_io_scan(&log->io);
    if (grc == MK_ERR_IO)
        log_fail(log, "read (injected EIO)");
    if (grc < 0)
        return grc;
    mk_log_cursor_t *s = mk_calloc(1, sizeof(*s) + sizeof(cursor_seg_t) * (log->nsegs ? log->nsegs : 1));
    if (!s)
        return MK_ERR_NOMEM;
    for (size_t i = 0; i < log->nsegs; i++) {
        mk_log_seg_t *seg = log->segs[i];
        int rc = mk_log_seg_files_get(seg);
        int fd = -1;
        if (!rc) {
            fd = fcntl(seg->fd, F_DUPFD_CLOEXEC, 0);
            if (fd < 0)
                rc = errno == EMFILE || errno == ENFILE ? MK_ERR_NOFILES : MK_ERR_IO;
            mk_log_seg_files_put(seg);
        }
        if (rc) {
            s->nsegs = i;
            mk_log_cursor_close(s);
            return rc;
        }
        s->segs[i].fd = fd;
        s->segs[i].size = seg->st.size;
        s->segs[i].base = seg->base_offset;
    }
    s->nsegs = log->nsegs;
    s->end_offset = mk_log_end_offset(log);
    *out = s;
    return 0;
}

/* Segment base offsets of dir's .log files, sorted, into *out (owned by the
 * caller).  Read-only: unlike log_list_segments() nothing is removed. */
static int list_segments_ro(const char *dir, int64_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? MK_ERR_NOT_FOUND : MK_ERR_IO;
    int64_t *bases = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t base;
        if (!parse_seg_name(e->d_name, ".log", &base))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *p = mk_realloc(bases, cap * sizeof(*p));
            if (!p) {
                rc = MK_ERR_NOMEM;
                break;
            }
            bases = p;
        }
        bases[n++] = base;
    }
    closedir(d);
    if (rc) {
        mk_free(bases);
        return rc;
    }
    if (n > 1)
        qsort(bases, n, sizeof(*bases), cmp_i64);
    *out = bases;
    *count = n;
    return 0;
}

int mk_log_cursor_open_dir(const char *dir, mk_log_cursor_t **out, int64_t *start_out)
{
    *out = NULL;
    int64_t *bases;
    size_t n;
    int rc = list_segments_ro(dir, &bases, &n);
    if (rc)
        return rc;
    mk_log_cursor_t *s = mk_calloc(1, sizeof(*s) + sizeof(cursor_seg_t) * (n ? n : 1));
    if (!s) {
        mk_free(bases);
        return MK_ERR_NOMEM;
    }
    s->end_offset = -1;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat sb;
        int fd = -1;
        if (snprintf(path, sizeof(path), "%s/%020" PRId64 ".log", dir, bases[i]) >= (int)sizeof(path))
            rc = MK_ERR_TOO_LARGE;
        else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0)
            rc = MK_ERR_IO;
        if (rc) {
            if (fd >= 0)
                close(fd);
            break;
        }
        s->segs[i].fd = fd;
        s->segs[i].size = (uint64_t)sb.st_size;
        s->segs[i].base = bases[i];
        s->nsegs = i + 1;
    }
    if (rc) {
        mk_free(bases);
        mk_log_cursor_close(s);
        return rc;
    }
    if (start_out) {
        /* As mk_log_open() + log_refresh() would have it, without the end
         * (unknown without a scan): the checkpoint raised to the first base. */
        char path[PATH_MAX], text[32];
        int64_t v = -1;
        const char *p = text;
        bool ok = snprintf(path, sizeof(path), "%s/%s", dir, START_CHECKPOINT) < (int)sizeof(path) &&
                  read_small_file(path, text, sizeof(text)) > 0 && parse_u63(&p, &v) && *p == '\0';
        if (!ok)
            v = 0;
        *start_out = n ? MK_MAX(v, bases[0]) : v;
    }
    mk_free(bases);
    *out = s;
    return 0;
}

int64_t mk_log_cursor_end_offset(const mk_log_cursor_t *s) { return s->end_offset; }

void mk_log_cursor_where(const mk_log_cursor_t *s, int64_t *segment_base)
{
    *segment_base = s->cur < s->nsegs ? s->segs[s->cur].base : -1;
}

int mk_log_cursor_skip_segment(mk_log_cursor_t *s)
{
    if (s->cur + 1 >= s->nsegs) {
        s->cur = s->nsegs;
        s->pos = 0;
        return 0;
    }
    s->cur++;
    s->pos = 0;
    return 1;
}

int mk_log_cursor_next(mk_log_cursor_t *s, mk_batch_view_t *v)
{
    while (s->cur < s->nsegs) {
        const cursor_seg_t *g = &s->segs[s->cur];
        if (s->pos >= g->size) {
            if (s->cur + 1 == s->nsegs)
                break; /* stay on the last segment: mk_log_cursor_where() still names it */
            s->cur++;
            s->pos = 0;
            continue;
        }
        uint8_t hdr[MK_BATCH_HEADER_SIZE];
        if (g->size - s->pos < sizeof(hdr))
            return MK_ERR_CORRUPT;
        int rc = mk_log_file_read(g->fd, hdr, sizeof(hdr), s->pos);
        if (rc < 0)
            return rc;
        rc = mk_batch_view_parse(hdr, sizeof(hdr), v);
        if (rc < 0)
            return rc;
        if (v->size > g->size - s->pos)
            return MK_ERR_CORRUPT;
        v->pos = s->pos;
        s->pos += v->size;
        return 1;
    }
    return 0;
}

int mk_log_cursor_read(mk_log_cursor_t *s, const mk_batch_view_t *v, mk_buf_t *out)
{
    if (s->cur >= s->nsegs)
        return MK_ERR_RANGE;
    mk_buf_reset(out);
    if (!mk_buf_reserve(out, v->size))
        return MK_ERR_NOMEM;
    int rc = mk_log_file_read(s->segs[s->cur].fd, out->data, v->size, v->pos);
    if (rc == 0)
        out->len = v->size;
    return rc;
}

void mk_log_cursor_close(mk_log_cursor_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].fd >= 0)
            close(s->segs[i].fd);
    mk_free(s);
}

/* ====================================================== for clean.c */

void mk_log_int_refresh(mk_log_t *log) { log_refresh(log); }
size_t mk_log_int_find_seg(const mk_log_t *log, int64_t offset) { return log_find_seg(log, offset); }
int64_t mk_log_int_seg_largest_ts(const mk_log_seg_t *seg) { return seg_largest_ts(seg); }

void mk_log_int_cursor_limit(mk_log_cursor_t *s, size_t n)
{
    while (s->nsegs > n) {
        s->nsegs--;
        close(s->segs[s->nsegs].fd);
    }
}

int mk_log_cursor_rewind(mk_log_cursor_t *s)
{
    s->cur = 0;
    s->pos = 0;
    return 0;
}
