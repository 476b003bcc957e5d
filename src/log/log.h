/*
 * log.h -- L2: one Kafka partition's log on disk (the only public header of
 * src/log/).
 *
 * A log is a directory of segments named by base offset (20 digits): the
 * record batches themselves (.log), a sparse offset index (.index) and a
 * sparse time index (.timeindex).  The index layouts are documented as
 * offset/size tables at the top of segment.c, the batch layout in
 * batch/batch.h (the log reads batches only as batch/'s mk_batch_view_t);
 * the log-level design (append, roll, recovery, flush, retention) at the
 * top of log.c.
 *
 * Threads: a mk_log_t belongs to one thread, the event loop that appends to
 * it (or any single thread when no loop is configured).  Every function
 * below runs on that thread; none blocks on fsync except mk_log_close()
 * (mk_log_close_async() is its non-blocking form).
 * fsync runs on libuv's threadpool and its completion comes back on the loop.
 * Without a loop, fsyncs happen in place: in mk_log_flush(), and for the
 * small leader-epoch checkpoint whenever the epoch cache changes.
 *
 * Errors: negative MK_ERR_* codes from base/base.h; 0 is success.
 */
#ifndef MK_LOG_H
#define MK_LOG_H

#include "base/base.h"
#include "batch/batch.h"

struct uv_loop_s;

/* ==================================================================== config */

/* Batch validator used by recovery: 0 when the batch [p, p+n) is sound.  The
 * batch module plugs its integrity check in here; without one the log checks
 * the v2 header and the CRC32C itself. */
typedef int (*mk_log_validate_cb)(const uint8_t *p, size_t n, void *arg);

/* Per-log configuration.  Names in comments are the broker-level Kafka
 * config (topic-level name in parentheses) and Kafka's default. */
typedef struct mk_log_config_s {
    int64_t segment_bytes;        /* log.segment.bytes (segment.bytes), 1073741824; 14..INT32_MAX */
    int64_t segment_ms;           /* log.roll.ms (segment.ms), 604800000 */
    int64_t retention_ms;         /* log.retention.ms (retention.ms), 604800000; -1 = infinite */
    int64_t retention_bytes;      /* log.retention.bytes (retention.bytes), -1 = infinite */
    int32_t index_interval_bytes; /* log.index.interval.bytes (index.interval.bytes), 4096 */
    int32_t segment_index_bytes;  /* log.index.size.max.bytes (segment.index.bytes), 10485760 */
    int64_t flush_messages;       /* log.flush.interval.messages (flush.messages), INT64_MAX = never */
    int64_t flush_ms;             /* log.flush.interval.ms (flush.ms), INT64_MAX = never */
    /* compaction (the cleaner: mk_log_clean_maybe) */
    bool compact;                 /* log.cleanup.policy (cleanup.policy) has compact, false */
    double min_cleanable_ratio;   /* log.cleaner.min.cleanable.ratio (min.cleanable.dirty.ratio), 0.5 */
    int64_t min_compaction_lag_ms;/* log.cleaner.min.compaction.lag.ms (min.compaction.lag.ms), 0 */
    int64_t max_compaction_lag_ms;/* log.cleaner.max.compaction.lag.ms (max.compaction.lag.ms), INT64_MAX */
    int64_t delete_retention_ms;  /* log.cleaner.delete.retention.ms (delete.retention.ms), 86400000 */
    struct uv_loop_s *loop;       /* fsyncs go to this loop's threadpool; NULL = synchronous
                                   * fsync in mk_log_flush(), none on segment roll */
    mk_log_validate_cb validate;  /* recovery validator; NULL = header + CRC32C check */
    void *validate_arg;
    int32_t io_domain;            /* the storage I/O gate's domain (the broker id, 1..);
                                   * 0 = untracked.  Fixed at open: mk_log_set_config()
                                   * keeps the log's own. */
} mk_log_config_t;

/* Fills cfg with Kafka's defaults (above), no loop and no validator. */
void mk_log_config_default(mk_log_config_t *cfg);

/* ================================================================ lifecycle */

typedef struct mk_log_s mk_log_t;

/* Opens (creating if needed, parents included) the log in directory dir and
 * recovers it: the active segment is scanned and validated batch by batch
 * and truncated at the first torn or corrupt batch (a warning is logged);
 * older segments are sanity-checked and a missing or inconsistent index is
 * rebuilt.  cfg is copied.  On success *out owns the log; free it with
 * mk_log_close() or mk_log_destroy().  Returns MK_ERR_INVALID for a bad
 * config, MK_ERR_IO, MK_ERR_NOMEM. */
int mk_log_open(const char *dir, const mk_log_config_t *cfg, mk_log_t **out);

/* Replaces the configuration (AlterConfigs).  Returns MK_ERR_INVALID and
 * keeps the old one when cfg is out of range.  Takes effect on the next
 * append / retain / tick. */
int mk_log_set_config(mk_log_t *log, const mk_log_config_t *cfg);

/* Shutdown path: fsyncs everything synchronously (blocks), leaves a clean
 * shutdown marker so the next open can skip the full scan, closes the files
 * and frees log.  An fsync still in flight on the threadpool completes on
 * its own (it owns duplicated descriptors).  Returns MK_ERR_IO if an fsync
 * failed now or earlier; log is freed in every case. */
int mk_log_close(mk_log_t *log);

/* Shutdown of thousands of logs: one syncfs(2) of the filesystem holding
 * dir instead of an fsync of every file and directory of every log (six
 * brokers with 10,000 partitions each hold 30,000 logs; their fsyncs took
 * minutes).  Call it after the last write of every log to be closed with
 * mk_log_close_synced(), which then writes the clean shutdown marker
 * without fsyncing (falling back to mk_log_close() for a log that must
 * write again or has failed).  Blocks.  0 or MK_ERR_IO (then close the logs
 * with mk_log_close()). */
int mk_log_syncfs(const char *dir);
int mk_log_close_synced(mk_log_t *log);

/* Called on the loop thread when an asynchronous close has finished: rc is
 * what mk_log_close() would have returned (0, or MK_ERR_IO if an fsync
 * failed now or earlier).  The log is already freed. */
typedef void (*mk_log_close_cb)(int rc, void *arg);

/* mk_log_close() without blocking the loop: the fsyncs and the closing of
 * the files run on loop's threadpool (uv_queue_work), then the clean
 * shutdown marker is written and log freed on the loop thread, and cb (may
 * be NULL) is called.  From this call on the caller must not touch log.
 *
 * Reopening the same directory while the close is in flight is allowed and
 * needs no waiting: the close keeps nothing the reopen needs (its
 * descriptors are its own; data written is already in the page cache).
 * The reopen merely finds no clean shutdown marker and fully validates
 * the active segment, and the close, seeing it was overtaken, does not
 * write a marker that would now be stale.
 *
 * Returns 0, or MK_ERR_INVALID (no loop) / MK_ERR_IO (the work could not
 * be queued): then nothing happened, log is still the caller's (close it
 * with mk_log_close()) and cb is never called.  Loop thread. */
int mk_log_close_async(mk_log_t *log, struct uv_loop_s *loop, mk_log_close_cb cb, void *arg);

/* Topic deletion: closes log without fsync, removes every file of the
 * directory and the directory itself, frees log.  With a loop configured the
 * directory is renamed away at once and its files are removed on the
 * threadpool.  Returns MK_ERR_IO if the directory could not be removed
 * completely (synchronous case); log is freed in every case. */
int mk_log_destroy(mk_log_t *log);

/* =================================================================== append */

typedef struct mk_log_append_info_s {
    int64_t first_offset;   /* baseOffset of the first appended batch */
    int64_t last_offset;    /* last offset of the last appended batch */
    int64_t end_offset;     /* log end offset after the append */
    int32_t batch_count;
    int64_t max_timestamp;  /* largest maxTimestamp among the batches, -1 if none */
} mk_log_append_info_t;

/* Leader append.  batches holds len bytes of whole v2 record batches that the
 * caller has already validated.  The log assigns offsets: each batch's
 * baseOffset and partitionLeaderEpoch (bytes not covered by the CRC) are
 * rewritten IN PLACE in the caller's buffer, even when the call fails.  The
 * bytes go to the page cache with pwrite(); fsync follows the flush policy.
 * On any error the log is left as it was.  The headers are parsed once
 * (one walk into views) and the call goes on as mk_log_append_views().
 * Returns MK_ERR_INVALID if the bytes are not whole v2 batches, MK_ERR_IO
 * (then the log may have gone into a failed state: every later append
 * returns MK_ERR_IO), MK_ERR_NOMEM.
 * now_ms is the wall clock (segment.ms roll, retention fallback). */
int mk_log_append(mk_log_t *log, uint8_t *batches, size_t len, int32_t leader_epoch,
                  int64_t now_ms, mk_log_append_info_t *info);

/* mk_log_append() for a caller that already parsed the batches, e.g. in
 * its validator pass (mk_batch_validate_view() per batch, or
 * mk_batch_views_parse()): views[0, nviews) describe batches exactly --
 * views[0].pos == 0, each view starting where the previous one ends, the
 * last ending at len -- and no header is parsed again (only the log's own
 * checks run on the views: non-negative offsets that fit).  Offsets and
 * the leader epoch are assigned through batch/'s view writers, so the
 * bytes and views[] are both rewritten in place (baseOffset,
 * partitionLeaderEpoch), even when the call fails after planning.  The
 * caller keeps ownership of both.  A caller that rewrites the
 * LogAppendTime first does it with mk_batch_view_set_log_append_time(),
 * so the views stay true.  Returns as mk_log_append(); views that do not
 * tile [0, len) are MK_ERR_INVALID. */
int mk_log_append_views(mk_log_t *log, uint8_t *batches, size_t len, mk_batch_view_t *views,
                        size_t nviews, int32_t leader_epoch, int64_t now_ms,
                        mk_log_append_info_t *info);

/* Follower append: like mk_log_append() but the batches keep the offsets
 * and leader epochs the leader gave them (and the epoch cache learns the
 * leader's epochs from them); the first baseOffset must be >= the log end
 * offset (else MK_ERR_INVALID: truncate first).  A gap is allowed.
 * batches is not modified. */
int mk_log_append_replica(mk_log_t *log, const uint8_t *batches, size_t len, int64_t now_ms,
                          mk_log_append_info_t *info);

/* A follower append in steps (repl/'s copies of large batches), so that no
 * loop turn writes more than a step: mk_log_prewrite() writes the next
 * at most max bytes of batches past the log's end, where nothing reads
 * them (a crash leaves a torn tail that recovery cuts, as after any
 * interrupted write); mk_log_append_replica_prewritten() then stores the
 * batches, writing only what was not prewritten, or all of it when the log
 * changed meanwhile (any append, truncation, roll).  Returns 1 when all of
 * batches is written, 0 when more is left, MK_ERR_AGAIN when the storage
 * gate holds writes, MK_ERR_UNSUPPORTED when the append would start a new
 * segment (append at once instead), or another error.  pw is the caller's,
 * zeroed before the first step; batches must stay the same bytes. */
#define MK_LOG_STEP_BYTES (128u << 10)  /* the step the callers use (repl/, partition/) */
typedef struct mk_log_prewrite_s {
    const void *seg;            /* the active segment it began in */
    uint64_t pos;               /* where the batches go in it */
    size_t done;                /* bytes written there */
    uint64_t wgen;              /* the log's write generation then */
} mk_log_prewrite_t;
int mk_log_prewrite(mk_log_t *log, mk_log_prewrite_t *pw, const uint8_t *batches, size_t len, size_t max);
int mk_log_append_replica_prewritten(mk_log_t *log, const uint8_t *batches, size_t len, int64_t now_ms,
                                     const mk_log_prewrite_t *pw, mk_log_append_info_t *info);

/* A leader append in steps (partition/'s large Produce): as
 * mk_log_append_views(), but batches of more than step bytes are first
 * written past the log's end, a step per call, and each such call returns
 * MK_ERR_AGAIN with *stepped set (nothing appended, no offset taken: call
 * again with the same bytes, as a parked Produce's retry does); the call
 * after the last step appends them without writing them again (their
 * offsets and epoch go in then).  The log remembers one such append (by
 * address, length and the batches' CRCs).  Steps voided by anything written
 * to the log in between are not started again: the next call appends at
 * once, so a partition that others write to meanwhile delays a large
 * append by one void at most. */
int mk_log_append_views_stepped(mk_log_t *log, uint8_t *batches, size_t len, mk_batch_view_t *views,
                                size_t nviews, int32_t leader_epoch, int64_t now_ms, size_t step, bool *stepped,
                                mk_log_append_info_t *info);

/* ===================================================================== read */

/* Appends to out whole batches, starting with the batch that contains
 * fetch_offset, while the total stays within max_bytes; with min_one_batch
 * the first batch is returned even when it alone is larger (Kafka fetch
 * semantics).  *next_offset_out is the offset after the last batch returned
 * (fetch_offset when none).  fetch_offset == log end offset returns no bytes
 * and 0.  Returns MK_ERR_RANGE when fetch_offset < start or > end offset,
 * MK_ERR_CORRUPT / MK_ERR_IO / MK_ERR_NOMEM; on error out is unchanged. */
int mk_log_read(mk_log_t *log, int64_t fetch_offset, size_t max_bytes, bool min_one_batch,
                mk_buf_t *out, int64_t *next_offset_out);

/* As mk_log_read() but stops before the first batch whose last offset is
 * >= max_offset (the high watermark or last stable offset for consumers). */
int mk_log_read_upto(mk_log_t *log, int64_t fetch_offset, int64_t max_offset, size_t max_bytes,
                     bool min_one_batch, mk_buf_t *out, int64_t *next_offset_out);

/* ================================================================== offsets */

/* First offset still readable (advanced by retention and DeleteRecords). */
int64_t mk_log_start_offset(const mk_log_t *log);
/* Log end offset: the next offset to assign. */
int64_t mk_log_end_offset(const mk_log_t *log);

/* The first batch at or above the start offset whose maxTimestamp >= ts:
 * its baseOffset in *offset and maxTimestamp in *timestamp.  The caller may
 * refine inside the batch (and clamp to the start offset).  MK_ERR_NOT_FOUND
 * if there is none. */
int mk_log_offset_for_time(mk_log_t *log, int64_t ts, int64_t *offset, int64_t *timestamp);

typedef struct mk_log_ts_s {
    int64_t timestamp;      /* the batch's maxTimestamp */
    int64_t base_offset;
    int64_t last_offset;
} mk_log_ts_t;

/* The (first) batch with the largest maxTimestamp in the log, from a cache
 * kept on append.  MK_ERR_NOT_FOUND if the log holds no timestamped batch. */
int mk_log_max_timestamp(mk_log_t *log, mk_log_ts_t *out);

/* ==================================================================== flush */

/* Requests an fsync of everything appended so far.  With a loop configured
 * the fsync runs on the threadpool and this returns at once (one flush in
 * flight per log; a request made meanwhile starts another when it ends;
 * at most MK_LOG_FLUSH_INFLIGHT started per loop, further logs wait in the
 * loop's queue without descriptors and their turn covers what was appended
 * until it comes); without a loop it fsyncs synchronously.  A flush that
 * cannot start (no descriptors, no memory) is retried by mk_log_tick().  A
 * failed fsync puts the log in the failed state (appends return
 * MK_ERR_IO).  Returns 0, or MK_ERR_IO. */
int mk_log_flush(mk_log_t *log);

/* Periodic housekeeping the owner calls about once a second: requests a
 * flush when flush.ms has passed with unflushed data, or when one could
 * not start. */
void mk_log_tick(mk_log_t *log, int64_t now_ms);

/* ================================================================ retention */

/* Deletes whole old segments: those entirely below the start offset, those
 * whose largest timestamp is older than now_ms - retention.ms, and the
 * oldest while the log exceeds retention.bytes; advances the start offset.
 * The active segment is deleted only by time and only when every segment
 * has expired: then the log rolls first (Kafka does the same).  Returns the
 * number of segments deleted, or a negative error. */
int mk_log_retain(mk_log_t *log, int64_t now_ms);

/* DeleteRecords: moves the start offset up to offset (<= end offset, else
 * MK_ERR_RANGE), persists it in the directory and deletes segments that
 * fall entirely below.  Lower offsets are a no-op. */
int mk_log_delete_records(mk_log_t *log, int64_t offset);
/* The same for a follower whose leader's log start moved (retention or
 * DeleteRecords there): the events name the cause "leader log start". */
int mk_log_start_follow(mk_log_t *log, int64_t offset);

/* Follower truncation: removes every batch whose last offset is >= offset
 * (a batch containing offset goes whole, as in Kafka), so the end offset
 * becomes <= offset, and the leader epochs that started there.  offset
 * below the start offset or the first segment empties the log (and the
 * epoch cache) and restarts it at offset.  offset >= end is a no-op. */
int mk_log_truncate_to(mk_log_t *log, int64_t offset);
/* A follower that is below the leader's log start (or a new replica of a
 * log whose head is gone): empties the log and the epoch cache and restarts
 * it at offset, whatever it held. */
int mk_log_truncate_fully(mk_log_t *log, int64_t offset);

/* ============================================================ leader epochs */

/* The leader-epoch cache (Kafka's LeaderEpochFileCache): for each leader
 * epoch that wrote to the log, the first offset written under it, kept in
 * the file leader-epoch-checkpoint beside the segments.  Both appends feed
 * it from the batches' partitionLeaderEpoch (a batch whose epoch differs
 * from the latest cached one starts an entry at its baseOffset; a lower
 * epoch first drops the cached entries it contradicts, as in Kafka); a
 * negative epoch is ignored.  mk_log_truncate_to() drops the entries that
 * start at or after the new end offset (all of them when the log restarts
 * empty); retention and DeleteRecords keep the latest entry at or below the
 * new start offset, raised to it, and drop the older ones.  Open drops the
 * entries at or past the end offset and rebuilds a missing file from the
 * batch headers. */

/* Kafka's endOffsetForEpoch, which OffsetForLeaderEpoch and follower
 * truncation use.  For the requested epoch:
 *   latest cached epoch            -> (epoch, log end offset)
 *   another cached epoch, or one   -> (largest cached epoch <= requested,
 *   between cached epochs              start offset of the next cached one)
 *   below the first cached epoch   -> (requested, first cached start offset)
 *   above the latest, negative, or
 *   nothing cached                 -> (-1, -1)  UNDEFINED_EPOCH(_OFFSET)
 * The "below the first" row is what Kafka's code answers (its doc comment
 * still says UNDEFINED): the older history is gone, so a follower truncates
 * to where the leader's begins, and a consumer is not reset needlessly.
 * Always returns 0.  O(log epochs). */
int mk_log_end_offset_for_epoch(mk_log_t *log, int32_t epoch, int32_t *epoch_out,
                                int64_t *end_offset_out);

/* The latest cached epoch, or -1. */
int32_t mk_log_latest_epoch(const mk_log_t *log);

/* A new leader records that epoch starts at the current log end offset,
 * before it appends (Kafka's leader does the same on taking over), and the
 * checkpoint is rewritten (fsynced by the next flush, not at once).  An epoch equal to the latest is a no-op; one that
 * began at the log end without data is replaced.  Such an empty epoch does
 * not survive a reopen (entries at the end offset are dropped).  Returns 0,
 * MK_ERR_INVALID when epoch is negative or below the latest cached one, the
 * sticky MK_ERR_IO of a failed log, MK_ERR_NOMEM.  A failed checkpoint
 * write is logged and retried by the next flush, not returned. */
int mk_log_epoch_begin(mk_log_t *log, int32_t epoch);

/* ==================================================================== stats */

typedef struct mk_log_stats_s {
    uint64_t size_bytes;      /* bytes of batches in all segments */
    int32_t segment_count;
    int64_t start_offset;
    int64_t end_offset;
    int64_t flushed_offset;   /* offsets below this are known fsynced */
    bool flush_in_flight;     /* started, or waiting in the loop's queue */
    int io_error;             /* 0, or the sticky error of a failed log */
} mk_log_stats_t;

void mk_log_stats(const mk_log_t *log, mk_log_stats_t *out);
/* The directory the log lives in; owned by log. */
const char *mk_log_dir(const mk_log_t *log);

/* ============================================================ segment ops */

/* How a segment's bytes are read.  Every segment read goes through this
 * table, so a segment that lives elsewhere (tiered storage, S3) can be
 * plugged in beside the local-file implementation.  impl is the
 * implementation's own object.  Called on the log's thread. */
typedef struct mk_log_seg_ops_s {
    const char *kind;   /* "local" */
    /* Appends exactly len bytes from file_pos to out.  MK_ERR_RANGE past the
     * segment's size, MK_ERR_TRUNCATED if the backing file is shorter,
     * MK_ERR_IO, MK_ERR_NOMEM; out unchanged on error. */
    int (*read)(void *impl, uint64_t file_pos, size_t len, mk_buf_t *out);
    /* Bytes of batches in the segment. */
    uint64_t (*size)(void *impl);
    /* Releases what impl holds (descriptors, connections); not impl itself. */
    void (*close)(void *impl);
} mk_log_seg_ops_t;

/* ========================================================== segment events */

/* What happens to a segment that others (tiering, the scrubber) hang work
 * on.  sealed: the log rolled past it, so it will never change again (the
 * newest sealed segment may still be waiting for its fsync); deleted: it was
 * removed by retention or DeleteRecords (its files are gone or going). */
enum { MK_LOG_SEGMENT_SEALED = 1, MK_LOG_SEGMENT_DELETED = 2, MK_LOG_SEGMENT_START = 3 };
/* MK_LOG_SEGMENT_START: DeleteRecords moved the log start (after any
 * DELETED events of the segments it emptied): base_offset is the old start,
 * end_offset the new one, reason "DeleteRecords", the sizes are the log's.
 * So an observer that accounts for every offset that leaves the log (the
 * durability audit) hears of those inside a segment that stays. */

typedef struct mk_log_segment_event_s {
    int type;                 /* MK_LOG_SEGMENT_* */
    int64_t base_offset;      /* first offset of the segment */
    int64_t end_offset;       /* offset after its last batch */
    uint64_t size_bytes;
    const char *reason;       /* deleted: why (for the log line); else NULL */
    int64_t largest_ts;       /* the timestamp retention.ms judges the segment by: its
                               * largest maxTimestamp, else its file's mtime */
    uint64_t log_bytes_after; /* deleted: bytes of the log once it is gone (retention.bytes);
                               * sealed: the log's bytes */
} mk_log_segment_event_t;

typedef void (*mk_log_segment_cb)(const mk_log_segment_event_t *ev, void *arg);

/* The one observer of log's segment events (cb NULL removes it).  cb runs
 * on the log's thread after the change, and must not call back into log. */
void mk_log_set_segment_cb(mk_log_t *log, mk_log_segment_cb cb, void *arg);

/* ======================================================= segments (tiering) */

/* What tiered storage (tier/) needs to see of a log's segments: which are
 * sealed and what they hold, their files (to upload them off the loop), and
 * a way to delete local segments by offset once their remote copy is
 * verified, since a tiered log's own retention is off (tier/ applies
 * local.retention.* and retention.* itself). */
typedef struct mk_log_segment_info_s {
    int64_t base_offset;
    int64_t end_offset;       /* offset after its last batch (base when empty) */
    uint64_t size_bytes;
    int64_t max_timestamp;    /* largest batch maxTimestamp; the file's mtime when none */
    bool active;              /* the last segment, still appended to */
} mk_log_segment_info_t;

/* Number of segments (>= 1), and segment i's info, 0 = oldest.  O(1). */
size_t mk_log_segment_count(const mk_log_t *log);
void mk_log_segment_info(const mk_log_t *log, size_t i, mk_log_segment_info_t *out);

/* Duplicated descriptors of the .log, .index and .timeindex files of the
 * segment whose base offset is base, for reading on a worker thread while
 * the loop goes on (the caller closes them, on any thread; a retention that
 * unlinks the files meanwhile leaves them readable).  0, MK_ERR_NOT_FOUND,
 * MK_ERR_IO. */
int mk_log_segment_dup_fds(mk_log_t *log, int64_t base, int fds[3]);

/* Deletes the whole segments (never the active one) whose end offset is at
 * or below offset, oldest first, with why in the log line; the start offset
 * moves to the first segment left if it was below.  Returns how many. */
int mk_log_retain_to(mk_log_t *log, int64_t offset, const char *why);

/* One entry of the leader-epoch cache (below). */
typedef struct mk_log_epoch_entry_s {
    int32_t epoch;
    int64_t start_offset;
} mk_log_epoch_entry_t;

/* Copies up to cap entries of the leader-epoch cache, oldest first, into
 * out; returns how many the cache holds (may be more than cap). */
size_t mk_log_epoch_entries(const mk_log_t *log, mk_log_epoch_entry_t *out, size_t cap);

/* ==================================================================== cursors */

/* A read of the log's batches, in order, as they were when the scan was
 * opened, that may run on a worker thread while the loop keeps appending
 * (rebuilding derived state -- producer state -- without blocking the loop).
 * It holds duplicated descriptors of the local segments and their sizes at
 * open, and nothing of the log: the log may append, roll, retain or close
 * meanwhile.  A truncation below the scanned range makes a later read fail
 * or see other bytes, so the caller checks on the loop afterwards that the
 * log's history it scanned still stands (e.g. by leader epoch). */
typedef struct mk_log_cursor_s mk_log_cursor_t;

/* Open a scan of log (loop thread).  0, MK_ERR_NOMEM, MK_ERR_IO. */
int mk_log_cursor_open(mk_log_t *log, mk_log_cursor_t **out);
/* The log end offset when the scan was opened: the scan sees the batches
 * below it. */
int64_t mk_log_cursor_end_offset(const mk_log_cursor_t *s);
/* The next batch's view (headers only are read; v->pos is its position in
 * its segment file).  1, 0 at the end, MK_ERR_CORRUPT / MK_ERR_IO /
 * MK_ERR_TRUNCATED.  One thread at a time. */
int mk_log_cursor_next(mk_log_cursor_t *s, mk_batch_view_t *v);
/* The whole batch that the last mk_log_cursor_next() returned, into out
 * (reset first).  0 or MK_ERR_*. */
int mk_log_cursor_read(mk_log_cursor_t *s, const mk_batch_view_t *v, mk_buf_t *out);
/* Close the descriptors and free s (any thread). */
void mk_log_cursor_close(mk_log_cursor_t *s);
/* Starts the scan again from its first batch (the thread that reads it).
 * Returns 0. */
int mk_log_cursor_rewind(mk_log_cursor_t *s);

/* A cursor over the log directory dir as it is on disk, for a log that is
 * not open (the offline `minikora verify`): its .log segment files in base
 * offset order, opened read-only, at their current sizes.  Nothing is
 * recovered, created or removed.  *start_out (may be NULL) is the start
 * offset the log would open with: the persisted log-start-offset, raised
 * to the first segment's base and held to the end.  The end offset is
 * not known without a scan: mk_log_cursor_end_offset() says -1.  Returns
 * 0, MK_ERR_NOT_FOUND (no such directory), MK_ERR_IO, MK_ERR_NOMEM.  Any
 * thread; blocks on disk. */
int mk_log_cursor_open_dir(const char *dir, mk_log_cursor_t **out, int64_t *start_out);

/* Where the last mk_log_cursor_next() view lies: the base offset of its
 * segment (from the file name), into *segment_base. */
void mk_log_cursor_where(const mk_log_cursor_t *s, int64_t *segment_base);

/* Moves a cursor stuck at a damaged batch (mk_log_cursor_next() returned
 * an error) to the start of the next segment, so a scan can go on past it.
 * Returns 1, or 0 when there is no next segment. */
int mk_log_cursor_skip_segment(mk_log_cursor_t *s);

/* ========================================================= history identity */

/* Whether the history a scan saw still stands.  Every open log gets an id
 * unique in the process (a reopen of the same directory gets a new one),
 * and a count of the truncations that rewrote it since (mk_log_truncate_to
 * that removed batches, mk_log_truncate_fully).  A scan that noted both at
 * mk_log_cursor_open() time and finds them unchanged saw bytes that are
 * still the log's (only appended to, or retained from the front). */
uint64_t mk_log_id(const mk_log_t *log);
uint64_t mk_log_truncations(const mk_log_t *log);

/* =============================================================== compaction */

/* Log compaction (Kafka's log cleaner; design at the top of clean.c).  A
 * log whose config has compact keeps, in its sealed segments below a limit,
 * the latest record of each key: older records of a key are removed,
 * tombstones (null value) are kept delete.retention.ms after the cleaning
 * that first saw them and then removed, aborted transactional data is
 * removed, transaction markers are kept.  Batches keep their offsets (gaps
 * appear: consumers skip them), the rewritten segments are swapped in
 * atomically, and the log start offset never moves by compaction. */

/* Starts one cleaning of log when one is due (loop thread): compact is on,
 * no cleaning is in flight (one per process at a time, as Kafka's default
 * of one cleaner thread), and the sealed segments below limit (the high
 * watermark: never the active segment, never offsets not yet committed)
 * and older than min.compaction.lag.ms are dirty enough: dirty ratio >=
 * min.cleanable.dirty.ratio, or a dirty segment older than
 * max.compaction.lag.ms, or a kept tombstone past its delete horizon.
 * With a loop the reading, the key map and the writing run on its
 * threadpool and only the swap runs on the loop, later; without a loop
 * it all happens here.  Returns 1 when a cleaning started (or, without a
 * loop, ran), 0 when none is due, or MK_ERR_NOMEM / MK_ERR_IO (the
 * cleaning could not start; a cleaning that fails on the worker is logged
 * and retried a minute later). */
int mk_log_clean_maybe(mk_log_t *log, int64_t limit, int64_t now_ms);

typedef struct mk_log_clean_info_s {
    int64_t cleaned_offset;   /* offsets below were compacted (the cleaner checkpoint) */
    uint64_t clean_bytes;     /* bytes of sealed segments below cleaned_offset */
    uint64_t dirty_bytes;     /* bytes of sealed segments at or above it */
    double dirty_ratio;       /* dirty / (clean + dirty), 0 when both are 0 */
    bool running;             /* a cleaning is in flight */
    int64_t last_clean_ms;    /* when the last cleaning was swapped in, -1 never */
    uint64_t runs;            /* cleanings swapped in since open */
    int64_t tombstone_horizon;/* earliest delete horizon of a kept tombstone, -1 none */
} mk_log_clean_info_t;

/* The cleaner's view of log, for the admin API and metrics.  O(segments). */
void mk_log_clean_info(const mk_log_t *log, mk_log_clean_info_t *out);

/* The cleaner checkpoint of log (0 when never compacted).  O(1). */
int64_t mk_log_cleaned_offset(const mk_log_t *log);

/* The same from a log directory that is not open (`minikora verify`):
 * the persisted checkpoint, 0 when there is none.  Blocks on disk. */
int64_t mk_log_cleaned_offset_dir(const char *dir);

/* Process-wide cleaner figures (Kafka's LogCleaner metrics), loop thread. */
typedef struct mk_log_cleaner_stats_s {
    uint64_t runs;            /* cleanings swapped in */
    uint64_t failures;        /* cleanings that failed (logged) */
    uint64_t aborted;         /* cleanings given up: the log changed under them */
    uint64_t bytes_read;      /* bytes of segments read by cleanings */
    uint64_t bytes_written;   /* bytes of segments written */
    uint64_t records_removed; /* records compacted away */
    uint64_t batches_removed; /* whole batches removed */
    double last_recopy_percent;  /* written / read of the last cleaning, 0..100 */
    double max_clean_time_secs;  /* of the last cleaning */
    double max_buffer_utilization_percent; /* key map fill of the last cleaning */
    int64_t last_run_ms;      /* wall clock of the last swap, -1 never */
    int running;              /* cleanings in flight (0 or 1) */
} mk_log_cleaner_stats_t;
void mk_log_cleaner_stats(mk_log_cleaner_stats_t *out);

/* ========================================================= storage I/O gate */

/* Every storage operation of a log whose config names an io_domain (a
 * broker id) passes that domain's gate (io.c): appends (the pwrite, and the
 * segment roll inside it), reads (mk_log_read*), fsyncs (the flush on the
 * threadpool), opens, and the opening of a scan (mk_log_cursor_open: held
 * while stalled, EIO when reads fail; not delayed by a slow disk).  Not
 * gated: truncation, retention's deletes, closes, tier's segment
 * descriptors (mk_log_segment_dup_fds).  The gate counts them, their errors and latencies,
 * and knows the age of the oldest operation in flight or held; and it is
 * where the disk faults of fault/ act on the real I/O path:
 *   disk-error  the operation fails with EIO (nothing is written); the log
 *               goes failed, and its domain's directory goes offline: the
 *               offline callback hears of it (repl/: replicas offline,
 *               leaders move);
 *   disk-stall  the operation is held: appends and reads return
 *               MK_ERR_AGAIN (the caller parks and retries: Produce stays
 *               pending, a follower's round stops), an fsync waits in the
 *               gate (no threadpool thread is held);
 *   disk-slow   the same, until delay_ms has passed since the operation
 *               first asked; then it runs.
 * Nothing blocks the loop.  When held operations may go on (a stall
 * cleared, a delay passed), the wake callback is called on the loop. */

typedef struct mk_log_io_stats_s {
    uint64_t ops;              /* operations done (ok or failed) */
    uint64_t errors;           /* of them, failed (EIO, injected or real) */
    uint64_t held;             /* operations that had to wait at the gate */
    int64_t oldest_inflight_ms;/* age of the oldest operation in flight or held (an fsync
                                  queued behind others: since the domain's last finished
                                  fsync, if later); 0 none */
    uint32_t inflight;         /* operations in flight or held now */
    int64_t p50_us, p99_us;    /* latency (waiting included) over the last 10-20 s; 0 none */
    bool offline;              /* a log of the domain failed: its directory is offline */
    bool stalled;              /* a disk-stall is active */
    int64_t slow_ms;           /* the disk-slow delay in force, 0 none */
    int error_ops;             /* the disk-error operations in force (fault.h MK_FAULT_OPS_*) */
} mk_log_io_stats_t;

/* The domain's figures (broker: its id).  0, or MK_ERR_NOT_FOUND for a
 * domain out of range (1..MK_LOG_IO_DOMAINS-1); a domain no log used yet
 * answers zeros.  Loop thread. */
#define MK_LOG_IO_DOMAINS 128
int mk_log_io_stats(int32_t broker, mk_log_io_stats_t *out);

typedef void (*mk_log_io_cb)(void *arg, int32_t broker);
/* Binds the gate to the loop (its timer) and starts listening to fault/.
 * The layer that owns the logs calls it once (broker/), and
 * mk_log_io_close() before the loop closes. */
void mk_log_io_open(struct uv_loop_s *loop);
void mk_log_io_close(void);
/* Held operations of broker (-1: any) may go on now (partition/: wake the
 * parked requests).  One callback; NULL removes it. */
void mk_log_io_set_wake_cb(mk_log_io_cb cb, void *arg);
/* A log of broker failed: its log directory is offline (repl/: its replicas
 * go offline, leaders move).  Called on the loop after the failing call has
 * returned, once per domain until mk_log_io_online(). */
void mk_log_io_set_offline_cb(mk_log_io_cb cb, void *arg);
/* The broker's directory is back (a restart reopened its logs). */
void mk_log_io_online(int32_t broker);

/* ====================================================== open descriptors */

/* Segment files are opened on demand through one process-wide LRU cache of
 * descriptors (segment.c): at most this many are held open for segments
 * (three per segment), whatever the number of logs.  Duplicates handed out
 * (flushes in flight, cursors, mk_log_segment_dup_fds) are not counted.
 * minikora.log.max.open.files sets it (main.c: 0 means a quarter of the
 * open files limit, at least this default); any thread. */
#define MK_LOG_MAX_OPEN_FILES_DEFAULT 4096
void mk_log_set_max_open_files(size_t n);

typedef struct mk_log_open_files_stats_s {
    size_t open;               /* descriptors the cache holds now */
    size_t limit;              /* its bound */
    uint64_t reopens;          /* evicted segments opened again */
    uint64_t evictions;        /* segments whose files were closed to make room */
    uint64_t emfile;           /* opens that failed with EMFILE/ENFILE even after evicting */
} mk_log_open_files_stats_t;

void mk_log_open_files_stats(mk_log_open_files_stats_t *out);

/* ============================================================ fault hooks */

/* Test hook: the nth write to a log file from now (1 = next) fails with an
 * I/O error; 0 disables.  Process-wide, not thread-safe. */
void mk_log_fail_io_at(long nth);

#endif /* MK_LOG_H */
