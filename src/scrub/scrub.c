/*
 * scrub.c -- the live scrubber: passes over every partition, reads paced on
 * the threadpool, repair decisions, lost-data marks, counts, and the read
 * check the Fetch path asks (see scrub.h for what is checked and why).
 *
 * A pass lists every partition (topic id, index) when it starts and takes
 * them one at a time, so at most one chunk of reading is on the threadpool
 * at any moment.  For a partition, a job opens a cursor on each replica log
 * of a running broker (loop thread: the cursor holds duplicated
 * descriptors and the sizes of now), notes each log's identity (mk_log_id,
 * mk_log_truncations) and the high watermark, and runs the walk (walk.c)
 * on a worker in chunks of about a tenth of a second of the configured
 * rate; between chunks the loop waits for as long as the bytes read should
 * have taken (pacing: minikora.scrub.rate.bytes.per.sec over the pass).
 * When the walk is over, the findings of a replica whose log is no longer
 * the one scanned (closed, reopened or truncated meanwhile) are dropped:
 * the bytes read may not be its history any more.  Offsets below the log
 * start now are not served and are ignored.
 *
 * Decision, per partition with bad replicas: the source is the leader if it
 * is sound, else a sound in-sync replica (preferred order).  With a source,
 * every bad replica is repaired (repl: truncate to the first bad offset and
 * fetch again; a bad leader hands over to the source first).  Without one,
 * each bad replica's bad ranges become lost-data marks: the read check
 * refuses those offsets (CORRUPT_MESSAGE) for reads from that replica.  A
 * mark goes when a pass finds the replica sound (or its offsets retained
 * away) or a repair succeeds.  Marks are kept in meta's kv store under
 * "scrub.lost/<topic id>/<partition>/<broker>" = "<since ms>;<from>-<to>,...;<why>"
 * (to -1: to the end), loaded at start.
 *
 * A finding is counted and told once: a small memory of the recent ones
 * (and the marks) keeps a corruption that cannot be repaired from being
 * counted at every pass.
 *
 * Remote copies: after a partition's local replicas are judged, the remote
 * hook (tier/, wired by broker/) checks its S3 segments; the pass waits for
 * the hook's done report (mk_scrub_remote_report) before the next
 * partition, so at most one partition's reading is under way, local or
 * remote.
 */
#include "scrub/scrub_int.h"
#include "proto/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_PASS_DELAY_MS 1000
#define AUDIT_TICK_MS 1000
#define CHUNK_MIN ((uint64_t)64 << 10)
#define CHUNK_MAX ((uint64_t)16 << 20)
#define LOST_KV_PREFIX "scrub.lost/"

typedef struct scrub_part_s {
    uint8_t topic_id[16];
    int32_t partition;
} scrub_part_t;

/* A lost-data mark: offsets of one replica that no sound copy holds. */
struct scrub_lost_s {
    scrub_lost_t *next;
    uint8_t topic_id[16];
    int32_t partition, broker;
    int n;
    int64_t ranges[SCRUB_MAX_RANGES][2];   /* [from, to], to INT64_MAX: to the end */
    char why[320];
    int64_t since_ms;
};

/* One partition being read. */
struct scrub_job_s {
    uv_work_t req;
    mk_scrub_t *s;              /* NULL once the scrubber is gone: the job frees itself */
    uint8_t topic_id[16];
    int32_t partition;
    char name[280];             /* "topic-partition" */
    scrub_walk_t walk;
    uint64_t log_id[SCRUB_MAX_REPLICAS], truncs[SCRUB_MAX_REPLICAS];
    uint64_t told_batches[SCRUB_MAX_REPLICAS], told_bytes[SCRUB_MAX_REPLICAS];
    uint64_t budget, spent;     /* this chunk */
    uint64_t chunk_started_ms;
    bool in_flight;
};

/* ===================================================================== util */

void scrub_event(mk_scrub_t *s, const char *type, int32_t broker, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    mk_warn("integrity: %s", text);
    if (s->event_cb)
        s->event_cb(type, broker, text, s->event_ud);
}

static scrub_bcounts_t *bcounts(mk_scrub_t *s, int32_t broker)
{
    return broker >= 0 && broker <= MK_CLUSTER_MAX_BROKERS ? &s->counts[broker] : NULL;
}

static void topic_id_text(const uint8_t id[16], char out[MK_CLUSTER_UUID_STR_LEN])
{
    mk_cluster_uuid_str(id, out);
}

/* ================================================================ lost marks */

static scrub_lost_t *lost_find(mk_scrub_t *s, const uint8_t id[16], int32_t partition, int32_t broker)
{
    for (scrub_lost_t *l = s->lost; l; l = l->next)
        if (l->partition == partition && l->broker == broker && memcmp(l->topic_id, id, 16) == 0)
            return l;
    return NULL;
}

/* The mark's kv key. */
static void lost_key(const scrub_lost_t *l, char *key, size_t n)
{
    char id[MK_CLUSTER_UUID_STR_LEN];
    topic_id_text(l->topic_id, id);
    snprintf(key, n, LOST_KV_PREFIX "%s/%d/%d", id, l->partition, l->broker);
}

/* Writes (or, gone, deletes) the mark in the store, off the loop. */
static void lost_persist(mk_scrub_t *s, const scrub_lost_t *l, bool gone)
{
    char key[128], value[1024];
    lost_key(l, key, sizeof(key));
    size_t used = (size_t)snprintf(value, sizeof(value), "%lld;", (long long)l->since_ms);
    for (int i = 0; i < l->n && used < sizeof(value); i++)
        used += (size_t)snprintf(value + used, sizeof(value) - used, "%s%lld-%lld", i ? "," : "",
                                 (long long)l->ranges[i][0],
                                 l->ranges[i][1] == INT64_MAX ? -1LL : (long long)l->ranges[i][1]);
    if (used < sizeof(value))
        snprintf(value + used, sizeof(value) - used, ";%s", l->why);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = gone ? NULL : value};
    int rc = mk_meta_op_submit(s->meta, s->loop, &op, NULL, NULL);
    if (rc < 0)
        mk_warn("integrity: cannot store the lost-data mark %s: %s", key, mk_strerror(rc));
}

static void lost_unlink(mk_scrub_t *s, scrub_lost_t *l)
{
    for (scrub_lost_t **pp = &s->lost; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            return;
        }
}

/* Clears the mark of (t, partition, broker), if any, with why in the event. */
static void lost_clear(mk_scrub_t *s, const mk_topic_t *t, int32_t partition, int32_t broker, const char *why)
{
    scrub_lost_t *l = lost_find(s, t->id, partition, broker);
    if (!l)
        return;
    scrub_event(s, "integrity_lost_cleared", broker, "partition %s-%d on broker %d: the lost-data mark is cleared (%s)",
                t->name, partition, broker, why);
    lost_unlink(s, l);
    lost_persist(s, l, true);
    mk_free(l);
}

/* Sets the mark of a replica to its bad ranges; true when it changed. */
static bool lost_set(mk_scrub_t *s, const mk_topic_t *t, int32_t partition, int32_t broker, const int64_t (*ranges)[2],
                     int n, const char *why)
{
    scrub_lost_t *l = lost_find(s, t->id, partition, broker);
    if (l && l->n == n && memcmp(l->ranges, ranges, sizeof(ranges[0]) * (size_t)n) == 0)
        return false;
    bool fresh = !l;
    if (fresh) {
        l = mk_calloc(1, sizeof(*l));
        if (!l)
            return false;
        memcpy(l->topic_id, t->id, 16);
        l->partition = partition;
        l->broker = broker;
        l->since_ms = mk_now_ms();
        l->next = s->lost;
        s->lost = l;
    }
    l->n = n;
    memcpy(l->ranges, ranges, sizeof(ranges[0]) * (size_t)n);
    snprintf(l->why, sizeof(l->why), "%s", why);
    lost_persist(s, l, false);
    return true;
}

/* Parses "<since>;<from>-<to>,...;<why>" (our own, but read back from
 * disk: every number checked).  false when malformed. */
static bool lost_parse(scrub_lost_t *l, const char *v)
{
    char *end;
    errno = 0;
    long long since = strtoll(v, &end, 10);
    if (errno || end == v || *end != ';' || since < 0)
        return false;
    const char *p = end + 1;
    l->since_ms = since;
    l->n = 0;
    while (*p && *p != ';') {
        if (l->n == SCRUB_MAX_RANGES)
            return false;
        errno = 0;
        long long from = strtoll(p, &end, 10);
        if (errno || end == p || *end != '-' || from < 0)
            return false;
        p = end + 1;
        long long to = strtoll(p, &end, 10);
        if (errno || end == p || to < -1 || (to >= 0 && to < from))
            return false;
        l->ranges[l->n][0] = from;
        l->ranges[l->n][1] = to < 0 ? INT64_MAX : to;
        l->n++;
        p = end;
        if (*p == ',')
            p++;
        else if (*p && *p != ';')
            return false;
    }
    if (*p != ';' || l->n == 0)
        return false;
    snprintf(l->why, sizeof(l->why), "%s", p + 1);
    return true;
}

/* Decodes the 22-character Uuid text back to 16 bytes (URL-safe base64). */
static bool uuid_parse(const char *s, size_t n, uint8_t out[16])
{
    if (n != 22)
        return false;
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-' ? 62 : c == '_' ? 63 : -1;
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < 16)
                out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == 16;
}

static int lost_load_cb(const char *key, const char *value, void *arg)
{
    mk_scrub_t *s = arg;
    const char *p = key + strlen(LOST_KV_PREFIX);
    const char *slash = strchr(p, '/');
    scrub_lost_t tmp = {0};
    char *end;
    if (!slash || !uuid_parse(p, (size_t)(slash - p), tmp.topic_id))
        goto bad;
    errno = 0;
    long part = strtol(slash + 1, &end, 10);
    if (errno || end == slash + 1 || *end != '/' || part < 0 || part >= MK_CLUSTER_MAX_PARTITIONS)
        goto bad;
    const char *b = end + 1;
    long broker = strtol(b, &end, 10);
    if (errno || end == b || *end || broker < 1 || broker > MK_CLUSTER_MAX_BROKERS)
        goto bad;
    tmp.partition = (int32_t)part;
    tmp.broker = (int32_t)broker;
    if (!lost_parse(&tmp, value))
        goto bad;
    scrub_lost_t *l = mk_malloc(sizeof(*l));
    if (!l)
        return MK_ERR_NOMEM;
    *l = tmp;
    l->next = s->lost;
    s->lost = l;
    return 0;
bad:
    mk_warn("integrity: ignoring a malformed lost-data mark %s", key);
    return 0;
}

/* Forgets the marks of topics that are gone. */
static void lost_prune(mk_scrub_t *s)
{
    for (scrub_lost_t *l = s->lost, *next; l; l = next) {
        next = l->next;
        mk_topic_t *t = mk_cluster_topic_find_id(s->c, l->topic_id);
        if (t && mk_cluster_topic_partition(t, l->partition))
            continue;
        lost_unlink(s, l);
        lost_persist(s, l, true);
        mk_free(l);
    }
}

/* The partition writer's read check: lost offsets are refused. */
static int16_t observe_read(void *arg, const mk_partition_t *p, int32_t broker, int64_t offset, int64_t *limit)
{
    mk_scrub_t *s = arg;
    if (!s->lost)
        return 0;
    const mk_topic_t *t = mk_partition_topic(p);
    scrub_lost_t *l = lost_find(s, t->id, mk_partition_index(p), broker);
    if (!l)
        return 0;
    for (int i = 0; i < l->n; i++) {
        if (offset >= l->ranges[i][0] && offset <= l->ranges[i][1])
            return MK_KERR_CORRUPT_MESSAGE;
        if (l->ranges[i][0] > offset && l->ranges[i][0] < *limit)
            *limit = l->ranges[i][0];
    }
    return 0;
}

/* ================================================================ findings */

/* True the first time (t, partition, broker, from) is told; false after,
 * and for what a lost-data mark (of an earlier run, too) already says. */
static bool seen_first(mk_scrub_t *s, const mk_topic_t *t, int32_t partition, int32_t broker, int64_t from)
{
    const scrub_lost_t *l = lost_find(s, t->id, partition, broker);
    if (l && l->n > 0 && l->ranges[0][0] == from)
        return false;
    for (size_t i = 0; i < SCRUB_SEEN; i++) {
        const scrub_seen_t *e = &s->seen[i];
        if (e->broker == broker && e->partition == partition && e->from == from && memcmp(e->topic_id, t->id, 16) == 0)
            return false;
    }
    scrub_seen_t *e = &s->seen[s->seen_next];
    s->seen_next = (s->seen_next + 1) % SCRUB_SEEN;
    memcpy(e->topic_id, t->id, 16);
    e->partition = partition;
    e->broker = broker;
    e->from = from;
    return true;
}

/* ===================================================================== jobs */

static void job_submit(mk_scrub_t *s);
static void job_next(mk_scrub_t *s);
static void pass_schedule(mk_scrub_t *s, uint64_t delay_ms);

static void job_free(scrub_job_t *job)
{
    scrub_walk_free(&job->walk);
    mk_free(job);
}

/* Worker thread: one chunk of the walk. */
static void job_work_cb(uv_work_t *req)
{
    scrub_job_t *job = req->data;
    job->spent = scrub_walk_step(&job->walk, job->budget);
}

/* Adds what the walk read since the last chunk to the brokers' counts. */
static void job_count(mk_scrub_t *s, scrub_job_t *job)
{
    for (int i = 0; i < job->walk.n; i++) {
        const scrub_rep_t *r = &job->walk.reps[i];
        scrub_bcounts_t *bc = bcounts(s, r->broker);
        if (bc) {
            bc->batches += r->batches - job->told_batches[i];
            bc->bytes += r->bytes - job->told_bytes[i];
        }
        job->told_batches[i] = r->batches;
        job->told_bytes[i] = r->bytes;
    }
}

/* A replica's bad ranges from `start` on, into out; returns how many. */
static int effective_ranges(const scrub_rep_t *r, int64_t start, int64_t (*out)[2])
{
    int n = 0;
    for (int i = 0; i < r->nranges; i++) {
        if (r->ranges[i].to < start)
            continue;
        out[n][0] = MK_MAX(r->ranges[i].from, start);
        out[n][1] = r->ranges[i].to;
        n++;
    }
    return n;
}

/* The walk is over: judge each replica, repair or mark.  Loop thread. */
static void job_conclude(mk_scrub_t *s, scrub_job_t *job)
{
    mk_topic_t *t = mk_cluster_topic_find_id(s->c, job->topic_id);
    mk_partition_t *p = t ? mk_cluster_topic_partition(t, job->partition) : NULL;
    if (!p)
        return;
    scrub_walk_t *w = &job->walk;
    int n = w->n;
    bool ok[SCRUB_MAX_REPLICAS], bad[SCRUB_MAX_REPLICAS];
    int64_t ranges[SCRUB_MAX_REPLICAS][SCRUB_MAX_RANGES][2];
    int nr[SCRUB_MAX_REPLICAS];
    int nbad = 0;
    for (int i = 0; i < n; i++) {
        const scrub_rep_t *r = &w->reps[i];
        mk_log_t *log = mk_partition_replica_log(p, r->broker);
        bool same = log && !r->io_error && mk_log_id(log) == job->log_id[i] &&
                    mk_log_truncations(log) == job->truncs[i];
        if (r->io_error)
            mk_warn("integrity: partition %s on broker %d could not be read (%s): not checked in this pass", job->name,
                    r->broker, mk_strerror(r->io_error));
        nr[i] = same ? effective_ranges(r, mk_log_start_offset(log), ranges[i]) : 0;
        bad[i] = same && nr[i] > 0;
        ok[i] = same && nr[i] == 0;
        nbad += bad[i];
        if (!same && r->broker >= 0 && r->broker <= MK_CLUSTER_MAX_BROKERS)
            s->covered[r->broker] = false;
    }
    for (int i = 0; i < n; i++)
        if (ok[i])
            lost_clear(s, t, job->partition, w->reps[i].broker, "a pass found the replica sound");
    if (nbad == 0)
        return;

    /* Tell and count each new finding. */
    for (int i = 0; i < n; i++) {
        if (!bad[i])
            continue;
        const scrub_rep_t *r = &w->reps[i];
        if (!seen_first(s, t, job->partition, r->broker, ranges[i][0][0]))
            continue;
        scrub_bcounts_t *bc = bcounts(s, r->broker);
        /* The audit's rules: replicas agree, offsets are covered. */
        const scrub_range_t *diverged = NULL, *gap = NULL;
        int64_t start = ranges[i][0][0];
        for (int k = 0; k < r->nranges; k++) {
            if (r->ranges[k].to < start)
                continue;
            if (!diverged && r->ranges[k].kind == SCRUB_BAD_DIVERGED)
                diverged = &r->ranges[k];
            if (!gap && r->ranges[k].kind == SCRUB_BAD_GAP)
                gap = &r->ranges[k];
        }
        if (bc) {
            bc->corruptions++;
            bc->divergences += diverged != NULL;
        }
        scrub_event(s, "integrity_corruption", r->broker, "%s (bad from offset %lld)", r->why, (long long)start);
        if (diverged)
            scrub_audit_incident(s, t, job->partition, r->broker, "replicas_agree", MK_MAX(diverged->from, start),
                                 diverged->to == INT64_MAX ? -1 : diverged->to, "%s", r->why);
        if (gap)
            scrub_audit_incident(s, t, job->partition, r->broker, "coverage", MK_MAX(gap->from, start),
                                 gap->to == INT64_MAX ? -1 : gap->to, "%s", r->why);
    }

    /* The source: the leader if sound, else a sound in-sync replica. */
    int32_t leader = mk_partition_leader(p), source = -1;
    for (int i = 0; i < n; i++)
        if (ok[i] && w->reps[i].broker == leader)
            source = leader;
    for (int32_t k = 0; source < 0 && k < mk_partition_replica_count(p); k++) {
        int32_t b = mk_partition_replica_broker(p, k);
        for (int i = 0; i < n && source < 0; i++)
            if (ok[i] && w->reps[i].broker == b && mk_partition_replica_in_isr(p, b))
                source = b;
    }
    if (source >= 0) {
        /* The leader first: it hands over to the source before anyone fetches. */
        for (int pass = 0; pass < 2; pass++) {
            /* Followers fetch again only from a sound leader. */
            bool leader_sound = false;
            for (int i = 0; i < n; i++)
                leader_sound |= ok[i] && w->reps[i].broker == mk_partition_leader(p);
            if (pass == 1 && !leader_sound)
                break;
            for (int i = 0; i < n; i++) {
                const scrub_rep_t *r = &w->reps[i];
                if (!bad[i] || (pass == 0) != (r->broker == mk_partition_leader(p)))
                    continue;
                bool led = r->broker == mk_partition_leader(p);
                int rc = mk_repl_replica_repair(s->repl, p, r->broker, ranges[i][0][0], source);
                if (rc == 0) {
                    scrub_bcounts_t *bc = bcounts(s, r->broker);
                    if (bc)
                        bc->repaired++;
                    scrub_event(s, "integrity_repaired", r->broker,
                                "partition %s: replica on broker %d truncated to offset %lld and fetching the rest "
                                "again from broker %d%s",
                                job->name, r->broker, (long long)ranges[i][0][0], mk_partition_leader(p),
                                led ? " (it led: leadership moved first)" : "");
                    lost_clear(s, t, job->partition, r->broker, "repaired");
                    bad[i] = false;
                } else {
                    mk_warn("integrity: partition %s: repair of broker %d failed: %s", job->name, r->broker,
                            mk_strerror(rc));
                }
            }
        }
    }
    /* What could not be repaired is lost: never served from that replica. */
    for (int i = 0; i < n; i++) {
        if (!bad[i])
            continue;
        const scrub_rep_t *r = &w->reps[i];
        if (!lost_set(s, t, job->partition, r->broker, (const int64_t(*)[2])ranges[i], nr[i], r->why))
            continue;
        char to[32] = "the end";
        if (ranges[i][nr[i] - 1][1] != INT64_MAX)
            snprintf(to, sizeof(to), "%lld", (long long)ranges[i][nr[i] - 1][1]);
        scrub_event(s, "integrity_data_lost", r->broker,
                    "partition %s on broker %d: offsets %lld..%s have no sound in-sync copy: lost, and refused to "
                    "readers of this replica (CORRUPT_MESSAGE)",
                    job->name, r->broker, (long long)ranges[i][0][0], to);
    }
}

/* ============================================================ remote copies */

/* After a partition's local replicas: its remote copy, through the hook.
 * True when a check started (the pass waits for its done report). */
static bool remote_start(mk_scrub_t *s, const scrub_job_t *job)
{
    if (!s->remote.check || s->remote_busy)
        return false;
    if (s->remote.check(s->remote.arg, job->topic_id, job->partition, s->cfg.rate_bytes_per_sec) != 0)
        return false;
    s->remote_busy = true;
    return true;
}

void mk_scrub_remote_report(mk_scrub_t *s, const mk_scrub_remote_report_t *r)
{
    if (!s->remote_busy)
        return;
    mk_scrub_remote_counts_t *rc = &s->remote_counts;
    if (r->done) {
        rc->segments += r->segments;
        rc->bytes += r->bytes;
        rc->skipped += r->skipped;
        s->remote_busy = false;
        if (s->in_pass && !s->job)
            job_next(s);
        return;
    }
    char to[32];
    snprintf(to, sizeof(to), "%lld", (long long)r->end);
    switch (r->outcome) {
    case MK_SCRUB_REMOTE_REUPLOADED:
        rc->corrupt++;
        rc->reuploaded++;
        scrub_event(s, "integrity_remote_fixed", r->broker,
                    "%s-%d: S3 copy of offsets %lld..%s was corrupt (%s); uploaded again from broker %d", r->topic,
                    r->partition, (long long)r->start, to, r->why, r->broker);
        break;
    case MK_SCRUB_REMOTE_UNREPAIRABLE:
        if (r->repeat)
            break; /* counted and told when first found */
        rc->corrupt++;
        rc->unrepairable++;
        scrub_event(s, "integrity_remote_lost", r->broker,
                    "%s-%d: S3 copy of offsets %lld..%s is corrupt and cannot be repaired: %s", r->topic,
                    r->partition, (long long)r->start, to, r->why);
        break;
    default:
        rc->corrupt++;
        rc->reupload_failed++;
        scrub_event(s, "integrity_remote_bad", r->broker,
                    "%s-%d: S3 copy of offsets %lld..%s is corrupt; not repaired yet: %s", r->topic, r->partition,
                    (long long)r->start, to, r->why);
        break;
    }
    mk_info("integrity: remote segment %s of %s-%d (offsets %lld..%s): %s", r->segment_id, r->topic, r->partition,
            (long long)r->start, to, r->why);
}

void mk_scrub_remote_counts(const mk_scrub_t *s, mk_scrub_remote_counts_t *out)
{
    *out = s->remote_counts;
    out->checked = s->remote.check != NULL;
}

/* Loop thread: a chunk came back. */
static void job_after_cb(uv_work_t *req, int status)
{
    scrub_job_t *job = req->data;
    mk_scrub_t *s = job->s;
    job->in_flight = false;
    if (!s) {
        job_free(job); /* the scrubber went meanwhile */
        return;
    }
    job_count(s, job);
    bool gone = !mk_cluster_topic_find_id(s->c, job->topic_id);
    if (status == UV_ECANCELED || gone || job->walk.finished) {
        bool remote = false;
        if (!gone && job->walk.finished) {
            job_conclude(s, job);
            remote = remote_start(s, job);
        }
        s->job = NULL;
        job_free(job);
        if (!remote)
            job_next(s); /* else when the remote check is done (mk_scrub_remote_report) */
        return;
    }
    /* Pacing: the chunk's bytes at the configured rate. */
    uint64_t need = job->spent * 1000 / (uint64_t)s->cfg.rate_bytes_per_sec;
    uint64_t took = uv_now(s->loop) - job->chunk_started_ms;
    pass_schedule(s, need > took ? need - took : 0);
}

static void job_submit(mk_scrub_t *s)
{
    scrub_job_t *job = s->job;
    job->chunk_started_ms = uv_now(s->loop);
    job->in_flight = true;
    job->req.data = job;
    if (uv_queue_work(s->loop, &job->req, job_work_cb, job_after_cb) != 0) {
        job->in_flight = false;
        s->job = NULL;
        job_free(job);
        job_next(s);
    }
}

/* Opens the job of partition p; NULL when no replica can be read. */
static scrub_job_t *job_open(mk_scrub_t *s, mk_topic_t *t, mk_partition_t *p)
{
    scrub_job_t *job = mk_calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    memcpy(job->topic_id, t->id, 16);
    job->partition = mk_partition_index(p);
    snprintf(job->name, sizeof(job->name), "%s-%d", t->name, job->partition);
    scrub_walk_init(&job->walk, job->name, mk_partition_hw(p));
    int32_t leader = mk_partition_leader(p);
    for (int32_t k = 0; k < mk_partition_replica_count(p); k++) {
        int32_t b = mk_partition_replica_broker(p, k);
        mk_log_t *log = mk_partition_replica_log(p, b);
        mk_log_cursor_t *cur;
        if (!log || mk_log_cursor_open(log, &cur) < 0) {
            if (b >= 0 && b <= MK_CLUSTER_MAX_BROKERS)
                s->covered[b] = false;
            continue;
        }
        int i = job->walk.n;
        if (scrub_walk_add(&job->walk, b, cur, mk_log_start_offset(log), mk_partition_replica_settled(p, b),
                           b == leader) < 0)
            continue;
        job->log_id[i] = mk_log_id(log);
        job->truncs[i] = mk_log_truncations(log);
        job->walk.compacted_to = MK_MAX(job->walk.compacted_to, mk_log_cleaned_offset(log));
    }
    if (job->walk.n == 0) {
        job_free(job);
        return NULL;
    }
    uint64_t chunk = (uint64_t)s->cfg.rate_bytes_per_sec / 10;
    job->budget = MK_MIN(MK_MAX(chunk, CHUNK_MIN), CHUNK_MAX);
    return job;
}

/* ==================================================================== passes */

static void pass_end(mk_scrub_t *s)
{
    int64_t now = mk_now_ms();
    for (int b = 0; b <= MK_CLUSTER_MAX_BROKERS; b++)
        if (s->covered[b])
            s->counts[b].last_pass_ms = now;
    s->passes++;
    s->in_pass = false;
    mk_free(s->todo);
    s->todo = NULL;
    s->ntodo = s->itodo = 0;
    mk_debug("integrity: pass %llu done in %lld ms", (unsigned long long)s->passes,
             (long long)(now - s->pass_started_ms));
    s->pass_started_ms = -1;
    if (s->passes % 64 == 0) {
        mk_meta_op_t op = {.kind = MK_META_AUDIT_PRUNE, .n = 100000};
        mk_meta_op_submit(s->meta, s->loop, &op, NULL, NULL);
    }
    pass_schedule(s, (uint64_t)s->cfg.interval_ms);
}

/* The next partition of the pass, or the pass's end. */
static void job_next(mk_scrub_t *s)
{
    while (s->itodo < s->ntodo) {
        const scrub_part_t *pt = &s->todo[s->itodo++];
        mk_topic_t *t = mk_cluster_topic_find_id(s->c, pt->topic_id);
        mk_partition_t *p = t ? mk_cluster_topic_partition(t, pt->partition) : NULL;
        if (!p)
            continue;
        scrub_job_t *job = job_open(s, t, p);
        if (!job)
            continue;
        job->s = s;
        s->job = job;
        job_submit(s);
        return;
    }
    pass_end(s);
}

static void pass_begin(mk_scrub_t *s)
{
    size_t n = 0, it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(s->c, &it)))
        n += (size_t)t->partition_count;
    s->todo = mk_malloc(sizeof(scrub_part_t) * (n ? n : 1));
    if (!s->todo) {
        pass_schedule(s, (uint64_t)MK_MAX(s->cfg.interval_ms, 1000));
        return;
    }
    s->ntodo = 0;
    it = 0;
    while ((t = mk_cluster_topic_next(s->c, &it)) && s->ntodo < n)
        for (int32_t i = 0; i < t->partition_count && s->ntodo < n; i++) {
            memcpy(s->todo[s->ntodo].topic_id, t->id, 16);
            s->todo[s->ntodo].partition = i;
            s->ntodo++;
        }
    s->itodo = 0;
    for (int i = 0; i <= MK_CLUSTER_MAX_BROKERS; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_find(s->c, i);
        s->covered[i] = b && b->running;
    }
    s->in_pass = true;
    s->pass_started_ms = mk_now_ms();
    lost_prune(s);
    job_next(s);
}

/* The one timer: the next chunk of the current job, or the next pass. */
static void timer_cb(uv_timer_t *h)
{
    mk_scrub_t *s = h->data;
    if (s->job) {
        if (!s->job->in_flight)
            job_submit(s);
    } else if (!s->in_pass) {
        pass_begin(s);
    } else if (!s->remote_busy) {
        job_next(s); /* a remote check was cancelled */
    }
}

static void pass_schedule(mk_scrub_t *s, uint64_t delay_ms)
{
    if (s->cfg.interval_ms < 0 && !s->job)
        return;
    uv_timer_start(s->timer, timer_cb, delay_ms, 0);
}

int mk_scrub_run_now(mk_scrub_t *s)
{
    if (s->in_pass || s->cfg.interval_ms < 0)
        return MK_ERR_STATE;
    uv_timer_start(s->timer, timer_cb, 0, 0);
    return 0;
}

/* ================================================================ observers */

static void observe_segment(void *arg, mk_partition_t *p, int32_t broker, const mk_log_segment_event_t *ev)
{
    if (ev->type == MK_LOG_SEGMENT_DELETED || ev->type == MK_LOG_SEGMENT_START)
        scrub_audit_segment(arg, p, broker, ev);
}

static void tick_cb(uv_timer_t *h) { scrub_audit_tick(h->data); }

/* ================================================================ lifecycle */

int mk_scrub_new(uv_loop_t *loop, mk_cluster_t *c, mk_partition_writer_t *writer, mk_repl_t *repl,
                 const mk_scrub_config_t *cfg, mk_scrub_t **out)
{
    *out = NULL;
    if (!cfg || cfg->rate_bytes_per_sec < 1 || cfg->interval_ms < -1)
        return MK_ERR_INVALID;
    mk_scrub_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    for (size_t i = 0; i < SCRUB_SEEN; i++)
        s->seen[i].broker = -1;
    s->loop = loop;
    s->c = c;
    s->writer = writer;
    s->repl = repl;
    s->meta = mk_cluster_meta(c);
    s->cfg = *cfg;
    s->pass_started_ms = -1;
    for (int i = 0; i <= MK_CLUSTER_MAX_BROKERS; i++)
        s->counts[i].last_pass_ms = -1;
    s->timer = mk_malloc(sizeof(uv_timer_t));
    s->tick = mk_malloc(sizeof(uv_timer_t));
    int rc = s->timer && s->tick ? 0 : MK_ERR_NOMEM;
    if (rc == 0)
        rc = mk_meta_kv_foreach(s->meta, LOST_KV_PREFIX, lost_load_cb, s);
    if (rc == 0)
        rc = scrub_audit_init(s);
    mk_partition_observer_t obs = {.name = "scrub", .segment = observe_segment, .read_check = observe_read, .arg = s};
    if (rc == 0)
        rc = mk_partition_writer_observe(writer, &obs);
    if (rc < 0) {
        scrub_audit_free(s);
        while (s->lost) {
            scrub_lost_t *l = s->lost;
            s->lost = l->next;
            mk_free(l);
        }
        mk_free(s->timer);
        mk_free(s->tick);
        mk_free(s);
        return rc;
    }
    uv_timer_init(loop, s->timer);
    uv_timer_init(loop, s->tick);
    s->timer->data = s->tick->data = s;
    /* The first audit at the first turn of the loop: after the admin layer
     * has registered for the events (an incident at start is one). */
    uv_timer_start(s->tick, tick_cb, 0, AUDIT_TICK_MS);
    if (cfg->interval_ms >= 0)
        pass_schedule(s, (uint64_t)MK_MIN(FIRST_PASS_DELAY_MS, cfg->interval_ms));
    if (s->lost)
        mk_warn("integrity: partitions with lost data are marked (see GET /v1/integrity); their lost offsets are "
                "refused to readers");
    *out = s;
    return 0;
}

static void handle_free_cb(uv_handle_t *h) { mk_free(h); }

void mk_scrub_free(mk_scrub_t *s)
{
    if (!s)
        return;
    mk_partition_writer_unobserve(s->writer, s);
    scrub_audit_flush(s);
    if (s->remote_busy && s->remote.cancel)
        s->remote.cancel(s->remote.arg);
    s->remote_busy = false;
    if (s->job) {
        if (s->job->in_flight) {
            s->job->s = NULL; /* freed when it comes back */
            uv_cancel((uv_req_t *)&s->job->req);
        } else {
            job_free(s->job);
        }
        s->job = NULL;
    }
    uv_close((uv_handle_t *)s->timer, handle_free_cb);
    uv_close((uv_handle_t *)s->tick, handle_free_cb);
    scrub_audit_free(s);
    while (s->lost) {
        scrub_lost_t *l = s->lost;
        s->lost = l->next;
        mk_free(l);
    }
    mk_free(s->todo);
    mk_free(s);
}

void mk_scrub_set_event_cb(mk_scrub_t *s, mk_scrub_event_cb cb, void *ud)
{
    s->event_cb = cb;
    s->event_ud = cb ? ud : NULL;
}

void mk_scrub_set_remote_hook(mk_scrub_t *s, const mk_scrub_remote_hook_t *hook)
{
    if (s->remote_busy) {
        /* The check under the old hook stops; the pass goes on. */
        if (s->remote.cancel)
            s->remote.cancel(s->remote.arg);
        s->remote_busy = false;
        if (s->in_pass && !s->job)
            pass_schedule(s, 0);
    }
    if (hook)
        s->remote = *hook;
    else
        memset(&s->remote, 0, sizeof(s->remote));
}

/* ================================================================ reporting */

static int32_t lost_count(const mk_scrub_t *s, int32_t broker)
{
    int32_t n = 0;
    for (const scrub_lost_t *l = s->lost; l; l = l->next) {
        if (broker >= 0 && l->broker != broker)
            continue;
        if (broker < 0) {
            /* Partitions, not replicas: count a partition at its first mark. */
            bool first = true;
            for (const scrub_lost_t *o = s->lost; o != l; o = o->next)
                if (o->partition == l->partition && memcmp(o->topic_id, l->topic_id, 16) == 0)
                    first = false;
            if (!first)
                continue;
        }
        n++;
    }
    return n;
}

void mk_scrub_broker_counts(const mk_scrub_t *s, int32_t broker, mk_scrub_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    out->last_pass_ms = -1;
    if (broker < 0 || broker > MK_CLUSTER_MAX_BROKERS)
        return;
    const scrub_bcounts_t *b = &s->counts[broker];
    out->batches = b->batches;
    out->bytes = b->bytes;
    out->last_pass_ms = b->last_pass_ms;
    out->corruptions = b->corruptions;
    out->divergences = b->divergences;
    out->repaired = b->repaired;
    out->unrepairable = lost_count(s, broker);
    out->incidents = s->audit.incidents[broker];
}

void mk_scrub_status(const mk_scrub_t *s, mk_scrub_status_t *out)
{
    memset(out, 0, sizeof(*out));
    out->enabled = s->cfg.interval_ms >= 0;
    out->rate_bytes_per_sec = s->cfg.rate_bytes_per_sec;
    out->interval_ms = s->cfg.interval_ms;
    out->passes = s->passes;
    out->pass_running = s->in_pass;
    out->pass_started_ms = s->pass_started_ms;
    out->pass_done = s->itodo;
    out->pass_total = s->ntodo;
    out->audit_events = s->audit.written;
    out->total.last_pass_ms = -1;
    for (int b = 0; b <= MK_CLUSTER_MAX_BROKERS; b++) {
        const scrub_bcounts_t *bc = &s->counts[b];
        out->total.batches += bc->batches;
        out->total.bytes += bc->bytes;
        out->total.corruptions += bc->corruptions;
        out->total.divergences += bc->divergences;
        out->total.repaired += bc->repaired;
    }
    out->total.unrepairable = lost_count(s, -1);
    out->total.incidents = s->audit.incidents_total;
    if (s->passes > 0) {
        /* The end of the last pass: the newest of the brokers' (a broker
         * down during it keeps an older one). */
        for (int b = 0; b <= MK_CLUSTER_MAX_BROKERS; b++)
            out->total.last_pass_ms = MK_MAX(out->total.last_pass_ms, s->counts[b].last_pass_ms);
    }
}

size_t mk_scrub_lost_foreach(const mk_scrub_t *s, mk_scrub_lost_cb cb, void *arg)
{
    size_t n = 0;
    for (const scrub_lost_t *l = s->lost; l; l = l->next) {
        mk_topic_t *t = mk_cluster_topic_find_id(s->c, l->topic_id);
        if (!t)
            continue;
        mk_scrub_lost_t v = {t->name, l->partition, l->broker, l->n, (const int64_t(*)[2])l->ranges, l->why,
                             l->since_ms};
        if (cb)
            cb(&v, arg);
        n++;
    }
    return n;
}

void mk_scrub_incidents_foreach(const mk_scrub_t *s, mk_scrub_note_cb cb, void *arg)
{
    scrub_notes_foreach(&s->audit.incident_notes, cb, arg);
}

void mk_scrub_audit_recent_foreach(const mk_scrub_t *s, mk_scrub_note_cb cb, void *arg)
{
    scrub_notes_foreach(&s->audit.recent, cb, arg);
}
