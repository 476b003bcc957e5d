/*
 * codec.h -- types shared by the generated tables (kafka_gen.h) and the generic
 * table-driven codec (codec.c).  Internal to proto/: other modules include proto/proto.h.
 */
#ifndef MK_PROTO_CODEC_H
#define MK_PROTO_CODEC_H

#include "base/base.h"

/* A string from or for the wire.  ptr == NULL means null (len is then -1).
 * Decoded strings are NUL-terminated copies in the request arena. */
typedef struct mk_str_s {
    const char *ptr;
    int32_t len;
} mk_str_t;

/* Bytes (and record sets).  ptr == NULL means null.  Decoded bytes point into
 * the frame, which lives as long as the request. */
typedef struct mk_bytes_s {
    const uint8_t *ptr;
    int32_t len;
} mk_bytes_t;

typedef struct mk_uuid_s {
    uint8_t b[16];
} mk_uuid_t;

/* Field types of the descriptor tables. */
enum {
    MK_PT_BOOL = 1, MK_PT_INT8, MK_PT_INT16, MK_PT_UINT16, MK_PT_INT32, MK_PT_UINT32,
    MK_PT_INT64, MK_PT_FLOAT64, MK_PT_STRING, MK_PT_BYTES, MK_PT_RECORDS, MK_PT_UUID,
    MK_PT_STRUCT, MK_PT_ARRAY
};

enum { MK_PKIND_REQUEST = 1, MK_PKIND_RESPONSE, MK_PKIND_HEADER, MK_PKIND_DATA };

#define MK_PVER_OPEN 32767

struct mk_pstruct_s;

/* One field of one spec struct.  Version ranges are inclusive; -1 min = never. */
typedef struct mk_pfield_s {
    const char *name;
    uint32_t offset;                  /* offsetof() in the C struct */
    uint8_t type;                     /* MK_PT_* (MK_PT_ARRAY for arrays) */
    uint8_t elem;                     /* element type for arrays */
    int16_t vmin, vmax;               /* versions the field exists in */
    int16_t nmin, nmax;               /* versions where it may be null */
    int16_t tmin, tmax;               /* versions where it is a tagged field */
    int32_t tag;
    int16_t fmin;                     /* -2: message's flexible versions; else own */
    int64_t dflt;                     /* default for numbers and bools */
    uint8_t dflt_null;                /* default is null (strings, bytes, arrays) */
    const struct mk_pstruct_s *sub;   /* struct type, for MK_PT_STRUCT */
} mk_pfield_t;

typedef struct mk_pstruct_s {
    const char *name;
    uint32_t size;                    /* sizeof the C struct */
    uint16_t nfields;
    const mk_pfield_t *fields;
} mk_pstruct_t;

typedef struct mk_pmsg_s {
    const char *name;
    int16_t api_key;
    uint8_t kind;                     /* MK_PKIND_* */
    int16_t vmin, vmax;               /* validVersions */
    int16_t flex_min;                 /* first flexible version, MK_PVER_OPEN if none */
    const mk_pstruct_t *body;
} mk_pmsg_t;

#endif /* MK_PROTO_CODEC_H */
