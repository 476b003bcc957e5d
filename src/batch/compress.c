/*
 * compress.c -- the four Kafka compression codecs, as framed on the wire.
 *
 * Kafka compresses the records section of a batch as one blob.  Each codec
 * has its own framing, fixed by what the Java client reads and writes:
 *
 *   gzip    RFC 1952 gzip members (inflate with windowBits 15+32, so a zlib
 *           stream is accepted too; several members are concatenated).
 *   snappy  Xerial's Java framing, which the Java client, kafka-python and
 *           kafkajs write (and which we write):
 *             off size
 *               0    8  magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
 *               8    4  version (be32, 1)
 *              12    4  min compatible version (be32, 1)
 *              16    -  blocks: be32 length + a raw snappy block
 *           or, when the magic is absent, a single raw snappy block --
 *           what librdkafka writes (seen in testdata/batches/librdkafka_snappy.bin).
 *   lz4     the LZ4 frame format (one or more frames).
 *   zstd    zstd frames; streamed because a streaming compressor (the Java
 *           client's zstd-jni) does not record the content size.
 *
 * Invariants:
 *   - Every decompressor is bounded: it never appends more than max_out
 *     bytes.  It offers the decoder at most max_out + 1 bytes of room in
 *     total, so "exactly max_out" and "more than max_out" are told apart
 *     without a second pass.
 *   - Input bytes are untrusted; the libraries used are all safe on
 *     malicious input, and every length read from framing is checked
 *     against what remains.
 *   - On error out->len is restored, so a failed call leaves no partial
 *     output behind.
 *   - Decompression contexts are cached per thread (pthread key with a
 *     destructor) because creating a zstd or zlib context costs more than
 *     decompressing a small batch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "batch/batch.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* ============================================================ thread cache */

typedef struct codec_tls_s {
    ZSTD_DCtx *zstd;
    LZ4F_dctx *lz4;
    z_stream zs;
    bool zs_ready;
} codec_tls_t;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_key_ok;

static void tls_destroy(void *p)
{
    codec_tls_t *t = p;
    if (!t)
        return;
    ZSTD_freeDCtx(t->zstd);
    if (t->lz4)
        LZ4F_freeDecompressionContext(t->lz4);
    if (t->zs_ready)
        inflateEnd(&t->zs);
    mk_free(t);
}

static void tls_make_key(void) { tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0; }

static codec_tls_t *tls_get(void)
{
    pthread_once(&tls_once, tls_make_key);
    if (!tls_key_ok)
        return NULL;
    codec_tls_t *t = pthread_getspecific(tls_key);
    if (t)
        return t;
    t = mk_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (pthread_setspecific(tls_key, t) != 0) {
        mk_free(t);
        return NULL;
    }
    return t;
}

/* Frees the calling thread's cached contexts.  Any thread. */
void mk_batch_codec_thread_release(void)
{
    pthread_once(&tls_once, tls_make_key);
    if (!tls_key_ok)
        return;
    codec_tls_t *t = pthread_getspecific(tls_key);
    if (!t)
        return;
    pthread_setspecific(tls_key, NULL);
    tls_destroy(t);
}

/* ========================================================== bounded output */

/* Tracks one decompression call's output: out grows, never past limit + 1
 * bytes appended (the +1 proves an overflow). */
typedef struct sink_s {
    mk_buf_t *out;
    size_t start;     /* out->len when the call began */
    size_t limit;     /* max bytes this call may append */
} sink_t;

static size_t sink_produced(const sink_t *s) { return s->out->len - s->start; }

/* Make room for the decoder's next write.  Returns the bytes it may write
 * now (> 0), 0 when the budget (limit + 1) is spent, or SIZE_MAX on OOM.
 * want is a size hint for the first reservation. */
static size_t sink_room(sink_t *s, size_t want)
{
    size_t budget = s->limit + 1 - sink_produced(s);
    if (budget == 0)
        return 0;
    mk_buf_t *b = s->out;
    size_t avail = b->cap - b->len;
    if (avail < 4096 && avail < budget) {
        /* grow geometrically: at least the hint, at least what was produced */
        size_t grow = MK_MAX(want, MK_MAX(sink_produced(s), (size_t)16384));
        grow = MK_MIN(grow, budget);
        if (!mk_buf_reserve(b, grow))
            return SIZE_MAX;
        avail = b->cap - b->len;
    }
    return MK_MIN(avail, budget);
}

static int sink_fail(sink_t *s, int err)
{
    s->out->len = s->start;
    return err;
}

static size_t clamp_limit(size_t max_out)
{
    if (max_out == 0)
        max_out = MK_BATCH_MAX_UNCOMPRESSED_DEFAULT;
    /* records are addressed by i32 lengths; nothing legal is bigger */
    if (max_out > (size_t)INT32_MAX)
        max_out = (size_t)INT32_MAX;
    return max_out;
}

/* ==================================================================== gzip */

static int gzip_decompress(const uint8_t *in, size_t n, sink_t *s)
{
    codec_tls_t *t = tls_get();
    if (!t)
        return MK_ERR_NOMEM;
    z_stream *zs = &t->zs;
    if (!t->zs_ready) {
        memset(zs, 0, sizeof(*zs));
        if (inflateInit2(zs, 15 + 32) != Z_OK)
            return MK_ERR_NOMEM;
        t->zs_ready = true;
    } else if (inflateReset(zs) != Z_OK) {
        return MK_ERR_CORRUPT;
    }
    if (n > UINT_MAX)
        return MK_ERR_TOO_LARGE;
    /* ISIZE (last 4 bytes, little-endian) sizes the first reservation; it
     * is only a hint, the sink still enforces the bound */
    size_t hint = n * 4;
    if (n >= 18) {
        const uint8_t *z = in + n - 4;
        hint = (size_t)z[0] | (size_t)z[1] << 8 | (size_t)z[2] << 16 | (size_t)z[3] << 24;
        hint = MK_MIN(hint, n * 1032); /* deflate cannot do better than ~1032:1 */
    }
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)n;
    for (;;) {
        size_t room = sink_room(s, hint);
        if (room == SIZE_MAX)
            return MK_ERR_NOMEM;
        if (room == 0)
            return MK_ERR_TOO_LARGE;
        if (room > UINT_MAX)
            room = UINT_MAX;
        zs->next_out = s->out->data + s->out->len;
        zs->avail_out = (uInt)room;
        uInt in_before = zs->avail_in;
        int rc = inflate(zs, Z_NO_FLUSH);
        s->out->len += room - zs->avail_out;
        if (sink_produced(s) > s->limit)
            return MK_ERR_TOO_LARGE;
        if (rc == Z_STREAM_END) {
            if (zs->avail_in == 0)
                return 0;
            /* another gzip member follows */
            if (inflateReset(zs) != Z_OK)
                return MK_ERR_CORRUPT;
            continue;
        }
        if (rc == Z_MEM_ERROR)
            return MK_ERR_NOMEM;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return MK_ERR_CORRUPT;
        if (zs->avail_in == 0 && zs->avail_out > 0)
            return MK_ERR_CORRUPT; /* stream ends mid-member */
        if (zs->avail_in == in_before && zs->avail_out == room)
            return MK_ERR_CORRUPT; /* no progress */
    }
}

static int gzip_compress(const uint8_t *in, size_t n, mk_buf_t *out)
{
    if (n > UINT_MAX / 2)
        return MK_ERR_TOO_LARGE;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MK_ERR_NOMEM;
    size_t bound = deflateBound(&zs, (uLong)n);
    if (!mk_buf_reserve(out, bound)) {
        deflateEnd(&zs);
        return MK_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t produced = bound - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return MK_ERR_NOMEM;
    out->len += produced;
    return 0;
}

/* ================================================================== snappy */

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_BLOCK_SIZE 32768

/* One raw snappy block appended to the sink. */
static int snappy_raw_block(const uint8_t *in, size_t n, sink_t *s)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)in, n, &ulen) != SNAPPY_OK)
        return MK_ERR_CORRUPT;
    if (ulen > s->limit - sink_produced(s))
        return MK_ERR_TOO_LARGE;
    if (!mk_buf_reserve(s->out, MK_MAX(ulen, (size_t)1)))
        return MK_ERR_NOMEM;
    size_t got = ulen;
    if (snappy_uncompress((const char *)in, n, (char *)s->out->data + s->out->len, &got) != SNAPPY_OK ||
        got != ulen)
        return MK_ERR_CORRUPT;
    s->out->len += got;
    return 0;
}

static int snappy_decompress(const uint8_t *in, size_t n, sink_t *s)
{
    if (n < XERIAL_HEADER_SIZE || memcmp(in, xerial_magic, sizeof(xerial_magic)) != 0)
        return snappy_raw_block(in, n, s);
    mk_reader_t r;
    mk_rd_init(&r, in + XERIAL_HEADER_SIZE, n - XERIAL_HEADER_SIZE);
    while (mk_rd_remaining(&r) > 0) {
        uint32_t blen = mk_rd_u32(&r);
        const uint8_t *blk = mk_rd_bytes(&r, blen);
        if (!mk_rd_ok(&r))
            return MK_ERR_CORRUPT;
        int rc = snappy_raw_block(blk, blen, s);
        if (rc)
            return rc;
    }
    return 0;
}

static int snappy_compress_xerial(const uint8_t *in, size_t n, mk_buf_t *out)
{
    mk_buf_put(out, xerial_magic, sizeof(xerial_magic));
    mk_buf_put_i32(out, 1);
    mk_buf_put_i32(out, 1);
    for (size_t off = 0; off < n; off += XERIAL_BLOCK_SIZE) {
        size_t len = MK_MIN((size_t)XERIAL_BLOCK_SIZE, n - off);
        size_t max = snappy_max_compressed_length(len);
        if (!mk_buf_reserve(out, 4 + max))
            return MK_ERR_NOMEM;
        size_t at = out->len;
        out->len += 4;
        size_t clen = max;
        if (snappy_compress((const char *)in + off, len, (char *)out->data + out->len, &clen) != SNAPPY_OK)
            return MK_ERR_NOMEM;
        out->len += clen;
        mk_buf_patch_u32(out, at, (uint32_t)clen);
    }
    return mk_buf_ok(out) ? 0 : MK_ERR_NOMEM;
}

/* ===================================================================== lz4 */

static int lz4_decompress(const uint8_t *in, size_t n, sink_t *s)
{
    codec_tls_t *t = tls_get();
    if (!t)
        return MK_ERR_NOMEM;
    if (!t->lz4) {
        if (LZ4F_isError(LZ4F_createDecompressionContext(&t->lz4, LZ4F_VERSION))) {
            t->lz4 = NULL;
            return MK_ERR_NOMEM;
        }
    } else {
        LZ4F_resetDecompressionContext(t->lz4);
    }
    size_t pos = 0;
    size_t hint = n * 4;
    /* the frame header may carry the content size: reserve it in one go */
    LZ4F_frameInfo_t info;
    size_t hsz = n;
    size_t rc = LZ4F_getFrameInfo(t->lz4, &info, in, &hsz);
    if (LZ4F_isError(rc))
        return MK_ERR_CORRUPT;
    pos = hsz;
    if (info.contentSize > 0 && info.contentSize <= s->limit)
        hint = (size_t)MK_MIN(info.contentSize, (unsigned long long)n * 256); /* lz4's best ratio is ~255:1 */
    bool frame_done = false;
    while (pos < n || !frame_done) {
        size_t room = sink_room(s, hint);
        if (room == SIZE_MAX)
            return MK_ERR_NOMEM;
        if (room == 0)
            return MK_ERR_TOO_LARGE;
        size_t dsz = room, ssz = n - pos;
        rc = LZ4F_decompress(t->lz4, s->out->data + s->out->len, &dsz, in + pos, &ssz, NULL);
        if (LZ4F_isError(rc))
            return MK_ERR_CORRUPT;
        pos += ssz;
        s->out->len += dsz;
        if (sink_produced(s) > s->limit)
            return MK_ERR_TOO_LARGE;
        frame_done = rc == 0;
        /* a context that finished a frame starts the next one by itself */
        if (!frame_done && pos == n && dsz < room)
            return MK_ERR_CORRUPT; /* input ends mid-frame */
        if (ssz == 0 && dsz == 0)
            return MK_ERR_CORRUPT; /* no progress */
    }
    return 0;
}

static int lz4_compress(const uint8_t *in, size_t n, mk_buf_t *out)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    size_t bound = LZ4F_compressFrameBound(n, &prefs);
    if (!mk_buf_reserve(out, bound))
        return MK_ERR_NOMEM;
    size_t rc = LZ4F_compressFrame(out->data + out->len, bound, in, n, &prefs);
    if (LZ4F_isError(rc))
        return MK_ERR_NOMEM;
    out->len += rc;
    return 0;
}

/* ==================================================================== zstd */

/* Largest window a frame may ask for: enough for any legal batch under the
 * bound and for what common producer levels use, but not the library's
 * 128 MiB default that a 20-byte hostile frame could make us allocate. */
static int zstd_window_log(size_t limit)
{
    int wlog = 24;
    while (wlog < 27 && ((size_t)1 << wlog) < limit)
        wlog++;
    return wlog;
}

static int zstd_decompress(const uint8_t *in, size_t n, sink_t *s)
{
    codec_tls_t *t = tls_get();
    if (!t)
        return MK_ERR_NOMEM;
    if (!t->zstd && !(t->zstd = ZSTD_createDCtx()))
        return MK_ERR_NOMEM;
    ZSTD_DCtx *d = t->zstd;
    ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, zstd_window_log(s->limit));

    /* one frame that states its size (librdkafka, Go clients): decode
     * straight into place with no window buffer */
    unsigned long long csize = ZSTD_getFrameContentSize(in, n);
    if (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize != ZSTD_CONTENTSIZE_ERROR && ZSTD_findFrameCompressedSize(in, n) == n) {
        if (csize > s->limit)
            return MK_ERR_TOO_LARGE;
        if (!mk_buf_reserve(s->out, MK_MAX((size_t)csize, (size_t)1)))
            return MK_ERR_NOMEM;
        size_t rc = ZSTD_decompressDCtx(d, s->out->data + s->out->len, (size_t)csize, in, n);
        if (ZSTD_isError(rc) || rc != csize)
            return MK_ERR_CORRUPT;
        s->out->len += rc;
        return 0;
    }

    ZSTD_inBuffer ib = {in, n, 0};
    size_t hint = MK_MIN(n * 4, s->limit);
    for (;;) {
        size_t room = sink_room(s, hint);
        if (room == SIZE_MAX)
            return MK_ERR_NOMEM;
        if (room == 0)
            return MK_ERR_TOO_LARGE;
        ZSTD_outBuffer ob = {s->out->data + s->out->len, room, 0};
        size_t in_before = ib.pos;
        size_t rc = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(rc)) {
            if (ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge)
                return MK_ERR_TOO_LARGE;
            if (ZSTD_getErrorCode(rc) == ZSTD_error_memory_allocation)
                return MK_ERR_NOMEM;
            return MK_ERR_CORRUPT;
        }
        s->out->len += ob.pos;
        if (sink_produced(s) > s->limit)
            return MK_ERR_TOO_LARGE;
        if (rc == 0 && ib.pos == ib.size)
            return 0; /* last frame complete */
        if (ib.pos == ib.size && ob.pos < ob.size)
            return MK_ERR_CORRUPT; /* input ends mid-frame */
        if (ib.pos == in_before && ob.pos == 0)
            return MK_ERR_CORRUPT; /* no progress */
    }
}

static int zstd_compress(const uint8_t *in, size_t n, mk_buf_t *out)
{
    size_t bound = ZSTD_compressBound(n);
    if (ZSTD_isError(bound))
        return MK_ERR_TOO_LARGE;
    if (!mk_buf_reserve(out, bound))
        return MK_ERR_NOMEM;
    size_t rc = ZSTD_compress(out->data + out->len, bound, in, n, 3);
    if (ZSTD_isError(rc))
        return MK_ERR_NOMEM;
    out->len += rc;
    return 0;
}

/* ================================================================= dispatch */

/* Bounded decompression appending to out (contract in batch.h).  Any
 * thread (uses this thread's cached contexts); blocking for big inputs. */
int mk_batch_codec_decompress(int codec, const uint8_t *in, size_t n, mk_buf_t *out, size_t max_out)
{
    sink_t s = {out, out->len, clamp_limit(max_out)};
    if (out->oom)
        return MK_ERR_NOMEM;
    if (codec == MK_CODEC_NONE) {
        if (n > s.limit)
            return MK_ERR_TOO_LARGE;
        mk_buf_put(out, in, n);
        return mk_buf_ok(out) ? 0 : sink_fail(&s, MK_ERR_NOMEM);
    }
    if (codec < MK_CODEC_NONE || codec > MK_CODEC_ZSTD)
        return MK_ERR_UNSUPPORTED;
    if (n == 0)
        return MK_ERR_CORRUPT; /* every codec frames even empty input */
    int rc;
    switch (codec) {
    case MK_CODEC_GZIP: rc = gzip_decompress(in, n, &s); break;
    case MK_CODEC_SNAPPY: rc = snappy_decompress(in, n, &s); break;
    case MK_CODEC_LZ4: rc = lz4_decompress(in, n, &s); break;
    default: rc = zstd_decompress(in, n, &s); break;
    }
    if (rc == 0 && !mk_buf_ok(out))
        rc = MK_ERR_NOMEM;
    if (rc) {
        /* a failed mk_buf_reserve set oom; the buffer itself is intact */
        out->oom = false;
        return sink_fail(&s, rc);
    }
    return 0;
}

/* Default-level compression appending to out; out->len restored on error.
 * Any thread. */
int mk_batch_codec_compress(int codec, const uint8_t *in, size_t n, mk_buf_t *out)
{
    if (out->oom)
        return MK_ERR_NOMEM;
    if (n > (size_t)INT32_MAX)
        return MK_ERR_TOO_LARGE;
    size_t start = out->len;
    int rc;
    switch (codec) {
    case MK_CODEC_NONE:
        mk_buf_put(out, in, n);
        rc = 0;
        break;
    case MK_CODEC_GZIP: rc = gzip_compress(in, n, out); break;
    case MK_CODEC_SNAPPY: rc = snappy_compress_xerial(in, n, out); break;
    case MK_CODEC_LZ4: rc = lz4_compress(in, n, out); break;
    case MK_CODEC_ZSTD: rc = zstd_compress(in, n, out); break;
    default: return MK_ERR_UNSUPPORTED;
    }
    if (rc == 0 && !mk_buf_ok(out))
        rc = MK_ERR_NOMEM;
    if (rc) {
        out->oom = false;
        out->len = start;
    }
    return rc;
}

/* Static string; never NULL. */
const char *mk_batch_codec_name(int codec)
{
    switch (codec) {
    case MK_CODEC_NONE: return "none";
    case MK_CODEC_GZIP: return "gzip";
    case MK_CODEC_SNAPPY: return "snappy";
    case MK_CODEC_LZ4: return "lz4";
    case MK_CODEC_ZSTD: return "zstd";
    }
    return "unknown";
}
