/*
 * cache.c -- the chunk cache of remote reads: the "memory tier" and a disk
 * tier under DATA/tier-cache/.
 *
 * A chunk is a run of whole batches of a remote segment's .log object (the
 * read index of tier_int.h says where each begins), named by the segment id
 * and its index.  A lookup finds it:
 *   in memory   served at once (the memory tier: recent and hot chunks);
 *   on disk     read back on a READ worker (DATA/tier-cache/<id>-<k>.chunk),
 *               validated again, then kept in memory;
 *   nowhere     a ranged GET on a READ worker, every batch through batch/'s
 *               one validator, written to disk, then kept in memory.
 * Both tiers are LRU lists bounded in bytes (minikora.tier.cache.memory.bytes,
 * .disk.bytes); the chunk just read always stays in memory, so a read can be
 * served even when a chunk is larger than the memory bound.  Disk files are
 * written through a temporary name and renamed, not fsynced: the cache is
 * emptied at every start, and every chunk read back is validated anyway.
 *
 * A failed read is remembered for a second (MK_ERR_IO or MK_ERR_CORRUPT to
 * whoever asks meanwhile), so a dead S3 is not asked again by every Fetch;
 * the next lookup after that tries again.  Loads of one chunk are never
 * duplicated; when one completes (or fails) the ready callback tells tier.c,
 * which wakes the parked requests.  Everything but the workers' part runs on
 * the loop thread.
 */
#include "tier/tier_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAIL_MEMORY_MS 1000
#define MKEY_LEN 48

typedef struct centry_s centry_t;
struct centry_s {
    char mkey[MKEY_LEN];          /* "<segment id>/<k>": the map key */
    char id[TIER_ID_LEN + 1];
    size_t k;
    uint8_t *data;                /* the chunk in memory, or NULL */
    size_t len;
    bool on_disk;
    uint64_t disk_len;
    bool loading;
    bool fresh;                   /* loaded for a lookup that will ask again: not a hit */
    bool dead;                    /* forgotten while loading */
    int err;                      /* of the last load, 0 */
    uint64_t failed_ms;
    centry_t *mprev, *mnext;      /* memory LRU, most recent first */
    centry_t *dprev, *dnext;      /* disk LRU */
};

struct tier_cache_s {
    tier_cache_opts_t o;
    char dir[PATH_MAX];
    mk_map_t entries;             /* mkey -> centry_t* (owned) */
    centry_t *mhead, *mtail, *dhead, *dtail;
    uint64_t mem_bytes, disk_bytes, mem_chunks, disk_chunks;
    uint64_t hits, disk_hits, misses;
    int32_t in_flight;
};

typedef struct cjob_s {
    tier_job_t job;
    tier_cache_t *c;
    char mkey[MKEY_LEN];
    char key[TIER_KEY_MAX];
    char path[PATH_MAX];
    uint64_t pos, len;
    uint8_t *buf;                 /* len bytes, mk_malloc'd on the loop */
    bool from_disk;               /* try the disk copy first */
    bool wrote_disk;              /* out: the chunk is now on disk */
} cjob_t;

/* ================================================================ lists */

static void mem_unlink(tier_cache_t *c, centry_t *e)
{
    if (e->mprev)
        e->mprev->mnext = e->mnext;
    else if (c->mhead == e)
        c->mhead = e->mnext;
    if (e->mnext)
        e->mnext->mprev = e->mprev;
    else if (c->mtail == e)
        c->mtail = e->mprev;
    e->mprev = e->mnext = NULL;
}

static void mem_push(tier_cache_t *c, centry_t *e)
{
    e->mprev = NULL;
    e->mnext = c->mhead;
    if (c->mhead)
        c->mhead->mprev = e;
    c->mhead = e;
    if (!c->mtail)
        c->mtail = e;
}

static void disk_unlink(tier_cache_t *c, centry_t *e)
{
    if (e->dprev)
        e->dprev->dnext = e->dnext;
    else if (c->dhead == e)
        c->dhead = e->dnext;
    if (e->dnext)
        e->dnext->dprev = e->dprev;
    else if (c->dtail == e)
        c->dtail = e->dprev;
    e->dprev = e->dnext = NULL;
}

static void disk_push(tier_cache_t *c, centry_t *e)
{
    e->dprev = NULL;
    e->dnext = c->dhead;
    if (c->dhead)
        c->dhead->dprev = e;
    c->dhead = e;
    if (!c->dtail)
        c->dtail = e;
}

static void chunk_path(const tier_cache_t *c, const centry_t *e, char *out, size_t n)
{
    if (snprintf(out, n, "%s/%s-%zu.chunk", c->dir, e->id, e->k) >= (int)n)
        out[0] = 0; /* cannot happen: the directory is checked at open */
}

static void unlink_done(uv_fs_t *req)
{
    uv_fs_req_cleanup(req);
    mk_free(req);
}

/* Removes e's disk copy (the unlink on the threadpool). */
static void drop_disk(tier_cache_t *c, centry_t *e)
{
    if (!e->on_disk)
        return;
    disk_unlink(c, e);
    c->disk_bytes -= e->disk_len;
    c->disk_chunks--;
    e->on_disk = false;
    char path[PATH_MAX];
    chunk_path(c, e, path, sizeof(path));
    uv_fs_t *req = mk_malloc(sizeof(*req));
    if (!req || uv_fs_unlink(c->o.loop, req, path, unlink_done) < 0) {
        mk_free(req);
        unlink(path);
    }
}

static void drop_memory(tier_cache_t *c, centry_t *e)
{
    if (!e->data)
        return;
    mem_unlink(c, e);
    c->mem_bytes -= e->len;
    c->mem_chunks--;
    mk_free(e->data);
    e->data = NULL;
}

/* An entry with nothing left (no copy, no load, no recent failure) goes. */
static void maybe_forget(tier_cache_t *c, centry_t *e)
{
    if (e->data || e->on_disk || e->loading || e->err)
        return;
    mk_map_del(&c->entries, e->mkey);
    mk_free(e);
}

/* Keeps both tiers within their bounds, least recently used first; keep
 * is never evicted from memory (it is being served). */
static void evict(tier_cache_t *c, centry_t *keep)
{
    while (c->mem_bytes > c->o.memory_max && c->mtail && c->mtail != keep) {
        centry_t *e = c->mtail;
        drop_memory(c, e);
        maybe_forget(c, e);
    }
    while (c->disk_bytes > c->o.disk_max && c->dtail) {
        centry_t *e = c->dtail;
        drop_disk(c, e);
        maybe_forget(c, e);
    }
}

/* ================================================================ workers */

/* Every byte of [p, p+n) belongs to a whole batch that passes the one
 * validator (header, CRC32C, record count).  0 or MK_ERR_CORRUPT with why. */
static int validate_chunk(const uint8_t *p, size_t n, char *why, size_t why_len)
{
    size_t pos = 0;
    while (pos < n) {
        int64_t size = mk_batch_size(p + pos, n - pos);
        if (size < MK_BATCH_HEADER_SIZE || (uint64_t)size > n - pos) {
            snprintf(why, why_len, "a batch at %zu of the chunk is cut or has a bad length", pos);
            return MK_ERR_CORRUPT;
        }
        char vwhy[120];
        if (mk_batch_validate(p + pos, (size_t)size, false, 0, vwhy, sizeof(vwhy)) < 0) {
            if (snprintf(why, why_len, "batch at %zu of the chunk: %s", pos, vwhy) < 0)
                why[0] = 0;
            return MK_ERR_CORRUPT;
        }
        pos += (size_t)size;
    }
    return 0;
}

static int read_file(const char *path, uint8_t *p, uint64_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MK_ERR_IO;
    uint64_t off = 0;
    int rc = 0;
    while (off < n) {
        ssize_t r = pread(fd, p + off, (size_t)(n - off), (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = MK_ERR_IO;
            break;
        }
        off += (uint64_t)r;
    }
    close(fd);
    return rc;
}

static bool write_file(const char *path, const uint8_t *p, uint64_t n)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    uint64_t off = 0;
    bool ok = true;
    while (off < n && ok) {
        ssize_t w = write(fd, p + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        if (ok)
            off += (uint64_t)w;
    }
    if (close(fd) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    return ok;
}

static void cjob_work(tier_job_t *j, tier_s3_t *s3)
{
    cjob_t *cj = (cjob_t *)j;
    if (cj->from_disk) {
        if (read_file(cj->path, cj->buf, cj->len) == 0 &&
            validate_chunk(cj->buf, (size_t)cj->len, j->why, sizeof(j->why)) == 0) {
            cj->wrote_disk = true;
            return;
        }
        /* the disk copy is gone or damaged: from S3 then */
        unlink(cj->path);
        cj->from_disk = false;
    }
    j->rc = tier_s3_get_range(s3, cj->key, cj->pos, cj->len, cj->buf, j->why, sizeof(j->why));
    if (j->rc == 0)
        j->rc = validate_chunk(cj->buf, (size_t)cj->len, j->why, sizeof(j->why));
    if (j->rc == 0)
        cj->wrote_disk = write_file(cj->path, cj->buf, cj->len);
}

static void cjob_free(tier_job_t *j)
{
    cjob_t *cj = (cjob_t *)j;
    mk_free(cj->buf);
    mk_free(cj);
}

static void cjob_done(tier_job_t *j)
{
    cjob_t *cj = (cjob_t *)j;
    tier_cache_t *c = cj->c;
    c->in_flight--;
    centry_t *e = mk_map_get(&c->entries, cj->mkey);
    if (!e) {
        cjob_free(j);
        return;
    }
    e->loading = false;
    if (e->dead) {
        if (cj->wrote_disk)
            unlink(cj->path);
        mk_map_del(&c->entries, e->mkey);
        mk_free(e);
        cjob_free(j);
        return;
    }
    if (j->rc) {
        e->err = j->rc;
        e->failed_ms = mk_mono_ms();
        mk_warn("tier: reading chunk %zu of segment %s: %s", e->k, e->id, j->why);
        mk_free(cj->buf);
        mk_free(cj);
        c->o.ready(c->o.arg);
        return;
    }
    e->err = 0;
    e->data = cj->buf;
    e->len = (size_t)cj->len;
    cj->buf = NULL;
    mem_push(c, e);
    c->mem_bytes += e->len;
    c->mem_chunks++;
    if (cj->wrote_disk && !e->on_disk) {
        e->on_disk = true;
        e->disk_len = cj->len;
        disk_push(c, e);
        c->disk_bytes += e->disk_len;
        c->disk_chunks++;
    }
    evict(c, e);
    cjob_free(j);
    c->o.ready(c->o.arg);
}

/* ================================================================ lookups */

static centry_t *entry_get(tier_cache_t *c, const char *segment_id, size_t k, bool create)
{
    char mkey[MKEY_LEN];
    snprintf(mkey, sizeof(mkey), "%s/%zu", segment_id, k);
    centry_t *e = mk_map_get(&c->entries, mkey);
    if (e || !create)
        return e;
    e = mk_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->mkey, sizeof(e->mkey), "%s", mkey);
    snprintf(e->id, sizeof(e->id), "%s", segment_id);
    e->k = k;
    if (mk_map_put(&c->entries, e->mkey, e) < 0) {
        mk_free(e);
        return NULL;
    }
    return e;
}

/* Starts e's load (from disk when it has a copy, else S3). */
static int load(tier_cache_t *c, centry_t *e, const char *key, uint64_t pos, uint64_t len)
{
    cjob_t *cj = mk_calloc(1, sizeof(*cj));
    uint8_t *buf = mk_malloc(len ? (size_t)len : 1);
    if (!cj || !buf || strlen(key) >= sizeof(cj->key)) {
        mk_free(cj);
        mk_free(buf);
        return MK_ERR_NOMEM;
    }
    cj->job.work = cjob_work;
    cj->job.done = cjob_done;
    cj->job.release = cjob_free;
    cj->job.queue = TIER_Q_READ;
    cj->c = c;
    snprintf(cj->mkey, sizeof(cj->mkey), "%s", e->mkey);
    snprintf(cj->key, sizeof(cj->key), "%s", key);
    chunk_path(c, e, cj->path, sizeof(cj->path));
    cj->pos = pos;
    cj->len = len;
    cj->buf = buf;
    cj->from_disk = e->on_disk;
    e->loading = true;
    e->err = 0;
    c->in_flight++;
    tier_s3_submit(c->o.s3, &cj->job);
    return 0;
}

int tier_cache_get(tier_cache_t *c, const char *segment_id, size_t k, const char *key, uint64_t pos, uint64_t len,
                   const uint8_t **data, size_t *out_len, int *where)
{
    *where = -1;
    centry_t *e = entry_get(c, segment_id, k, true);
    if (!e)
        return MK_ERR_NOMEM;
    if (e->data) {
        mem_unlink(c, e);
        mem_push(c, e);
        if (e->on_disk) {
            disk_unlink(c, e);
            disk_push(c, e);
        }
        if (e->fresh)
            e->fresh = false; /* the end of a miss, not a hit */
        else
            *where = 0, c->hits++;
        *data = e->data;
        *out_len = e->len;
        return 0;
    }
    if (e->loading) {
        e->fresh = true;
        return MK_ERR_AGAIN;
    }
    if (e->err && mk_mono_ms() - e->failed_ms < FAIL_MEMORY_MS)
        return e->err == MK_ERR_CORRUPT ? MK_ERR_CORRUPT : MK_ERR_IO;
    if (e->on_disk)
        *where = 1, c->disk_hits++;
    else
        *where = 2, c->misses++;
    int rc = load(c, e, key, pos, len);
    if (rc < 0)
        return rc;
    e->fresh = true;
    return MK_ERR_AGAIN;
}

void tier_cache_prefetch(tier_cache_t *c, const char *segment_id, size_t k, const char *key, uint64_t pos,
                         uint64_t len)
{
    centry_t *e = entry_get(c, segment_id, k, true);
    if (!e || e->data || e->loading || (e->err && mk_mono_ms() - e->failed_ms < FAIL_MEMORY_MS))
        return;
    load(c, e, key, pos, len);
}

void tier_cache_segment_bytes(const tier_cache_t *c, const char *segment_id, uint64_t *memory, uint64_t *disk)
{
    size_t n = strlen(segment_id);
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&c->entries, &it, &k, &v);) {
        const centry_t *e = v;
        if (strncmp(e->mkey, segment_id, n) != 0 || e->mkey[n] != '/')
            continue;
        *memory += e->data ? e->len : 0;
        *disk += e->on_disk ? e->disk_len : 0;
    }
}

void tier_cache_forget(tier_cache_t *c, const char *segment_id)
{
    size_t n = strlen(segment_id);
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&c->entries, &it, &k, &v);) {
        centry_t *e = v;
        if (strncmp(e->mkey, segment_id, n) != 0 || e->mkey[n] != '/')
            continue;
        drop_memory(c, e);
        drop_disk(c, e);
        if (e->loading) {
            e->dead = true;
            continue;
        }
        mk_map_del(&c->entries, e->mkey);
        mk_free(e);
    }
}

/* ================================================================ module */

int tier_cache_new(const tier_cache_opts_t *o, tier_cache_t **out)
{
    tier_cache_t *c = mk_calloc(1, sizeof(*c));
    if (!c)
        return MK_ERR_NOMEM;
    c->o = *o;
    if (strlen(o->dir) + 64 >= sizeof(c->dir)) {
        mk_free(c);
        return MK_ERR_TOO_LARGE;
    }
    snprintf(c->dir, sizeof(c->dir), "%s", o->dir);
    mk_map_init(&c->entries);
    /* A cache: what a previous run left is not trusted, nor needed. */
    if (mk_rm_rf(c->dir) < 0 || mk_mkdir_p(c->dir) < 0) {
        mk_error("tier: cannot prepare %s: %s", c->dir, strerror(errno));
        mk_map_free(&c->entries);
        mk_free(c);
        return MK_ERR_IO;
    }
    *out = c;
    return 0;
}

void tier_cache_free(tier_cache_t *c)
{
    if (!c)
        return;
    const char *k;
    void *v;
    for (size_t it = 0; mk_map_next(&c->entries, &it, &k, &v);) {
        centry_t *e = v;
        mk_free(e->data);
        mk_free(e);
    }
    mk_map_free(&c->entries);
    mk_free(c);
}

void tier_cache_stats(const tier_cache_t *c, tier_cache_stats_t *out)
{
    out->hits = c->hits;
    out->disk_hits = c->disk_hits;
    out->misses = c->misses;
    out->memory_bytes = c->mem_bytes;
    out->memory_chunks = c->mem_chunks;
    out->memory_max = c->o.memory_max;
    out->disk_bytes = c->disk_bytes;
    out->disk_chunks = c->disk_chunks;
    out->disk_max = c->o.disk_max;
    out->in_flight = c->in_flight;
}
