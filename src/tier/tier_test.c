/*
 * tier_test.c -- unit test of tier/: the blob layouts of the remote log
 * metadata (round trips, and every rule a row read back must pass), object
 * keys and the texts that go with a segment; then a segment copy end to end
 * against the bundled S3 server (s3d/, in process): a real log segment is
 * scanned, validated, indexed and put with its companions, verified by HEAD,
 * and read back chunk by chunk; a segment with a flipped byte is refused
 * before anything is put; the S3 fault switch makes a request fail.
 * Standalone program; exits 0 when every check passes.
 */
#include "tier/tier_int.h"
#include "s3d/s3d.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* ==================================================================== blobs */

static void test_blobs(void)
{
    mk_buf_t b;
    mk_buf_init(&b);
    mk_log_epoch_entry_t ev[] = {{0, 0}, {3, 100}, {7, 250}};
    tier_epochs_encode(&b, ev, 3);
    CHECK(mk_buf_ok(&b) && b.len == 3 * TIER_EPOCH_ENTRY);
    mk_log_epoch_entry_t *e;
    size_t n;
    CHECK(tier_epochs_decode(b.data, b.len, &e, &n) == 0 && n == 3 && e[2].epoch == 7 && e[2].start_offset == 250);
    mk_free(e);
    CHECK(tier_epochs_decode(b.data, b.len - 1, &e, &n) == MK_ERR_CORRUPT && !e);
    b.data[TIER_EPOCH_ENTRY + 3] = 9; /* epoch 3 -> 9: no longer increasing */
    CHECK(tier_epochs_decode(b.data, b.len, &e, &n) == MK_ERR_CORRUPT);
    CHECK(tier_epochs_decode(NULL, 0, &e, &n) == 0 && n == 0 && !e);

    mk_buf_reset(&b);
    tier_chunk_t cv[] = {{0, 10, 1000}, {300000, 500, 2000}, {600000, 900, 1500}};
    tier_chunks_encode(&b, cv, 3);
    tier_chunk_t *c;
    CHECK(tier_chunks_decode(b.data, b.len, 700000, &c, &n) == 0 && n == 3 && c[1].pos == 300000 &&
          c[1].base_offset == 500 && c[2].max_ts == 1500);
    mk_free(c);
    CHECK(tier_chunks_decode(b.data, b.len, 600000, &c, &n) == MK_ERR_CORRUPT); /* a chunk past the size */
    CHECK(tier_chunks_decode(b.data, 0, 10, &c, &n) == MK_ERR_CORRUPT);          /* bytes but no chunk */
    b.data[7] = 1;                                                               /* first pos != 0 */
    CHECK(tier_chunks_decode(b.data, b.len, 700000, &c, &n) == MK_ERR_CORRUPT);

    mk_buf_reset(&b);
    tier_aborted_t av[] = {{5, 100, 120}, {6, 90, 200}};
    tier_aborted_encode(&b, av, 2);
    tier_aborted_t *a;
    CHECK(tier_aborted_decode(b.data, b.len, &a, &n) == 0 && n == 2 && a[1].pid == 6 && a[1].last == 200);
    mk_free(a);
    b.data[TIER_ABORTED_ENTRY + 23] = 1; /* last 200 -> 1 < first */
    CHECK(tier_aborted_decode(b.data, b.len, &a, &n) == MK_ERR_CORRUPT);
    mk_buf_free(&b);
}

/* =================================================================== texts */

static void test_texts(void)
{
    char id[TIER_ID_LEN + 1], id2[TIER_ID_LEN + 1];
    tier_segment_id(id);
    tier_segment_id(id2);
    CHECK(strlen(id) == TIER_ID_LEN && strcmp(id, id2) != 0);
    uint8_t tid[16] = {1, 2, 3};
    char key[TIER_KEY_MAX];
    CHECK(tier_object_key(key, sizeof(key), "CLUSTER", "orders", tid, 3, 4711, "SEG", ".log") == 0);
    CHECK(strncmp(key, "tier/CLUSTER/orders-", 20) == 0);
    CHECK(strstr(key, "/3/00000000000000004711-SEG.log") != NULL);
    CHECK(tier_object_key(key, 30, "CLUSTER", "orders", tid, 3, 4711, "SEG", ".log") == MK_ERR_TOO_LARGE);

    mk_buf_t b;
    mk_buf_init(&b);
    mk_log_epoch_entry_t ev[] = {{2, 40}, {5, 90}};
    tier_epochs_checkpoint_text(&b, ev, 2);
    CHECK(b.len == strlen("0\n2\n2 40\n5 90\n") && memcmp(b.data, "0\n2\n2 40\n5 90\n", b.len) == 0);
    mk_buf_reset(&b);
    tier_producer_t pv[] = {{7, 1, 41, 1000, -1}};
    tier_snapshot_encode(&b, 100, pv, 1, NULL, 0);
    CHECK(mk_buf_ok(&b) && b.len == 4 + 2 + 8 + 4 + 30 + 4 && memcmp(b.data, "MKPS", 4) == 0);
    mk_buf_free(&b);

    tier_manifest_t m = {.cluster_id = "C", .topic = "t\"x", .segment_id = "S", .partition = 1, .start_offset = 10,
                         .end_offset = 20, .size = 99, .crc32c = 0xabcdef01};
    snprintf(m.sha256, sizeof(m.sha256), "%064d", 0);
    char text[4096];
    size_t n = tier_manifest_text(text, sizeof(text), &m);
    CHECK(n < sizeof(text) && strlen(text) == n);
    CHECK(strstr(text, "\"topic\": \"t\\\"x\"") && strstr(text, "\"crc32c\": \"abcdef01\"") &&
          strstr(text, "\"start_offset\": 10"));
    CHECK(tier_manifest_text(text, 40, &m) == 40); /* does not fit: says so */
}

/* ==================================================== a copy, end to end */

/* A log with a few segments of small batches; returns the log. */
static mk_log_t *make_log(const char *dir)
{
    mk_log_config_t cfg;
    mk_log_config_default(&cfg);
    cfg.segment_bytes = 64 * 1024;
    cfg.index_interval_bytes = 1024;
    mk_log_t *log;
    CHECK(mk_log_open(dir, &cfg, &log) == 0);
    mk_buf_t b;
    mk_buf_init(&b);
    char val[200];
    for (int i = 0; i < 1500; i++) {
        mk_buf_reset(&b);
        memset(val, 'a' + i % 26, sizeof(val));
        mk_batch_rec_in_t r = {"k", 1, val, (int32_t)sizeof(val), 1000 + i, 0, NULL, NULL, NULL};
        CHECK(mk_batch_build(&b, 0, 0, &r, 1) == 0);
        CHECK(mk_log_append(log, b.data, b.len, 3, mk_now_ms(), NULL) == 0);
    }
    mk_buf_free(&b);
    CHECK(mk_log_segment_count(log) >= 3);
    return log;
}

static void prepare(tier_upload_t *u, mk_log_t *log, const mk_log_segment_info_t *si, const char *segid)
{
    memset(u, 0, sizeof(*u));
    CHECK(mk_log_segment_dup_fds(log, si->base_offset, u->fds) == 0);
    u->size = si->size_bytes;
    u->start_offset = si->base_offset;
    u->end_offset = si->end_offset;
    u->chunk_bytes = 8192;
    u->max_chunks = (size_t)(si->size_bytes / u->chunk_bytes) + 2;
    u->chunks = mk_malloc(sizeof(*u->chunks) * u->max_chunks);
    u->scratch_len = 4096; /* smaller than some reads: the buffer logic is exercised */
    u->scratch = mk_malloc(u->scratch_len);
    mk_buf_init(&u->epochs_text);
    mk_buf_init(&u->snapshot);
    mk_log_epoch_entry_t e = {3, si->base_offset};
    tier_epochs_checkpoint_text(&u->epochs_text, &e, 1);
    tier_snapshot_encode(&u->snapshot, si->end_offset, NULL, 0, NULL, 0);
    uint8_t tid[16] = {9};
    for (int i = 0; i < TIER_NEXTS; i++)
        CHECK(tier_object_key(u->keys[i], sizeof(u->keys[i]), "TEST", "topic", tid, 0, si->base_offset, segid,
                              tier_exts[i]) == 0);
    u->manifest.cluster_id = "TEST";
    u->manifest.topic = "topic";
    u->manifest.segment_id = segid;
}

static void release(tier_upload_t *u)
{
    mk_buf_free(&u->epochs_text);
    mk_buf_free(&u->snapshot);
    mk_free(u->scratch);
    mk_free(u->chunks);
}

static void test_copy(void)
{
    char dir[] = "/tmp/tier_test-XXXXXX";
    CHECK(mkdtemp(dir));
    char logdir[256], s3dir[256];
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    snprintf(s3dir, sizeof(s3dir), "%s/s3", dir);
    mk_s3d_opts_t so = {s3dir, "127.0.0.1", 0, NULL, NULL, NULL, "tiered", NULL, 0};
    mk_s3d_t *s3d;
    char why[256];
    CHECK(mk_s3d_open(&so, &s3d, why, sizeof(why)) == 0);
    mk_tier_target_t tg;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", mk_s3d_port(s3d));
    mk_config_t cfg;
    mk_cluster_config_init(&cfg);
    CHECK(mk_tier_target_resolve(&cfg, url, "tiered", mk_s3d_access_key(s3d), mk_s3d_secret_key(s3d), "us-east-1",
                                 &tg, why, sizeof(why)) == 1);
    CHECK(tg.bundled && strcmp(tg.host + strlen(tg.host) - 5, url + strlen(url) - 5) == 0);
    uv_loop_t loop;
    uv_loop_init(&loop);
    tier_s3_t *s3;
    CHECK(tier_s3_new(&loop, &tg, 5000, &s3) == 0);

    mk_log_t *log = make_log(logdir);
    mk_log_segment_info_t si;
    mk_log_segment_info(log, 1, &si);
    CHECK(!si.active && si.size_bytes > 0);
    tier_upload_t u;
    prepare(&u, log, &si, "SEGONE");
    tier_upload_work(&u.job, s3);
    CHECK(u.job.rc == 0);
    CHECK(u.last_offset == si.end_offset - 1 && u.max_ts >= 1000 && strlen(u.sha256) == 64);
    CHECK(u.nchunks >= si.size_bytes / 8192 && u.nchunks <= u.max_chunks && u.chunks[0].pos == 0);
    CHECK(u.chunks[0].base_offset == si.base_offset && u.bytes_sent > si.size_bytes);
    for (int i = 0; i < 3; i++)
        CHECK(u.fds[i] == -1); /* closed by the worker */
    /* Every chunk reads back as whole, valid batches; together they are the segment. */
    uint64_t total = 0;
    for (size_t k = 0; k < u.nchunks; k++) {
        uint64_t end = k + 1 < u.nchunks ? u.chunks[k + 1].pos : si.size_bytes;
        uint8_t *buf = malloc(end - u.chunks[k].pos);
        CHECK(tier_s3_get_range(s3, u.keys[0], u.chunks[k].pos, end - u.chunks[k].pos, buf, why, sizeof(why)) == 0);
        size_t pos = 0;
        mk_batch_view_t v;
        CHECK(mk_batch_view_next(buf, end - u.chunks[k].pos, &pos, &v) == 1 && v.hdr.baseOffset == u.chunks[k].base_offset);
        CHECK(mk_batch_validate(buf, v.size, false, 0, NULL, 0) == 0);
        total += end - u.chunks[k].pos;
        free(buf);
    }
    CHECK(total == si.size_bytes);
    uint64_t len;
    char etag[80];
    CHECK(tier_s3_head(s3, u.keys[5], &len, etag, sizeof(etag), why, sizeof(why)) == 0 && len > 100);
    CHECK(tier_s3_head(s3, u.keys[3], &len, etag, sizeof(etag), why, sizeof(why)) == 0 && len == u.epochs_text.len);
    release(&u);

    /* A flipped byte in the segment: refused at the scan, nothing put. */
    mk_log_segment_info(log, 0, &si);
    char path[300];
    snprintf(path, sizeof(path), "%s/%020lld.log", logdir, (long long)si.base_offset);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t byte;
    CHECK(pread(fd, &byte, 1, 200) == 1);
    byte ^= 0x40;
    CHECK(pwrite(fd, &byte, 1, 200) == 1);
    close(fd);
    prepare(&u, log, &si, "SEGBAD");
    tier_upload_work(&u.job, s3);
    CHECK(u.job.rc == MK_ERR_CORRUPT && strstr(u.job.why, "crc"));
    CHECK(tier_s3_head(s3, u.keys[0], &len, etag, sizeof(etag), why, sizeof(why)) == MK_ERR_NOT_FOUND);
    release(&u);

    /* The fault switch: S3 answers 500, the request fails with MK_ERR_IO; cleared, it works. */
    mk_s3d_fault_t f = {.type = MK_S3D_FAULT_ERROR};
    CHECK(mk_s3d_fault_set(s3d, &f) == 0);
    CHECK(tier_s3_put_mem(s3, "tier/x", "abc", 3, NULL, why, sizeof(why)) == MK_ERR_IO && strstr(why, "Internal"));
    f.type = MK_S3D_FAULT_DOWN;
    CHECK(mk_s3d_fault_set(s3d, &f) == 0);
    CHECK(tier_s3_put_mem(s3, "tier/x", "abc", 3, NULL, why, sizeof(why)) == MK_ERR_IO);
    f.type = MK_S3D_FAULT_NONE;
    CHECK(mk_s3d_fault_set(s3d, &f) == 0);
    CHECK(tier_s3_put_mem(s3, "tier/x", "abc", 3, NULL, why, sizeof(why)) == 0);
    CHECK(tier_s3_delete(s3, "tier/x", why, sizeof(why)) == 0);
    CHECK(tier_s3_delete(s3, "tier/x", why, sizeof(why)) == 0); /* gone already: fine */
    f.type = 99;
    CHECK(mk_s3d_fault_set(s3d, &f) == MK_ERR_INVALID);
    uint64_t injected;
    mk_s3d_fault_get(s3d, &f, &injected);
    CHECK(f.type == MK_S3D_FAULT_NONE && injected >= 2);

    tier_s3_free(s3);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    mk_log_destroy(log);
    mk_s3d_close(s3d);
    mk_cluster_config_free(&cfg);
    mk_rm_rf(dir);
}

int main(void)
{
    test_blobs();
    test_texts();
    test_copy();
    printf("tier_test: ok\n");
    return 0;
}
