/*
 * codec.c -- the generic, table-driven Kafka codec.
 *
 * Every request and response is described by generated tables (kafka_gen.c):
 * one mk_pstruct_t per spec struct, one mk_pfield_t per field with the
 * version ranges in which it exists, may be null, or is tagged.  This file
 * walks those tables to decode wire bytes into C structs and to encode C
 * structs into wire bytes, for any message at any version.  Flexible versions
 * (KIP-482: compact lengths, tagged fields) are handled here once, not in each
 * handler.
 *
 * Wire rules, classic versions:   string = int16 len (-1 null) + bytes;
 *   bytes/records = int32 len (-1 null) + bytes; array = int32 count (-1 null).
 * Flexible versions:              string/bytes/records = uvarint(len+1) (0 null);
 *   array = uvarint(count+1) (0 null); every struct ends with a tagged-field
 *   section: uvarint count, then per field uvarint tag, uvarint size, value.
 *
 * Safety: all input goes through mk_reader_t; an array count is checked
 * against the bytes that remain before anything is allocated; decoded strings
 * are copied NUL-terminated into the request arena; bytes and records point
 * into the frame (zero copy), so the frame must outlive the decoded struct.
 */
#include "proto/proto.h"

#include <string.h>

static const uint8_t empty_bytes[1];

static size_t elem_size(uint8_t t, const mk_pstruct_t *sub)
{
    switch (t) {
    case MK_PT_BOOL: return sizeof(bool);
    case MK_PT_INT8: return 1;
    case MK_PT_INT16: case MK_PT_UINT16: return 2;
    case MK_PT_INT32: case MK_PT_UINT32: return 4;
    case MK_PT_INT64: return 8;
    case MK_PT_FLOAT64: return sizeof(double);
    case MK_PT_STRING: return sizeof(mk_str_t);
    case MK_PT_BYTES: case MK_PT_RECORDS: return sizeof(mk_bytes_t);
    case MK_PT_UUID: return sizeof(mk_uuid_t);
    case MK_PT_STRUCT: return sub->size;
    }
    return 0;
}

static inline bool in_range(int16_t v, int16_t lo, int16_t hi) { return lo >= 0 && v >= lo && v <= hi; }

static inline bool field_flex(const mk_pfield_t *f, int16_t v, bool msg_flex)
{
    return f->fmin == -2 ? msg_flex : (f->fmin >= 0 && v >= f->fmin);
}

/* Array layout shared by every generated array member: {T *items; int32_t count;}. */
typedef struct {
    void *items;
    int32_t count;
} arr_t;

/* ================================================================== defaults */

/* Nullable structs (DescribeTopicPartitions' Cursor, ConsumerGroupHeartbeat's
 * Assignment): on the wire an int8 -1 (null) or 1 before the struct.  The C
 * struct has no flag of its own: a null struct is one whose first field
 * holds null (a string or bytes with a NULL pointer, an array of count -1);
 * every nullable struct of the specs starts with such a field. */
static bool struct_is_null(const mk_pstruct_t *s, const uint8_t *src)
{
    if (!s->nfields)
        return false;
    const mk_pfield_t *f0 = &s->fields[0];
    const uint8_t *p = src + f0->offset;
    switch (f0->type) {
    case MK_PT_STRING: return ((const mk_str_t *)p)->ptr == NULL;
    case MK_PT_BYTES: case MK_PT_RECORDS: return ((const mk_bytes_t *)p)->ptr == NULL;
    case MK_PT_ARRAY: return ((const arr_t *)p)->count < 0;
    }
    return false;
}

static void struct_set_null(const mk_pstruct_t *s, uint8_t *dst)
{
    mk_proto_struct_defaults(s, dst);
    if (!s->nfields)
        return;
    const mk_pfield_t *f0 = &s->fields[0];
    uint8_t *p = dst + f0->offset;
    switch (f0->type) {
    case MK_PT_STRING: ((mk_str_t *)p)->ptr = NULL; ((mk_str_t *)p)->len = -1; break;
    case MK_PT_BYTES: case MK_PT_RECORDS: ((mk_bytes_t *)p)->ptr = NULL; ((mk_bytes_t *)p)->len = -1; break;
    case MK_PT_ARRAY: ((arr_t *)p)->items = NULL; ((arr_t *)p)->count = -1; break;
    }
}

static void set_default(const mk_pfield_t *f, uint8_t *dst)
{
    switch (f->type) {
    case MK_PT_BOOL: *(bool *)dst = f->dflt != 0; break;
    case MK_PT_INT8: *(int8_t *)dst = (int8_t)f->dflt; break;
    case MK_PT_INT16: *(int16_t *)dst = (int16_t)f->dflt; break;
    case MK_PT_UINT16: *(uint16_t *)dst = (uint16_t)f->dflt; break;
    case MK_PT_INT32: *(int32_t *)dst = (int32_t)f->dflt; break;
    case MK_PT_UINT32: *(uint32_t *)dst = (uint32_t)f->dflt; break;
    case MK_PT_INT64: *(int64_t *)dst = f->dflt; break;
    case MK_PT_FLOAT64: *(double *)dst = (double)f->dflt; break;
    case MK_PT_STRING: {
        mk_str_t *s = (mk_str_t *)dst;
        s->ptr = f->dflt_null ? NULL : "";
        s->len = f->dflt_null ? -1 : 0;
        break;
    }
    case MK_PT_BYTES: case MK_PT_RECORDS: {
        mk_bytes_t *b = (mk_bytes_t *)dst;
        b->ptr = f->dflt_null ? NULL : empty_bytes;
        b->len = f->dflt_null ? -1 : 0;
        break;
    }
    case MK_PT_UUID: memset(dst, 0, sizeof(mk_uuid_t)); break;
    case MK_PT_STRUCT:
        if (f->dflt_null)
            struct_set_null(f->sub, dst);
        else
            mk_proto_struct_defaults(f->sub, dst);
        break;
    case MK_PT_ARRAY: {
        arr_t *a = (arr_t *)dst;
        a->items = NULL;
        a->count = f->dflt_null ? -1 : 0;
        break;
    }
    }
}

/* Set every field of a struct of type s at out to its spec default. */
void mk_proto_struct_defaults(const mk_pstruct_t *s, void *out)
{
    for (uint16_t i = 0; i < s->nfields; i++)
        set_default(&s->fields[i], (uint8_t *)out + s->fields[i].offset);
}

/* ==================================================================== decode */

typedef struct {
    int16_t v;
    mk_arena_t *a;
    int depth;
} dec_t;

static void dec_struct(dec_t *d, const mk_pstruct_t *s, bool flex, mk_reader_t *r, uint8_t *out);

/* Length of a string/bytes field: -1 for null, else >= 0; sets r->err on garbage. */
static int64_t dec_len(mk_reader_t *r, bool flex, bool wide)
{
    if (flex)
        return (int64_t)mk_rd_uvarint32(r) - 1;
    return wide ? mk_rd_i32(r) : mk_rd_i16(r);
}

static void dec_value(dec_t *d, const mk_pfield_t *f, uint8_t t, bool flex, bool nullable,
                      mk_reader_t *r, uint8_t *dst)
{
    switch (t) {
    case MK_PT_BOOL: *(bool *)dst = mk_rd_i8(r) != 0; return;
    case MK_PT_INT8: *(int8_t *)dst = mk_rd_i8(r); return;
    case MK_PT_INT16: *(int16_t *)dst = mk_rd_i16(r); return;
    case MK_PT_UINT16: *(uint16_t *)dst = mk_rd_u16(r); return;
    case MK_PT_INT32: *(int32_t *)dst = mk_rd_i32(r); return;
    case MK_PT_UINT32: *(uint32_t *)dst = mk_rd_u32(r); return;
    case MK_PT_INT64: *(int64_t *)dst = mk_rd_i64(r); return;
    case MK_PT_FLOAT64: *(double *)dst = mk_rd_f64(r); return;
    case MK_PT_UUID: {
        const uint8_t *p = mk_rd_bytes(r, 16);
        if (p)
            memcpy(dst, p, 16);
        return;
    }
    case MK_PT_STRING: {
        mk_str_t *s = (mk_str_t *)dst;
        int64_t n = dec_len(r, flex, false);
        if (!mk_rd_ok(r))
            return;
        if (n < 0) {
            if (n != -1 || !nullable)
                mk_rd_fail(r, MK_ERR_INVALID);
            s->ptr = NULL;
            s->len = -1;
            return;
        }
        const uint8_t *p = mk_rd_bytes(r, (size_t)n);
        if (!p)
            return;
        char *c = mk_arena_strndup(d->a, (const char *)p, (size_t)n);
        if (!c) {
            mk_rd_fail(r, MK_ERR_NOMEM);
            return;
        }
        s->ptr = c;
        s->len = (int32_t)n;
        return;
    }
    case MK_PT_BYTES: case MK_PT_RECORDS: {
        mk_bytes_t *b = (mk_bytes_t *)dst;
        int64_t n = dec_len(r, flex, true);
        if (!mk_rd_ok(r))
            return;
        if (n < 0) {
            if (n != -1 || !nullable)
                mk_rd_fail(r, MK_ERR_INVALID);
            b->ptr = NULL;
            b->len = -1;
            return;
        }
        const uint8_t *p = mk_rd_bytes(r, (size_t)n);
        if (!p)
            return;
        b->ptr = n ? p : empty_bytes;
        b->len = (int32_t)n;
        return;
    }
    case MK_PT_STRUCT:
        if (nullable) {
            int8_t present = mk_rd_i8(r);
            if (!mk_rd_ok(r))
                return;
            if (present < 0) {
                struct_set_null(f->sub, dst);
                return;
            }
        }
        dec_struct(d, f->sub, flex, r, dst);
        return;
    case MK_PT_ARRAY: {
        arr_t *a = (arr_t *)dst;
        int64_t n = flex ? (int64_t)mk_rd_uvarint32(r) - 1 : mk_rd_i32(r);
        if (!mk_rd_ok(r))
            return;
        if (n < 0) {
            if (n != -1 || !nullable)
                mk_rd_fail(r, MK_ERR_INVALID);
            a->items = NULL;
            a->count = -1;
            return;
        }
        /* Every element takes at least one byte on the wire: a count above
         * the remaining bytes is a lie, refused before any allocation. */
        if ((uint64_t)n > mk_rd_remaining(r)) {
            mk_rd_fail(r, MK_ERR_TRUNCATED);
            return;
        }
        size_t es = elem_size(f->elem, f->sub);
        uint8_t *items = n ? mk_arena_alloc(d->a, es * (size_t)n) : NULL;
        if (n && !items) {
            mk_rd_fail(r, MK_ERR_NOMEM);
            return;
        }
        a->items = items;
        a->count = (int32_t)n;
        for (int64_t i = 0; i < n && mk_rd_ok(r); i++) {
            uint8_t *e = items + es * (size_t)i;
            if (f->elem == MK_PT_STRUCT)
                mk_proto_struct_defaults(f->sub, e);
            dec_value(d, f, f->elem, flex, false, r, e);
        }
        return;
    }
    }
    mk_rd_fail(r, MK_ERR_INVALID);
}

static void dec_struct(dec_t *d, const mk_pstruct_t *s, bool flex, mk_reader_t *r, uint8_t *out)
{
    if (++d->depth > 16) {
        mk_rd_fail(r, MK_ERR_INVALID);
        return;
    }
    for (uint16_t i = 0; i < s->nfields && mk_rd_ok(r); i++) {
        const mk_pfield_t *f = &s->fields[i];
        if (!in_range(d->v, f->vmin, f->vmax))
            continue;
        bool ff = field_flex(f, d->v, flex);
        if (ff && in_range(d->v, f->tmin, f->tmax))
            continue; /* tagged: read below */
        dec_value(d, f, f->type, ff, in_range(d->v, f->nmin, f->nmax), r, out + f->offset);
    }
    if (flex && mk_rd_ok(r)) {
        uint32_t ntags = mk_rd_uvarint32(r);
        if (ntags > mk_rd_remaining(r))
            mk_rd_fail(r, MK_ERR_TRUNCATED);
        for (uint32_t k = 0; k < ntags && mk_rd_ok(r); k++) {
            uint32_t tag = mk_rd_uvarint32(r);
            uint32_t size = mk_rd_uvarint32(r);
            const uint8_t *p = mk_rd_bytes(r, size);
            if (!p)
                break;
            for (uint16_t i = 0; i < s->nfields; i++) {
                const mk_pfield_t *f = &s->fields[i];
                if (f->tag != (int32_t)tag || !in_range(d->v, f->tmin, f->tmax) ||
                    !in_range(d->v, f->vmin, f->vmax))
                    continue;
                mk_reader_t sub;
                mk_rd_init(&sub, p, size);
                dec_value(d, f, f->type, true, in_range(d->v, f->nmin, f->nmax), &sub, out + f->offset);
                if (sub.err)
                    mk_rd_fail(r, sub.err);
                break;
            }
            /* Unknown tags are skipped, as the protocol requires. */
        }
    }
    d->depth--;
}

/* Decode one message body of version `version` from r into out (a struct of
 * m's body type, which need not be initialised).  Allocations go to arena a.
 * Returns 0, or the reader's error; trailing bytes are not an error (newer
 * clients may send fields we skip only via tags, so this is the caller's call). */
int mk_proto_decode(const mk_pmsg_t *m, int16_t version, mk_reader_t *r, mk_arena_t *a, void *out)
{
    if (version < m->vmin || version > m->vmax)
        return MK_ERR_UNSUPPORTED;
    dec_t d = {version, a, 0};
    mk_proto_struct_defaults(m->body, out);
    dec_struct(&d, m->body, version >= m->flex_min, r, out);
    return r->err;
}

/* ==================================================================== encode */

static void enc_struct(const mk_pstruct_t *s, int16_t v, bool flex, const uint8_t *in, mk_buf_t *w);

static bool is_default(const mk_pfield_t *f, const uint8_t *src)
{
    switch (f->type) {
    case MK_PT_BOOL: return (*(const bool *)src) == (f->dflt != 0);
    case MK_PT_INT8: return *(const int8_t *)src == (int8_t)f->dflt;
    case MK_PT_INT16: return *(const int16_t *)src == (int16_t)f->dflt;
    case MK_PT_UINT16: return *(const uint16_t *)src == (uint16_t)f->dflt;
    case MK_PT_INT32: return *(const int32_t *)src == (int32_t)f->dflt;
    case MK_PT_UINT32: return *(const uint32_t *)src == (uint32_t)f->dflt;
    case MK_PT_INT64: return *(const int64_t *)src == f->dflt;
    case MK_PT_FLOAT64: return *(const double *)src == (double)f->dflt;
    case MK_PT_STRING: {
        const mk_str_t *s = (const mk_str_t *)src;
        return f->dflt_null ? s->ptr == NULL : (s->ptr != NULL && s->len == 0);
    }
    case MK_PT_BYTES: case MK_PT_RECORDS: {
        const mk_bytes_t *b = (const mk_bytes_t *)src;
        return f->dflt_null ? b->ptr == NULL : (b->ptr != NULL && b->len == 0);
    }
    case MK_PT_UUID: {
        static const uint8_t zero[16];
        return memcmp(src, zero, 16) == 0;
    }
    case MK_PT_STRUCT:
        if (f->dflt_null)
            return struct_is_null(f->sub, src);
        for (uint16_t i = 0; i < f->sub->nfields; i++)
            if (!is_default(&f->sub->fields[i], src + f->sub->fields[i].offset))
                return false;
        return true;
    case MK_PT_ARRAY: {
        const arr_t *a = (const arr_t *)src;
        return f->dflt_null ? a->count < 0 : a->count == 0;
    }
    }
    return true;
}

static void enc_len(mk_buf_t *w, bool flex, bool wide, int64_t n)
{
    if (flex)
        mk_buf_put_uvarint(w, (uint64_t)(n + 1));
    else if (wide)
        mk_buf_put_i32(w, (int32_t)n);
    else
        mk_buf_put_i16(w, (int16_t)n);
}

static void enc_value(const mk_pfield_t *f, uint8_t t, int16_t v, bool flex, bool nullable,
                      const uint8_t *src, mk_buf_t *w)
{
    switch (t) {
    case MK_PT_BOOL: mk_buf_put_i8(w, *(const bool *)src ? 1 : 0); return;
    case MK_PT_INT8: mk_buf_put_i8(w, *(const int8_t *)src); return;
    case MK_PT_INT16: mk_buf_put_i16(w, *(const int16_t *)src); return;
    case MK_PT_UINT16: mk_buf_put_i16(w, (int16_t) * (const uint16_t *)src); return;
    case MK_PT_INT32: mk_buf_put_i32(w, *(const int32_t *)src); return;
    case MK_PT_UINT32: mk_buf_put_u32(w, *(const uint32_t *)src); return;
    case MK_PT_INT64: mk_buf_put_i64(w, *(const int64_t *)src); return;
    case MK_PT_FLOAT64: mk_buf_put_f64(w, *(const double *)src); return;
    case MK_PT_UUID: mk_buf_put(w, src, 16); return;
    case MK_PT_STRING: {
        const mk_str_t *s = (const mk_str_t *)src;
        if (!s->ptr) {
            /* Null where the version has no null: send the empty string. */
            enc_len(w, flex, false, nullable ? -1 : 0);
            return;
        }
        int32_t n = s->len < 0 ? (int32_t)strlen(s->ptr) : s->len;
        enc_len(w, flex, false, n);
        mk_buf_put(w, s->ptr, (size_t)n);
        return;
    }
    case MK_PT_BYTES: case MK_PT_RECORDS: {
        const mk_bytes_t *b = (const mk_bytes_t *)src;
        if (!b->ptr || b->len < 0) {
            enc_len(w, flex, true, nullable ? -1 : 0);
            return;
        }
        enc_len(w, flex, true, b->len);
        mk_buf_put(w, b->ptr, (size_t)b->len);
        return;
    }
    case MK_PT_STRUCT:
        if (nullable) {
            if (struct_is_null(f->sub, src)) {
                mk_buf_put_i8(w, -1);
                return;
            }
            mk_buf_put_i8(w, 1);
        }
        enc_struct(f->sub, v, flex, src, w);
        return;
    case MK_PT_ARRAY: {
        const arr_t *a = (const arr_t *)src;
        if (a->count < 0) {
            enc_len(w, flex, true, nullable ? -1 : 0);
            return;
        }
        enc_len(w, flex, true, a->count);
        size_t es = elem_size(f->elem, f->sub);
        for (int32_t i = 0; i < a->count; i++)
            enc_value(f, f->elem, v, flex, false, (const uint8_t *)a->items + es * (size_t)i, w);
        return;
    }
    }
}

static void enc_struct(const mk_pstruct_t *s, int16_t v, bool flex, const uint8_t *in, mk_buf_t *w)
{
    int ntagged = 0;
    for (uint16_t i = 0; i < s->nfields; i++) {
        const mk_pfield_t *f = &s->fields[i];
        if (!in_range(v, f->vmin, f->vmax))
            continue;
        bool ff = field_flex(f, v, flex);
        if (ff && in_range(v, f->tmin, f->tmax)) {
            if (!is_default(f, in + f->offset))
                ntagged++;
            continue;
        }
        enc_value(f, f->type, v, ff, in_range(v, f->nmin, f->nmax), in + f->offset, w);
    }
    if (!flex)
        return;
    mk_buf_put_uvarint(w, (uint64_t)ntagged);
    if (!ntagged)
        return;
    /* Tagged fields go out in ascending tag order. */
    int32_t last = -1;
    for (int k = 0; k < ntagged; k++) {
        const mk_pfield_t *best = NULL;
        for (uint16_t i = 0; i < s->nfields; i++) {
            const mk_pfield_t *f = &s->fields[i];
            if (!in_range(v, f->vmin, f->vmax) || !in_range(v, f->tmin, f->tmax) || f->tag <= last ||
                is_default(f, in + f->offset))
                continue;
            if (!best || f->tag < best->tag)
                best = f;
        }
        if (!best)
            break;
        last = best->tag;
        mk_buf_t tmp;
        mk_buf_init(&tmp);
        enc_value(best, best->type, v, true, in_range(v, best->nmin, best->nmax), in + best->offset, &tmp);
        if (tmp.oom)
            w->oom = true;
        mk_buf_put_uvarint(w, (uint64_t)best->tag);
        mk_buf_put_uvarint(w, tmp.len);
        mk_buf_put(w, tmp.data, tmp.len);
        mk_buf_free(&tmp);
    }
}

/* Encode in (a struct of m's body type) as version `version`, appending to w.
 * Fields absent from that version are skipped.  Returns 0, MK_ERR_UNSUPPORTED
 * for a version outside validVersions, or MK_ERR_NOMEM. */
int mk_proto_encode(const mk_pmsg_t *m, int16_t version, const void *in, mk_buf_t *w)
{
    if (version < m->vmin || version > m->vmax)
        return MK_ERR_UNSUPPORTED;
    enc_struct(m->body, version, version >= m->flex_min, in, w);
    return mk_buf_ok(w) ? 0 : MK_ERR_NOMEM;
}

/* ============================================================ lookups, headers */

const mk_pmsg_t *mk_proto_msg_find(int16_t api_key, bool request)
{
    static const mk_pmsg_t *req[MK_API__MAX], *resp[MK_API__MAX];
    static bool ready;
    if (!ready) {
        for (int i = 0; i < mk_pmsg_all_count; i++) {
            const mk_pmsg_t *m = mk_pmsg_all[i];
            if (m->api_key < 0 || m->api_key >= MK_API__MAX)
                continue;
            if (m->kind == MK_PKIND_REQUEST)
                req[m->api_key] = m;
            else if (m->kind == MK_PKIND_RESPONSE)
                resp[m->api_key] = m;
        }
        ready = true;
    }
    if (api_key < 0 || api_key >= MK_API__MAX)
        return NULL;
    return request ? req[api_key] : resp[api_key];
}

int mk_proto_req_header_decode(mk_reader_t *r, mk_arena_t *a, mk_req_header_t *h)
{
    memset(h, 0, sizeof(*h));
    h->RequestApiKey = mk_rd_i16(r);
    h->RequestApiVersion = mk_rd_i16(r);
    h->CorrelationId = mk_rd_i32(r);
    if (!mk_rd_ok(r))
        return r->err;
    h->req = mk_proto_msg_find(h->RequestApiKey, true);
    if (!h->req)
        return MK_ERR_NOT_FOUND;
    /* ClientId is a classic nullable string in every header version. */
    int16_t n = mk_rd_i16(r);
    if (n >= 0) {
        const uint8_t *p = mk_rd_bytes(r, (size_t)n);
        if (p)
            h->ClientId.ptr = mk_arena_strndup(a, (const char *)p, (size_t)n);
        h->ClientId.len = n;
    } else {
        h->ClientId.ptr = NULL;
        h->ClientId.len = -1;
    }
    h->flexible = h->RequestApiVersion >= h->req->flex_min;
    if (h->flexible && mk_rd_ok(r)) {
        /* Header tagged fields: none are defined that we use; skip them. */
        uint32_t ntags = mk_rd_uvarint32(r);
        if (ntags > mk_rd_remaining(r))
            mk_rd_fail(r, MK_ERR_TRUNCATED);
        for (uint32_t i = 0; i < ntags && mk_rd_ok(r); i++) {
            (void)mk_rd_uvarint32(r);
            mk_rd_skip(r, mk_rd_uvarint32(r));
        }
    }
    return r->err;
}

bool mk_proto_resp_header_flexible(int16_t api_key, int16_t version)
{
    /* ApiVersions answers with header v0 always, so that a client that does
     * not yet know our versions can parse the answer. */
    if (api_key == MK_API_ApiVersions)
        return false;
    const mk_pmsg_t *m = mk_proto_msg_find(api_key, false);
    return m && version >= m->flex_min;
}

/* ================================================================ error names */

const char *mk_kafka_strerror(int16_t code)
{
    switch (code) {
#define MK_KERR_CASE(name, c) case c: return #name;
        MK_KAFKA_ERRORS(MK_KERR_CASE)
#undef MK_KERR_CASE
    }
    return "UNKNOWN_ERROR_CODE";
}
