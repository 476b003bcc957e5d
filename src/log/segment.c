/*
 * segment.c -- one segment of a partition log: its three files, the sparse
 * offset and time indexes, the local-file read ops, the batch scanner and
 * per-segment recovery.
 *
 * A segment is named by its base offset, 20 decimal digits, in the log's
 * directory: 00000000000000000000.log, .index and .timeindex.  All integers
 * on disk are big-endian, as on the Kafka wire.
 *
 * .log -- record batches (magic v2) back to back, exactly as appended
 * (baseOffset and partitionLeaderEpoch rewritten by the leader).  Their
 * layout belongs to batch/ (the offset table in batch.h): this file reads
 * headers only through mk_batch_view_parse(), as mk_batch_view_t views.
 *
 * .index -- sparse offset index, N entries of 8 bytes:
 *
 *   offset  size  field
 *   0       4     relativeOffset  batch baseOffset - segment base offset
 *   4       4     position        file position of that batch in .log
 *
 * .timeindex -- sparse time index, N entries of 12 bytes:
 *
 *   offset  size  field
 *   0       8     timestamp       largest maxTimestamp appended so far
 *   8       4     relativeOffset  last offset of the batch holding it - base
 *
 * Index rule (append and rebuild apply the same one, so a rebuilt index is
 * byte-identical): before a batch is written at position P, if at least
 * index_interval bytes were appended since the last offset-index entry, a
 * time entry is written first when the segment's largest timestamp grew
 * since the last time entry, then the offset entry (batch baseOffset, P).
 * The first batch of a segment never gets an entry: position 0 is implied.
 * Consequences the readers rely on:
 *   - every batch before the last offset entry's position has a
 *     maxTimestamp <= the last time entry's timestamp, so recovery of a
 *     trusted segment only scans the tail after the last offset entry;
 *   - relativeOffset and position strictly increase; timestamps strictly
 *     increase; relative offsets fit 31 bits (the log rolls before that).
 *
 * Indexes are kept in memory (8 or 12 bytes per index_interval of data, so
 * about 0.3% of the data) and appended to their files with pwrite; no mmap,
 * no preallocation.  The files are written after the .log bytes; a crash in
 * between leaves an index that the tail check finds short, and it is
 * rebuilt.  Every byte read back from disk goes through mk_reader_t.
 *
 * Descriptors: six brokers share one process, so thousands of partitions
 * would each hold three open files per segment and run into RLIMIT_NOFILE.
 * A segment's files are therefore open only while it sits in one
 * process-wide LRU list bounded by mk_log_set_max_open_files()
 * (minikora.log.max.open.files); opening a segment beyond the bound closes
 * the least recently used unpinned one, and its next use reopens the files
 * (never with O_CREAT|O_TRUNC: only mk_log_seg_open() creates).  Every use
 * of seg->fd/idx_fd/tidx_fd sits between mk_log_seg_files_get() (pin) and
 * _put(); one mutex guards the list because async closes and fsyncs touch
 * segments from libuv's threadpool.  Duplicates handed out (flush, cursors,
 * tier uploads) are independent descriptors: evicting the cached one never
 * affects them.  An evicted dirty segment is reopened by its flush: fsync
 * works on the inode, whichever descriptor asks.
 */
#include "log/log_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>
#include <uv.h>

#define SCAN_HEADER_WINDOW (16u * 1024u)
#define SCAN_BODY_WINDOW (256u * 1024u)

/* ================================================================ faults */

static long io_fail_countdown;

/* Test hook: the nth log file write from now fails (0 = off). */
void mk_log_fail_io_at(long nth) { io_fail_countdown = nth; }

static bool io_should_fail(void)
{
    if (io_fail_countdown > 0 && --io_fail_countdown == 0)
        return true;
    return false;
}

/* ================================================================ file I/O */

/* Whole-buffer pwrite; 0 or MK_ERR_IO (also from the fault hook). */
int mk_log_file_write(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *c = p;
    if (io_should_fail())
        return MK_ERR_IO;
    while (n > 0) {
        ssize_t w = pwrite(fd, c, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return MK_ERR_IO;
        }
        if (w == 0)
            return MK_ERR_IO;
        c += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Whole-buffer pread; 0, MK_ERR_TRUNCATED at end of file, MK_ERR_IO. */
int mk_log_file_read(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *c = p;
    while (n > 0) {
        ssize_t r = pread(fd, c, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return MK_ERR_IO;
        }
        if (r == 0)
            return MK_ERR_TRUNCATED;
        c += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return MK_ERR_IO;
    int rc = fsync(fd) == 0 ? 0 : MK_ERR_IO;
    close(fd);
    return rc;
}

/* dir/name.tmp written (and fsynced with sync), renamed over dir/name (and
 * the directory fsynced with sync).  The temporary is removed on failure;
 * errno tells why. */
int mk_log_file_replace(const char *dir, const char *name, const void *p, size_t n, bool sync)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int np = snprintf(path, sizeof(path), "%s/%s", dir, name);
    int nt = snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    if (np < 0 || nt < 0 || (size_t)np >= sizeof(path) || (size_t)nt >= sizeof(tmp))
        return MK_ERR_TOO_LARGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return MK_ERR_IO;
    int rc = mk_log_file_write(fd, p, n, 0);
    if (!rc && sync && fsync(fd) != 0)
        rc = MK_ERR_IO;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = MK_ERR_IO;
    if (rc) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return rc;
    }
    return sync ? fsync_dir(dir) : 0;
}

static int file_truncate(int fd, uint64_t size)
{
    while (ftruncate(fd, (off_t)size) != 0) {
        if (errno != EINTR)
            return MK_ERR_IO;
    }
    return 0;
}

/* ================================================================ batches */

/* What the log needs of a batch header beyond batch/'s checks: offsets
 * that are not negative and a last offset that fits int64. */
int mk_log_view_check(const mk_batch_view_t *v)
{
    const mk_batch_hdr_t *h = &v->hdr;
    if (h->baseOffset < 0 || h->lastOffsetDelta < 0 || h->baseOffset > INT64_MAX - 1 - h->lastOffsetDelta)
        return MK_ERR_CORRUPT;
    return 0;
}

/* batch/'s header parse plus the log's checks (log_int.h); never reads
 * past avail.  A legacy magic is just corrupt here: the log holds v2. */
int mk_log_view_parse(const uint8_t *p, size_t avail, mk_batch_view_t *v)
{
    int rc = mk_batch_view_parse(p, avail, v);
    if (rc)
        return rc == MK_ERR_TRUNCATED ? rc : MK_ERR_CORRUPT;
    return mk_log_view_check(v);
}

/* Default validator: header, size == n, CRC32C over [21, n). */
int mk_log_batch_check(const uint8_t *p, size_t n, void *arg)
{
    (void)arg;
    mk_batch_view_t v;
    int rc = mk_log_view_parse(p, n, &v);
    if (rc)
        return rc;
    if (v.size != n)
        return MK_ERR_CORRUPT;
    return mk_batch_crc_compute(p, n) == v.hdr.crc ? 0 : MK_ERR_CRC;
}

/* ============================================================ local ops */

static int local_read(void *impl, uint64_t file_pos, size_t len, mk_buf_t *out)
{
    mk_log_seg_t *seg = impl;
    if (file_pos > seg->st.size || len > seg->st.size - file_pos)
        return MK_ERR_RANGE;
    if (len == 0)
        return 0;
    if (!mk_buf_reserve(out, len))
        return MK_ERR_NOMEM;
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc;
    rc = mk_log_file_read(seg->fd, out->data + out->len, len, file_pos);
    mk_log_seg_files_put(seg);
    if (rc)
        return rc;
    out->len += len;
    return 0;
}

static uint64_t local_size(void *impl) { return ((mk_log_seg_t *)impl)->st.size; }

static void seg_files_close_locked(mk_log_seg_t *seg);
static pthread_mutex_t fdc_lock = PTHREAD_MUTEX_INITIALIZER;

static void local_close(void *impl)
{
    pthread_mutex_lock(&fdc_lock);
    seg_files_close_locked(impl);
    pthread_mutex_unlock(&fdc_lock);
}

static const mk_log_seg_ops_t local_ops = {
    .kind = "local",
    .read = local_read,
    .size = local_size,
    .close = local_close,
};

/* ============================================================ open/close */

static const char *const seg_exts[] = {".log", ".index", ".timeindex"};

static int seg_path(const mk_log_seg_t *seg, const char *ext, const char *suffix, char *buf,
                    size_t cap)
{
    int n = snprintf(buf, cap, "%s%s%s%s", seg->stem, ext, seg->sfx ? seg->sfx : "", suffix ? suffix : "");
    return (n < 0 || (size_t)n >= cap) ? MK_ERR_TOO_LARGE : 0;
}

/* ====================================================== descriptor cache */

static mk_log_seg_t *fdc_head, *fdc_tail; /* most recently used first */
static size_t fdc_nfds;        /* descriptors held by listed segments */
static size_t fdc_limit = MK_LOG_MAX_OPEN_FILES_DEFAULT;
static uint64_t fdc_reopens, fdc_evictions, fdc_emfile;

static void fdc_unlink_locked(mk_log_seg_t *seg)
{
    if (!seg->listed)
        return;
    if (seg->lru_prev)
        seg->lru_prev->lru_next = seg->lru_next;
    else
        fdc_head = seg->lru_next;
    if (seg->lru_next)
        seg->lru_next->lru_prev = seg->lru_prev;
    else
        fdc_tail = seg->lru_prev;
    seg->lru_prev = seg->lru_next = NULL;
    seg->listed = false;
}

static void fdc_push_head_locked(mk_log_seg_t *seg)
{
    fdc_unlink_locked(seg);
    seg->lru_next = fdc_head;
    if (fdc_head)
        fdc_head->lru_prev = seg;
    fdc_head = seg;
    if (!fdc_tail)
        fdc_tail = seg;
    seg->listed = true;
}

/* Closes whatever of the three files is open and leaves the list. */
static void seg_files_close_locked(mk_log_seg_t *seg)
{
    int *fds[] = {&seg->fd, &seg->idx_fd, &seg->tidx_fd};
    for (size_t i = 0; i < MK_ARRAY_LEN(fds); i++) {
        if (*fds[i] >= 0) {
            close(*fds[i]);
            if (seg->listed)
                fdc_nfds--;
        }
        *fds[i] = -1;
    }
    fdc_unlink_locked(seg);
}

/* Evicts unpinned segments from the cold end until need more descriptors
 * fit under the bound (all of them when all); keep is spared.  Returns how
 * many segments were closed. */
static size_t fdc_evict_locked(size_t need, const mk_log_seg_t *keep, bool all)
{
    size_t n = 0;
    mk_log_seg_t *seg = fdc_tail;
    while (seg && (all || fdc_nfds + need > fdc_limit)) {
        mk_log_seg_t *prev = seg->lru_prev;
        if (seg != keep && seg->pins == 0) {
            seg_files_close_locked(seg);
            fdc_evictions++;
            n++;
        }
        seg = prev;
    }
    return n;
}

/* Opens one of the segment's files; *missing says it had to be created.
 * EMFILE/ENFILE empties the cache of unpinned segments and tries again once:
 * descriptors held elsewhere (connections, SQLite) count against the same
 * limit.  Lock held. */
static int seg_open_file(mk_log_seg_t *seg, const char *ext, bool create, int *fd, bool *missing)
{
    char path[PATH_MAX];
    int rc = seg_path(seg, ext, NULL, path, sizeof(path));
    if (rc)
        return rc;
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
    for (int attempt = 0;; attempt++) {
        *fd = open(path, flags, 0644);
        if (*fd < 0 && errno == ENOENT && missing) {
            *missing = true;
            *fd = open(path, flags | O_CREAT, 0644);
        }
        if (*fd >= 0 || (errno != EMFILE && errno != ENFILE) || attempt > 0)
            break;
        if (fdc_evict_locked(0, seg, true) == 0)
            break;
    }
    if (*fd < 0) {
        int e = errno;
        if (e == EMFILE || e == ENFILE) {
            fdc_emfile++;
            mk_error("log: open %s: too many open files (%s; %zu held by the segment cache, bound %zu: "
                     "raise ulimit -n or lower minikora.log.max.open.files)",
                     path, e == EMFILE ? "EMFILE" : "ENFILE", fdc_nfds, fdc_limit);
            errno = e;
            return MK_ERR_NOFILES;
        }
        mk_error("log: open %s: %s", path, strerror(e));
        errno = e;
        return MK_ERR_IO;
    }
    return 0;
}

/* Opens the three files (create: new and empty) and lists the segment as
 * most recently used, after making room.  Lock held; seg's files closed. */
static int seg_files_open_locked(mk_log_seg_t *seg, bool create, bool *idx_missing)
{
    fdc_evict_locked(MK_ARRAY_LEN(seg_exts), seg, false);
    int *fds[] = {&seg->fd, &seg->idx_fd, &seg->tidx_fd};
    int rc = 0;
    for (size_t i = 0; i < MK_ARRAY_LEN(seg_exts) && !rc; i++)
        rc = seg_open_file(seg, seg_exts[i], create, fds[i], i ? idx_missing : NULL);
    if (rc) {
        seg_files_close_locked(seg);
        return rc;
    }
    fdc_nfds += MK_ARRAY_LEN(seg_exts);
    fdc_push_head_locked(seg);
    return 0;
}

int mk_log_seg_files_get(mk_log_seg_t *seg)
{
    int rc = 0;
    pthread_mutex_lock(&fdc_lock);
    if (seg->fd < 0) {
        bool missing = false; /* a vanished index is recreated empty; recovery rebuilds it */
        rc = seg_files_open_locked(seg, false, &missing);
        if (!rc)
            fdc_reopens++;
    } else if (fdc_head != seg) {
        fdc_push_head_locked(seg);
    }
    if (!rc)
        seg->pins++;
    pthread_mutex_unlock(&fdc_lock);
    return rc;
}

void mk_log_seg_files_put(mk_log_seg_t *seg)
{
    pthread_mutex_lock(&fdc_lock);
    assert(seg->pins > 0);
    seg->pins--;
    pthread_mutex_unlock(&fdc_lock);
}

/* Out of descriptors elsewhere: closes every unpinned segment's files.
 * Returns whether any were closed.  Any thread. */
bool mk_log_seg_files_shed(void)
{
    pthread_mutex_lock(&fdc_lock);
    size_t n = fdc_evict_locked(0, NULL, true);
    pthread_mutex_unlock(&fdc_lock);
    return n > 0;
}

/* Sets the bound (log.h); a lower one takes effect at the next open. */
void mk_log_set_max_open_files(size_t n)
{
    pthread_mutex_lock(&fdc_lock);
    fdc_limit = n < 3 * 4 ? 3 * 4 : n;
    pthread_mutex_unlock(&fdc_lock);
}

void mk_log_open_files_stats(mk_log_open_files_stats_t *out)
{
    pthread_mutex_lock(&fdc_lock);
    out->open = fdc_nfds;
    out->limit = fdc_limit;
    out->reopens = fdc_reopens;
    out->evictions = fdc_evictions;
    out->emfile = fdc_emfile;
    pthread_mutex_unlock(&fdc_lock);
}

static void seg_state_reset(mk_log_seg_t *seg)
{
    memset(&seg->st, 0, sizeof(seg->st));
    seg->st.next_offset = seg->base_offset;
    seg->st.max_ts = -1;
    seg->st.max_ts_base = -1;
    seg->st.max_ts_last = -1;
    seg->st.roll_base_ms = -1;
}

/* Opens or creates base's three files; *out owns the new segment. */
int mk_log_seg_open(const char *dir, int64_t base, bool create, mk_log_seg_t **out)
{
    return mk_log_seg_open_sfx(dir, base, NULL, create, out);
}

/* The same with a suffix after each file name (the cleaner's output). */
int mk_log_seg_open_sfx(const char *dir, int64_t base, const char *sfx, bool create, mk_log_seg_t **out)
{
    *out = NULL;
    char stem[PATH_MAX];
    int n = snprintf(stem, sizeof(stem), "%s/%020" PRId64, dir, base);
    if (n < 0 || (size_t)n + 32 >= sizeof(stem))
        return MK_ERR_TOO_LARGE;
    mk_log_seg_t *seg = mk_calloc(1, sizeof(*seg));
    if (!seg)
        return MK_ERR_NOMEM;
    seg->fd = seg->idx_fd = seg->tidx_fd = -1;
    seg->base_offset = base;
    seg->sfx = sfx;
    seg->ops = &local_ops;
    seg->impl = seg;
    seg_state_reset(seg);
    seg->stem = mk_strdup(stem);
    if (!seg->stem) {
        mk_free(seg);
        return MK_ERR_NOMEM;
    }
    bool idx_missing = false;
    pthread_mutex_lock(&fdc_lock);
    int rc = seg_files_open_locked(seg, create, &idx_missing);
    pthread_mutex_unlock(&fdc_lock);
    if (rc) {
        mk_log_seg_close(seg);
        return rc;
    }
    seg->idx_missing = idx_missing && !create;
    seg->dirty = create;
    *out = seg;
    return 0;
}

/* The three files renamed to the suffix sfx, the .log last (log_int.h). */
int mk_log_seg_rename(mk_log_seg_t *seg, const char *sfx)
{
    static const char *const order[] = {".index", ".timeindex", ".log"};
    for (size_t i = 0; i < MK_ARRAY_LEN(order); i++) {
        char from[PATH_MAX], to[PATH_MAX];
        int n = snprintf(to, sizeof(to), "%s%s%s", seg->stem, order[i], sfx ? sfx : "");
        if (seg_path(seg, order[i], NULL, from, sizeof(from)) || n < 0 || (size_t)n >= sizeof(to))
            return MK_ERR_TOO_LARGE;
        if (rename(from, to) != 0) {
            mk_error("log: rename %s to %s: %s", from, to, strerror(errno));
            return MK_ERR_IO;
        }
    }
    seg->sfx = sfx;
    return 0;
}

/* Closes the files through the ops table and frees seg. */
void mk_log_seg_close(mk_log_seg_t *seg)
{
    if (!seg)
        return;
    seg->ops->close(seg->impl);
    mk_free(seg->idx);
    mk_free(seg->tidx);
    mk_free(seg->stem);
    mk_free(seg);
}

static void unlink_cb(uv_fs_t *req)
{
    if (req->result < 0 && req->result != UV_ENOENT)
        mk_warn("log: unlink %s: %s", req->path, uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    mk_free(req);
}

/* Renames seg's files to *.deleted, frees seg, unlinks them (threadpool
 * when loop is set).  Loop thread. */
void mk_log_seg_delete(mk_log_seg_t *seg, struct uv_loop_s *loop)
{
    char path[PATH_MAX], gone[PATH_MAX];
    char gones[MK_ARRAY_LEN(seg_exts)][PATH_MAX];
    size_t ngone = 0;
    for (size_t i = 0; i < MK_ARRAY_LEN(seg_exts); i++) {
        if (seg_path(seg, seg_exts[i], NULL, path, sizeof(path)) ||
            seg_path(seg, seg_exts[i], ".deleted", gone, sizeof(gone)))
            continue;
        if (rename(path, gone) == 0) {
            memcpy(gones[ngone++], gone, sizeof(gone));
        } else if (errno != ENOENT && unlink(path) != 0 && errno != ENOENT) {
            mk_warn("log: cannot remove %s: %s", path, strerror(errno));
        }
    }
    mk_log_seg_close(seg);
    /* Unlinking a large file can take a while on some filesystems; the
     * renamed files are private to us, so the threadpool may take its time
     * (leftovers are removed by the next open). */
    for (size_t i = 0; i < ngone; i++) {
        if (loop) {
            uv_fs_t *req = mk_malloc(sizeof(*req));
            if (req && uv_fs_unlink(loop, req, gones[i], unlink_cb) == 0)
                continue;
            mk_free(req);
        }
        if (unlink(gones[i]) != 0 && errno != ENOENT)
            mk_warn("log: unlink %s: %s", gones[i], strerror(errno));
    }
}

/* Blocking fsync of the three files: close path and no-loop flushes only. */
int mk_log_seg_sync(mk_log_seg_t *seg)
{
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc == MK_ERR_NOFILES ? rc : MK_ERR_IO;
    int fds[] = {seg->fd, seg->idx_fd, seg->tidx_fd};
    for (size_t i = 0; i < MK_ARRAY_LEN(fds); i++) {
        if (fds[i] >= 0 && fsync(fds[i]) != 0) {
            mk_error("log: fsync %s: %s", seg->stem, strerror(errno));
            rc = MK_ERR_IO;
        }
    }
    mk_log_seg_files_put(seg);
    return rc;
}

/* ============================================================== indexes */

static int idx_reserve(mk_log_seg_t *seg, size_t n)
{
    if (n <= seg->idx_cap)
        return 0;
    size_t cap = seg->idx_cap ? seg->idx_cap : 16;
    while (cap < n)
        cap *= 2;
    mk_log_idx_entry_t *p = mk_realloc(seg->idx, cap * sizeof(*p));
    if (!p)
        return MK_ERR_NOMEM;
    seg->idx = p;
    seg->idx_cap = cap;
    return 0;
}

static int tidx_reserve(mk_log_seg_t *seg, size_t n)
{
    if (n <= seg->tidx_cap)
        return 0;
    size_t cap = seg->tidx_cap ? seg->tidx_cap : 16;
    while (cap < n)
        cap *= 2;
    mk_log_tidx_entry_t *p = mk_realloc(seg->tidx, cap * sizeof(*p));
    if (!p)
        return MK_ERR_NOMEM;
    seg->tidx = p;
    seg->tidx_cap = cap;
    return 0;
}

static int64_t tidx_last_ts(const mk_log_seg_t *seg)
{
    return seg->st.ntidx ? seg->tidx[seg->st.ntidx - 1].ts : -1;
}

/* Applies the index rule (file header) to a batch placed at pos, in memory
 * only, and advances the offsets and timestamps past it (not st->size: the
 * callers own that, the recovery scanner reads beyond it). */
static int seg_note_batch(mk_log_seg_t *seg, const mk_batch_view_t *h, uint64_t pos,
                          int32_t interval)
{
    mk_log_seg_state_t *st = &seg->st;
    if (pos > 0 && st->bytes_since_index >= (uint64_t)interval) {
        if (st->max_ts > tidx_last_ts(seg)) {
            if (tidx_reserve(seg, st->ntidx + 1))
                return MK_ERR_NOMEM;
            seg->tidx[st->ntidx].ts = st->max_ts;
            seg->tidx[st->ntidx].rel = (uint32_t)(st->max_ts_last - seg->base_offset);
            st->ntidx++;
        }
        if (idx_reserve(seg, st->nidx + 1))
            return MK_ERR_NOMEM;
        seg->idx[st->nidx].rel = (uint32_t)(h->hdr.baseOffset - seg->base_offset);
        seg->idx[st->nidx].pos = (uint32_t)pos;
        st->nidx++;
        st->bytes_since_index = 0;
    }
    st->bytes_since_index += h->size;
    int64_t last = h->hdr.baseOffset + h->hdr.lastOffsetDelta;
    if (h->hdr.maxTimestamp > st->max_ts) {
        st->max_ts = h->hdr.maxTimestamp;
        st->max_ts_base = h->hdr.baseOffset;
        st->max_ts_last = last;
    }
    st->next_offset = last + 1;
    return 0;
}

/* Writes index entries [from, nidx) and [tfrom, ntidx) to their files. */
static int seg_write_index(mk_log_seg_t *seg, size_t from, size_t tfrom)
{
    mk_buf_t b;
    mk_buf_init(&b);
    for (size_t i = from; i < seg->st.nidx; i++) {
        mk_buf_put_u32(&b, seg->idx[i].rel);
        mk_buf_put_u32(&b, seg->idx[i].pos);
    }
    int rc = mk_buf_ok(&b) ? 0 : MK_ERR_NOMEM;
    if (!rc && b.len)
        rc = mk_log_file_write(seg->idx_fd, b.data, b.len, (uint64_t)from * MK_LOG_IDX_ENTRY);
    mk_buf_reset(&b);
    for (size_t i = tfrom; !rc && i < seg->st.ntidx; i++) {
        mk_buf_put_i64(&b, seg->tidx[i].ts);
        mk_buf_put_u32(&b, seg->tidx[i].rel);
    }
    if (!rc && !mk_buf_ok(&b))
        rc = MK_ERR_NOMEM;
    if (!rc && b.len)
        rc = mk_log_file_write(seg->tidx_fd, b.data, b.len, (uint64_t)tfrom * MK_LOG_TIDX_ENTRY);
    mk_buf_free(&b);
    return rc;
}

/* Cuts the three files back to what state st describes. */
static int seg_truncate_files(mk_log_seg_t *seg, const mk_log_seg_state_t *st)
{
    int rc = file_truncate(seg->fd, st->size);
    if (!rc)
        rc = file_truncate(seg->idx_fd, (uint64_t)st->nidx * MK_LOG_IDX_ENTRY);
    if (!rc)
        rc = file_truncate(seg->tidx_fd, (uint64_t)st->ntidx * MK_LOG_TIDX_ENTRY);
    return rc;
}

/* Offset index binary search: a position at or before offset's batch. */
uint64_t mk_log_seg_lookup(const mk_log_seg_t *seg, int64_t offset)
{
    if (offset < seg->base_offset)
        return 0;
    size_t lo = 0, hi = seg->st.nidx; /* first entry with start > offset */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg->base_offset + (int64_t)seg->idx[mid].rel <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? seg->idx[lo - 1].pos : 0;
}

/* Time index binary search: a position before which every batch has
 * maxTimestamp < ts. */
uint64_t mk_log_seg_time_lookup(const mk_log_seg_t *seg, int64_t ts)
{
    size_t lo = 0, hi = seg->st.ntidx; /* first entry with ts >= target */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (seg->tidx[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    /* Every batch up to the one ending at this entry's offset is older. */
    return mk_log_seg_lookup(seg, seg->base_offset + (int64_t)seg->tidx[lo - 1].rel);
}

/* ============================================================== scanner */

/* Starts a scan at pos; the scanner owns its window buffer. */
void mk_log_scan_init(mk_log_scan_t *s, mk_log_seg_t *seg, uint64_t pos, bool body)
{
    s->seg = seg;
    mk_buf_init(&s->win);
    s->win_pos = 0;
    s->pos = pos;
    s->end = seg->ops->size(seg->impl);
    s->body = body;
}

/* Frees the scanner's window. */
void mk_log_scan_free(mk_log_scan_t *s) { mk_buf_free(&s->win); }

/* Makes [pos, pos + need) available in the window. */
static int scan_fill(mk_log_scan_t *s, size_t need)
{
    if (s->pos >= s->win_pos && s->pos - s->win_pos <= s->win.len &&
        need <= s->win.len - (s->pos - s->win_pos))
        return 0;
    uint64_t left = s->end - s->pos;
    if (need > left)
        return MK_ERR_TRUNCATED;
    size_t n = MK_MAX(need, s->body ? SCAN_BODY_WINDOW : SCAN_HEADER_WINDOW);
    if (n > left)
        n = (size_t)left;
    mk_buf_reset(&s->win);
    s->win_pos = s->pos;
    return s->seg->ops->read(s->seg->impl, s->pos, n, &s->win);
}

/* Next batch header (and body when asked): 1, 0 at end, or an error. */
int mk_log_scan_next(mk_log_scan_t *s, mk_batch_view_t *h, const uint8_t **batch)
{
    if (s->pos >= s->end)
        return 0;
    int rc = scan_fill(s, MK_BATCH_HEADER_SIZE);
    if (rc)
        return rc;
    const uint8_t *p = s->win.data + (s->pos - s->win_pos);
    rc = mk_log_view_parse(p, MK_BATCH_HEADER_SIZE, h);
    if (rc)
        return rc;
    if (h->size > s->end - s->pos)
        return MK_ERR_TRUNCATED;
    if (s->body) {
        rc = scan_fill(s, h->size);
        if (rc)
            return rc;
        *batch = s->win.data + (s->pos - s->win_pos);
    } else if (batch) {
        *batch = NULL;
    }
    h->pos = s->pos;
    s->pos += h->size;
    return 1;
}

/* ============================================================= recovery */

static int64_t stat_mtime_ms(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
}

/* Reads and sanity-checks both index files.  1 = inconsistent. */
static int seg_load_index(mk_log_seg_t *seg)
{
    struct stat isb, tsb;
    if (fstat(seg->idx_fd, &isb) != 0 || fstat(seg->tidx_fd, &tsb) != 0)
        return MK_ERR_IO;
    uint64_t isize = (uint64_t)isb.st_size, tsize = (uint64_t)tsb.st_size;
    if (isize % MK_LOG_IDX_ENTRY || tsize % MK_LOG_TIDX_ENTRY)
        return 1;
    size_t n = (size_t)(isize / MK_LOG_IDX_ENTRY), tn = (size_t)(tsize / MK_LOG_TIDX_ENTRY);
    /* An entry per batch at most: bound what we allocate by the data. */
    uint64_t max_entries = seg->st.size / MK_BATCH_HEADER_SIZE + 1;
    if (n > max_entries || tn > max_entries)
        return 1;
    if (idx_reserve(seg, n) || tidx_reserve(seg, tn))
        return MK_ERR_NOMEM;

    mk_buf_t b;
    mk_buf_init(&b);
    int rc = 0;
    if (!mk_buf_reserve(&b, (size_t)MK_MAX(isize, tsize) + 1))
        rc = MK_ERR_NOMEM;
    if (!rc && isize)
        rc = mk_log_file_read(seg->idx_fd, b.data, (size_t)isize, 0);
    if (rc)
        goto out;
    mk_reader_t r;
    mk_rd_init(&r, b.data, (size_t)isize);
    for (size_t i = 0; i < n; i++) {
        uint32_t rel = mk_rd_u32(&r), pos = mk_rd_u32(&r);
        if (!mk_rd_ok(&r) || rel > INT32_MAX || (uint64_t)pos + MK_BATCH_HEADER_SIZE > seg->st.size ||
            pos == 0 || (i > 0 && (rel <= seg->idx[i - 1].rel || pos <= seg->idx[i - 1].pos))) {
            rc = 1;
            goto out;
        }
        seg->idx[i].rel = rel;
        seg->idx[i].pos = pos;
    }
    if (tsize)
        rc = mk_log_file_read(seg->tidx_fd, b.data, (size_t)tsize, 0);
    if (rc)
        goto out;
    mk_rd_init(&r, b.data, (size_t)tsize);
    for (size_t i = 0; i < tn; i++) {
        int64_t ts = mk_rd_i64(&r);
        uint32_t rel = mk_rd_u32(&r);
        if (!mk_rd_ok(&r) || rel > INT32_MAX || ts < 0 ||
            (i > 0 && (ts <= seg->tidx[i - 1].ts || rel < seg->tidx[i - 1].rel))) {
            rc = 1;
            goto out;
        }
        seg->tidx[i].ts = ts;
        seg->tidx[i].rel = rel;
    }
    seg->st.nidx = n;
    seg->st.ntidx = tn;
out:
    mk_buf_free(&b);
    if (rc == MK_ERR_TRUNCATED) /* the file shrank under us */
        rc = 1;
    return rc;
}

/* Trusted load: indexes from disk, then a header-only scan of the tail
 * after the last offset entry, simulating the index rule.  1 = fall back to
 * the full recovery. */
static int seg_load_trusted(mk_log_seg_t *seg, int64_t limit, int32_t interval)
{
    if (seg->idx_missing)
        return 1;
    int rc = seg_load_index(seg);
    if (rc)
        return rc;
    mk_log_seg_state_t *st = &seg->st;
    bool has_entry = st->nidx > 0;
    uint64_t from = has_entry ? seg->idx[st->nidx - 1].pos : 0;
    int64_t expect = seg->base_offset + (has_entry ? seg->idx[st->nidx - 1].rel : 0);
    if (st->ntidx) {
        st->max_ts = seg->tidx[st->ntidx - 1].ts;
        st->max_ts_last = seg->base_offset + seg->tidx[st->ntidx - 1].rel;
        st->max_ts_base = -1; /* found on demand */
    }
    mk_log_scan_t s;
    mk_log_scan_init(&s, seg, from, false);
    mk_batch_view_t h;
    uint64_t since = 0;
    bool first = true;
    while ((rc = mk_log_scan_next(&s, &h, NULL)) == 1) {
        bool at_entry = first && has_entry;
        int64_t last = h.hdr.baseOffset + h.hdr.lastOffsetDelta;
        if ((at_entry && h.hdr.baseOffset != expect) || h.hdr.baseOffset < expect ||
            (!at_entry && h.pos > 0 && since >= (uint64_t)interval) || last >= limit ||
            last - seg->base_offset > INT32_MAX)
            break;
        if (h.hdr.maxTimestamp > st->max_ts) {
            st->max_ts = h.hdr.maxTimestamp;
            st->max_ts_base = h.hdr.baseOffset;
            st->max_ts_last = last;
        }
        since += h.size;
        expect = last + 1;
        first = false;
    }
    mk_log_scan_free(&s);
    if (rc < 0 && rc != MK_ERR_IO && rc != MK_ERR_NOMEM)
        rc = 1;
    if (rc)
        return rc;
    if (has_entry && first)
        return 1;
    st->next_offset = first ? seg->base_offset : expect;
    st->bytes_since_index = since;
    if (st->ntidx && st->max_ts_last >= st->next_offset)
        return 1;
    return 0;
}

/* Full recovery: validate every batch, truncate at the first bad one,
 * rebuild both indexes in memory and on disk. */
static int seg_recover_full(mk_log_seg_t *seg, uint64_t file_size, int64_t limit,
                            int32_t interval, mk_log_validate_cb validate, void *arg)
{
    mk_log_seg_state_t *st = &seg->st;
    st->size = file_size; /* the scanner's end */
    mk_log_scan_t s;
    mk_log_scan_init(&s, seg, 0, true);
    mk_batch_view_t h;
    const uint8_t *p;
    const char *why = NULL;
    uint64_t good = 0;
    int64_t next = seg->base_offset;
    int rc;
    while ((rc = mk_log_scan_next(&s, &h, &p)) == 1) {
        int64_t last = h.hdr.baseOffset + h.hdr.lastOffsetDelta;
        if (h.hdr.baseOffset < next) {
            why = "offsets not increasing";
        } else if (last >= limit) {
            why = "offset beyond the next segment";
        } else if (last - seg->base_offset > INT32_MAX || h.pos + h.size > UINT32_MAX) {
            why = "offset or position beyond the segment's range";
        } else if ((validate ? validate(p, h.size, arg) : mk_log_batch_check(p, h.size, NULL)) != 0) {
            why = "batch failed validation (crc)";
        }
        if (why)
            break;
        rc = seg_note_batch(seg, &h, h.pos, interval);
        if (rc)
            break;
        next = last + 1;
        good = h.pos + h.size;
    }
    mk_log_scan_free(&s);
    if (rc == MK_ERR_IO || rc == MK_ERR_NOMEM)
        return rc;
    if (rc == MK_ERR_TRUNCATED)
        why = "torn batch";
    else if (rc == MK_ERR_CORRUPT)
        why = "corrupt batch header";
    st->size = good;
    if (good < file_size) {
        mk_warn("log: %s.log: truncating %" PRIu64 " bytes at position %" PRIu64 " (%s)",
                seg->stem, file_size - good, good, why ? why : "trailing bytes");
        if (file_truncate(seg->fd, good))
            return MK_ERR_IO;
    }
    rc = file_truncate(seg->idx_fd, 0);
    if (!rc)
        rc = file_truncate(seg->tidx_fd, 0);
    if (!rc)
        rc = seg_write_index(seg, 0, 0);
    if (rc)
        return rc;
    seg->idx_missing = false;
    seg->dirty = true;
    return 0;
}

/* Loads seg's state from disk: trusted tail check or full validation
 * with truncation and index rebuild (log_int.h).  Blocking reads. */
static int seg_recover(mk_log_seg_t *seg, int64_t limit, bool trust, int32_t index_interval,
                       mk_log_validate_cb validate, void *arg, int64_t now_ms)
{
    struct stat sb;
    if (fstat(seg->fd, &sb) != 0)
        return MK_ERR_IO;
    uint64_t file_size = (uint64_t)sb.st_size;
    seg_state_reset(seg);
    int rc = 1;
    if (trust && file_size <= UINT32_MAX) {
        seg->st.size = file_size;
        rc = seg_load_trusted(seg, limit, index_interval);
        if (rc < 0)
            return rc;
        if (rc)
            mk_warn("log: %s: index %s, rebuilding", seg->stem,
                    seg->idx_missing ? "missing" : "inconsistent with the data");
        if (rc)
            seg_state_reset(seg);
    }
    if (rc) {
        rc = seg_recover_full(seg, file_size, limit, index_interval, validate, arg);
        if (rc)
            return rc;
    }
    seg->st.mtime_ms = stat_mtime_ms(&sb);
    if (seg->st.size > 0) {
        /* segment.ms counts from the first batch's timestamp, as in Kafka,
         * so that restarts do not postpone a roll forever. */
        uint8_t hdr[MK_BATCH_HEADER_SIZE];
        mk_batch_view_t h;
        seg->st.roll_base_ms = now_ms;
        if (mk_log_file_read(seg->fd, hdr, sizeof(hdr), 0) == 0 &&
            mk_log_view_parse(hdr, sizeof(hdr), &h) == 0 && h.hdr.maxTimestamp >= 0 && h.hdr.maxTimestamp <= now_ms)
            seg->st.roll_base_ms = h.hdr.maxTimestamp;
    }
    return 0;
}

int mk_log_seg_recover(mk_log_seg_t *seg, int64_t limit, bool trust, int32_t index_interval,
                       mk_log_validate_cb validate, void *arg, int64_t now_ms)
{
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc;
    rc = seg_recover(seg, limit, trust, index_interval, validate, arg, now_ms);
    mk_log_seg_files_put(seg);
    return rc;
}

/* =============================================================== append */

/* Appends whole batches and their index entries from the caller's views
 * (no header is parsed again); rolls back on error (MK_ERR_STATE if even
 * the rollback failed). */
static int seg_append(mk_log_seg_t *seg, const uint8_t *p, size_t len, const mk_batch_view_t *views,
                      size_t nviews, int32_t index_interval, int64_t now_ms, size_t skip)
{
    mk_log_seg_state_t saved = seg->st;
    int rc = skip < len ? mk_log_file_write(seg->fd, p + skip, len - skip, saved.size + skip) : 0;
    for (size_t i = 0; !rc && i < nviews; i++)
        rc = seg_note_batch(seg, &views[i], saved.size + views[i].pos, index_interval);
    seg->st.size = saved.size + len;
    if (!rc)
        rc = seg_write_index(seg, saved.nidx, saved.ntidx);
    if (rc) {
        seg->st = saved;
        seg->dirty = true;
        if (seg_truncate_files(seg, &saved)) {
            mk_error("log: %s: cannot roll back a failed append: %s", seg->stem, strerror(errno));
            return MK_ERR_STATE;
        }
        return rc;
    }
    if (seg->st.roll_base_ms < 0)
        seg->st.roll_base_ms = now_ms;
    seg->st.mtime_ms = now_ms;
    seg->dirty = true;
    return 0;
}

int mk_log_seg_append(mk_log_seg_t *seg, const uint8_t *p, size_t len, const mk_batch_view_t *views,
                      size_t nviews, int32_t index_interval, int64_t now_ms, size_t skip)
{
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc;
    rc = seg_append(seg, p, len, views, nviews, index_interval, now_ms, skip);
    mk_log_seg_files_put(seg);
    return rc;
}

int mk_log_seg_prewrite(mk_log_seg_t *seg, const uint8_t *p, size_t len, uint64_t pos)
{
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc;
    rc = mk_log_file_write(seg->fd, p, len, pos);
    mk_log_seg_files_put(seg);
    return rc;
}

static int seg_truncate(mk_log_seg_t *seg, int64_t offset, int32_t index_interval, int64_t now_ms);

/* Cuts the segment before the batch holding offset, reloads its state. */
int mk_log_seg_truncate(mk_log_seg_t *seg, int64_t offset, int32_t index_interval,
                        int64_t now_ms)
{
    int rc = mk_log_seg_files_get(seg);
    if (rc)
        return rc;
    rc = seg_truncate(seg, offset, index_interval, now_ms);
    mk_log_seg_files_put(seg);
    return rc;
}

static int seg_truncate(mk_log_seg_t *seg, int64_t offset, int32_t index_interval, int64_t now_ms)
{
    mk_log_scan_t s;
    mk_log_scan_init(&s, seg, mk_log_seg_lookup(seg, offset), false);
    mk_batch_view_t h;
    int rc;
    while ((rc = mk_log_scan_next(&s, &h, NULL)) == 1) {
        if (h.hdr.baseOffset + h.hdr.lastOffsetDelta >= offset)
            break;
    }
    mk_log_scan_free(&s);
    if (rc == 0)
        return 0; /* nothing at or above offset */
    if (rc < 0)
        return (rc == MK_ERR_IO || rc == MK_ERR_NOMEM) ? rc : MK_ERR_CORRUPT;
    mk_log_seg_state_t cut = seg->st;
    cut.size = h.pos;
    while (cut.nidx > 0 && seg->idx[cut.nidx - 1].pos >= h.pos)
        cut.nidx--;
    while (cut.ntidx > 0 &&
           seg->base_offset + (int64_t)seg->tidx[cut.ntidx - 1].rel >= h.hdr.baseOffset)
        cut.ntidx--;
    seg->dirty = true;
    rc = seg_truncate_files(seg, &cut);
    if (rc)
        return rc;
    return mk_log_seg_recover(seg, INT64_MAX, true, index_interval, NULL, NULL, now_ms);
}
