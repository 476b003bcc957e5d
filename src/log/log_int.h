/*
 * log_int.h -- internals shared by segment.c and log.c.  Nothing outside
 * src/log/ includes this file.
 *
 * A segment (mk_log_seg_t) is one base offset's trio of files plus the
 * in-memory copy of its two sparse indexes.  Everything that changes on
 * append lives in one mk_log_seg_state_t, so an append can snapshot it and
 * roll back with a struct copy (plus ftruncate of the files).
 */
#ifndef MK_LOG_INT_H
#define MK_LOG_INT_H

#include <dirent.h>
#include "batch/batch.h"
#include "log/log.h"

#include <sys/types.h>

#define MK_LOG_IDX_ENTRY 8    /* relativeOffset u32, position u32 */
#define MK_LOG_TIDX_ENTRY 12  /* timestamp i64, relativeOffset u32 */

typedef struct mk_log_idx_entry_s {
    uint32_t rel;              /* batch baseOffset - segment base */
    uint32_t pos;              /* file position of that batch */
} mk_log_idx_entry_t;

typedef struct mk_log_tidx_entry_s {
    int64_t ts;                /* largest maxTimestamp appended so far */
    uint32_t rel;              /* last offset of the batch holding it, - base */
} mk_log_tidx_entry_t;

/* Everything an append changes; copied to roll back. */
typedef struct mk_log_seg_state_s {
    uint64_t size;             /* bytes of batches; the .log file's length */
    int64_t next_offset;       /* after the last batch; base when empty */
    size_t nidx;               /* valid entries in idx[] (== .index entries) */
    size_t ntidx;              /* valid entries in tidx[] */
    uint64_t bytes_since_index;/* bytes appended since the last index entry */
    int64_t max_ts;            /* largest maxTimestamp in the segment, -1 none */
    int64_t max_ts_base;       /* baseOffset of that batch, -1 if not known yet */
    int64_t max_ts_last;       /* last offset of that batch */
    int64_t roll_base_ms;      /* segment.ms counts from here; -1 while empty */
    int64_t mtime_ms;          /* last append (or file mtime): retention fallback */
} mk_log_seg_state_t;

typedef struct mk_log_seg_s {
    int64_t base_offset;
    char *stem;                /* owned: "<dir>/<20-digit base>" */
    const char *sfx;           /* static suffix of its file names (".cleaned", ".swap"), or NULL */
    const mk_log_seg_ops_t *ops;
    void *impl;                /* ops' object; the segment itself for local */
    int fd, idx_fd, tidx_fd;   /* local files, -1 when closed or evicted from
                                * the descriptor cache: use them only between
                                * mk_log_seg_files_get() and _put() */
    struct mk_log_seg_s *lru_prev, *lru_next; /* descriptor cache list (segment.c) */
    int pins;                  /* get()s not yet put(): not evictable meanwhile */
    bool listed;               /* in the descriptor cache list (files open) */
    bool idx_missing;          /* index files were absent at open */
    bool dirty;                /* written since the last flush request */
    mk_log_idx_entry_t *idx;   /* owned, idx_cap slots */
    size_t idx_cap;
    mk_log_tidx_entry_t *tidx; /* owned, tidx_cap slots */
    size_t tidx_cap;
    mk_log_seg_state_t st;
} mk_log_seg_t;

/* --------------------------------------------------------------- batches */

/* Batch layout is batch/'s: the log reads headers as mk_batch_view_t
 * (position, size, parsed header) and rewrites them with the view writers.
 * What the log adds are its own requirements on a header: baseOffset >= 0,
 * lastOffsetDelta >= 0, a last offset that fits int64.  Returns 0 or
 * MK_ERR_CORRUPT. */
int mk_log_view_check(const mk_batch_view_t *v);

/* mk_batch_view_parse() of the header at p (avail bytes readable) plus
 * mk_log_view_check().  Does not check that the whole batch is present.
 * Returns 0, MK_ERR_TRUNCATED (avail < 61) or MK_ERR_CORRUPT (a legacy
 * magic included). */
int mk_log_view_parse(const uint8_t *p, size_t avail, mk_batch_view_t *v);

/* Default recovery validator: header sound, size == n, CRC32C matches.
 * Returns 0, MK_ERR_CORRUPT, MK_ERR_TRUNCATED or MK_ERR_CRC. */
int mk_log_batch_check(const uint8_t *p, size_t n, void *arg);

/* ---------------------------------------------------- storage I/O gate (io.c) */

enum { MK_LOG_IO_WRITE = 0, MK_LOG_IO_READ = 1, MK_LOG_IO_FSYNC = 2, MK_LOG_IO_KINDS = 3 };

/* A log's place at its domain's gate (embedded in the log). */
typedef struct mk_log_io_slot_s {
    struct mk_log_io_slot_s *prev, *next;   /* the domain's logs */
    int32_t domain;            /* broker id; 0 untracked */
    uint64_t wait_ms[MK_LOG_IO_KINDS];      /* mono ms the held op of each kind first asked; 0 none */
    uint64_t touched_ms[MK_LOG_IO_KINDS];   /* its last ask */
    uint64_t flight_ms;        /* an fsync in flight on the threadpool since (mono ms); 0 none */
    bool flush_held;           /* an fsync waits at the gate: the gate retries it */
    void (*retry)(void *owner);/* re-requests the held fsync */
    void *owner;
} mk_log_io_slot_t;

/* Joins / leaves the domain (0: untracked, every call below lets it pass
 * and counts nothing).  Loop thread. */
void mk_log_io_attach(mk_log_io_slot_t *s, int32_t domain, void (*retry)(void *), void *owner);
void mk_log_io_detach(mk_log_io_slot_t *s);
/* Before an operation of kind: 0 = go (*t0_ns is its start), MK_ERR_AGAIN =
 * held (ask again later; the wake callback says when), MK_ERR_IO = an
 * injected EIO (counted as done and failed). */
int mk_log_io_begin(mk_log_io_slot_t *s, int kind, uint64_t *t0_ns);
/* After an operation that began: its latency (from its first ask) and
 * result are counted. */
void mk_log_io_end(mk_log_io_slot_t *s, int kind, uint64_t t0_ns, int rc);
/* A scan (a cursor, read on a worker thread) is about to open: 0, or
 * MK_ERR_AGAIN while the disk stalls, MK_ERR_IO when reads fail (counted).
 * A slow disk does not hold it (the scan's own reads are not delayed). */
int mk_log_io_scan(mk_log_io_slot_t *s);
/* The log failed (sticky MK_ERR_IO): the domain's directory goes offline. */
void mk_log_io_failed(mk_log_io_slot_t *s);

/* --------------------------------------------------------------- file I/O */

/* Whole-buffer pwrite/pread retrying EINTR and short transfers.  Write
 * returns 0 or MK_ERR_IO (also when the fault hook fires); read returns 0,
 * MK_ERR_TRUNCATED at end of file, or MK_ERR_IO. */
int mk_log_file_write(int fd, const void *p, size_t n, uint64_t off);
int mk_log_file_read(int fd, void *p, size_t n, uint64_t off);

/* Atomically replaces dir/name with the n bytes at p: written to
 * dir/name.tmp, renamed over dir/name.  With sync the temporary is fsynced
 * before the rename and the directory after it (blocks); without, a crash
 * may leave the new name with torn contents, so readers must validate.
 * Returns 0, MK_ERR_IO (errno says why; the fault hook counts the write) or
 * MK_ERR_TOO_LARGE. */
int mk_log_file_replace(const char *dir, const char *name, const void *p, size_t n, bool sync);

/* --------------------------------------------------------------- segments */

/* Opens the files of segment base in dir (creating them when create; a
 * stale .log is then emptied).  Loads nothing: call mk_log_seg_recover().
 * On success *out owns the segment.  Returns MK_ERR_IO, MK_ERR_NOMEM,
 * MK_ERR_TOO_LARGE (path too long). */
int mk_log_seg_open(const char *dir, int64_t base, bool create, mk_log_seg_t **out);

/* mk_log_seg_open() of the files named with suffix sfx (a static string:
 * ".cleaned" while the cleaner writes them). */
int mk_log_seg_open_sfx(const char *dir, int64_t base, const char *sfx, bool create, mk_log_seg_t **out);

/* Renames seg's three files from their current suffix to sfx (NULL: the
 * plain names), the .log last; the descriptors stay valid.  0 or
 * MK_ERR_IO (errno says why; files already renamed stay renamed). */
int mk_log_seg_rename(mk_log_seg_t *seg, const char *sfx);

/* Closes the files and frees seg. */
void mk_log_seg_close(mk_log_seg_t *seg);

/* The descriptor cache (segment.c): a segment's three files are open only
 * while it is in a process-wide LRU list bounded by
 * mk_log_set_max_open_files().  get() reopens them when they were evicted
 * and pins them: seg->fd, idx_fd and tidx_fd stay valid until the matching
 * put().  Any thread (one lock).  get() returns 0, MK_ERR_IO or
 * MK_ERR_NOFILES (EMFILE/ENFILE even after evicting). */
int mk_log_seg_files_get(mk_log_seg_t *seg);
void mk_log_seg_files_put(mk_log_seg_t *seg);

/* EMFILE/ENFILE met elsewhere in log/: closes the files of every unpinned
 * segment (they reopen on demand); true when any were closed. */
bool mk_log_seg_files_shed(void);
/* opendir() of a log directory, shedding cached segment descriptors on
 * EMFILE/ENFILE first (log.c): 0, MK_ERR_NOFILES or MK_ERR_IO. */
int mk_log_opendir(const char *dir, DIR **out);

/* Removes seg's files (renamed to *.deleted at once, unlinked through the
 * loop's threadpool when loop is set, else synchronously) and frees seg. */
void mk_log_seg_delete(mk_log_seg_t *seg, struct uv_loop_s *loop);

/* Loads the segment's state from its files.  With trust, the indexes are
 * read and sanity-checked and only the tail after the last index entry is
 * scanned (headers only); any inconsistency falls back to the full path.
 * The full path validates every batch (validate, or mk_log_batch_check),
 * checks that offsets increase and stay below limit (the next segment's
 * base), truncates the file at the first bad batch with a warning and
 * rewrites both indexes.  Returns 0, MK_ERR_IO or MK_ERR_NOMEM. */
int mk_log_seg_recover(mk_log_seg_t *seg, int64_t limit, bool trust, int32_t index_interval,
                       mk_log_validate_cb validate, void *arg, int64_t now_ms);

/* Writes len bytes of whole batches (offsets already final) at the end of
 * seg and records index entries.  views[0, nviews) describe exactly those
 * bytes (pos relative to p) and are trusted: no header is parsed again.
 * On error the files and state are rolled back.  Returns 0, MK_ERR_IO,
 * MK_ERR_NOMEM, or MK_ERR_STATE when the rollback failed too. */
/* Writes p at pos of the .log file (past its end: no state changes).
 * 0 or MK_ERR_IO. */
int mk_log_seg_prewrite(mk_log_seg_t *seg, const uint8_t *p, size_t len, uint64_t pos);
/* skip: the first bytes of p are in the file already (mk_log_seg_prewrite). */
int mk_log_seg_append(mk_log_seg_t *seg, const uint8_t *p, size_t len, const mk_batch_view_t *views,
                      size_t nviews, int32_t index_interval, int64_t now_ms, size_t skip);

/* Removes every batch whose last offset is >= offset and reloads the state.
 * Returns 0, MK_ERR_IO, MK_ERR_CORRUPT, MK_ERR_NOMEM. */
int mk_log_seg_truncate(mk_log_seg_t *seg, int64_t offset, int32_t index_interval,
                        int64_t now_ms);

/* fsyncs the three files now (blocking).  Returns 0 or MK_ERR_IO. */
int mk_log_seg_sync(mk_log_seg_t *seg);

/* File position from which to scan for offset: the largest index entry at
 * or below it, else 0. */
uint64_t mk_log_seg_lookup(const mk_log_seg_t *seg, int64_t offset);

/* File position from which to scan for the first batch with maxTimestamp
 * >= ts: every batch before it has a smaller maxTimestamp. */
uint64_t mk_log_seg_time_lookup(const mk_log_seg_t *seg, int64_t ts);

/* --------------------------------------------------------- leader epochs */

/* The checkpoint file in the partition directory (layout: epoch.c). */
#define MK_LOG_EPOCH_CHECKPOINT "leader-epoch-checkpoint"

typedef struct mk_log_epoch_s {
    int32_t epoch;             /* partitionLeaderEpoch, >= 0 */
    int64_t start_offset;      /* first offset written under it */
} mk_log_epoch_t;

/* Kafka's LeaderEpochFileCache, in memory (epoch.c).  Entries are sorted;
 * epochs and start offsets both strictly increase.  The log keeps every
 * start offset <= its end offset. */
typedef struct mk_log_epochs_s {
    const char *dir;           /* borrowed from the log: checkpoint and messages */
    mk_log_epoch_t *v;         /* owned, cap slots */
    size_t n, cap;
} mk_log_epochs_t;

void mk_log_epochs_init(mk_log_epochs_t *c, const char *dir);
void mk_log_epochs_free(mk_log_epochs_t *c);

/* The latest cached epoch, or -1 when the cache is empty. */
int32_t mk_log_epochs_latest(const mk_log_epochs_t *c);

/* Room for n more entries, so that as many assigns cannot fail.  0 or
 * MK_ERR_NOMEM. */
int mk_log_epochs_reserve(mk_log_epochs_t *c, size_t n);

/* Kafka's assign(epoch, start_offset), as appends call it for every batch:
 * nothing when epoch < 0, or when epoch is the latest one and start_offset
 * is not below its start; otherwise entries whose epoch >= epoch or start
 * offset >= start_offset are dropped from the end (a warning names them
 * unless the one dropped held no data) and the entry is added.
 * Returns 1 when the cache changed, 0, or MK_ERR_NOMEM (cache unchanged). */
int mk_log_epochs_assign(mk_log_epochs_t *c, int32_t epoch, int64_t start_offset);

/* Drops the entries whose start offset is >= end (truncation, recovery).
 * Returns true when the cache changed. */
bool mk_log_epochs_truncate_end(mk_log_epochs_t *c, int64_t end);

/* The log start offset moved to start: the latest entry at or below it is
 * kept with its start offset raised to start, older ones go (Kafka's
 * truncateFromStart).  Returns true when the cache changed. */
bool mk_log_epochs_truncate_start(mk_log_epochs_t *c, int64_t start);

/* Empties the cache; true when it held entries. */
bool mk_log_epochs_clear(mk_log_epochs_t *c);

/* Kafka's endOffsetFor (see mk_log_end_offset_for_epoch() in log.h);
 * log_end is the log end offset. */
void mk_log_epochs_end_offset(const mk_log_epochs_t *c, int32_t requested, int64_t log_end,
                              int32_t *epoch_out, int64_t *end_offset_out);

/* Replaces the cache with the checkpoint file's entries.  Returns 0,
 * MK_ERR_NOT_FOUND (no file), MK_ERR_CORRUPT (malformed: cache left
 * empty), MK_ERR_IO, MK_ERR_NOMEM, MK_ERR_TOO_LARGE (path). */
int mk_log_epochs_load(mk_log_epochs_t *c);

/* Writes the checkpoint file (mk_log_file_replace(), sync as given).
 * Returns 0, MK_ERR_IO, MK_ERR_NOMEM, MK_ERR_TOO_LARGE. */
int mk_log_epochs_save(const mk_log_epochs_t *c, bool sync);

/* --------------------------------------------------------------- scanner */

/* Walks the batches of a segment from a position, reading through the
 * segment's ops in windows, so callers never handle partial headers. */
typedef struct mk_log_scan_s {
    mk_log_seg_t *seg;
    mk_buf_t win;              /* owned window of the file */
    uint64_t win_pos;          /* file position of win.data[0] */
    uint64_t pos;              /* next batch */
    uint64_t end;              /* segment size at init */
    bool body;                 /* whole batches wanted, not just headers */
} mk_log_scan_t;

void mk_log_scan_init(mk_log_scan_t *s, mk_log_seg_t *seg, uint64_t pos, bool body);
/* Next batch: 1 with *h filled (h->pos is the file position; *batch points
 * at the whole batch, valid until the next call, when body), 0 at the end, MK_ERR_TRUNCATED or
 * MK_ERR_CORRUPT for a torn or bad batch (s->pos stays at it), MK_ERR_IO,
 * MK_ERR_NOMEM. */
int mk_log_scan_next(mk_log_scan_t *s, mk_batch_view_t *h, const uint8_t **batch);
void mk_log_scan_free(mk_log_scan_t *s);

/* ------------------------------------------------------------------- log */

typedef struct mk_log_clean_s mk_log_clean_t;

typedef struct mk_log_flush_s mk_log_flush_t;
typedef struct mk_log_flushq_s mk_log_flushq_t;

/* Flushes of one loop on the threadpool at a time (log.c, "the flush
 * queue"); the others wait without descriptors.  Each holds duplicates of
 * three files per dirty segment, the epoch checkpoint and the directory. */
#define MK_LOG_FLUSH_INFLIGHT 8

struct mk_log_s {
    char *dir;                 /* owned, no trailing slash */
    mk_log_config_t cfg;
    mk_log_seg_t **segs;       /* owned; sorted by base; last is active */
    size_t nsegs, segs_cap;
    int64_t start_offset;
    uint64_t size_bytes;
    int64_t max_ts;            /* cached over all segments, -1 none */
    int64_t max_ts_base;       /* -1 until resolved */
    int64_t max_ts_last;
    int64_t flushed_offset;    /* offsets below are known fsynced */
    int64_t unflushed;         /* offsets appended since the last flush request */
    int64_t last_flush_ms;
    bool dir_dirty;            /* entries created or removed since last flush */
    int io_err;                /* sticky: 0 or MK_ERR_IO */
    uint64_t wgen;             /* write generation: moves with every append, roll, truncation
                                * (a prewrite from an older one is void) */
    struct {                   /* the leader append in steps (mk_log_append_views_stepped) */
        const uint8_t *p;      /* its bytes (the caller's), NULL for none */
        size_t len;
        uint32_t sig;          /* CRC32C of its batches' lengths and CRCs */
        mk_log_prewrite_t pw;
    } lstage;
    mk_log_flush_t *flush;     /* in flight on the threadpool, or NULL */
    bool flush_again;          /* requested while one was in flight */
    mk_log_flushq_t *flushq;   /* the loop's flush queue it waits in (no descriptors
                                * held yet), or NULL (log.c, "flush") */
    mk_log_t *flushq_prev, *flushq_next; /* its neighbours in that queue */
    bool flush_retry;          /* a flush could not start (descriptors, memory):
                                * mk_log_tick() asks again */
    mk_log_epochs_t epochs;    /* leader-epoch cache (epoch.c) */
    bool epochs_unsynced;      /* checkpoint rewritten, fsync not yet requested */
    bool epochs_stale;         /* the last checkpoint write failed (file removed) */
    mk_log_segment_cb segment_cb;   /* segment events observer, or NULL */
    void *segment_arg;
    uint64_t id;               /* unique in the process (mk_log_id) */
    uint64_t truncations;      /* truncations since open (mk_log_truncations) */
    /* compaction (clean.c) */
    int64_t cleaned_to;        /* the cleaner checkpoint (Kafka's firstDirtyOffset): offsets
                                * below were compacted; a segment boundary; persisted */
    mk_log_clean_t *clean;     /* a cleaning in flight on the threadpool, or NULL */
    int64_t clean_horizon;     /* earliest delete horizon among kept tombstones, -1 none;
                                * 0 after open (unknown: one cleaning finds it) */
    int64_t last_clean_ms;     /* wall clock of the last cleaning swapped in, -1 never */
    uint64_t clean_runs;       /* cleanings swapped in since open */
    int64_t clean_failed_ms;   /* a cleaning failed then: retried a minute later */
    mk_log_io_slot_t io;       /* its place at its broker's storage I/O gate (io.c) */
    uint64_t flush_t0;         /* the in-flight fsync's gate start (ns) */
};

/* log.c helpers that clean.c uses (loop thread). */
void mk_log_int_refresh(mk_log_t *log);
size_t mk_log_int_find_seg(const mk_log_t *log, int64_t offset);
int64_t mk_log_int_seg_largest_ts(const mk_log_seg_t *seg);
/* A cursor over the first n segments only (n <= its segments). */
void mk_log_int_cursor_limit(mk_log_cursor_t *s, size_t n);

/* clean.c: open's recovery of an interrupted swap (*.cleaned removed,
 * *.swap completed), before the segments are listed; the checkpoint read
 * back; close and destroy detach a cleaning in flight. */
int mk_log_clean_recover_dir(const char *dir);
int64_t mk_log_clean_read_checkpoint(const char *dir);
int64_t mk_log_clean_open_horizon(const char *dir);
void mk_log_clean_detach(mk_log_t *log);

#endif /* MK_LOG_INT_H */
