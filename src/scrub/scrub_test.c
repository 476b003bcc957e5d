/*
 * scrub_test.c -- unit tests for src/scrub/: the walk over replica logs
 * (validation, bad ranges, comparison of replicas) on the log directories
 * of testdata/scrub/ (see gen.py there for what each one holds), the
 * audit's replay of stored rows, and the offline verify on a data
 * directory made here (metadata store, replica logs, audit rows), clean
 * and damaged; replicas compacted independently (no finding below the
 * cleaner checkpoint).  The live scrubber (passes, repair, lost data, the audit's
 * rules on a running cluster) is tested by tests/test_integrity.py.  Run
 * from the repository root (or set MK_TESTDATA to testdata/scrub).  Exit
 * status 0 on success.
 */
#include "scrub/scrub_int.h"

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#define BATCH 740   /* bytes of each golden batch (3 records) */

static char testdata[PATH_MAX];
static char tmp[PATH_MAX];

static void find_testdata(void)
{
    const char *dirs[] = {getenv("MK_TESTDATA"), "testdata/scrub", "../testdata/scrub", "../../testdata/scrub"};
    for (size_t i = 0; i < MK_ARRAY_LEN(dirs); i++) {
        struct stat sb;
        char probe[PATH_MAX];
        if (!dirs[i] || snprintf(probe, sizeof(probe), "%s/clean", dirs[i]) >= (int)sizeof(probe))
            continue;
        if (stat(probe, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(testdata, sizeof(testdata), "%s", dirs[i]);
            return;
        }
    }
    fprintf(stderr, "scrub_test: testdata/scrub not found (run from the repo root or set MK_TESTDATA)\n");
    exit(1);
}

/* A cursor over testdata/scrub/<name>. */
static mk_log_cursor_t *open_case(const char *name, int64_t *start)
{
    char dir[PATH_MAX];
    CHECK(snprintf(dir, sizeof(dir), "%s/%s", testdata, name) < (int)sizeof(dir));
    mk_log_cursor_t *cur = NULL;
    CHECK_RC(mk_log_cursor_open_dir(dir, &cur, start));
    return cur;
}

/* Walks one replica of case name alone; *w is left for the checks (free it). */
static scrub_rep_t *walk_one(scrub_walk_t *w, const char *name)
{
    int64_t start = -1;
    mk_log_cursor_t *cur = open_case(name, &start);
    scrub_walk_init(w, name, 0);
    CHECK_RC(scrub_walk_add(w, 1, cur, start, true, true));
    scrub_walk_step(w, 0);
    CHECK(w->finished);
    return &w->reps[0];
}

static void check_range(const scrub_rep_t *r, int i, int64_t from, int64_t to, int kind)
{
    CHECK(i < r->nranges);
    if (r->ranges[i].from != from || r->ranges[i].to != to || r->ranges[i].kind != kind)
        fprintf(stderr, "range %d: [%lld, %lld] kind %d, want [%lld, %lld] kind %d (%s)\n", i,
                (long long)r->ranges[i].from, (long long)r->ranges[i].to, r->ranges[i].kind, (long long)from,
                (long long)to, kind, r->why);
    CHECK(r->ranges[i].from == from && r->ranges[i].to == to && r->ranges[i].kind == kind);
}

/* ================================================================= walk */

static void test_walk_cases(void)
{
    scrub_walk_t w;
    scrub_rep_t *r = walk_one(&w, "clean");
    CHECK(r->batches == 5 && r->bytes == 5 * BATCH);
    CHECK(r->nranges == 0 && r->bad_from == INT64_MAX && !r->why[0]);
    scrub_walk_free(&w);

    /* A flipped byte in a record: that batch, and nothing else. */
    r = walk_one(&w, "crc");
    CHECK(r->batches == 5);
    CHECK(r->nranges == 1 && r->bad_from == 3);
    check_range(r, 0, 3, 5, SCRUB_BAD_CORRUPT);
    CHECK(strstr(r->why, "crc") && strstr(r->why, "offset 3"));
    scrub_walk_free(&w);

    /* A length that cannot be framed: the rest of that segment; the next
     * segment is still read. */
    r = walk_one(&w, "framing");
    CHECK(r->batches == 3);
    CHECK(r->nranges == 1);
    check_range(r, 0, 3, 8, SCRUB_BAD_CORRUPT);
    CHECK(strstr(r->why, "unreadable"));
    scrub_walk_free(&w);

    /* Offsets no batch holds. */
    r = walk_one(&w, "gap");
    CHECK(r->batches == 4 && r->nranges == 1);
    check_range(r, 0, 3, 5, SCRUB_BAD_GAP);
    CHECK(strstr(r->why, "missing"));
    scrub_walk_free(&w);

    /* A leader epoch that goes back: bad up to the next sound batch. */
    r = walk_one(&w, "epoch");
    CHECK(r->nranges == 1);
    check_range(r, 0, 6, 8, SCRUB_BAD_CORRUPT);
    CHECK(strstr(r->why, "epoch"));
    scrub_walk_free(&w);

    /* The start offset a directory's log would open with. */
    int64_t start = -1;
    mk_log_cursor_t *cur = open_case("start", &start);
    CHECK(start == 6);
    CHECK(mk_log_cursor_end_offset(cur) == -1);
    mk_log_cursor_close(cur);
    cur = open_case("clean", &start);
    CHECK(start == 0);
    mk_log_cursor_close(cur);
    mk_log_cursor_t *none = NULL;
    CHECK(mk_log_cursor_open_dir("/nonexistent/minikora/log", &none, NULL) == MK_ERR_NOT_FOUND && !none);
}

/* A walk in small budgets sees what one big step sees. */
static void test_walk_budget(void)
{
    scrub_walk_t w;
    int64_t start;
    scrub_walk_init(&w, "crc", 0);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("crc", &start), start, true, true));
    int steps = 0;
    uint64_t total = 0;
    while (!w.finished) {
        total += scrub_walk_step(&w, 1);
        steps++;
        CHECK(steps < 100);
    }
    CHECK(steps >= 5 && total == 5 * BATCH);
    CHECK(w.reps[0].nranges == 1);
    check_range(&w.reps[0], 0, 3, 5, SCRUB_BAD_CORRUPT);
    scrub_walk_free(&w);
}

/* Replicas compared: the majority is right, a tie goes to the leader, and
 * above the committed offset only batches of one epoch must match. */
static void test_compare(void)
{
    scrub_walk_t w;
    int64_t start;
    scrub_walk_init(&w, "t-0", 0);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("clean", &start), start, true, false));
    CHECK_RC(scrub_walk_add(&w, 2, open_case("diverged", &start), start, true, true));
    CHECK_RC(scrub_walk_add(&w, 3, open_case("clean", &start), start, true, false));
    scrub_walk_step(&w, 0);
    CHECK(w.reps[0].nranges == 0 && w.reps[2].nranges == 0);
    CHECK(w.reps[1].nranges == 1);
    check_range(&w.reps[1], 0, 6, 8, SCRUB_BAD_DIVERGED);
    CHECK(strstr(w.reps[1].why, "differs"));
    scrub_walk_free(&w);

    /* Two replicas that disagree: the leader's copy wins. */
    scrub_walk_init(&w, "t-0", 0);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("clean", &start), start, true, false));
    CHECK_RC(scrub_walk_add(&w, 2, open_case("diverged", &start), start, true, true));
    scrub_walk_step(&w, 0);
    CHECK(w.reps[1].nranges == 0 && w.reps[0].nranges == 1);
    check_range(&w.reps[0], 0, 6, 8, SCRUB_BAD_DIVERGED);
    scrub_walk_free(&w);

    /* A replica not compared (not settled) is only validated. */
    scrub_walk_init(&w, "t-0", 0);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("clean", &start), start, true, true));
    CHECK_RC(scrub_walk_add(&w, 2, open_case("diverged", &start), start, false, false));
    scrub_walk_step(&w, 0);
    CHECK(w.reps[0].nranges == 0 && w.reps[1].nranges == 0);
    scrub_walk_free(&w);

    /* Another epoch at one offset: divergence only below the committed offset. */
    scrub_walk_init(&w, "t-0", 0);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("clean", &start), start, true, true));
    CHECK_RC(scrub_walk_add(&w, 2, open_case("epoch", &start), start, true, false));
    scrub_walk_step(&w, 0);
    CHECK(w.reps[0].nranges == 0);
    CHECK(w.reps[1].nranges == 1); /* only its epoch going back */
    check_range(&w.reps[1], 0, 6, 8, SCRUB_BAD_CORRUPT);
    scrub_walk_free(&w);
    scrub_walk_init(&w, "t-0", INT64_MAX);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("clean", &start), start, true, true));
    CHECK_RC(scrub_walk_add(&w, 2, open_case("epoch", &start), start, true, false));
    scrub_walk_step(&w, 0);
    CHECK(w.reps[0].nranges == 0);
    CHECK(w.reps[1].nranges >= 1);
    check_range(&w.reps[1], 0, 3, 5, SCRUB_BAD_DIVERGED);
    CHECK(strstr(w.reps[1].why, "below the high watermark"));
    scrub_walk_free(&w);

    /* A corrupt copy is not compared, and the sound ones agree. */
    scrub_walk_init(&w, "t-0", INT64_MAX);
    CHECK_RC(scrub_walk_add(&w, 1, open_case("clean", &start), start, true, true));
    CHECK_RC(scrub_walk_add(&w, 2, open_case("crc", &start), start, true, false));
    scrub_walk_step(&w, 0);
    CHECK(w.reps[0].nranges == 0 && w.reps[1].nranges == 1);
    check_range(&w.reps[1], 0, 3, 5, SCRUB_BAD_CORRUPT);
    scrub_walk_free(&w);
}

/* ================================================================ audit */

static void test_replay(void)
{
    mk_map_t reps;
    mk_map_init(&reps);
    mk_meta_audit_t row = {.kind = "log_start", .topic_id = "AAAAAAAAAAAAAAAAAAAAAA", .partition = 0, .broker = 1,
                           .start_before = MK_META_AUDIT_NONE, .start_after = 0, .base_offset = MK_META_AUDIT_NONE,
                           .end_offset = MK_META_AUDIT_NONE};
    CHECK_RC(scrub_audit_replay(&reps, &row));
    row.kind = "segment_deleted";
    row.base_offset = 0;
    row.end_offset = 100;
    CHECK_RC(scrub_audit_replay(&reps, &row));
    row.base_offset = 100;
    row.end_offset = 250;
    CHECK_RC(scrub_audit_replay(&reps, &row));
    row.base_offset = 400; /* not adjacent: does not extend */
    row.end_offset = 500;
    CHECK_RC(scrub_audit_replay(&reps, &row));
    const audit_rep_t *r = mk_map_get(&reps, "AAAAAAAAAAAAAAAAAAAAAA/0/1");
    CHECK(r && r->start == 0 && r->covered_to == 250);
    row.kind = "log_start";
    row.start_after = 250;
    CHECK_RC(scrub_audit_replay(&reps, &row));
    CHECK(r->start == 250 && r->covered_to == 250);
    /* Rows of another replica, and deletions of a replica never started, change nothing here. */
    row.kind = "segment_deleted";
    row.broker = 2;
    CHECK_RC(scrub_audit_replay(&reps, &row));
    CHECK(!mk_map_get(&reps, "AAAAAAAAAAAAAAAAAAAAAA/0/2"));
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&reps, &it, &k, &v))
        mk_free(v);
    mk_map_free(&reps);
}

/* ============================================================== verify */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    CHECK(in);
    FILE *out = fopen(to, "wb");
    CHECK(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        CHECK(fwrite(buf, 1, n, out) == n);
    fclose(in);
    CHECK(fclose(out) == 0);
}

/* <tmp>/data/broker-<b>/t-0 becomes a copy of testdata case name. */
static void place_replica(int b, const char *name)
{
    char dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
    PATHF(dir, "%s/data/broker-%d/t-0", tmp, b);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    CHECK_RC(mk_mkdir_p(dir));
    static const char *files[] = {"00000000000000000000.log", "00000000000000000009.log"};
    for (size_t i = 0; i < MK_ARRAY_LEN(files); i++) {
        PATHF(from, "%s/%s/%s", testdata, name, files[i]);
        PATHF(to, "%s/%s", dir, files[i]);
        copy_file(from, to);
    }
}

/* Runs verify on <tmp>/data; its output into out (n bytes). */
static int run_verify(char *out, size_t n)
{
    char data[PATH_MAX];
    PATHF(data, "%s/data", tmp);
    FILE *f = fmemopen(out, n, "w");
    CHECK(f);
    int rc = mk_scrub_verify_dir(data, f);
    fclose(f);
    out[n - 1] = 0;
    return rc;
}

static void test_verify(void)
{
    char path[PATH_MAX], out[8192];
    PATHF(path, "%s/data", tmp);
    CHECK(mk_scrub_verify_dir(path, fopen("/dev/null", "w")) == MK_ERR_NOT_FOUND);
    CHECK_RC(mk_mkdir_p(path));
    CHECK(run_verify(out, sizeof(out)) == MK_ERR_NOT_FOUND && strstr(out, "no meta.db"));

    /* A store with topic t (one partition on brokers 1 and 2) and its audit. */
    PATHF(path, "%s/data/meta.db", tmp);
    mk_meta_t *m;
    CHECK_RC(mk_meta_open(path, &m));
    int32_t replicas[] = {1, 2};
    mk_meta_partition_t part = {0, 1, 0, 2, replicas};
    mk_meta_topic_t t = {.name = "t", .partition_count = 1, .replication_factor = 2, .partitions = &part};
    memset(t.topic_id, 7, sizeof(t.topic_id));
    mk_meta_op_t op = {.kind = MK_META_TOPIC_PUT, .t = &t};
    CHECK_RC(mk_meta_op_run(m, &op));
    char id[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(t.topic_id, id);
    mk_meta_audit_t rows[2];
    for (int b = 0; b < 2; b++)
        rows[b] = (mk_meta_audit_t){.ts_ms = 1, .kind = "log_start", .topic = "t", .topic_id = id, .partition = 0,
                                    .broker = b + 1, .start_before = MK_META_AUDIT_NONE, .start_after = 0,
                                    .base_offset = MK_META_AUDIT_NONE, .end_offset = MK_META_AUDIT_NONE,
                                    .largest_ts = MK_META_AUDIT_NONE, .retention_ms = MK_META_AUDIT_NONE,
                                    .retention_bytes = MK_META_AUDIT_NONE, .log_bytes = MK_META_AUDIT_NONE,
                                    .rule = "first_seen", .detail = "test"};
    op = (mk_meta_op_t){.kind = MK_META_AUDIT_APPEND, .audit = rows, .n = 2};
    CHECK_RC(mk_meta_op_run(m, &op));
    mk_meta_close(m);

    place_replica(1, "clean");
    place_replica(2, "clean");
    /* A deleted log being removed is not a replica. */
    PATHF(path, "%s/data/broker-1/t-0.3-delete", tmp);
    CHECK_RC(mk_mkdir_p(path));
    int rc = run_verify(out, sizeof(out));
    if (rc != 0)
        fprintf(stderr, "%s", out);
    CHECK(rc == 0);
    CHECK(strstr(out, "2 brokers, 1 partitions, 2 replicas, 10 batches") && strstr(out, "0 problems"));
    /* Nothing was written beside the store. */
    PATHF(path, "%s/data/meta.db-shm", tmp);
    CHECK(access(path, F_OK) != 0);

    /* A corrupt batch on one replica: one problem, named. */
    place_replica(2, "crc");
    rc = run_verify(out, sizeof(out));
    CHECK(rc == 1);
    CHECK(strstr(out, "t-0 on broker 2") && strstr(out, "corrupt offsets 3..5"));

    /* A diverged replica, and a log start moved by hand past what the audit recorded. */
    place_replica(2, "diverged");
    PATHF(path, "%s/data/broker-1/t-0/log-start-offset", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs("6\n", f);
    fclose(f);
    rc = run_verify(out, sizeof(out));
    if (rc != 2)
        fprintf(stderr, "%s", out);
    CHECK(rc == 2);
    CHECK(strstr(out, "audit rule coverage") && strstr(out, "offsets 0..5"));
    CHECK(strstr(out, "differs"));
}

/* ============================================================ compaction */

/* Two replicas of one history, one compacted by its own cleaner: compared
 * as they are, the walk finds gaps and divergence; with the cleaner
 * checkpoint as compacted_to (what the scrubber and verify pass), nothing. */
static void make_history(const char *dir, bool clean)
{
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 400;
    cfg.compact = true;
    cfg.min_cleanable_ratio = 0;
    mk_log_t *log = NULL;
    CHECK_RC(mk_log_open(dir, &cfg, &log));
    for (int i = 0; i < 40; i++) {
        /* a key of its own (kept) and a key every batch overwrites */
        char key[8], val[16];
        snprintf(key, sizeof(key), "u%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        mk_batch_rec_in_t r[2] = {{key, (int32_t)strlen(key), val, (int32_t)strlen(val), 1000 + i, 0, NULL, NULL, NULL},
                                  {"k", 1, val, (int32_t)strlen(val), 1000 + i, 0, NULL, NULL, NULL}};
        mk_buf_t b;
        mk_buf_init(&b);
        CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, r, (i % 3 == 0) ? 1 : 2));
        CHECK_RC(mk_log_append(log, b.data, b.len, 0, 5000, NULL));
        mk_buf_free(&b);
    }
    /* and batches of the overwritten key alone: they go, leaving gaps */
    for (int i = 0; i < 10; i++) {
        mk_batch_rec_in_t r = {"k", 1, "x", 1, 2000 + i, 0, NULL, NULL, NULL};
        mk_buf_t b;
        mk_buf_init(&b);
        CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, &r, 1));
        CHECK_RC(mk_log_append(log, b.data, b.len, 0, 5000, NULL));
        mk_buf_free(&b);
        if (i == 4)
            for (int j = 0; j < 8; j++) {
                char key[8];
                snprintf(key, sizeof(key), "w%d", j);
                mk_batch_rec_in_t w = {key, (int32_t)strlen(key), "y", 1, 3000, 0, NULL, NULL, NULL};
                mk_buf_init(&b);
                CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, &w, 1));
                CHECK_RC(mk_log_append(log, b.data, b.len, 0, 5000, NULL));
                mk_buf_free(&b);
            }
    }
    if (clean)
        CHECK(mk_log_clean_maybe(log, mk_log_end_offset(log), 5000) == 1);
    CHECK_RC(mk_log_close(log));
}

static void test_compacted(void)
{
    char a[PATH_MAX], b[PATH_MAX];
    PATHF(a, "%s/compacted-a", tmp);
    PATHF(b, "%s/compacted-b", tmp);
    make_history(a, true);
    make_history(b, false);
    int64_t cleaned = mk_log_cleaned_offset_dir(a);
    CHECK(cleaned > 0 && mk_log_cleaned_offset_dir(b) == 0);
    for (int pass = 0; pass < 2; pass++) {
        scrub_walk_t w;
        scrub_walk_init(&w, "c-0", INT64_MAX);
        w.compacted_to = pass ? cleaned : 0;
        int64_t start;
        mk_log_cursor_t *ca = NULL, *cb = NULL;
        CHECK_RC(mk_log_cursor_open_dir(a, &ca, &start));
        CHECK_RC(scrub_walk_add(&w, 1, ca, start, true, true));
        CHECK_RC(mk_log_cursor_open_dir(b, &cb, &start));
        CHECK_RC(scrub_walk_add(&w, 2, cb, start, true, false));
        scrub_walk_step(&w, 0);
        CHECK(w.finished && w.reps[0].io_error == 0 && w.reps[1].io_error == 0);
        if (pass == 0)
            CHECK(w.reps[0].nranges + w.reps[1].nranges > 0);
        else
            CHECK(w.reps[0].nranges == 0 && w.reps[1].nranges == 0 && w.reps[0].batches > 0);
        scrub_walk_free(&w);
    }
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_ERROR);
    find_testdata();
    snprintf(tmp, sizeof(tmp), "/tmp/scrub_test.XXXXXX");
    CHECK(mkdtemp(tmp));
    test_walk_cases();
    test_walk_budget();
    test_compare();
    test_replay();
    test_verify();
    test_compacted();
    nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    printf("scrub_test: ok\n");
    return 0;
}
