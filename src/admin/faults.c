/*
 * faults.c -- the fault-injection API (POST/GET/DELETE /v1/faults), the
 * timers that end faults with a duration_ms, and the seeded chaos schedule
 * (POST/GET/DELETE /v1/chaos).
 *
 * The registry is fault/ (L1); the faults act in the layers whose I/O they
 * disturb (fault.h lists where).  What is an action rather than a state is
 * done here, through the same calls the other routes make: crash and
 * az-down (repl/'s broker lifecycle; clearing starts the broker or AZ
 * again), corrupt (bytes of a stored batch flipped in its segment file,
 * then left to the scrubber; a one-shot, so it is not listed as active),
 * s3-* on the bundled server (s3d/'s fault switch).  Clearing a disk-error
 * whose broker's log directory went offline restarts that broker, as an
 * operator does after replacing the disk.  Every inject and clear is an
 * event (fault_injected, fault_cleared).
 *
 * Chaos: the schedule is a pure function of the seed and the parameters
 * (and the cluster's broker-to-AZ map): event i has a time offset, a type,
 * a target and a duration drawn from a splitmix64 stream, and the safety
 * rule -- the disruptive faults active at any moment all lie in one AZ, so
 * a majority of every RF 3 partition stays up and acks=all data stays safe
 * -- is applied to the planned schedule itself, never to what happened to
 * run.  So the same seed gives the same (offset, type, target) sequence.
 *
 * Threads: the loop.  Calls down only: fault/, repl/, cluster/, s3d/, log/.
 */
#include "admin/admin_int.h"
#include "fault/fault.h"
#include "log/log.h"
#include "partition/partition.h"
#include "repl/repl.h"
#include "s3d/s3d.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHAOS_MAX_EVENTS 2000

typedef struct chaos_ev_s {
    int64_t offset_ms;         /* from the start of the run */
    int type;
    int32_t broker;            /* -1 for an AZ fault */
    char az[32];
    int64_t duration_ms;
    int64_t delay_ms;
    uint64_t id;               /* the fault's id once injected; 0 */
    char outcome[48];          /* "injected", "skipped: ...", "" before its time */
} chaos_ev_t;

struct mk_admin_faults_s {
    uv_timer_t *timer;         /* owned: durations and chaos; freed in its close callback */
    /* chaos */
    bool chaos_on;
    uint64_t seed;
    double rate_per_min;
    int64_t run_ms;            /* the run's length */
    int64_t fault_ms;          /* the longest fault */
    int types[MK_FAULT_TYPE_END];
    int ntypes;
    int32_t brokers[64];
    int nbrokers;
    int64_t started_ms;        /* mono */
    chaos_ev_t *ev;            /* owned: the schedule, CHAOS_MAX_EVENTS slots */
    int nev;                   /* planned events */
    int next;                  /* the next to inject */
    bool chaos_ended;
};

/* ================================================================= helpers */

static bool disruptive(int t)
{
    return t == MK_FAULT_DISK_STALL || t == MK_FAULT_DISK_ERROR || t == MK_FAULT_NET_PARTITION ||
           t == MK_FAULT_CRASH || t == MK_FAULT_AZ_DOWN;
}

static bool az_known(mk_admin_t *a, const char *az)
{
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++)
        if (strcmp(mk_cluster_broker_at(a->c, i)->az, az) == 0)
            return true;
    return false;
}

/* A fault's description for events and logs. */
static void describe(const mk_fault_t *f, char *out, size_t n)
{
    const mk_fault_spec_t *s = &f->spec;
    int k = snprintf(out, n, "fault %llu %s", (unsigned long long)f->id, mk_fault_type_name(s->type));
    if (s->broker >= 0 && k < (int)n)
        k += snprintf(out + k, n - (size_t)k, " broker %d", s->broker);
    if (s->az[0] && k < (int)n)
        k += snprintf(out + k, n - (size_t)k, " az %s", s->az);
    if (s->delay_ms && k < (int)n)
        k += snprintf(out + k, n - (size_t)k, " delay %lld ms", (long long)s->delay_ms);
    if (s->type == MK_FAULT_DISK_ERROR && k < (int)n)
        k += snprintf(out + k, n - (size_t)k, " ops %s", mk_fault_ops_name(s->ops));
    if (s->client_side && k < (int)n)
        k += snprintf(out + k, n - (size_t)k, " (client side)");
    if (s->duration_ms && k < (int)n)
        snprintf(out + k, n - (size_t)k, " for %lld ms", (long long)s->duration_ms);
}

json_t *mk_admin_fault_json(const mk_fault_t *f)
{
    const mk_fault_spec_t *s = &f->spec;
    json_t *j = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)f->id, "type", mk_fault_type_name(s->type),
                          "source", s->source, "started_ms", (json_int_t)f->started_ms);
    if (!j)
        return NULL;
    if (s->broker >= 0)
        json_object_set_new(j, "broker", json_integer(s->broker));
    if (s->az[0])
        json_object_set_new(j, "az", json_string(s->az));
    if (s->delay_ms)
        json_object_set_new(j, "delay_ms", json_integer(s->delay_ms));
    if (s->type == MK_FAULT_DISK_ERROR)
        json_object_set_new(j, "ops", json_string(mk_fault_ops_name(s->ops)));
    if (s->type == MK_FAULT_S3_DOWN || s->type == MK_FAULT_S3_SLOW || s->type == MK_FAULT_S3_ERROR)
        json_object_set_new(j, "side", json_string(s->client_side ? "client" : "server"));
    if (s->topic[0])
        json_object_set_new(j, "topic", json_string(s->topic));
    if (s->partition >= 0)
        json_object_set_new(j, "partition", json_integer(s->partition));
    if (s->duration_ms) {
        json_object_set_new(j, "duration_ms", json_integer(s->duration_ms));
        json_object_set_new(j, "expires_ms", json_integer(f->started_ms + s->duration_ms));
    }
    return j;
}

/* ================================================================= corrupt */

/* Flips bytes inside one stored batch of the replica of p on broker: a
 * random batch of its oldest segment holding data (rnd picks), inside the
 * part its CRC covers.  The file is written through a duplicated
 * descriptor, as a disk going bad would change it under the log.  Returns
 * 0 with *offset the batch's base offset, or an error. */
static int corrupt_replica(mk_partition_t *p, int32_t broker, uint64_t rnd, int64_t *offset, char *why, size_t n)
{
    mk_log_t *log = mk_partition_replica_log(p, broker);
    if (!log) {
        snprintf(why, n, "broker %d has no open replica of that partition", broker);
        return MK_ERR_STATE;
    }
    size_t nseg = mk_log_segment_count(log);
    for (size_t i = 0; i < nseg; i++) {
        mk_log_segment_info_t si;
        mk_log_segment_info(log, i, &si);
        if (si.size_bytes < 61)
            continue;
        int fds[3];
        if (mk_log_segment_dup_fds(log, si.base_offset, fds) < 0)
            break;
        close(fds[1]);
        close(fds[2]);
        /* Count the batches (headers only), then pick one. */
        uint64_t pos = 0, positions[256];
        int nb = 0;
        uint8_t hdr[61];
        while (pos + 61 <= si.size_bytes && nb < 256) {
            if (pread(fds[0], hdr, sizeof(hdr), (off_t)pos) != (ssize_t)sizeof(hdr))
                break;
            mk_reader_t rd;
            mk_rd_init(&rd, hdr, sizeof(hdr));
            int64_t base = mk_rd_i64(&rd);
            int32_t len = mk_rd_i32(&rd);
            if (!mk_rd_ok(&rd) || len < 49 || pos + 12 + (uint64_t)len > si.size_bytes)
                break;
            (void)base;
            positions[nb++] = pos;
            pos += 12 + (uint64_t)len;
        }
        if (nb == 0) {
            close(fds[0]);
            continue;
        }
        uint64_t at = positions[rnd % (uint64_t)nb];
        if (pread(fds[0], hdr, sizeof(hdr), (off_t)at) != (ssize_t)sizeof(hdr)) {
            close(fds[0]);
            break;
        }
        mk_reader_t rd;
        mk_rd_init(&rd, hdr, sizeof(hdr));
        *offset = mk_rd_i64(&rd);
        int32_t len = mk_rd_i32(&rd);
        /* The CRC covers from attributes (byte 21) to the end: flip a byte
         * there, in the records when the batch has any. */
        uint64_t span = (uint64_t)len + 12 - 21, where = at + 21 + (rnd >> 8) % span;
        if (span > 61 - 21)
            where = at + 61 + (rnd >> 8) % ((uint64_t)len + 12 - 61);
        uint8_t byte;
        int rc = MK_ERR_IO;
        if (pread(fds[0], &byte, 1, (off_t)where) == 1) {
            byte ^= 0xA5;
            /* The descriptor is read-write only when the log's is: reopen by
             * path if needed. */
            if (pwrite(fds[0], &byte, 1, (off_t)where) == 1) {
                rc = 0;
            } else {
                char path[4200];
                snprintf(path, sizeof(path), "%s/%020lld.log", mk_log_dir(log), (long long)si.base_offset);
                int wfd = open(path, O_WRONLY | O_CLOEXEC);
                if (wfd >= 0 && pwrite(wfd, &byte, 1, (off_t)where) == 1)
                    rc = 0;
                if (wfd >= 0)
                    close(wfd);
            }
        }
        close(fds[0]);
        if (rc < 0)
            snprintf(why, n, "cannot write the segment file");
        return rc;
    }
    snprintf(why, n, "the replica on broker %d holds no batch yet", broker);
    return MK_ERR_NOT_FOUND;
}

/* The corrupt fault: s->topic/partition/broker, any of them chosen at
 * random (rnd) when not given. */
static int do_corrupt(mk_admin_t *a, mk_fault_spec_t *s, uint64_t rnd, int64_t *offset, char *why, size_t n)
{
    mk_topic_t *t = NULL;
    if (s->topic[0]) {
        t = mk_cluster_topic_find(a->c, s->topic);
        if (!t) {
            snprintf(why, n, "no topic '%.200s'", s->topic);
            return MK_ERR_NOT_FOUND;
        }
    } else {
        /* a random topic that holds data, internal names included */
        size_t it = 0, count = 0;
        mk_topic_t *x;
        while ((x = mk_cluster_topic_next(a->c, &it)))
            count++;
        if (!count) {
            snprintf(why, n, "no topic to corrupt");
            return MK_ERR_NOT_FOUND;
        }
        size_t pick = (size_t)(rnd % count);
        it = 0;
        while ((x = mk_cluster_topic_next(a->c, &it)))
            if (pick-- == 0)
                t = x;
        snprintf(s->topic, sizeof(s->topic), "%s", t->name);
    }
    if (s->partition >= t->partition_count) {
        snprintf(why, n, "topic '%.200s' has %d partitions", t->name, t->partition_count);
        return MK_ERR_NOT_FOUND;
    }
    if (s->partition < 0)
        s->partition = (int32_t)((rnd >> 16) % (uint64_t)t->partition_count);
    mk_partition_t *p = mk_cluster_topic_partition(t, s->partition);
    if (s->broker < 0)
        s->broker = mk_partition_leader(p);
    if (s->broker < 0) {
        snprintf(why, n, "the partition has no leader; name a broker");
        return MK_ERR_STATE;
    }
    return corrupt_replica(p, s->broker, rnd >> 24, offset, why, n);
}

/* ================================================================== inject */

static void arm(mk_admin_t *a);

int mk_admin_fault_inject(mk_admin_t *a, mk_fault_spec_t *s, uint64_t *id_out, int *status, char *why, size_t n)
{
    *status = 400;
    *id_out = 0;
    if (mk_fault_spec_check(s, why, n) < 0)
        return MK_ERR_INVALID;
    if (s->broker >= 0 && !mk_cluster_broker_find(a->c, s->broker)) {
        snprintf(why, n, "no broker %d (ids run 1..%d)", s->broker, mk_cluster_broker_count(a->c));
        return MK_ERR_INVALID;
    }
    if (s->az[0] && !az_known(a, s->az)) {
        snprintf(why, n, "no availability zone '%.30s'", s->az);
        return MK_ERR_INVALID;
    }
    bool s3 = s->type == MK_FAULT_S3_DOWN || s->type == MK_FAULT_S3_SLOW || s->type == MK_FAULT_S3_ERROR;
    if (s3 && !s->client_side && !a->s3d) {
        *status = 409;
        snprintf(why, n, "the bundled S3 server is not running (--s3-port -1): use \"side\": \"client\"");
        return MK_ERR_STATE;
    }
    mk_repl_t *r = mk_broker_repl(a->b);
    *status = 409;
    if (s->type == MK_FAULT_CRASH) {
        mk_cluster_broker_t *b = mk_cluster_broker_find(a->c, s->broker);
        if (!b->running) {
            snprintf(why, n, "broker %d is not running", s->broker);
            return MK_ERR_STATE;
        }
    }
    int64_t corrupt_at = -1;
    if (s->type == MK_FAULT_CORRUPT) {
        uint64_t rnd = mk_mono_ns() * 0x9E3779B97F4A7C15ull;
        rnd ^= rnd >> 29;
        if (do_corrupt(a, s, rnd, &corrupt_at, why, n) < 0) {
            *status = 404;
            return MK_ERR_NOT_FOUND;
        }
    }
    uint64_t id;
    int rc = mk_fault_add(s, &id);
    if (rc < 0) {
        snprintf(why, n, rc == MK_ERR_TOO_LARGE ? "too many active faults" : "invalid fault");
        return rc;
    }
    mk_fault_t f;
    mk_fault_get(id, &f);
    /* The faults that are actions. */
    switch (s->type) {
    case MK_FAULT_CRASH: mk_repl_broker_crash(r, s->broker); break;
    case MK_FAULT_AZ_DOWN: mk_repl_az_down(r, s->az); break;
    case MK_FAULT_S3_DOWN:
    case MK_FAULT_S3_SLOW:
    case MK_FAULT_S3_ERROR:
        if (!s->client_side) {
            mk_s3d_fault_t sf = {0};
            sf.type = mk_s3d_fault_find(s->type == MK_FAULT_S3_DOWN ? "down" : s->type == MK_FAULT_S3_SLOW ? "slow" : "error");
            sf.delay_ms = (int32_t)s->delay_ms;
            mk_s3d_fault_set(a->s3d, &sf);
        }
        break;
    default: break;
    }
    char d[240];
    describe(&f, d, sizeof(d));
    if (s->type == MK_FAULT_CORRUPT) {
        mk_admin_event(a, "fault_injected", s->broker, "%s: %s-%d, batch at offset %lld flipped", d, s->topic,
                       s->partition, (long long)corrupt_at);
        mk_fault_remove(id, NULL); /* done: the scrubber's to find */
    } else {
        mk_admin_event(a, "fault_injected", s->broker, "%s (%s)", d, s->source);
    }
    mk_warn("%s injected (%s)", d, s->source);
    if (s->type == MK_FAULT_CRASH || s->type == MK_FAULT_AZ_DOWN)
        mk_admin_observe(a, "fault injected", false);
    *id_out = id;
    *status = 201;
    if (s->duration_ms > 0)
        arm(a);
    return 0;
}

int mk_admin_fault_clear(mk_admin_t *a, uint64_t id, const char *cause)
{
    mk_fault_t f;
    if (mk_fault_remove(id, &f) < 0)
        return MK_ERR_NOT_FOUND;
    const mk_fault_spec_t *s = &f.spec;
    mk_repl_t *r = mk_broker_repl(a->b);
    mk_cluster_broker_t *b = s->broker > 0 ? mk_cluster_broker_find(a->c, s->broker) : NULL;
    switch (s->type) {
    case MK_FAULT_CRASH:
        /* another crash fault may still hold it down */
        if (b && !b->running) {
            mk_fault_t all[MK_FAULT_MAX_ACTIVE];
            size_t na = mk_fault_list(all, MK_FAULT_MAX_ACTIVE);
            bool held = false;
            for (size_t i = 0; i < na; i++)
                held |= all[i].spec.type == MK_FAULT_CRASH && all[i].spec.broker == s->broker;
            if (!held)
                mk_repl_broker_start(r, s->broker);
        }
        break;
    case MK_FAULT_AZ_DOWN: mk_repl_az_up(r, s->az); break;
    case MK_FAULT_DISK_ERROR: {
        /* The directory went offline: as an operator does after the disk
         * is replaced, the broker restarts (its logs recover and catch up). */
        mk_log_io_stats_t st;
        mk_fault_disk_t d;
        if (b && b->running && mk_log_io_stats(s->broker, &st) == 0 && st.offline && !mk_fault_disk(s->broker, &d)) {
            mk_repl_broker_crash(r, s->broker);
            mk_repl_broker_start(r, s->broker);
        }
        break;
    }
    case MK_FAULT_S3_DOWN:
    case MK_FAULT_S3_SLOW:
    case MK_FAULT_S3_ERROR:
        if (!s->client_side && a->s3d) {
            mk_s3d_fault_t sf = {0};
            mk_s3d_fault_set(a->s3d, &sf);
        }
        break;
    default: break;
    }
    char d[240];
    describe(&f, d, sizeof(d));
    mk_admin_event(a, "fault_cleared", s->broker, "%s cleared (%s)", d, cause);
    mk_info("%s cleared (%s)", d, cause);
    if (s->type == MK_FAULT_CRASH || s->type == MK_FAULT_AZ_DOWN || s->type == MK_FAULT_DISK_ERROR)
        mk_admin_observe(a, "fault cleared", false);
    return 0;
}

int mk_admin_faults_clear_all(mk_admin_t *a, const char *cause)
{
    mk_fault_t all[MK_FAULT_MAX_ACTIVE];
    size_t n = MK_MIN(mk_fault_list(all, MK_FAULT_MAX_ACTIVE), (size_t)MK_FAULT_MAX_ACTIVE);
    int k = 0;
    for (size_t i = 0; i < n; i++)
        if (mk_admin_fault_clear(a, all[i].id, cause) == 0)
            k++;
    return k;
}

/* =================================================================== chaos */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Plans the whole run from the seed (see the file header). */
static void chaos_plan(mk_admin_t *a, mk_admin_faults_t *F)
{
    uint64_t x = F->seed;
    F->nev = 0;
    double mean = 60000.0 / F->rate_per_min;
    double t = 0;
    int32_t cand[64];
    int ncand = 0;
    if (F->nbrokers) {
        memcpy(cand, F->brokers, sizeof(int32_t) * (size_t)F->nbrokers);
        ncand = F->nbrokers;
    } else {
        for (int i = 0; i < mk_cluster_broker_count(a->c) && i < 64; i++)
            cand[ncand++] = mk_cluster_broker_at(a->c, i)->id;
    }
    while (F->nev < CHAOS_MAX_EVENTS && ncand > 0) {
        /* uniform in [0.5, 1.5) x the mean interval */
        t += mean * (0.5 + (double)(splitmix(&x) >> 11) / (double)(1ull << 53));
        if ((int64_t)t >= F->run_ms)
            break;
        chaos_ev_t *e = &F->ev[F->nev];
        memset(e, 0, sizeof(*e));
        e->offset_ms = (int64_t)t;
        e->type = F->types[splitmix(&x) % (uint64_t)F->ntypes];
        e->duration_ms = F->fault_ms / 2 + (int64_t)(splitmix(&x) % (uint64_t)(F->fault_ms / 2 + 1));
        e->duration_ms = MK_MIN(e->duration_ms, MK_MAX(F->run_ms - e->offset_ms, 1));
        int32_t target = cand[splitmix(&x) % (uint64_t)ncand];
        e->delay_ms = 20 + (int64_t)(splitmix(&x) % 181);
        /* Safety: the disruptive events still active at this offset, by plan. */
        const char *busy_az = NULL;
        for (int i = 0; i < F->nev; i++) {
            const chaos_ev_t *o = &F->ev[i];
            if (disruptive(o->type) && o->outcome[0] != 's' && o->offset_ms + o->duration_ms > e->offset_ms)
                busy_az = o->az;
        }
        e->broker = target;
        snprintf(e->az, sizeof(e->az), "%s", mk_cluster_broker_az(a->c, target));
        if (disruptive(e->type) && busy_az && strcmp(busy_az, e->az) != 0) {
            /* retarget into the AZ already disturbed, else skip */
            int32_t alt = -1;
            for (int i = 0; i < ncand && alt < 0; i++)
                if (strcmp(mk_cluster_broker_az(a->c, cand[(i + target) % ncand]), busy_az) == 0)
                    alt = cand[(i + target) % ncand];
            if (alt < 0) {
                snprintf(e->outcome, sizeof(e->outcome), "skipped: another AZ is disturbed");
            } else {
                e->broker = alt;
                snprintf(e->az, sizeof(e->az), "%s", busy_az);
            }
        }
        if (e->type == MK_FAULT_NET_PARTITION || e->type == MK_FAULT_AZ_DOWN)
            e->broker = -1;
        F->nev++;
    }
}

static void chaos_inject(mk_admin_t *a, mk_admin_faults_t *F, chaos_ev_t *e)
{
    if (e->outcome[0])
        return; /* planned as skipped */
    mk_fault_spec_t s;
    mk_fault_spec_init(&s, e->type);
    snprintf(s.source, sizeof(s.source), "chaos");
    s.duration_ms = e->duration_ms;
    if (e->type == MK_FAULT_NET_PARTITION || e->type == MK_FAULT_AZ_DOWN)
        snprintf(s.az, sizeof(s.az), "%s", e->az);
    else if (e->type != MK_FAULT_S3_DOWN && e->type != MK_FAULT_S3_SLOW && e->type != MK_FAULT_S3_ERROR)
        s.broker = e->broker;
    if (e->type == MK_FAULT_DISK_SLOW || e->type == MK_FAULT_BROKER_SLOW || e->type == MK_FAULT_S3_SLOW)
        s.delay_ms = e->delay_ms;
    if ((e->type == MK_FAULT_S3_DOWN || e->type == MK_FAULT_S3_SLOW || e->type == MK_FAULT_S3_ERROR) && !a->s3d)
        s.client_side = true;
    char why[200];
    int status;
    if (mk_admin_fault_inject(a, &s, &e->id, &status, why, sizeof(why)) == 0)
        snprintf(e->outcome, sizeof(e->outcome), "injected");
    else
        snprintf(e->outcome, sizeof(e->outcome), "failed: %.38s", why);
    (void)F;
}

static void chaos_stop(mk_admin_t *a, const char *cause)
{
    mk_admin_faults_t *F = a->faults;
    if (!F->chaos_on)
        return;
    F->chaos_on = false;
    mk_fault_t all[MK_FAULT_MAX_ACTIVE];
    size_t n = MK_MIN(mk_fault_list(all, MK_FAULT_MAX_ACTIVE), (size_t)MK_FAULT_MAX_ACTIVE);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].spec.source, "chaos") == 0)
            mk_admin_fault_clear(a, all[i].id, cause);
    mk_admin_event(a, "chaos_stopped", -1, "chaos run (seed %llu) stopped (%s): %d of %d planned faults injected",
                   (unsigned long long)F->seed, cause, F->next, F->nev);
}

/* ================================================================== timer */

static void timer_cb(uv_timer_t *t)
{
    mk_admin_t *a = t->data;
    mk_admin_faults_t *F = a->faults;
    int64_t now = mk_now_ms();
    mk_fault_t all[MK_FAULT_MAX_ACTIVE];
    size_t n = MK_MIN(mk_fault_list(all, MK_FAULT_MAX_ACTIVE), (size_t)MK_FAULT_MAX_ACTIVE);
    for (size_t i = 0; i < n; i++)
        if (all[i].spec.duration_ms > 0 && now >= all[i].started_ms + all[i].spec.duration_ms)
            mk_admin_fault_clear(a, all[i].id, "duration_ms passed");
    if (F->chaos_on) {
        int64_t el = (int64_t)(mk_mono_ms() - (uint64_t)F->started_ms);
        while (F->chaos_on && F->next < F->nev && F->ev[F->next].offset_ms <= el)
            chaos_inject(a, F, &F->ev[F->next++]);
        if (el >= F->run_ms) {
            F->chaos_ended = true;
            chaos_stop(a, "run_ms passed");
        }
    }
    arm(a);
}

/* Re-arm the timer for the next deadline: a fault's end or a chaos event. */
static void arm(mk_admin_t *a)
{
    mk_admin_faults_t *F = a->faults;
    if (!F || !F->timer)
        return;
    int64_t now = mk_now_ms(), next = INT64_MAX;
    mk_fault_t all[MK_FAULT_MAX_ACTIVE];
    size_t n = MK_MIN(mk_fault_list(all, MK_FAULT_MAX_ACTIVE), (size_t)MK_FAULT_MAX_ACTIVE);
    for (size_t i = 0; i < n; i++)
        if (all[i].spec.duration_ms > 0)
            next = MK_MIN(next, all[i].started_ms + all[i].spec.duration_ms - now);
    if (F->chaos_on) {
        int64_t el = (int64_t)(mk_mono_ms() - (uint64_t)F->started_ms);
        int64_t due = F->next < F->nev ? F->ev[F->next].offset_ms : F->run_ms;
        next = MK_MIN(next, MK_MIN(due, F->run_ms) - el);
    }
    if (next == INT64_MAX) {
        uv_timer_stop(F->timer);
        return;
    }
    uv_timer_start(F->timer, timer_cb, (uint64_t)MK_MAX(next, 0), 0);
}

/* ================================================================ lifecycle */

int mk_admin_faults_init(mk_admin_t *a)
{
    mk_admin_faults_t *F = mk_calloc(1, sizeof(*F));
    if (!F)
        return MK_ERR_NOMEM;
    F->timer = mk_malloc(sizeof(uv_timer_t));
    F->ev = mk_calloc(CHAOS_MAX_EVENTS, sizeof(chaos_ev_t));
    if (!F->timer || !F->ev) {
        mk_free(F->timer);
        mk_free(F->ev);
        mk_free(F);
        return MK_ERR_NOMEM;
    }
    uv_timer_init(a->loop, F->timer);
    F->timer->data = a;
    a->faults = F;
    return 0;
}

static void timer_close_cb(uv_handle_t *h) { mk_free(h); }

void mk_admin_faults_free(mk_admin_t *a)
{
    mk_admin_faults_t *F = a->faults;
    if (!F)
        return;
    if (F->timer)
        uv_close((uv_handle_t *)F->timer, timer_close_cb);
    mk_free(F->ev);
    mk_free(F);
    a->faults = NULL;
}

/* ================================================================== routes */

static int64_t jint_field(json_t *v, bool *ok)
{
    if (!json_is_integer(v)) {
        *ok = false;
        return 0;
    }
    return (int64_t)json_integer_value(v);
}

/* Body -> spec; false with why on bad input. */
static bool parse_spec(json_t *body, mk_fault_spec_t *s, char *why, size_t n)
{
    json_t *tv = json_object_get(body, "type");
    if (!json_is_string(tv)) {
        snprintf(why, n, "\"type\" is required: one of disk-stall, disk-slow, disk-error, corrupt, s3-down, s3-slow, "
                         "s3-error, net-partition, broker-slow, crash, az-down");
        return false;
    }
    int type = mk_fault_type_parse(json_string_value(tv));
    if (!type) {
        snprintf(why, n, "unknown fault type '%.40s' (known: disk-stall, disk-slow, disk-error, corrupt, s3-down, "
                         "s3-slow, s3-error, net-partition, broker-slow, crash, az-down)", json_string_value(tv));
        return false;
    }
    mk_fault_spec_init(s, type);
    snprintf(s->source, sizeof(s->source), "api");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        bool ok = true;
        if (strcmp(key, "type") == 0)
            continue;
        if (strcmp(key, "broker") == 0) {
            int64_t b = jint_field(v, &ok);
            if (ok && (b < 1 || b > 1000))
                ok = false;
            s->broker = (int32_t)b;
        } else if (strcmp(key, "delay_ms") == 0) {
            s->delay_ms = jint_field(v, &ok);
            if (ok && (s->delay_ms < 1 || s->delay_ms > MK_FAULT_MAX_DELAY_MS))
                ok = false;
        } else if (strcmp(key, "duration_ms") == 0) {
            s->duration_ms = jint_field(v, &ok);
            if (ok && (s->duration_ms < 0 || s->duration_ms > MK_FAULT_MAX_DURATION_MS))
                ok = false;
        } else if (strcmp(key, "partition") == 0) {
            int64_t p = jint_field(v, &ok);
            if (ok && (p < 0 || p > INT32_MAX))
                ok = false;
            s->partition = (int32_t)p;
        } else if (strcmp(key, "ops") == 0) {
            s->ops = json_is_string(v) ? mk_fault_ops_parse(json_string_value(v)) : 0;
            ok = s->ops != 0;
        } else if (strcmp(key, "side") == 0) {
            const char *sv = json_is_string(v) ? json_string_value(v) : "";
            ok = strcmp(sv, "client") == 0 || strcmp(sv, "server") == 0;
            s->client_side = strcmp(sv, "client") == 0;
        } else if (strcmp(key, "az") == 0) {
            ok = json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < sizeof(s->az);
            if (ok)
                snprintf(s->az, sizeof(s->az), "%s", json_string_value(v));
        } else if (strcmp(key, "topic") == 0) {
            ok = json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < sizeof(s->topic);
            if (ok)
                snprintf(s->topic, sizeof(s->topic), "%s", json_string_value(v));
        } else {
            snprintf(why, n, "unknown field '%.60s'", key);
            return false;
        }
        if (!ok) {
            snprintf(why, n, "bad value for \"%.40s\" (broker: an id; delay_ms: 1..%d; duration_ms: 0..%lld; "
                             "partition: >= 0; ops: writes|reads|fsync|all; side: client|server; az, topic: names)",
                     key, MK_FAULT_MAX_DELAY_MS, (long long)MK_FAULT_MAX_DURATION_MS);
            return false;
        }
    }
    return mk_fault_spec_check(s, why, n) == 0;
}

static json_t *body_object(const mk_http_req_t *req, mk_http_resp_t *resp)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body || !json_is_object(body)) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return body;
}

void mk_admin_h_faults_post(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                            mk_http_resp_t *resp)
{
    (void)caps;
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    mk_fault_spec_t s;
    char why[400];
    bool ok = parse_spec(body, &s, why, sizeof(why));
    json_decref(body);
    if (!ok) {
        mk_admin_http_error(resp, 400, "bad_fault", "%s", why);
        return;
    }
    uint64_t id;
    int status;
    if (mk_admin_fault_inject(a, &s, &id, &status, why, sizeof(why)) < 0) {
        mk_admin_http_error(resp, status, status == 400 ? "bad_fault" : status == 404 ? "not_found" : "fault_state",
                            "%s", why);
        return;
    }
    mk_fault_t f;
    json_t *j = json_pack("{s:I}", "id", (json_int_t)id);
    if (j && mk_fault_get(id, &f) == 0)
        json_object_set_new(j, "fault", mk_admin_fault_json(&f));
    else if (j)
        json_object_set_new(j, "active", json_false()); /* a one-shot (corrupt) */
    if (j && s.type == MK_FAULT_CORRUPT) {
        json_object_set_new(j, "topic", json_string(s.topic));
        json_object_set_new(j, "partition", json_integer(s.partition));
        json_object_set_new(j, "broker", json_integer(s.broker));
    }
    mk_admin_http_json(resp, 201, j);
}

void mk_admin_h_faults_get(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                           mk_http_resp_t *resp)
{
    (void)a, (void)req, (void)caps;
    mk_fault_t all[MK_FAULT_MAX_ACTIVE];
    size_t n = MK_MIN(mk_fault_list(all, MK_FAULT_MAX_ACTIVE), (size_t)MK_FAULT_MAX_ACTIVE);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, mk_admin_fault_json(&all[i]));
    json_t *by = json_object();
    for (int t = 1; t < MK_FAULT_TYPE_END; t++)
        json_object_set_new(by, mk_fault_type_name(t), json_integer((json_int_t)mk_fault_injected_total(t)));
    /* what each broker's storage I/O gate sees (log.h) */
    json_t *io = json_array();
    for (int i = 0; i < mk_cluster_broker_count(a->c); i++) {
        int32_t id = mk_cluster_broker_at(a->c, i)->id;
        mk_log_io_stats_t st;
        if (mk_log_io_stats(id, &st) < 0)
            continue;
        json_array_append_new(io, json_pack("{s:i, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:b, s:b}", "broker", id, "ops",
                                            (json_int_t)st.ops, "errors", (json_int_t)st.errors, "held",
                                            (json_int_t)st.held, "oldest_inflight_ms",
                                            (json_int_t)st.oldest_inflight_ms, "inflight", (int)st.inflight,
                                            "p50_us", (json_int_t)st.p50_us, "p99_us", (json_int_t)st.p99_us,
                                            "offline", st.offline, "stalled", st.stalled));
    }
    mk_admin_http_json(resp, 200, json_pack("{s:o, s:I, s:o, s:o}", "faults", arr, "injected_total",
                                            (json_int_t)mk_fault_injected_total(0), "injected_by_type", by,
                                            "storage", io));
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > UINT64_MAX / 10 - 1)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

void mk_admin_h_fault_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp)
{
    (void)req;
    uint64_t id;
    if (!parse_u64(caps->v[0], &id) || mk_admin_fault_clear(a, id, "admin API") < 0) {
        mk_admin_http_error(resp, 404, "unknown_fault", "no active fault '%s'", caps->v[0]);
        return;
    }
    arm(a);
    mk_admin_http_json(resp, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "cleared", true));
}

void mk_admin_h_faults_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                              mk_http_resp_t *resp)
{
    (void)req, (void)caps;
    int n = mk_admin_faults_clear_all(a, "admin API: clear all");
    arm(a);
    mk_admin_http_json(resp, 200, json_pack("{s:i}", "cleared", n));
}

static json_t *chaos_json(mk_admin_t *a)
{
    mk_admin_faults_t *F = a->faults;
    json_t *types = json_array();
    for (int i = 0; i < F->ntypes; i++)
        json_array_append_new(types, json_string(mk_fault_type_name(F->types[i])));
    json_t *evs = json_array();
    for (int i = 0; i < F->next; i++) {
        const chaos_ev_t *e = &F->ev[i];
        json_t *j = json_pack("{s:I, s:s, s:I, s:s}", "offset_ms", (json_int_t)e->offset_ms, "type",
                              mk_fault_type_name(e->type), "duration_ms", (json_int_t)e->duration_ms, "outcome",
                              e->outcome);
        if (e->broker >= 0)
            json_object_set_new(j, "broker", json_integer(e->broker));
        json_object_set_new(j, "az", json_string(e->az));
        if (e->id)
            json_object_set_new(j, "id", json_integer((json_int_t)e->id));
        json_array_append_new(evs, j);
    }
    int64_t el = F->started_ms ? (int64_t)(mk_mono_ms() - (uint64_t)F->started_ms) : 0;
    return json_pack("{s:b, s:I, s:f, s:I, s:I, s:o, s:I, s:i, s:i, s:o}", "active", F->chaos_on, "seed",
                     (json_int_t)F->seed, "rate_per_min", F->rate_per_min, "duration_ms", (json_int_t)F->run_ms,
                     "fault_duration_ms", (json_int_t)F->fault_ms, "types", types, "elapsed_ms",
                     (json_int_t)(F->chaos_on ? el : 0), "planned", F->nev, "done", F->next, "events", evs);
}

void mk_admin_h_chaos_post(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                           mk_http_resp_t *resp)
{
    (void)caps;
    mk_admin_faults_t *F = a->faults;
    if (F->chaos_on) {
        mk_admin_http_error(resp, 409, "chaos_running", "a chaos run is active: DELETE /v1/chaos first");
        return;
    }
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    char why[300] = "";
    json_t *seed = json_object_get(body, "seed"), *rate = json_object_get(body, "rate_per_min"),
           *types = json_object_get(body, "types"), *dur = json_object_get(body, "duration_ms"),
           *fdur = json_object_get(body, "fault_duration_ms"), *brokers = json_object_get(body, "brokers");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "seed") && strcmp(key, "rate_per_min") && strcmp(key, "types") && strcmp(key, "duration_ms") &&
            strcmp(key, "fault_duration_ms") && strcmp(key, "brokers"))
            snprintf(why, sizeof(why), "unknown field '%.60s'", key);
    }
    if (!why[0] && (!json_is_integer(seed) || json_integer_value(seed) < 0))
        snprintf(why, sizeof(why), "\"seed\" (a non-negative integer) is required");
    double r = json_is_number(rate) ? json_number_value(rate) : rate ? -1 : 6;
    if (!why[0] && !(r > 0 && r <= 600))
        snprintf(why, sizeof(why), "\"rate_per_min\" must be a number in (0, 600]");
    int64_t run = json_is_integer(dur) ? json_integer_value(dur) : dur ? -1 : 60000;
    if (!why[0] && (run < 1000 || run > 24LL * 3600 * 1000))
        snprintf(why, sizeof(why), "\"duration_ms\" must be 1000..86400000");
    int64_t fd = json_is_integer(fdur) ? json_integer_value(fdur) : fdur ? -1 : 5000;
    if (!why[0] && (fd < 100 || fd > 600000))
        snprintf(why, sizeof(why), "\"fault_duration_ms\" must be 100..600000");
    int tlist[MK_FAULT_TYPE_END], nt = 0;
    if (!why[0] && types) {
        size_t i;
        json_t *tv;
        if (!json_is_array(types) || json_array_size(types) == 0 || json_array_size(types) >= MK_FAULT_TYPE_END)
            snprintf(why, sizeof(why), "\"types\" must be a non-empty array of fault types");
        json_array_foreach(types, i, tv)
        {
            int t = json_is_string(tv) ? mk_fault_type_parse(json_string_value(tv)) : 0;
            if (!t && !why[0])
                snprintf(why, sizeof(why), "\"types\": unknown fault type");
            if (t && nt < MK_FAULT_TYPE_END - 1)
                tlist[nt++] = t;
        }
    } else if (!why[0]) {
        int def[] = {MK_FAULT_DISK_SLOW, MK_FAULT_BROKER_SLOW, MK_FAULT_DISK_STALL, MK_FAULT_NET_PARTITION,
                     MK_FAULT_CRASH};
        for (size_t i = 0; i < MK_ARRAY_LEN(def); i++)
            tlist[nt++] = def[i];
    }
    int32_t bl[64];
    int nb = 0;
    if (!why[0] && brokers) {
        size_t i;
        json_t *bv;
        if (!json_is_array(brokers) || json_array_size(brokers) == 0 || json_array_size(brokers) > 64)
            snprintf(why, sizeof(why), "\"brokers\" must be a non-empty array of broker ids");
        json_array_foreach(brokers, i, bv)
        {
            if (why[0])
                break;
            if (!json_is_integer(bv) || !mk_cluster_broker_find(a->c, (int32_t)json_integer_value(bv)))
                snprintf(why, sizeof(why), "\"brokers\": unknown broker id");
            else
                bl[nb++] = (int32_t)json_integer_value(bv);
        }
    }
    if (why[0]) {
        json_decref(body);
        mk_admin_http_error(resp, 400, "bad_chaos", "%s", why);
        return;
    }
    F->seed = (uint64_t)json_integer_value(seed);
    json_decref(body);
    F->rate_per_min = r;
    F->run_ms = run;
    F->fault_ms = fd;
    memcpy(F->types, tlist, sizeof(int) * (size_t)nt);
    F->ntypes = nt;
    memcpy(F->brokers, bl, sizeof(int32_t) * (size_t)nb);
    F->nbrokers = nb;
    chaos_plan(a, F);
    F->next = 0;
    F->chaos_on = true;
    F->chaos_ended = false;
    F->started_ms = (int64_t)mk_mono_ms();
    mk_admin_event(a, "chaos_started", -1, "chaos run: seed %llu, %.2f faults/min for %lld ms, %d planned",
                   (unsigned long long)F->seed, r, (long long)run, F->nev);
    arm(a);
    mk_admin_http_json(resp, 201, json_pack("{s:o}", "chaos", chaos_json(a)));
}

void mk_admin_h_chaos_get(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                          mk_http_resp_t *resp)
{
    (void)req, (void)caps;
    mk_admin_http_json(resp, 200, json_pack("{s:o}", "chaos", chaos_json(a)));
}

void mk_admin_h_chaos_delete(mk_admin_t *a, const mk_http_req_t *req, const mk_admin_caps_t *caps,
                             mk_http_resp_t *resp)
{
    (void)req, (void)caps;
    bool was = a->faults->chaos_on;
    chaos_stop(a, "admin API");
    arm(a);
    mk_admin_http_json(resp, 200, json_pack("{s:b, s:o}", "stopped", was, "chaos", chaos_json(a)));
}

/* ================================================================= metrics */

void mk_admin_faults_prometheus(mk_admin_t *a, mk_buf_t *o)
{
    mk_prom_help(o, "minikora_faults_injected_total", "counter", "Faults injected since start, by type.");
    for (int t = 1; t < MK_FAULT_TYPE_END; t++)
        mk_prom_sample(o, "minikora_faults_injected_total", (double)mk_fault_injected_total(t), "type",
                       mk_fault_type_name(t), NULL);
    mk_prom_help(o, "minikora_faults_active", "gauge", "Active injected faults, by type and target.");
    mk_fault_t all[MK_FAULT_MAX_ACTIVE];
    size_t n = MK_MIN(mk_fault_list(all, MK_FAULT_MAX_ACTIVE), (size_t)MK_FAULT_MAX_ACTIVE);
    /* one series per (type, target); several faults of one add up */
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++)
            dup = all[k].spec.type == all[i].spec.type && all[k].spec.broker == all[i].spec.broker &&
                  strcmp(all[k].spec.az, all[i].spec.az) == 0;
        if (dup)
            continue;
        int cnt = 0;
        for (size_t k = i; k < n; k++)
            cnt += all[k].spec.type == all[i].spec.type && all[k].spec.broker == all[i].spec.broker &&
                   strcmp(all[k].spec.az, all[i].spec.az) == 0;
        char b[16];
        snprintf(b, sizeof(b), "%d", all[i].spec.broker);
        mk_prom_sample(o, "minikora_faults_active", cnt, "type", mk_fault_type_name(all[i].spec.type), "broker",
                       all[i].spec.broker >= 0 ? b : "", "az", all[i].spec.az, NULL);
    }
    mk_prom_help(o, "minikora_chaos_active", "gauge", "Whether a chaos run is active.");
    mk_prom_sample(o, "minikora_chaos_active", a->faults && a->faults->chaos_on ? 1 : 0, NULL);
    /* The storage I/O gate of each broker (log/). */
    static const struct { const char *name, *type, *help; } io[] = {
        {"minikora_storage_io_operations_total", "counter", "Storage operations of a broker's logs (gate)."},
        {"minikora_storage_io_errors_total", "counter", "Failed storage operations (EIO, injected or real)."},
        {"minikora_storage_io_oldest_inflight_seconds", "gauge", "Age of the oldest storage operation in flight or held."},
        {"minikora_storage_io_latency_p99_seconds", "gauge", "99th percentile storage operation latency (last 10-20 s)."},
        {"minikora_storage_log_dir_offline", "gauge", "Whether the broker's log directory is offline."},
    };
    int nbk = mk_cluster_broker_count(a->c);
    for (size_t m = 0; m < MK_ARRAY_LEN(io); m++) {
        mk_prom_help(o, io[m].name, io[m].type, io[m].help);
        for (int i = 0; i < nbk; i++) {
            int32_t id = mk_cluster_broker_at(a->c, i)->id;
            mk_log_io_stats_t st;
            if (mk_log_io_stats(id, &st) < 0)
                continue;
            double v = m == 0 ? (double)st.ops : m == 1 ? (double)st.errors : m == 2 ? st.oldest_inflight_ms / 1e3
                     : m == 3 ? st.p99_us / 1e6 : st.offline;
            char b[16];
            snprintf(b, sizeof(b), "%d", id);
            mk_prom_sample(o, io[m].name, v, "broker", b, NULL);
        }
    }
}
