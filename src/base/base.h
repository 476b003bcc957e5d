/*
 * base.h -- L0 of minikora: the vocabulary every other module speaks.
 *
 * Sections, in reading order:
 *   errors      one table of negative internal error codes and mk_strerror()
 *   memory      malloc wrappers with a fail-on-Nth-call hook for fault tests
 *   arena       bump allocator for one request; freed as a whole
 *   buf         growable output buffer (big-endian Kafka encoding helpers)
 *   reader      checked reader with a sticky error for every external byte
 *   varint      zig-zag and unsigned varints (Kafka records, compact types)
 *   crc32c      Castagnoli CRC used by record batches
 *   time        wall clock and monotonic clocks
 *   log         leveled logging to stderr
 *
 * Nothing here depends on any other minikora module, or on libuv.
 */
#ifndef MK_BASE_H
#define MK_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* ==================================================================== errors */

/* Internal errors are negative ints from this table.  0 is success.  Kafka
 * wire error codes live in a separate int16_t space (proto/). */
#define MK_ERRORS(X)                                                          \
    X(MK_OK, 0, "success")                                                    \
    X(MK_ERR_NOMEM, -1, "out of memory")                                      \
    X(MK_ERR_TRUNCATED, -2, "input truncated")                                \
    X(MK_ERR_INVALID, -3, "invalid input")                                    \
    X(MK_ERR_TOO_LARGE, -4, "size over limit")                                \
    X(MK_ERR_IO, -5, "i/o error")                                             \
    X(MK_ERR_CORRUPT, -6, "corrupt data")                                     \
    X(MK_ERR_NOT_FOUND, -7, "not found")                                      \
    X(MK_ERR_EXISTS, -8, "already exists")                                    \
    X(MK_ERR_UNSUPPORTED, -9, "unsupported")                                  \
    X(MK_ERR_CRC, -10, "checksum mismatch")                                   \
    X(MK_ERR_STATE, -11, "wrong state")                                       \
    X(MK_ERR_DB, -12, "metadata store error")                                 \
    X(MK_ERR_RANGE, -13, "out of range")                                     \
    X(MK_ERR_AGAIN, -14, "not now: try again later")                         \
    X(MK_ERR_NOFILES, -15, "too many open files (EMFILE)")

enum {
#define MK_ERR_ENUM(name, val, text) name = val,
    MK_ERRORS(MK_ERR_ENUM)
#undef MK_ERR_ENUM
};

/* Text for an internal error code; never NULL. */
const char *mk_strerror(int err);

/* ==================================================================== memory */

/* All heap allocation goes through these so tests can make the Nth call fail.
 * mk_calloc zeroes.  mk_free(NULL) is a no-op. */
void *mk_malloc(size_t n);
void *mk_calloc(size_t count, size_t n);
void *mk_realloc(void *p, size_t n);
void mk_free(void *p);
char *mk_strdup(const char *s);
char *mk_strndup(const char *s, size_t n);
/* Fault hook: the nth allocation from now fails (1 = next); 0 disables. */
void mk_mem_fail_at(long nth);

/* ===================================================================== arena */

/* A bump allocator: many allocations, one free.  A decoded request and its
 * response live in one arena that is freed after the response is queued. */
typedef struct mk_arena_chunk_s mk_arena_chunk_t;
typedef struct mk_arena_s {
    mk_arena_chunk_t *head;   /* owned chunk list, newest first */
    size_t total;             /* bytes handed out, for limits and metrics */
} mk_arena_t;

void mk_arena_init(mk_arena_t *a);
/* Zeroed, 8-byte aligned memory, or NULL when out of memory. */
void *mk_arena_alloc(mk_arena_t *a, size_t n);
/* Copy of [s, s+n) plus a NUL, owned by the arena. */
char *mk_arena_strndup(mk_arena_t *a, const char *s, size_t n);
char *mk_arena_sprintf(mk_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mk_arena_free(mk_arena_t *a);

/* ======================================================================= buf */

/* Growable output buffer.  Writers never fail mid-way: on allocation failure
 * the buffer records oom and later writes are dropped; check mk_buf_ok(). */
typedef struct mk_buf_s {
    uint8_t *data;   /* owned */
    size_t len;
    size_t cap;
    bool oom;
} mk_buf_t;

void mk_buf_init(mk_buf_t *b);
void mk_buf_free(mk_buf_t *b);
void mk_buf_reset(mk_buf_t *b);
bool mk_buf_reserve(mk_buf_t *b, size_t extra);
static inline bool mk_buf_ok(const mk_buf_t *b) { return !b->oom; }
/* Takes the bytes out of the buffer; the caller owns the returned pointer. */
uint8_t *mk_buf_steal(mk_buf_t *b, size_t *len_out);

void mk_buf_put(mk_buf_t *b, const void *p, size_t n);
void mk_buf_put_i8(mk_buf_t *b, int8_t v);
void mk_buf_put_i16(mk_buf_t *b, int16_t v);
void mk_buf_put_i32(mk_buf_t *b, int32_t v);
void mk_buf_put_i64(mk_buf_t *b, int64_t v);
void mk_buf_put_u32(mk_buf_t *b, uint32_t v);
void mk_buf_put_f64(mk_buf_t *b, double v);
void mk_buf_put_uvarint(mk_buf_t *b, uint64_t v);
void mk_buf_put_varint(mk_buf_t *b, int64_t v);   /* zig-zag */
/* Overwrite already-written bytes (length prefixes, CRCs). */
void mk_buf_patch_i32(mk_buf_t *b, size_t at, int32_t v);
void mk_buf_patch_u32(mk_buf_t *b, size_t at, uint32_t v);

/* ==================================================================== reader */

/* Checked reader over bytes we do not own and do not trust.  It never reads
 * past end; the first error sticks and every later read returns zeros, so a
 * parser may read a whole structure and check mk_rd_ok() once at the end. */
typedef struct mk_reader_s {
    const uint8_t *p;
    const uint8_t *end;
    int err;          /* 0 or first MK_ERR_* seen */
} mk_reader_t;

static inline void mk_rd_init(mk_reader_t *r, const void *p, size_t n)
{
    r->p = (const uint8_t *)p;
    r->end = p ? r->p + n : r->p;
    r->err = 0;
}
static inline size_t mk_rd_remaining(const mk_reader_t *r) { return (size_t)(r->end - r->p); }
static inline bool mk_rd_ok(const mk_reader_t *r) { return r->err == 0; }
static inline void mk_rd_fail(mk_reader_t *r, int err) { if (!r->err) r->err = err; }

int8_t mk_rd_i8(mk_reader_t *r);
int16_t mk_rd_i16(mk_reader_t *r);
int32_t mk_rd_i32(mk_reader_t *r);
int64_t mk_rd_i64(mk_reader_t *r);
uint16_t mk_rd_u16(mk_reader_t *r);
uint32_t mk_rd_u32(mk_reader_t *r);
double mk_rd_f64(mk_reader_t *r);
uint64_t mk_rd_uvarint(mk_reader_t *r);   /* at most 10 bytes */
int64_t mk_rd_varint(mk_reader_t *r);     /* zig-zag */
uint32_t mk_rd_uvarint32(mk_reader_t *r); /* fails if it does not fit 32 bits */
int32_t mk_rd_varint32(mk_reader_t *r);
/* Pointer to the next n bytes (not copied), or NULL with the error set. */
const uint8_t *mk_rd_bytes(mk_reader_t *r, size_t n);
void mk_rd_skip(mk_reader_t *r, size_t n);

/* ==================================================================== varint */

/* Bytes a varint encoding takes (for size computations). */
size_t mk_uvarint_len(uint64_t v);
size_t mk_varint_len(int64_t v);

/* ==================================================================== crc32c */

/* CRC-32C (Castagnoli).  Chain with crc = mk_crc32c(crc, p, n), start at 0.
 * Uses SSE4.2 when the CPU has it. */
uint32_t mk_crc32c(uint32_t crc, const void *p, size_t n);

/* ====================================================================== time */

int64_t mk_now_ms(void);      /* wall clock, ms since the epoch */
uint64_t mk_mono_ns(void);    /* monotonic ns */
uint64_t mk_mono_ms(void);

/* ======================================================================= map */

/* String-keyed hash map (open addressing, linear probing).  Keys are copied
 * and owned by the map; values are borrowed pointers the caller owns. */
typedef struct mk_map_s {
    char **keys;      /* owned; NULL = empty slot, MK_MAP_TOMB = deleted */
    void **vals;
    size_t cap;       /* power of two or 0 */
    size_t count;     /* live entries */
    size_t used;      /* live + tombstones */
} mk_map_t;

void mk_map_init(mk_map_t *m);
void mk_map_free(mk_map_t *m);             /* frees keys, not values */
void *mk_map_get(const mk_map_t *m, const char *key);
int mk_map_put(mk_map_t *m, const char *key, void *val);   /* insert or replace; 0 or MK_ERR_NOMEM */
void *mk_map_del(mk_map_t *m, const char *key);            /* returns the removed value or NULL */
/* Iterate: for (size_t i = 0; mk_map_next(m, &i, &k, &v);) ... ; safe to delete the current key. */
bool mk_map_next(const mk_map_t *m, size_t *iter, const char **key, void **val);

/* ==================================================================== files */

/* mkdir -p; 0 or MK_ERR_IO (errno kept). */
int mk_mkdir_p(const char *path);
/* rm -rf; a missing path is fine.  0 or MK_ERR_IO. */
int mk_rm_rf(const char *path);
/* Replaces path with data as a private file (mode 0600, also when it
 * existed with wider rights): written to "<path>.tmp", fsynced when sync,
 * renamed.  0 or -1 (errno set; the temporary file removed). */
int mk_file_write_private(const char *path, const void *data, size_t len, bool sync);

/* ================================================================= per loop */

/* State kept once per event loop (the brokers of embedded clusters run their
 * loops on other threads): an object whose first member is mk_per_loop_t,
 * on a list owned by its module.  The list is searched and changed under
 * one lock (any thread); the object itself is used by its loop's thread. */
typedef struct mk_per_loop_s {
    const void *loop;
    struct mk_per_loop_s *next;
} mk_per_loop_t;
/* loop's object on *list; when there is none and size > 0, a new zeroed
 * one of size bytes.  NULL: none, or out of memory. */
void *mk_per_loop_get(mk_per_loop_t **list, const void *loop, size_t size);
/* Takes obj off *list and frees it. */
void mk_per_loop_free(mk_per_loop_t **list, void *obj);

/* ==================================================================== logger */

enum { MK_LOGGER_DEBUG = 0, MK_LOGGER_INFO, MK_LOGGER_WARN, MK_LOGGER_ERROR };
void mk_logger_set_level(int level);
int mk_logger_level(void);
void mk_logger_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define mk_debug(...) do { if (mk_logger_level() <= MK_LOGGER_DEBUG) mk_logger_write(MK_LOGGER_DEBUG, __VA_ARGS__); } while (0)
#define mk_info(...) mk_logger_write(MK_LOGGER_INFO, __VA_ARGS__)
#define mk_warn(...) mk_logger_write(MK_LOGGER_WARN, __VA_ARGS__)
#define mk_error(...) mk_logger_write(MK_LOGGER_ERROR, __VA_ARGS__)

#define MK_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MK_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* MK_BASE_H */
