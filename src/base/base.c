/*
 * base.c -- errors, memory hooks, arenas, buffers, the checked reader,
 * varints, time and logging.  See base.h for the contract of each section.
 *
 * Encoding is big-endian (Kafka's network order) for fixed-width integers;
 * varints are protobuf-style (7 bits a byte, low groups first), signed ones
 * zig-zag encoded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ==================================================================== errors */

const char *mk_strerror(int err)
{
    switch (err) {
#define MK_ERR_CASE(name, val, text) case val: return text;
        MK_ERRORS(MK_ERR_CASE)
#undef MK_ERR_CASE
    }
    return "unknown error";
}

/* ==================================================================== memory */

static long mem_fail_countdown; /* 0 = off; the countdown reaching 0 fails */

void mk_mem_fail_at(long nth) { mem_fail_countdown = nth; }

static bool mem_should_fail(void)
{
    if (mem_fail_countdown <= 0)
        return false;
    return --mem_fail_countdown == 0;
}

void *mk_malloc(size_t n)
{
    if (mem_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *mk_calloc(size_t count, size_t n)
{
    if (mem_should_fail())
        return NULL;
    return calloc(count ? count : 1, n ? n : 1);
}

void *mk_realloc(void *p, size_t n)
{
    if (mem_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void mk_free(void *p) { free(p); }

char *mk_strndup(const char *s, size_t n)
{
    char *d = mk_malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *mk_strdup(const char *s) { return mk_strndup(s, strlen(s)); }

/* ===================================================================== arena */

struct mk_arena_chunk_s {
    mk_arena_chunk_t *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t mem[];
};

#define ARENA_CHUNK 8192

void mk_arena_init(mk_arena_t *a)
{
    a->head = NULL;
    a->total = 0;
}

void *mk_arena_alloc(mk_arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    mk_arena_chunk_t *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK / 2 ? n : ARENA_CHUNK;
        c = mk_malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        /* A big one-off allocation goes behind the current chunk so the
         * current chunk's free space stays usable. */
        if (n > ARENA_CHUNK / 2 && a->head) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *mk_arena_strndup(mk_arena_t *a, const char *s, size_t n)
{
    char *d = mk_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *mk_arena_sprintf(mk_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = mk_arena_alloc(a, (size_t)n + 1);
    if (!d)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void mk_arena_free(mk_arena_t *a)
{
    mk_arena_chunk_t *c = a->head;
    while (c) {
        mk_arena_chunk_t *next = c->next;
        mk_free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ======================================================================= buf */

void mk_buf_init(mk_buf_t *b) { memset(b, 0, sizeof(*b)); }

void mk_buf_free(mk_buf_t *b)
{
    mk_free(b->data);
    memset(b, 0, sizeof(*b));
}

void mk_buf_reset(mk_buf_t *b)
{
    b->len = 0;
    b->oom = false;
}

bool mk_buf_reserve(mk_buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= extra)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *d = mk_realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

uint8_t *mk_buf_steal(mk_buf_t *b, size_t *len_out)
{
    uint8_t *d = b->data;
    *len_out = b->len;
    memset(b, 0, sizeof(*b));
    return d;
}

void mk_buf_put(mk_buf_t *b, const void *p, size_t n)
{
    if (n == 0 || !mk_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void mk_buf_put_i8(mk_buf_t *b, int8_t v) { mk_buf_put(b, &v, 1); }

void mk_buf_put_i16(mk_buf_t *b, int16_t v)
{
    uint8_t t[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    mk_buf_put(b, t, 2);
}

void mk_buf_put_u32(mk_buf_t *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    mk_buf_put(b, t, 4);
}

void mk_buf_put_i32(mk_buf_t *b, int32_t v) { mk_buf_put_u32(b, (uint32_t)v); }

void mk_buf_put_i64(mk_buf_t *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    uint8_t t[8];
    for (int i = 7; i >= 0; i--) {
        t[i] = (uint8_t)u;
        u >>= 8;
    }
    mk_buf_put(b, t, 8);
}

void mk_buf_put_f64(mk_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    mk_buf_put_i64(b, (int64_t)u);
}

void mk_buf_put_uvarint(mk_buf_t *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    mk_buf_put(b, t, n);
}

void mk_buf_put_varint(mk_buf_t *b, int64_t v)
{
    mk_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void mk_buf_patch_u32(mk_buf_t *b, size_t at, uint32_t v)
{
    if (b->oom || at + 4 > b->len)
        return;
    b->data[at] = (uint8_t)(v >> 24);
    b->data[at + 1] = (uint8_t)(v >> 16);
    b->data[at + 2] = (uint8_t)(v >> 8);
    b->data[at + 3] = (uint8_t)v;
}

void mk_buf_patch_i32(mk_buf_t *b, size_t at, int32_t v) { mk_buf_patch_u32(b, at, (uint32_t)v); }

/* ==================================================================== reader */

static inline const uint8_t *rd_take(mk_reader_t *r, size_t n)
{
    if (r->err)
        return NULL;
    if ((size_t)(r->end - r->p) < n) {
        r->err = MK_ERR_TRUNCATED;
        r->p = r->end;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

int8_t mk_rd_i8(mk_reader_t *r)
{
    const uint8_t *p = rd_take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

uint16_t mk_rd_u16(mk_reader_t *r)
{
    const uint8_t *p = rd_take(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

int16_t mk_rd_i16(mk_reader_t *r) { return (int16_t)mk_rd_u16(r); }

uint32_t mk_rd_u32(mk_reader_t *r)
{
    const uint8_t *p = rd_take(r, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3] : 0;
}

int32_t mk_rd_i32(mk_reader_t *r) { return (int32_t)mk_rd_u32(r); }

int64_t mk_rd_i64(mk_reader_t *r)
{
    const uint8_t *p = rd_take(r, 8);
    if (!p)
        return 0;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

double mk_rd_f64(mk_reader_t *r)
{
    uint64_t u = (uint64_t)mk_rd_i64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

uint64_t mk_rd_uvarint(mk_reader_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t *p = rd_take(r, 1);
        if (!p)
            return 0;
        if (shift == 63 && (*p & 0x7e)) {
            mk_rd_fail(r, MK_ERR_INVALID);
            return 0;
        }
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80))
            return v;
    }
    mk_rd_fail(r, MK_ERR_INVALID);
    return 0;
}

int64_t mk_rd_varint(mk_reader_t *r)
{
    uint64_t u = mk_rd_uvarint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

uint32_t mk_rd_uvarint32(mk_reader_t *r)
{
    uint64_t v = mk_rd_uvarint(r);
    if (v > UINT32_MAX) {
        mk_rd_fail(r, MK_ERR_INVALID);
        return 0;
    }
    return (uint32_t)v;
}

int32_t mk_rd_varint32(mk_reader_t *r)
{
    int64_t v = mk_rd_varint(r);
    if (v < INT32_MIN || v > INT32_MAX) {
        mk_rd_fail(r, MK_ERR_INVALID);
        return 0;
    }
    return (int32_t)v;
}

const uint8_t *mk_rd_bytes(mk_reader_t *r, size_t n) { return rd_take(r, n); }

void mk_rd_skip(mk_reader_t *r, size_t n) { (void)rd_take(r, n); }

/* ==================================================================== varint */

size_t mk_uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t mk_varint_len(int64_t v)
{
    return mk_uvarint_len(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* ==================================================================== crc32c */

static uint32_t crc_table[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_ready = 1;
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    if (!crc_ready)
        crc_init();
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
              crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
              crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t mk_crc32c(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int hw = -1;
    if (hw < 0) {
        __builtin_cpu_init();
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (hw)
        return ~crc32c_hw(crc, p, n);
#endif
    return ~crc32c_sw(crc, p, n);
}

/* ====================================================================== time */

int64_t mk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t mk_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t mk_mono_ms(void) { return mk_mono_ns() / 1000000ull; }

/* ======================================================================= log */

static int log_level = MK_LOGGER_INFO;

void mk_logger_set_level(int level) { log_level = level; }
int mk_logger_level(void) { return log_level; }

void mk_logger_write(int level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < log_level)
        return;
    char ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ld %-5s %s\n", ts, now.tv_nsec / 1000000, names[level & 3], line);
}

/* ======================================================================= map */

static char map_tomb_mark;
#define MK_MAP_TOMB (&map_tomb_mark)

static uint64_t map_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

void mk_map_init(mk_map_t *m) { memset(m, 0, sizeof(*m)); }

void mk_map_free(mk_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != MK_MAP_TOMB)
            mk_free(m->keys[i]);
    mk_free(m->keys);
    mk_free(m->vals);
    memset(m, 0, sizeof(*m));
}

static size_t map_find(const mk_map_t *m, const char *key, bool *found)
{
    size_t mask = m->cap - 1, i = map_hash(key) & mask, tomb = SIZE_MAX;
    for (;;) {
        char *k = m->keys[i];
        if (!k) {
            *found = false;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (k == MK_MAP_TOMB) {
            if (tomb == SIZE_MAX)
                tomb = i;
        } else if (strcmp(k, key) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

void *mk_map_get(const mk_map_t *m, const char *key)
{
    if (!m->count)
        return NULL;
    bool found;
    size_t i = map_find(m, key, &found);
    return found ? m->vals[i] : NULL;
}

static int map_grow(mk_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    while (m->count * 2 >= ncap)
        ncap *= 2;
    mk_map_t n = {mk_calloc(ncap, sizeof(char *)), mk_calloc(ncap, sizeof(void *)), ncap, 0, 0};
    if (!n.keys || !n.vals) {
        mk_free(n.keys);
        mk_free(n.vals);
        return MK_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] && m->keys[i] != MK_MAP_TOMB) {
            bool found;
            size_t j = map_find(&n, m->keys[i], &found);
            n.keys[j] = m->keys[i];
            n.vals[j] = m->vals[i];
            n.count++;
            n.used++;
        }
    }
    mk_free(m->keys);
    mk_free(m->vals);
    *m = n;
    return 0;
}

int mk_map_put(mk_map_t *m, const char *key, void *val)
{
    if ((m->used + 1) * 4 >= m->cap * 3 && map_grow(m) < 0)
        return MK_ERR_NOMEM;
    bool found;
    size_t i = map_find(m, key, &found);
    if (found) {
        m->vals[i] = val;
        return 0;
    }
    char *k = mk_strdup(key);
    if (!k)
        return MK_ERR_NOMEM;
    if (m->keys[i] != MK_MAP_TOMB)
        m->used++;
    m->keys[i] = k;
    m->vals[i] = val;
    m->count++;
    return 0;
}

void *mk_map_del(mk_map_t *m, const char *key)
{
    if (!m->count)
        return NULL;
    bool found;
    size_t i = map_find(m, key, &found);
    if (!found)
        return NULL;
    void *v = m->vals[i];
    mk_free(m->keys[i]);
    m->keys[i] = MK_MAP_TOMB;
    m->vals[i] = NULL;
    m->count--;
    return v;
}

bool mk_map_next(const mk_map_t *m, size_t *iter, const char **key, void **val)
{
    for (size_t i = *iter; i < m->cap; i++) {
        if (m->keys[i] && m->keys[i] != MK_MAP_TOMB) {
            *key = m->keys[i];
            *val = m->vals[i];
            *iter = i + 1;
            return true;
        }
    }
    *iter = m->cap;
    return false;
}

/* ================================================================= per loop */

static pthread_mutex_t per_loop_lock = PTHREAD_MUTEX_INITIALIZER;

void *mk_per_loop_get(mk_per_loop_t **list, const void *loop, size_t size)
{
    pthread_mutex_lock(&per_loop_lock);
    mk_per_loop_t *o = *list;
    while (o && o->loop != loop)
        o = o->next;
    if (!o && size >= sizeof(*o) && (o = mk_calloc(1, size)) != NULL) {
        o->loop = loop;
        o->next = *list;
        *list = o;
    }
    pthread_mutex_unlock(&per_loop_lock);
    return o;
}

void mk_per_loop_free(mk_per_loop_t **list, void *obj)
{
    pthread_mutex_lock(&per_loop_lock);
    for (mk_per_loop_t **pp = list; *pp; pp = &(*pp)->next)
        if (*pp == obj) {
            *pp = (*pp)->next;
            break;
        }
    pthread_mutex_unlock(&per_loop_lock);
    mk_free(obj);
}

/* ==================================================================== files */

int mk_mkdir_p(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return MK_ERR_INVALID;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                return MK_ERR_IO;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        return MK_ERR_IO;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int mk_rm_rf(const char *path)
{
    if (access(path, F_OK) != 0)
        return 0;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 ? MK_ERR_IO : 0;
}

int mk_file_write_private(const char *path, const void *data, size_t len, bool sync)
{
    char tmp[4352];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    bool ok = fchmod(fd, 0600) == 0 && write(fd, data, len) == (ssize_t)len && (!sync || fsync(fd) == 0);
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}
