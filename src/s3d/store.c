/*
 * store.c -- the bundled S3 server's objects on disk, and the index of
 * every bucket in memory.
 *
 * Layout under DATA/s3/ (bucket names cannot contain '_', so the other
 * entries never collide with a bucket):
 *
 *   _credentials                 the key pair (s3d.c; 0600)
 *   _tmp/<n>                     files being written; emptied at every start
 *   _uploads/<id>/_upload        a multipart upload: bucket, key, metadata
 *   _uploads/<id>/<nnnnn>        its part number nnnnn (object file format)
 *   <bucket>/_bucket             the bucket exists: "<created ms>\n"
 *   <bucket>/<sha256(key) hex>   one object: header, then the data
 *
 * Keys never become paths: a file is named by the SHA-256 of its key, so a
 * key with "../", a NUL or 1024 bytes of anything cannot leave its bucket
 * or hit a file-name limit.  The key itself is in the file's header.
 *
 * Object file format (integers big-endian, read back with the checked
 * reader):
 *
 *   offset  size  field
 *   0       8     magic "MKS3OBJ1"
 *   8       4     H, the header length (80 <= H <= 64 KiB); data starts at H
 *   12      4     CRC32C of bytes [16, H)
 *   16      8     data size
 *   24      8     last-modified, ms since the epoch
 *   32      48    ETag without quotes, NUL-padded
 *   80      2+n   bucket name
 *   ..      2+n   key
 *   ..      2     count of stored headers, then each as 2+n name, 2+n value
 *   H       size  the data
 *
 * The fields that are known only at the end (size, mtime, ETag) have fixed
 * widths, so a writer reserves the whole header at the start, streams the
 * data after it, and rewrites the header in place at commit.
 *
 * Atomicity: data goes to _tmp/, then header, fsync, rename into the
 * bucket, fsync of the bucket directory.  A reader sees the old object or
 * the new one, never a part; a crash leaves at worst a file in _tmp/, which
 * the next start removes.  An open file descriptor keeps serving the
 * version it opened (a GET in progress is not disturbed by a PUT or
 * DELETE of the same key).
 *
 * The index: per bucket a sorted array of (key, size, mtime, ETag), loaded
 * at start from the headers, so listings never touch the disk.  Buckets
 * are kept sorted by name.
 *
 * Threads: the s3d thread only (and mk_s3_store_open/close before and
 * after it runs).  The counts are atomics that s3d.c reads for the stats.
 */
#include "s3d/s3d_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "MKS3OBJ1"
#define HDR_FIXED 80
#define HDR_MAX 65536
#define PATH_MAX_S3 4400

struct mk_s3_bucket_s {
    char name[64];
    int64_t created_ms;
    mk_s3_obj_t **objs;       /* sorted by key bytes */
    size_t n, cap;
    uint64_t bytes;
};

struct mk_s3_store_s {
    char root[4200];
    mk_s3_bucket_t **buckets; /* sorted by name */
    int nbuckets;
    mk_s3_upload_t **uploads;
    int nuploads, cap_uploads;
    mk_s3_store_counts_t *counts;
    uint64_t tmp_seq;
};

/* ================================================================ helpers */

/* "a/b" into out; -1 when it does not fit (never a cut path). */
static int path_join(char *out, size_t n, const char *a, const char *b)
{
    int r = snprintf(out, n, "%s/%s", a, b);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

static int io_err(void) { return errno == ENOENT ? MK_ERR_NOT_FOUND : MK_ERR_IO; }

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return MK_ERR_IO;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return MK_ERR_IO;
        }
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static ssize_t pread_full(int fd, void *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)p + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void key_file(const char *key, size_t len, char out[65]) { mk_s3_sha256_hex(key, len, out); }

static int cmp_key(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, MK_MIN(al, bl));
    return c ? c : (al < bl ? -1 : al > bl);
}

bool mk_s3_stored_header(const char *name)
{
    static const char *const std[] = {"content-type", "content-encoding", "content-disposition",
                                      "content-language", "cache-control", "expires"};
    for (size_t i = 0; i < MK_ARRAY_LEN(std); i++)
        if (strcmp(name, std[i]) == 0)
            return true;
    return strncmp(name, "x-amz-meta-", 11) == 0 && name[11];
}

/* ========================================================== header format */

static void put_str(mk_buf_t *b, const char *s, size_t n)
{
    mk_buf_put_i16(b, (int16_t)(uint16_t)n);
    mk_buf_put(b, s, n);
}

void mk_s3_objhdr_encode(mk_buf_t *out, const char *bucket, const char *key, size_t key_len,
                         const mk_s3_pair_t *pairs, int npairs, uint64_t size, int64_t mtime_ms, const char *etag)
{
    size_t start = out->len;
    mk_buf_put(out, MAGIC, 8);
    mk_buf_put_u32(out, 0); /* H */
    mk_buf_put_u32(out, 0); /* CRC */
    mk_buf_put_i64(out, (int64_t)size);
    mk_buf_put_i64(out, mtime_ms);
    char e[MK_S3_ETAG_MAX];
    memset(e, 0, sizeof(e));
    if (etag)
        memcpy(e, etag, MK_MIN(strlen(etag), sizeof(e) - 1));
    mk_buf_put(out, e, sizeof(e));
    put_str(out, bucket, strlen(bucket));
    put_str(out, key, key_len);
    mk_buf_put_i16(out, (int16_t)npairs);
    for (int i = 0; i < npairs; i++) {
        put_str(out, pairs[i].name, strlen(pairs[i].name));
        put_str(out, pairs[i].value, strlen(pairs[i].value));
    }
    if (!mk_buf_ok(out))
        return;
    size_t h = out->len - start;
    mk_buf_patch_u32(out, start + 8, (uint32_t)h);
    mk_buf_patch_u32(out, start + 12, mk_crc32c(0, out->data + start + 16, h - 16));
}

static const char *rd_str(mk_reader_t *r, mk_arena_t *a, size_t max, size_t *len)
{
    uint16_t n = mk_rd_u16(r);
    if (n > max) {
        mk_rd_fail(r, MK_ERR_CORRUPT);
        return NULL;
    }
    const uint8_t *p = mk_rd_bytes(r, n);
    if (!p)
        return NULL;
    char *s = mk_arena_strndup(a, (const char *)p, n);
    if (!s) {
        mk_rd_fail(r, MK_ERR_NOMEM);
        return NULL;
    }
    if (memchr(s, 0, n)) {
        mk_rd_fail(r, MK_ERR_CORRUPT);
        return NULL;
    }
    if (len)
        *len = n;
    return s;
}

int mk_s3_objhdr_decode(const uint8_t *p, size_t n, mk_arena_t *a, mk_s3_objhdr_t *h, uint32_t *need)
{
    memset(h, 0, sizeof(*h));
    mk_reader_t r;
    mk_rd_init(&r, p, n);
    const uint8_t *magic = mk_rd_bytes(&r, 8);
    uint32_t hl = mk_rd_u32(&r);
    uint32_t crc = mk_rd_u32(&r);
    if (!mk_rd_ok(&r))
        return MK_ERR_TRUNCATED;
    if (memcmp(magic, MAGIC, 8) != 0 || hl < HDR_FIXED || hl > HDR_MAX)
        return MK_ERR_CORRUPT;
    if (need)
        *need = hl;
    if (n < hl)
        return MK_ERR_TRUNCATED;
    if (mk_crc32c(0, p + 16, hl - 16) != crc)
        return MK_ERR_CORRUPT;
    mk_rd_init(&r, p + 16, hl - 16);
    h->size = (uint64_t)mk_rd_i64(&r);
    h->mtime_ms = mk_rd_i64(&r);
    const uint8_t *e = mk_rd_bytes(&r, MK_S3_ETAG_MAX);
    if (!e || memchr(e, 0, MK_S3_ETAG_MAX) == NULL)
        return MK_ERR_CORRUPT;
    memcpy(h->etag, e, MK_S3_ETAG_MAX);
    h->etag[MK_S3_ETAG_MAX] = 0;
    for (const char *c = h->etag; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == '-'))
            return MK_ERR_CORRUPT;
    h->bucket = rd_str(&r, a, 63, NULL);
    h->key = rd_str(&r, a, MK_S3_MAX_KEY, &h->key_len);
    uint16_t np = mk_rd_u16(&r);
    if (!mk_rd_ok(&r) || np > 256)
        return r.err == MK_ERR_NOMEM ? MK_ERR_NOMEM : MK_ERR_CORRUPT;
    h->pairs = np ? mk_arena_alloc(a, sizeof(mk_s3_pair_t) * np) : NULL;
    if (np && !h->pairs)
        return MK_ERR_NOMEM;
    for (int i = 0; i < np; i++) {
        h->pairs[i].name = rd_str(&r, a, 256, NULL);
        h->pairs[i].value = rd_str(&r, a, MK_S3_MAX_META_VALUE, NULL);
    }
    h->npairs = np;
    if (!mk_rd_ok(&r))
        return r.err == MK_ERR_NOMEM ? MK_ERR_NOMEM : MK_ERR_CORRUPT;
    if (mk_rd_remaining(&r) != 0)
        return MK_ERR_CORRUPT;
    h->data_off = hl;
    return 0;
}

/* Read and check the header of an open file; *size_ok: file size = H + size. */
static int read_header(int fd, mk_arena_t *a, mk_s3_objhdr_t *h)
{
    uint8_t small[4096];
    ssize_t got = pread_full(fd, small, sizeof(small), 0);
    if (got < 0)
        return MK_ERR_IO;
    uint32_t need = 0;
    int rc = mk_s3_objhdr_decode(small, (size_t)got, a, h, &need);
    if (rc == MK_ERR_TRUNCATED && need > (uint32_t)got && (size_t)got == sizeof(small)) {
        uint8_t *big = mk_malloc(need);
        if (!big)
            return MK_ERR_NOMEM;
        got = pread_full(fd, big, need, 0);
        rc = got == (ssize_t)need ? mk_s3_objhdr_decode(big, need, a, h, NULL) : MK_ERR_CORRUPT;
        mk_free(big);
    } else if (rc == MK_ERR_TRUNCATED) {
        rc = MK_ERR_CORRUPT;
    }
    if (rc)
        return rc;
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return MK_ERR_IO;
    if ((uint64_t)sb.st_size != (uint64_t)h->data_off + h->size)
        return MK_ERR_CORRUPT;
    return 0;
}

/* ==================================================================== index */

static size_t lower_bound(const mk_s3_bucket_t *b, const char *key, size_t len)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_key(b->objs[mid]->key, b->objs[mid]->key_len, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t mk_s3_bucket_lower_bound(const mk_s3_bucket_t *b, const char *key, size_t len)
{
    return lower_bound(b, key, len);
}

const mk_s3_obj_t *mk_s3_bucket_find(const mk_s3_bucket_t *b, const char *key, size_t len)
{
    size_t i = lower_bound(b, key, len);
    return i < b->n && cmp_key(b->objs[i]->key, b->objs[i]->key_len, key, len) == 0 ? b->objs[i] : NULL;
}

size_t mk_s3_bucket_count(const mk_s3_bucket_t *b) { return b->n; }
const mk_s3_obj_t *mk_s3_bucket_at(const mk_s3_bucket_t *b, size_t i) { return i < b->n ? b->objs[i] : NULL; }
const char *mk_s3_bucket_name(const mk_s3_bucket_t *b) { return b->name; }
int64_t mk_s3_bucket_created_ms(const mk_s3_bucket_t *b) { return b->created_ms; }

static void obj_free(mk_s3_obj_t *o)
{
    if (o) {
        mk_free(o->key);
        mk_free(o);
    }
}

/* Insert or replace; 0 or MK_ERR_NOMEM. */
static int index_put(mk_s3_store_t *st, mk_s3_bucket_t *b, const char *key, size_t len, uint64_t size,
                     int64_t mtime, const char *etag)
{
    size_t i = lower_bound(b, key, len);
    mk_s3_obj_t *o;
    if (i < b->n && cmp_key(b->objs[i]->key, b->objs[i]->key_len, key, len) == 0) {
        o = b->objs[i];
        b->bytes -= o->size;
        atomic_fetch_sub(&st->counts->bytes, o->size);
    } else {
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 64;
            mk_s3_obj_t **na = mk_realloc(b->objs, cap * sizeof(*na));
            if (!na)
                return MK_ERR_NOMEM;
            b->objs = na;
            b->cap = cap;
        }
        o = mk_calloc(1, sizeof(*o));
        char *k = o ? mk_strndup(key, len) : NULL;
        if (!k) {
            mk_free(o);
            return MK_ERR_NOMEM;
        }
        o->key = k;
        o->key_len = len;
        memmove(&b->objs[i + 1], &b->objs[i], (b->n - i) * sizeof(*b->objs));
        b->objs[i] = o;
        b->n++;
        atomic_fetch_add(&st->counts->objects, 1);
    }
    o->size = size;
    o->mtime_ms = mtime;
    snprintf(o->etag, sizeof(o->etag), "%s", etag);
    b->bytes += size;
    atomic_fetch_add(&st->counts->bytes, size);
    return 0;
}

static void index_del(mk_s3_store_t *st, mk_s3_bucket_t *b, const char *key, size_t len)
{
    size_t i = lower_bound(b, key, len);
    if (i >= b->n || cmp_key(b->objs[i]->key, b->objs[i]->key_len, key, len) != 0)
        return;
    mk_s3_obj_t *o = b->objs[i];
    b->bytes -= o->size;
    atomic_fetch_sub(&st->counts->bytes, o->size);
    atomic_fetch_sub(&st->counts->objects, 1);
    memmove(&b->objs[i], &b->objs[i + 1], (b->n - i - 1) * sizeof(*b->objs));
    b->n--;
    obj_free(o);
}

static void bucket_free(mk_s3_bucket_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        obj_free(b->objs[i]);
    mk_free(b->objs);
    mk_free(b);
}

/* ================================================================== buckets */

int mk_s3_store_bucket_count(const mk_s3_store_t *st) { return st->nbuckets; }
mk_s3_bucket_t *mk_s3_store_bucket_at(mk_s3_store_t *st, int i)
{
    return i >= 0 && i < st->nbuckets ? st->buckets[i] : NULL;
}

static int bucket_pos(const mk_s3_store_t *st, const char *name, bool *found)
{
    int lo = 0, hi = st->nbuckets;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(st->buckets[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

mk_s3_bucket_t *mk_s3_store_bucket(mk_s3_store_t *st, const char *name)
{
    bool found;
    int i = bucket_pos(st, name, &found);
    return found ? st->buckets[i] : NULL;
}

static int bucket_add(mk_s3_store_t *st, mk_s3_bucket_t *b)
{
    bool found;
    int i = bucket_pos(st, b->name, &found);
    if (found)
        return MK_ERR_EXISTS;
    mk_s3_bucket_t **na = mk_realloc(st->buckets, sizeof(*na) * (size_t)(st->nbuckets + 1));
    if (!na)
        return MK_ERR_NOMEM;
    st->buckets = na;
    memmove(&na[i + 1], &na[i], sizeof(*na) * (size_t)(st->nbuckets - i));
    na[i] = b;
    st->nbuckets++;
    atomic_store(&st->counts->buckets, (uint64_t)st->nbuckets);
    return 0;
}

/* Write a small file atomically (tmp in the same directory, fsync, rename). */
static int write_small(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX_S3], tmp[PATH_MAX_S3 + 8];
    if (path_join(path, sizeof(path), dir, name) < 0)
        return MK_ERR_INVALID;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return MK_ERR_IO;
    int rc = write_all(fd, text, strlen(text));
    if (rc == 0 && fsync(fd) < 0)
        rc = MK_ERR_IO;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = MK_ERR_IO;
    if (rc)
        unlink(tmp);
    else
        fsync_dir(dir);
    return rc;
}

int mk_s3_store_bucket_create(mk_s3_store_t *st, const char *name, int64_t now_ms)
{
    if (!mk_s3_bucket_name_valid(name))
        return MK_ERR_INVALID;
    if (mk_s3_store_bucket(st, name))
        return MK_ERR_EXISTS;
    if (st->nbuckets >= MK_S3_MAX_BUCKETS)
        return MK_ERR_RANGE;
    char dir[PATH_MAX_S3], text[32];
    snprintf(dir, sizeof(dir), "%s/%s", st->root, name);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return MK_ERR_IO;
    snprintf(text, sizeof(text), "%lld\n", (long long)now_ms);
    int rc = write_small(dir, "_bucket", text);
    if (rc)
        return rc;
    fsync_dir(st->root);
    mk_s3_bucket_t *b = mk_calloc(1, sizeof(*b));
    if (!b)
        return MK_ERR_NOMEM;
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->created_ms = now_ms;
    rc = bucket_add(st, b);
    if (rc)
        bucket_free(b);
    return rc;
}

static void upload_remove_at(mk_s3_store_t *st, int i);

int mk_s3_store_bucket_delete(mk_s3_store_t *st, const char *name)
{
    bool found;
    int i = bucket_pos(st, name, &found);
    if (!found)
        return MK_ERR_NOT_FOUND;
    mk_s3_bucket_t *b = st->buckets[i];
    if (b->n)
        return MK_ERR_STATE;
    for (int u = st->nuploads - 1; u >= 0; u--)
        if (strcmp(st->uploads[u]->bucket, name) == 0)
            upload_remove_at(st, u);
    char dir[PATH_MAX_S3], marker[PATH_MAX_S3 + 16];
    snprintf(dir, sizeof(dir), "%s/%s", st->root, name);
    snprintf(marker, sizeof(marker), "%s/_bucket", dir);
    if (unlink(marker) < 0 && errno != ENOENT)
        return MK_ERR_IO;
    mk_rm_rf(dir);
    fsync_dir(st->root);
    memmove(&st->buckets[i], &st->buckets[i + 1], sizeof(*st->buckets) * (size_t)(st->nbuckets - i - 1));
    st->nbuckets--;
    atomic_store(&st->counts->buckets, (uint64_t)st->nbuckets);
    bucket_free(b);
    return 0;
}

/* ================================================================== objects */

static void obj_path(const mk_s3_store_t *st, const char *bucket, const char *key, size_t len, char *out, size_t n)
{
    char h[65];
    key_file(key, len, h);
    snprintf(out, n, "%s/%s/%s", st->root, bucket, h);
}

int mk_s3_store_object_open(mk_s3_store_t *st, const mk_s3_bucket_t *b, const char *key, size_t key_len,
                            mk_arena_t *a, int *fd_out, mk_s3_objhdr_t *hdr)
{
    char path[PATH_MAX_S3];
    obj_path(st, b->name, key, key_len, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_err();
    int rc = read_header(fd, a, hdr);
    if (rc == 0 && (hdr->key_len != key_len || memcmp(hdr->key, key, key_len) != 0))
        rc = MK_ERR_CORRUPT;
    if (rc) {
        close(fd);
        if (rc == MK_ERR_CORRUPT)
            mk_warn("s3: %s: corrupt object file", path);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int mk_s3_store_object_delete(mk_s3_store_t *st, mk_s3_bucket_t *b, const char *key, size_t key_len)
{
    char path[PATH_MAX_S3];
    obj_path(st, b->name, key, key_len, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        return MK_ERR_IO;
    index_del(st, b, key, key_len);
    return 0;
}

/* ================================================================== writers */

void mk_s3_writer_init(mk_s3_writer_t *w)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    mk_buf_init(&w->hdr);
}

int mk_s3_writer_begin(mk_s3_store_t *st, mk_s3_writer_t *w, const char *bucket, const char *key, size_t key_len,
                       const mk_s3_pair_t *pairs, int npairs)
{
    mk_s3_writer_abort(st, w);
    uint8_t rnd[6];
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    char hex[13];
    mk_s3_hex(rnd, sizeof(rnd), hex);
    snprintf(w->path, sizeof(w->path), "_tmp/%llu-%s", (unsigned long long)++st->tmp_seq, hex);
    mk_buf_reset(&w->hdr);
    mk_s3_objhdr_encode(&w->hdr, bucket, key, key_len, pairs, npairs, 0, 0, NULL);
    if (!mk_buf_ok(&w->hdr) || w->hdr.len > HDR_MAX)
        return MK_ERR_NOMEM;
    w->hdr_len = (uint32_t)w->hdr.len;
    snprintf(w->bucket, sizeof(w->bucket), "%s", bucket);
    w->key = mk_strndup(key, key_len);
    w->key_len = key_len;
    if (!w->key)
        return MK_ERR_NOMEM;
    char path[PATH_MAX_S3];
    snprintf(path, sizeof(path), "%s/%s", st->root, w->path);
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        mk_free(w->key);
        w->key = NULL;
        return MK_ERR_IO;
    }
    w->written = 0;
    int rc = write_all(w->fd, w->hdr.data, w->hdr.len);
    if (rc)
        mk_s3_writer_abort(st, w);
    return rc;
}

int mk_s3_writer_write(mk_s3_writer_t *w, const void *p, size_t n)
{
    if (w->fd < 0)
        return MK_ERR_STATE;
    int rc = write_all(w->fd, p, n);
    if (rc == 0)
        w->written += n;
    return rc;
}

int mk_s3_writer_copy(mk_s3_writer_t *w, int fd, uint64_t off, uint64_t len, mk_s3_hash_t *h)
{
    size_t cap = MK_S3_STREAM_CHUNK;
    uint8_t *buf = mk_malloc(cap);
    if (!buf)
        return MK_ERR_NOMEM;
    int rc = 0;
    while (len && rc == 0) {
        size_t want = (size_t)MK_MIN((uint64_t)cap, len);
        ssize_t got = pread_full(fd, buf, want, (off_t)off);
        if (got != (ssize_t)want) {
            rc = MK_ERR_IO;
            break;
        }
        if (h)
            mk_s3_hash_update(h, buf, want);
        rc = mk_s3_writer_write(w, buf, want);
        off += want;
        len -= want;
    }
    mk_free(buf);
    return rc;
}

void mk_s3_writer_abort(mk_s3_store_t *st, mk_s3_writer_t *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        char path[PATH_MAX_S3];
        snprintf(path, sizeof(path), "%s/%s", st->root, w->path);
        unlink(path);
    }
    mk_free(w->key);
    w->key = NULL;
    mk_buf_free(&w->hdr);
}

/* Header with the final size, mtime and ETag, fsync, close, rename to
 * dst (absolute), fsync dst's directory.  The writer is idle after. */
static int writer_finish(mk_s3_store_t *st, mk_s3_writer_t *w, const char *etag, int64_t mtime_ms, const char *dst,
                         const char *dst_dir)
{
    if (w->fd < 0)
        return MK_ERR_STATE;
    /* the same header again with the final fixed-width fields */
    mk_buf_t h;
    mk_buf_init(&h);
    mk_buf_put(&h, w->hdr.data, w->hdr.len);
    int rc = mk_buf_ok(&h) ? 0 : MK_ERR_NOMEM;
    if (rc == 0) {
        uint8_t fixed[8];
        for (int i = 0; i < 8; i++)
            fixed[i] = (uint8_t)(w->written >> (56 - 8 * i));
        memcpy(h.data + 16, fixed, 8);
        for (int i = 0; i < 8; i++)
            fixed[i] = (uint8_t)((uint64_t)mtime_ms >> (56 - 8 * i));
        memcpy(h.data + 24, fixed, 8);
        memset(h.data + 32, 0, MK_S3_ETAG_MAX);
        memcpy(h.data + 32, etag, MK_MIN(strlen(etag), (size_t)MK_S3_ETAG_MAX - 1));
        mk_buf_patch_u32(&h, 12, mk_crc32c(0, h.data + 16, h.len - 16));
        rc = pwrite_all(w->fd, h.data, h.len, 0);
    }
    mk_buf_free(&h);
    if (rc == 0 && fsync(w->fd) < 0)
        rc = MK_ERR_IO;
    if (rc) {
        mk_s3_writer_abort(st, w);
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    char src[PATH_MAX_S3];
    snprintf(src, sizeof(src), "%s/%s", st->root, w->path);
    if (rename(src, dst) < 0) {
        rc = io_err();
        unlink(src);
        mk_s3_writer_abort(st, w);
        return rc;
    }
    fsync_dir(dst_dir);
    return 0;
}

int mk_s3_writer_commit(mk_s3_store_t *st, mk_s3_writer_t *w, const char *etag, int64_t mtime_ms)
{
    mk_s3_bucket_t *b = mk_s3_store_bucket(st, w->bucket);
    if (!b) {
        mk_s3_writer_abort(st, w);
        return MK_ERR_NOT_FOUND;
    }
    char dst[PATH_MAX_S3], dir[PATH_MAX_S3];
    obj_path(st, b->name, w->key, w->key_len, dst, sizeof(dst));
    snprintf(dir, sizeof(dir), "%s/%s", st->root, b->name);
    uint64_t size = w->written;
    int rc = writer_finish(st, w, etag, mtime_ms, dst, dir);
    if (rc == 0)
        rc = index_put(st, b, w->key, w->key_len, size, mtime_ms, etag);
    if (rc == MK_ERR_NOMEM) /* on disk but not indexed: take it back */
        unlink(dst);
    mk_s3_writer_abort(st, w);
    return rc;
}

/* ================================================================== uploads */

int mk_s3_store_upload_count(const mk_s3_store_t *st) { return st->nuploads; }
const mk_s3_upload_t *mk_s3_store_upload_at(const mk_s3_store_t *st, int i)
{
    return i >= 0 && i < st->nuploads ? st->uploads[i] : NULL;
}

static int upload_index(const mk_s3_store_t *st, const char *id)
{
    for (int i = 0; i < st->nuploads; i++)
        if (strcmp(st->uploads[i]->id, id) == 0)
            return i;
    return -1;
}

const mk_s3_upload_t *mk_s3_store_upload(const mk_s3_store_t *st, const char *id)
{
    int i = upload_index(st, id);
    return i < 0 ? NULL : st->uploads[i];
}

static int upload_add(mk_s3_store_t *st, const char *id, const char *bucket, const char *key, size_t key_len,
                      int64_t initiated)
{
    if (st->nuploads == st->cap_uploads) {
        int cap = st->cap_uploads ? st->cap_uploads * 2 : 16;
        mk_s3_upload_t **na = mk_realloc(st->uploads, sizeof(*na) * (size_t)cap);
        if (!na)
            return MK_ERR_NOMEM;
        st->uploads = na;
        st->cap_uploads = cap;
    }
    mk_s3_upload_t *u = mk_calloc(1, sizeof(*u));
    if (!u)
        return MK_ERR_NOMEM;
    snprintf(u->id, sizeof(u->id), "%s", id);
    u->bucket = mk_strdup(bucket);
    u->key = mk_strndup(key, key_len);
    u->key_len = key_len;
    u->initiated_ms = initiated;
    if (!u->bucket || !u->key) {
        mk_free(u->bucket);
        mk_free(u->key);
        mk_free(u);
        return MK_ERR_NOMEM;
    }
    st->uploads[st->nuploads++] = u;
    atomic_store(&st->counts->uploads, (uint64_t)st->nuploads);
    return 0;
}

static void upload_remove_at(mk_s3_store_t *st, int i)
{
    mk_s3_upload_t *u = st->uploads[i];
    char dir[PATH_MAX_S3];
    snprintf(dir, sizeof(dir), "%s/_uploads/%s", st->root, u->id);
    mk_rm_rf(dir);
    mk_free(u->bucket);
    mk_free(u->key);
    mk_free(u);
    st->uploads[i] = st->uploads[--st->nuploads];
    atomic_store(&st->counts->uploads, (uint64_t)st->nuploads);
}

int mk_s3_store_upload_create(mk_s3_store_t *st, const char *bucket, const char *key, size_t key_len,
                              const mk_s3_pair_t *pairs, int npairs, int64_t now_ms, char id[33])
{
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return MK_ERR_IO;
    mk_s3_hex(rnd, sizeof(rnd), id);
    char dir[PATH_MAX_S3], dst[PATH_MAX_S3 + 16];
    snprintf(dir, sizeof(dir), "%s/_uploads/%s", st->root, id);
    if (mkdir(dir, 0755) < 0)
        return MK_ERR_IO;
    snprintf(dst, sizeof(dst), "%s/_upload", dir);
    mk_s3_writer_t w;
    mk_s3_writer_init(&w);
    int rc = mk_s3_writer_begin(st, &w, bucket, key, key_len, pairs, npairs);
    if (rc == 0)
        rc = writer_finish(st, &w, "", now_ms, dst, dir);
    mk_s3_writer_abort(st, &w);
    if (rc == 0)
        rc = upload_add(st, id, bucket, key, key_len, now_ms);
    if (rc)
        mk_rm_rf(dir);
    return rc;
}

int mk_s3_writer_commit_part(mk_s3_store_t *st, mk_s3_writer_t *w, const char *upload_id, int number,
                             const char *etag, int64_t mtime_ms)
{
    if (!mk_s3_store_upload(st, upload_id)) {
        mk_s3_writer_abort(st, w);
        return MK_ERR_NOT_FOUND;
    }
    char dir[PATH_MAX_S3], dst[PATH_MAX_S3 + 16];
    snprintf(dir, sizeof(dir), "%s/_uploads/%s", st->root, upload_id);
    snprintf(dst, sizeof(dst), "%s/%05d", dir, number);
    int rc = writer_finish(st, w, etag, mtime_ms, dst, dir);
    mk_s3_writer_abort(st, w);
    return rc;
}

int mk_s3_store_upload_meta(mk_s3_store_t *st, const char *id, mk_arena_t *a, mk_s3_objhdr_t *hdr)
{
    if (!mk_s3_store_upload(st, id))
        return MK_ERR_NOT_FOUND;
    char path[PATH_MAX_S3];
    snprintf(path, sizeof(path), "%s/_uploads/%s/_upload", st->root, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_err();
    int rc = read_header(fd, a, hdr);
    close(fd);
    return rc;
}

static int cmp_part(const void *a, const void *b)
{
    const mk_s3_part_t *x = a, *y = b;
    return x->number - y->number;
}

int mk_s3_store_upload_parts(mk_s3_store_t *st, const char *id, mk_arena_t *a, mk_s3_part_t **parts, int *n)
{
    *parts = NULL;
    *n = 0;
    if (!mk_s3_store_upload(st, id))
        return MK_ERR_NOT_FOUND;
    char dir[PATH_MAX_S3];
    snprintf(dir, sizeof(dir), "%s/_uploads/%s", st->root, id);
    DIR *d = opendir(dir);
    if (!d)
        return io_err();
    int cap = 0, count = 0;
    mk_s3_part_t *v = NULL;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strlen(nm) != 5 || strspn(nm, "0123456789") != 5)
            continue;
        int num = atoi(nm);
        if (num < 1 || num > MK_S3_MAX_PARTS)
            continue;
        char path[PATH_MAX_S3 + 16];
        snprintf(path, sizeof(path), "%s/%s", dir, nm);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* replaced meanwhile: cannot happen on one thread */
        mk_s3_objhdr_t h;
        int hr = read_header(fd, a, &h);
        close(fd);
        if (hr) {
            mk_warn("s3: %s: corrupt part file", path);
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            mk_s3_part_t *nv = mk_realloc(v, sizeof(*nv) * (size_t)cap);
            if (!nv) {
                rc = MK_ERR_NOMEM;
                break;
            }
            v = nv;
        }
        v[count].number = num;
        v[count].size = h.size;
        v[count].mtime_ms = h.mtime_ms;
        memcpy(v[count].etag, h.etag, sizeof(h.etag));
        count++;
    }
    closedir(d);
    if (rc == 0 && count) {
        qsort(v, (size_t)count, sizeof(*v), cmp_part);
        *parts = mk_arena_alloc(a, sizeof(*v) * (size_t)count);
        if (*parts) {
            memcpy(*parts, v, sizeof(*v) * (size_t)count);
            *n = count;
        } else {
            rc = MK_ERR_NOMEM;
        }
    }
    mk_free(v);
    return rc;
}

int mk_s3_store_upload_complete(mk_s3_store_t *st, const char *id, const int *numbers, const char *const *etags,
                                int n, int64_t now_ms, char etag[MK_S3_ETAG_MAX + 1], int *bad_part)
{
    *bad_part = -1;
    const mk_s3_upload_t *u = mk_s3_store_upload(st, id);
    if (!u)
        return MK_ERR_NOT_FOUND;
    if (!mk_s3_store_bucket(st, u->bucket))
        return MK_ERR_NOT_FOUND;
    mk_arena_t a;
    mk_arena_init(&a);
    mk_s3_part_t *parts;
    int np;
    mk_s3_objhdr_t meta;
    int rc = mk_s3_store_upload_parts(st, id, &a, &parts, &np);
    if (rc == 0)
        rc = mk_s3_store_upload_meta(st, id, &a, &meta);
    /* every listed part exists with that ETag; all but the last are big enough */
    const mk_s3_part_t **use = rc == 0 ? mk_arena_alloc(&a, sizeof(*use) * (size_t)(n ? n : 1)) : NULL;
    if (rc == 0 && !use)
        rc = MK_ERR_NOMEM;
    for (int i = 0; rc == 0 && i < n; i++) {
        const mk_s3_part_t *p = NULL;
        for (int j = 0; j < np; j++)
            if (parts[j].number == numbers[i])
                p = &parts[j];
        if (!p || strcmp(p->etag, etags[i]) != 0) {
            *bad_part = i;
            rc = MK_ERR_INVALID;
        } else if (i + 1 < n && p->size < MK_S3_MIN_PART) {
            *bad_part = i;
            rc = MK_ERR_RANGE;
        }
        use[i] = p;
    }
    mk_s3_hash_t md5 = {0};
    if (rc == 0)
        rc = mk_s3_hash_init(&md5, EVP_md5());
    mk_s3_writer_t w;
    mk_s3_writer_init(&w);
    if (rc == 0)
        rc = mk_s3_writer_begin(st, &w, u->bucket, u->key, u->key_len, meta.pairs, meta.npairs);
    char dir[PATH_MAX_S3];
    snprintf(dir, sizeof(dir), "%s/_uploads/%s", st->root, id);
    for (int i = 0; rc == 0 && i < n; i++) {
        uint8_t bin[16];
        if (mk_s3_unhex(use[i]->etag, 16, bin) == 0)
            mk_s3_hash_update(&md5, bin, 16);
        char path[PATH_MAX_S3 + 16];
        snprintf(path, sizeof(path), "%s/%05d", dir, use[i]->number);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = MK_ERR_IO;
            break;
        }
        mk_s3_objhdr_t ph;
        rc = read_header(fd, &a, &ph);
        if (rc == 0)
            rc = mk_s3_writer_copy(&w, fd, ph.data_off, ph.size, NULL);
        close(fd);
    }
    if (rc == 0) {
        uint8_t d[EVP_MAX_MD_SIZE];
        char hex[33];
        mk_s3_hash_final(&md5, d);
        mk_s3_hex(d, 16, hex);
        snprintf(etag, MK_S3_ETAG_MAX + 1, "%s-%d", hex, n);
        rc = mk_s3_writer_commit(st, &w, etag, now_ms);
    }
    mk_s3_hash_free(&md5);
    mk_s3_writer_abort(st, &w);
    mk_arena_free(&a);
    if (rc == 0) {
        int i = upload_index(st, id);
        if (i >= 0)
            upload_remove_at(st, i);
    }
    return rc;
}

int mk_s3_store_upload_abort(mk_s3_store_t *st, const char *id)
{
    int i = upload_index(st, id);
    if (i < 0)
        return MK_ERR_NOT_FOUND;
    upload_remove_at(st, i);
    return 0;
}

/* ==================================================================== open */

static int cmp_obj(const void *a, const void *b)
{
    const mk_s3_obj_t *x = *(const mk_s3_obj_t *const *)a, *y = *(const mk_s3_obj_t *const *)b;
    return cmp_key(x->key, x->key_len, y->key, y->key_len);
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Load one bucket directory's objects. */
static int load_bucket(mk_s3_store_t *st, const char *name, int64_t created)
{
    mk_s3_bucket_t *b = mk_calloc(1, sizeof(*b));
    if (!b)
        return MK_ERR_NOMEM;
    size_t nl = strlen(name);
    char dir[PATH_MAX_S3];
    if (nl >= sizeof(b->name) || path_join(dir, sizeof(dir), st->root, name) < 0) {
        bucket_free(b);
        return MK_ERR_INVALID;
    }
    memcpy(b->name, name, nl + 1);
    b->created_ms = created;
    DIR *d = opendir(dir);
    if (!d) {
        bucket_free(b);
        return MK_ERR_IO;
    }
    int rc = 0;
    struct dirent *e;
    mk_arena_t a;
    mk_arena_init(&a);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!is_hex(e->d_name, 64))
            continue;
        char path[PATH_MAX_S3 + 72];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        mk_s3_objhdr_t h;
        int hr = read_header(fd, &a, &h);
        close(fd);
        char want[65];
        if (hr == 0)
            key_file(h.key, h.key_len, want);
        if (hr || strcmp(want, e->d_name) != 0 || strcmp(h.bucket, name) != 0) {
            mk_warn("s3: %s: not a valid object file (%s); ignored", path, hr ? mk_strerror(hr) : "misplaced");
            if (hr == MK_ERR_NOMEM)
                rc = hr;
            continue;
        }
        if (b->n == b->cap) {
            size_t cap = b->cap ? b->cap * 2 : 64;
            mk_s3_obj_t **na = mk_realloc(b->objs, cap * sizeof(*na));
            if (!na) {
                rc = MK_ERR_NOMEM;
                break;
            }
            b->objs = na;
            b->cap = cap;
        }
        mk_s3_obj_t *o = mk_calloc(1, sizeof(*o));
        if (!o || !(o->key = mk_strndup(h.key, h.key_len))) {
            mk_free(o);
            rc = MK_ERR_NOMEM;
            break;
        }
        o->key_len = h.key_len;
        o->size = h.size;
        o->mtime_ms = h.mtime_ms;
        memcpy(o->etag, h.etag, sizeof(o->etag));
        b->objs[b->n++] = o;
        b->bytes += o->size;
        if (a.total > ((size_t)1 << 20)) { /* keep the scratch small */
            mk_arena_free(&a);
            mk_arena_init(&a);
        }
    }
    mk_arena_free(&a);
    closedir(d);
    if (rc) {
        bucket_free(b);
        return rc;
    }
    if (b->n)
        qsort(b->objs, b->n, sizeof(*b->objs), cmp_obj);
    rc = bucket_add(st, b);
    if (rc) {
        bucket_free(b);
        return rc;
    }
    atomic_fetch_add(&st->counts->objects, b->n);
    atomic_fetch_add(&st->counts->bytes, b->bytes);
    return 0;
}

static void load_uploads(mk_s3_store_t *st)
{
    char dir[PATH_MAX_S3];
    snprintf(dir, sizeof(dir), "%s/_uploads", st->root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    mk_arena_t a;
    mk_arena_init(&a);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX_S3 + 40], path[PATH_MAX_S3 + 64];
        if (path_join(sub, sizeof(sub), dir, e->d_name) < 0)
            continue;
        snprintf(path, sizeof(path), "%s/_upload", sub);
        int fd = is_hex(e->d_name, 32) ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        mk_s3_objhdr_t h;
        int hr = fd >= 0 ? read_header(fd, &a, &h) : MK_ERR_NOT_FOUND;
        if (fd >= 0)
            close(fd);
        if (hr || !mk_s3_store_bucket(st, h.bucket) ||
            upload_add(st, e->d_name, h.bucket, h.key, h.key_len, h.mtime_ms) < 0) {
            mk_warn("s3: %s: dropping an unreadable or orphaned multipart upload", sub);
            mk_rm_rf(sub);
        }
    }
    mk_arena_free(&a);
    closedir(d);
}

int mk_s3_store_open(const char *data_dir, mk_s3_store_counts_t *counts, mk_s3_store_t **out, char *why,
                     size_t why_len)
{
    mk_s3_store_t *st = mk_calloc(1, sizeof(*st));
    if (!st)
        return MK_ERR_NOMEM;
    st->counts = counts;
    snprintf(st->root, sizeof(st->root), "%s/s3", data_dir);
    char tmp[PATH_MAX_S3], up[PATH_MAX_S3];
    snprintf(tmp, sizeof(tmp), "%s/_tmp", st->root);
    snprintf(up, sizeof(up), "%s/_uploads", st->root);
    if (mk_mkdir_p(st->root) < 0 || mk_rm_rf(tmp) < 0 || mk_mkdir_p(tmp) < 0 || mk_mkdir_p(up) < 0) {
        snprintf(why, why_len, "cannot prepare %s: %s", st->root, strerror(errno));
        mk_free(st);
        return MK_ERR_IO;
    }
    DIR *d = opendir(st->root);
    if (!d) {
        snprintf(why, why_len, "cannot read %s: %s", st->root, strerror(errno));
        mk_free(st);
        return MK_ERR_IO;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!mk_s3_bucket_name_valid(e->d_name))
            continue;
        char marker[PATH_MAX_S3 + 80];
        snprintf(marker, sizeof(marker), "%s/%s/_bucket", st->root, e->d_name);
        FILE *f = fopen(marker, "r");
        if (!f)
            continue;
        long long created = 0;
        if (fscanf(f, "%lld", &created) != 1)
            created = 0;
        fclose(f);
        rc = load_bucket(st, e->d_name, created);
        if (rc)
            snprintf(why, why_len, "cannot load bucket %s: %s", e->d_name, mk_strerror(rc));
    }
    closedir(d);
    if (rc) {
        mk_s3_store_close(st);
        return rc;
    }
    load_uploads(st);
    *out = st;
    return 0;
}

const char *mk_s3_store_root(const mk_s3_store_t *st) { return st->root; }

void mk_s3_store_close(mk_s3_store_t *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nbuckets; i++)
        bucket_free(st->buckets[i]);
    mk_free(st->buckets);
    for (int i = 0; i < st->nuploads; i++) {
        mk_free(st->uploads[i]->bucket);
        mk_free(st->uploads[i]->key);
        mk_free(st->uploads[i]);
    }
    mk_free(st->uploads);
    mk_free(st);
}
