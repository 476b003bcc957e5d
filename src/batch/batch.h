/*
 * batch.h -- L1 of minikora: Kafka record batches (magic v2), the one
 * integrity validator, record iteration and the compression codecs.
 *
 * A record batch is the unit Kafka stores and ships: producers send batches,
 * the log appends them unchanged (after rewriting baseOffset and
 * partitionLeaderEpoch, which the CRC does not cover), consumers fetch them
 * back byte for byte.  So this module never re-encodes a batch it did not
 * build; it validates, rewrites the few broker-owned fields in place, and
 * iterates records for the few places that need them (compaction, tools,
 * tests).
 *
 * ------------------------------------------------------------------ layout
 * Every integer is big-endian.  Offsets are from the start of the batch.
 *
 *   off  size  field                 notes
 *   ---  ----  --------------------  -----------------------------------------
 *     0     8  baseOffset            i64; assigned by the leader on append
 *     8     4  batchLength           i32; bytes after this field (total - 12)
 *    12     4  partitionLeaderEpoch  i32; assigned by the leader on append
 *    16     1  magic                 i8; 2 (0/1 are the legacy message sets)
 *    17     4  crc                   u32; CRC-32C of bytes [21, 12+batchLength)
 *    21     2  attributes            i16; see below
 *    23     4  lastOffsetDelta       i32; offset of last record - baseOffset
 *    27     8  baseTimestamp         i64; timestamp of the first record
 *    35     8  maxTimestamp          i64; largest record timestamp (or the
 *                                         broker time under LogAppendTime)
 *    43     8  producerId            i64; -1 when not idempotent
 *    51     2  producerEpoch         i16; -1 when not idempotent
 *    53     4  baseSequence          i32; -1 when not idempotent
 *    57     4  recordCount           i32; number of records that follow
 *    61     -  records               recordCount records, possibly compressed
 *                                    as one blob by the attributes' codec
 *
 * attributes:  bits 0-2  codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
 *              bit  3    timestamp type: 1 = LogAppendTime (maxTimestamp
 *                        is every record's timestamp), 0 = CreateTime
 *              bit  4    transactional
 *              bit  5    control (transaction markers)
 *              bit  6    has delete horizon (compaction; carried through)
 *
 * Each record (after decompression), zig-zag varints unless noted:
 *
 *   length          varint  bytes of the record after this field
 *   attributes      i8      unused, 0
 *   timestampDelta  varint  (64-bit) timestamp - baseTimestamp
 *   offsetDelta     varint  offset - baseOffset
 *   keyLength       varint  -1 = null key
 *   key             bytes
 *   valueLength     varint  -1 = null value
 *   value           bytes
 *   headerCount     varint  >= 0
 *   headers         headerCount x { keyLength varint (>= 0), key bytes,
 *                                   valueLength varint (-1 null), value }
 *
 * ------------------------------------------------------------- threading
 * Every function here is pure over its arguments and may run on any
 * thread.  The codecs keep one decompression context per thread (freed at
 * thread exit or by mk_batch_codec_thread_release()).  Decompressing a large batch
 * is blocking work: the produce path should run deep validation on a worker.
 */
#ifndef MK_BATCH_H
#define MK_BATCH_H

#include "base/base.h"

/* ================================================================ layout */

#define MK_BATCH_HEADER_SIZE 61
#define MK_BATCH_LOG_OVERHEAD 12        /* baseOffset + batchLength */
#define MK_BATCH_MAGIC 2

#define MK_BATCH_OFF_BASE_OFFSET 0
#define MK_BATCH_OFF_LENGTH 8
#define MK_BATCH_OFF_LEADER_EPOCH 12
#define MK_BATCH_OFF_MAGIC 16
#define MK_BATCH_OFF_CRC 17
#define MK_BATCH_OFF_ATTRIBUTES 21
#define MK_BATCH_OFF_LAST_OFFSET_DELTA 23
#define MK_BATCH_OFF_BASE_TIMESTAMP 27
#define MK_BATCH_OFF_MAX_TIMESTAMP 35
#define MK_BATCH_OFF_PRODUCER_ID 43
#define MK_BATCH_OFF_PRODUCER_EPOCH 51
#define MK_BATCH_OFF_BASE_SEQUENCE 53
#define MK_BATCH_OFF_RECORD_COUNT 57
#define MK_BATCH_OFF_RECORDS 61

#define MK_BATCH_ATTR_CODEC_MASK 0x07
#define MK_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define MK_BATCH_ATTR_TRANSACTIONAL 0x10
#define MK_BATCH_ATTR_CONTROL 0x20
#define MK_BATCH_ATTR_DELETE_HORIZON 0x40

/* Default bound on decompressed bytes when a caller passes 0. */
#define MK_BATCH_MAX_UNCOMPRESSED_DEFAULT ((size_t)64 << 20)

enum { MK_CODEC_NONE = 0, MK_CODEC_GZIP = 1, MK_CODEC_SNAPPY = 2, MK_CODEC_LZ4 = 3, MK_CODEC_ZSTD = 4 };

/* ================================================================ header */

/* The 61-byte batch header, fields spelled as Kafka spells them. */
typedef struct mk_batch_hdr_s {
    int64_t baseOffset;
    int32_t batchLength;
    int32_t partitionLeaderEpoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t lastOffsetDelta;
    int64_t baseTimestamp;
    int64_t maxTimestamp;
    int64_t producerId;
    int16_t producerEpoch;
    int32_t baseSequence;
    int32_t recordCount;
} mk_batch_hdr_t;

/* Parse the 61-byte header at p (n bytes available; only the header is
 * read, the body need not be present).  Checks magic == 2 and batchLength
 * >= 49.  Returns 0; MK_ERR_TRUNCATED if n < 61; MK_ERR_UNSUPPORTED for the
 * legacy magic 0/1; MK_ERR_CORRUPT otherwise.  out is written only on 0. */
int mk_batch_hdr_parse(const uint8_t *p, size_t n, mk_batch_hdr_t *out);

/* Size in bytes of the whole batch at p (12 + batchLength), so a caller can
 * walk a log segment or a produce payload.  Needs only 12 bytes; the result
 * may exceed n.  Returns MK_ERR_TRUNCATED if n < 12, MK_ERR_CORRUPT if the
 * length is negative or the total would be under 61 bytes. */
int64_t mk_batch_size(const uint8_t *p, size_t n);

static inline int mk_batch_hdr_codec(const mk_batch_hdr_t *h) { return h->attributes & MK_BATCH_ATTR_CODEC_MASK; }
static inline bool mk_batch_hdr_is_control(const mk_batch_hdr_t *h) { return (h->attributes & MK_BATCH_ATTR_CONTROL) != 0; }
static inline bool mk_batch_hdr_is_transactional(const mk_batch_hdr_t *h) { return (h->attributes & MK_BATCH_ATTR_TRANSACTIONAL) != 0; }
/* Offset of the last record (wrapping arithmetic; header values are untrusted). */
static inline int64_t mk_batch_hdr_last_offset(const mk_batch_hdr_t *h)
{
    return (int64_t)((uint64_t)h->baseOffset + (uint64_t)(int64_t)h->lastOffsetDelta);
}

/* ============================================================= validator */

/* Flags for mk_batch_validate_ex(). */
enum {
    /* Decompress (bounded) and walk every record. */
    MK_BATCH_VALIDATE_DEEP = 1,
    /* Accept a batch that compaction has thinned: recordCount may be below
     * lastOffsetDelta + 1 (even 0) and offsetDeltas need only increase
     * strictly up to lastOffsetDelta.  Never for produce. */
    MK_BATCH_VALIDATE_COMPACTED = 2,
    /* Every record must have a key (a compacted topic's produce path, as
     * Kafka's validator): a null key is MK_ERR_INVALID.  Needs DEEP. */
    MK_BATCH_VALIDATE_KEYED = 4,
};

/* The integrity validator used by produce, log recovery, the scrubber and
 * tiering.  Validates the ONE batch at the start of [p, p+n); bytes past its
 * end are not examined (walk several batches with mk_batch_size()).
 *
 * Always (cheap: header + one CRC pass): header parse, magic 2, the batch
 * fits in n, CRC-32C, known codec, recordCount >= 1 and lastOffsetDelta ==
 * recordCount - 1, and for uncompressed batches recordCount is not larger
 * than the record bytes could hold.
 *
 * With deep: decompresses into a private buffer (output bounded by
 * max_uncompressed; 0 means MK_BATCH_MAX_UNCOMPRESSED_DEFAULT) and walks
 * every record: exact record lengths, offsetDelta == i for record i,
 * key/value/header lengths in range, header count bounded by the bytes
 * left, exactly recordCount records and no trailing bytes.
 *
 * Returns 0, or MK_ERR_CORRUPT (malformed), MK_ERR_CRC (checksum),
 * MK_ERR_TOO_LARGE (decompressed size over the bound), MK_ERR_UNSUPPORTED
 * (codec 5-7 or legacy magic 0/1), MK_ERR_NOMEM; writes a short reason into
 * why (NUL-terminated, truncated to why_len; why may be NULL). */
int mk_batch_validate(const uint8_t *p, size_t n, bool deep, size_t max_uncompressed, char *why, size_t why_len);

/* mk_batch_validate() with MK_BATCH_VALIDATE_* flags and an optional
 * caller-owned scratch buffer for decompression (reset, then reused, so a
 * worker thread can validate many batches without allocating; NULL = use a
 * private buffer freed before returning). */
int mk_batch_validate_ex(const uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                         char *why, size_t why_len);

/* The rules between two neighbouring batches of one log, the second half of
 * the one validator for a stored log (the scrubber, `minikora verify`):
 * cur's offsets are in range, it starts right after prev (offsets in
 * order and contiguous, no overlap and no gap) and its
 * partitionLeaderEpoch is not below prev's.  prev NULL (the first batch
 * seen) checks cur alone.  Returns 0 or MK_ERR_CORRUPT with a reason in
 * why.  Pure; any thread. */
int mk_batch_validate_next(const mk_batch_hdr_t *prev, const mk_batch_hdr_t *cur, char *why, size_t why_len);

/* ======================================================= in-place rewrites */

/* Rewrite baseOffset / partitionLeaderEpoch in place (neither is covered by
 * the CRC).  p must hold at least the 61-byte header. */
void mk_batch_set_base_offset(uint8_t *p, int64_t base_offset);
void mk_batch_set_leader_epoch(uint8_t *p, int32_t epoch);

/* For message.timestamp.type=LogAppendTime: set maxTimestamp to ts, set the
 * LogAppendTime attribute bit and recompute the CRC.  p must be a validated
 * batch of n bytes or more; if the batch does not fit in n nothing is
 * changed. */
void mk_batch_set_log_append_time(uint8_t *p, size_t n, int64_t ts);

/* For code that computes or checks the CRC itself: CRC-32C of bytes
 * [21, size) of the batch at p (the range the crc field covers).  p must
 * hold size >= 61 bytes. */
uint32_t mk_batch_crc_compute(const uint8_t *p, size_t size);

/* Recompute the CRC of the size-byte batch at p (size >= 61) and store it,
 * after a rewrite of a covered field. */
void mk_batch_set_crc(uint8_t *p, size_t size);

/* ================================================================== views */

/* One batch of a record set -- a produce payload, a replica fetch, a log
 * segment -- as one walk over the set sees it: where it is, how big it is,
 * and its parsed header.  "Parse once": the walk (or the validator pass of
 * the produce path) fills an array of views, and every later layer (the
 * log's offset assignment, its index and epoch bookkeeping) reads the
 * views instead of parsing the bytes again.  The mk_batch_view_set_*
 * writers below keep a view and its bytes in step. */
typedef struct mk_batch_view_s {
    uint64_t pos;          /* offset of the batch from the start of its set
                            * (or its file position, for the log's scanner) */
    uint32_t size;         /* whole batch: 12 + batchLength (<= INT32_MAX + 12) */
    mk_batch_hdr_t hdr;    /* its header, as in the bytes */
} mk_batch_view_t;

/* mk_batch_hdr_parse() of the header at p (n bytes available; the body
 * need not be present) plus the size; out->pos = 0.  Same returns. */
int mk_batch_view_parse(const uint8_t *p, size_t n, mk_batch_view_t *out);

/* One step of a walk over the len-byte set at set: parses the batch at
 * *pos into *out (out->pos = *pos) and moves *pos past it.  Returns 1, 0 at
 * the end (*pos == len), MK_ERR_TRUNCATED when the batch at *pos is not
 * whole, MK_ERR_CORRUPT / MK_ERR_UNSUPPORTED for a bad header; *pos and
 * *out are left alone on anything but 1. */
int mk_batch_view_next(const uint8_t *set, size_t len, size_t *pos, mk_batch_view_t *out);

/* One walk over the whole set: views[i] for its first cap batches, and
 * *count = how many whole batches it holds.  Every byte must belong to a
 * whole batch with a sound header (headers only: no CRC, no records).
 * Returns 0; MK_ERR_TOO_LARGE when *count > cap (views[0, cap) are filled
 * and the rest were checked: call again with room for *count); else the
 * first error of mk_batch_view_next(), with *count = the batches before
 * it.  Any thread, no allocation. */
int mk_batch_views_parse(const uint8_t *set, size_t len, mk_batch_view_t *views, size_t cap, size_t *count);

/* mk_batch_validate_ex() of the batch at the start of [p, p+n) that also
 * hands out its view (out->pos = 0; the caller sets pos), so the validator
 * pass of the produce path yields the views that mk_log_append_views()
 * takes.  *out is written only when 0 is returned. */
int mk_batch_validate_view(const uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                           mk_batch_view_t *out, char *why, size_t why_len);

/* The produce path's validator: mk_batch_validate_view() with
 * MK_BATCH_VALIDATE_DEEP over the writable batch at p, and then the one
 * header field Kafka's validator recomputes on append: for a CreateTime
 * batch, maxTimestamp becomes the largest record timestamp when it is not
 * that already (a producer may leave it -1: Sarama 1.22 does), and the CRC
 * is recomputed (*rewritten says so).  LogAppendTime batches are left to
 * mk_batch_view_set_log_append_time().  Offsets-by-time and retention read
 * maxTimestamp, so it must be true.  Same returns as the validator. */
int mk_batch_validate_append(uint8_t *p, size_t n, size_t max_uncompressed, mk_buf_t *scratch, mk_batch_view_t *out,
                             bool *rewritten, char *why, size_t why_len);
/* mk_batch_validate_append() with extra MK_BATCH_VALIDATE_* flags (DEEP is
 * implied): MK_BATCH_VALIDATE_KEYED for a compacted topic, which returns
 * MK_ERR_INVALID for a record without a key (Kafka: INVALID_RECORD). */
int mk_batch_validate_append_ex(uint8_t *p, size_t n, int flags, size_t max_uncompressed, mk_buf_t *scratch,
                                mk_batch_view_t *out, bool *rewritten, char *why, size_t why_len);

/* In-place writers for the fields the leader owns, over the batch that v
 * describes in set (its bytes at set + v->pos): the bytes and v->hdr are
 * rewritten alike.  base offset and leader epoch are outside the CRC; the
 * LogAppendTime writer sets maxTimestamp and the attribute bit and
 * recomputes the CRC (one pass over the batch). */
void mk_batch_view_set_base_offset(uint8_t *set, mk_batch_view_t *v, int64_t base_offset);
void mk_batch_view_set_leader_epoch(uint8_t *set, mk_batch_view_t *v, int32_t epoch);
void mk_batch_view_set_log_append_time(uint8_t *set, mk_batch_view_t *v, int64_t ts);

/* ============================================================== iteration */

/* One record as iteration hands it out.  Pointers point into the batch or
 * into the caller's scratch buffer and are valid until either changes. */
typedef struct mk_record_s {
    int64_t offset;        /* baseOffset + offsetDelta */
    int64_t timestamp;     /* baseTimestamp + delta, or maxTimestamp under LogAppendTime */
    int8_t attributes;
    const uint8_t *key;
    int32_t key_len;       /* -1 null */
    const uint8_t *value;
    int32_t value_len;     /* -1 null */
    int32_t header_count;
    const uint8_t *headers; /* raw header bytes; read with mk_batch_record_header_next() */
    size_t headers_len;
} mk_record_t;

/* Called once per record; return 0 to continue, non-zero to stop. */
typedef int (*mk_batch_record_cb)(const mk_record_t *rec, void *arg);

/* Iterate the records of one batch at p (n bytes available), in order.
 * Compressed records are decompressed into scratch (reset first; the caller
 * owns and frees it), bounded by max_uncompressed (0 = default).  Does not
 * check the CRC (validate first), but checks every record's framing as it
 * goes, so a corrupt record stops iteration with MK_ERR_CORRUPT after the
 * callback has already seen the good records before it.  Returns 0 when
 * every record was visited, the callback's non-zero value if it stopped, or
 * a negative MK_ERR_* (the callback is never called if the header or the
 * decompression fails). */
int mk_batch_records_foreach(const uint8_t *p, size_t n, mk_buf_t *scratch, size_t max_uncompressed,
                             mk_batch_record_cb cb, void *arg);

/* One record header. */
typedef struct mk_record_header_s {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;     /* -1 null */
} mk_record_header_t;

/* Read the next header from a reader initialised over rec->headers /
 * rec->headers_len.  Returns 1 with *out filled, 0 at the end, or
 * MK_ERR_CORRUPT (cannot happen for headers handed out by iteration, which
 * were already checked). */
int mk_batch_record_header_next(mk_reader_t *r, mk_record_header_t *out);

/* ============================================================= compaction */

/* The delete horizon of a batch (KIP-534): with MK_BATCH_ATTR_DELETE_HORIZON
 * set, baseTimestamp holds the time after which the log cleaner may drop
 * the batch's tombstones (and the record timestamps stay baseTimestamp +
 * timestampDelta, their deltas rewritten against it).  -1 when unset. */
static inline int64_t mk_batch_hdr_delete_horizon(const mk_batch_hdr_t *h)
{
    return (h->attributes & MK_BATCH_ATTR_DELETE_HORIZON) ? h->baseTimestamp : -1;
}

/* The type of a transaction marker: the control record's key is {version
 * i16, type i16}; returns 0 (ABORT), 1 (COMMIT), another type >= 2, or
 * MK_ERR_CORRUPT when p (n bytes) is not a sound control batch with one
 * record.  Any thread. */
int mk_batch_control_type(const uint8_t *p, size_t n);

/* What mk_batch_filter() asks of each record: 1 keep, 0 drop, < 0 stop
 * with that error. */
typedef int (*mk_batch_keep_cb)(const mk_record_t *rec, void *arg);

typedef struct mk_batch_filter_result_s {
    int32_t kept;          /* records kept */
    int32_t dropped;       /* records dropped */
    bool written;          /* something was appended to out */
    bool rewritten;        /* ... and it is not the original bytes */
} mk_batch_filter_result_t;

/* The log cleaner's rewrite of one sound batch at p (n bytes; validate it
 * first): keeps the records cb accepts and appends the resulting batch to
 * out.  What a rewritten batch keeps: baseOffset, lastOffsetDelta (so the
 * batch still ends where it ended: the gaps are inside it), every record's
 * offsetDelta, partitionLeaderEpoch, the producer fields, the codec (the
 * kept records are compressed again with it).  What changes: recordCount,
 * maxTimestamp (the largest kept record's, for CreateTime), the CRC, and
 * with delete_horizon_ms >= 0 on a batch that has none yet and keeps a
 * tombstone (a record with a null value), the delete horizon (attribute bit 6; baseTimestamp = delete_horizon_ms and the
 * records' timestamp deltas rewritten against it).  A batch whose records
 * are all kept and that needs no horizon is copied as it is.  A batch with
 * no record left is dropped (nothing appended) unless keep_empty: then its
 * header alone is written, uncompressed, with recordCount 0 (Kafka keeps
 * such a batch for the last batch of a producer, so that its sequence
 * survives).  scratch (caller-owned) takes the decompressed records and
 * must not be out.  Returns 0, cb's error, MK_ERR_CORRUPT,
 * MK_ERR_TOO_LARGE, MK_ERR_NOMEM; on error out->len is restored.  Any
 * thread. */
int mk_batch_filter(const uint8_t *p, size_t n, int64_t delete_horizon_ms, bool keep_empty, mk_buf_t *scratch,
                    size_t max_uncompressed, mk_batch_keep_cb cb, void *arg, mk_buf_t *out,
                    mk_batch_filter_result_t *res);

/* ================================================================= codecs */

/* Decompress a Kafka compressed record blob, appending to out.  Framing:
 * gzip = gzip (zlib also accepted; concatenated members allowed); snappy =
 * the Xerial/Java framing (0x82 "SNAPPY" 0, version, compat, then blocks of
 * be32 length + raw snappy) or plain raw snappy, told apart by the magic;
 * lz4 = LZ4 frame format; zstd = zstd frames, streamed when the frame does
 * not carry its content size.  At most max_out bytes are appended (0 =
 * default).  Returns 0, MK_ERR_TOO_LARGE past max_out, MK_ERR_CORRUPT for
 * bad input, MK_ERR_UNSUPPORTED for an unknown codec, MK_ERR_NOMEM.  On
 * error out->len is restored. */
int mk_batch_codec_decompress(int codec, const uint8_t *in, size_t n, mk_buf_t *out, size_t max_out);

/* Compress [in, in+n) with codec at its default level, appending to out in
 * the framing above (snappy: Xerial framing, 32 KiB blocks; lz4: frame with
 * independent 64 KiB blocks, as Kafka's Java client reads).  Returns 0,
 * MK_ERR_UNSUPPORTED, MK_ERR_TOO_LARGE (input over 2 GiB) or MK_ERR_NOMEM;
 * on error out->len is restored. */
int mk_batch_codec_compress(int codec, const uint8_t *in, size_t n, mk_buf_t *out);

/* Lower-case name ("none", "gzip", ...) or "unknown". */
const char *mk_batch_codec_name(int codec);

/* Free this thread's cached decompression contexts (they are also freed at
 * thread exit).  Safe to call any time; the next decompression recreates
 * them. */
void mk_batch_codec_thread_release(void);

/* ================================================================ builder */

/* One record to build.  key/value NULL with length -1 for null. */
typedef struct mk_batch_rec_in_s {
    const void *key;
    int32_t key_len;
    const void *value;
    int32_t value_len;
    int64_t timestamp;
    int32_t header_count;
    const char *const *header_keys;       /* NUL-terminated */
    const void *const *header_values;
    const int32_t *header_value_lens;     /* -1 null */
} mk_batch_rec_in_t;

/* Build a complete valid batch from count >= 1 records and append it to out
 * (for tests, tools and control markers).  baseTimestamp is the first
 * record's timestamp, maxTimestamp the largest; producer fields are -1 and
 * partitionLeaderEpoch -1.  Returns 0, MK_ERR_INVALID (bad arguments),
 * MK_ERR_UNSUPPORTED (codec), MK_ERR_TOO_LARGE or MK_ERR_NOMEM; on error
 * out->len is restored. */
int mk_batch_build(mk_buf_t *out, int codec, int64_t base_offset, const mk_batch_rec_in_t *recs, int count);

/* Every header field a builder can set; mk_batch_build_opts_init() gives
 * the mk_batch_build() defaults. */
typedef struct mk_batch_build_opts_s {
    int codec;
    int64_t baseOffset;
    int32_t partitionLeaderEpoch;
    int64_t producerId;
    int16_t producerEpoch;
    int32_t baseSequence;
    bool transactional;
    bool control;
    bool log_append_time;        /* sets the bit; maxTimestamp stays the max */
} mk_batch_build_opts_t;

void mk_batch_build_opts_init(mk_batch_build_opts_t *o);
/* mk_batch_build() with every header field chosen by o.  Same returns. */
int mk_batch_build_ex(mk_buf_t *out, const mk_batch_build_opts_t *o, const mk_batch_rec_in_t *recs, int count);

/* Build a transaction marker: an uncompressed control batch (transactional +
 * control bits from o; o->codec ignored) of one record whose key is
 * {version i16 0, type i16 (0 abort, 1 commit)} and value
 * {version i16 0, coordinatorEpoch i32}.  Same returns as mk_batch_build(). */
int mk_batch_build_control(mk_buf_t *out, const mk_batch_build_opts_t *o, bool commit, int32_t coordinator_epoch,
                           int64_t timestamp);

#endif /* MK_BATCH_H */
