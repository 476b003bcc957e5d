/*
 * verify.c -- `minikora verify --data-dir DIR`: the scrubber's checks and
 * the audit's rules on a stopped cluster's data directory, which is only
 * read.
 *
 * Layout read (docs/ARCHITECTURE.md, "Data directory"):
 *   DIR/meta.db                        the metadata store: topic ids, the audit table
 *   DIR/broker-<id>/<topic>-<p>/       a replica log (segments as log/ writes them)
 *   DIR/broker-<id>/<topic>-<p>.<n>-delete/   a deleted log: skipped
 *
 * Each partition's replicas are walked together (walk.c) through cursors
 * over the directories (mk_log_cursor_open_dir: read-only, no recovery), to
 * the end (no pacing), every replica compared (the high watermark is not
 * known offline, so only batches of one leader epoch at one offset must
 * match).  Bad offsets below a replica's log start are never served and
 * are not problems.  The audit table is replayed as the live audit does
 * at start, and each replica's log start on disk is held against it.  The
 * metadata store gets its own integrity check.  Incidents the running
 * cluster recorded are summed up but are not problems of the files now.
 */
#include "scrub/scrub_int.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One partition and its replica directories. */
typedef struct vpart_s {
    char *topic;                /* owned */
    int32_t partition;
    int n;
    int32_t brokers[SCRUB_MAX_REPLICAS];
    char *dirs[SCRUB_MAX_REPLICAS];   /* owned */
} vpart_t;

typedef struct verify_s {
    FILE *out;
    int problems;
    vpart_t *parts;
    size_t nparts, cap;
    mk_map_t topic_ids;         /* topic name -> owned Uuid text */
    mk_map_t reps;              /* audit state, as scrub_audit_replay() builds it */
    uint64_t incidents;
    int brokers;
    uint64_t replicas, batches, bytes;
} verify_t;

static void problem(verify_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verify_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("problem: ", v->out);
    vfprintf(v->out, fmt, ap);
    fputc('\n', v->out);
    va_end(ap);
    v->problems++;
}

/* "<topic>-<p>" -> topic (into out) and p; false for anything else. */
static bool parse_log_dir(const char *name, char *topic, size_t n, int32_t *partition)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1])
        return false;
    char *end;
    errno = 0;
    long p = strtol(dash + 1, &end, 10);
    if (errno || *end || p < 0 || p >= MK_CLUSTER_MAX_PARTITIONS || dash[1] == '+' || dash[1] == '-')
        return false;
    size_t tl = (size_t)(dash - name);
    if (tl >= n)
        return false;
    memcpy(topic, name, tl);
    topic[tl] = 0;
    *partition = (int32_t)p;
    return true;
}

static vpart_t *part_get(verify_t *v, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < v->nparts; i++)
        if (v->parts[i].partition == partition && strcmp(v->parts[i].topic, topic) == 0)
            return &v->parts[i];
    if (v->nparts == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        vpart_t *np = mk_realloc(v->parts, cap * sizeof(*np));
        if (!np)
            return NULL;
        v->parts = np;
        v->cap = cap;
    }
    vpart_t *p = &v->parts[v->nparts];
    memset(p, 0, sizeof(*p));
    p->topic = mk_strdup(topic);
    if (!p->topic)
        return NULL;
    p->partition = partition;
    v->nparts++;
    return p;
}

/* The replica directories of broker directory bdir. */
static int scan_broker(verify_t *v, const char *bdir, int32_t broker)
{
    DIR *d = opendir(bdir);
    if (!d) {
        problem(v, "cannot read %s: %s", bdir, strerror(errno));
        return 0;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' || (nl > 7 && strcmp(e->d_name + nl - 7, "-delete") == 0))
            continue;
        char path[PATH_MAX], topic[MK_META_MAX_NAME + 1];
        int32_t part;
        struct stat sb;
        if (snprintf(path, sizeof(path), "%s/%s", bdir, e->d_name) >= (int)sizeof(path) || stat(path, &sb) != 0 ||
            !S_ISDIR(sb.st_mode) || !parse_log_dir(e->d_name, topic, sizeof(topic), &part))
            continue;
        vpart_t *p = part_get(v, topic, part);
        if (!p) {
            rc = MK_ERR_NOMEM;
            break;
        }
        if (p->n == SCRUB_MAX_REPLICAS)
            continue;
        p->dirs[p->n] = mk_strdup(path);
        if (!p->dirs[p->n]) {
            rc = MK_ERR_NOMEM;
            break;
        }
        p->brokers[p->n++] = broker;
    }
    closedir(d);
    return rc;
}

static int cmp_part(const void *a, const void *b)
{
    const vpart_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Every broker-<id> directory of data_dir. */
static int scan_data_dir(verify_t *v, const char *data_dir)
{
    DIR *d = opendir(data_dir);
    if (!d)
        return MK_ERR_NOT_FOUND;
    int32_t ids[MK_CLUSTER_MAX_BROKERS * 4];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < (int)MK_ARRAY_LEN(ids)) {
        char *end;
        if (strncmp(e->d_name, "broker-", 7) != 0)
            continue;
        errno = 0;
        long id = strtol(e->d_name + 7, &end, 10);
        if (!errno && end != e->d_name + 7 && !*end && id > 0 && id <= INT32_MAX)
            ids[n++] = (int32_t)id;
    }
    closedir(d);
    qsort(ids, (size_t)n, sizeof(ids[0]), cmp_i32);
    v->brokers = n;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/broker-%d", data_dir, ids[i]) >= (int)sizeof(path))
            continue;
        int rc = scan_broker(v, path, ids[i]);
        if (rc < 0)
            return rc;
    }
    if (v->nparts > 1)
        qsort(v->parts, v->nparts, sizeof(v->parts[0]), cmp_part);
    return 0;
}

/* ================================================================== store */

static int topic_cb(const mk_meta_topic_t *t, void *arg)
{
    verify_t *v = arg;
    char id[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(t->topic_id, id);
    char *copy = mk_strdup(id);
    if (!copy || mk_map_put(&v->topic_ids, t->name, copy) < 0) {
        mk_free(copy);
        return MK_ERR_NOMEM;
    }
    return 0;
}

static int audit_cb(const mk_meta_audit_t *row, void *arg)
{
    verify_t *v = arg;
    if (strcmp(row->kind, "incident") == 0)
        v->incidents++;
    return scrub_audit_replay(&v->reps, row);
}

/* Opens the store read-only: its check, topic ids, the audit. */
static int read_store(verify_t *v, const char *data_dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/meta.db", data_dir) >= (int)sizeof(path))
        return MK_ERR_TOO_LARGE;
    mk_meta_t *m;
    int rc = mk_meta_open_readonly(path, &m);
    if (rc == MK_ERR_NOT_FOUND)
        return rc;
    if (rc < 0) {
        problem(v, "metadata store %s cannot be opened: %s (see the log above)", path, mk_strerror(rc));
        return 0;
    }
    char why[512];
    if (mk_meta_check(m, why, sizeof(why)) != 0)
        problem(v, "metadata store %s: integrity check: %s", path, why);
    rc = mk_meta_topic_foreach(m, topic_cb, v);
    if (rc == 0)
        rc = mk_meta_audit_foreach(m, 0, NULL, audit_cb, v);
    if (rc == MK_ERR_NOMEM) {
        mk_meta_close(m);
        return rc;
    }
    if (rc < 0)
        problem(v, "metadata store %s: cannot be read: %s", path, mk_strerror(rc));
    mk_meta_close(m);
    return 0;
}

/* ============================================================= partitions */

static void verify_part(verify_t *v, const vpart_t *vp)
{
    char name[MK_META_MAX_NAME + 16];
    snprintf(name, sizeof(name), "%s-%d", vp->topic, vp->partition);
    scrub_walk_t w;
    scrub_walk_init(&w, name, 0);
    int64_t starts[SCRUB_MAX_REPLICAS];
    int32_t brokers[SCRUB_MAX_REPLICAS];
    const char *dirs[SCRUB_MAX_REPLICAS];   /* of the replicas in the walk */
    for (int i = 0; i < vp->n; i++) {
        mk_log_cursor_t *cur;
        int64_t start = 0;
        int rc = mk_log_cursor_open_dir(vp->dirs[i], &cur, &start);
        if (rc < 0) {
            problem(v, "%s on broker %d: cannot read %s: %s", name, vp->brokers[i], vp->dirs[i], mk_strerror(rc));
            continue;
        }
        starts[w.n] = start;
        brokers[w.n] = vp->brokers[i];
        dirs[w.n] = vp->dirs[i];
        w.compacted_to = MK_MAX(w.compacted_to, mk_log_cleaned_offset_dir(vp->dirs[i]));
        scrub_walk_add(&w, vp->brokers[i], cur, start, true, false);
    }
    scrub_walk_step(&w, 0);
    const char *id = mk_map_get(&v->topic_ids, vp->topic);
    for (int i = 0; i < w.n; i++) {
        const scrub_rep_t *r = &w.reps[i];
        v->replicas++;
        v->batches += r->batches;
        v->bytes += r->bytes;
        if (r->io_error)
            problem(v, "%s on broker %d: reading %s failed (%s): the rest of it was not checked", name, brokers[i],
                    dirs[i], mk_strerror(r->io_error));
        for (int k = 0; k < r->nranges; k++) {
            if (r->ranges[k].to < starts[i])
                continue;
            int64_t from = MK_MAX(r->ranges[k].from, starts[i]);
            char to[32];
            if (r->ranges[k].to == INT64_MAX)
                snprintf(to, sizeof(to), "the end");
            else
                snprintf(to, sizeof(to), "%lld", (long long)r->ranges[k].to);
            if (k == 0)
                problem(v, "%s [%s offsets %lld..%s]", r->why, scrub_bad_name(r->ranges[k].kind), (long long)from, to);
            else
                problem(v, "%s on broker %d: also %s offsets %lld..%s", name, brokers[i],
                        scrub_bad_name(r->ranges[k].kind), (long long)from, to);
        }
        if (!id)
            continue;
        char key[96];
        snprintf(key, sizeof(key), "%s/%d/%d", id, vp->partition, brokers[i]);
        const audit_rep_t *ar = mk_map_get(&v->reps, key);
        if (ar && starts[i] > MK_MAX(ar->start, ar->covered_to))
            problem(v,
                    "%s on broker %d: audit rule coverage: the log start on disk is %lld, but the audit last "
                    "recorded %lld with deletions accounted up to %lld (offsets %lld..%lld went without an audited "
                    "deletion)",
                    name, brokers[i], (long long)starts[i], (long long)ar->start, (long long)ar->covered_to,
                    (long long)MK_MAX(ar->start, ar->covered_to), (long long)starts[i] - 1);
    }
    if (!id && v->topic_ids.count)
        fprintf(v->out, "note: %s is not in the metadata store (a leftover of a deleted topic?)\n", name);
    scrub_walk_free(&w);
}

static void map_free_values(mk_map_t *m)
{
    size_t it = 0;
    const char *k;
    void *val;
    while (mk_map_next(m, &it, &k, &val))
        mk_free(val);
    mk_map_free(m);
}

int mk_scrub_verify_dir(const char *data_dir, FILE *out)
{
    verify_t v;
    memset(&v, 0, sizeof(v));
    v.out = out;
    mk_map_init(&v.topic_ids);
    mk_map_init(&v.reps);
    struct stat sb;
    int rc = 0;
    if (!data_dir || stat(data_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(out, "verify: %s is not a directory\n", data_dir ? data_dir : "(none)");
        rc = MK_ERR_NOT_FOUND;
        goto done;
    }
    rc = read_store(&v, data_dir);
    if (rc == MK_ERR_NOT_FOUND) {
        fprintf(out, "verify: %s has no meta.db: not a minikora data directory\n", data_dir);
        goto done;
    }
    if (rc == 0)
        rc = scan_data_dir(&v, data_dir);
    if (rc < 0) {
        fprintf(out, "verify: cannot read %s: %s\n", data_dir, mk_strerror(rc));
        goto done;
    }
    for (size_t i = 0; i < v.nparts; i++)
        verify_part(&v, &v.parts[i]);
    fprintf(out,
            "verify: %s: %d brokers, %zu partitions, %llu replicas, %llu batches, %llu bytes checked; %d "
            "problem%s\n",
            data_dir, v.brokers, v.nparts, (unsigned long long)v.replicas, (unsigned long long)v.batches,
            (unsigned long long)v.bytes, v.problems, v.problems == 1 ? "" : "s");
    if (v.incidents)
        fprintf(out, "note: the audit table holds %llu incident%s recorded while the cluster ran (GET /v1/integrity)\n",
                (unsigned long long)v.incidents, v.incidents == 1 ? "" : "s");
    rc = v.problems;
done:
    for (size_t i = 0; i < v.nparts; i++) {
        mk_free(v.parts[i].topic);
        for (int k = 0; k < v.parts[i].n; k++)
            mk_free(v.parts[i].dirs[k]);
    }
    mk_free(v.parts);
    map_free_values(&v.topic_ids);
    map_free_values(&v.reps);
    return rc;
}
