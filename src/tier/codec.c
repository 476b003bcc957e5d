/*
 * codec.c -- the pure part of tier/: the blob layouts of the remote log
 * metadata (documented in tier_int.h), object keys, segment ids, and the
 * texts of the objects that go with a segment (leader-epoch checkpoint,
 * producer-state snapshot, manifest).
 *
 * Every blob read back from the store goes through the checked reader and
 * the layout's rules before anything else sees it: a row that breaks them
 * is treated as corrupt, never trusted.
 */
#include "tier/tier_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

const char *const tier_exts[TIER_NEXTS] = {".log",      ".index",    ".timeindex", ".leader-epoch-checkpoint",
                                           ".snapshot", ".manifest"};

/* ================================================================= blobs */

void tier_epochs_encode(mk_buf_t *b, const mk_log_epoch_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mk_buf_put_i32(b, v[i].epoch);
        mk_buf_put_i64(b, v[i].start_offset);
    }
}

int tier_epochs_decode(const uint8_t *p, size_t n, mk_log_epoch_entry_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (n % TIER_EPOCH_ENTRY)
        return MK_ERR_CORRUPT;
    size_t k = n / TIER_EPOCH_ENTRY;
    if (!k)
        return 0;
    mk_log_epoch_entry_t *v = mk_malloc(sizeof(*v) * k);
    if (!v)
        return MK_ERR_NOMEM;
    mk_reader_t r;
    mk_rd_init(&r, p, n);
    for (size_t i = 0; i < k; i++) {
        v[i].epoch = mk_rd_i32(&r);
        v[i].start_offset = mk_rd_i64(&r);
        if (v[i].epoch < 0 || v[i].start_offset < 0 ||
            (i && (v[i].epoch <= v[i - 1].epoch || v[i].start_offset <= v[i - 1].start_offset))) {
            mk_free(v);
            return MK_ERR_CORRUPT;
        }
    }
    if (!mk_rd_ok(&r)) {
        mk_free(v);
        return MK_ERR_CORRUPT;
    }
    *out = v;
    *count = k;
    return 0;
}

void tier_chunks_encode(mk_buf_t *b, const tier_chunk_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mk_buf_put_i64(b, (int64_t)v[i].pos);
        mk_buf_put_i64(b, v[i].base_offset);
        mk_buf_put_i64(b, v[i].max_ts);
    }
}

int tier_chunks_decode(const uint8_t *p, size_t n, uint64_t size, tier_chunk_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (n % TIER_CHUNK_ENTRY)
        return MK_ERR_CORRUPT;
    size_t k = n / TIER_CHUNK_ENTRY;
    if (!k)
        return size ? MK_ERR_CORRUPT : 0;
    tier_chunk_t *v = mk_malloc(sizeof(*v) * k);
    if (!v)
        return MK_ERR_NOMEM;
    mk_reader_t r;
    mk_rd_init(&r, p, n);
    for (size_t i = 0; i < k; i++) {
        v[i].pos = (uint64_t)mk_rd_i64(&r);
        v[i].base_offset = mk_rd_i64(&r);
        v[i].max_ts = mk_rd_i64(&r);
        if ((i == 0 && v[i].pos != 0) || v[i].pos >= size || v[i].base_offset < 0 ||
            (i && (v[i].pos <= v[i - 1].pos || v[i].base_offset <= v[i - 1].base_offset))) {
            mk_free(v);
            return MK_ERR_CORRUPT;
        }
    }
    if (!mk_rd_ok(&r)) {
        mk_free(v);
        return MK_ERR_CORRUPT;
    }
    *out = v;
    *count = k;
    return 0;
}

void tier_aborted_encode(mk_buf_t *b, const tier_aborted_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mk_buf_put_i64(b, v[i].pid);
        mk_buf_put_i64(b, v[i].first);
        mk_buf_put_i64(b, v[i].last);
    }
}

int tier_aborted_decode(const uint8_t *p, size_t n, tier_aborted_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (n % TIER_ABORTED_ENTRY)
        return MK_ERR_CORRUPT;
    size_t k = n / TIER_ABORTED_ENTRY;
    if (!k)
        return 0;
    tier_aborted_t *v = mk_malloc(sizeof(*v) * k);
    if (!v)
        return MK_ERR_NOMEM;
    mk_reader_t r;
    mk_rd_init(&r, p, n);
    for (size_t i = 0; i < k; i++) {
        v[i].pid = mk_rd_i64(&r);
        v[i].first = mk_rd_i64(&r);
        v[i].last = mk_rd_i64(&r);
        if (v[i].pid < 0 || v[i].first < 0 || v[i].last < v[i].first) {
            mk_free(v);
            return MK_ERR_CORRUPT;
        }
    }
    if (!mk_rd_ok(&r)) {
        mk_free(v);
        return MK_ERR_CORRUPT;
    }
    *out = v;
    *count = k;
    return 0;
}

/* ================================================================== names */

void tier_segment_id(char out[TIER_ID_LEN + 1])
{
    uint8_t raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    for (; got < sizeof(raw); got++) /* getrandom does not fail in practice */
        raw[got] = (uint8_t)(mk_mono_ns() >> (got % 8));
    char tmp[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(raw, tmp);
    memcpy(out, tmp, TIER_ID_LEN);
    out[TIER_ID_LEN] = 0;
}

int tier_object_key(char *out, size_t cap, const char *cluster_id, const char *topic, const uint8_t topic_id[16],
                    int32_t partition, int64_t start, const char *segment_id, const char *ext)
{
    char tid[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(topic_id, tid);
    int n = snprintf(out, cap, "tier/%s/%s-%s/%d/%020" PRId64 "-%s%s", cluster_id, topic, tid, (int)partition,
                     start, segment_id, ext);
    return n < 0 || (size_t)n >= cap ? MK_ERR_TOO_LARGE : 0;
}

/* ================================================================== texts */

void tier_epochs_checkpoint_text(mk_buf_t *b, const mk_log_epoch_entry_t *v, size_t n)
{
    char line[64];
    int k = snprintf(line, sizeof(line), "0\n%zu\n", n);
    mk_buf_put(b, line, (size_t)k);
    for (size_t i = 0; i < n; i++) {
        k = snprintf(line, sizeof(line), "%d %" PRId64 "\n", (int)v[i].epoch, v[i].start_offset);
        mk_buf_put(b, line, (size_t)k);
    }
}

void tier_snapshot_encode(mk_buf_t *b, int64_t end_offset, const tier_producer_t *v, size_t n,
                          const tier_aborted_t *ab, size_t nab)
{
    mk_buf_put(b, "MKPS", 4);
    mk_buf_put_i16(b, 1);
    mk_buf_put_i64(b, end_offset);
    mk_buf_put_i32(b, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        mk_buf_put_i64(b, v[i].pid);
        mk_buf_put_i16(b, v[i].epoch);
        mk_buf_put_i32(b, v[i].last_seq);
        mk_buf_put_i64(b, v[i].last_ts);
        mk_buf_put_i64(b, v[i].txn_start);
    }
    mk_buf_put_i32(b, (int32_t)nab);
    tier_aborted_encode(b, ab, nab);
}

/* Appends s as a JSON string at out[*o] (within cap); the names we put
 * here are [A-Za-z0-9._~-] (topic names, ids), but escape anyway. */
static void json_str(char *out, size_t cap, size_t *o, const char *s)
{
    char tmp[8];
    if (*o + 1 < cap)
        out[(*o)++] = '"';
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        const char *put = tmp;
        if (ch == '"' || ch == '\\')
            snprintf(tmp, sizeof(tmp), "\\%c", ch);
        else if (ch < 0x20)
            snprintf(tmp, sizeof(tmp), "\\u%04x", ch);
        else
            snprintf(tmp, sizeof(tmp), "%c", ch);
        for (; *put; put++)
            if (*o + 1 < cap)
                out[(*o)++] = *put;
            else
                *o = cap; /* truncated */
    }
    if (*o + 1 < cap)
        out[(*o)++] = '"';
    else
        *o = cap;
}

static void text_add(char *out, size_t cap, size_t *o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void text_add(char *out, size_t cap, size_t *o, const char *fmt, ...)
{
    if (*o >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *o, cap - *o, fmt, ap);
    va_end(ap);
    *o = n < 0 || (size_t)n >= cap - *o ? cap : *o + (size_t)n;
}

size_t tier_manifest_text(char *out, size_t cap, const tier_manifest_t *m)
{
    size_t o = 0;
    text_add(out, cap, &o, "{\"version\": 1, \"cluster_id\": ");
    json_str(out, cap, &o, m->cluster_id);
    text_add(out, cap, &o, ", \"topic\": ");
    json_str(out, cap, &o, m->topic);
    text_add(out, cap, &o, ", \"topic_id\": ");
    json_str(out, cap, &o, m->topic_id);
    text_add(out, cap, &o, ", \"segment_id\": ");
    json_str(out, cap, &o, m->segment_id);
    text_add(out, cap, &o,
             ", \"partition\": %d, \"start_offset\": %" PRId64 ", \"end_offset\": %" PRId64
             ", \"max_timestamp\": %" PRId64 ", \"size\": %" PRId64 ", \"broker\": %d, \"leader_epoch\": %d"
             ", \"created_ms\": %" PRId64 ", \"crc32c\": \"%08x\", \"sha256\": \"%s\", \"md5\": \"%s\""
             ", \"chunks\": %zu, \"leader_epochs\": %zu, \"producers\": %zu, \"aborted_transactions\": %zu"
             ", \"objects\": {",
             (int)m->partition, m->start_offset, m->end_offset, m->max_timestamp, m->size, (int)m->broker,
             (int)m->leader_epoch, m->created_ms, m->crc32c, m->sha256, m->md5, m->nchunks, m->nepochs,
             m->nproducers, m->naborted);
    for (int i = 0; i < TIER_NEXTS - 1; i++)
        text_add(out, cap, &o, "%s\"%s\": %" PRIu64, i ? ", " : "", tier_exts[i] + 1, m->sizes[i]);
    text_add(out, cap, &o, "}}\n");
    if (o < cap)
        out[o] = 0;
    return o;
}
