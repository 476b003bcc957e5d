/*
 * proto_test.c -- unit tests of the generated codec.
 *
 * Round trip of every generated message at every valid version: fill a struct
 * with pseudo-random values (only fields that exist in that version, nulls
 * only where the version allows them), encode, decode, encode again and
 * require identical bytes with the whole input consumed.  Then truncation of
 * every encoding must fail cleanly, and a few hand-built frames check the wire
 * format against the protocol guide (compact strings, tagged fields, headers).
 */
#include "proto/proto.h"

#include <stdio.h>
#include <stdlib.h>

static int failures;
#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            failures++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                         \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
        }                                                                                \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static bool in_r(int16_t v, int16_t lo, int16_t hi) { return lo >= 0 && v >= lo && v <= hi; }

static void fill_struct(const mk_pstruct_t *s, int16_t v, mk_arena_t *a, uint8_t *out, int depth);

static size_t esize(uint8_t t, const mk_pstruct_t *sub)
{
    switch (t) {
    case MK_PT_BOOL: return sizeof(bool);
    case MK_PT_INT8: return 1;
    case MK_PT_INT16: case MK_PT_UINT16: return 2;
    case MK_PT_INT32: case MK_PT_UINT32: return 4;
    case MK_PT_INT64: case MK_PT_FLOAT64: return 8;
    case MK_PT_STRING: return sizeof(mk_str_t);
    case MK_PT_BYTES: case MK_PT_RECORDS: return sizeof(mk_bytes_t);
    case MK_PT_UUID: return 16;
    case MK_PT_STRUCT: return sub->size;
    }
    return 0;
}

static void fill_value(const mk_pfield_t *f, uint8_t t, int16_t v, bool nullable, mk_arena_t *a, uint8_t *dst,
                       int depth)
{
    bool null = nullable && rnd() % 4 == 0;
    switch (t) {
    case MK_PT_BOOL: *(bool *)dst = rnd() & 1; break;
    case MK_PT_INT8: *(int8_t *)dst = (int8_t)rnd(); break;
    case MK_PT_INT16: *(int16_t *)dst = (int16_t)rnd(); break;
    case MK_PT_UINT16: *(uint16_t *)dst = (uint16_t)rnd(); break;
    case MK_PT_INT32: *(int32_t *)dst = (int32_t)rnd(); break;
    case MK_PT_UINT32: *(uint32_t *)dst = (uint32_t)rnd(); break;
    case MK_PT_INT64: *(int64_t *)dst = (int64_t)rnd(); break;
    case MK_PT_FLOAT64: *(double *)dst = (double)(rnd() % 100000) / 8.0; break;
    case MK_PT_UUID: for (int i = 0; i < 16; i++) dst[i] = (uint8_t)rnd(); break;
    case MK_PT_STRING: {
        mk_str_t *s = (mk_str_t *)dst;
        if (null) { s->ptr = NULL; s->len = -1; break; }
        int n = (int)(rnd() % 12);
        char *c = mk_arena_alloc(a, (size_t)n + 1);
        for (int i = 0; i < n; i++) c[i] = (char)('a' + rnd() % 26);
        s->ptr = c;
        s->len = n;
        break;
    }
    case MK_PT_BYTES: case MK_PT_RECORDS: {
        mk_bytes_t *b = (mk_bytes_t *)dst;
        if (null) { b->ptr = NULL; b->len = -1; break; }
        int n = (int)(rnd() % 20);
        uint8_t *p = mk_arena_alloc(a, (size_t)n + 1);
        for (int i = 0; i < n; i++) p[i] = (uint8_t)rnd();
        b->ptr = p;
        b->len = n;
        break;
    }
    case MK_PT_STRUCT: fill_struct(f->sub, v, a, dst, depth + 1); break;
    case MK_PT_ARRAY: {
        struct { void *items; int32_t count; } *arr = (void *)dst;
        if (null) { arr->items = NULL; arr->count = -1; break; }
        int n = depth > 3 ? 0 : (int)(rnd() % 3);
        size_t es = esize(f->elem, f->sub);
        uint8_t *items = mk_arena_alloc(a, es * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++) {
            if (f->elem == MK_PT_STRUCT) mk_proto_struct_defaults(f->sub, items + es * (size_t)i);
            fill_value(f, f->elem, v, false, a, items + es * (size_t)i, depth);
        }
        arr->items = items;
        arr->count = n;
        break;
    }
    }
}

static void fill_struct(const mk_pstruct_t *s, int16_t v, mk_arena_t *a, uint8_t *out, int depth)
{
    for (uint16_t i = 0; i < s->nfields; i++) {
        const mk_pfield_t *f = &s->fields[i];
        if (!in_r(v, f->vmin, f->vmax)) continue;
        fill_value(f, f->type, v, in_r(v, f->nmin, f->nmax), a, out + f->offset, depth);
    }
}

static void roundtrip_all(void)
{
    int msgs = 0, versions = 0;
    for (int m = 0; m < mk_pmsg_all_count; m++) {
        const mk_pmsg_t *pm = mk_pmsg_all[m];
        msgs++;
        for (int16_t v = pm->vmin; v <= pm->vmax; v++) {
            for (int rep = 0; rep < 4; rep++) {
                mk_arena_t a;
                mk_arena_init(&a);
                uint8_t *in = mk_arena_alloc(&a, pm->body->size);
                mk_proto_struct_defaults(pm->body, in);
                fill_struct(pm->body, v, &a, in, 0);
                mk_buf_t b1, b2;
                mk_buf_init(&b1);
                mk_buf_init(&b2);
                CHECK(mk_proto_encode(pm, v, in, &b1) == 0, "%s v%d encode", pm->name, v);
                uint8_t *out = mk_arena_alloc(&a, pm->body->size);
                mk_reader_t r;
                mk_rd_init(&r, b1.data, b1.len);
                int rc = mk_proto_decode(pm, v, &r, &a, out);
                CHECK(rc == 0, "%s v%d decode: %s", pm->name, v, mk_strerror(rc));
                CHECK(mk_rd_remaining(&r) == 0, "%s v%d: %zu bytes left", pm->name, v, mk_rd_remaining(&r));
                CHECK(mk_proto_encode(pm, v, out, &b2) == 0, "%s v%d re-encode", pm->name, v);
                CHECK(b1.len == b2.len && (b1.len == 0 || memcmp(b1.data, b2.data, b1.len) == 0),
                      "%s v%d: re-encoding differs (%zu vs %zu bytes)", pm->name, v, b1.len, b2.len);
                /* Every strict prefix must fail to decode (or decode fewer bytes) without crashing. */
                if (rep == 0) {
                    for (size_t cut = 0; cut < b1.len; cut += 1 + b1.len / 64) {
                        mk_arena_t a2;
                        mk_arena_init(&a2);
                        uint8_t *o2 = mk_arena_alloc(&a2, pm->body->size);
                        mk_reader_t r2;
                        mk_rd_init(&r2, b1.data, cut);
                        int rc2 = mk_proto_decode(pm, v, &r2, &a2, o2);
                        CHECK(rc2 != 0, "%s v%d: prefix %zu/%zu decoded", pm->name, v, cut, b1.len);
                        mk_arena_free(&a2);
                    }
                }
                mk_buf_free(&b1);
                mk_buf_free(&b2);
                mk_arena_free(&a);
            }
            versions++;
        }
    }
    printf("proto_test: round trip of %d messages, %d message versions\n", msgs, versions);
}

/* Nullable structs: an int8 -1 (null) or 1 before the struct; in C a null
 * struct is one whose first field is null (codec.c). */
static void nullable_structs(void)
{
    mk_arena_t a;
    mk_arena_init(&a);
    mk_DescribeTopicPartitionsRequest_t q;
    mk_proto_struct_defaults(&mk_pdesc_DescribeTopicPartitionsRequest, &q);
    CHECK(q.Cursor.TopicName.ptr == NULL, "%s", "the Cursor's default is null");
    mk_buf_t b;
    mk_buf_init(&b);
    CHECK(mk_proto_encode(&mk_pmsg_DescribeTopicPartitionsRequest, 0, &q, &b) == 0, "%s", "encode null cursor");
    /* Topics (empty compact array: 0x01), limit (4 bytes), cursor -1, tags. */
    static const uint8_t want_null[] = {0x01, 0x00, 0x00, 0x07, 0xd0, 0xff, 0x00};
    CHECK(b.len == sizeof(want_null) && memcmp(b.data, want_null, b.len) == 0, "null cursor: %zu bytes", b.len);
    mk_DescribeTopicPartitionsRequest_t d;
    mk_reader_t r;
    mk_rd_init(&r, b.data, b.len);
    CHECK(mk_proto_decode(&mk_pmsg_DescribeTopicPartitionsRequest, 0, &r, &a, &d) == 0 &&
              d.Cursor.TopicName.ptr == NULL, "%s", "null cursor decodes as null");
    q.Cursor.TopicName = mk_str("t");
    q.Cursor.PartitionIndex = 7;
    mk_buf_reset(&b);
    CHECK(mk_proto_encode(&mk_pmsg_DescribeTopicPartitionsRequest, 0, &q, &b) == 0, "%s", "encode cursor");
    static const uint8_t want[] = {0x01, 0x00, 0x00, 0x07, 0xd0, 0x01, 0x02, 't', 0x00, 0x00, 0x00, 0x07, 0x00, 0x00};
    CHECK(b.len == sizeof(want) && memcmp(b.data, want, b.len) == 0, "cursor: %zu bytes", b.len);
    mk_rd_init(&r, b.data, b.len);
    CHECK(mk_proto_decode(&mk_pmsg_DescribeTopicPartitionsRequest, 0, &r, &a, &d) == 0 &&
              mk_str_eq(d.Cursor.TopicName, "t") && d.Cursor.PartitionIndex == 7, "%s", "cursor decodes");
    mk_buf_free(&b);
    mk_arena_free(&a);
}

/* Hand-built frames checked byte for byte against the protocol guide. */
static void golden_frames(void)
{
    /* ApiVersions v3 request body: compact string "kcat" (len+1 = 5), compact
     * string "1.0" (4), empty tagged fields. */
    static const uint8_t av3[] = {5, 'k', 'c', 'a', 't', 4, '1', '.', '0', 0};
    mk_arena_t a;
    mk_arena_init(&a);
    mk_ApiVersionsRequest_t req;
    mk_reader_t r;
    mk_rd_init(&r, av3, sizeof(av3));
    CHECK(mk_proto_decode(&mk_pmsg_ApiVersionsRequest, 3, &r, &a, &req) == 0, "ApiVersions v3 decode");
    CHECK(mk_str_eq(req.ClientSoftwareName, "kcat"), "ClientSoftwareName");
    CHECK(mk_str_eq(req.ClientSoftwareVersion, "1.0"), "ClientSoftwareVersion");

    /* Metadata v1 request, null topic array (all topics): int32 -1. */
    static const uint8_t md1[] = {0xff, 0xff, 0xff, 0xff};
    mk_MetadataRequest_t md;
    mk_rd_init(&r, md1, sizeof(md1));
    CHECK(mk_proto_decode(&mk_pmsg_MetadataRequest, 1, &r, &a, &md) == 0, "Metadata v1 decode");
    CHECK(md.Topics.count == -1, "null topics -> count -1");
    /* v0 does not allow null topics. */
    mk_rd_init(&r, md1, sizeof(md1));
    CHECK(mk_proto_decode(&mk_pmsg_MetadataRequest, 0, &r, &a, &md) != 0, "Metadata v0 null topics refused");
    /* Defaults: AllowAutoTopicCreation is true for versions that lack it. */
    CHECK(md.AllowAutoTopicCreation == true, "AllowAutoTopicCreation default");

    /* Request header v2 with client id "ab" and no tags. */
    static const uint8_t hdr[] = {0, 18, 0, 3, 0, 0, 0, 7, 0, 2, 'a', 'b', 0};
    mk_req_header_t h;
    mk_rd_init(&r, hdr, sizeof(hdr));
    CHECK(mk_proto_req_header_decode(&r, &a, &h) == 0, "header decode");
    CHECK(h.RequestApiKey == 18 && h.RequestApiVersion == 3 && h.CorrelationId == 7 && h.flexible,
          "header fields");
    CHECK(mk_str_eq(h.ClientId, "ab") && mk_rd_remaining(&r) == 0, "header client id");

    /* Unknown tagged fields are skipped: ApiVersions v3 with tag 9 (2 bytes). */
    static const uint8_t avtag[] = {1, 1, 1, 9, 2, 0xaa, 0xbb};
    mk_rd_init(&r, avtag, sizeof(avtag));
    CHECK(mk_proto_decode(&mk_pmsg_ApiVersionsRequest, 3, &r, &a, &req) == 0 && mk_rd_remaining(&r) == 0,
          "unknown tag skipped");

    /* A lying array count is refused before allocation. */
    static const uint8_t lie[] = {0x7f, 0xff, 0xff, 0xff};
    size_t before = a.total;
    mk_rd_init(&r, lie, sizeof(lie));
    CHECK(mk_proto_decode(&mk_pmsg_MetadataRequest, 1, &r, &a, &md) != 0, "huge count refused");
    CHECK(a.total - before < 1024, "no big allocation for a lying count");

    /* Tagged field encoding: FetchResponse v12+ CurrentLeader is tag 1 of a partition. */
    mk_arena_free(&a);
}

int main(void)
{
    nullable_structs();
    roundtrip_all();
    golden_frames();
    if (failures) {
        fprintf(stderr, "proto_test: %d failures\n", failures);
        return 1;
    }
    printf("proto_test: ok\n");
    return 0;
}
