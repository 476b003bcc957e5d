/*
 * log_test.c -- unit tests for the partition log (src/log/).
 *
 * Builds real v2 record batches (records, varints, CRC32C) and drives the
 * log through append/read, segment rolls, reopen, crash damage (torn
 * writes, garbage, bad CRCs, missing or corrupt indexes), timestamps,
 * retention, DeleteRecords, follower truncation and appends, injected I/O
 * failures, the threadpool fsync path and the leader-epoch cache (queries,
 * checkpoint recovery, truncation, retention, a follower's divergence from
 * a new leader), and the cleaner (compaction, with and without a loop, an
 * interrupted swap).  Everything happens in a
 * temporary directory under /tmp that is removed at the end.  Exit status 0
 * on success.
 */
#include "log/log.h"
#include "log/log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                       \
        }                                                                                  \
    } while (0)
#define CHECK_RC(expr)                                                                     \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_ != 0) {                                                                    \
            fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #expr, rc_,      \
                    mk_strerror(rc_));                                                     \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* snprintf into a PATH_MAX buffer, checked. */
#define PATHF(buf, ...) CHECK(snprintf((buf), PATH_MAX, __VA_ARGS__) < PATH_MAX)

static char root[PATH_MAX];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* ============================================================= helpers */

/* Appends one valid v2 batch of nrec records to b: timestamps base_ts,
 * base_ts + step, ...; values of vlen bytes. */
static void make_batch(mk_buf_t *b, int nrec, int64_t base_ts, int64_t step, size_t vlen)
{
    size_t start = b->len;
    mk_buf_put_i64(b, 0);           /* baseOffset: the log assigns it */
    mk_buf_put_i32(b, 0);           /* batchLength, patched */
    mk_buf_put_i32(b, -1);          /* partitionLeaderEpoch */
    mk_buf_put_i8(b, 2);            /* magic */
    mk_buf_put_u32(b, 0);           /* crc, patched */
    mk_buf_put_i16(b, 0);           /* attributes */
    mk_buf_put_i32(b, nrec - 1);    /* lastOffsetDelta */
    mk_buf_put_i64(b, base_ts);
    mk_buf_put_i64(b, base_ts + (nrec - 1) * step);
    mk_buf_put_i64(b, -1);          /* producerId */
    mk_buf_put_i16(b, -1);          /* producerEpoch */
    mk_buf_put_i32(b, -1);          /* baseSequence */
    mk_buf_put_i32(b, nrec);
    mk_buf_t rec;
    mk_buf_init(&rec);
    for (int i = 0; i < nrec; i++) {
        mk_buf_reset(&rec);
        mk_buf_put_i8(&rec, 0);
        mk_buf_put_varint(&rec, i * step);
        mk_buf_put_varint(&rec, i);
        mk_buf_put_varint(&rec, -1);
        mk_buf_put_varint(&rec, (int64_t)vlen);
        for (size_t j = 0; j < vlen; j++)
            mk_buf_put_i8(&rec, (int8_t)('a' + (j + (size_t)i) % 26));
        mk_buf_put_varint(&rec, 0);
        mk_buf_put_varint(b, (int64_t)rec.len);
        mk_buf_put(b, rec.data, rec.len);
    }
    mk_buf_free(&rec);
    CHECK(mk_buf_ok(b));
    mk_buf_patch_i32(b, start + 8, (int32_t)(b->len - start - 12));
    mk_buf_patch_u32(b, start + 17, mk_crc32c(0, b->data + start + 21, b->len - start - 21));
}

typedef struct batch_rec_s {
    int64_t base, last, max_ts;
    uint32_t size;
} batch_rec_t;

/* Appends one batch and records what the log made of it. */
static batch_rec_t append_one(mk_log_t *log, int nrec, int64_t ts, size_t vlen, int32_t epoch)
{
    mk_buf_t b;
    mk_buf_init(&b);
    make_batch(&b, nrec, ts, 1, vlen);
    int64_t end = mk_log_end_offset(log);
    mk_log_append_info_t info;
    CHECK_RC(mk_log_append(log, b.data, b.len, epoch, mk_now_ms(), &info));
    CHECK(info.first_offset == end);
    CHECK(info.last_offset == end + nrec - 1);
    CHECK(info.end_offset == end + nrec);
    CHECK(info.batch_count == 1);
    CHECK(mk_log_end_offset(log) == end + nrec);
    batch_rec_t r = {end, end + nrec - 1, ts + nrec - 1, (uint32_t)b.len};
    mk_buf_free(&b);
    return r;
}

/* Checks that [p, p+n) is whole valid batches whose offsets are exactly
 * recs[from..], returning how many. */
static size_t check_batches(const uint8_t *p, size_t n, const batch_rec_t *recs, size_t from)
{
    size_t k = 0, off = 0;
    while (off < n) {
        mk_batch_view_t h;
        CHECK_RC(mk_log_view_parse(p + off, n - off, &h));
        CHECK(h.size <= n - off);
        CHECK_RC(mk_log_batch_check(p + off, h.size, NULL));
        CHECK(h.hdr.baseOffset == recs[from + k].base);
        CHECK(h.hdr.baseOffset + h.hdr.lastOffsetDelta == recs[from + k].last);
        CHECK(h.size == recs[from + k].size);
        off += h.size;
        k++;
    }
    return k;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void subdir(char *buf, const char *name)
{
    PATHF(buf, "%s/%s", root, name);
}

/* Path of the segment file with the largest base (the active one). */
static void last_seg_file(const char *dir, const char *ext, char *buf)
{
    DIR *d = opendir(dir);
    CHECK(d);
    char best[64] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n == 24 && strcmp(e->d_name + 20, ".log") == 0 && strcmp(e->d_name, best) > 0)
            memcpy(best, e->d_name, n + 1);
    }
    closedir(d);
    CHECK(best[0]);
    best[20] = '\0';
    PATHF(buf, "%s/%s%s", dir, best, ext);
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    return (uint64_t)sb.st_size;
}

static void simulate_crash(const char *dir)
{
    char path[PATH_MAX];
    PATHF(path, "%s/clean-shutdown", dir);
    unlink(path);
}

static mk_log_t *open_log(const char *dir, const mk_log_config_t *cfg)
{
    mk_log_t *log = NULL;
    CHECK_RC(mk_log_open(dir, cfg, &log));
    return log;
}

static void read_all(mk_log_t *log, mk_buf_t *out)
{
    int64_t next;
    mk_buf_reset(out);
    CHECK_RC(mk_log_read(log, mk_log_start_offset(log), SIZE_MAX, true, out, &next));
    CHECK(next == mk_log_end_offset(log));
}

/* The leader-epoch checkpoint's text ("" when the file is missing). */
static void read_epochs(const char *dir, char *buf, size_t cap)
{
    char path[PATH_MAX];
    PATHF(path, "%s/leader-epoch-checkpoint", dir);
    buf[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    CHECK(n >= 0 && (size_t)n < cap - 1);
    buf[n] = '\0';
}

static void write_epochs(const char *dir, const char *text)
{
    char path[PATH_MAX];
    PATHF(path, "%s/leader-epoch-checkpoint", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

#define CHECK_EPOCHS(dir, want)                                                            \
    do {                                                                                   \
        char got_[4096];                                                                   \
        read_epochs((dir), got_, sizeof(got_));                                            \
        if (strcmp(got_, (want)) != 0) {                                                   \
            fprintf(stderr, "%s:%d: checkpoint\n%s-- want --\n%s", __FILE__, __LINE__,     \
                    got_, (want));                                                         \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* end_offset_for_epoch(req) must answer (epoch, offset). */
#define CHECK_EO(log, req, epoch, offset)                                                  \
    do {                                                                                   \
        int32_t e_;                                                                        \
        int64_t o_;                                                                        \
        CHECK_RC(mk_log_end_offset_for_epoch((log), (req), &e_, &o_));                     \
        if (e_ != (epoch) || o_ != (offset)) {                                             \
            fprintf(stderr, "%s:%d: epoch %d -> (%d, %" PRId64 "), want (%d, %" PRId64 ")\n", \
                    __FILE__, __LINE__, (int)(req), (int)e_, o_, (int)(epoch),             \
                    (int64_t)(offset));                                                    \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Copies from's batches at and above offset into to, in fetches of about
 * chunk bytes, as a follower does. */
static void replicate(mk_log_t *from, mk_log_t *to, int64_t offset, size_t chunk)
{
    mk_buf_t b;
    mk_buf_init(&b);
    while (offset < mk_log_end_offset(from)) {
        int64_t next;
        mk_buf_reset(&b);
        CHECK_RC(mk_log_read(from, offset, chunk, true, &b, &next));
        CHECK_RC(mk_log_append_replica(to, b.data, b.len, mk_now_ms(), NULL));
        offset = next;
    }
    CHECK(mk_log_end_offset(to) == mk_log_end_offset(from));
    mk_buf_free(&b);
}

/* Both logs hold the same bytes and the same epoch checkpoint. */
static void check_same(mk_log_t *a, mk_log_t *b)
{
    mk_buf_t x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    read_all(a, &x);
    read_all(b, &y);
    CHECK(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
    mk_buf_free(&x);
    mk_buf_free(&y);
    char ea[4096], eb[4096];
    read_epochs(mk_log_dir(a), ea, sizeof(ea));
    read_epochs(mk_log_dir(b), eb, sizeof(eb));
    CHECK(strcmp(ea, eb) == 0);
    for (int32_t e = -1; e < 12; e++) {
        int32_t e1, e2;
        int64_t o1, o2;
        CHECK_RC(mk_log_end_offset_for_epoch(a, e, &e1, &o1));
        CHECK_RC(mk_log_end_offset_for_epoch(b, e, &e2, &o2));
        CHECK(e1 == e2 && o1 == o2);
    }
}

/* The partitionLeaderEpoch of the last batch in the log, -1 if empty. */
static int32_t last_batch_epoch(mk_log_t *log)
{
    mk_buf_t b;
    mk_buf_init(&b);
    read_all(log, &b);
    int32_t epoch = -1;
    size_t pos = 0;
    while (pos < b.len) {
        mk_batch_view_t h;
        CHECK_RC(mk_log_view_parse(b.data + pos, b.len - pos, &h));
        epoch = h.hdr.partitionLeaderEpoch;
        pos += h.size;
    }
    mk_buf_free(&b);
    return epoch;
}

/* =============================================================== tests */

static void test_roundtrip(void)
{
    char dir[PATH_MAX];
    subdir(dir, "roundtrip/p-0");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    mk_log_t *log = open_log(dir, &cfg);
    CHECK(mk_log_start_offset(log) == 0 && mk_log_end_offset(log) == 0);

    enum { N = 300 };
    static batch_rec_t recs[N];
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        recs[i] = append_one(log, 1 + (int)rnd(5), 1000 + i, 10 + rnd(200), 7);
        total += recs[i].size;
    }
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(st.size_bytes == total && st.segment_count == 1);

    mk_buf_t out;
    mk_buf_init(&out);
    read_all(log, &out);
    CHECK(out.len == total);
    CHECK(check_batches(out.data, out.len, recs, 0) == N);
    /* the leader epoch was rewritten */
    CHECK(out.data[12] == 0 && out.data[15] == 7);

    /* from the middle: an offset inside batch k returns batch k first */
    int64_t next;
    for (int k = 1; k < N; k += 37) {
        mk_buf_reset(&out);
        CHECK_RC(mk_log_read(log, recs[k].last, SIZE_MAX, true, &out, &next));
        CHECK(check_batches(out.data, out.len, recs, (size_t)k) == (size_t)(N - k));
        CHECK(next == mk_log_end_offset(log));
    }
    /* max_bytes and min_one */
    int k = 100;
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, recs[k].base, recs[k].size - 1, true, &out, &next));
    CHECK(out.len == recs[k].size && next == recs[k].last + 1);
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, recs[k].base, recs[k].size - 1, false, &out, &next));
    CHECK(out.len == 0 && next == recs[k].base);
    mk_buf_reset(&out);
    size_t lim = recs[k].size + recs[k + 1].size + recs[k + 2].size / 2;
    CHECK_RC(mk_log_read(log, recs[k].base, lim, true, &out, &next));
    CHECK(check_batches(out.data, out.len, recs, (size_t)k) == 2 && next == recs[k + 1].last + 1);
    /* exactly fitting */
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, recs[k].base, recs[k].size + recs[k + 1].size, false, &out, &next));
    CHECK(check_batches(out.data, out.len, recs, (size_t)k) == 2);
    /* bounded by a high watermark */
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read_upto(log, recs[k].base, recs[k + 3].base, SIZE_MAX, true, &out, &next));
    CHECK(check_batches(out.data, out.len, recs, (size_t)k) == 3 && next == recs[k + 3].base);
    /* appending to a non-empty out keeps what was there */
    mk_buf_reset(&out);
    mk_buf_put(&out, "xyz", 3);
    CHECK_RC(mk_log_read(log, recs[0].base, 1, true, &out, &next));
    CHECK(out.len == 3 + recs[0].size && memcmp(out.data, "xyz", 3) == 0);
    /* the end and beyond */
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, mk_log_end_offset(log), SIZE_MAX, true, &out, &next));
    CHECK(out.len == 0 && next == mk_log_end_offset(log));
    CHECK(mk_log_read(log, mk_log_end_offset(log) + 1, SIZE_MAX, true, &out, &next) ==
          MK_ERR_RANGE);
    CHECK(mk_log_read(log, -1, SIZE_MAX, true, &out, &next) == MK_ERR_RANGE);

    /* bad input is refused and changes nothing */
    uint8_t junk[100];
    memset(junk, 0, sizeof(junk));
    mk_log_append_info_t info;
    CHECK(mk_log_append(log, junk, sizeof(junk), 1, mk_now_ms(), &info) == MK_ERR_INVALID);
    CHECK(mk_log_append(log, junk, 0, 1, mk_now_ms(), &info) == MK_ERR_INVALID);
    mk_buf_t b;
    mk_buf_init(&b);
    make_batch(&b, 3, 1, 1, 10);
    CHECK(mk_log_append(log, b.data, b.len - 1, 1, mk_now_ms(), &info) == MK_ERR_INVALID);
    /* several batches in one append */
    make_batch(&b, 2, 1, 1, 10);
    int64_t end = mk_log_end_offset(log);
    CHECK_RC(mk_log_append(log, b.data, b.len, 8, mk_now_ms(), &info));
    CHECK(info.first_offset == end && info.last_offset == end + 4 && info.batch_count == 2);
    mk_buf_free(&b);
    mk_log_stats(log, &st);
    CHECK(st.end_offset == end + 5);

    mk_buf_free(&out);
    CHECK_RC(mk_log_close(log));
}

static void test_roll_reopen(void)
{
    char dir[PATH_MAX];
    subdir(dir, "roll/p-1");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 512;
    mk_log_t *log = open_log(dir, &cfg);
    enum { N = 400 };
    static batch_rec_t recs[N + 10];
    for (int i = 0; i < N; i++)
        recs[i] = append_one(log, 1 + (int)rnd(4), 5000 + i, 20 + rnd(150), 1);
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(st.segment_count > 10);
    mk_buf_t out, again;
    mk_buf_init(&out);
    mk_buf_init(&again);
    read_all(log, &out);
    CHECK(check_batches(out.data, out.len, recs, 0) == N);
    /* reads starting in every batch, limited, crossing segments */
    for (int k = 0; k < N; k += 13) {
        int64_t next;
        mk_buf_reset(&again);
        CHECK_RC(mk_log_read(log, recs[k].base, 3000, true, &again, &next));
        size_t got = check_batches(again.data, again.len, recs, (size_t)k);
        CHECK(got >= 1 && next == recs[k + (int)got - 1].last + 1);
        CHECK(again.len <= 3000);
    }
    CHECK_RC(mk_log_close(log));

    /* clean reopen: trusted path */
    log = open_log(dir, &cfg);
    mk_log_stats_t st2;
    mk_log_stats(log, &st2);
    CHECK(st2.end_offset == st.end_offset && st2.size_bytes == st.size_bytes &&
          st2.segment_count == st.segment_count);
    read_all(log, &again);
    CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    for (int i = N; i < N + 10; i++)
        recs[i] = append_one(log, 2, 9000 + i, 30, 2);
    CHECK(recs[N].base == st.end_offset);
    CHECK_RC(mk_log_close(log));

    /* crash reopen: the active segment is fully validated */
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    read_all(log, &again);
    CHECK(check_batches(again.data, again.len, recs, 0) == N + 10);
    CHECK_RC(mk_log_close(log));
    mk_buf_free(&out);
    mk_buf_free(&again);
}

static int validations;

static int count_validate(const uint8_t *p, size_t n, void *arg)
{
    (void)arg;
    validations++;
    return mk_log_batch_check(p, n, NULL);
}

static void test_torn_and_corrupt(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    subdir(dir, "torn/p-2");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 8192;
    cfg.index_interval_bytes = 256;
    cfg.validate = count_validate;
    mk_log_t *log = open_log(dir, &cfg);
    enum { N = 120 };
    static batch_rec_t recs[N + 20];
    for (int i = 0; i < N; i++)
        recs[i] = append_one(log, 3, 100 + i, 40 + rnd(60), 3);
    CHECK_RC(mk_log_close(log));

    /* torn write: the last batch lost its last 7 bytes */
    last_seg_file(dir, ".log", path);
    uint64_t sz = file_size(path);
    CHECK(truncate(path, (off_t)(sz - 7)) == 0);
    simulate_crash(dir);
    validations = 0;
    log = open_log(dir, &cfg);
    CHECK(validations > 0);
    CHECK(mk_log_end_offset(log) == recs[N - 1].base);
    CHECK(file_size(path) == sz - recs[N - 1].size);
    mk_buf_t out;
    mk_buf_init(&out);
    read_all(log, &out);
    CHECK(check_batches(out.data, out.len, recs, 0) == N - 1);
    recs[N - 1] = append_one(log, 3, 100, 50, 3); /* the log continues */
    CHECK_RC(mk_log_close(log));

    /* garbage appended after the last batch (the append above rolled: the
     * first batch's timestamp is decades older than segment.ms) */
    last_seg_file(dir, ".log", path);
    sz = file_size(path);
    CHECK(sz == recs[N - 1].size);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    uint8_t garbage[100];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)rnd(256);
    CHECK(write(fd, garbage, sizeof(garbage)) == (ssize_t)sizeof(garbage));
    close(fd);
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    CHECK(file_size(path) == sz);
    CHECK(mk_log_end_offset(log) == recs[N - 1].last + 1);
    CHECK_RC(mk_log_close(log));

    /* a flipped byte in the last batch's records: CRC mismatch, truncated */
    fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t c;
    CHECK(pread(fd, &c, 1, (off_t)(sz - 5)) == 1);
    c ^= 0x40;
    CHECK(pwrite(fd, &c, 1, (off_t)(sz - 5)) == 1);
    close(fd);
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    CHECK(mk_log_end_offset(log) == recs[N - 1].base);
    CHECK(file_size(path) == sz - recs[N - 1].size);
    read_all(log, &out);
    CHECK(check_batches(out.data, out.len, recs, 0) == N - 1);

    /* a wrong magic in the middle of the active segment drops the rest */
    recs[N - 1] = append_one(log, 3, 100, 50, 3);
    for (int i = N; i < N + 20; i++)
        recs[i] = append_one(log, 1, 100, 10, 3);
    CHECK_RC(mk_log_close(log));
    last_seg_file(dir, ".log", path);
    int64_t seg_base = atoll(strrchr(path, '/') + 1);
    int first = 0;
    while (recs[first].base < seg_base)
        first++;
    int victim = first + (N + 20 - first) / 2;
    uint64_t pos = 0;
    for (int i = first; i < victim; i++)
        pos += recs[i].size;
    fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    c = 1;
    CHECK(pwrite(fd, &c, 1, (off_t)(pos + 16)) == 1);
    close(fd);
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    CHECK(mk_log_end_offset(log) == recs[victim].base);
    CHECK(file_size(path) == pos);
    read_all(log, &out);
    CHECK(check_batches(out.data, out.len, recs, 0) == (size_t)victim);
    CHECK_RC(mk_log_close(log));
    mk_buf_free(&out);
}

static void test_index_rebuild(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    subdir(dir, "index/p-3");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 16384;
    cfg.index_interval_bytes = 300;
    mk_log_t *log = open_log(dir, &cfg);
    enum { N = 300 };
    static batch_rec_t recs[N];
    for (int i = 0; i < N; i++)
        recs[i] = append_one(log, 2, 1000 + 10 * i, 50 + rnd(50), 1);
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(st.segment_count >= 3);
    CHECK_RC(mk_log_close(log));

    /* remember the first segment's indexes, then lose / damage them */
    char idx[PATH_MAX], tidx[PATH_MAX];
    PATHF(idx, "%s/%020d.index", dir, 0);
    PATHF(tidx, "%s/%020d.timeindex", dir, 0);
    uint64_t isz = file_size(idx), tsz = file_size(tidx);
    CHECK(isz > 0 && isz % 8 == 0 && tsz > 0 && tsz % 12 == 0);
    static uint8_t orig[1 << 16], orig_t[1 << 16], now_i[1 << 16];
    int fd = open(idx, O_RDONLY);
    CHECK(read(fd, orig, sizeof(orig)) == (ssize_t)isz);
    close(fd);
    fd = open(tidx, O_RDONLY);
    CHECK(read(fd, orig_t, sizeof(orig_t)) == (ssize_t)tsz);
    close(fd);

    for (int round = 0; round < 4; round++) {
        if (round == 0) {
            CHECK(unlink(idx) == 0); /* missing offset index */
        } else if (round == 1) {
            CHECK(unlink(tidx) == 0); /* missing time index */
        } else if (round == 2) {
            CHECK(truncate(idx, (off_t)(isz - 8)) == 0); /* short: entry lost */
        } else {
            fd = open(idx, O_RDWR); /* not monotonic */
            uint8_t z[8] = {0};
            CHECK(pwrite(fd, z, 8, 8) == 8);
            close(fd);
        }
        log = open_log(dir, &cfg);
        CHECK(file_size(idx) == isz && file_size(tidx) == tsz);
        fd = open(idx, O_RDONLY);
        CHECK(read(fd, now_i, sizeof(now_i)) == (ssize_t)isz);
        close(fd);
        CHECK(memcmp(now_i, orig, isz) == 0); /* rebuilt byte for byte */
        fd = open(tidx, O_RDONLY);
        CHECK(read(fd, now_i, sizeof(now_i)) == (ssize_t)tsz);
        close(fd);
        CHECK(memcmp(now_i, orig_t, tsz) == 0);
        mk_buf_t out;
        mk_buf_init(&out);
        for (int k = 0; k < N; k += 7) {
            int64_t next;
            mk_buf_reset(&out);
            CHECK_RC(mk_log_read(log, recs[k].last, 1, true, &out, &next));
            CHECK(check_batches(out.data, out.len, recs, (size_t)k) == 1);
        }
        mk_buf_free(&out);
        CHECK_RC(mk_log_close(log));
    }
    /* orphan index files go away */
    PATHF(path, "%s/%020d.index", dir, 999999);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    close(fd);
    log = open_log(dir, &cfg);
    CHECK(access(path, F_OK) != 0);
    /* the active segment's index (recovered after a crash) is rebuilt too */
    last_seg_file(dir, ".index", path);
    CHECK_RC(mk_log_close(log));
    isz = file_size(path);
    CHECK(unlink(path) == 0);
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    CHECK(file_size(path) == isz);
    CHECK_RC(mk_log_close(log));
}

static void test_timestamps(void)
{
    char dir[PATH_MAX];
    subdir(dir, "time/p-4");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 200;
    mk_log_t *log = open_log(dir, &cfg);
    int64_t off, ts;
    mk_log_ts_t mt;
    CHECK(mk_log_offset_for_time(log, 0, &off, &ts) == MK_ERR_NOT_FOUND);
    CHECK(mk_log_max_timestamp(log, &mt) == MK_ERR_NOT_FOUND);
    enum { N = 200 };
    static batch_rec_t recs[N];
    for (int i = 0; i < N; i++) {
        /* mostly increasing timestamps, one spike, some going back */
        int64_t t = 10000 + 10 * i;
        if (i == 77)
            t = 500000;
        if (i % 17 == 5)
            t -= 1000;
        recs[i] = append_one(log, 2, t, 30 + rnd(40), 1);
    }
    for (int round = 0; round < 2; round++) {
        for (int64_t q = 8000; q < 12500; q += 37) {
            int want = -1;
            for (int i = 0; i < N && want < 0; i++)
                if (recs[i].max_ts >= q)
                    want = i;
            CHECK_RC(mk_log_offset_for_time(log, q, &off, &ts));
            CHECK(off == recs[want].base && ts == recs[want].max_ts);
        }
        CHECK_RC(mk_log_offset_for_time(log, 400000, &off, &ts));
        CHECK(off == recs[77].base && ts == recs[77].max_ts);
        CHECK(mk_log_offset_for_time(log, 600000, &off, &ts) == MK_ERR_NOT_FOUND);
        CHECK_RC(mk_log_max_timestamp(log, &mt));
        CHECK(mt.timestamp == recs[77].max_ts && mt.base_offset == recs[77].base &&
              mt.last_offset == recs[77].last);
        CHECK_RC(mk_log_close(log));
        log = open_log(dir, &cfg); /* the second round runs on loaded indexes */
    }
    /* below the start offset nothing is found */
    CHECK_RC(mk_log_delete_records(log, recs[100].base));
    CHECK_RC(mk_log_offset_for_time(log, 0, &off, &ts));
    CHECK(off == recs[100].base);
    CHECK_RC(mk_log_close(log));
}

static void test_retention(void)
{
    char dir[PATH_MAX];
    subdir(dir, "retention/p-5");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 2048;
    cfg.retention_ms = -1;
    mk_log_t *log = open_log(dir, &cfg);
    int64_t now = mk_now_ms();
    enum { N = 200 };
    static batch_rec_t recs[N];
    for (int i = 0; i < N; i++)
        recs[i] = append_one(log, 2, i < N / 2 ? now - 100000 : now, 60, 1);
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    int before = st.segment_count;
    CHECK(mk_log_retain(log, now) == 0); /* infinite by default here */

    /* by time: the old half goes (whole segments only) */
    cfg.retention_ms = 50000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    int deleted = mk_log_retain(log, now);
    CHECK(deleted > 0);
    mk_log_stats(log, &st);
    CHECK(st.segment_count == before - deleted);
    int64_t start = mk_log_start_offset(log);
    CHECK(start > 0 && start <= recs[N / 2].base);
    mk_buf_t out;
    mk_buf_init(&out);
    int64_t next;
    CHECK(mk_log_read(log, start - 1, SIZE_MAX, true, &out, &next) == MK_ERR_RANGE);
    CHECK(mk_log_read(log, 0, SIZE_MAX, true, &out, &next) == MK_ERR_RANGE);
    CHECK_RC(mk_log_read(log, start, 100, true, &out, &next));
    CHECK(out.len > 0);

    /* by size */
    cfg.retention_ms = -1;
    cfg.retention_bytes = 5000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    deleted = mk_log_retain(log, now);
    CHECK(deleted > 0);
    mk_log_stats(log, &st);
    CHECK(st.size_bytes >= 5000 - 2048 && st.size_bytes <= 5000 + 2048);
    CHECK(mk_log_start_offset(log) > start);
    CHECK(mk_log_retain(log, now) == 0);

    /* reopening keeps the start offset (it is a segment boundary) */
    start = mk_log_start_offset(log);
    CHECK_RC(mk_log_close(log));
    log = open_log(dir, &cfg);
    CHECK(mk_log_start_offset(log) == start);

    /* everything expired: the active segment is rolled and deleted too */
    cfg.retention_ms = 1000;
    cfg.retention_bytes = -1;
    CHECK_RC(mk_log_set_config(log, &cfg));
    int64_t end = mk_log_end_offset(log);
    CHECK(mk_log_retain(log, now + 10000000) > 0);
    mk_log_stats(log, &st);
    CHECK(st.segment_count == 1 && st.size_bytes == 0);
    CHECK(mk_log_start_offset(log) == end && mk_log_end_offset(log) == end);
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, end, SIZE_MAX, true, &out, &next));
    CHECK(out.len == 0);
    batch_rec_t r = append_one(log, 1, now, 10, 1);
    CHECK(r.base == end);
    mk_buf_free(&out);
    CHECK_RC(mk_log_close(log));
}

static void test_delete_truncate_replica(void)
{
    char dir[PATH_MAX], dir2[PATH_MAX];
    subdir(dir, "trunc/p-6");
    subdir(dir2, "trunc/p-6-follower");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 3000;
    cfg.index_interval_bytes = 400;
    mk_log_t *log = open_log(dir, &cfg);
    enum { N = 150 };
    static batch_rec_t recs[N];
    for (int i = 0; i < N; i++)
        recs[i] = append_one(log, 3, 1000 + i, 30, 4);

    /* a follower copies the leader's bytes with their offsets */
    mk_log_t *f = open_log(dir2, &cfg);
    mk_buf_t out, fout;
    mk_buf_init(&out);
    mk_buf_init(&fout);
    int64_t fetch = 0, next;
    while (fetch < mk_log_end_offset(log)) {
        mk_buf_reset(&out);
        CHECK_RC(mk_log_read(log, fetch, 1000, true, &out, &next));
        mk_log_append_info_t info;
        CHECK_RC(mk_log_append_replica(f, out.data, out.len, mk_now_ms(), &info));
        CHECK(info.first_offset == fetch && info.end_offset == next);
        fetch = next;
    }
    read_all(log, &out);
    read_all(f, &fout);
    CHECK(out.len == fout.len && memcmp(out.data, fout.data, out.len) == 0);
    /* going backwards is refused */
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, 0, 1, true, &out, &next));
    CHECK(mk_log_append_replica(f, out.data, out.len, mk_now_ms(), NULL) == MK_ERR_INVALID);

    /* follower truncation, inside a batch: the batch goes whole */
    int k = 100;
    CHECK_RC(mk_log_truncate_to(f, recs[k].base + 1));
    CHECK(mk_log_end_offset(f) == recs[k].base);
    read_all(f, &fout);
    CHECK(check_batches(fout.data, fout.len, recs, 0) == (size_t)k);
    mk_log_stats_t st;
    mk_log_stats(f, &st);
    CHECK(st.size_bytes == fout.len);
    CHECK_RC(mk_log_truncate_to(f, recs[40].base)); /* across segments */
    CHECK(mk_log_end_offset(f) == recs[40].base);
    CHECK_RC(mk_log_close(f));
    f = open_log(dir2, &cfg);
    CHECK(mk_log_end_offset(f) == recs[40].base);
    read_all(f, &fout);
    CHECK(check_batches(fout.data, fout.len, recs, 0) == 40);
    /* the follower catches up again after truncation */
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, recs[40].base, SIZE_MAX, true, &out, &next));
    CHECK_RC(mk_log_append_replica(f, out.data, out.len, mk_now_ms(), NULL));
    read_all(log, &out);
    read_all(f, &fout);
    CHECK(out.len == fout.len && memcmp(out.data, fout.data, out.len) == 0);
    /* full truncation restarts the log */
    CHECK_RC(mk_log_truncate_to(f, 0));
    CHECK(mk_log_end_offset(f) == 0 && mk_log_start_offset(f) == 0);
    mk_log_stats(f, &st);
    CHECK(st.segment_count == 1 && st.size_bytes == 0);
    /* a follower starting ahead of an empty log */
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, recs[60].base, SIZE_MAX, true, &out, &next));
    CHECK_RC(mk_log_append_replica(f, out.data, out.len, mk_now_ms(), NULL));
    CHECK(mk_log_start_offset(f) == recs[60].base && mk_log_end_offset(f) == mk_log_end_offset(log));
    /* truncate fully: a non-empty follower restarts past its end (below a
     * leader's log start), and stays there across a reopen */
    int64_t restart = mk_log_end_offset(log) + 100;
    CHECK_RC(mk_log_truncate_fully(f, restart));
    CHECK(mk_log_start_offset(f) == restart && mk_log_end_offset(f) == restart);
    CHECK(mk_log_latest_epoch(f) == -1);
    mk_log_stats(f, &st);
    CHECK(st.segment_count == 1 && st.size_bytes == 0);
    CHECK_RC(mk_log_close(f));
    f = open_log(dir2, &cfg);
    CHECK(mk_log_start_offset(f) == restart && mk_log_end_offset(f) == restart);
    CHECK_RC(mk_log_destroy(f));

    /* DeleteRecords: inside a batch, persisted across reopen */
    int64_t cut = recs[90].base + 1;
    CHECK(mk_log_delete_records(log, mk_log_end_offset(log) + 1) == MK_ERR_RANGE);
    CHECK_RC(mk_log_delete_records(log, cut));
    CHECK(mk_log_start_offset(log) == cut);
    CHECK_RC(mk_log_delete_records(log, 5)); /* lower: no-op */
    CHECK(mk_log_start_offset(log) == cut);
    CHECK(mk_log_read(log, cut - 1, SIZE_MAX, true, &out, &next) == MK_ERR_RANGE);
    mk_buf_reset(&out);
    CHECK_RC(mk_log_read(log, cut, SIZE_MAX, true, &out, &next));
    CHECK(check_batches(out.data, out.len, recs, 90) == N - 90);
    mk_log_stats(log, &st);
    int segs = st.segment_count;
    CHECK_RC(mk_log_close(log));
    log = open_log(dir, &cfg);
    CHECK(mk_log_start_offset(log) == cut);
    mk_log_stats(log, &st);
    CHECK(st.segment_count == segs);
    /* up to the end: only the active segment remains */
    CHECK_RC(mk_log_delete_records(log, mk_log_end_offset(log)));
    mk_log_stats(log, &st);
    CHECK(st.segment_count == 1);
    CHECK_RC(mk_log_close(log));
    mk_buf_free(&out);
    mk_buf_free(&fout);
}

/* A follower append in steps (mk_log_prewrite): the stored bytes are the
 * same as a plain append's; any write, truncation or roll in between voids
 * the steps (all is written again); a roll ahead is refused; steps left
 * without their append are cut at reopen. */
static void test_prewrite(void)
{
    char dir[PATH_MAX], dir2[PATH_MAX];
    subdir(dir, "prewrite/p-0");
    subdir(dir2, "prewrite/p-0-follower");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    mk_log_t *log = open_log(dir, &cfg);
    int64_t now0 = mk_now_ms(); /* recent timestamps: segment.ms rolls none */
    batch_rec_t r0 = append_one(log, 2, now0, 10, 1);
    batch_rec_t r1 = append_one(log, 400, now0 + 10, 500, 1); /* about 200 KB */
    (void)r0;
    mk_buf_t b0, b1, out;
    mk_buf_init(&b0);
    mk_buf_init(&b1);
    mk_buf_init(&out);
    int64_t next;
    CHECK_RC(mk_log_read(log, 0, 1, true, &b0, &next));
    CHECK(next == r1.base);
    CHECK_RC(mk_log_read(log, r1.base, 1, true, &b1, &next));
    CHECK(b1.len == r1.size && b1.len > 150000);

    mk_log_t *f = open_log(dir2, &cfg);
    CHECK_RC(mk_log_append_replica(f, b0.data, b0.len, mk_now_ms(), NULL));
    /* in steps of 64 KiB: nothing is visible until the append */
    mk_log_prewrite_t pw;
    memset(&pw, 0, sizeof(pw));
    int rc, steps = 0;
    while ((rc = mk_log_prewrite(f, &pw, b1.data, b1.len, 64 << 10)) == 0) {
        steps++;
        CHECK(mk_log_end_offset(f) == r1.base);
    }
    CHECK(rc == 1 && steps == (int)(b1.len / (64 << 10)) && pw.done == b1.len);
    CHECK(mk_log_prewrite(f, &pw, b1.data, b1.len, 64 << 10) == 1); /* nothing more */
    mk_log_append_info_t info;
    CHECK_RC(mk_log_append_replica_prewritten(f, b1.data, b1.len, mk_now_ms(), &pw, &info));
    CHECK(info.first_offset == r1.base && mk_log_end_offset(f) == r1.last + 1);
    mk_buf_t lall, fall;
    mk_buf_init(&lall);
    mk_buf_init(&fall);
    read_all(log, &lall);
    read_all(f, &fall);
    CHECK(lall.len == fall.len && memcmp(lall.data, fall.data, lall.len) == 0);

    /* steps voided by a truncation and the same bytes appended again: the
     * file was cut, so a stale skip would leave a hole */
    CHECK_RC(mk_log_truncate_to(f, r1.base));
    memset(&pw, 0, sizeof(pw));
    CHECK(mk_log_prewrite(f, &pw, b1.data, b1.len, SIZE_MAX) == 1);
    CHECK_RC(mk_log_truncate_to(f, 0));                                  /* fully: a new file */
    CHECK_RC(mk_log_append_replica(f, b0.data, b0.len, mk_now_ms(), NULL)); /* same end as before */
    CHECK_RC(mk_log_append_replica_prewritten(f, b1.data, b1.len, mk_now_ms(), &pw, NULL));
    read_all(f, &fall);
    CHECK(lall.len == fall.len && memcmp(lall.data, fall.data, lall.len) == 0);
    CHECK_RC(mk_log_close(f));
    f = open_log(dir2, &cfg);
    read_all(f, &fall);
    CHECK(lall.len == fall.len && memcmp(lall.data, fall.data, lall.len) == 0);

    /* steps left without their append: the log ends where it did, a reopen
     * cuts the torn tail, and the follower goes on */
    CHECK_RC(mk_log_truncate_to(f, r1.base));
    memset(&pw, 0, sizeof(pw));
    CHECK(mk_log_prewrite(f, &pw, b1.data, b1.len, 100000) == 0);
    CHECK_RC(mk_log_close(f));
    f = open_log(dir2, &cfg);
    CHECK(mk_log_end_offset(f) == r1.base);
    CHECK_RC(mk_log_append_replica(f, b1.data, b1.len, mk_now_ms(), NULL));
    read_all(f, &fall);
    CHECK(lall.len == fall.len && memcmp(lall.data, fall.data, lall.len) == 0);
    CHECK_RC(mk_log_close(f));

    /* an append that would roll is not done in steps */
    char dir3[PATH_MAX];
    subdir(dir3, "prewrite/p-0-small");
    cfg.segment_bytes = 100000;
    f = open_log(dir3, &cfg);
    CHECK_RC(mk_log_append_replica(f, b0.data, b0.len, mk_now_ms(), NULL));
    memset(&pw, 0, sizeof(pw));
    CHECK(mk_log_prewrite(f, &pw, b1.data, b1.len, 64 << 10) == MK_ERR_UNSUPPORTED);
    CHECK_RC(mk_log_append_replica_prewritten(f, b1.data, b1.len, mk_now_ms(), &pw, NULL));
    CHECK(mk_log_end_offset(f) == r1.last + 1);
    CHECK_RC(mk_log_close(f));

    /* a leader append in steps: MK_ERR_AGAIN and no offset taken until the
     * last step; stored as a plain append stores it */
    char dir4[PATH_MAX], dir5[PATH_MAX];
    subdir(dir4, "prewrite/p-1");
    subdir(dir5, "prewrite/p-1-plain");
    mk_log_config_default(&cfg);
    mk_log_t *l4 = open_log(dir4, &cfg), *l5 = open_log(dir5, &cfg);
    mk_buf_t big, big2;
    mk_buf_init(&big);
    mk_buf_init(&big2);
    make_batch(&big, 300, now0 + 20, 1, 500);
    make_batch(&big, 5, now0 + 30, 1, 20); /* two batches */
    CHECK(big.len > 150000);
    mk_buf_put(&big2, big.data, big.len);
    append_one(l4, 2, now0, 10, 3);
    append_one(l5, 2, now0, 10, 3);
    mk_batch_view_t v[4];
    size_t nv = 0;
    CHECK_RC(mk_batch_views_parse(big.data, big.len, v, 4, &nv));
    CHECK(nv == 2);
    bool stepped = false;
    int calls = 0;
    mk_log_append_info_t i4, i5;
    while ((rc = mk_log_append_views_stepped(l4, big.data, big.len, v, nv, 3, mk_now_ms(), 64 << 10, &stepped,
                                             &i4)) == MK_ERR_AGAIN) {
        CHECK(stepped);
        CHECK(mk_log_end_offset(l4) == 2);
        calls++;
    }
    CHECK_RC(rc);
    CHECK(!stepped && calls == (int)(big.len / (64 << 10)));
    CHECK(i4.first_offset == 2 && i4.end_offset == 2 + 305 && i4.batch_count == 2);
    CHECK_RC(mk_log_append(l5, big2.data, big2.len, 3, mk_now_ms(), &i5));
    read_all(l4, &lall);
    read_all(l5, &fall);
    CHECK(lall.len == fall.len && memcmp(lall.data, fall.data, lall.len) == 0);
    /* voided by another append between steps: the next call appends at once */
    mk_buf_reset(&big);
    make_batch(&big, 300, now0 + 40, 1, 500);
    CHECK_RC(mk_batch_views_parse(big.data, big.len, v, 4, &nv));
    CHECK(mk_log_append_views_stepped(l4, big.data, big.len, v, nv, 3, mk_now_ms(), 64 << 10, &stepped, &i4) ==
          MK_ERR_AGAIN);
    append_one(l4, 1, now0 + 35, 10, 3);
    CHECK_RC(mk_log_append_views_stepped(l4, big.data, big.len, v, nv, 3, mk_now_ms(), 64 << 10, &stepped, &i4));
    CHECK(!stepped && i4.first_offset == 2 + 305 + 1);
    CHECK_RC(mk_log_close(l4));
    l4 = open_log(dir4, &cfg);
    CHECK(mk_log_end_offset(l4) == 2 + 305 + 1 + 300);
    read_all(l4, &lall);
    size_t nb = 0, pos = 0;
    mk_batch_view_t bv;
    while (mk_batch_view_next(lall.data, lall.len, &pos, &bv) == 1) {
        CHECK(mk_batch_validate_ex(lall.data + bv.pos, bv.size, 0, 0, NULL, NULL, 0) == 0);
        nb++;
    }
    CHECK(nb == 5 && pos == lall.len);
    /* two large appends in steps at once: the second goes at once, and the
     * first (voided by it) at its next call: neither restarts the other */
    mk_buf_t x, y;
    mk_buf_init(&x);
    mk_buf_init(&y);
    make_batch(&x, 300, now0 + 50, 1, 500);
    make_batch(&y, 300, now0 + 60, 1, 500);
    mk_batch_view_t vx[2], vy[2];
    size_t nx = 0, ny = 0;
    CHECK_RC(mk_batch_views_parse(x.data, x.len, vx, 2, &nx));
    CHECK_RC(mk_batch_views_parse(y.data, y.len, vy, 2, &ny));
    int64_t e0 = mk_log_end_offset(l4);
    CHECK(mk_log_append_views_stepped(l4, x.data, x.len, vx, nx, 3, mk_now_ms(), 64 << 10, &stepped, &i4) ==
          MK_ERR_AGAIN);
    CHECK_RC(mk_log_append_views_stepped(l4, y.data, y.len, vy, ny, 3, mk_now_ms(), 64 << 10, &stepped, &i5));
    CHECK(!stepped && i5.first_offset == e0);
    CHECK_RC(mk_log_append_views_stepped(l4, x.data, x.len, vx, nx, 3, mk_now_ms(), 64 << 10, &stepped, &i4));
    CHECK(!stepped && i4.first_offset == e0 + 300 && mk_log_end_offset(l4) == e0 + 600);
    read_all(l4, &lall);
    nb = 0;
    pos = 0;
    while (mk_batch_view_next(lall.data, lall.len, &pos, &bv) == 1) {
        CHECK(mk_batch_validate_ex(lall.data + bv.pos, bv.size, 0, 0, NULL, NULL, 0) == 0);
        nb++;
    }
    CHECK(nb == 7 && pos == lall.len);
    mk_buf_free(&x);
    mk_buf_free(&y);
    CHECK_RC(mk_log_close(l4));
    CHECK_RC(mk_log_close(l5));
    mk_buf_free(&big);
    mk_buf_free(&big2);

    mk_buf_free(&lall);
    mk_buf_free(&fall);
    mk_buf_free(&b0);
    mk_buf_free(&b1);
    mk_buf_free(&out);
    CHECK_RC(mk_log_close(log));
}

static void test_segment_ms(void)
{
    char dir[PATH_MAX];
    subdir(dir, "rollms/p-7");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_ms = 1000;
    mk_log_t *log = open_log(dir, &cfg);
    mk_buf_t b;
    mk_buf_init(&b);
    int64_t t0 = mk_now_ms();
    mk_log_stats_t st;
    for (int i = 0; i < 4; i++) {
        mk_buf_reset(&b);
        make_batch(&b, 1, t0, 1, 10);
        int64_t at[] = {t0, t0 + 500, t0 + 1001, t0 + 1500};
        CHECK_RC(mk_log_append(log, b.data, b.len, 1, at[i], NULL));
        mk_log_stats(log, &st);
        CHECK(st.segment_count == (i < 2 ? 1 : 2));
    }
    /* the index being full rolls too */
    cfg.segment_index_bytes = 8;
    cfg.index_interval_bytes = 0;
    CHECK_RC(mk_log_set_config(log, &cfg));
    for (int i = 0; i < 3; i++) {
        mk_buf_reset(&b);
        make_batch(&b, 1, t0, 1, 10);
        CHECK_RC(mk_log_append(log, b.data, b.len, 1, t0 + 1600, NULL));
    }
    mk_log_stats(log, &st);
    CHECK(st.segment_count >= 3);
    mk_buf_free(&b);
    CHECK_RC(mk_log_close(log));
    cfg.segment_bytes = 10; /* out of range */
    mk_log_t *bad = NULL;
    CHECK(mk_log_open(dir, &cfg, &bad) == MK_ERR_INVALID && bad == NULL);
}

static void test_io_faults(void)
{
    char dir[PATH_MAX], idx[PATH_MAX], lg[PATH_MAX];
    subdir(dir, "faults/p-8");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.index_interval_bytes = 100;
    mk_log_t *log = open_log(dir, &cfg);
    static batch_rec_t recs[41];
    for (int i = 0; i < 20; i++)
        recs[i] = append_one(log, 2, 100, 80, 1);
    recs[20] = append_one(log, 2, 1000, 80, 1); /* the next index entry brings a time entry */
    PATHF(idx, "%s/%020d.index", dir, 0);
    PATHF(lg, "%s/%020d.log", dir, 0);
    char tidx[PATH_MAX];
    PATHF(tidx, "%s/%020d.timeindex", dir, 0);
    uint64_t isz = file_size(idx), lsz = file_size(lg), tsz = file_size(tidx);
    int64_t end = mk_log_end_offset(log);
    mk_buf_t b;
    mk_buf_init(&b);
    make_batch(&b, 2, 2000, 1, 80);
    for (long nth = 1; nth <= 3; nth++) { /* data, offset index, time index write */
        mk_log_fail_io_at(nth);
        CHECK(mk_log_append(log, b.data, b.len, 1, mk_now_ms(), NULL) == MK_ERR_IO);
        mk_log_fail_io_at(0);
        CHECK(mk_log_end_offset(log) == end);
        CHECK(file_size(idx) == isz && file_size(lg) == lsz && file_size(tidx) == tsz);
    }
    /* still healthy, and the indexes were not damaged */
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(st.io_error == 0);
    for (int i = 21; i < 41; i++)
        recs[i] = append_one(log, 2, 3000 + i, 80, 1);
    CHECK(file_size(tidx) > tsz);
    mk_buf_t out;
    mk_buf_init(&out);
    read_all(log, &out);
    CHECK(check_batches(out.data, out.len, recs, 0) == 41);
    CHECK_RC(mk_log_close(log));
    simulate_crash(dir);
    uint64_t isz2 = file_size(idx), tsz2 = file_size(tidx);
    log = open_log(dir, &cfg); /* rebuilds the active segment's indexes */
    CHECK(file_size(idx) == isz2 && file_size(tidx) == tsz2);
    mk_buf_free(&out);
    mk_buf_free(&b);
    CHECK_RC(mk_log_destroy(log));
    CHECK(access(dir, F_OK) != 0);
}

static void test_flush_uv(void)
{
    char dir[PATH_MAX];
    subdir(dir, "flush/p-9");
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.loop = &loop;
    cfg.flush_messages = 10;
    cfg.segment_bytes = 2048;
    mk_log_t *log = open_log(dir, &cfg);
    mk_log_stats_t st;
    /* a new leader's epoch is written but waits for the next flush (an
     * entry without data would not survive a reopen anyway) */
    CHECK_RC(mk_log_epoch_begin(log, 1));
    mk_log_stats(log, &st);
    CHECK(!st.flush_in_flight);
    for (int i = 0; i < 50; i++)
        append_one(log, 1, 100, 100, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_stats(log, &st);
    CHECK(!st.flush_in_flight && st.io_error == 0 && st.segment_count > 1);
    CHECK(st.flushed_offset == st.end_offset);
    /* an explicit flush, and one requested while it runs */
    append_one(log, 3, 100, 10, 1);
    CHECK_RC(mk_log_flush(log));
    append_one(log, 3, 100, 10, 1);
    CHECK_RC(mk_log_flush(log));
    mk_log_stats(log, &st);
    CHECK(st.flush_in_flight && st.flushed_offset < st.end_offset);
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_stats(log, &st);
    CHECK(!st.flush_in_flight && st.flushed_offset == st.end_offset);
    /* flush.ms through tick */
    cfg.flush_messages = INT64_MAX;
    cfg.flush_ms = 1000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    append_one(log, 1, 100, 10, 1);
    mk_log_tick(log, mk_now_ms() - 5000);
    mk_log_stats(log, &st);
    CHECK(!st.flush_in_flight);
    /* a new epoch begun by an append: its checkpoint waits for the next
     * flush, as the batch it starts at does */
    append_one(log, 1, 100, 10, 2);
    mk_log_stats(log, &st);
    CHECK(!st.flush_in_flight && log->epochs_unsynced);
    append_one(log, 1, 100, 10, 2);
    mk_log_tick(log, mk_now_ms() + 5000);
    mk_log_stats(log, &st);
    CHECK(st.flush_in_flight && !log->epochs_unsynced);
    /* close while a flush is in flight: the request outlives the log */
    append_one(log, 1, 100, 10, 2);
    CHECK_RC(mk_log_close(log));
    uv_run(&loop, UV_RUN_DEFAULT);
    log = open_log(dir, &cfg);
    /* retention with a loop unlinks on the threadpool */
    cfg.retention_bytes = 0;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_retain(log, mk_now_ms()) > 0);
    CHECK_RC(mk_log_close(log));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Leader append from views parsed once by the caller: the bytes and the
 * views are rewritten alike; views that do not tile the bytes are refused;
 * the log reads back what mk_log_append() would have written. */
static void test_append_views(void)
{
    char dir[PATH_MAX];
    subdir(dir, "views/p-0");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.index_interval_bytes = 64; /* index entries from the views' positions */
    mk_log_t *log = open_log(dir, &cfg);
    append_one(log, 2, 100, 10, 1);

    mk_buf_t b, back;
    mk_buf_init(&b);
    mk_buf_init(&back);
    make_batch(&b, 3, 200, 1, 20);
    make_batch(&b, 1, 300, 1, 20);
    make_batch(&b, 4, 250, 1, 20);
    mk_batch_view_t v[3];
    size_t n = 0;
    CHECK_RC(mk_batch_views_parse(b.data, b.len, v, 3, &n));
    CHECK(n == 3);

    /* a view that does not start where the previous one ended */
    mk_batch_view_t bad[3];
    memcpy(bad, v, sizeof(bad));
    bad[1].pos++;
    CHECK(mk_log_append_views(log, b.data, b.len, bad, 3, 1, mk_now_ms(), NULL) == MK_ERR_INVALID);
    CHECK(mk_log_append_views(log, b.data, b.len, v, 2, 1, mk_now_ms(), NULL) == MK_ERR_INVALID);
    CHECK(mk_log_append_views(log, b.data, b.len, v, 0, 1, mk_now_ms(), NULL) == MK_ERR_INVALID);
    CHECK(mk_log_end_offset(log) == 2);

    mk_batch_view_set_log_append_time(b.data, &v[1], 777);
    mk_log_append_info_t info;
    CHECK_RC(mk_log_append_views(log, b.data, b.len, v, 3, 2, mk_now_ms(), &info));
    CHECK(info.first_offset == 2 && info.last_offset == 9 && info.batch_count == 3);
    CHECK(info.max_timestamp == 777);
    CHECK(v[0].hdr.baseOffset == 2 && v[1].hdr.baseOffset == 5 && v[2].hdr.baseOffset == 6);
    for (size_t i = 0; i < 3; i++) {
        mk_batch_view_t again;
        CHECK_RC(mk_batch_view_parse(b.data + v[i].pos, b.len - v[i].pos, &again));
        CHECK(again.size == v[i].size && again.hdr.baseOffset == v[i].hdr.baseOffset &&
              again.hdr.partitionLeaderEpoch == v[i].hdr.partitionLeaderEpoch &&
              again.hdr.crc == v[i].hdr.crc && again.hdr.attributes == v[i].hdr.attributes &&
              again.hdr.maxTimestamp == v[i].hdr.maxTimestamp);
        CHECK(v[i].hdr.partitionLeaderEpoch == 2);
        CHECK_RC(mk_log_batch_check(b.data + v[i].pos, v[i].size, NULL));
    }
    CHECK(mk_log_latest_epoch(log) == 2);
    /* what was appended is what the views describe, and survives a reopen */
    int64_t next;
    CHECK_RC(mk_log_read(log, 2, SIZE_MAX, true, &back, &next));
    CHECK(next == 10 && back.len == b.len && memcmp(back.data, b.data, b.len) == 0);
    int64_t off, ts;
    CHECK_RC(mk_log_offset_for_time(log, 700, &off, &ts));
    CHECK(off == 5 && ts == 777);
    CHECK_RC(mk_log_close(log));
    simulate_crash(dir); /* full validation of what the views wrote */
    log = open_log(dir, &cfg);
    CHECK(mk_log_end_offset(log) == 10 && mk_log_latest_epoch(log) == 2);
    mk_buf_reset(&back);
    CHECK_RC(mk_log_read(log, 2, SIZE_MAX, true, &back, &next));
    CHECK(back.len == b.len && memcmp(back.data, b.data, b.len) == 0);
    CHECK_RC(mk_log_close(log));

    /* the wrapper takes more batches than its stack holds */
    log = open_log(dir, &cfg);
    mk_buf_reset(&b);
    for (int i = 0; i < 100; i++)
        make_batch(&b, 1, 1000 + i, 1, 5);
    CHECK_RC(mk_log_append(log, b.data, b.len, 3, mk_now_ms(), &info));
    CHECK(info.batch_count == 100 && info.first_offset == 10 && info.last_offset == 109);
    CHECK(mk_log_append_replica(log, b.data, b.len, mk_now_ms(), NULL) == MK_ERR_INVALID); /* below the end */
    CHECK_RC(mk_log_close(log));
    mk_buf_free(&b);
    mk_buf_free(&back);
}

static int close_cb_rc = 1, close_cb_calls;

static void close_cb(int rc, void *arg)
{
    CHECK(arg == &close_cb_calls);
    close_cb_rc = rc;
    close_cb_calls++;
}

static bool has_marker(const char *dir)
{
    char path[PATH_MAX];
    PATHF(path, "%s/clean-shutdown", dir);
    return access(path, F_OK) == 0;
}

/* The asynchronous close: fsyncs on the threadpool, marker and callback on
 * the loop; a reopen of the directory while it is in flight works at once
 * and the overtaken close leaves no (stale) marker. */
static void test_close_async(void)
{
    char dir[PATH_MAX];
    subdir(dir, "close-async/p-0");
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.loop = &loop;
    mk_log_t *log = open_log(dir, &cfg);
    CHECK(mk_log_close_async(log, NULL, close_cb, &close_cb_calls) == MK_ERR_INVALID);
    append_one(log, 3, 100, 10, 1);
    CHECK_RC(mk_log_flush(log)); /* in flight when the close begins */

    /* plain: the callback fires once, after the marker was written */
    CHECK_RC(mk_log_close_async(log, &loop, close_cb, &close_cb_calls));
    CHECK(close_cb_calls == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(close_cb_calls == 1 && close_cb_rc == 0 && has_marker(dir));

    /* a start racing the close: reopened before the close's work ran */
    log = open_log(dir, &cfg);
    CHECK(!has_marker(dir) && mk_log_end_offset(log) == 3);
    append_one(log, 2, 100, 10, 1);
    CHECK_RC(mk_log_close_async(log, &loop, close_cb, &close_cb_calls));
    log = open_log(dir, &cfg);
    CHECK(mk_log_end_offset(log) == 5);
    append_one(log, 1, 100, 10, 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(close_cb_calls == 2 && close_cb_rc == 0);
    CHECK(!has_marker(dir)); /* the overtaken close wrote none */
    append_one(log, 1, 100, 10, 2);
    CHECK(mk_log_end_offset(log) == 7);
    /* the reopened log closes as usual, then reopens whole */
    CHECK_RC(mk_log_close_async(log, &loop, NULL, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(has_marker(dir));
    log = open_log(dir, &cfg);
    CHECK(mk_log_end_offset(log) == 7 && mk_log_latest_epoch(log) == 2);
    CHECK_RC(mk_log_close(log));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Every allocation of open (full recovery), read, append, retention and
 * close fails in turn: each call fails cleanly or succeeds, nothing leaks
 * (under ASan), and the log on disk stays whole. */
static void test_oom(void)
{
    char dir[PATH_MAX];
    subdir(dir, "oom/p-10");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 1500;
    cfg.index_interval_bytes = 200;
    cfg.retention_bytes = 3000;
    cfg.retention_ms = -1;
    mk_log_t *log = open_log(dir, &cfg);
    for (int i = 0; i < 30; i++)
        append_one(log, 2, 1000 + i, 60, 1);
    CHECK_RC(mk_log_close(log));
    mk_buf_t b, out;
    mk_buf_init(&b);
    mk_buf_init(&out);
    make_batch(&b, 2, 5000, 1, 60);
    bool clean = false;
    char ckpt[PATH_MAX];
    PATHF(ckpt, "%s/leader-epoch-checkpoint", dir);
    for (long nth = 1; !clean && nth < 2000; nth++) {
        simulate_crash(dir);
        if (nth % 3 == 0)
            unlink(ckpt); /* the rebuild runs out of memory too */
        mk_log_fail_io_at(0);
        mk_mem_fail_at(nth);
        int fails = 0;
        log = NULL;
        if (mk_log_open(dir, &cfg, &log) != 0) {
            fails++;
        } else {
            int64_t next, off, ts;
            mk_buf_free(&out);
            fails += mk_log_read(log, mk_log_start_offset(log), SIZE_MAX, true, &out, &next) != 0;
            /* alternating epochs: every append changes the cache */
            fails += mk_log_append(log, b.data, b.len, 1 + (int32_t)(nth % 2), mk_now_ms(),
                                   NULL) != 0;
            fails += mk_log_retain(log, mk_now_ms()) < 0;
            fails += mk_log_offset_for_time(log, 1010, &off, &ts) != 0;
            fails += mk_log_close(log) != 0;
        }
        clean = fails == 0;
        mk_mem_fail_at(0);
        /* whatever happened, the log is whole */
        log = open_log(dir, &cfg);
        read_all(log, &out);
        size_t pos = 0;
        while (pos < out.len) {
            mk_batch_view_t h;
            CHECK_RC(mk_log_view_parse(out.data + pos, out.len - pos, &h));
            CHECK_RC(mk_log_batch_check(out.data + pos, h.size, NULL));
            pos += h.size;
        }
        CHECK(pos == out.len);
        /* and the epoch cache follows its batches */
        CHECK(mk_log_latest_epoch(log) == last_batch_epoch(log));
        CHECK_RC(mk_log_close(log));
    }
    CHECK(clean);
    mk_buf_free(&b);
    mk_buf_free(&out);
}

/* ========================================================= leader epochs */

/* Stamps a follower's batch as the leader would have: baseOffset and
 * partitionLeaderEpoch, neither covered by the CRC. */
static void stamp_batch(uint8_t *p, int64_t base, int32_t epoch)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)base >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        p[12 + i] = (uint8_t)((uint32_t)epoch >> (24 - 8 * i));
}

/* Appends build the cache; every kind of query; begin; reopen; recovery
 * of a stale, ahead, missing or malformed checkpoint. */
static void test_epochs_cache(void)
{
    char dir[PATH_MAX], want[256], want8[256];
    subdir(dir, "epochs/p-11");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 2048;
    cfg.index_interval_bytes = 256;
    mk_log_t *log = open_log(dir, &cfg);
    CHECK(mk_log_latest_epoch(log) == -1);
    CHECK_EPOCHS(dir, "0\n0\n");
    CHECK_EO(log, 0, -1, -1);
    CHECK_EO(log, -1, -1, -1);

    for (int i = 0; i < 20; i++)
        append_one(log, 2, 1000 + i, 40, 1); /* offsets 0..39 */
    CHECK(mk_log_latest_epoch(log) == 1);
    CHECK_EPOCHS(dir, "0\n1\n1 0\n");
    CHECK_EO(log, 1, 1, 40);
    /* a new leader begins its epoch at the log end before appending */
    CHECK_RC(mk_log_epoch_begin(log, 3));
    CHECK_EO(log, 3, 3, 40);
    CHECK_EO(log, 1, 1, 40);
    for (int i = 0; i < 20; i++)
        append_one(log, 2, 2000 + i, 40, 3); /* 40..79 */
    mk_buf_t b;
    mk_buf_init(&b);
    for (int i = 0; i < 3; i++) /* several batches in one append: 80..85 */
        make_batch(&b, 2, 3000 + i, 1, 40);
    CHECK_RC(mk_log_append(log, b.data, b.len, 5, mk_now_ms(), NULL));
    for (int i = 0; i < 10; i++)
        append_one(log, 2, 3100 + i, 40, 5); /* 86..105 */
    CHECK_RC(mk_log_epoch_begin(log, 7));
    CHECK(mk_log_end_offset(log) == 106);
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(st.segment_count > 3);
    CHECK_EPOCHS(dir, "0\n4\n1 0\n3 40\n5 80\n7 106\n");
    CHECK_EO(log, -1, -1, -1);
    CHECK_EO(log, 0, 0, 0);          /* below the first: (requested, first start) */
    CHECK_EO(log, 1, 1, 40);         /* exact */
    CHECK_EO(log, 2, 1, 40);         /* between */
    CHECK_EO(log, 3, 3, 80);
    CHECK_EO(log, 4, 3, 80);
    CHECK_EO(log, 5, 5, 106);
    CHECK_EO(log, 6, 5, 106);
    CHECK_EO(log, 7, 7, 106);        /* latest: the log end offset */
    CHECK_EO(log, 8, -1, -1);        /* above the latest: undefined */
    CHECK_EO(log, INT32_MAX, -1, -1);
    /* a stale or negative begin is refused; the current epoch is a no-op */
    CHECK(mk_log_epoch_begin(log, 6) == MK_ERR_INVALID);
    CHECK(mk_log_epoch_begin(log, -1) == MK_ERR_INVALID);
    CHECK_RC(mk_log_epoch_begin(log, 7));
    for (int i = 0; i < 5; i++)
        append_one(log, 2, 3200 + i, 40, 7); /* 106..115 */
    CHECK_EO(log, 7, 7, 116);
    CHECK_EO(log, 6, 5, 106);
    CHECK_EPOCHS(dir, "0\n4\n1 0\n3 40\n5 80\n7 106\n");
    /* an epoch begun without data gives way to the next */
    CHECK_RC(mk_log_epoch_begin(log, 9));
    CHECK_RC(mk_log_epoch_begin(log, 10));
    CHECK_EPOCHS(dir, "0\n5\n1 0\n3 40\n5 80\n7 106\n10 116\n");
    CHECK_EO(log, 9, 7, 116);
    CHECK_RC(mk_log_close(log));

    /* reopen: the empty epoch at the end offset is dropped, the rest kept */
    snprintf(want, sizeof(want), "0\n4\n1 0\n3 40\n5 80\n7 106\n");
    log = open_log(dir, &cfg);
    CHECK(mk_log_latest_epoch(log) == 7);
    CHECK_EPOCHS(dir, want);
    CHECK_EO(log, 7, 7, 116);
    CHECK_EO(log, 3, 3, 80);
    append_one(log, 2, 4000, 40, 8); /* 116..117: rolls, alone in the active segment */
    snprintf(want8, sizeof(want8), "0\n5\n1 0\n3 40\n5 80\n7 106\n8 116\n");
    CHECK_EPOCHS(dir, want8);
    CHECK_RC(mk_log_close(log));

    /* the batch reached the disk, the checkpoint did not: after the crash
     * the active segment is replayed from the latest entry on */
    write_epochs(dir, want);
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    CHECK_EPOCHS(dir, want8);
    CHECK_RC(mk_log_close(log));
    /* a checkpoint ahead of the data (the batches were lost) */
    write_epochs(dir, "0\n6\n1 0\n3 40\n5 80\n7 106\n8 116\n9 118\n");
    log = open_log(dir, &cfg);
    CHECK_EPOCHS(dir, want8);
    CHECK_EO(log, 9, -1, -1);
    CHECK_EO(log, 8, 8, 118);
    CHECK_RC(mk_log_close(log));

    /* missing: rebuilt from the batch headers, identical */
    char path[PATH_MAX];
    PATHF(path, "%s/leader-epoch-checkpoint", dir);
    CHECK(unlink(path) == 0);
    log = open_log(dir, &cfg);
    CHECK_EPOCHS(dir, want8);
    CHECK_EO(log, 5, 5, 106);
    CHECK_RC(mk_log_close(log));
    CHECK(unlink(path) == 0);
    simulate_crash(dir);
    log = open_log(dir, &cfg);
    CHECK_EPOCHS(dir, want8);
    CHECK_RC(mk_log_close(log));
    /* malformed (torn, garbled, out of order, out of range): rebuilt */
    static const char *const bad[] = {
        "", "0\n", "1\n0\n", "0\n2\n1 0\n", "0\n2\n3 0\n1 5\n", "0\n2\n1 5\n3 5\n",
        "0\n1\n1 0", "0\n1\n-1 0\n", "0\n1\n1 0\nx", "0\n99999999999999\n1 0\n",
        "0\n1\n2147483648 0\n", "0\n1\n1  0\n", "0\n1\n1 99999999999999999999\n",
    };
    for (size_t i = 0; i < MK_ARRAY_LEN(bad); i++) {
        write_epochs(dir, bad[i]);
        log = open_log(dir, &cfg);
        CHECK_EPOCHS(dir, want8);
        CHECK_RC(mk_log_close(log));
    }
    mk_buf_free(&b);
}

/* truncate_to drops later epochs; DeleteRecords and retention clamp the
 * earliest; full truncation empties the cache. */
static void test_epochs_trim(void)
{
    char dir[PATH_MAX], want[128];
    subdir(dir, "epochs-trim/p-12");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 2048;
    cfg.retention_ms = -1;
    mk_log_t *log = open_log(dir, &cfg);
    int64_t now = mk_now_ms();
    static const int32_t epochs[] = {2, 4, 6, 8};
    for (int i = 0; i < 60; i++)
        append_one(log, 2, now, 60, epochs[i / 15]); /* 2@0 4@30 6@60 8@90, end 120 */
    CHECK_EPOCHS(dir, "0\n4\n2 0\n4 30\n6 60\n8 90\n");
    /* inside epoch 8's first batch: the batch goes whole, and the epoch */
    CHECK_RC(mk_log_truncate_to(log, 91));
    CHECK(mk_log_end_offset(log) == 90 && mk_log_latest_epoch(log) == 6);
    CHECK_EO(log, 6, 6, 90);
    CHECK_EO(log, 8, -1, -1);
    CHECK_EPOCHS(dir, "0\n3\n2 0\n4 30\n6 60\n");
    CHECK_RC(mk_log_truncate_to(log, 70));
    CHECK_EO(log, 6, 6, 70);
    CHECK_RC(mk_log_truncate_to(log, 60)); /* exactly where epoch 6 began */
    for (int round = 0; round < 2; round++) {
        CHECK(mk_log_latest_epoch(log) == 4);
        CHECK_EO(log, 4, 4, 60);
        CHECK_EO(log, 5, -1, -1);
        CHECK_EO(log, 3, 2, 30);
        CHECK_EPOCHS(dir, "0\n2\n2 0\n4 30\n");
        CHECK_RC(mk_log_close(log));
        log = open_log(dir, &cfg);
    }
    /* the next leader's epoch continues */
    for (int i = 0; i < 30; i++)
        append_one(log, 2, now, 60, 9); /* 60..119 */
    CHECK_EPOCHS(dir, "0\n3\n2 0\n4 30\n9 60\n");
    /* DeleteRecords inside epoch 4: its entry is raised to the new start */
    CHECK_RC(mk_log_delete_records(log, 35));
    CHECK_EPOCHS(dir, "0\n2\n4 35\n9 60\n");
    CHECK_EO(log, 2, 2, 35); /* below the first cached epoch */
    CHECK_EO(log, 4, 4, 60);
    CHECK_RC(mk_log_delete_records(log, 60)); /* exactly where epoch 9 began */
    CHECK_EPOCHS(dir, "0\n1\n9 60\n");
    CHECK_EO(log, 4, 4, 60);
    /* retention.bytes deletes whole segments: the entry follows the start */
    cfg.retention_bytes = 3000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_retain(log, now) > 0);
    int64_t start = mk_log_start_offset(log);
    CHECK(start > 60);
    snprintf(want, sizeof(want), "0\n1\n9 %" PRId64 "\n", start);
    CHECK_EPOCHS(dir, want);
    CHECK_RC(mk_log_close(log));
    log = open_log(dir, &cfg);
    CHECK(mk_log_start_offset(log) == start);
    CHECK_EPOCHS(dir, want);
    /* everything expired: the log rolls and the start reaches the end */
    cfg.retention_bytes = -1;
    cfg.retention_ms = 1000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_retain(log, now + 10000000) > 0);
    int64_t end = mk_log_end_offset(log);
    CHECK(mk_log_start_offset(log) == end);
    snprintf(want, sizeof(want), "0\n1\n9 %" PRId64 "\n", end);
    CHECK_EPOCHS(dir, want);
    CHECK_EO(log, 9, 9, end);
    /* a follower jumping ahead of the emptied log moves the start, and the
     * entry with it */
    mk_buf_t b;
    mk_buf_init(&b);
    make_batch(&b, 2, now, 1, 10);
    stamp_batch(b.data, end + 10, 9);
    CHECK_RC(mk_log_append_replica(log, b.data, b.len, now, NULL));
    CHECK(mk_log_start_offset(log) == end + 10);
    snprintf(want, sizeof(want), "0\n1\n9 %" PRId64 "\n", end + 10);
    CHECK_EPOCHS(dir, want);
    mk_buf_free(&b);
    /* full truncation (below the start) empties the cache */
    CHECK_RC(mk_log_truncate_to(log, 5));
    CHECK(mk_log_end_offset(log) == 5 && mk_log_latest_epoch(log) == -1);
    CHECK_EPOCHS(dir, "0\n0\n");
    append_one(log, 1, now, 10, 11);
    CHECK_EPOCHS(dir, "0\n1\n11 5\n");
    CHECK_RC(mk_log_close(log));
}

/* Followers learn the epochs from the batches, in one fetch or many. */
static void test_epochs_follower(void)
{
    char ldir[PATH_MAX], f1dir[PATH_MAX], f2dir[PATH_MAX], path[PATH_MAX];
    subdir(ldir, "epochs-repl/leader");
    subdir(f1dir, "epochs-repl/f1");
    subdir(f2dir, "epochs-repl/f2");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 256;
    mk_log_t *l = open_log(ldir, &cfg), *f1 = open_log(f1dir, &cfg), *f2 = open_log(f2dir, &cfg);
    static const int32_t epochs[] = {1, 2, 5};
    for (int i = 0; i < 15; i++)
        append_one(l, 3, 1000 + i, 30, epochs[i / 5]); /* 1@0 2@15 5@30, end 45 */
    CHECK_EPOCHS(ldir, "0\n3\n1 0\n2 15\n5 30\n");
    replicate(l, f1, 0, SIZE_MAX); /* one append with every epoch */
    check_same(l, f1);
    replicate(l, f2, 0, 250); /* about a batch per fetch */
    check_same(l, f2);
    CHECK_RC(mk_log_close(f2));
    PATHF(path, "%s/leader-epoch-checkpoint", f2dir);
    CHECK(unlink(path) == 0);
    simulate_crash(f2dir);
    f2 = open_log(f2dir, &cfg);
    check_same(l, f2);
    /* a batch below the latest epoch rewrites the cache's tail (Kafka's
     * assign: the cache follows the batches) */
    mk_buf_t b;
    mk_buf_init(&b);
    make_batch(&b, 2, 5000, 1, 20);
    stamp_batch(b.data, 45, 3);
    CHECK_RC(mk_log_append_replica(f1, b.data, b.len, mk_now_ms(), NULL));
    CHECK_EPOCHS(f1dir, "0\n3\n1 0\n2 15\n3 45\n");
    CHECK(mk_log_latest_epoch(f1) == 3);
    CHECK(last_batch_epoch(f1) == 3);
    /* a gap ahead of an empty follower: the entry starts at the batch */
    CHECK_RC(mk_log_truncate_to(f2, 0));
    CHECK_EPOCHS(f2dir, "0\n0\n");
    mk_buf_reset(&b);
    int64_t next;
    CHECK_RC(mk_log_read(l, 20, SIZE_MAX, true, &b, &next));
    CHECK_RC(mk_log_append_replica(f2, b.data, b.len, mk_now_ms(), NULL));
    CHECK_EPOCHS(f2dir, "0\n2\n2 18\n5 30\n");
    mk_buf_free(&b);
    CHECK_RC(mk_log_close(l));
    CHECK_RC(mk_log_close(f1));
    CHECK_RC(mk_log_close(f2));
}

/* The replication scenario the cache exists for: A led epoch 1 and wrote
 * records that B, elected for epoch 2, never got.  A asks B where epoch 1
 * ends, truncates there and fetches B's suffix: the logs become identical. */
static void test_epochs_divergence(void)
{
    char adir[PATH_MAX], bdir[PATH_MAX];
    subdir(adir, "diverge/a");
    subdir(bdir, "diverge/b");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 3000;
    cfg.index_interval_bytes = 300;
    mk_log_t *a = open_log(adir, &cfg), *b = open_log(bdir, &cfg);
    for (int i = 0; i < 12; i++)
        append_one(a, 3, 1000 + i, 50, 1); /* the shared prefix, 0..35 */
    replicate(a, b, 0, 700);
    int64_t prefix = mk_log_end_offset(b);
    for (int i = 0; i < 7; i++)
        append_one(a, 2, 2000 + i, 90, 1); /* A's extra epoch-1 records, 36..49 */
    CHECK_RC(mk_log_epoch_begin(b, 2));
    for (int i = 0; i < 5; i++)
        append_one(b, 4, 3000 + i, 20, 2); /* B leads epoch 2: 36..55 */
    CHECK(mk_log_end_offset(a) == 50 && mk_log_end_offset(b) == 56);

    /* A becomes a follower: OffsetForLeaderEpoch(A's latest epoch) on B */
    int32_t epoch;
    int64_t end;
    CHECK_RC(mk_log_end_offset_for_epoch(b, mk_log_latest_epoch(a), &epoch, &end));
    CHECK(epoch == 1 && end == prefix);
    CHECK_RC(mk_log_truncate_to(a, MK_MIN(end, mk_log_end_offset(a))));
    CHECK(mk_log_end_offset(a) == prefix && mk_log_latest_epoch(a) == 1);
    replicate(b, a, prefix, 500);
    check_same(a, b);
    CHECK(mk_log_latest_epoch(a) == 2);
    CHECK_EPOCHS(adir, "0\n2\n1 0\n2 36\n");
    /* and after a crash of the follower */
    CHECK_RC(mk_log_close(a));
    simulate_crash(adir);
    a = open_log(adir, &cfg);
    check_same(a, b);
    CHECK_RC(mk_log_close(a));
    CHECK_RC(mk_log_close(b));
}

/* A failed checkpoint write leaves the append in, removes the stale file
 * and is retried by the next flush or by close. */
static void test_epochs_faults(void)
{
    char dir[PATH_MAX];
    subdir(dir, "epochs-faults/p-13");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    mk_log_t *log = open_log(dir, &cfg);
    append_one(log, 1, 100, 10, 1);
    CHECK_EPOCHS(dir, "0\n1\n1 0\n");
    mk_log_fail_io_at(2); /* the data write passes, the checkpoint's fails */
    append_one(log, 1, 100, 10, 2);
    mk_log_fail_io_at(0);
    CHECK(mk_log_latest_epoch(log) == 2);
    CHECK_EPOCHS(dir, "");
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(st.io_error == 0);
    CHECK_RC(mk_log_flush(log));
    CHECK_EPOCHS(dir, "0\n2\n1 0\n2 1\n");
    mk_log_fail_io_at(2);
    append_one(log, 1, 100, 10, 3);
    mk_log_fail_io_at(0);
    CHECK_EPOCHS(dir, "");
    CHECK_RC(mk_log_close(log));
    CHECK_EPOCHS(dir, "0\n3\n1 0\n2 1\n3 2\n");
    /* a failed data write adds no epoch */
    log = open_log(dir, &cfg);
    mk_buf_t b;
    mk_buf_init(&b);
    make_batch(&b, 1, 100, 1, 10);
    mk_log_fail_io_at(1);
    CHECK(mk_log_append(log, b.data, b.len, 9, mk_now_ms(), NULL) == MK_ERR_IO);
    mk_log_fail_io_at(0);
    CHECK(mk_log_latest_epoch(log) == 3);
    CHECK_EPOCHS(dir, "0\n3\n1 0\n2 1\n3 2\n");
    mk_buf_free(&b);
    CHECK_RC(mk_log_close(log));
}

/* Segment events: a roll seals the old segment (once, with its range), and
 * retention reports each deleted segment. */
typedef struct seg_events_s {
    int sealed, deleted;
    int64_t last_sealed_end, first_deleted_base;
    int64_t prev_sealed_end;
    bool contiguous;
    uint64_t bytes_before;
} seg_events_t;

static void seg_event_cb(const mk_log_segment_event_t *ev, void *arg)
{
    seg_events_t *e = arg;
    if (ev->type == MK_LOG_SEGMENT_SEALED) {
        if (e->sealed && ev->base_offset != e->prev_sealed_end)
            e->contiguous = false;
        e->sealed++;
        e->prev_sealed_end = ev->end_offset;
        e->last_sealed_end = ev->end_offset;
        CHECK(ev->end_offset > ev->base_offset && ev->size_bytes > 0 && ev->reason == NULL);
    } else if (ev->type == MK_LOG_SEGMENT_DELETED) {
        if (e->deleted == 0)
            e->first_deleted_base = ev->base_offset;
        e->deleted++;
        CHECK(ev->reason != NULL);
        /* What retention judged it by: its timestamps, and the log after it. */
        CHECK(ev->largest_ts > 0 && ev->largest_ts < mk_now_ms() - 50000);
        CHECK(ev->log_bytes_after < e->bytes_before);
        e->bytes_before = ev->log_bytes_after;
    }
}

static void test_segment_events(void)
{
    char dir[PATH_MAX];
    subdir(dir, "segevents/p-0");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 2048;
    mk_log_t *log = open_log(dir, &cfg);
    seg_events_t e = {0};
    e.contiguous = true;
    mk_log_set_segment_cb(log, seg_event_cb, &e);
    int64_t now = mk_now_ms();
    for (int i = 0; i < 100; i++)
        append_one(log, 2, now - 100000, 60, 1);
    mk_log_stats_t st;
    mk_log_stats(log, &st);
    CHECK(e.sealed == st.segment_count - 1 && e.sealed > 0);
    CHECK(e.contiguous);
    /* The active segment starts where the last sealed one ended. */
    CHECK(e.last_sealed_end < mk_log_end_offset(log));
    cfg.retention_ms = 50000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    e.bytes_before = st.size_bytes;
    uint64_t id = mk_log_id(log);
    CHECK(id > 0 && mk_log_truncations(log) == 0);
    int deleted = mk_log_retain(log, now);
    CHECK(deleted > 0 && e.deleted == deleted && e.first_deleted_base == 0);
    mk_log_stats(log, &st);
    CHECK(e.bytes_before == st.size_bytes);
    /* Retention is no truncation: the history that stays stands. */
    CHECK(mk_log_id(log) == id && mk_log_truncations(log) == 0);

    /* A cursor sees what was there when opened, not later appends. */
    for (int i = 0; i < 30; i++)
        append_one(log, 2, now, 60, 1);
    mk_log_cursor_t *cur;
    CHECK_RC(mk_log_cursor_open(log, &cur));
    int64_t end = mk_log_cursor_end_offset(cur);
    CHECK(end == mk_log_end_offset(log));
    append_one(log, 2, now, 60, 1);
    mk_batch_view_t v;
    int64_t last = -1;
    int n = 0, rc;
    mk_buf_t body;
    mk_buf_init(&body);
    while ((rc = mk_log_cursor_next(cur, &v)) == 1) {
        CHECK(v.hdr.baseOffset > last);
        last = v.hdr.baseOffset;
        if (n++ == 0) {
            CHECK_RC(mk_log_cursor_read(cur, &v, &body));
            CHECK(body.len == v.size && mk_batch_validate(body.data, body.len, true, 0, NULL, 0) == 0);
        }
    }
    CHECK(rc == 0 && n == 30 && last + 2 == end);
    mk_buf_free(&body);
    mk_log_cursor_close(cur);

    /* A truncation is counted; a cursor over the directory reads the same
     * batches as one over the open log, and can skip a segment. */
    CHECK_RC(mk_log_truncate_to(log, end - 4));
    CHECK(mk_log_id(log) == id && mk_log_truncations(log) == 1);
    CHECK_RC(mk_log_truncate_to(log, mk_log_end_offset(log) + 10)); /* nothing removed */
    CHECK(mk_log_truncations(log) == 1);
    CHECK_RC(mk_log_flush(log));
    int64_t start = -1;
    CHECK_RC(mk_log_cursor_open_dir(dir, &cur, &start));
    CHECK(start == mk_log_start_offset(log) && mk_log_cursor_end_offset(cur) == -1);
    n = 0;
    int64_t seg0 = -1, seg;
    while ((rc = mk_log_cursor_next(cur, &v)) == 1) {
        mk_log_cursor_where(cur, &seg);
        if (seg0 < 0)
            seg0 = seg;
        CHECK(seg <= v.hdr.baseOffset);
        last = v.hdr.baseOffset;
        n++;
    }
    CHECK(rc == 0 && last + 2 == mk_log_end_offset(log) && n > 2);
    mk_log_cursor_close(cur);
    CHECK_RC(mk_log_cursor_open_dir(dir, &cur, NULL));
    CHECK(mk_log_cursor_next(cur, &v) == 1);
    mk_log_cursor_where(cur, &seg);
    CHECK(seg == seg0);
    int skipped = mk_log_cursor_skip_segment(cur);
    if (skipped) {
        CHECK(mk_log_cursor_next(cur, &v) == 1);
        mk_log_cursor_where(cur, &seg);
        CHECK(seg > seg0 && v.hdr.baseOffset == seg);
    }
    while (mk_log_cursor_skip_segment(cur))
        ;
    CHECK(mk_log_cursor_next(cur, &v) == 0);
    mk_log_cursor_close(cur);
    CHECK_RC(mk_log_close(log));
    /* A reopen is another log. */
    log = open_log(dir, &cfg);
    CHECK(mk_log_id(log) != id && mk_log_truncations(log) == 0);
    CHECK_RC(mk_log_close(log));
}

/* ============================================================ compaction */

/* One record per call, key and value as strings (value NULL: a tombstone),
 * through batch/'s builder; o gives the producer fields. */
static int64_t append_kv(mk_log_t *log, const mk_batch_build_opts_t *o, const char *key, const char *value,
                         int64_t ts)
{
    mk_batch_rec_in_t r = {key, key ? (int32_t)strlen(key) : -1, value, value ? (int32_t)strlen(value) : -1, ts,
                           0, NULL, NULL, NULL};
    mk_buf_t b;
    mk_buf_init(&b);
    mk_batch_build_opts_t d;
    mk_batch_build_opts_init(&d);
    CHECK_RC(mk_batch_build_ex(&b, o ? o : &d, &r, 1));
    mk_log_append_info_t info;
    CHECK_RC(mk_log_append(log, b.data, b.len, 0, mk_now_ms(), &info));
    mk_buf_free(&b);
    return info.first_offset;
}

static void append_marker(mk_log_t *log, int64_t pid, bool commit)
{
    mk_batch_build_opts_t o;
    mk_batch_build_opts_init(&o);
    o.producerId = pid;
    o.producerEpoch = 0;
    mk_buf_t b;
    mk_buf_init(&b);
    CHECK_RC(mk_batch_build_control(&b, &o, commit, 0, mk_now_ms()));
    CHECK_RC(mk_log_append(log, b.data, b.len, 0, mk_now_ms(), NULL));
    mk_buf_free(&b);
}

typedef struct kv_s {
    int64_t offset;
    char key[16];
    char value[24];            /* "<null>" for a tombstone */
} kv_t;

typedef struct kvs_s {
    kv_t v[512];
    int n;
    int markers, empty_batches;
} kvs_t;

static int kv_cb(const mk_record_t *rec, void *arg)
{
    kvs_t *k = arg;
    CHECK(k->n < (int)MK_ARRAY_LEN(k->v));
    kv_t *e = &k->v[k->n++];
    e->offset = rec->offset;
    snprintf(e->key, sizeof(e->key), "%.*s", rec->key_len > 0 ? rec->key_len : 0, rec->key ? (const char *)rec->key : "");
    if (rec->value_len < 0)
        snprintf(e->value, sizeof(e->value), "<null>");
    else
        snprintf(e->value, sizeof(e->value), "%.*s", rec->value_len, (const char *)rec->value);
    return 0;
}

/* Every record a consumer would see from the start: each batch through the
 * validator (compacted mode, deep), offsets strictly increasing. */
static void read_kvs(mk_log_t *log, kvs_t *out)
{
    memset(out, 0, sizeof(*out));
    mk_buf_t b, s;
    mk_buf_init(&b);
    mk_buf_init(&s);
    int64_t next;
    CHECK_RC(mk_log_read(log, mk_log_start_offset(log), SIZE_MAX, true, &b, &next));
    size_t pos = 0;
    mk_batch_view_t v;
    int64_t prev_last = -1;
    while (mk_batch_view_next(b.data, b.len, &pos, &v) == 1) {
        CHECK_RC(mk_batch_validate_ex(b.data + v.pos, v.size, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0,
                                      NULL, NULL, 0));
        CHECK(v.hdr.baseOffset > prev_last);
        prev_last = v.hdr.baseOffset + v.hdr.lastOffsetDelta;
        if (mk_batch_hdr_is_control(&v.hdr)) {
            out->markers++;
            continue;
        }
        if (v.hdr.recordCount == 0)
            out->empty_batches++;
        CHECK_RC(mk_batch_records_foreach(b.data + v.pos, v.size, &s, 0, kv_cb, out));
    }
    CHECK(pos == b.len);
    for (int i = 1; i < out->n; i++)
        CHECK(out->v[i].offset > out->v[i - 1].offset);
    mk_buf_free(&b);
    mk_buf_free(&s);
}

static const kv_t *kv_find(const kvs_t *k, const char *key)
{
    const kv_t *found = NULL;
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->v[i].key, key) == 0) {
            CHECK(!found); /* one record per key */
            found = &k->v[i];
        }
    return found;
}

static bool file_exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    PATHF(path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static size_t count_suffix(const char *dir, const char *sfx)
{
    DIR *d = opendir(dir);
    CHECK(d);
    size_t n = 0, m = strlen(sfx);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l >= m && strcmp(e->d_name + l - m, sfx) == 0;
    }
    closedir(d);
    return n;
}

/* The cleaner without a loop: latest value per key with its original
 * offset, tombstones until their horizon, aborted and open transactions,
 * markers, the empty header of a producer's last batch, a restart, an
 * interrupted swap recovered on open. */
static void test_clean(void)
{
    char dir[PATH_MAX];
    subdir(dir, "clean/p-0");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 600;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0.3;
    cfg.delete_retention_ms = 1000;
    cfg.index_interval_bytes = 128;
    mk_log_t *log = open_log(dir, &cfg);
    int64_t now = mk_now_ms();
    int64_t latest[10];
    char val[24];
    for (int round = 0; round < 6; round++)
        for (int k = 0; k < 10; k++) {
            char key[8];
            snprintf(key, sizeof(key), "k%d", k);
            snprintf(val, sizeof(val), "v%d-%d", k, round);
            latest[k] = append_kv(log, NULL, key, (k == 3 && round == 5) ? NULL : val, now);
        }
    /* transactions: producer 5 aborts, 6 commits, 7 is still open */
    mk_batch_build_opts_t t5, t6, t7, idem;
    mk_batch_build_opts_init(&t5);
    t5.producerId = 5;
    t5.producerEpoch = 0;
    t5.baseSequence = 0;
    t5.transactional = true;
    t6 = t5;
    t6.producerId = 6;
    t7 = t5;
    t7.producerId = 7;
    mk_batch_build_opts_init(&idem);
    idem.producerId = 8;
    idem.producerEpoch = 0;
    idem.baseSequence = 0;
    int64_t a5 = append_kv(log, &t5, "ta", "aborted", now);
    int64_t c6 = append_kv(log, &t6, "tc", "committed", now);
    append_marker(log, 5, false);
    append_marker(log, 6, true);
    int64_t o7 = append_kv(log, &t7, "to", "open", now);
    int64_t i8a = append_kv(log, &idem, "k1", "idem-old", now);
    idem.baseSequence = 1;
    int64_t i8b = append_kv(log, &idem, "k1", "idem-new", now);
    latest[1] = i8b;
    /* producer 9's only batch is superseded: its header stays, empty */
    mk_batch_build_opts_t p9 = idem;
    p9.producerId = 9;
    p9.baseSequence = 0;
    append_kv(log, &p9, "p9", "old", now);
    int64_t p9new = append_kv(log, NULL, "p9", "new", now);
    /* roll: everything above is sealed */
    for (int i = 0; i < 20; i++)
        append_kv(log, NULL, "z", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", now);
    size_t segs_before = mk_log_segment_count(log);
    CHECK(segs_before > 4);
    mk_log_clean_info_t ci;
    mk_log_clean_info(log, &ci);
    CHECK(ci.cleaned_offset == 0 && ci.dirty_bytes > 0 && ci.dirty_ratio == 1.0);
    /* nothing below the limit (the high watermark) */
    CHECK(mk_log_clean_maybe(log, 0, now) == 0);
    /* min.compaction.lag.ms holds young segments back */
    cfg.min_compaction_lag_ms = 3600000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 0);
    cfg.min_compaction_lag_ms = 0;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    mk_log_clean_info(log, &ci);
    size_t active = mk_log_segment_count(log) - 1;
    mk_log_segment_info_t si;
    mk_log_segment_info(log, active, &si);
    CHECK(ci.cleaned_offset > 0 && ci.runs == 1 && ci.dirty_bytes == 0);
    CHECK(ci.tombstone_horizon >= now + 1000 && ci.tombstone_horizon <= mk_now_ms() + 1000);
    CHECK(mk_log_segment_count(log) < segs_before);
    CHECK(mk_log_start_offset(log) == 0);
    mk_log_segment_info(log, 0, &si);
    CHECK(si.base_offset == 0);
    mk_log_cleaner_stats_t cs;
    mk_log_cleaner_stats(&cs);
    CHECK(cs.runs >= 1 && cs.records_removed > 0 && cs.bytes_written < cs.bytes_read && cs.running == 0);

    for (int pass = 0; pass < 2; pass++) {
        kvs_t *got = mk_malloc(sizeof(*got));
        read_kvs(log, got);
        for (int k = 0; k < 10; k++) {
            char key[8];
            snprintf(key, sizeof(key), "k%d", k);
            const kv_t *e = kv_find(got, key);
            CHECK(e && e->offset == latest[k]);
            if (k == 3)
                CHECK(strcmp(e->value, "<null>") == 0);
            else if (k == 1)
                CHECK(strcmp(e->value, "idem-new") == 0);
            else {
                snprintf(val, sizeof(val), "v%d-5", k);
                CHECK(strcmp(e->value, val) == 0);
            }
        }
        CHECK(!kv_find(got, "ta"));
        const kv_t *e = kv_find(got, "tc");
        CHECK(e && e->offset == c6);
        e = kv_find(got, "to");
        CHECK(e && e->offset == o7);
        CHECK(got->markers == 2);
        CHECK(got->empty_batches == 2); /* p9's superseded batch, producer 5's aborted one */
        e = kv_find(got, "p9");
        CHECK(e && e->offset == p9new && strcmp(e->value, "new") == 0);
        (void)a5;
        (void)i8a;
        mk_free(got);
        /* the same after a restart: the checkpoint too */
        int64_t cleaned = mk_log_cleaned_offset(log);
        CHECK_RC(mk_log_close(log));
        CHECK(mk_log_cleaned_offset_dir(dir) == cleaned);
        log = open_log(dir, &cfg);
        CHECK(mk_log_cleaned_offset(log) == cleaned);
    }
    /* not due again: nothing dirty, the horizon not reached */
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), mk_now_ms()) == 0);
    /* past the horizon the tombstone goes */
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), mk_now_ms() + 5000) == 1);
    kvs_t *got = mk_malloc(sizeof(*got));
    read_kvs(log, got);
    CHECK(!kv_find(got, "k3") && kv_find(got, "k2"));
    mk_log_clean_info(log, &ci);
    CHECK(ci.tombstone_horizon == -1);

    /* an interrupted swap: a .log.swap with its range file is completed on
     * open, a stale segment in its range removed, *.cleaned dropped */
    int64_t end = mk_log_end_offset(log);
    CHECK_RC(mk_log_close(log));
    char from[PATH_MAX], to[PATH_MAX];
    const char *exts[] = {".log", ".index", ".timeindex"};
    for (int i = 0; i < 3; i++) {
        PATHF(from, "%s/%020d%s", dir, 0, exts[i]);
        PATHF(to, "%s/%020d%s.swap", dir, 0, exts[i]);
        CHECK(rename(from, to) == 0);
    }
    mk_log_segment_info_t s1;
    log = open_log(dir, &cfg); /* without a range file: the plain name comes back */
    CHECK(mk_log_end_offset(log) == end);
    mk_log_segment_info(log, 1, &s1);
    CHECK_RC(mk_log_close(log));
    PATHF(from, "%s/%020d.log", dir, 0);
    PATHF(to, "%s/%020d.log.swap", dir, 0);
    CHECK(rename(from, to) == 0);
    PATHF(to, "%s/%020d.range.swap", dir, 0);
    FILE *f = fopen(to, "w");
    CHECK(f);
    fprintf(f, "%lld\n", (long long)s1.base_offset);
    fclose(f);
    PATHF(to, "%s/%020d.log", dir, 1); /* a stale input, inside [0, s1.base) */
    f = fopen(to, "w");
    CHECK(f);
    fputs("stale", f);
    fclose(f);
    PATHF(to, "%s/%020d.log.cleaned", dir, 0);
    f = fopen(to, "w");
    CHECK(f);
    fclose(f);
    log = open_log(dir, &cfg);
    CHECK(mk_log_end_offset(log) == end);
    CHECK(!file_exists(dir, "00000000000000000001.log") && !file_exists(dir, "00000000000000000000.range.swap"));
    CHECK(count_suffix(dir, ".cleaned") == 0 && count_suffix(dir, ".swap") == 0);
    kvs_t *again = mk_malloc(sizeof(*again));
    read_kvs(log, again);
    CHECK(again->n == got->n && memcmp(again->v, got->v, sizeof(kv_t) * (size_t)got->n) == 0);
    mk_free(again);
    mk_free(got);
    CHECK_RC(mk_log_close(log));
}

/* A first segment whose every record was superseded stays, empty: the log
 * start does not move by compaction, nor by retention afterwards (only by
 * retention.ms once its file time, its inputs' largest timestamp, is old). */
static void test_clean_first_empty(void)
{
    char dir[PATH_MAX];
    subdir(dir, "clean/p-2");
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 300;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0;
    mk_log_t *log = open_log(dir, &cfg);
    int64_t now = mk_now_ms();
    char key[8];
    for (int round = 0; round < 4; round++)
        for (int k = 0; k < 6; k++) {
            snprintf(key, sizeof(key), "k%d", k);
            append_kv(log, NULL, key, round == 3 ? "last" : "old", now - 10000);
        }
    append_kv(log, NULL, "tail", "tail", now - 5000);
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    mk_log_segment_info_t si;
    mk_log_segment_info(log, 0, &si);
    CHECK(si.base_offset == 0 && si.size_bytes == 0 && !si.active);
    CHECK(si.max_timestamp == now - 10000); /* its inputs' largest timestamp, as the file time */
    CHECK(mk_log_retain(log, now) == 0 && mk_log_start_offset(log) == 0);
    kvs_t *got = mk_malloc(sizeof(*got));
    read_kvs(log, got);
    CHECK(got->n == 7 && got->v[0].offset == 18);
    CHECK_RC(mk_log_close(log));
    log = open_log(dir, &cfg);
    CHECK(mk_log_start_offset(log) == 0);
    mk_log_segment_info(log, 0, &si);
    CHECK(si.base_offset == 0 && si.size_bytes == 0 && si.max_timestamp == now - 10000);
    kvs_t *again = mk_malloc(sizeof(*again));
    read_kvs(log, again);
    CHECK(again->n == got->n && memcmp(again->v, got->v, sizeof(kv_t) * (size_t)got->n) == 0);
    /* max.compaction.lag.ms: due whatever the dirty ratio once a dirty
     * segment is that old */
    for (int i = 0; i < 12; i++)
        append_kv(log, NULL, "lagged", "lagged-value", now - 5000);
    append_kv(log, NULL, "tail2", "tail2", now);
    mk_log_clean_info_t ci;
    mk_log_clean_info(log, &ci);
    CHECK(ci.dirty_bytes > 0 && ci.clean_bytes > 0 && ci.dirty_ratio < 1.0);
    cfg.min_cleanable_ratio = 1.0;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 0);
    cfg.max_compaction_lag_ms = 1000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    mk_log_clean_info(log, &ci);
    CHECK(ci.dirty_bytes == 0 && ci.runs == 1);
    /* compact,delete: retention.ms judges it by that time */
    cfg.retention_ms = 5000;
    CHECK_RC(mk_log_set_config(log, &cfg));
    CHECK(mk_log_retain(log, now) >= 1 && mk_log_start_offset(log) > 0);
    mk_free(got);
    mk_free(again);
    CHECK_RC(mk_log_close(log));
}

/* The cleaner with a loop: the work runs on the threadpool while the loop
 * appends; the swap happens on the loop; a close while it runs discards it
 * and leaves nothing behind. */
static void test_clean_uv(void)
{
    char dir[PATH_MAX];
    subdir(dir, "clean/p-1");
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.loop = &loop;
    cfg.segment_bytes = 1024;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0;
    mk_log_t *log = open_log(dir, &cfg);
    int64_t now = mk_now_ms();
    char key[16], val[16];
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "key-%d", i % 37);
        snprintf(val, sizeof(val), "val-%d", i);
        append_kv(log, NULL, key, val, now);
    }
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    mk_log_clean_info_t ci;
    mk_log_clean_info(log, &ci);
    CHECK(ci.running);
    /* the loop goes on appending meanwhile */
    for (int i = 400; i < 450; i++) {
        snprintf(key, sizeof(key), "key-%d", i % 37);
        snprintf(val, sizeof(val), "val-%d", i);
        append_kv(log, NULL, key, val, now);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_clean_info(log, &ci);
    CHECK(!ci.running && ci.runs == 1 && ci.cleaned_offset > 0);
    kvs_t *got = mk_malloc(sizeof(*got));
    read_kvs(log, got);
    CHECK(got->n < 450 && got->n >= 37);
    for (int k = 0; k < 37; k++) {
        snprintf(key, sizeof(key), "key-%d", k);
        int last = k + 37 * ((449 - k) / 37);
        int64_t latest_off = -1;
        for (int i = got->n - 1; i >= 0; i--)
            if (strcmp(got->v[i].key, key) == 0) {
                latest_off = got->v[i].offset;
                snprintf(val, sizeof(val), "val-%d", last);
                CHECK(strcmp(got->v[i].value, val) == 0);
                break;
            }
        CHECK(latest_off == last);
    }
    mk_free(got);
    CHECK(count_suffix(dir, ".cleaned") == 0 && count_suffix(dir, ".swap") == 0);
    /* a close while a cleaning runs: it is dropped, nothing is left */
    for (int i = 0; i < 200; i++)
        append_kv(log, NULL, "again", "again", now);
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    CHECK_RC(mk_log_close(log));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(count_suffix(dir, ".cleaned") == 0 && count_suffix(dir, ".swap") == 0);
    log = open_log(dir, &cfg);
    mk_log_clean_info(log, &ci);
    CHECK(ci.runs == 0 && !ci.running);
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_clean_info(log, &ci);
    CHECK(ci.runs == 1);
    /* the same through the shutdown's close (after a syncfs): the job is
     * let go too, its after callback never sees the freed log (ASan) */
    for (int i = 0; i < 200; i++)
        append_kv(log, NULL, "more", "more", now);
    CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), now) == 1);
    CHECK_RC(mk_log_syncfs(dir));
    CHECK_RC(mk_log_close_synced(log));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(count_suffix(dir, ".cleaned") == 0 && count_suffix(dir, ".swap") == 0);
    CHECK(uv_loop_close(&loop) == 0);
}

/* The descriptor cache (segment.c): with a bound of 12 descriptors (four
 * segments), five logs of several segments each append, read, truncate,
 * flush through a loop and reopen; the cache never holds more than its
 * bound, evicted segments reopen on use, and a cursor's duplicates survive
 * the eviction of the descriptors they came from. */
static void test_fd_cache(void)
{
    enum { NLOGS = 5 };
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 1024;
    cfg.index_interval_bytes = 128;
    cfg.loop = &loop;
    mk_log_set_max_open_files(12);
    mk_log_open_files_stats_t st0, st;
    mk_log_open_files_stats(&st0);
    mk_log_t *logs[NLOGS];
    char dirs[NLOGS][PATH_MAX];
    for (int i = 0; i < NLOGS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "fdcache/p-%d", i);
        subdir(dirs[i], name);
        logs[i] = open_log(dirs[i], &cfg);
    }
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < NLOGS; i++) {
            append_one(logs[i], 3, 1000 + round, 100, 1);
            mk_log_open_files_stats(&st);
            CHECK(st.open <= 12);
        }
    mk_log_open_files_stats(&st);
    CHECK(st.limit == 12 && st.evictions > st0.evictions && st.reopens > st0.reopens);
    CHECK(mk_log_segment_count(logs[0]) > 3);

    /* a cursor holds duplicates: evicting the cached descriptors (reading
     * the other logs) leaves them readable */
    mk_log_cursor_t *cur;
    CHECK_RC(mk_log_cursor_open(logs[0], &cur));
    mk_buf_t out;
    mk_buf_init(&out);
    for (int i = 1; i < NLOGS; i++)
        read_all(logs[i], &out);
    mk_batch_view_t v;
    int n = 0, rc;
    while ((rc = mk_log_cursor_next(cur, &v)) == 1) {
        CHECK_RC(mk_log_cursor_read(cur, &v, &out));
        n++;
    }
    CHECK(rc == 0 && n == 10);
    mk_log_cursor_close(cur);

    /* every log reads back whole, truncates and flushes through evictions */
    for (int i = 0; i < NLOGS; i++) {
        read_all(logs[i], &out);
        CHECK(mk_log_end_offset(logs[i]) == 30);
        CHECK_RC(mk_log_truncate_to(logs[i], 21));
        CHECK_RC(mk_log_flush(logs[i]));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_open_files_stats(&st);
    CHECK(st.open <= 12);
    for (int i = 0; i < NLOGS; i++) {
        mk_log_stats_t ls;
        mk_log_stats(logs[i], &ls);
        if (ls.io_error != 0 || ls.flushed_offset != 21)
            fprintf(stderr, "log %d: io_error %d flushed %lld\n", i, ls.io_error, (long long)ls.flushed_offset);
        CHECK(ls.io_error == 0 && ls.flushed_offset == 21);
        CHECK_RC(mk_log_close_async(logs[i], &loop, NULL, NULL));
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_open_files_stats(&st);
    CHECK(st.open == 0);
    for (int i = 0; i < NLOGS; i++) {
        logs[i] = open_log(dirs[i], &cfg);
        CHECK(mk_log_end_offset(logs[i]) == 21);
        read_all(logs[i], &out);
        CHECK_RC(mk_log_close(logs[i]));
    }
    mk_buf_free(&out);
    mk_log_set_max_open_files(MK_LOG_MAX_OPEN_FILES_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Descriptors open in the process right now. */
static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* The flush queue (log.c): NLOGS logs flush at once under a soft
 * RLIMIT_NOFILE far below the descriptors their flushes would dup all at
 * once; only MK_LOG_FLUSH_INFLIGHT of them hold descriptors, the rest wait
 * without any and every one completes, with no EMFILE.  Closing, closing
 * asynchronously or destroying a log whose flush waits takes it out of the
 * queue (ASan checks the rest).  A flush that cannot start (no descriptors
 * left at all) is retried by mk_log_tick(), not lost. */
static void test_flush_queue(void)
{
    enum { NLOGS = 120, CACHE = 24 };
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.loop = &loop;
    mk_log_set_max_open_files(CACHE);
    mk_log_open_files_stats_t st0, st;
    mk_log_open_files_stats(&st0);
    int base = count_open_fds();
    /* each flush dups four descriptors (three files, the directory): all at
     * once would need NLOGS * 4 = 480 */
    int bound = base + CACHE + MK_LOG_FLUSH_INFLIGHT * 5;
    struct rlimit rl0, rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl0) == 0);
    rl = rl0;
    rl.rlim_cur = (rlim_t)bound + 16;
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);

    mk_log_t *logs[NLOGS];
    char dirs[NLOGS][PATH_MAX];
    for (int i = 0; i < NLOGS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "flushq/p-%d", i);
        subdir(dirs[i], name);
        logs[i] = open_log(dirs[i], &cfg);
        append_one(logs[i], 2, 1000, 100, 1);
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NLOGS; i++) {
            CHECK_RC(mk_log_flush(logs[i]));
            CHECK(count_open_fds() <= bound);
            mk_log_stats_t ls;
            mk_log_stats(logs[i], &ls);
            CHECK(ls.flush_in_flight);
        }
        /* appends while waiting: the flush collects them when it starts */
        CHECK(logs[MK_LOG_FLUSH_INFLIGHT - 1]->flush && logs[MK_LOG_FLUSH_INFLIGHT]->flushq);
        for (int i = MK_LOG_FLUSH_INFLIGHT; i < NLOGS; i += 3)
            append_one(logs[i], 1, 1000, 100, 1);
        uv_run(&loop, UV_RUN_DEFAULT);
        for (int i = 0; i < NLOGS; i++) {
            mk_log_stats_t ls;
            mk_log_stats(logs[i], &ls);
            if (ls.io_error || ls.flush_in_flight || ls.flushed_offset != ls.end_offset)
                fprintf(stderr, "log %d: io_error %d in flight %d flushed %lld of %lld\n", i, ls.io_error,
                        ls.flush_in_flight, (long long)ls.flushed_offset, (long long)ls.end_offset);
            CHECK(!ls.io_error && !ls.flush_in_flight && ls.flushed_offset == ls.end_offset);
        }
        for (int i = 0; i < NLOGS; i++)
            append_one(logs[i], 1, 1000, 100, 1);
    }
    mk_log_open_files_stats(&st);
    CHECK(st.emfile == st0.emfile);

    /* close while waiting: the first MK_LOG_FLUSH_INFLIGHT flushes start,
     * the rest wait; waiting logs are closed three ways, one in flight too */
    for (int i = 0; i < NLOGS; i++)
        CHECK_RC(mk_log_flush(logs[i]));
    int64_t ends[NLOGS];
    for (int i = 0; i < NLOGS; i++)
        ends[i] = mk_log_end_offset(logs[i]);
    CHECK(logs[MK_LOG_FLUSH_INFLIGHT]->flushq && !logs[0]->flushq && logs[0]->flush);
    CHECK_RC(mk_log_close(logs[0]));                     /* in flight */
    CHECK_RC(mk_log_close(logs[MK_LOG_FLUSH_INFLIGHT])); /* waiting, the queue's head */
    CHECK_RC(mk_log_close_async(logs[NLOGS - 1], &loop, NULL, NULL)); /* its tail */
    CHECK_RC(mk_log_destroy(logs[NLOGS - 2]));
    logs[0] = logs[MK_LOG_FLUSH_INFLIGHT] = logs[NLOGS - 1] = logs[NLOGS - 2] = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < NLOGS; i++) {
        if (!logs[i])
            continue;
        mk_log_stats_t ls;
        mk_log_stats(logs[i], &ls);
        CHECK(!ls.io_error && !ls.flush_in_flight && ls.flushed_offset == ls.end_offset);
    }
    int reopen[] = {0, MK_LOG_FLUSH_INFLIGHT, NLOGS - 1};
    for (size_t k = 0; k < MK_ARRAY_LEN(reopen); k++) {
        int i = reopen[k];
        logs[i] = open_log(dirs[i], &cfg);
        CHECK(mk_log_end_offset(logs[i]) == ends[i]);
    }
    CHECK(access(dirs[NLOGS - 2], F_OK) != 0);

    /* no descriptor left at all: the flush cannot start, says it is not in
     * flight, and the next tick starts it once descriptors are back */
    mk_log_t *log = logs[1];
    append_one(log, 1, 1000, 100, 1);
    mk_log_seg_files_shed(); /* the cache holds none it could let go of */
    int spare[512], nspare = 0;
    while (nspare < (int)MK_ARRAY_LEN(spare) && (spare[nspare] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        nspare++;
    CHECK(nspare < (int)MK_ARRAY_LEN(spare)); /* the limit was reached */
    CHECK_RC(mk_log_flush(log));
    mk_log_stats_t ls;
    mk_log_stats(log, &ls);
    CHECK(!ls.io_error && !ls.flush_in_flight && ls.flushed_offset < ls.end_offset && log->flush_retry);
    mk_log_tick(log, mk_now_ms()); /* still none */
    CHECK(log->flush_retry && !log->flush);
    while (nspare > 0)
        close(spare[--nspare]);
    mk_log_tick(log, mk_now_ms());
    CHECK(!log->flush_retry && log->flush);
    uv_run(&loop, UV_RUN_DEFAULT);
    mk_log_stats(log, &ls);
    CHECK(!ls.io_error && !ls.flush_in_flight && ls.flushed_offset == ls.end_offset);

    for (int i = 0; i < NLOGS; i++)
        if (logs[i] && i != NLOGS - 2)
            CHECK_RC(mk_log_close(logs[i]));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(setrlimit(RLIMIT_NOFILE, &rl0) == 0);
    mk_log_set_max_open_files(MK_LOG_MAX_OPEN_FILES_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

/* The gate's age of a flush queued on the threadpool (io.c): it counts from
 * the domain's last finished fsync when that is later, so a queue that
 * drains is not taken for a stalled disk (issue 16: 3000 first flushes of new
 * partitions made the health manager restart every broker of the cell);
 * while no fsync finishes, the age grows. */
static void test_io_queued_flush_age(void)
{
    mk_log_io_slot_t a, b;
    mk_log_io_attach(&a, 77, NULL, NULL);
    mk_log_io_attach(&b, 77, NULL, NULL);
    uint64_t ta, tb;
    CHECK(mk_log_io_begin(&a, MK_LOG_IO_FSYNC, &ta) == 0);
    a.flight_ms = ta / 1000000u; /* queued, as mk_log_flush() leaves it */
    CHECK(mk_log_io_begin(&b, MK_LOG_IO_FSYNC, &tb) == 0);
    b.flight_ms = tb / 1000000u;
    usleep(60000);
    mk_log_io_stats_t st;
    CHECK(mk_log_io_stats(77, &st) == 0 && st.inflight == 2 && st.oldest_inflight_ms >= 50);
    /* b's fsync finishes: the disk works, a's wait counts from there */
    b.flight_ms = 0;
    mk_log_io_end(&b, MK_LOG_IO_FSYNC, tb, 0);
    CHECK(mk_log_io_stats(77, &st) == 0 && st.inflight == 1 && st.oldest_inflight_ms < 50);
    usleep(30000);
    CHECK(mk_log_io_stats(77, &st) == 0 && st.inflight == 1 && st.oldest_inflight_ms >= 25);
    a.flight_ms = 0;
    mk_log_io_end(&a, MK_LOG_IO_FSYNC, ta, 0);
    CHECK(mk_log_io_stats(77, &st) == 0 && st.inflight == 0 && st.oldest_inflight_ms == 0);
    mk_log_io_detach(&a);
    mk_log_io_detach(&b);
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_ERROR + 1); /* warnings are expected here */
    if (getenv("MK_LOG_TEST_VERBOSE"))
        mk_logger_set_level(MK_LOGGER_DEBUG);
    snprintf(root, sizeof(root), "/tmp/mk-log-test-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    uint64_t t0 = mk_mono_ms();
    test_roundtrip();
    test_roll_reopen();
    test_torn_and_corrupt();
    test_index_rebuild();
    test_timestamps();
    test_retention();
    test_delete_truncate_replica();
    test_prewrite();
    test_segment_ms();
    test_io_faults();
    test_flush_uv();
    test_append_views();
    test_close_async();
    test_fd_cache();
    test_flush_queue();
    test_io_queued_flush_age();
    test_segment_events();
    test_oom();
    test_epochs_cache();
    test_epochs_trim();
    test_epochs_follower();
    test_epochs_divergence();
    test_epochs_faults();
    test_clean();
    test_clean_first_empty();
    test_clean_uv();
    rm_rf(root);
    printf("log_test: ok (%" PRIu64 " ms)\n", mk_mono_ms() - t0);
    return 0;
}
