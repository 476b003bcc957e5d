/*
 * epoch.c -- the leader-epoch cache of a partition log (Kafka's
 * LeaderEpochFileCache) and its checkpoint file.
 *
 * The cache lists, for each leader epoch that wrote to the log, the first
 * offset written under it: (epoch, start_offset) pairs, sorted, epochs and
 * start offsets both strictly increasing.  Replication uses it to find
 * where a follower's log diverges from the leader's: the leader answers
 * "where does epoch E end?" (mk_log_epochs_end_offset) and the follower
 * truncates there before fetching.
 *
 * Who changes it (log.c): every appended batch goes through assign() with
 * its partitionLeaderEpoch and baseOffset, leader and follower alike, so the
 * cache always describes the batches; a new leader begins its epoch at the
 * log end before appending; truncation drops entries from the end,
 * retention and DeleteRecords clamp them from the start.  Recovery loads
 * the file, drops entries at or beyond the end offset, and rebuilds the
 * file from the batch headers when it is missing or malformed.
 *
 * leader-epoch-checkpoint -- text, as Kafka writes it, "\n" after every line:
 *
 *   line      content
 *   1         version: "0"
 *   2         N, the number of entries (decimal)
 *   3..N+2    "<epoch> <start_offset>": decimal, epoch in [0, 2^31),
 *             start_offset in [0, 2^63); both strictly increasing
 *
 * Nothing may follow the last entry.  The file is replaced atomically
 * (mk_log_file_replace); a torn file (crash before its fsync) fails the
 * checks and is rebuilt, so the cache never trusts a half-written one.
 */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bigger than any sane cache (over 30000 entries); a larger file is
 * treated as malformed and rebuilt rather than read into memory. */
#define EPOCH_FILE_MAX (1u << 20)
/* The shortest entry line: "0 0\n". */
#define EPOCH_LINE_MIN 4

/* ================================================================ cache */

/* An empty cache; dir is borrowed and must outlive it. */
void mk_log_epochs_init(mk_log_epochs_t *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    c->dir = dir;
}

/* Frees the entries; the cache is empty afterwards. */
void mk_log_epochs_free(mk_log_epochs_t *c)
{
    mk_free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

/* -1 when empty. */
int32_t mk_log_epochs_latest(const mk_log_epochs_t *c)
{
    return c->n ? c->v[c->n - 1].epoch : -1;
}

/* Grows to room for n more entries. */
int mk_log_epochs_reserve(mk_log_epochs_t *c, size_t n)
{
    if (n <= c->cap - c->n)
        return 0;
    size_t cap = c->cap ? c->cap : 8;
    while (cap - c->n < n)
        cap *= 2;
    mk_log_epoch_t *v = mk_realloc(c->v, cap * sizeof(*v));
    if (!v)
        return MK_ERR_NOMEM;
    c->v = v;
    c->cap = cap;
    return 0;
}

/* Kafka's assign(): drops non-monotonic entries from the end, then adds. */
int mk_log_epochs_assign(mk_log_epochs_t *c, int32_t epoch, int64_t start_offset)
{
    if (epoch < 0 || start_offset < 0)
        return 0; /* a batch without an epoch (magic 2 writers may leave -1) */
    if (c->n) {
        const mk_log_epoch_t *last = &c->v[c->n - 1];
        if (epoch == last->epoch && start_offset >= last->start_offset)
            return 0;
    }
    if (mk_log_epochs_reserve(c, 1))
        return MK_ERR_NOMEM;
    size_t k = c->n;
    while (k > 0 && (c->v[k - 1].epoch >= epoch || c->v[k - 1].start_offset >= start_offset))
        k--;
    /* An entry starting exactly here held no data (an epoch begun at the
     * log end and never written to): replacing it is routine. */
    if (c->n - k > 1 || (c->n - k == 1 && c->v[k].start_offset != start_offset))
        mk_warn("log: %s: leader epoch %" PRId32 " at offset %" PRId64
                " replaces %zu cached epochs from epoch %" PRId32,
                c->dir, epoch, start_offset, c->n - k, c->v[k].epoch);
    c->v[k].epoch = epoch;
    c->v[k].start_offset = start_offset;
    c->n = k + 1;
    return 1;
}

/* Kafka's truncateFromEnd(). */
bool mk_log_epochs_truncate_end(mk_log_epochs_t *c, int64_t end)
{
    size_t k = c->n;
    while (k > 0 && c->v[k - 1].start_offset >= end)
        k--;
    bool changed = k != c->n;
    c->n = k;
    return changed;
}

/* Kafka's truncateFromStart(): exclusive, an entry starting at start stays. */
bool mk_log_epochs_truncate_start(mk_log_epochs_t *c, int64_t start)
{
    if (c->n == 0 || c->v[0].start_offset >= start)
        return false;
    size_t i = 0; /* the last entry at or below start */
    while (i + 1 < c->n && c->v[i + 1].start_offset <= start)
        i++;
    c->v[0].epoch = c->v[i].epoch;
    c->v[0].start_offset = start;
    memmove(c->v + 1, c->v + i + 1, (c->n - i - 1) * sizeof(*c->v));
    c->n -= i;
    return true;
}

bool mk_log_epochs_clear(mk_log_epochs_t *c)
{
    bool changed = c->n > 0;
    c->n = 0;
    return changed;
}

/* Kafka's endOffsetFor(): see log.h for the cases. */
void mk_log_epochs_end_offset(const mk_log_epochs_t *c, int32_t requested, int64_t log_end,
                              int32_t *epoch_out, int64_t *end_offset_out)
{
    *epoch_out = -1;
    *end_offset_out = -1;
    if (requested < 0 || c->n == 0)
        return;
    if (requested == c->v[c->n - 1].epoch) {
        *epoch_out = requested;
        *end_offset_out = log_end;
        return;
    }
    size_t lo = 0, hi = c->n; /* the first entry with epoch > requested */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->v[mid].epoch <= requested)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->n)
        return; /* above every cached epoch: Kafka answers UNDEFINED */
    /* Below the first cached epoch Kafka answers the requested epoch and
     * the first start offset: the older data is gone, the follower
     * truncates to where the leader's knowledge begins. */
    *epoch_out = lo ? c->v[lo - 1].epoch : requested;
    *end_offset_out = c->v[lo].start_offset;
}

/* =========================================================== checkpoint */

/* Parses a decimal in [0, max] at [*s, end) followed by sep. */
static bool parse_dec(const char **s, const char *end, int64_t max, char sep, int64_t *out)
{
    const char *p = *s;
    int64_t v = 0;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    while (p < end && *p >= '0' && *p <= '9') {
        int d = *p++ - '0';
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (p >= end || *p != sep)
        return false;
    *s = p + 1;
    *out = v;
    return true;
}

/* The file's text [p, p + n) into c (replaced).  MK_ERR_CORRUPT leaves c
 * empty. */
static int epochs_parse(mk_log_epochs_t *c, const char *p, size_t n)
{
    const char *s = p, *end = p + n;
    int64_t version, count;
    c->n = 0;
    if (!parse_dec(&s, end, INT32_MAX, '\n', &version) || version != 0 ||
        !parse_dec(&s, end, INT64_MAX, '\n', &count))
        return MK_ERR_CORRUPT;
    /* The count comes from disk: check it against the bytes left first. */
    if ((uint64_t)count > (uint64_t)(end - s) / EPOCH_LINE_MIN)
        return MK_ERR_CORRUPT;
    if (mk_log_epochs_reserve(c, (size_t)count))
        return MK_ERR_NOMEM;
    for (int64_t i = 0; i < count; i++) {
        int64_t epoch, start;
        if (!parse_dec(&s, end, INT32_MAX, ' ', &epoch) ||
            !parse_dec(&s, end, INT64_MAX, '\n', &start) ||
            (c->n && (epoch <= c->v[c->n - 1].epoch || start <= c->v[c->n - 1].start_offset))) {
            c->n = 0;
            return MK_ERR_CORRUPT;
        }
        c->v[c->n].epoch = (int32_t)epoch;
        c->v[c->n].start_offset = start;
        c->n++;
    }
    if (s != end) {
        c->n = 0;
        return MK_ERR_CORRUPT;
    }
    return 0;
}

/* Reads dir/leader-epoch-checkpoint into c.  Blocking; open path. */
int mk_log_epochs_load(mk_log_epochs_t *c)
{
    char path[PATH_MAX];
    c->n = 0;
    int np = snprintf(path, sizeof(path), "%s/%s", c->dir, MK_LOG_EPOCH_CHECKPOINT);
    if (np < 0 || (size_t)np >= sizeof(path))
        return MK_ERR_TOO_LARGE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? MK_ERR_NOT_FOUND : MK_ERR_IO;
    struct stat sb;
    int rc = 0;
    char *text = NULL;
    if (fstat(fd, &sb) != 0)
        rc = MK_ERR_IO;
    else if (sb.st_size < 0 || (uint64_t)sb.st_size > EPOCH_FILE_MAX)
        rc = MK_ERR_CORRUPT;
    else if (!(text = mk_malloc((size_t)sb.st_size + 1)))
        rc = MK_ERR_NOMEM;
    if (!rc)
        rc = mk_log_file_read(fd, text, (size_t)sb.st_size, 0);
    close(fd);
    if (rc == MK_ERR_TRUNCATED) /* shrank under us: not ours to trust */
        rc = MK_ERR_CORRUPT;
    if (!rc)
        rc = epochs_parse(c, text, (size_t)sb.st_size);
    mk_free(text);
    return rc;
}

/* Formats and atomically replaces the checkpoint.  Blocks on fsync only
 * with sync. */
int mk_log_epochs_save(const mk_log_epochs_t *c, bool sync)
{
    mk_buf_t b;
    mk_buf_init(&b);
    char line[48];
    int n = snprintf(line, sizeof(line), "0\n%zu\n", c->n);
    mk_buf_put(&b, line, (size_t)n);
    for (size_t i = 0; i < c->n; i++) {
        n = snprintf(line, sizeof(line), "%" PRId32 " %" PRId64 "\n", c->v[i].epoch,
                     c->v[i].start_offset);
        mk_buf_put(&b, line, (size_t)n);
    }
    int rc = mk_buf_ok(&b) ? 0 : MK_ERR_NOMEM;
    if (!rc)
        rc = mk_log_file_replace(c->dir, MK_LOG_EPOCH_CHECKPOINT, b.data, b.len, sync);
    mk_buf_free(&b);
    return rc;
}
