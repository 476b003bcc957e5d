/*
 * batch_test.c -- unit tests for the batch module (run from the repo root;
 * the golden batches are read from testdata/batches/).
 *
 * Covers: build -> validate -> iterate round trips for every codec; every
 * corruption the validator promises to catch (flipped bytes, truncation,
 * lying lengths and counts, out-of-sequence offsets, huge header counts,
 * unknown codecs, decompression bombs, garbage payloads); the in-place
 * rewrites; the codecs' framings (hand-made Xerial snappy, concatenated
 * frames, streamed zstd); golden batches written by kafka-python and by
 * librdkafka; and allocation failure at every step.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "batch/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

#define CHECK_RC(expr, want)                                                                          \
    do {                                                                                              \
        int rc_ = (int)(expr);                                                                        \
        if (rc_ != (want)) {                                                                          \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr, rc_, \
                    mk_strerror(rc_), (int)(want), mk_strerror(want));                                \
            failures++;                                                                               \
        }                                                                                             \
    } while (0)

static const int all_codecs[] = {MK_CODEC_NONE, MK_CODEC_GZIP, MK_CODEC_SNAPPY, MK_CODEC_LZ4, MK_CODEC_ZSTD};

/* ================================================================ helpers */

static int32_t rd_be32(const uint8_t *p) { return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]); }

static void wr_be32(uint8_t *p, int32_t v)
{
    p[0] = (uint8_t)((uint32_t)v >> 24);
    p[1] = (uint8_t)((uint32_t)v >> 16);
    p[2] = (uint8_t)((uint32_t)v >> 8);
    p[3] = (uint8_t)v;
}

/* Recompute the CRC after a test edits CRC'd bytes on purpose. */
static void fix_crc(uint8_t *p, size_t size)
{
    uint32_t crc = mk_crc32c(0, p + MK_BATCH_OFF_ATTRIBUTES, size - MK_BATCH_OFF_ATTRIBUTES);
    wr_be32(p + MK_BATCH_OFF_CRC, (int32_t)crc);
}

static int validate_deep(const uint8_t *p, size_t n)
{
    char why[128];
    return mk_batch_validate(p, n, true, 1 << 20, why, sizeof(why));
}

/* Write one record by hand; every field can lie.  key/value NULL = null. */
static void raw_record(mk_buf_t *b, int32_t len_adjust, int64_t ts_delta, int32_t off_delta, const char *key,
                       const char *value, int32_t header_count, const void *hdr_raw, size_t hdr_raw_len)
{
    mk_buf_t body;
    mk_buf_init(&body);
    mk_buf_put_i8(&body, 0);
    mk_buf_put_varint(&body, ts_delta);
    mk_buf_put_varint(&body, off_delta);
    mk_buf_put_varint(&body, key ? (int64_t)strlen(key) : -1);
    if (key)
        mk_buf_put(&body, key, strlen(key));
    mk_buf_put_varint(&body, value ? (int64_t)strlen(value) : -1);
    if (value)
        mk_buf_put(&body, value, strlen(value));
    mk_buf_put_varint(&body, header_count);
    mk_buf_put(&body, hdr_raw, hdr_raw_len);
    mk_buf_put_varint(b, (int64_t)body.len + len_adjust);
    mk_buf_put(b, body.data, body.len);
    mk_buf_free(&body);
}

/* Wrap a records blob in a correct header (compressing it with codec). */
static void raw_batch(mk_buf_t *out, int16_t attrs, const mk_buf_t *recs, int32_t count, int32_t last_delta)
{
    size_t start = out->len;
    mk_buf_put_i64(out, 100);
    mk_buf_put_i32(out, 0);
    mk_buf_put_i32(out, 7);
    mk_buf_put_i8(out, 2);
    mk_buf_put_u32(out, 0);
    mk_buf_put_i16(out, attrs);
    mk_buf_put_i32(out, last_delta);
    mk_buf_put_i64(out, 1000);
    mk_buf_put_i64(out, 1000);
    mk_buf_put_i64(out, -1);
    mk_buf_put_i16(out, -1);
    mk_buf_put_i32(out, -1);
    mk_buf_put_i32(out, count);
    int codec = attrs & 7;
    if (codec >= 1 && codec <= 4)
        CHECK_RC(mk_batch_codec_compress(codec, recs->data, recs->len, out), 0);
    else
        mk_buf_put(out, recs->data, recs->len);
    wr_be32(out->data + start + 8, (int32_t)(out->len - start - 12));
    fix_crc(out->data + start, out->len - start);
}

/* ------------------------------------------------------- record collector */

typedef struct got_rec_s {
    int64_t offset, timestamp;
    char key[64], value[4096];
    int32_t key_len, value_len, header_count;
    char hkey[4][16], hval[4][16];
    int32_t hval_len[4];
} got_rec_t;

typedef struct collect_s {
    got_rec_t recs[64];
    int n;
    int stop_at;   /* stop (returning 42) once this many were seen; 0 = never */
} collect_t;

static int collect_cb(const mk_record_t *rec, void *arg)
{
    collect_t *c = arg;
    if (c->n >= (int)MK_ARRAY_LEN(c->recs))
        return 1;
    got_rec_t *g = &c->recs[c->n++];
    memset(g, 0, sizeof(*g));
    g->offset = rec->offset;
    g->timestamp = rec->timestamp;
    g->key_len = rec->key_len;
    g->value_len = rec->value_len;
    g->header_count = rec->header_count;
    if (rec->key_len > 0)
        memcpy(g->key, rec->key, MK_MIN((size_t)rec->key_len, sizeof(g->key) - 1));
    if (rec->value_len > 0)
        memcpy(g->value, rec->value, MK_MIN((size_t)rec->value_len, sizeof(g->value) - 1));
    mk_reader_t r;
    mk_rd_init(&r, rec->headers, rec->headers_len);
    mk_record_header_t h;
    int j = 0, rc;
    while ((rc = mk_batch_record_header_next(&r, &h)) == 1) {
        if (j < 4) {
            memcpy(g->hkey[j], h.key, MK_MIN((size_t)h.key_len, sizeof(g->hkey[j]) - 1));
            g->hval_len[j] = h.value_len;
            if (h.value_len > 0)
                memcpy(g->hval[j], h.value, MK_MIN((size_t)h.value_len, sizeof(g->hval[j]) - 1));
        }
        j++;
    }
    CHECK(rc == 0);
    CHECK(j == rec->header_count);
    if (c->stop_at && c->n >= c->stop_at)
        return 42;
    return 0;
}

/* The three records the golden files hold (see the generators in testdata/batches). */
static char golden_v0[321], golden_v1[321];
static const char *golden_hkeys[] = {"h0", "h1"};
static const void *golden_hvals[] = {"v0", NULL};
static const int32_t golden_hlens[] = {2, -1};

static void golden_recs(mk_batch_rec_in_t recs[3])
{
    golden_v0[0] = golden_v1[0] = 0;
    for (int i = 0; i < 40; i++) {
        strcat(golden_v0, "value-0-");
        strcat(golden_v1, "value-1-");
    }
    memset(recs, 0, 3 * sizeof(*recs));
    recs[0] = (mk_batch_rec_in_t){"k0", 2, golden_v0, 320, 1700000000000LL, 2, golden_hkeys, golden_hvals, golden_hlens};
    recs[1] = (mk_batch_rec_in_t){NULL, -1, golden_v1, 320, 1700000000001LL, 0, NULL, NULL, NULL};
    recs[2] = (mk_batch_rec_in_t){"k2", 2, NULL, -1, 1700000000002LL, 0, NULL, NULL, NULL};
}

static void check_golden_content(const collect_t *c, int64_t base_offset)
{
    CHECK(c->n == 3);
    if (c->n != 3)
        return;
    CHECK(c->recs[0].offset == base_offset && c->recs[1].offset == base_offset + 1 && c->recs[2].offset == base_offset + 2);
    CHECK(c->recs[0].timestamp == 1700000000000LL && c->recs[2].timestamp == 1700000000002LL);
    CHECK(c->recs[0].key_len == 2 && strcmp(c->recs[0].key, "k0") == 0);
    CHECK(c->recs[0].value_len == 320 && strcmp(c->recs[0].value, golden_v0) == 0);
    CHECK(c->recs[0].header_count == 2);
    CHECK(strcmp(c->recs[0].hkey[0], "h0") == 0 && c->recs[0].hval_len[0] == 2 && strcmp(c->recs[0].hval[0], "v0") == 0);
    CHECK(strcmp(c->recs[0].hkey[1], "h1") == 0 && c->recs[0].hval_len[1] == -1);
    CHECK(c->recs[1].key_len == -1 && c->recs[1].value_len == 320 && strcmp(c->recs[1].value, golden_v1) == 0);
    CHECK(c->recs[1].header_count == 0);
    CHECK(c->recs[2].key_len == 2 && strcmp(c->recs[2].key, "k2") == 0 && c->recs[2].value_len == -1);
}

/* ================================================================== tests */

static void test_header_and_size(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    mk_buf_t b;
    mk_buf_init(&b);
    CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 42, recs, 3), 0);
    mk_batch_hdr_t h;
    CHECK_RC(mk_batch_hdr_parse(b.data, b.len, &h), 0);
    CHECK(h.baseOffset == 42 && h.magic == 2 && h.recordCount == 3 && h.lastOffsetDelta == 2);
    CHECK(h.baseTimestamp == 1700000000000LL && h.maxTimestamp == 1700000000002LL);
    CHECK(h.producerId == -1 && h.producerEpoch == -1 && h.baseSequence == -1 && h.partitionLeaderEpoch == -1);
    CHECK(h.batchLength == (int32_t)b.len - 12 && mk_batch_hdr_last_offset(&h) == 44);
    CHECK(mk_batch_size(b.data, b.len) == (int64_t)b.len);
    CHECK(mk_batch_size(b.data, 12) == (int64_t)b.len);
    CHECK(mk_batch_size(b.data, 11) == MK_ERR_TRUNCATED);
    CHECK_RC(mk_batch_hdr_parse(b.data, 60, &h), MK_ERR_TRUNCATED);

    /* walk three concatenated batches the way log recovery would */
    size_t one = b.len;
    CHECK_RC(mk_batch_build(&b, MK_CODEC_ZSTD, 45, recs, 3), 0);
    CHECK_RC(mk_batch_build(&b, MK_CODEC_GZIP, 48, recs, 3), 0);
    size_t off = 0;
    int batches = 0;
    while (off < b.len) {
        int64_t sz = mk_batch_size(b.data + off, b.len - off);
        CHECK(sz >= MK_BATCH_HEADER_SIZE && (size_t)sz <= b.len - off);
        if (sz < MK_BATCH_HEADER_SIZE || (size_t)sz > b.len - off)
            break;
        CHECK_RC(validate_deep(b.data + off, (size_t)sz), 0);
        /* validate ignores bytes after its batch */
        CHECK_RC(validate_deep(b.data + off, b.len - off), 0);
        off += (size_t)sz;
        batches++;
    }
    CHECK(batches == 3);

    /* absurd lengths */
    wr_be32(b.data + 8, 48);
    CHECK(mk_batch_size(b.data, one) == MK_ERR_CORRUPT);
    CHECK_RC(mk_batch_hdr_parse(b.data, one, &h), MK_ERR_CORRUPT);
    wr_be32(b.data + 8, -5);
    CHECK(mk_batch_size(b.data, one) == MK_ERR_CORRUPT);
    mk_buf_free(&b);
}

static void test_roundtrip_all_codecs(void)
{
    /* 40 records of ~1.6 KiB: > 32 KiB, so xerial snappy uses several blocks */
    enum { N = 40 };
    static char values[N][1700];
    static char keys[N][16];
    mk_batch_rec_in_t recs[N];
    const char *hk[] = {"trace", "empty", "nullv"};
    const void *hv[] = {"abc", "", NULL};
    const int32_t hl[] = {3, 0, -1};
    int64_t max_ts = INT64_MIN;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
        int vl = 1 + (i * 37) % 1600;
        for (int j = 0; j < vl; j++)
            values[i][j] = (char)('a' + (i * 7 + j * j) % 26);
        values[i][vl] = 0;
        recs[i] = (mk_batch_rec_in_t){keys[i], (int32_t)strlen(keys[i]), values[i], vl,
                                      5000 + (i % 3 == 0 ? -i : i * 10), i % 4 == 0 ? 3 : 0, hk, hv, hl};
        if (i == 5) {
            recs[i].key = NULL;
            recs[i].key_len = -1;
        }
        if (i == 6) {
            recs[i].value = NULL;
            recs[i].value_len = -1;
        }
        if (i == 7)
            recs[i].value_len = 0;
        max_ts = MK_MAX(max_ts, recs[i].timestamp);
    }
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        int codec = all_codecs[c];
        mk_buf_t b, scratch;
        mk_buf_init(&b);
        mk_buf_init(&scratch);
        CHECK_RC(mk_batch_build(&b, codec, 1000, recs, N), 0);
        mk_batch_hdr_t h;
        CHECK_RC(mk_batch_hdr_parse(b.data, b.len, &h), 0);
        CHECK(mk_batch_hdr_codec(&h) == codec);
        CHECK(h.maxTimestamp == max_ts && h.baseTimestamp == 5000);
        char why[128];
        CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, why, sizeof(why)), 0);
        CHECK(strcmp(why, "ok") == 0);
        CHECK_RC(mk_batch_validate(b.data, b.len, true, 0, why, sizeof(why)), 0);
        CHECK_RC(mk_batch_validate_ex(b.data, b.len, MK_BATCH_VALIDATE_DEEP, 0, &scratch, why, sizeof(why)), 0);
        CHECK_RC(mk_batch_validate_ex(b.data, b.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0, NULL,
                                      why, sizeof(why)), 0);

        static collect_t col;
        memset(&col, 0, sizeof(col));
        CHECK_RC(mk_batch_records_foreach(b.data, b.len, &scratch, 0, collect_cb, &col), 0);
        CHECK(col.n == N);
        for (int i = 0; i < col.n && i < N; i++) {
            got_rec_t *g = &col.recs[i];
            CHECK(g->offset == 1000 + i);
            CHECK(g->timestamp == recs[i].timestamp);
            CHECK(g->key_len == recs[i].key_len);
            CHECK(recs[i].key_len < 0 || memcmp(g->key, recs[i].key, (size_t)recs[i].key_len) == 0);
            CHECK(g->value_len == recs[i].value_len);
            CHECK(recs[i].value_len <= 0 || memcmp(g->value, recs[i].value, (size_t)recs[i].value_len) == 0);
            CHECK(g->header_count == recs[i].header_count);
            if (g->header_count == 3) {
                CHECK(strcmp(g->hkey[0], "trace") == 0 && g->hval_len[0] == 3 && strcmp(g->hval[0], "abc") == 0);
                CHECK(strcmp(g->hkey[1], "empty") == 0 && g->hval_len[1] == 0);
                CHECK(strcmp(g->hkey[2], "nullv") == 0 && g->hval_len[2] == -1);
            }
        }

        /* the callback can stop the walk */
        memset(&col, 0, sizeof(col));
        col.stop_at = 2;
        CHECK_RC(mk_batch_records_foreach(b.data, b.len, &scratch, 0, collect_cb, &col), 42);
        CHECK(col.n == 2);

        /* a scratch that is too small a bound */
        if (codec != MK_CODEC_NONE) {
            CHECK_RC(mk_batch_records_foreach(b.data, b.len, &scratch, 1000, collect_cb, &col), MK_ERR_TOO_LARGE);
            CHECK_RC(mk_batch_validate(b.data, b.len, true, 1000, why, sizeof(why)), MK_ERR_TOO_LARGE);
        }
        mk_buf_free(&b);
        mk_buf_free(&scratch);
    }
}

static void test_rewrites(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        mk_buf_t b, scratch;
        mk_buf_init(&b);
        mk_buf_init(&scratch);
        CHECK_RC(mk_batch_build(&b, all_codecs[c], 0, recs, 3), 0);
        mk_batch_set_base_offset(b.data, 0x123456789aLL);
        mk_batch_set_leader_epoch(b.data, 77);
        CHECK_RC(validate_deep(b.data, b.len), 0);
        mk_batch_hdr_t h;
        CHECK_RC(mk_batch_hdr_parse(b.data, b.len, &h), 0);
        CHECK(h.baseOffset == 0x123456789aLL && h.partitionLeaderEpoch == 77);

        mk_batch_set_log_append_time(b.data, b.len, 1800000000000LL);
        CHECK_RC(validate_deep(b.data, b.len), 0);
        CHECK_RC(mk_batch_hdr_parse(b.data, b.len, &h), 0);
        CHECK(h.maxTimestamp == 1800000000000LL && (h.attributes & MK_BATCH_ATTR_LOG_APPEND_TIME));
        CHECK(mk_batch_hdr_codec(&h) == all_codecs[c]);
        static collect_t col;
        memset(&col, 0, sizeof(col));
        CHECK_RC(mk_batch_records_foreach(b.data, b.len, &scratch, 0, collect_cb, &col), 0);
        CHECK(col.n == 3 && col.recs[0].timestamp == 1800000000000LL && col.recs[2].timestamp == 1800000000000LL);
        CHECK(col.recs[2].offset == 0x123456789aLL + 2);

        /* a short n leaves the batch alone */
        uint8_t before[MK_BATCH_HEADER_SIZE];
        memcpy(before, b.data, sizeof(before));
        mk_batch_set_log_append_time(b.data, b.len - 1, 5);
        CHECK(memcmp(before, b.data, sizeof(before)) == 0);
        mk_buf_free(&b);
        mk_buf_free(&scratch);
    }
}

/* Views: one walk over a record set, the snprintf-style capacity, the
 * validator's view, and the view writers keeping bytes and view in step. */
static void test_views(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    mk_buf_t set;
    mk_buf_init(&set);
    CHECK_RC(mk_batch_build(&set, MK_CODEC_NONE, 0, recs, 3), 0);
    size_t second = set.len;
    CHECK_RC(mk_batch_build(&set, MK_CODEC_LZ4, 0, recs, 2), 0);
    size_t third = set.len;
    CHECK_RC(mk_batch_build(&set, MK_CODEC_GZIP, 0, recs, 1), 0);

    mk_batch_view_t v[3];
    size_t n = 99;
    CHECK_RC(mk_batch_views_parse(set.data, set.len, v, 2, &n), MK_ERR_TOO_LARGE);
    CHECK(n == 3 && v[0].pos == 0 && v[1].pos == second);
    CHECK_RC(mk_batch_views_parse(set.data, set.len, v, 3, &n), 0);
    CHECK(n == 3 && v[2].pos == third && v[2].pos + v[2].size == set.len);
    CHECK(v[0].hdr.recordCount == 3 && v[1].hdr.recordCount == 2 && v[2].hdr.recordCount == 1);
    CHECK(mk_batch_hdr_codec(&v[1].hdr) == MK_CODEC_LZ4);
    CHECK_RC(mk_batch_views_parse(set.data, 0, v, 3, &n), 0);
    CHECK(n == 0);
    /* a partial last batch: the whole ones before it are counted */
    CHECK_RC(mk_batch_views_parse(set.data, set.len - 1, v, 3, &n), MK_ERR_TRUNCATED);
    CHECK(n == 2);
    /* step by step */
    size_t pos = 0, k = 0;
    mk_batch_view_t one;
    while (mk_batch_view_next(set.data, set.len, &pos, &one) == 1) {
        CHECK(one.pos == v[k].pos && one.size == v[k].size);
        k++;
    }
    CHECK(k == 3 && pos == set.len);

    /* the validator hands out the same view */
    CHECK_RC(mk_batch_views_parse(set.data, set.len, v, 3, &n), 0);
    for (size_t i = 0; i < 3; i++) {
        mk_batch_view_t w;
        CHECK_RC(mk_batch_validate_view(set.data + v[i].pos, set.len - v[i].pos, MK_BATCH_VALIDATE_DEEP, 0, NULL,
                                        &w, NULL, 0), 0);
        CHECK(w.pos == 0 && w.size == v[i].size && w.hdr.crc == v[i].hdr.crc);
        CHECK(mk_batch_crc_compute(set.data + v[i].pos, v[i].size) == v[i].hdr.crc);
    }

    /* writers: bytes and view alike, and the batch still validates */
    mk_batch_view_set_base_offset(set.data, &v[1], 4242);
    mk_batch_view_set_leader_epoch(set.data, &v[1], 9);
    mk_batch_view_set_log_append_time(set.data, &v[1], 1700000000123LL);
    mk_batch_view_t again;
    CHECK_RC(mk_batch_view_parse(set.data + v[1].pos, v[1].size, &again), 0);
    CHECK(again.hdr.baseOffset == 4242 && v[1].hdr.baseOffset == 4242);
    CHECK(again.hdr.partitionLeaderEpoch == 9 && v[1].hdr.partitionLeaderEpoch == 9);
    CHECK(again.hdr.maxTimestamp == 1700000000123LL && v[1].hdr.maxTimestamp == 1700000000123LL);
    CHECK(again.hdr.attributes == v[1].hdr.attributes && (v[1].hdr.attributes & MK_BATCH_ATTR_LOG_APPEND_TIME));
    CHECK(again.hdr.crc == v[1].hdr.crc);
    CHECK_RC(validate_deep(set.data + v[1].pos, v[1].size), 0);
    /* the CRC writer repairs a damaged crc field */
    set.data[v[0].pos + MK_BATCH_OFF_CRC] ^= 0xff;
    CHECK_RC(validate_deep(set.data, v[0].size), MK_ERR_CRC);
    mk_batch_set_crc(set.data, v[0].size);
    CHECK_RC(validate_deep(set.data, v[0].size), 0);
    /* a legacy magic stops the walk */
    set.data[v[2].pos + MK_BATCH_OFF_MAGIC] = 1;
    CHECK_RC(mk_batch_views_parse(set.data, set.len, v, 3, &n), MK_ERR_UNSUPPORTED);
    CHECK(n == 2);
    mk_buf_free(&set);
}

static void test_flipped_bytes(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        mk_buf_t b;
        mk_buf_init(&b);
        CHECK_RC(mk_batch_build(&b, all_codecs[c], 0, recs, 3), 0);
        for (size_t i = 0; i < b.len; i++) {
            for (int bit = 0; bit < 8; bit += 3) {
                b.data[i] ^= (uint8_t)(1 << bit);
                int rc = mk_batch_validate(b.data, b.len, false, 0, NULL, 0);
                int rcd = validate_deep(b.data, b.len);
                if (i < 8 || (i >= 12 && i < 16)) {
                    CHECK(rc == 0 && rcd == 0);   /* baseOffset, leader epoch: not CRC'd */
                } else if (i == 16) {
                    CHECK(rc == MK_ERR_CORRUPT || rc == MK_ERR_UNSUPPORTED);
                } else if (i < 12) {
                    CHECK(rc == MK_ERR_CORRUPT || rc == MK_ERR_CRC);
                } else {
                    if (rc != MK_ERR_CRC)
                        fprintf(stderr, "codec %d byte %zu bit %d: rc %d\n", all_codecs[c], i, bit, rc);
                    CHECK(rc == MK_ERR_CRC && rcd == MK_ERR_CRC);
                }
                b.data[i] ^= (uint8_t)(1 << bit);
            }
        }
        CHECK_RC(validate_deep(b.data, b.len), 0);
        mk_buf_free(&b);
    }
}

static void test_truncated_and_lying_length(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        mk_buf_t b;
        mk_buf_init(&b);
        CHECK_RC(mk_batch_build(&b, all_codecs[c], 0, recs, 3), 0);
        for (size_t n = 0; n < b.len; n++)
            CHECK_RC(mk_batch_validate(b.data, n, true, 0, NULL, 0), MK_ERR_CORRUPT);

        /* batchLength too big: runs past n */
        int32_t len = rd_be32(b.data + 8);
        wr_be32(b.data + 8, len + 1);
        CHECK_RC(validate_deep(b.data, b.len), MK_ERR_CORRUPT);
        wr_be32(b.data + 8, INT32_MAX);
        CHECK_RC(validate_deep(b.data, b.len), MK_ERR_CORRUPT);
        /* too small: the CRC no longer matches ... */
        wr_be32(b.data + 8, len - 1);
        CHECK_RC(validate_deep(b.data, b.len), MK_ERR_CRC);
        /* ... and with a CRC forged over the shorter range, the deep walk
         * (or decompression) still sees the missing byte */
        fix_crc(b.data, (size_t)len - 1 + 12);
        CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, NULL, 0), 0);
        CHECK_RC(validate_deep(b.data, b.len), MK_ERR_CORRUPT);
        wr_be32(b.data + 8, 48);
        CHECK_RC(validate_deep(b.data, b.len), MK_ERR_CORRUPT);
        wr_be32(b.data + 8, -1);
        CHECK_RC(validate_deep(b.data, b.len), MK_ERR_CORRUPT);
        mk_buf_free(&b);
    }
}

static void test_magic_and_codec(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    mk_buf_t b;
    mk_buf_init(&b);
    CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, recs, 3), 0);
    char why[128];
    b.data[16] = 1;
    CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, why, sizeof(why)), MK_ERR_UNSUPPORTED);
    CHECK(strstr(why, "magic") != NULL);
    b.data[16] = 0;
    CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, why, sizeof(why)), MK_ERR_UNSUPPORTED);
    b.data[16] = 3;
    CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, why, sizeof(why)), MK_ERR_CORRUPT);
    b.data[16] = 0xff;
    CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, why, sizeof(why)), MK_ERR_CORRUPT);
    b.data[16] = 2;
    for (int codec = 5; codec <= 7; codec++) {
        b.data[22] = (uint8_t)((b.data[22] & ~7) | codec);
        fix_crc(b.data, b.len);
        CHECK_RC(mk_batch_validate(b.data, b.len, false, 0, why, sizeof(why)), MK_ERR_UNSUPPORTED);
        CHECK(strstr(why, "codec") != NULL);
        mk_buf_t s;
        mk_buf_init(&s);
        CHECK_RC(mk_batch_records_foreach(b.data, b.len, &s, 0, collect_cb, NULL), MK_ERR_UNSUPPORTED);
        mk_buf_free(&s);
        CHECK_RC(mk_batch_codec_decompress(codec, b.data, b.len, &s, 0), MK_ERR_UNSUPPORTED);
        CHECK_RC(mk_batch_codec_compress(codec, b.data, b.len, &s), MK_ERR_UNSUPPORTED);
        CHECK(s.len == 0);
        mk_buf_free(&s);
    }
    /* unknown attribute bits (delete horizon etc.) are carried, not rejected */
    b.data[22] = 0x40;
    fix_crc(b.data, b.len);
    CHECK_RC(validate_deep(b.data, b.len), 0);
    mk_buf_free(&b);
}

/* Uncompressed and zstd batches of hand-written records: each lie caught. */
static void test_record_lies(void)
{
    static const int16_t attrs[] = {MK_CODEC_NONE, MK_CODEC_ZSTD, MK_CODEC_SNAPPY};
    uint8_t hdr_ok[] = {0x04, 'h', '0', 0x04, 'v', '0'};        /* key "h0" value "v0" */
    uint8_t hdr_negkey[] = {0x01, 0x04, 'v', '0'};              /* key length -1 */
    uint8_t hdr_negval[] = {0x04, 'h', '0', 0x03};              /* value length -2 */
    uint8_t hdr_huge_huge[] = {0x04, 'h', '0', 0x04, 'v', '0'};
    for (size_t a = 0; a < MK_ARRAY_LEN(attrs); a++) {
        struct {
            const char *name;
            int want;
            int count, last;
        } cases[] = {
            {"good", 0, 3, 2},
            {"recordCount too big", MK_ERR_CORRUPT, 4, 3},
            {"recordCount too small", MK_ERR_CORRUPT, 2, 1},
            {"recordCount vs lastOffsetDelta", MK_ERR_CORRUPT, 3, 5},
            {"offsetDelta out of sequence", MK_ERR_CORRUPT, 3, 2},
            {"record length too big", MK_ERR_CORRUPT, 3, 2},
            {"record length too small", MK_ERR_CORRUPT, 3, 2},
            {"record length negative", MK_ERR_CORRUPT, 3, 2},
            {"huge header count", MK_ERR_CORRUPT, 3, 2},
            {"negative header count", MK_ERR_CORRUPT, 3, 2},
            {"negative header key", MK_ERR_CORRUPT, 3, 2},
            {"header value below -1", MK_ERR_CORRUPT, 3, 2},
            {"key length below -1", MK_ERR_CORRUPT, 3, 2},
            {"value past record", MK_ERR_CORRUPT, 3, 2},
            {"trailing bytes", MK_ERR_CORRUPT, 3, 2},
            {"zero records", MK_ERR_CORRUPT, 0, -1},
            {"bad varint", MK_ERR_CORRUPT, 3, 2},
        };
        for (size_t k = 0; k < MK_ARRAY_LEN(cases); k++) {
            mk_buf_t recs, b;
            mk_buf_init(&recs);
            mk_buf_init(&b);
            const char *name = cases[k].name;
            for (int i = 0; i < 3 && cases[k].count > 0; i++) {
                int32_t adj = 0, od = i, hc = 1;
                const void *hraw = hdr_ok;
                size_t hlen = sizeof(hdr_ok);
                const char *key = "key", *value = "value";
                if (i == 1) {
                    if (!strcmp(name, "offsetDelta out of sequence"))
                        od = 2;
                    if (!strcmp(name, "record length too big"))
                        adj = 1;
                    if (!strcmp(name, "record length too small"))
                        adj = -1;
                    if (!strcmp(name, "record length negative"))
                        adj = -1000;
                    if (!strcmp(name, "huge header count"))
                        hc = 1000000000, hraw = hdr_huge_huge;
                    if (!strcmp(name, "negative header count"))
                        hc = -1;
                    if (!strcmp(name, "negative header key"))
                        hraw = hdr_negkey, hlen = sizeof(hdr_negkey);
                    if (!strcmp(name, "header value below -1"))
                        hraw = hdr_negval, hlen = sizeof(hdr_negval);
                    if (!strcmp(name, "bad varint")) {
                        /* an 11-byte varint as the record length */
                        static const uint8_t bad[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
                        mk_buf_put(&recs, bad, sizeof(bad));
                        continue;
                    }
                    if (!strcmp(name, "key length below -1") || !strcmp(name, "value past record")) {
                        mk_buf_t body;
                        mk_buf_init(&body);
                        mk_buf_put_i8(&body, 0);
                        mk_buf_put_varint(&body, 0);
                        mk_buf_put_varint(&body, 1);
                        if (!strcmp(name, "key length below -1")) {
                            mk_buf_put_varint(&body, -2);
                            mk_buf_put_varint(&body, -1);
                        } else {
                            mk_buf_put_varint(&body, -1);
                            mk_buf_put_varint(&body, 50);
                            mk_buf_put(&body, "short", 5);
                        }
                        mk_buf_put_varint(&body, 0);
                        mk_buf_put_varint(&recs, (int64_t)body.len);
                        mk_buf_put(&recs, body.data, body.len);
                        mk_buf_free(&body);
                        continue;
                    }
                }
                raw_record(&recs, adj, i, od, key, value, hc, hraw, hlen);
            }
            if (!strcmp(name, "trailing bytes"))
                mk_buf_put(&recs, "\0\0", 2);
            raw_batch(&b, attrs[a], &recs, cases[k].count, cases[k].last);
            char why[128] = "";
            int rc = mk_batch_validate(b.data, b.len, true, 1 << 20, why, sizeof(why));
            if (rc != cases[k].want)
                fprintf(stderr, "codec %d case '%s': rc %d (%s), want %d\n", attrs[a], name, rc, why, cases[k].want);
            CHECK(rc == cases[k].want);
            CHECK(why[0] != 0);
            /* iteration must not crash on the same bytes either */
            mk_buf_t s;
            mk_buf_init(&s);
            static collect_t col;
            memset(&col, 0, sizeof(col));
            int frc = mk_batch_records_foreach(b.data, b.len, &s, 1 << 20, collect_cb, &col);
            CHECK(cases[k].want != 0 || (frc == 0 && col.n == 3));
            mk_buf_free(&s);
            mk_buf_free(&recs);
            mk_buf_free(&b);
        }
    }
}

static void test_compacted(void)
{
    mk_buf_t recs, b, s;
    mk_buf_init(&recs);
    mk_buf_init(&b);
    mk_buf_init(&s);
    raw_record(&recs, 0, 0, 0, "a", "1", 0, NULL, 0);
    raw_record(&recs, 0, 5, 2, "b", "2", 0, NULL, 0);
    raw_record(&recs, 0, 9, 5, "c", "3", 0, NULL, 0);
    raw_batch(&b, MK_CODEC_NONE, &recs, 3, 5);
    char why[128];
    CHECK_RC(mk_batch_validate(b.data, b.len, true, 0, why, sizeof(why)), MK_ERR_CORRUPT);
    CHECK_RC(mk_batch_validate_ex(b.data, b.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0, NULL, why,
                                  sizeof(why)), 0);
    static collect_t col;
    memset(&col, 0, sizeof(col));
    CHECK_RC(mk_batch_records_foreach(b.data, b.len, &s, 0, collect_cb, &col), 0);
    CHECK(col.n == 3 && col.recs[1].offset == 102 && col.recs[2].offset == 105 && col.recs[2].timestamp == 1009);

    /* offsetDelta past lastOffsetDelta is wrong even when compacted */
    mk_buf_reset(&b);
    raw_batch(&b, MK_CODEC_NONE, &recs, 3, 4);
    CHECK_RC(mk_batch_validate_ex(b.data, b.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0, NULL, why,
                                  sizeof(why)), MK_ERR_CORRUPT);

    /* compaction may leave an empty batch that keeps its offsets */
    mk_buf_reset(&b);
    mk_buf_reset(&recs);
    raw_batch(&b, MK_CODEC_NONE, &recs, 0, 9);
    CHECK_RC(mk_batch_validate(b.data, b.len, true, 0, why, sizeof(why)), MK_ERR_CORRUPT);
    CHECK_RC(mk_batch_validate_ex(b.data, b.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0, NULL, why,
                                  sizeof(why)), 0);
    memset(&col, 0, sizeof(col));
    CHECK_RC(mk_batch_records_foreach(b.data, b.len, &s, 0, collect_cb, &col), 0);
    CHECK(col.n == 0);
    mk_buf_free(&recs);
    mk_buf_free(&b);
    mk_buf_free(&s);
}

/* The cleaner's rewrite: keep every other record (odd offsets), with and
 * without a delete horizon, for every codec; all kept copies verbatim; none
 * kept drops the batch or leaves its header alone; the keyed validator. */
static int keep_odd_cb(const mk_record_t *rec, void *arg)
{
    (void)arg;
    return (int)(rec->offset & 1);
}

static int keep_all_cb(const mk_record_t *rec, void *arg)
{
    (void)rec;
    (void)arg;
    return 1;
}

static int keep_none_cb(const mk_record_t *rec, void *arg)
{
    (void)rec;
    (void)arg;
    return 0;
}

static void test_filter(void)
{
    static const char *keys[] = {"k0", "k1", "k2", "k3", "k4"};
    static const char *vals[] = {"v0", "v1", NULL, "v3", "v4"};
    mk_batch_rec_in_t recs[5];
    for (int i = 0; i < 5; i++) {
        recs[i] = (mk_batch_rec_in_t){keys[i], 2, vals[i], vals[i] ? 2 : -1, 1000 + 10 * i, 0, NULL, NULL, NULL};
    }
    const char *hk[] = {"h"};
    const void *hv[] = {"x"};
    int32_t hl[] = {1};
    recs[3].header_count = 1;
    recs[3].header_keys = hk;
    recs[3].header_values = hv;
    recs[3].header_value_lens = hl;
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        mk_batch_build_opts_t o;
        mk_batch_build_opts_init(&o);
        o.codec = all_codecs[c];
        o.baseOffset = 40;
        o.partitionLeaderEpoch = 3;
        o.producerId = 77;
        o.producerEpoch = 1;
        o.baseSequence = 5;
        mk_buf_t b, out, s;
        mk_buf_init(&b);
        mk_buf_init(&out);
        mk_buf_init(&s);
        CHECK_RC(mk_batch_build_ex(&b, &o, recs, 5), 0);
        mk_batch_filter_result_t res;
        CHECK_RC(mk_batch_filter(b.data, b.len, -1, false, &s, 0, keep_odd_cb, NULL, &out, &res), 0);
        CHECK(res.kept == 2 && res.dropped == 3 && res.written && res.rewritten);
        char why[128];
        CHECK_RC(mk_batch_validate_ex(out.data, out.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0,
                                      NULL, why, sizeof(why)), 0);
        CHECK_RC(mk_batch_validate(out.data, out.len, false, 0, why, sizeof(why)), MK_ERR_CORRUPT);
        mk_batch_hdr_t h;
        CHECK_RC(mk_batch_hdr_parse(out.data, out.len, &h), 0);
        CHECK(h.baseOffset == 40 && h.lastOffsetDelta == 4 && h.recordCount == 2 && h.partitionLeaderEpoch == 3);
        CHECK(h.producerId == 77 && h.producerEpoch == 1 && h.baseSequence == 5);
        CHECK(mk_batch_hdr_codec(&h) == all_codecs[c] && h.maxTimestamp == 1030 && h.baseTimestamp == 1000);
        CHECK(mk_batch_hdr_delete_horizon(&h) == -1);
        static collect_t col;
        memset(&col, 0, sizeof(col));
        CHECK_RC(mk_batch_records_foreach(out.data, out.len, &s, 0, collect_cb, &col), 0);
        CHECK(col.n == 2 && col.recs[0].offset == 41 && col.recs[1].offset == 43);
        CHECK(col.recs[0].timestamp == 1010 && col.recs[1].timestamp == 1030);
        CHECK(strcmp(col.recs[1].key, "k3") == 0 && strcmp(col.recs[1].value, "v3") == 0);
        CHECK(col.recs[1].header_count == 1 && strcmp(col.recs[1].hkey[0], "h") == 0);

        /* a delete horizon: baseTimestamp holds it, record times unchanged */
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_filter(b.data, b.len, 5000, false, &s, 0, keep_all_cb, NULL, &out, &res), 0);
        CHECK(res.kept == 5 && res.rewritten);
        CHECK_RC(mk_batch_hdr_parse(out.data, out.len, &h), 0);
        CHECK(mk_batch_hdr_delete_horizon(&h) == 5000 && h.recordCount == 5 && h.maxTimestamp == 1040);
        CHECK_RC(mk_batch_validate_ex(out.data, out.len, MK_BATCH_VALIDATE_DEEP, 0, NULL, why, sizeof(why)), 0);
        memset(&col, 0, sizeof(col));
        CHECK_RC(mk_batch_records_foreach(out.data, out.len, &s, 0, collect_cb, &col), 0);
        CHECK(col.n == 5 && col.recs[2].timestamp == 1020 && col.recs[2].value_len == -1);
        /* a horizon already set is kept */
        mk_buf_t again;
        mk_buf_init(&again);
        CHECK_RC(mk_batch_filter(out.data, out.len, 9000, false, &s, 0, keep_all_cb, NULL, &again, &res), 0);
        CHECK(!res.rewritten && again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
        mk_buf_free(&again);

        /* a horizon is only for a batch that keeps a tombstone */
        mk_buf_t plain;
        mk_buf_init(&plain);
        CHECK_RC(mk_batch_build_ex(&plain, &o, recs, 2), 0);
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_filter(plain.data, plain.len, 5000, false, &s, 0, keep_all_cb, NULL, &out, &res), 0);
        CHECK(!res.rewritten && out.len == plain.len);
        mk_buf_free(&plain);

        /* all kept, no horizon: the very bytes */
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_filter(b.data, b.len, -1, false, &s, 0, keep_all_cb, NULL, &out, &res), 0);
        CHECK(res.written && !res.rewritten && out.len == b.len && memcmp(out.data, b.data, b.len) == 0);

        /* none kept: dropped, or its header alone */
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_filter(b.data, b.len, -1, false, &s, 0, keep_none_cb, NULL, &out, &res), 0);
        CHECK(!res.written && out.len == 0 && res.dropped == 5);
        CHECK_RC(mk_batch_filter(b.data, b.len, -1, true, &s, 0, keep_none_cb, NULL, &out, &res), 0);
        CHECK(res.written && out.len == MK_BATCH_HEADER_SIZE);
        CHECK_RC(mk_batch_hdr_parse(out.data, out.len, &h), 0);
        CHECK(h.recordCount == 0 && h.lastOffsetDelta == 4 && mk_batch_hdr_codec(&h) == 0 && h.producerId == 77);
        CHECK_RC(mk_batch_validate_ex(out.data, out.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, 0,
                                      NULL, why, sizeof(why)), 0);

        /* the keyed validator of a compacted topic's produce path */
        bool fixed;
        mk_batch_view_t v;
        CHECK_RC(mk_batch_validate_append_ex(b.data, b.len, MK_BATCH_VALIDATE_KEYED, 0, NULL, &v, &fixed, why,
                                             sizeof(why)), 0);
        mk_buf_reset(&b);
        mk_batch_rec_in_t nokey = {NULL, -1, "v", 1, 5, 0, NULL, NULL, NULL};
        mk_batch_rec_in_t two[2] = {recs[0], nokey};
        CHECK_RC(mk_batch_build_ex(&b, &o, two, 2), 0);
        CHECK_RC(mk_batch_validate_append_ex(b.data, b.len, MK_BATCH_VALIDATE_KEYED, 0, NULL, &v, &fixed, why,
                                             sizeof(why)), MK_ERR_INVALID);
        CHECK(strstr(why, "without a key") != NULL);
        CHECK_RC(mk_batch_validate_append_ex(b.data, b.len, 0, 0, NULL, &v, &fixed, why, sizeof(why)), 0);
        mk_buf_free(&b);
        mk_buf_free(&out);
        mk_buf_free(&s);
    }
    /* marker types */
    mk_batch_build_opts_t o;
    mk_batch_build_opts_init(&o);
    mk_buf_t m;
    mk_buf_init(&m);
    CHECK_RC(mk_batch_build_control(&m, &o, true, 1, 5), 0);
    CHECK_RC(mk_batch_control_type(m.data, m.len), 1);
    mk_buf_reset(&m);
    CHECK_RC(mk_batch_build_control(&m, &o, false, 1, 5), 0);
    CHECK_RC(mk_batch_control_type(m.data, m.len), 0);
    mk_buf_reset(&m);
    CHECK_RC(mk_batch_build(&m, MK_CODEC_NONE, 0, recs, 1), 0);
    CHECK_RC(mk_batch_control_type(m.data, m.len), MK_ERR_CORRUPT);
    mk_buf_free(&m);
}

static void test_control_batch(void)
{
    mk_batch_build_opts_t o;
    mk_batch_build_opts_init(&o);
    o.baseOffset = 9;
    o.producerId = 1234;
    o.producerEpoch = 3;
    o.codec = MK_CODEC_ZSTD; /* ignored: markers are never compressed */
    mk_buf_t b, s;
    mk_buf_init(&b);
    mk_buf_init(&s);
    CHECK_RC(mk_batch_build_control(&b, &o, true, 17, 555), 0);
    CHECK_RC(validate_deep(b.data, b.len), 0);
    mk_batch_hdr_t h;
    CHECK_RC(mk_batch_hdr_parse(b.data, b.len, &h), 0);
    CHECK(mk_batch_hdr_is_control(&h) && mk_batch_hdr_is_transactional(&h) && mk_batch_hdr_codec(&h) == 0);
    CHECK(h.producerId == 1234 && h.producerEpoch == 3 && h.recordCount == 1 && h.baseTimestamp == 555);
    static collect_t col;
    memset(&col, 0, sizeof(col));
    CHECK_RC(mk_batch_records_foreach(b.data, b.len, &s, 0, collect_cb, &col), 0);
    CHECK(col.n == 1 && col.recs[0].key_len == 4 && col.recs[0].value_len == 6);
    CHECK(memcmp(col.recs[0].key, "\0\0\0\1", 4) == 0);
    CHECK(memcmp(col.recs[0].value, "\0\0\0\0\0\x11", 6) == 0);
    mk_buf_reset(&b);
    CHECK_RC(mk_batch_build_control(&b, &o, false, 17, 555), 0);
    memset(&col, 0, sizeof(col));
    CHECK_RC(mk_batch_records_foreach(b.data, b.len, &s, 0, collect_cb, &col), 0);
    CHECK(col.n == 1 && memcmp(col.recs[0].key, "\0\0\0\0", 4) == 0);
    mk_buf_free(&b);
    mk_buf_free(&s);
}

static void test_build_bad_args(void)
{
    mk_buf_t b;
    mk_buf_init(&b);
    mk_batch_rec_in_t r = {"k", 1, "v", 1, 0, 0, NULL, NULL, NULL};
    CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, &r, 0), MK_ERR_INVALID);
    CHECK_RC(mk_batch_build(&b, 9, 0, &r, 1), MK_ERR_UNSUPPORTED);
    r.key_len = -2;
    CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, &r, 1), MK_ERR_INVALID);
    r.key_len = 1;
    r.header_count = 1;
    CHECK_RC(mk_batch_build(&b, MK_CODEC_NONE, 0, &r, 1), MK_ERR_INVALID);
    CHECK(b.len == 0);
    mk_buf_free(&b);
}

/* ---------------------------------------------------------------- codecs */

static void test_decompression_bombs(void)
{
    size_t big = 10u << 20;
    uint8_t *zeros = calloc(1, big);
    CHECK(zeros != NULL);
    if (!zeros)
        return;
    for (size_t c = 1; c < MK_ARRAY_LEN(all_codecs); c++) {
        int codec = all_codecs[c];
        mk_buf_t z, out;
        mk_buf_init(&z);
        mk_buf_init(&out);
        CHECK_RC(mk_batch_codec_compress(codec, zeros, big, &z), 0);
        CHECK(z.len < big / 20);
        CHECK_RC(mk_batch_codec_decompress(codec, z.data, z.len, &out, 1 << 20), MK_ERR_TOO_LARGE);
        CHECK(out.len == 0);
        CHECK(out.cap <= (2u << 20) + 4096); /* the bound also bounds memory */
        CHECK_RC(mk_batch_codec_decompress(codec, z.data, z.len, &out, big - 1), MK_ERR_TOO_LARGE);
        CHECK_RC(mk_batch_codec_decompress(codec, z.data, z.len, &out, big), 0);
        CHECK(out.len == big && memcmp(out.data, zeros, big) == 0);

        /* the same bomb as one record of a batch */
        mk_buf_t b;
        mk_buf_init(&b);
        mk_batch_rec_in_t r = {NULL, -1, zeros, (int32_t)big, 0, 0, NULL, NULL, NULL};
        CHECK_RC(mk_batch_build(&b, codec, 0, &r, 1), 0);
        char why[128];
        CHECK_RC(mk_batch_validate(b.data, b.len, false, 1 << 20, why, sizeof(why)), 0);
        CHECK_RC(mk_batch_validate(b.data, b.len, true, 1 << 20, why, sizeof(why)), MK_ERR_TOO_LARGE);
        CHECK(strstr(why, "decompress past") != NULL);
        CHECK_RC(mk_batch_validate(b.data, b.len, true, big + 100, why, sizeof(why)), 0);
        mk_buf_free(&b);
        mk_buf_free(&z);
        mk_buf_free(&out);
    }
    free(zeros);
}

static void test_garbage_payloads(void)
{
    uint8_t garbage[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(garbage); i++) {
        x = x * 1103515245u + 12345u;
        garbage[i] = (uint8_t)(x >> 16);
    }
    for (size_t c = 1; c < MK_ARRAY_LEN(all_codecs); c++) {
        int codec = all_codecs[c];
        mk_buf_t out, recs, b;
        mk_buf_init(&out);
        mk_buf_init(&recs);
        mk_buf_init(&b);
        CHECK_RC(mk_batch_codec_decompress(codec, garbage, sizeof(garbage), &out, 1 << 20), MK_ERR_CORRUPT);
        CHECK_RC(mk_batch_codec_decompress(codec, garbage, 0, &out, 1 << 20), MK_ERR_CORRUPT);
        /* garbage as the records of a batch, CRC correct */
        mk_buf_put(&recs, garbage, sizeof(garbage));
        raw_batch(&b, MK_CODEC_NONE, &recs, 3, 2);
        b.data[22] = (uint8_t)codec;
        fix_crc(b.data, b.len);
        char why[128];
        CHECK_RC(mk_batch_validate(b.data, b.len, true, 1 << 20, why, sizeof(why)), MK_ERR_CORRUPT);
        CHECK(strstr(why, "decompress") != NULL);

        /* a valid stream cut short, and one with a byte changed */
        mk_buf_t z;
        mk_buf_init(&z);
        CHECK_RC(mk_batch_codec_compress(codec, garbage, sizeof(garbage), &z), 0);
        for (size_t cut = 1; cut < z.len; cut += (cut < 40 ? 1 : 17)) {
            /* Xerial framing has no end marker: a cut exactly after the
             * header (or a block) is a shorter valid stream */
            if (codec == MK_CODEC_SNAPPY && cut == 16)
                continue;
            mk_buf_reset(&out);
            int rc = mk_batch_codec_decompress(codec, z.data, cut, &out, 1 << 20);
            if (rc == 0)
                fprintf(stderr, "codec %d accepted a stream cut at %zu of %zu\n", codec, cut, z.len);
            CHECK(rc == MK_ERR_CORRUPT);
            CHECK(out.len == 0);
        }
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_codec_decompress(codec, z.data, z.len, &out, 1 << 20), 0);
        CHECK(out.len == sizeof(garbage) && memcmp(out.data, garbage, sizeof(garbage)) == 0);
        /* trailing junk after a complete stream */
        mk_buf_put(&z, "junk!", 5);
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_codec_decompress(codec, z.data, z.len, &out, 1 << 20), MK_ERR_CORRUPT);
        mk_buf_free(&z);
        mk_buf_free(&out);
        mk_buf_free(&recs);
        mk_buf_free(&b);
    }
}

static void test_codec_framings(void)
{
    static uint8_t data[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)("abcdefgh"[i % 8] + (i / 1000) % 3);
    mk_buf_t out, z;
    mk_buf_init(&out);
    mk_buf_init(&z);

    /* empty input through every codec */
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        mk_buf_reset(&z);
        mk_buf_reset(&out);
        CHECK_RC(mk_batch_codec_compress(all_codecs[c], data, 0, &z), 0);
        if (all_codecs[c] != MK_CODEC_NONE)
            CHECK_RC(mk_batch_codec_decompress(all_codecs[c], z.data, z.len, &out, 10), 0);
        CHECK(out.len == 0);
    }

    /* Xerial snappy built by hand the way the Java/librdkafka/kafkajs
     * writers do it: header, then blocks of be32 length + raw snappy */
    mk_buf_reset(&z);
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    mk_buf_put(&z, magic, 8);
    mk_buf_put_i32(&z, 1);
    mk_buf_put_i32(&z, 1);
    size_t cuts[] = {0, 7, 40000, 70001, sizeof(data)};
    for (size_t k = 0; k + 1 < MK_ARRAY_LEN(cuts); k++) {
        size_t len = cuts[k + 1] - cuts[k];
        size_t max = snappy_max_compressed_length(len);
        mk_buf_reserve(&z, max + 4);
        size_t at = z.len;
        z.len += 4;
        CHECK(snappy_compress((const char *)data + cuts[k], len, (char *)z.data + z.len, &max) == SNAPPY_OK);
        z.len += max;
        mk_buf_patch_u32(&z, at, (uint32_t)max);
    }
    mk_buf_reset(&out);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_SNAPPY, z.data, z.len, &out, 0), 0);
    CHECK(out.len == sizeof(data) && memcmp(out.data, data, sizeof(data)) == 0);
    /* a block length that lies */
    wr_be32(z.data + 16, rd_be32(z.data + 16) + 1000000);
    mk_buf_reset(&out);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_SNAPPY, z.data, z.len, &out, 0), MK_ERR_CORRUPT);
    /* header only: no blocks, no bytes */
    mk_buf_reset(&out);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_SNAPPY, z.data, 16, &out, 0), 0);
    CHECK(out.len == 0);
    /* raw snappy (what librdkafka actually sends) */
    mk_buf_reset(&z);
    size_t max = snappy_max_compressed_length(sizeof(data));
    mk_buf_reserve(&z, max);
    CHECK(snappy_compress((const char *)data, sizeof(data), (char *)z.data, &max) == SNAPPY_OK);
    z.len = max;
    mk_buf_reset(&out);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_SNAPPY, z.data, z.len, &out, 0), 0);
    CHECK(out.len == sizeof(data) && memcmp(out.data, data, sizeof(data)) == 0);
    mk_buf_reset(&out);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_SNAPPY, z.data, z.len, &out, sizeof(data) - 1), MK_ERR_TOO_LARGE);

    /* concatenated frames / members decode as one stream */
    for (size_t c = 1; c < MK_ARRAY_LEN(all_codecs); c++) {
        int codec = all_codecs[c];
        mk_buf_reset(&z);
        CHECK_RC(mk_batch_codec_compress(codec, data, 30000, &z), 0);
        CHECK_RC(mk_batch_codec_compress(codec, data + 30000, sizeof(data) - 30000, &z), 0);
        mk_buf_reset(&out);
        int rc = mk_batch_codec_decompress(codec, z.data, z.len, &out, 0);
        if (codec == MK_CODEC_SNAPPY) {
            CHECK(rc != 0); /* two Xerial headers in a row are not a stream */
            continue;
        }
        CHECK_RC(rc, 0);
        CHECK(out.len == sizeof(data) && memcmp(out.data, data, sizeof(data)) == 0);
    }

    /* zstd streamed without a content size (the Java client's zstd-jni) */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    mk_buf_reset(&z);
    mk_buf_reserve(&z, ZSTD_compressBound(sizeof(data)));
    ZSTD_outBuffer ob = {z.data, z.cap, 0};
    ZSTD_inBuffer ib = {data, sizeof(data), 0};
    CHECK(!ZSTD_isError(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue)));
    size_t left;
    do {
        left = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
        CHECK(!ZSTD_isError(left));
    } while (left > 0 && !ZSTD_isError(left));
    ZSTD_freeCCtx(cc);
    z.len = ob.pos;
    CHECK(ZSTD_getFrameContentSize(z.data, z.len) == ZSTD_CONTENTSIZE_UNKNOWN);
    mk_buf_reset(&out);
    mk_buf_put(&out, "prefix", 6); /* output appends */
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_ZSTD, z.data, z.len, &out, sizeof(data)), 0);
    CHECK(out.len == sizeof(data) + 6 && memcmp(out.data + 6, data, sizeof(data)) == 0);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_ZSTD, z.data, z.len, &out, sizeof(data) - 1), MK_ERR_TOO_LARGE);
    CHECK(out.len == sizeof(data) + 6);

    /* zlib (not gzip) framing is accepted for gzip too */
    mk_buf_reset(&z);
    uLongf zl = compressBound(sizeof(data));
    mk_buf_reserve(&z, zl);
    CHECK(compress(z.data, &zl, data, sizeof(data)) == Z_OK);
    z.len = zl;
    mk_buf_reset(&out);
    CHECK_RC(mk_batch_codec_decompress(MK_CODEC_GZIP, z.data, z.len, &out, 0), 0);
    CHECK(out.len == sizeof(data));
    CHECK(strcmp(mk_batch_codec_name(MK_CODEC_LZ4), "lz4") == 0 && strcmp(mk_batch_codec_name(9), "unknown") == 0);
    mk_buf_free(&out);
    mk_buf_free(&z);
}

/* ---------------------------------------------------------------- golden */

static uint8_t *load_golden(const char *name, size_t *len)
{
    const char *dirs[] = {getenv("MK_TESTDATA"), "testdata/batches", "../testdata/batches", "../../testdata/batches"};
    for (size_t d = 0; d < MK_ARRAY_LEN(dirs); d++) {
        if (!dirs[d])
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dirs[d], name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 16);
        *len = buf ? fread(buf, 1, 1 << 16, f) : 0;
        fclose(f);
        return buf;
    }
    return NULL;
}

static void test_golden(void)
{
    static const char *writers[] = {"kafka_python", "librdkafka"};
    static const char *codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    mk_buf_t ours;
    mk_buf_init(&ours);
    CHECK_RC(mk_batch_build(&ours, MK_CODEC_NONE, 0, recs, 3), 0);
    mk_batch_set_leader_epoch(ours.data, 0); /* both writers send 0 here */
    int found = 0;
    for (size_t w = 0; w < MK_ARRAY_LEN(writers); w++) {
        for (size_t c = 0; c < MK_ARRAY_LEN(codec_names); c++) {
            char name[64];
            snprintf(name, sizeof(name), "%s_%s.bin", writers[w], codec_names[c]);
            size_t len = 0;
            uint8_t *p = load_golden(name, &len);
            if (!p)
                continue;
            found++;
            mk_batch_hdr_t h;
            CHECK_RC(mk_batch_hdr_parse(p, len, &h), 0);
            CHECK(mk_batch_hdr_codec(&h) == (int)c);
            char why[128];
            int rc = mk_batch_validate(p, len, true, 0, why, sizeof(why));
            if (rc)
                fprintf(stderr, "golden %s: %s\n", name, why);
            CHECK(rc == 0);
            mk_buf_t s;
            mk_buf_init(&s);
            static collect_t col;
            memset(&col, 0, sizeof(col));
            CHECK_RC(mk_batch_records_foreach(p, len, &s, 0, collect_cb, &col), 0);
            check_golden_content(&col, 0);
            /* our builder writes the uncompressed batch byte for byte */
            if (c == 0) {
                CHECK(len == ours.len && memcmp(p, ours.data, len) == 0);
                if (len != ours.len || memcmp(p, ours.data, len) != 0)
                    fprintf(stderr, "golden %s differs from mk_batch_build\n", name);
            }
            mk_buf_free(&s);
            free(p);
        }
    }
    if (found == 0)
        fprintf(stderr, "batch_test: SKIP golden batches (testdata/batches not found; run from the repo root "
                        "or set MK_TESTDATA)\n");
    else
        CHECK(found == 10);
    mk_buf_free(&ours);
}

/* ---------------------------------------------------------------- faults */

/* Every allocation on the build / validate / iterate paths can fail; each
 * failure must surface as MK_ERR_NOMEM (or success), never a crash or a
 * leak (the sanitizer build checks leaks). */
static void test_oom(void)
{
    mk_batch_rec_in_t recs[3];
    golden_recs(recs);
    for (size_t c = 0; c < MK_ARRAY_LEN(all_codecs); c++) {
        mk_batch_codec_thread_release(); /* so the cache allocation is exercised too */
        for (long nth = 1; nth < 40; nth++) {
            mk_buf_t b, s;
            mk_buf_init(&b);
            mk_buf_init(&s);
            mk_mem_fail_at(nth);
            int rc = mk_batch_build(&b, all_codecs[c], 0, recs, 3);
            CHECK(rc == 0 || rc == MK_ERR_NOMEM);
            CHECK(rc != 0 || b.len > MK_BATCH_HEADER_SIZE);
            if (rc == 0) {
                int v = validate_deep(b.data, b.len);
                CHECK(v == 0 || v == MK_ERR_NOMEM);
                static collect_t col;
                memset(&col, 0, sizeof(col));
                v = mk_batch_records_foreach(b.data, b.len, &s, 0, collect_cb, &col);
                CHECK(v == 0 || v == MK_ERR_NOMEM);
                if (v == 0)
                    check_golden_content(&col, 0);
            }
            mk_mem_fail_at(0);
            mk_buf_free(&b);
            mk_buf_free(&s);
        }
    }
}

/* Kafka's validator recomputes a CreateTime batch's maxTimestamp on append
 * (a producer may leave it -1), and the CRC with it. */
static void test_validate_append_max_timestamp(void)
{
    for (size_t ci = 0; ci < MK_ARRAY_LEN(all_codecs); ci++) {
        mk_batch_rec_in_t recs[3];
        golden_recs(recs);
        mk_buf_t b;
        mk_buf_init(&b);
        CHECK_RC(mk_batch_build(&b, all_codecs[ci], 0, recs, 3), 0);
        for (int i = 0; i < 8; i++)
            b.data[MK_BATCH_OFF_MAX_TIMESTAMP + i] = 0xff; /* -1 */
        fix_crc(b.data, b.len);
        mk_batch_view_t v;
        bool rewritten = false;
        char why[128];
        CHECK_RC(mk_batch_validate_append(b.data, b.len, 0, NULL, &v, &rewritten, why, sizeof(why)), 0);
        CHECK(rewritten && v.hdr.maxTimestamp == 1700000000002LL && v.size == b.len);
        mk_batch_hdr_t h;
        CHECK_RC(mk_batch_hdr_parse(b.data, b.len, &h), 0);
        CHECK(h.maxTimestamp == 1700000000002LL && h.crc == v.hdr.crc);
        CHECK_RC(validate_deep(b.data, b.len), 0); /* the CRC was recomputed */
        /* Already right: left alone. */
        CHECK_RC(mk_batch_validate_append(b.data, b.len, 0, NULL, &v, &rewritten, why, sizeof(why)), 0);
        CHECK(!rewritten);
        /* A LogAppendTime batch is the append path's to stamp: not touched here. */
        mk_batch_set_log_append_time(b.data, b.len, 5);
        CHECK_RC(mk_batch_validate_append(b.data, b.len, 0, NULL, &v, &rewritten, why, sizeof(why)), 0);
        CHECK(!rewritten && v.hdr.maxTimestamp == 5);
        /* A bad CRC is still refused, and nothing is rewritten. */
        b.data[b.len - 1] ^= 0x55;
        CHECK(mk_batch_validate_append(b.data, b.len, 0, NULL, &v, &rewritten, why, sizeof(why)) == MK_ERR_CRC);
        mk_buf_free(&b);
    }
}

/* The rules between neighbouring batches of a stored log. */
static void test_validate_next(void)
{
    mk_batch_hdr_t a = {.baseOffset = 10, .lastOffsetDelta = 4, .partitionLeaderEpoch = 3};
    mk_batch_hdr_t b = {.baseOffset = 15, .lastOffsetDelta = 0, .partitionLeaderEpoch = 3};
    char why[128];
    CHECK(mk_batch_validate_next(NULL, &a, why, sizeof(why)) == 0);
    CHECK(mk_batch_validate_next(&a, &b, why, sizeof(why)) == 0);
    b.partitionLeaderEpoch = 4;
    CHECK(mk_batch_validate_next(&a, &b, why, sizeof(why)) == 0);
    b.partitionLeaderEpoch = 2; /* epoch goes back */
    CHECK(mk_batch_validate_next(&a, &b, why, sizeof(why)) == MK_ERR_CORRUPT && strstr(why, "epoch"));
    b.partitionLeaderEpoch = 3;
    b.baseOffset = 17; /* a gap */
    CHECK(mk_batch_validate_next(&a, &b, why, sizeof(why)) == MK_ERR_CORRUPT && strstr(why, "15..16"));
    b.baseOffset = 14; /* overlap */
    CHECK(mk_batch_validate_next(&a, &b, why, sizeof(why)) == MK_ERR_CORRUPT && strstr(why, "overlaps"));
    b.baseOffset = -1; /* out of range, alone too */
    CHECK(mk_batch_validate_next(NULL, &b, why, sizeof(why)) == MK_ERR_CORRUPT);
    b.baseOffset = INT64_MAX;
    b.lastOffsetDelta = 5; /* the last offset wraps */
    CHECK(mk_batch_validate_next(NULL, &b, why, sizeof(why)) == MK_ERR_CORRUPT);
}

int main(void)
{
    test_validate_next();
    test_header_and_size();
    test_validate_append_max_timestamp();
    test_roundtrip_all_codecs();
    test_rewrites();
    test_views();
    test_flipped_bytes();
    test_truncated_and_lying_length();
    test_magic_and_codec();
    test_record_lies();
    test_compacted();
    test_filter();
    test_control_batch();
    test_build_bad_args();
    test_decompression_bombs();
    test_garbage_payloads();
    test_codec_framings();
    test_golden();
    test_oom();
    mk_batch_codec_thread_release();
    if (failures) {
        fprintf(stderr, "batch_test: %d failure(s)\n", failures);
        return 1;
    }
    printf("batch_test: ok\n");
    return 0;
}
