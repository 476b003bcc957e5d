/*
 * batch_fuzz.c -- libFuzzer target over the batch validator, iteration and
 * the codecs.  Any input must be answered with a return code: no crash,
 * no leak, no read outside the input, no unbounded allocation.
 *
 * The first input byte picks a mode, so the fuzzer can get past the CRC
 * (which random mutations almost never satisfy) and reach the record
 * walker and the decompressors:
 *   mode 0  validate the bytes as they are (shallow and deep), iterate
 *   mode 1  fix the CRC first, then as mode 0 (plus COMPACTED, and the
 *           cleaner's rewrite, mk_batch_filter, whose output must validate)
 *   mode 2  fix batchLength to the input size and the CRC, then as mode 0
 *   mode 3  feed the rest to mk_batch_codec_decompress(codec = next byte & 7)
 * Seed corpus: the .bin files in testdata/batches with a mode byte prepended.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "batch/batch.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small enough that bombs are cut quickly, big enough for real batches. */
#define FUZZ_MAX_OUT (1u << 20)

/* Keeps the records at odd offsets (the filter's question). */
static int odd_cb(const mk_record_t *rec, void *arg)
{
    (void)arg;
    return (int)(rec->offset & 1);
}

static int count_cb(const mk_record_t *rec, void *arg)
{
    size_t *total = arg;
    /* touch every byte iteration hands out, so ASan sees a bad pointer */
    for (int32_t i = 0; i < rec->key_len; i++)
        *total += rec->key[i];
    for (int32_t i = 0; i < rec->value_len; i++)
        *total += rec->value[i];
    mk_reader_t r;
    mk_rd_init(&r, rec->headers, rec->headers_len);
    mk_record_header_t h;
    int rc;
    while ((rc = mk_batch_record_header_next(&r, &h)) == 1)
        *total += (size_t)h.key_len + (h.value_len > 0 ? h.value[h.value_len - 1] : 0u);
    if (rc != 0)
        abort(); /* iteration checked the headers; reading them cannot fail */
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* libFuzzer entry: always returns 0; abort() marks a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    data++;
    size--;
    mk_buf_t scratch;
    mk_buf_init(&scratch);
    char why[96];

    if (mode == 3) {
        if (size < 1)
            return 0;
        int rc = mk_batch_codec_decompress(data[0] & 7, data + 1, size - 1, &scratch, FUZZ_MAX_OUT);
        if (rc == 0 && scratch.len > FUZZ_MAX_OUT)
            abort();
        if (rc != 0 && scratch.len != 0)
            abort();
        mk_buf_free(&scratch);
        return 0;
    }

    /* a private copy: exact size so ASan catches any over-read */
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    if (mode == 2 && size >= MK_BATCH_HEADER_SIZE)
        put32(p + MK_BATCH_OFF_LENGTH, (uint32_t)(size - MK_BATCH_LOG_OVERHEAD));
    if (mode >= 1 && size >= MK_BATCH_HEADER_SIZE) {
        int64_t bs = mk_batch_size(p, size);
        if (bs >= MK_BATCH_HEADER_SIZE && (uint64_t)bs <= size)
            put32(p + MK_BATCH_OFF_CRC, mk_crc32c(0, p + MK_BATCH_OFF_ATTRIBUTES, (size_t)bs - MK_BATCH_OFF_ATTRIBUTES));
    }

    int shallow = mk_batch_validate(p, size, false, FUZZ_MAX_OUT, why, sizeof(why));
    int deep = mk_batch_validate_ex(p, size, MK_BATCH_VALIDATE_DEEP, FUZZ_MAX_OUT, &scratch, why, sizeof(why));
    if (memchr(why, 0, sizeof(why)) == NULL)
        abort();
    /* deep is strictly stronger than shallow */
    if (deep == 0 && shallow != 0)
        abort();
    if (mode >= 1)
        (void)mk_batch_validate_ex(p, size, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, FUZZ_MAX_OUT, NULL,
                                   NULL, 0);
    /* the view walk never reads past the set, and tiles what it accepts */
    mk_batch_view_t views[4];
    size_t nviews = 0;
    int vr = mk_batch_views_parse(p, size, views, MK_ARRAY_LEN(views), &nviews);
    for (size_t i = 1; i < nviews && i < MK_ARRAY_LEN(views); i++)
        if (views[i].pos != views[i - 1].pos + views[i - 1].size)
            abort();
    if (vr == 0 && nviews > 0 && views[nviews - 1].pos + views[nviews - 1].size != size)
        abort();
    size_t total = 0;
    int it = mk_batch_records_foreach(p, size, &scratch, FUZZ_MAX_OUT, count_cb, &total);
    /* a batch that passed deep validation iterates cleanly */
    if (deep == 0 && it != 0)
        abort();
    if (mode >= 1 && mk_batch_validate_ex(p, size, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED, FUZZ_MAX_OUT,
                                          NULL, NULL, 0) == 0) {
        /* the cleaner's rewrite of a sound batch is sound (compacted mode) */
        mk_buf_t out;
        mk_buf_init(&out);
        mk_batch_filter_result_t res;
        for (int keep_empty = 0; keep_empty < 2; keep_empty++) {
            mk_buf_reset(&out);
            if (mk_batch_filter(p, size, keep_empty ? 5000 : -1, keep_empty, &scratch, FUZZ_MAX_OUT, odd_cb, NULL,
                                &out, &res) == 0 &&
                res.written &&
                mk_batch_validate_ex(out.data, out.len, MK_BATCH_VALIDATE_DEEP | MK_BATCH_VALIDATE_COMPACTED,
                                     FUZZ_MAX_OUT, NULL, NULL, 0) != 0)
                abort();
        }
        mk_buf_free(&out);
    }
    if (deep == 0) {
        /* and the in-place rewrites keep it valid */
        mk_batch_set_base_offset(p, 12345);
        mk_batch_set_leader_epoch(p, 6);
        mk_batch_set_log_append_time(p, size, 777);
        if (mk_batch_validate(p, size, true, FUZZ_MAX_OUT, NULL, 0) != 0)
            abort();
    }
    free(p);
    mk_buf_free(&scratch);
    return 0;
}
