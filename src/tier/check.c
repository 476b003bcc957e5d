/*
 * check.c -- the worker side of a remote check (a job on the READ queue):
 * is a remote segment in S3 still what its manifest says?
 *
 * tier.c walks a partition's COPY_FINISHED segments for the scrubber, one
 * at a time, and submits this job once per step, paced on the loop at the
 * scrub rate (see tier.c, "remote checks").  Here, on a worker thread:
 *
 *   pos 0   the manifest object: HEAD, then GET (at most TIER_MANIFEST_MAX
 *           bytes); its bytes must still have the MD5 its ETag names (a
 *           single PUT's), and its segment_id, start_offset, size, crc32c
 *           and sha256 must be those of the segment's row (which were taken
 *           from the same upload).  Then HEAD of the .log: its length must be size.
 *   steps   GET [pos, pos + len) of the .log, folded into a running CRC32C
 *           and SHA-256; the step that reaches size compares both with the
 *           row's.  The .log is the object reads are served from; the
 *           other objects are covered by the manifest's sizes only through
 *           the upload's own verification.
 *
 * A missing object (404) is a finding, as is any difference; an S3 failure
 * is not (the check of that segment is skipped, and tried again at the next
 * pass).  The manifest is JSON text from outside: it is copied into a
 * NUL-terminated buffer of the length HEAD gave, and each field is looked
 * for by its exact quoted name and parsed with its length bounded.
 *
 * No mk_malloc here (workers); the step's buffer comes from the loop.
 */
#include "tier/tier_int.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void tier_check_free_digest(tier_check_t *k)
{
    if (k->sha) {
        EVP_MD_CTX_free(k->sha);
        k->sha = NULL;
    }
}

/* The text after `"name": ` in a NUL-terminated manifest, or NULL. */
static const char *field_at(const char *text, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": ", name);
    const char *p = strstr(text, pat);
    return p ? p + strlen(pat) : NULL;
}

/* A string field into out (cap bytes with the NUL); false when absent, not
 * a string, or too long. */
static bool field_str(const char *text, const char *name, char *out, size_t cap)
{
    const char *p = field_at(text, name);
    if (!p || *p != '"')
        return false;
    p++;
    size_t n = 0;
    while (p[n] && p[n] != '"' && p[n] != '\\' && n + 1 < cap)
        n++;
    if (p[n] != '"')
        return false;
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

static bool field_i64(const char *text, const char *name, int64_t *out)
{
    const char *p = field_at(text, name);
    if (!p || !((*p >= '0' && *p <= '9') || *p == '-'))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (errno || end == p || (*end != ',' && *end != '}'))
        return false;
    *out = (int64_t)v;
    return true;
}

/* The manifest against the row: 0 or MK_ERR_CORRUPT / an S3 error. */
static int check_manifest(tier_check_t *k, tier_s3_t *s3)
{
    tier_job_t *j = &k->job;
    uint64_t len = 0;
    char etag[80];
    int rc = tier_s3_head(s3, k->manifest_key, &len, etag, sizeof(etag), j->why, sizeof(j->why));
    if (rc == MK_ERR_NOT_FOUND) {
        snprintf(j->why, sizeof(j->why), "the manifest object is missing");
        return MK_ERR_CORRUPT;
    }
    if (rc)
        return rc;
    if (len == 0 || len > TIER_MANIFEST_MAX) {
        snprintf(j->why, sizeof(j->why), "the manifest object has %" PRIu64 " bytes", len);
        return MK_ERR_CORRUPT;
    }
    char *text = malloc(len + 1);
    if (!text)
        return MK_ERR_NOMEM;
    rc = tier_s3_get_range(s3, k->manifest_key, 0, len, (uint8_t *)text, j->why, sizeof(j->why));
    if (rc == MK_ERR_NOT_FOUND) {
        snprintf(j->why, sizeof(j->why), "the manifest object is missing");
        rc = MK_ERR_CORRUPT;
    }
    if (rc) {
        free(text);
        return rc;
    }
    text[len] = 0;
    /* A single PUT's ETag is the MD5 of its body: the bytes stored since
     * must still have it (a multipart ETag, "...-N", is not an MD5). */
    if (strlen(etag) == 32 && !strchr(etag, '-')) {
        uint8_t d[16];
        unsigned int dl = 0;
        char got[33];
        EVP_Digest(text, (size_t)len, d, &dl, EVP_md5(), NULL);
        for (int i = 0; i < 16; i++)
            snprintf(got + 2 * i, 3, "%02x", d[i]);
        if (strcasecmp(got, etag) != 0) {
            free(text);
            snprintf(j->why, sizeof(j->why), "the manifest's bytes do not have its ETag (MD5)");
            return MK_ERR_CORRUPT;
        }
    }
    if (strlen(text) != len) {
        free(text);
        snprintf(j->why, sizeof(j->why), "the manifest holds a NUL byte");
        return MK_ERR_CORRUPT;
    }
    char id[TIER_ID_LEN + 1], crc[16], sha[65];
    int64_t start = -1, size = -1;
    const char *bad = NULL;
    if (!field_str(text, "segment_id", id, sizeof(id)) || strcmp(id, k->segment_id) != 0)
        bad = "segment_id";
    else if (!field_i64(text, "start_offset", &start) || start != k->start_offset)
        bad = "start_offset";
    else if (!field_i64(text, "size", &size) || size < 0 || (uint64_t)size != k->size)
        bad = "size";
    else if (!field_str(text, "crc32c", crc, sizeof(crc)) || strtoul(crc, NULL, 16) != k->crc32c || strlen(crc) != 8)
        bad = "crc32c";
    else if (!field_str(text, "sha256", sha, sizeof(sha)) || strcmp(sha, k->sha256) != 0)
        bad = "sha256";
    free(text);
    if (bad) {
        snprintf(j->why, sizeof(j->why), "the manifest's %s is missing or not the segment's", bad);
        return MK_ERR_CORRUPT;
    }
    return 0;
}

static void hex32(const uint8_t *p, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[64] = 0;
}

void tier_check_work(tier_job_t *j, tier_s3_t *s3)
{
    tier_check_t *k = (tier_check_t *)j;
    int rc = 0;
    j->why[0] = 0;
    if (k->pos == 0) {
        rc = check_manifest(k, s3);
        if (rc == 0) {
            uint64_t len = 0;
            char etag[80];
            rc = tier_s3_head(s3, k->log_key, &len, etag, sizeof(etag), j->why, sizeof(j->why));
            if (rc == MK_ERR_NOT_FOUND) {
                snprintf(j->why, sizeof(j->why), "the .log object is missing");
                rc = MK_ERR_CORRUPT;
            } else if (rc == 0 && len != k->size) {
                snprintf(j->why, sizeof(j->why), "the .log object has %" PRIu64 " bytes, the manifest says %" PRIu64,
                         len, k->size);
                rc = MK_ERR_CORRUPT;
            }
        }
        if (rc == 0) {
            tier_check_free_digest(k);
            k->sha = EVP_MD_CTX_new();
            k->run_crc = 0;
            if (!k->sha || EVP_DigestInit_ex(k->sha, EVP_sha256(), NULL) != 1) {
                snprintf(j->why, sizeof(j->why), "cannot start the digest");
                rc = MK_ERR_NOMEM;
            }
        }
    }
    if (rc == 0 && k->len > 0) {
        rc = tier_s3_get_range(s3, k->log_key, k->pos, k->len, k->buf, j->why, sizeof(j->why));
        if (rc == MK_ERR_NOT_FOUND) {
            snprintf(j->why, sizeof(j->why), "the .log object is missing");
            rc = MK_ERR_CORRUPT;
        }
        if (rc == 0) {
            k->run_crc = mk_crc32c(k->run_crc, k->buf, (size_t)k->len);
            EVP_DigestUpdate(k->sha, k->buf, (size_t)k->len);
        }
    }
    if (rc == 0 && k->pos + k->len >= k->size) {
        uint8_t dig[32];
        unsigned int dl = 0;
        char sha[65];
        EVP_DigestFinal_ex(k->sha, dig, &dl);
        tier_check_free_digest(k);
        hex32(dig, sha);
        k->finished = true;
        if (k->run_crc != k->crc32c || strcmp(sha, k->sha256) != 0) {
            if (k->run_crc != k->crc32c)
                snprintf(j->why, sizeof(j->why), ".log CRC32C %08x, manifest %08x", k->run_crc, k->crc32c);
            else
                snprintf(j->why, sizeof(j->why), ".log SHA-256 %.12s..., manifest %.12s...", sha, k->sha256);
            rc = MK_ERR_CORRUPT;
        }
    }
    if (rc)
        tier_check_free_digest(k);
    j->rc = rc;
}
