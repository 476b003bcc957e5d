/*
 * upload.c -- the worker side of a segment copy (a job on the WRITE queue).
 *
 * tier.c prepares everything on the loop: duplicated descriptors of the
 * sealed segment's three files, its size and offsets, the object keys, the
 * leader-epoch checkpoint and producer-state objects, a read buffer and
 * room for the read index.  Here, on a worker thread:
 *
 *   1 scan     the .log is read in blocks; every batch goes through batch/'s
 *              one validator (header, CRC32C, record count) and must lie in
 *              the segment's offsets, increasing; CRC32C, SHA-256 and MD5 of
 *              the whole object are computed, and the read index is built:
 *              a chunk starts at the first batch at least chunk.bytes past
 *              the previous chunk's start (whole batches, so each chunk can
 *              be validated and served alone).  A segment that fails here
 *              is not uploaded (the local copy stays).
 *   2 PUTs     .log (streamed from the file), .index, .timeindex,
 *              .leader-epoch-checkpoint, .snapshot, then .manifest last,
 *              each with its Content-MD5 so the server checks what it got.
 *   3 verify   HEAD of the .log: its length and ETag (the MD5 of a single
 *              PUT) must be ours.  Only then is the copy reported done, and
 *              only then may the local segment go.
 *
 * The same job re-uploads a remote copy the scrubber found corrupt (tier.c,
 * remote checks): then the scan's digests must be the manifest's first
 * (expect), so a local copy that is not the same bytes is never put.
 *
 * No mk_malloc here (workers): a batch larger than the buffer gets a plain
 * malloc'd one.  The descriptors are closed here in every case.
 */
#include "tier/tier_int.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? MK_ERR_IO : MK_ERR_TRUNCATED;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static void md5_of(const void *p, size_t n, uint8_t out[16])
{
    unsigned int len = 0;
    EVP_Digest(p, n, out, &len, EVP_md5(), NULL);
}

static void b64(const uint8_t *p, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* Step 1: scan, validate, digest, index.  md5 gets the .log's MD5. */
static int scan(tier_upload_t *u, uint8_t md5[16])
{
    int fd = u->fds[0];
    uint8_t *buf = u->scratch, *big = NULL;
    size_t cap = u->scratch_len, have = 0; /* buf holds [bpos, bpos + have) of the file */
    uint64_t bpos = 0, pos = 0, chunk_start = 0;
    int64_t last = -1;
    uint32_t crc = 0;
    int rc = 0;
    EVP_MD_CTX *sha = EVP_MD_CTX_new(), *m5 = EVP_MD_CTX_new();
    if (!sha || !m5 || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1 || EVP_DigestInit_ex(m5, EVP_md5(), NULL) != 1) {
        snprintf(u->job.why, sizeof(u->job.why), "cannot start the digests");
        rc = MK_ERR_NOMEM;
        goto out;
    }
    u->nchunks = 0;
    u->max_ts = -1;
    while (pos < u->size) {
        /* the header, then the whole batch, in the buffer */
        size_t need = MK_BATCH_HEADER_SIZE;
        for (int pass = 0; pass < 2; pass++) {
            if (pos + need > u->size) {
                snprintf(u->job.why, sizeof(u->job.why), "batch at %" PRIu64 " runs past the segment's end", pos);
                rc = MK_ERR_CORRUPT;
                goto out;
            }
            if (pos < bpos || pos + need > bpos + have) {
                if (need > cap) {
                    uint8_t *nb = malloc(need);
                    if (!nb) {
                        rc = MK_ERR_NOMEM;
                        goto out;
                    }
                    free(big);
                    big = buf = nb;
                    cap = need;
                }
                size_t n = (size_t)MK_MIN((uint64_t)cap, u->size - pos);
                rc = pread_full(fd, buf, n, pos);
                if (rc) {
                    snprintf(u->job.why, sizeof(u->job.why), "reading the segment: %s", mk_strerror(rc));
                    goto out;
                }
                bpos = pos;
                have = n;
            }
            if (pass == 0) {
                mk_batch_view_t v;
                if (mk_batch_view_parse(buf + (pos - bpos), MK_BATCH_HEADER_SIZE, &v) < 0) {
                    snprintf(u->job.why, sizeof(u->job.why), "bad batch header at %" PRIu64, pos);
                    rc = MK_ERR_CORRUPT;
                    goto out;
                }
                need = v.size;
            }
        }
        const uint8_t *p = buf + (pos - bpos);
        mk_batch_view_t v;
        char vwhy[120];
        if (mk_batch_validate_view(p, need, 0, 0, NULL, &v, vwhy, sizeof(vwhy)) < 0) {
            snprintf(u->job.why, sizeof(u->job.why), "batch at %" PRIu64 ": %s", pos, vwhy);
            rc = MK_ERR_CORRUPT;
            goto out;
        }
        int64_t base = v.hdr.baseOffset, blast = base + v.hdr.lastOffsetDelta;
        if (base <= last || base < u->start_offset || blast >= u->end_offset) {
            snprintf(u->job.why, sizeof(u->job.why), "batch at %" PRIu64 " has offsets %" PRId64 "..%" PRId64
                     " outside the segment or out of order", pos, base, blast);
            rc = MK_ERR_CORRUPT;
            goto out;
        }
        if (u->nchunks == 0 || pos - chunk_start >= u->chunk_bytes) {
            if (u->nchunks == u->max_chunks) {
                snprintf(u->job.why, sizeof(u->job.why), "more chunks than planned");
                rc = MK_ERR_CORRUPT;
                goto out;
            }
            u->chunks[u->nchunks++] = (tier_chunk_t){pos, base, v.hdr.maxTimestamp};
            chunk_start = pos;
        }
        tier_chunk_t *ck = &u->chunks[u->nchunks - 1];
        ck->max_ts = MK_MAX(ck->max_ts, v.hdr.maxTimestamp);
        u->max_ts = MK_MAX(u->max_ts, v.hdr.maxTimestamp);
        crc = mk_crc32c(crc, p, need);
        EVP_DigestUpdate(sha, p, need);
        EVP_DigestUpdate(m5, p, need);
        last = blast;
        pos += need;
    }
    if (last < 0) {
        snprintf(u->job.why, sizeof(u->job.why), "the segment holds no batch");
        rc = MK_ERR_CORRUPT;
        goto out;
    }
    uint8_t dig[32];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(sha, dig, &dl);
    hex(dig, 32, u->sha256);
    EVP_DigestFinal_ex(m5, md5, &dl);
    u->crc32c = crc;
    u->last_offset = last;
out:
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(m5);
    free(big);
    return rc;
}

/* A small file of the segment, whole, into a malloc'd buffer. */
static int slurp(int fd, uint8_t **out, size_t *n)
{
    struct stat sb;
    *out = NULL;
    *n = 0;
    if (fstat(fd, &sb) != 0)
        return MK_ERR_IO;
    size_t len = (size_t)sb.st_size;
    uint8_t *p = malloc(len ? len : 1);
    if (!p)
        return MK_ERR_NOMEM;
    int rc = len ? pread_full(fd, p, len, 0) : 0;
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    *n = len;
    return 0;
}

static int put_small(tier_upload_t *u, tier_s3_t *s3, int i, const void *p, size_t n)
{
    uint8_t d[16];
    char m[32];
    md5_of(p, n, d);
    b64(d, 16, m);
    u->manifest.sizes[i] = n;
    int rc = tier_s3_put_mem(s3, u->keys[i], p, n, m, u->job.why, sizeof(u->job.why));
    if (rc == 0)
        u->bytes_sent += n;
    return rc;
}

void tier_upload_work(tier_job_t *j, tier_s3_t *s3)
{
    tier_upload_t *u = (tier_upload_t *)j;
    uint8_t md5[16];
    char md5_b64[32], md5_hex[33];
    int rc = scan(u, md5);
    if (rc == 0 && u->expect && (u->crc32c != u->expect_crc32c || strcmp(u->sha256, u->expect_sha256) != 0)) {
        snprintf(j->why, sizeof(j->why), "the local copy has CRC32C %08x and SHA-256 %.16s..., the manifest "
                 "%08x and %.16s...: not uploaded", u->crc32c, u->sha256, u->expect_crc32c, u->expect_sha256);
        rc = MK_ERR_CORRUPT;
    }
    if (rc == 0) {
        b64(md5, 16, md5_b64);
        hex(md5, 16, md5_hex);
        memcpy(u->manifest.md5, md5_hex, sizeof(md5_hex));
        memcpy(u->manifest.sha256, u->sha256, sizeof(u->sha256));
        u->manifest.crc32c = u->crc32c;
        u->manifest.max_timestamp = u->max_ts;
        u->manifest.end_offset = u->last_offset;
        u->manifest.nchunks = u->nchunks;
        u->manifest.sizes[0] = u->size;
        rc = tier_s3_put_fd(s3, u->keys[0], u->fds[0], 0, u->size, md5_b64, j->why, sizeof(j->why));
        if (rc == 0)
            u->bytes_sent += u->size;
    }
    for (int i = 1; i <= 2 && rc == 0; i++) {
        uint8_t *p;
        size_t n;
        rc = slurp(u->fds[i], &p, &n);
        if (rc) {
            snprintf(j->why, sizeof(j->why), "reading the %s file: %s", tier_exts[i] + 1, mk_strerror(rc));
            break;
        }
        rc = put_small(u, s3, i, p, n);
        free(p);
    }
    if (rc == 0)
        rc = put_small(u, s3, 3, u->epochs_text.data, u->epochs_text.len);
    if (rc == 0)
        rc = put_small(u, s3, 4, u->snapshot.data, u->snapshot.len);
    if (rc == 0) {
        /* The manifest goes last and says what the others are. */
        char text[4096];
        size_t n = tier_manifest_text(text, sizeof(text), &u->manifest);
        if (n >= sizeof(text)) {
            snprintf(j->why, sizeof(j->why), "the manifest does not fit");
            rc = MK_ERR_TOO_LARGE;
        } else {
            rc = put_small(u, s3, 5, text, n);
        }
    }
    if (rc == 0) {
        uint64_t len = 0;
        char etag[80];
        rc = tier_s3_head(s3, u->keys[0], &len, etag, sizeof(etag), j->why, sizeof(j->why));
        if (rc == 0 && (len != u->size || strcasecmp(etag, md5_hex) != 0)) {
            if (snprintf(j->why, sizeof(j->why), "verification failed: S3 has %" PRIu64 " bytes with ETag %.40s, "
                         "we sent %" PRIu64 " with MD5 %s", len, etag, u->size, md5_hex) < 0)
                j->why[0] = 0;
            rc = MK_ERR_CORRUPT;
        }
    }
    for (int i = 0; i < 3; i++)
        if (u->fds[i] >= 0) {
            close(u->fds[i]);
            u->fds[i] = -1;
        }
    j->rc = rc;
}
