/*
 * audit.c -- the durability audit: what happens to stored offsets is
 * written down as events, and checked against rules (scrub.h lists them).
 *
 * Events (rows of meta's audit table, mk_meta_audit_t):
 *   retention        a topic's effective retention.ms / retention.bytes, when
 *                    first seen and whenever they change (topic creation, a
 *                    restart with other broker settings)
 *   segment_deleted  every segment retention deletes (the log's segment
 *                    event), with what retention judged it by
 *   log_start        every change of a replica's log start offset, with its
 *                    cause: first_seen, retention, truncation (a follower
 *                    restarting at the leader's start, a repair), reopened
 *                    (the log was closed and opened again: a restart)
 *   incident         a rule failed
 *
 * State per replica (key "<topic id>/<partition>/<broker>"): the last log
 * start recorded, how far the deleted segments since then reach
 * (covered_to), and the identity of the log last looked at (mk_log_id,
 * mk_log_truncations), which says whether a change came from retention on
 * the same log, from a truncation, or from a reopen.  At start the state
 * is rebuilt from the table, so a log start that moved while minikora was
 * stopped -- a file edited or removed by hand -- is caught by the first
 * tick.  Rows are collected and handed to the store as one append per
 * tick (off the loop).
 *
 * Rules:
 *   retention   a deletion for retention.ms needs the segment's largest
 *               timestamp to be older than now - retention.ms (and
 *               retention.ms >= 0); for retention.bytes, the log to keep at
 *               least retention.bytes; below the log start, the segment to
 *               lie entirely below it
 *   coverage    a segment deleted starts where the offsets already
 *               accounted for end (no gap); the log start only advances up
 *               to what deletions covered, or, by a truncation, up to the
 *               leader's log start (a follower's restart, Kafka's
 *               truncateFullyAndStartAt); the scrubber reports gaps
 *               inside a log under this rule too
 *   replicas_agree  reported by the scrubber's comparison
 * A failed rule is an incident row, counted per broker, kept in a ring for
 * GET /v1/integrity and told as an event.
 */
#include "scrub/scrub_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct audit_topic_s {
    int64_t retention_ms, retention_bytes;
    uint64_t sweep;
} audit_topic_t;

/* ===================================================================== notes */

static void note_free(mk_scrub_note_t *n)
{
    mk_free((char *)n->kind);
    mk_free((char *)n->topic);
    mk_free((char *)n->text);
    memset(n, 0, sizeof(*n));
}

void scrub_notes_push(scrub_notes_t *r, const mk_scrub_note_t *n)
{
    mk_scrub_note_t *slot = &r->v[r->next];
    note_free(slot);
    *slot = *n;
    slot->kind = mk_strdup(n->kind ? n->kind : "");
    slot->topic = mk_strdup(n->topic ? n->topic : "");
    slot->text = mk_strdup(n->text ? n->text : "");
    if (!slot->kind || !slot->topic || !slot->text) {
        note_free(slot);
        return;
    }
    r->next = (r->next + 1) % SCRUB_NOTES;
    if (r->count < SCRUB_NOTES)
        r->count++;
}

void scrub_notes_foreach(const scrub_notes_t *r, mk_scrub_note_cb cb, void *arg)
{
    size_t first = (r->next + SCRUB_NOTES - r->count) % SCRUB_NOTES;
    for (size_t i = 0; i < r->count; i++) {
        const mk_scrub_note_t *n = &r->v[(first + i) % SCRUB_NOTES];
        if (n->kind)
            cb(n, arg);
    }
}

void scrub_notes_free(scrub_notes_t *r)
{
    for (size_t i = 0; i < SCRUB_NOTES; i++)
        note_free(&r->v[i]);
    r->next = r->count = 0;
}

/* ====================================================================== rows */

static void row_free(mk_meta_audit_t *row)
{
    mk_free((char *)row->kind);
    mk_free((char *)row->topic);
    mk_free((char *)row->topic_id);
    mk_free((char *)row->rule);
    mk_free((char *)row->detail);
}

/* A new pending row of kind about (t, partition, broker), every number
 * NONE; NULL when out of memory (the event is then only logged).  Finish
 * it with row_done(). */
static mk_meta_audit_t *row_new(mk_scrub_t *s, const char *kind, const mk_topic_t *t, int32_t partition,
                                int32_t broker)
{
    scrub_audit_t *a = &s->audit;
    if (a->npending == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        mk_meta_audit_t *n = mk_realloc(a->pending, cap * sizeof(*n));
        if (!n)
            return NULL;
        a->pending = n;
        a->cap = cap;
    }
    mk_meta_audit_t *row = &a->pending[a->npending];
    char id[MK_CLUSTER_UUID_STR_LEN] = "";
    if (t)
        mk_cluster_uuid_str(t->id, id);
    *row = (mk_meta_audit_t){
        .ts_ms = mk_now_ms(),
        .kind = mk_strdup(kind),
        .topic = mk_strdup(t ? t->name : ""),
        .topic_id = mk_strdup(id),
        .partition = partition,
        .broker = broker,
        .start_before = MK_META_AUDIT_NONE,
        .start_after = MK_META_AUDIT_NONE,
        .base_offset = MK_META_AUDIT_NONE,
        .end_offset = MK_META_AUDIT_NONE,
        .largest_ts = MK_META_AUDIT_NONE,
        .retention_ms = MK_META_AUDIT_NONE,
        .retention_bytes = MK_META_AUDIT_NONE,
        .log_bytes = MK_META_AUDIT_NONE,
    };
    if (!row->kind || !row->topic || !row->topic_id) {
        row_free(row);
        return NULL;
    }
    return row;
}

/* Finishes the row made by row_new() (NULL: only the note): rule and the
 * detail sentence; it joins the pending rows and the recent notes. */
static void row_done(mk_scrub_t *s, mk_meta_audit_t *row, const char *kind, const mk_topic_t *t, int32_t partition,
                     int32_t broker, const char *rule, int64_t from, int64_t to, const char *fmt, ...)
    __attribute__((format(printf, 10, 11)));
static void row_done(mk_scrub_t *s, mk_meta_audit_t *row, const char *kind, const mk_topic_t *t, int32_t partition,
                     int32_t broker, const char *rule, int64_t from, int64_t to, const char *fmt, ...)
{
    char detail[MK_META_MAX_AUDIT_DETAIL];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    mk_debug("audit: %s %s: %s", kind, rule, detail);
    mk_scrub_note_t note = {mk_now_ms(), kind, t ? t->name : "", partition, broker, from, to, detail};
    scrub_notes_push(&s->audit.recent, &note);
    if (!row)
        return;
    row->rule = mk_strdup(rule);
    row->detail = mk_strdup(detail);
    if (!row->rule || !row->detail) {
        row_free(row);
        return;
    }
    s->audit.npending++;
}

void scrub_audit_flush(mk_scrub_t *s)
{
    scrub_audit_t *a = &s->audit;
    if (!a->npending)
        return;
    mk_meta_op_t op = {.kind = MK_META_AUDIT_APPEND, .audit = a->pending, .n = (int)a->npending};
    int rc = mk_meta_op_submit(s->meta, s->loop, &op, NULL, NULL);
    if (rc < 0)
        mk_warn("audit: %zu events could not be stored: %s", a->npending, mk_strerror(rc));
    else
        a->written += a->npending;
    for (size_t i = 0; i < a->npending; i++)
        row_free(&a->pending[i]);
    a->npending = 0;
}

/* ================================================================= incidents */

void scrub_audit_incident(mk_scrub_t *s, const mk_topic_t *t, int32_t partition, int32_t broker, const char *rule,
                          int64_t from, int64_t to, const char *fmt, ...)
{
    char text[MK_META_MAX_AUDIT_DETAIL];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    scrub_audit_t *a = &s->audit;
    mk_meta_audit_t *row = row_new(s, "incident", t, partition, broker);
    if (row) {
        row->base_offset = from >= 0 ? from : MK_META_AUDIT_NONE;
        row->end_offset = to >= 0 ? to : MK_META_AUDIT_NONE;
    }
    row_done(s, row, "incident", t, partition, broker, rule, from, to, "%s", text);
    a->incidents_total++;
    if (broker >= 0 && broker <= MK_CLUSTER_MAX_BROKERS)
        a->incidents[broker]++;
    mk_scrub_note_t note = {mk_now_ms(), rule, t ? t->name : "", partition, broker, from, to, text};
    scrub_notes_push(&a->incident_notes, &note);
    scrub_event(s, "integrity_incident", broker, "audit rule %s failed: %s", rule, text);
}

/* ===================================================================== state */

static void rep_key(const mk_topic_t *t, int32_t partition, int32_t broker, char *out, size_t n)
{
    char id[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(t->id, id);
    snprintf(out, n, "%s/%d/%d", id, partition, broker);
}

static audit_rep_t *rep_get(mk_scrub_t *s, const char *key, bool create)
{
    audit_rep_t *r = mk_map_get(&s->audit.reps, key);
    if (r || !create)
        return r;
    r = mk_calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->start = -1;
    if (mk_map_put(&s->audit.reps, key, r) < 0) {
        mk_free(r);
        return NULL;
    }
    return r;
}

int scrub_audit_replay(mk_map_t *reps, const mk_meta_audit_t *row)
{
    char key[96];
    snprintf(key, sizeof(key), "%s/%d/%d", row->topic_id, row->partition, row->broker);
    audit_rep_t *r = mk_map_get(reps, key);
    if (strcmp(row->kind, "log_start") == 0 && row->start_after != MK_META_AUDIT_NONE && row->start_after >= 0) {
        if (!r) {
            r = mk_calloc(1, sizeof(*r));
            if (!r || mk_map_put(reps, key, r) < 0) {
                mk_free(r);
                return MK_ERR_NOMEM;
            }
        }
        r->start = row->start_after;
        r->covered_to = row->start_after;
    } else if (strcmp(row->kind, "segment_deleted") == 0 && r && row->base_offset != MK_META_AUDIT_NONE &&
               row->end_offset != MK_META_AUDIT_NONE && row->base_offset <= r->covered_to) {
        r->covered_to = MK_MAX(r->covered_to, row->end_offset);
    }
    return 0;
}

/* One stored row, replayed at start. */
static int load_cb(const mk_meta_audit_t *row, void *arg)
{
    mk_scrub_t *s = arg;
    scrub_audit_t *a = &s->audit;
    int rc = scrub_audit_replay(&a->reps, row);
    if (rc < 0)
        return rc;
    if (strcmp(row->kind, "retention") == 0 && row->topic_id[0]) {
        audit_topic_t *t = mk_map_get(&a->topics, row->topic_id);
        if (!t) {
            t = mk_calloc(1, sizeof(*t));
            if (!t || mk_map_put(&a->topics, row->topic_id, t) < 0) {
                mk_free(t);
                return MK_ERR_NOMEM;
            }
        }
        t->retention_ms = row->retention_ms == MK_META_AUDIT_NONE ? -1 : row->retention_ms;
        t->retention_bytes = row->retention_bytes == MK_META_AUDIT_NONE ? -1 : row->retention_bytes;
    } else if (strcmp(row->kind, "incident") == 0) {
        a->incidents_total++;
        if (row->broker >= 0 && row->broker <= MK_CLUSTER_MAX_BROKERS)
            a->incidents[row->broker]++;
        mk_scrub_note_t note = {row->ts_ms,
                                row->rule,
                                row->topic,
                                row->partition,
                                row->broker,
                                row->base_offset == MK_META_AUDIT_NONE ? -1 : row->base_offset,
                                row->end_offset == MK_META_AUDIT_NONE ? -1 : row->end_offset,
                                row->detail};
        scrub_notes_push(&a->incident_notes, &note);
    }
    return 0;
}

int scrub_audit_init(mk_scrub_t *s)
{
    scrub_audit_t *a = &s->audit;
    mk_map_init(&a->reps);
    mk_map_init(&a->topics);
    int rc = mk_meta_audit_foreach(s->meta, 0, NULL, load_cb, s);
    if (rc < 0)
        mk_error("audit: cannot load the audit table: %s", mk_strerror(rc));
    return rc;
}

static void map_free_values(mk_map_t *m)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(m, &it, &k, &v))
        mk_free(v);
    mk_map_free(m);
}

void scrub_audit_free(mk_scrub_t *s)
{
    scrub_audit_t *a = &s->audit;
    map_free_values(&a->reps);
    map_free_values(&a->topics);
    for (size_t i = 0; i < a->npending; i++)
        row_free(&a->pending[i]);
    mk_free(a->pending);
    a->pending = NULL;
    a->npending = a->cap = 0;
    scrub_notes_free(&a->incident_notes);
    scrub_notes_free(&a->recent);
}

/* ====================================================================== tick */

/* A topic's retention settings: recorded when first seen or changed. */
static void audit_topic(mk_scrub_t *s, const mk_topic_t *t)
{
    scrub_audit_t *a = &s->audit;
    char id[MK_CLUSTER_UUID_STR_LEN];
    mk_cluster_uuid_str(t->id, id);
    /* The topic's total retention (a tiered topic's log has its own off:
     * tier/ applies it, see mk_topic_config_t). */
    int64_t ms = t->cfg.retention_ms, bytes = t->cfg.retention_bytes;
    audit_topic_t *at = mk_map_get(&a->topics, id);
    if (!at || at->retention_ms != ms || at->retention_bytes != bytes) {
        mk_meta_audit_t *row = row_new(s, "retention", t, -1, -1);
        if (row) {
            row->retention_ms = ms;
            row->retention_bytes = bytes;
        }
        if (at)
            row_done(s, row, "retention", t, -1, -1, "changed", ms, bytes,
                     "topic %s: retention.ms %lld (was %lld), retention.bytes %lld (was %lld)", t->name,
                     (long long)ms, (long long)at->retention_ms, (long long)bytes, (long long)at->retention_bytes);
        else
            row_done(s, row, "retention", t, -1, -1, "first_seen", ms, bytes,
                     "topic %s: retention.ms %lld, retention.bytes %lld", t->name, (long long)ms, (long long)bytes);
        if (!at) {
            at = mk_calloc(1, sizeof(*at));
            if (!at || mk_map_put(&a->topics, id, at) < 0) {
                mk_free(at);
                return;
            }
        }
        at->retention_ms = ms;
        at->retention_bytes = bytes;
    }
    at->sweep = a->sweep;
}

/* One replica's log start, against what was recorded. */
static void audit_replica(mk_scrub_t *s, mk_topic_t *t, mk_partition_t *p, int32_t broker)
{
    char key[96];
    int32_t part = mk_partition_index(p);
    rep_key(t, part, broker, key, sizeof(key));
    mk_log_t *log = mk_partition_replica_log(p, broker);
    audit_rep_t *r = rep_get(s, key, log != NULL);
    if (!r)
        return;
    r->sweep = s->audit.sweep;
    if (!log) {
        r->log_id = 0; /* closed: whatever it is when it opens again is a reopen */
        return;
    }
    int64_t start = mk_log_start_offset(log);
    uint64_t id = mk_log_id(log), tr = mk_log_truncations(log);
    if (r->start >= 0 && id == r->log_id && tr == r->truncs && start == r->start)
        return;
    const char *cause;
    if (r->start < 0) {
        cause = "first_seen";
    } else if (start == r->start) {
        r->log_id = id;
        r->truncs = tr;
        return;
    } else if (start < r->start) {
        cause = "moved_back";
    } else if (id != r->log_id) {
        cause = "reopened";
        if (start > r->covered_to)
            scrub_audit_incident(s, t, part, broker, "coverage", MK_MAX(r->start, r->covered_to), start - 1,
                                 "log start of %s-%d on broker %d is %lld after its log was opened, but the audit "
                                 "last recorded %lld, with deletions accounted up to %lld: offsets %lld..%lld went "
                                 "without an audited deletion",
                                 t->name, part, broker, (long long)start, (long long)r->start,
                                 (long long)r->covered_to, (long long)MK_MAX(r->start, r->covered_to),
                                 (long long)start - 1);
    } else if (tr != r->truncs) {
        cause = "truncation";
        int32_t leader = mk_partition_leader(p);
        mk_log_t *llog = leader >= 0 && leader != broker ? mk_partition_replica_log(p, leader) : NULL;
        int64_t lstart = llog ? mk_log_start_offset(llog) : -1;
        if (start > r->covered_to && (!llog || start > lstart))
            scrub_audit_incident(s, t, part, broker, "coverage", r->start, start - 1,
                                 "a truncation moved the log start of %s-%d on broker %d from %lld to %lld, past "
                                 "the leader's log start (%lld)",
                                 t->name, part, broker, (long long)r->start, (long long)start, (long long)lstart);
    } else {
        cause = "retention";
        if (start > r->covered_to)
            scrub_audit_incident(s, t, part, broker, "coverage", r->covered_to, start - 1,
                                 "log start of %s-%d on broker %d advanced from %lld to %lld, but deleted segments "
                                 "cover offsets only up to %lld",
                                 t->name, part, broker, (long long)r->start, (long long)start,
                                 (long long)r->covered_to);
    }
    mk_meta_audit_t *row = row_new(s, "log_start", t, part, broker);
    if (row) {
        row->start_before = r->start >= 0 ? r->start : MK_META_AUDIT_NONE;
        row->start_after = start;
    }
    if (r->start < 0)
        row_done(s, row, "log_start", t, part, broker, cause, -1, start, "log start of %s-%d on broker %d: %lld (%s)",
                 t->name, part, broker, (long long)start, cause);
    else
        row_done(s, row, "log_start", t, part, broker, cause, r->start, start,
                 "log start of %s-%d on broker %d: %lld -> %lld (%s)", t->name, part, broker, (long long)r->start,
                 (long long)start, cause);
    r->start = start;
    r->covered_to = MK_MAX(r->covered_to, start);
    r->log_id = id;
    r->truncs = tr;
}

/* Forgets the state of what the last tick did not see (deleted topics,
 * replicas moved away). */
static void sweep(mk_map_t *m, size_t off, uint64_t gen)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(m, &it, &k, &v))
        if (*(const uint64_t *)((const char *)v + off) != gen)
            mk_free(mk_map_del(m, k));
}

void scrub_audit_tick(mk_scrub_t *s)
{
    scrub_audit_t *a = &s->audit;
    a->ticks++;
    a->sweep++;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(s->c, &it))) {
        audit_topic(s, t);
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, i);
            for (int32_t k = 0; k < mk_partition_replica_count(p); k++)
                audit_replica(s, t, p, mk_partition_replica_broker(p, k));
        }
    }
    sweep(&a->reps, offsetof(audit_rep_t, sweep), a->sweep);
    sweep(&a->topics, offsetof(audit_topic_t, sweep), a->sweep);
    scrub_audit_flush(s);
}

/* ================================================================= deletions */

void scrub_audit_segment(mk_scrub_t *s, mk_partition_t *p, int32_t broker, const mk_log_segment_event_t *ev)
{
    mk_topic_t *t = mk_partition_topic(p);
    int32_t part = mk_partition_index(p);
    mk_log_t *log = mk_partition_replica_log(p, broker);
    char key[96];
    rep_key(t, part, broker, key, sizeof(key));
    audit_rep_t *r = rep_get(s, key, true);
    if (r && r->start < 0 && log) {
        /* Not seen by a tick yet: the start before this deletion. */
        r->start = r->covered_to = mk_log_start_offset(log);
        r->log_id = mk_log_id(log);
        r->truncs = mk_log_truncations(log);
    }
    if (ev->type == MK_LOG_SEGMENT_START) {
        /* DeleteRecords: the offsets below the new start leave the log by
         * request, inside a segment that stays; they are accounted for. */
        if (!r || !log)
            return;
        if (ev->base_offset <= r->covered_to)
            r->covered_to = MK_MAX(r->covered_to, ev->end_offset);
        mk_meta_audit_t *row = row_new(s, "log_start", t, part, broker);
        if (row) {
            row->start_before = ev->base_offset;
            row->start_after = ev->end_offset;
        }
        const char *why = ev->reason ? ev->reason : "DeleteRecords";
        row_done(s, row, "log_start", t, part, broker, why, ev->base_offset, ev->end_offset,
                 "log start of %s-%d on broker %d: %lld -> %lld (%s)", t->name, part, broker,
                 (long long)ev->base_offset, (long long)ev->end_offset, why);
        r->start = mk_log_start_offset(log);
        r->log_id = mk_log_id(log);
        r->truncs = mk_log_truncations(log);
        return;
    }
    const char *reason = ev->reason ? ev->reason : "unknown";
    int64_t rms = t->cfg.retention_ms, rbytes = t->cfg.retention_bytes;
    int64_t now = mk_now_ms();
    bool ok;
    if (strcmp(reason, "retention.ms") == 0)
        ok = rms >= 0 && now - ev->largest_ts > rms;
    else if (strcmp(reason, "retention.bytes") == 0)
        ok = rbytes >= 0 && (int64_t)ev->log_bytes_after >= rbytes;
    else if (strcmp(reason, "below the log start offset") == 0 || strcmp(reason, "DeleteRecords") == 0 ||
             strcmp(reason, "leader log start") == 0)
        ok = log && ev->end_offset <= mk_log_start_offset(log);
    /* Tiered storage (tier/) deletes local segments only once their copy in
     * S3 is verified (tier's own rule; the remote side is not audited here
     * yet): after local retention, or once S3's copy went by retention. */
    else if (strcmp(reason, "local.retention.ms (copied to S3)") == 0)
        ok = t->cfg.tiered && t->cfg.local_retention_ms >= 0 && now - ev->largest_ts > t->cfg.local_retention_ms;
    else if (strcmp(reason, "local.retention.bytes (copied to S3)") == 0)
        ok = t->cfg.tiered && t->cfg.local_retention_bytes >= 0 &&
             (int64_t)ev->log_bytes_after >= t->cfg.local_retention_bytes;
    else if (strcmp(reason, "retention (tiered: its copy left S3)") == 0)
        ok = t->cfg.tiered;
    else
        ok = false;
    mk_meta_audit_t *row = row_new(s, "segment_deleted", t, part, broker);
    if (row) {
        row->base_offset = ev->base_offset;
        row->end_offset = ev->end_offset;
        row->largest_ts = ev->largest_ts;
        row->retention_ms = rms;
        row->retention_bytes = rbytes;
        row->log_bytes = (int64_t)ev->log_bytes_after;
    }
    row_done(s, row, "segment_deleted", t, part, broker, reason, ev->base_offset, ev->end_offset,
             "segment %lld..%lld of %s-%d on broker %d deleted (%s): largest timestamp %lld ms old, %llu bytes "
             "left; retention.ms %lld, retention.bytes %lld",
             (long long)ev->base_offset, (long long)ev->end_offset, t->name, part, broker, reason,
             (long long)(now - ev->largest_ts), (unsigned long long)ev->log_bytes_after, (long long)rms,
             (long long)rbytes);
    if (!ok)
        scrub_audit_incident(s, t, part, broker, "retention", ev->base_offset, ev->end_offset - 1,
                             "segment %lld..%lld of %s-%d on broker %d was deleted for %s, which the topic's "
                             "retention does not allow (retention.ms %lld, largest timestamp %lld ms old; "
                             "retention.bytes %lld, %llu bytes left)",
                             (long long)ev->base_offset, (long long)ev->end_offset, t->name, part, broker, reason,
                             (long long)rms, (long long)(now - ev->largest_ts), (long long)rbytes,
                             (unsigned long long)ev->log_bytes_after);
    if (!r)
        return;
    if (ev->base_offset <= r->covered_to) {
        r->covered_to = MK_MAX(r->covered_to, ev->end_offset);
    } else {
        scrub_audit_incident(s, t, part, broker, "coverage", r->covered_to, ev->base_offset - 1,
                             "segment %lld..%lld of %s-%d on broker %d was deleted while offsets %lld..%lld were "
                             "in no segment",
                             (long long)ev->base_offset, (long long)ev->end_offset, t->name, part, broker,
                             (long long)r->covered_to, (long long)ev->base_offset - 1);
        r->covered_to = ev->end_offset;
    }
}
