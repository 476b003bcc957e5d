/*
 * batch.c -- record batch (magic v2) header parsing, the integrity
 * validator, in-place rewrites, record iteration and the builder.
 *
 * The byte layout is documented in batch.h.  Design points:
 *
 *   - One record walker (walk_records) serves both the deep validator and
 *     iteration, so "what a valid record is" is written down exactly once.
 *     It reads every byte through mk_reader_t: a length or count from the
 *     batch is never used before it is checked against the bytes left.
 *   - Shallow validation is header + one CRC-32C pass and allocates nothing;
 *     it is what the produce path pays for every uncompressed batch.  Deep
 *     validation decompresses (bounded) and walks the records; uncompressed
 *     records are walked in place, without a copy.
 *   - Offsets: the walker enforces offsetDelta == i (what producers write
 *     and the produce path requires).  Iteration and the COMPACTED mode
 *     relax this to "strictly increasing, at most lastOffsetDelta", which
 *     is what a compacted log holds.
 *   - baseOffset and partitionLeaderEpoch sit before the CRC'd range so the
 *     leader can assign them in place; the LogAppendTime rewrite touches
 *     CRC'd bytes and so recomputes the CRC.
 *   - This is the one module that knows the layout.  Others read a record
 *     set through views (mk_batch_view_t: position, size, parsed header),
 *     filled by one walk or by the produce validator, and rewrite the
 *     leader-owned fields through the view writers, which keep the bytes
 *     and the view in step -- so the log never parses a header again.
 *   - Arithmetic on header values (offset + delta, timestamp + delta) is
 *     done unsigned: the values are untrusted and signed overflow is UB.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "batch/batch.h"

#include <stdio.h>
#include <string.h>

/* Smallest possible record: length, attributes, timestampDelta,
 * offsetDelta, keyLength, valueLength, headerCount -- one byte each. */
#define MIN_RECORD_SIZE 7

/* ================================================================ helpers */

static void set_why(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static int64_t add_wrap(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

/* ================================================================= header */

/* Header only, through the checked reader; returns 0 or MK_ERR_*.  Any
 * thread, no allocation. */
int mk_batch_hdr_parse(const uint8_t *p, size_t n, mk_batch_hdr_t *out)
{
    if (n < MK_BATCH_HEADER_SIZE)
        return MK_ERR_TRUNCATED;
    mk_reader_t r;
    mk_batch_hdr_t h;
    mk_rd_init(&r, p, MK_BATCH_HEADER_SIZE);
    h.baseOffset = mk_rd_i64(&r);
    h.batchLength = mk_rd_i32(&r);
    h.partitionLeaderEpoch = mk_rd_i32(&r);
    h.magic = mk_rd_i8(&r);
    h.crc = mk_rd_u32(&r);
    h.attributes = mk_rd_i16(&r);
    h.lastOffsetDelta = mk_rd_i32(&r);
    h.baseTimestamp = mk_rd_i64(&r);
    h.maxTimestamp = mk_rd_i64(&r);
    h.producerId = mk_rd_i64(&r);
    h.producerEpoch = mk_rd_i16(&r);
    h.baseSequence = mk_rd_i32(&r);
    h.recordCount = mk_rd_i32(&r);
    if (!mk_rd_ok(&r))
        return MK_ERR_TRUNCATED;
    if (h.magic == 0 || h.magic == 1)
        return MK_ERR_UNSUPPORTED;
    if (h.magic != MK_BATCH_MAGIC)
        return MK_ERR_CORRUPT;
    if (h.batchLength < MK_BATCH_HEADER_SIZE - MK_BATCH_LOG_OVERHEAD)
        return MK_ERR_CORRUPT;
    *out = h;
    return 0;
}

/* 12 + batchLength, or a negative MK_ERR_*.  Any thread. */
int64_t mk_batch_size(const uint8_t *p, size_t n)
{
    if (n < MK_BATCH_LOG_OVERHEAD)
        return MK_ERR_TRUNCATED;
    mk_reader_t r;
    mk_rd_init(&r, p + MK_BATCH_OFF_LENGTH, 4);
    int32_t len = mk_rd_i32(&r);
    if (len < MK_BATCH_HEADER_SIZE - MK_BATCH_LOG_OVERHEAD)
        return MK_ERR_CORRUPT;
    return (int64_t)len + MK_BATCH_LOG_OVERHEAD;
}

/* ========================================================= record walker */

/* Walk [recs, recs+len) as exactly h->recordCount records, calling cb (if
 * any) for each.  MK_BATCH_VALIDATE_COMPACTED relaxes offsetDelta == i to
 * strictly increasing and <= lastOffsetDelta; MK_BATCH_VALIDATE_KEYED
 * refuses a null key (MK_ERR_INVALID).  Returns 0, cb's non-zero value, or
 * MK_ERR_CORRUPT / MK_ERR_INVALID with why filled. */
static int walk_records(const uint8_t *recs, size_t len, const mk_batch_hdr_t *h, int flags,
                        mk_batch_record_cb cb, void *arg, char *why, size_t why_len)
{
    bool compacted = (flags & MK_BATCH_VALIDATE_COMPACTED) != 0;
    mk_reader_t r;
    mk_rd_init(&r, recs, len);
    bool log_append = (h->attributes & MK_BATCH_ATTR_LOG_APPEND_TIME) != 0;
    int64_t prev_delta = -1;
    for (int32_t i = 0; i < h->recordCount; i++) {
        if (mk_rd_remaining(&r) == 0) {
            set_why(why, why_len, "records end after %d of recordCount %d", (int)i, (int)h->recordCount);
            return MK_ERR_CORRUPT;
        }
        int32_t rlen = mk_rd_varint32(&r);
        if (!mk_rd_ok(&r) || rlen < MIN_RECORD_SIZE - 1) {
            set_why(why, why_len, "record %d: bad length", (int)i);
            return MK_ERR_CORRUPT;
        }
        const uint8_t *body = mk_rd_bytes(&r, (size_t)rlen);
        if (!body) {
            set_why(why, why_len, "record %d: length %d past the end of the records", (int)i, (int)rlen);
            return MK_ERR_CORRUPT;
        }

        mk_reader_t b;
        mk_rd_init(&b, body, (size_t)rlen);
        mk_record_t rec;
        rec.attributes = mk_rd_i8(&b);
        int64_t ts_delta = mk_rd_varint(&b);
        int32_t off_delta = mk_rd_varint32(&b);
        rec.key_len = mk_rd_varint32(&b);
        if (rec.key_len < -1)
            goto bad_len;
        rec.key = rec.key_len >= 0 ? mk_rd_bytes(&b, (size_t)rec.key_len) : NULL;
        rec.value_len = mk_rd_varint32(&b);
        if (rec.value_len < -1)
            goto bad_len;
        rec.value = rec.value_len >= 0 ? mk_rd_bytes(&b, (size_t)rec.value_len) : NULL;
        rec.header_count = mk_rd_varint32(&b);
        /* each header takes at least two bytes: cap the count before looping */
        if (rec.header_count < 0 || (size_t)rec.header_count > mk_rd_remaining(&b) / 2) {
            if (!mk_rd_ok(&b))
                goto truncated;
            set_why(why, why_len, "record %d: headerCount %d exceeds its %zu remaining bytes", (int)i,
                    (int)rec.header_count, mk_rd_remaining(&b));
            return MK_ERR_CORRUPT;
        }
        rec.headers = b.p;
        for (int32_t j = 0; j < rec.header_count; j++) {
            int32_t hk = mk_rd_varint32(&b);
            if (hk < 0)
                goto bad_len;
            mk_rd_skip(&b, (size_t)hk);
            int32_t hv = mk_rd_varint32(&b);
            if (hv < -1)
                goto bad_len;
            if (hv > 0)
                mk_rd_skip(&b, (size_t)hv);
        }
        if (!mk_rd_ok(&b))
            goto truncated;
        rec.headers_len = (size_t)(b.p - rec.headers);
        if (mk_rd_remaining(&b) != 0) {
            set_why(why, why_len, "record %d: %zu bytes after its last field", (int)i, mk_rd_remaining(&b));
            return MK_ERR_CORRUPT;
        }

        if (compacted ? (off_delta <= prev_delta || off_delta > h->lastOffsetDelta) : off_delta != i) {
            set_why(why, why_len, "record %d: offsetDelta %d out of sequence", (int)i, (int)off_delta);
            return MK_ERR_CORRUPT;
        }
        prev_delta = off_delta;
        if ((flags & MK_BATCH_VALIDATE_KEYED) && rec.key_len < 0) {
            set_why(why, why_len, "record %d has no key: a compacted topic cannot accept a record without a key",
                    (int)i);
            return MK_ERR_INVALID;
        }

        if (cb) {
            rec.offset = add_wrap(h->baseOffset, off_delta);
            rec.timestamp = log_append ? h->maxTimestamp : add_wrap(h->baseTimestamp, ts_delta);
            int rc = cb(&rec, arg);
            if (rc)
                return rc;
        }
        continue;

    bad_len:
        if (mk_rd_ok(&b)) {
            set_why(why, why_len, "record %d: negative key, value or header length", (int)i);
            return MK_ERR_CORRUPT;
        }
    truncated:
        set_why(why, why_len, "record %d: fields run past its length %d", (int)i, (int)rlen);
        return MK_ERR_CORRUPT;
    }
    if (mk_rd_remaining(&r) != 0) {
        set_why(why, why_len, "%zu bytes after record %d (recordCount)", mk_rd_remaining(&r), (int)h->recordCount);
        return MK_ERR_CORRUPT;
    }
    return 0;
}

/* Parse the header and check the batch fits in n; *size_out gets its size. */
static int frame_check(const uint8_t *p, size_t n, mk_batch_hdr_t *h, size_t *size_out, char *why, size_t why_len)
{
    int rc = mk_batch_hdr_parse(p, n, h);
    if (rc == MK_ERR_TRUNCATED) {
        set_why(why, why_len, "%zu bytes, shorter than a batch header", n);
        return MK_ERR_CORRUPT;
    }
    if (rc == MK_ERR_UNSUPPORTED) {
        set_why(why, why_len, "legacy message format (magic %d)", (int)(int8_t)p[MK_BATCH_OFF_MAGIC]);
        return rc;
    }
    if (rc) {
        int8_t magic = (int8_t)p[MK_BATCH_OFF_MAGIC];
        if (magic != MK_BATCH_MAGIC)
            set_why(why, why_len, "unknown magic %d", (int)magic);
        else
            set_why(why, why_len, "batchLength %lld below the header size", (long long)mk_batch_size(p, n) - 12);
        return MK_ERR_CORRUPT;
    }
    size_t size = (size_t)h->batchLength + MK_BATCH_LOG_OVERHEAD;
    if (size > n) {
        set_why(why, why_len, "batchLength %d runs past the %zu bytes available", (int)h->batchLength, n);
        return MK_ERR_CORRUPT;
    }
    *size_out = size;
    return 0;
}

/* Decompress (or point at) the records of a checked batch. */
static int records_region(const uint8_t *p, size_t size, const mk_batch_hdr_t *h, mk_buf_t *scratch,
                          size_t max_uncompressed, const uint8_t **recs, size_t *len, char *why, size_t why_len)
{
    const uint8_t *payload = p + MK_BATCH_OFF_RECORDS;
    size_t plen = size - MK_BATCH_OFF_RECORDS;
    int codec = mk_batch_hdr_codec(h);
    if (codec > MK_CODEC_ZSTD) {
        set_why(why, why_len, "unknown compression codec %d", codec);
        return MK_ERR_UNSUPPORTED;
    }
    if (codec == MK_CODEC_NONE || plen == 0) {
        /* an empty compressed payload only ever holds zero records; the
         * walker says so if recordCount disagrees */
        *recs = payload;
        *len = plen;
        return 0;
    }
    mk_buf_reset(scratch);
    int rc = mk_batch_codec_decompress(codec, payload, plen, scratch, max_uncompressed);
    if (rc == MK_ERR_TOO_LARGE) {
        set_why(why, why_len, "%s records decompress past %zu bytes", mk_batch_codec_name(codec),
                max_uncompressed ? max_uncompressed : MK_BATCH_MAX_UNCOMPRESSED_DEFAULT);
        return rc;
    }
    if (rc == MK_ERR_NOMEM) {
        set_why(why, why_len, "out of memory decompressing");
        return rc;
    }
    if (rc) {
        set_why(why, why_len, "%s records do not decompress", mk_batch_codec_name(codec));
        return MK_ERR_CORRUPT;
    }
    /* an empty result may leave scratch->data NULL; never hand that out */
    *recs = scratch->len ? scratch->data : payload;
    *len = scratch->len;
    return 0;
}

/* ============================================================= validator */

/* The validator (contract in batch.h).  Order: frame, CRC, codec, counts,
 * then (deep) the records; *hp and *size_out are set once the frame is
 * sound.  Allocates only for deep validation of a compressed batch
 * without a scratch buffer. */
/* The largest record timestamp of a batch (deep validation's one walk). */
static int max_ts_cb(const mk_record_t *rec, void *arg)
{
    int64_t *mx = arg;
    if (rec->timestamp > *mx)
        *mx = rec->timestamp;
    return 0;
}

static int validate(const uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                    mk_batch_hdr_t *hp, size_t *size_out, int64_t *max_ts, char *why, size_t why_len)
{
    mk_batch_hdr_t h;
    size_t size;
    set_why(why, why_len, "ok");
    int rc = frame_check(p, n, &h, &size, why, why_len);
    if (rc)
        return rc;
    *hp = h;
    *size_out = size;

    uint32_t crc = mk_batch_crc_compute(p, size);
    if (crc != h.crc) {
        set_why(why, why_len, "crc %08x, computed %08x", h.crc, crc);
        return MK_ERR_CRC;
    }
    int codec = mk_batch_hdr_codec(&h);
    if (codec > MK_CODEC_ZSTD) {
        set_why(why, why_len, "unknown compression codec %d", codec);
        return MK_ERR_UNSUPPORTED;
    }
    bool compacted = (flags & MK_BATCH_VALIDATE_COMPACTED) != 0;
    if (compacted ? (h.recordCount < 0 || h.lastOffsetDelta < 0 || h.recordCount - 1 > h.lastOffsetDelta)
                  : (h.recordCount < 1 || h.lastOffsetDelta != h.recordCount - 1)) {
        set_why(why, why_len, "recordCount %d does not match lastOffsetDelta %d", (int)h.recordCount,
                (int)h.lastOffsetDelta);
        return MK_ERR_CORRUPT;
    }
    if (codec == MK_CODEC_NONE && (size_t)h.recordCount > (size - MK_BATCH_OFF_RECORDS) / MIN_RECORD_SIZE) {
        set_why(why, why_len, "recordCount %d cannot fit in %zu record bytes", (int)h.recordCount,
                size - MK_BATCH_OFF_RECORDS);
        return MK_ERR_CORRUPT;
    }
    if (!(flags & MK_BATCH_VALIDATE_DEEP))
        return 0;

    mk_buf_t own;
    mk_buf_init(&own);
    const uint8_t *recs;
    size_t len;
    rc = records_region(p, size, &h, scratch ? scratch : &own, max_uncompressed, &recs, &len, why, why_len);
    if (rc == 0 && max_ts) {
        *max_ts = INT64_MIN;
        rc = walk_records(recs, len, &h, flags, max_ts_cb, max_ts, why, why_len);
    } else if (rc == 0) {
        rc = walk_records(recs, len, &h, flags, NULL, NULL, why, why_len);
    }
    mk_buf_free(&own);
    return rc;
}

/* The validator with flags and scratch (batch.h).  Any thread. */
int mk_batch_validate_ex(const uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                         char *why, size_t why_len)
{
    mk_batch_hdr_t h;
    size_t size;
    return validate(p, n, flags, max_uncompressed, scratch, &h, &size, NULL, why, why_len);
}

/* The validator that also hands out the batch's view (batch.h).  Any
 * thread; allocates as mk_batch_validate_ex(). */
int mk_batch_validate_view(const uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                           mk_batch_view_t *out, char *why, size_t why_len)
{
    mk_batch_hdr_t h;
    size_t size;
    int rc = validate(p, n, flags, max_uncompressed, scratch, &h, &size, NULL, why, why_len);
    if (rc)
        return rc;
    out->pos = 0;
    out->size = (uint32_t)size;
    out->hdr = h;
    return 0;
}

/* The validator of the append path (batch.h): deep validation whose one
 * walk also yields the largest record timestamp, then Kafka's rewrite of a
 * CreateTime batch's maxTimestamp when it is not that.  Any thread. */
int mk_batch_validate_append(uint8_t *p, size_t n, size_t max_uncompressed, mk_buf_t *scratch, mk_batch_view_t *out,
                             bool *rewritten, char *why, size_t why_len)
{
    return mk_batch_validate_append_ex(p, n, 0, max_uncompressed, scratch, out, rewritten, why, why_len);
}

/* The append validator with extra flags (batch.h).  Any thread. */
int mk_batch_validate_append_ex(uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                                mk_batch_view_t *out, bool *rewritten, char *why, size_t why_len)
{
    mk_batch_hdr_t h;
    size_t size;
    int64_t mx = INT64_MIN;
    *rewritten = false;
    int rc = validate(p, n, flags | MK_BATCH_VALIDATE_DEEP, max_uncompressed, scratch, &h, &size, &mx, why, why_len);
    if (rc)
        return rc;
    out->pos = 0;
    out->size = (uint32_t)size;
    out->hdr = h;
    if (!(h.attributes & MK_BATCH_ATTR_LOG_APPEND_TIME) && mx != INT64_MIN && h.maxTimestamp != mx) {
        put_be64(p + MK_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)mx);
        uint32_t crc = mk_batch_crc_compute(p, size);
        put_be32(p + MK_BATCH_OFF_CRC, crc);
        out->hdr.maxTimestamp = mx;
        out->hdr.crc = crc;
        *rewritten = true;
    }
    return 0;
}

/* mk_batch_validate_ex() with a private scratch buffer.  Any thread. */
int mk_batch_validate(const uint8_t *p, size_t n, bool deep, size_t max_uncompressed, char *why, size_t why_len)
{
    return mk_batch_validate_ex(p, n, deep ? MK_BATCH_VALIDATE_DEEP : 0, max_uncompressed, NULL, why, why_len);
}

/* The rules between two neighbouring batches of one log (batch.h).  Pure. */
int mk_batch_validate_next(const mk_batch_hdr_t *prev, const mk_batch_hdr_t *cur, char *why, size_t why_len)
{
    if (cur->baseOffset < 0 || cur->lastOffsetDelta < 0 || mk_batch_hdr_last_offset(cur) < cur->baseOffset) {
        set_why(why, why_len, "batch at offset %lld has offsets out of range (lastOffsetDelta %d)",
                (long long)cur->baseOffset, cur->lastOffsetDelta);
        return MK_ERR_CORRUPT;
    }
    if (!prev)
        return 0;
    int64_t want = mk_batch_hdr_last_offset(prev) + 1;
    if (cur->baseOffset < want) {
        set_why(why, why_len, "batch at offset %lld overlaps or goes back (expected offset %lld)",
                (long long)cur->baseOffset, (long long)want);
        return MK_ERR_CORRUPT;
    }
    if (cur->baseOffset > want) {
        set_why(why, why_len, "offsets %lld..%lld are missing (gap before the batch at offset %lld)",
                (long long)want, (long long)cur->baseOffset - 1, (long long)cur->baseOffset);
        return MK_ERR_CORRUPT;
    }
    if (cur->partitionLeaderEpoch < prev->partitionLeaderEpoch) {
        set_why(why, why_len, "leader epoch goes back from %d to %d at offset %lld", prev->partitionLeaderEpoch,
                cur->partitionLeaderEpoch, (long long)cur->baseOffset);
        return MK_ERR_CORRUPT;
    }
    return 0;
}

/* ======================================================= in-place rewrites */

/* In place; the caller owns p (>= 61 bytes).  Not CRC'd, so no rehash. */
void mk_batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
    put_be64(p + MK_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

/* In place; the caller owns p (>= 61 bytes).  Not CRC'd, so no rehash. */
void mk_batch_set_leader_epoch(uint8_t *p, int32_t epoch)
{
    put_be32(p + MK_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}

/* maxTimestamp and the attribute bit of the size-byte batch at p, then
 * the CRC; returns the new attributes and CRC through the pointers. */
static void log_append_time_at(uint8_t *p, size_t size, int64_t ts, int16_t *attrs_out, uint32_t *crc_out)
{
    put_be64(p + MK_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts);
    uint16_t attrs = (uint16_t)((uint16_t)p[MK_BATCH_OFF_ATTRIBUTES] << 8 | p[MK_BATCH_OFF_ATTRIBUTES + 1]);
    attrs |= MK_BATCH_ATTR_LOG_APPEND_TIME;
    put_be16(p + MK_BATCH_OFF_ATTRIBUTES, attrs);
    uint32_t crc = mk_batch_crc_compute(p, size);
    put_be32(p + MK_BATCH_OFF_CRC, crc);
    *attrs_out = (int16_t)attrs;
    *crc_out = crc;
}

/* In place, then one CRC pass over the batch.  No-op if it does not fit n. */
void mk_batch_set_log_append_time(uint8_t *p, size_t n, int64_t ts)
{
    int64_t size = mk_batch_size(p, n);
    if (size < MK_BATCH_HEADER_SIZE || (uint64_t)size > n)
        return;
    int16_t attrs;
    uint32_t crc;
    log_append_time_at(p, (size_t)size, ts, &attrs, &crc);
}

/* CRC-32C over [21, size).  Any thread. */
uint32_t mk_batch_crc_compute(const uint8_t *p, size_t size)
{
    return mk_crc32c(0, p + MK_BATCH_OFF_ATTRIBUTES, size - MK_BATCH_OFF_ATTRIBUTES);
}

/* Recompute and store the CRC; the caller owns p (size >= 61 bytes). */
void mk_batch_set_crc(uint8_t *p, size_t size)
{
    put_be32(p + MK_BATCH_OFF_CRC, mk_batch_crc_compute(p, size));
}

/* ================================================================== views */

/* Header and size; pos 0.  Any thread, no allocation. */
int mk_batch_view_parse(const uint8_t *p, size_t n, mk_batch_view_t *out)
{
    mk_batch_hdr_t h;
    int rc = mk_batch_hdr_parse(p, n, &h);
    if (rc)
        return rc;
    out->pos = 0;
    out->size = (uint32_t)h.batchLength + MK_BATCH_LOG_OVERHEAD;
    out->hdr = h;
    return 0;
}

/* 1 with the whole batch at *pos, 0 at the end, or MK_ERR_*. */
int mk_batch_view_next(const uint8_t *set, size_t len, size_t *pos, mk_batch_view_t *out)
{
    if (*pos >= len)
        return 0;
    mk_batch_view_t v;
    int rc = mk_batch_view_parse(set + *pos, len - *pos, &v);
    if (rc)
        return rc;
    if (v.size > len - *pos)
        return MK_ERR_TRUNCATED;
    v.pos = *pos;
    *pos += v.size;
    *out = v;
    return 1;
}

/* One walk, snprintf-style when views is short (batch.h). */
int mk_batch_views_parse(const uint8_t *set, size_t len, mk_batch_view_t *views, size_t cap, size_t *count)
{
    size_t pos = 0, n = 0;
    mk_batch_view_t v;
    int rc;
    while ((rc = mk_batch_view_next(set, len, &pos, &v)) == 1) {
        if (n < cap)
            views[n] = v;
        n++;
    }
    *count = n;
    if (rc < 0)
        return rc;
    return n > cap ? MK_ERR_TOO_LARGE : 0;
}

/* Bytes and view alike; outside the CRC. */
void mk_batch_view_set_base_offset(uint8_t *set, mk_batch_view_t *v, int64_t base_offset)
{
    mk_batch_set_base_offset(set + v->pos, base_offset);
    v->hdr.baseOffset = base_offset;
}

/* Bytes and view alike; outside the CRC. */
void mk_batch_view_set_leader_epoch(uint8_t *set, mk_batch_view_t *v, int32_t epoch)
{
    mk_batch_set_leader_epoch(set + v->pos, epoch);
    v->hdr.partitionLeaderEpoch = epoch;
}

/* Bytes and view alike, CRC recomputed over v->size bytes. */
void mk_batch_view_set_log_append_time(uint8_t *set, mk_batch_view_t *v, int64_t ts)
{
    log_append_time_at(set + v->pos, v->size, ts, &v->hdr.attributes, &v->hdr.crc);
    v->hdr.maxTimestamp = ts;
}

/* ============================================================== iteration */

/* The checked frame of the batch at p and its records region (decompressed
 * into scratch when compressed, bounded by max_uncompressed): what
 * iterating and rewriting a batch both start from.  0 or MK_ERR_*. */
static int batch_records_open(const uint8_t *p, size_t n, mk_buf_t *scratch, size_t max_uncompressed,
                              mk_batch_hdr_t *h, size_t *size, const uint8_t **recs, size_t *len)
{
    int rc = frame_check(p, n, h, size, NULL, 0);
    if (rc)
        return rc;
    if (h->recordCount < 0)
        return MK_ERR_CORRUPT;
    return records_region(p, *size, h, scratch, max_uncompressed, recs, len, NULL, 0);
}

/* Iterate with the compacted offset rules (a superset of what producers
 * write), so it also reads compacted logs.  Returns 0, cb's value or
 * MK_ERR_*.  Records point into p or scratch (caller-owned). */
int mk_batch_records_foreach(const uint8_t *p, size_t n, mk_buf_t *scratch, size_t max_uncompressed,
                             mk_batch_record_cb cb, void *arg)
{
    mk_batch_hdr_t h;
    size_t size;
    const uint8_t *recs;
    size_t len;
    int rc = batch_records_open(p, n, scratch, max_uncompressed, &h, &size, &recs, &len);
    if (rc)
        return rc;
    return walk_records(recs, len, &h, MK_BATCH_VALIDATE_COMPACTED, cb, arg, NULL, 0);
}

/* 1 with *out filled, 0 at the end, MK_ERR_CORRUPT (sticky in r). */
int mk_batch_record_header_next(mk_reader_t *r, mk_record_header_t *out)
{
    if (!mk_rd_ok(r))
        return MK_ERR_CORRUPT;
    if (mk_rd_remaining(r) == 0)
        return 0;
    out->key_len = mk_rd_varint32(r);
    if (out->key_len < 0)
        goto bad;
    out->key = mk_rd_bytes(r, (size_t)out->key_len);
    out->value_len = mk_rd_varint32(r);
    if (out->value_len < -1)
        goto bad;
    out->value = out->value_len >= 0 ? mk_rd_bytes(r, (size_t)out->value_len) : NULL;
    if (!mk_rd_ok(r))
        return MK_ERR_CORRUPT;
    return 1;
bad:
    mk_rd_fail(r, MK_ERR_CORRUPT);
    return MK_ERR_CORRUPT;
}

/* ================================================================ builder */

static bool rec_in_ok(const mk_batch_rec_in_t *r)
{
    if (r->key_len < -1 || (r->key_len > 0 && !r->key))
        return false;
    if (r->value_len < -1 || (r->value_len > 0 && !r->value))
        return false;
    if (r->header_count < 0 || (r->header_count > 0 && (!r->header_keys || !r->header_values || !r->header_value_lens)))
        return false;
    for (int32_t j = 0; j < r->header_count; j++) {
        if (!r->header_keys[j] || r->header_value_lens[j] < -1 || (r->header_value_lens[j] > 0 && !r->header_values[j]))
            return false;
    }
    return true;
}

/* Append one record; returns false if it would not fit an i32 length. */
static bool put_record(mk_buf_t *b, const mk_batch_rec_in_t *r, int32_t index, int64_t base_ts)
{
    int64_t ts_delta = (int64_t)((uint64_t)r->timestamp - (uint64_t)base_ts);
    uint64_t body = 1 + mk_varint_len(ts_delta) + mk_varint_len(index);
    body += mk_varint_len(r->key_len) + (uint64_t)MK_MAX(r->key_len, 0);
    body += mk_varint_len(r->value_len) + (uint64_t)MK_MAX(r->value_len, 0);
    body += mk_varint_len(r->header_count);
    for (int32_t j = 0; j < r->header_count; j++) {
        size_t kl = strlen(r->header_keys[j]);
        if (kl > INT32_MAX)
            return false;
        body += mk_varint_len((int64_t)kl) + kl;
        body += mk_varint_len(r->header_value_lens[j]) + (uint64_t)MK_MAX(r->header_value_lens[j], 0);
    }
    if (body > INT32_MAX)
        return false;
    mk_buf_put_varint(b, (int64_t)body);
    mk_buf_put_i8(b, 0);
    mk_buf_put_varint(b, ts_delta);
    mk_buf_put_varint(b, index);
    mk_buf_put_varint(b, r->key_len);
    if (r->key_len > 0)
        mk_buf_put(b, r->key, (size_t)r->key_len);
    mk_buf_put_varint(b, r->value_len);
    if (r->value_len > 0)
        mk_buf_put(b, r->value, (size_t)r->value_len);
    mk_buf_put_varint(b, r->header_count);
    for (int32_t j = 0; j < r->header_count; j++) {
        size_t kl = strlen(r->header_keys[j]);
        mk_buf_put_varint(b, (int64_t)kl);
        mk_buf_put(b, r->header_keys[j], kl);
        mk_buf_put_varint(b, r->header_value_lens[j]);
        if (r->header_value_lens[j] > 0)
            mk_buf_put(b, r->header_values[j], (size_t)r->header_value_lens[j]);
    }
    return true;
}

/* Defaults: uncompressed, baseOffset 0, producer fields and epoch -1. */
void mk_batch_build_opts_init(mk_batch_build_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->codec = MK_CODEC_NONE;
    o->baseOffset = 0;
    o->partitionLeaderEpoch = -1;
    o->producerId = -1;
    o->producerEpoch = -1;
    o->baseSequence = -1;
}

/* Header, then records written straight into out (uncompressed) or into a
 * temporary that is compressed into out; batchLength and CRC patched last.
 * Returns 0 or MK_ERR_*; out->len is restored on error. */
int mk_batch_build_ex(mk_buf_t *out, const mk_batch_build_opts_t *o, const mk_batch_rec_in_t *recs, int count)
{
    if (!out || !o || !recs || count < 1)
        return MK_ERR_INVALID;
    if (o->codec < MK_CODEC_NONE || o->codec > MK_CODEC_ZSTD)
        return MK_ERR_UNSUPPORTED;
    int64_t max_ts = recs[0].timestamp;
    for (int i = 0; i < count; i++) {
        if (!rec_in_ok(&recs[i]))
            return MK_ERR_INVALID;
        max_ts = MK_MAX(max_ts, recs[i].timestamp);
    }
    if (out->oom)
        return MK_ERR_NOMEM;

    int16_t attrs = (int16_t)o->codec;
    if (o->log_append_time)
        attrs |= MK_BATCH_ATTR_LOG_APPEND_TIME;
    if (o->transactional)
        attrs |= MK_BATCH_ATTR_TRANSACTIONAL;
    if (o->control)
        attrs |= MK_BATCH_ATTR_CONTROL;

    size_t start = out->len;
    mk_buf_put_i64(out, o->baseOffset);
    mk_buf_put_i32(out, 0); /* batchLength, patched below */
    mk_buf_put_i32(out, o->partitionLeaderEpoch);
    mk_buf_put_i8(out, MK_BATCH_MAGIC);
    mk_buf_put_u32(out, 0); /* crc, patched below */
    mk_buf_put_i16(out, attrs);
    mk_buf_put_i32(out, count - 1);
    mk_buf_put_i64(out, recs[0].timestamp);
    mk_buf_put_i64(out, max_ts);
    mk_buf_put_i64(out, o->producerId);
    mk_buf_put_i16(out, o->producerEpoch);
    mk_buf_put_i32(out, o->baseSequence);
    mk_buf_put_i32(out, count);

    int rc = 0;
    mk_buf_t tmp;
    mk_buf_init(&tmp);
    mk_buf_t *rb = o->codec == MK_CODEC_NONE ? out : &tmp;
    for (int i = 0; i < count && rc == 0; i++) {
        if (!put_record(rb, &recs[i], i, recs[0].timestamp))
            rc = MK_ERR_TOO_LARGE;
    }
    if (rc == 0 && !mk_buf_ok(rb))
        rc = MK_ERR_NOMEM;
    if (rc == 0 && rb == &tmp)
        rc = mk_batch_codec_compress(o->codec, tmp.data, tmp.len, out);
    mk_buf_free(&tmp);
    if (rc == 0 && !mk_buf_ok(out))
        rc = MK_ERR_NOMEM;
    if (rc == 0 && out->len - start - MK_BATCH_LOG_OVERHEAD > INT32_MAX)
        rc = MK_ERR_TOO_LARGE;
    if (rc) {
        out->len = start;
        out->oom = false;
        return rc;
    }
    size_t size = out->len - start;
    mk_buf_patch_i32(out, start + MK_BATCH_OFF_LENGTH, (int32_t)(size - MK_BATCH_LOG_OVERHEAD));
    uint32_t crc = mk_crc32c(0, out->data + start + MK_BATCH_OFF_ATTRIBUTES, size - MK_BATCH_OFF_ATTRIBUTES);
    mk_buf_patch_u32(out, start + MK_BATCH_OFF_CRC, crc);
    return 0;
}

/* mk_batch_build_ex() with default options. */
int mk_batch_build(mk_buf_t *out, int codec, int64_t base_offset, const mk_batch_rec_in_t *recs, int count)
{
    mk_batch_build_opts_t o;
    mk_batch_build_opts_init(&o);
    o.codec = codec;
    o.baseOffset = base_offset;
    return mk_batch_build_ex(out, &o, recs, count);
}

/* One-record control batch (transaction marker); returns as
 * mk_batch_build_ex(). */
int mk_batch_build_control(mk_buf_t *out, const mk_batch_build_opts_t *o, bool commit, int32_t coordinator_epoch,
                           int64_t timestamp)
{
    if (!o)
        return MK_ERR_INVALID;
    uint8_t key[4], value[6];
    put_be16(key, 0);                    /* version */
    put_be16(key + 2, commit ? 1 : 0);   /* type: 0 abort, 1 commit */
    put_be16(value, 0);                  /* version */
    put_be32(value + 2, (uint32_t)coordinator_epoch);
    mk_batch_rec_in_t rec = {key, sizeof(key), value, sizeof(value), timestamp, 0, NULL, NULL, NULL};
    mk_batch_build_opts_t c = *o;
    c.codec = MK_CODEC_NONE;
    c.transactional = true;
    c.control = true;
    return mk_batch_build_ex(out, &c, &rec, 1);
}

/* ============================================================= compaction */

/* {version, type} of the one control record's key (batch.h).  Any thread;
 * uncompressed markers are read in place. */
typedef struct control_key_s {
    int type;
} control_key_t;

static int control_key_cb(const mk_record_t *rec, void *arg)
{
    control_key_t *ck = arg;
    if (rec->key_len < 4)
        return MK_ERR_CORRUPT;
    mk_reader_t r;
    mk_rd_init(&r, rec->key, (size_t)rec->key_len);
    (void)mk_rd_i16(&r); /* version */
    int16_t type = mk_rd_i16(&r);
    if (!mk_rd_ok(&r) || type < 0)
        return MK_ERR_CORRUPT;
    ck->type = type;
    return 1;
}

int mk_batch_control_type(const uint8_t *p, size_t n)
{
    mk_batch_hdr_t h;
    size_t size;
    if (frame_check(p, n, &h, &size, NULL, 0) || !mk_batch_hdr_is_control(&h) || h.recordCount < 1)
        return MK_ERR_CORRUPT;
    mk_buf_t scratch;
    mk_buf_init(&scratch);
    control_key_t ck = {-1};
    int rc = mk_batch_records_foreach(p, size, &scratch, 0, control_key_cb, &ck);
    mk_buf_free(&scratch);
    if (rc != 1)
        return rc < 0 ? rc : MK_ERR_CORRUPT;
    return ck.type;
}

/* The filter's walks: the first asks the caller about each record and
 * notes the answers in keep[]; the second re-encodes the kept records into
 * raw, timestamps against base_ts. */
typedef struct filter_walk_s {
    mk_batch_keep_cb cb;
    void *arg;
    int64_t base_offset, base_ts;
    mk_buf_t *keep;            /* one byte per record: 1 kept */
    mk_buf_t *raw;
    int32_t kept, dropped, i;
    bool tombstone;            /* a kept record has a null value */
    int64_t max_ts;
    int err;
} filter_walk_t;

static int filter_decide_cb(const mk_record_t *rec, void *arg)
{
    filter_walk_t *f = arg;
    int keep = f->cb(rec, f->arg);
    if (keep < 0) {
        f->err = keep;
        return keep;
    }
    mk_buf_put_i8(f->keep, keep ? 1 : 0);
    if (!keep) {
        f->dropped++;
        return 0;
    }
    f->kept++;
    f->max_ts = MK_MAX(f->max_ts, rec->timestamp);
    if (rec->value_len < 0)
        f->tombstone = true;
    return 0;
}

static int filter_encode_cb(const mk_record_t *rec, void *arg)
{
    filter_walk_t *f = arg;
    int32_t i = f->i++;
    if ((size_t)i >= f->keep->len || !f->keep->data[i])
        return 0;
    int64_t ts_delta = (int64_t)((uint64_t)rec->timestamp - (uint64_t)f->base_ts);
    int64_t off_delta = rec->offset - f->base_offset;
    uint64_t body = 1 + mk_varint_len(ts_delta) + mk_varint_len(off_delta);
    body += mk_varint_len(rec->key_len) + (uint64_t)MK_MAX(rec->key_len, 0);
    body += mk_varint_len(rec->value_len) + (uint64_t)MK_MAX(rec->value_len, 0);
    body += mk_varint_len(rec->header_count) + rec->headers_len;
    if (body > INT32_MAX) {
        f->err = MK_ERR_TOO_LARGE;
        return f->err;
    }
    mk_buf_t *b = f->raw;
    mk_buf_put_varint(b, (int64_t)body);
    mk_buf_put_i8(b, rec->attributes);
    mk_buf_put_varint(b, ts_delta);
    mk_buf_put_varint(b, off_delta);
    mk_buf_put_varint(b, rec->key_len);
    if (rec->key_len > 0)
        mk_buf_put(b, rec->key, (size_t)rec->key_len);
    mk_buf_put_varint(b, rec->value_len);
    if (rec->value_len > 0)
        mk_buf_put(b, rec->value, (size_t)rec->value_len);
    mk_buf_put_varint(b, rec->header_count);
    if (rec->headers_len)
        mk_buf_put(b, rec->headers, rec->headers_len);
    return 0;
}

/* The cleaner's rewrite of one batch (batch.h): one walk decides and
 * re-encodes; the header is written from the original with the changed
 * fields, the records compressed again with the batch's codec, the length
 * and the CRC patched last.  Any thread. */
int mk_batch_filter(const uint8_t *p, size_t n, int64_t delete_horizon_ms, bool keep_empty, mk_buf_t *scratch,
                    size_t max_uncompressed, mk_batch_keep_cb cb, void *arg, mk_buf_t *out,
                    mk_batch_filter_result_t *res)
{
    memset(res, 0, sizeof(*res));
    mk_batch_hdr_t h;
    size_t size;
    const uint8_t *recs;
    size_t len;
    int rc = batch_records_open(p, n, scratch, max_uncompressed, &h, &size, &recs, &len);
    if (rc)
        return rc;
    mk_buf_t raw, keep;
    mk_buf_init(&raw);
    mk_buf_init(&keep);
    filter_walk_t f = {cb, arg, h.baseOffset, h.baseTimestamp, &keep, &raw, 0, 0, 0, false, INT64_MIN, 0};
    rc = walk_records(recs, len, &h, MK_BATCH_VALIDATE_COMPACTED, filter_decide_cb, &f, NULL, 0);
    if (rc == 0 && !mk_buf_ok(&keep))
        rc = MK_ERR_NOMEM;
    bool add_horizon = delete_horizon_ms >= 0 && f.tombstone && !(h.attributes & MK_BATCH_ATTR_DELETE_HORIZON);
    if (add_horizon)
        f.base_ts = delete_horizon_ms;
    res->kept = f.kept;
    res->dropped = f.dropped;
    if (rc == 0 && (f.dropped || add_horizon) && f.kept)
        rc = walk_records(recs, len, &h, MK_BATCH_VALIDATE_COMPACTED, filter_encode_cb, &f, NULL, 0);
    if (rc == 0 && !mk_buf_ok(&raw))
        rc = MK_ERR_NOMEM;
    mk_buf_free(&keep);
    if (rc) {
        mk_buf_free(&raw);
        return f.err ? f.err : rc;
    }
    if (f.dropped == 0 && !add_horizon) {
        mk_buf_free(&raw);
        mk_buf_put(out, p, size);
        if (!mk_buf_ok(out))
            return MK_ERR_NOMEM;
        res->written = true;
        return 0;
    }
    if (f.kept == 0 && !keep_empty) {
        mk_buf_free(&raw);
        return 0;
    }
    int codec = f.kept ? mk_batch_hdr_codec(&h) : MK_CODEC_NONE;
    int16_t attrs = (int16_t)((h.attributes & ~MK_BATCH_ATTR_CODEC_MASK) | codec);
    if (add_horizon)
        attrs |= MK_BATCH_ATTR_DELETE_HORIZON;
    bool create_time = !(h.attributes & MK_BATCH_ATTR_LOG_APPEND_TIME);
    int64_t max_ts = create_time && f.kept ? f.max_ts : h.maxTimestamp;
    size_t start = out->len;
    mk_buf_put_i64(out, h.baseOffset);
    mk_buf_put_i32(out, 0); /* batchLength, patched below */
    mk_buf_put_i32(out, h.partitionLeaderEpoch);
    mk_buf_put_i8(out, MK_BATCH_MAGIC);
    mk_buf_put_u32(out, 0); /* crc, patched below */
    mk_buf_put_i16(out, attrs);
    mk_buf_put_i32(out, h.lastOffsetDelta);
    mk_buf_put_i64(out, f.base_ts);
    mk_buf_put_i64(out, max_ts);
    mk_buf_put_i64(out, h.producerId);
    mk_buf_put_i16(out, h.producerEpoch);
    mk_buf_put_i32(out, h.baseSequence);
    mk_buf_put_i32(out, f.kept);
    if (codec == MK_CODEC_NONE)
        mk_buf_put(out, raw.data, raw.len);
    else
        rc = mk_batch_codec_compress(codec, raw.data, raw.len, out);
    mk_buf_free(&raw);
    if (rc == 0 && !mk_buf_ok(out))
        rc = MK_ERR_NOMEM;
    if (rc == 0 && out->len - start - MK_BATCH_LOG_OVERHEAD > INT32_MAX)
        rc = MK_ERR_TOO_LARGE;
    if (rc) {
        out->len = start;
        out->oom = false;
        return rc;
    }
    size_t nsize = out->len - start;
    mk_buf_patch_i32(out, start + MK_BATCH_OFF_LENGTH, (int32_t)(nsize - MK_BATCH_LOG_OVERHEAD));
    mk_buf_patch_u32(out, start + MK_BATCH_OFF_CRC, mk_batch_crc_compute(out->data + start, nsize));
    res->written = true;
    res->rewritten = true;
    return 0;
}
