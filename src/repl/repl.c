/*
 * repl.c -- followers, ISR, high watermarks, elections and the broker
 * lifecycle.
 *
 * Replication rounds: when a leader appends, each follower replica gets a
 * round scheduled (coalesced: at most one pending per replica).  A round
 * copies whole batches from the leader's log into the follower's log with
 * mk_log_append_replica (offsets and leader epochs kept, as a follower Fetch
 * would), reports the follower's log end back, and moves the high watermark
 * (the lowest log end offset in the ISR).  Rounds that cross AZs run after
 * minikora.cross.az.latency.ms; same-AZ rounds run in the next loop
 * iteration, so a burst of produces costs one round (of at most 1 MiB: a
 * larger backlog takes several, and one loop turn runs at most 4 MiB of
 * rounds, so that other connections are served in between).  A round
 * without latency runs inside the leader's append (observe_appended) and
 * takes the batches being appended from memory when the follower's log
 * ends where they start; other rounds read the leader's log.  The bytes of
 * a round that crosses AZs are counted per broker pair and told to the
 * observer (admin/ counts them per tenant) once per round.
 *
 * Pending rounds are keyed by (topic id, partition, broker), never by
 * pointer, so a topic deleted in between simply drops its rounds.
 *
 * Divergence: a replica that rejoins (broker start, new leader) is marked
 * needs_truncate; its next round first asks the leader's epoch cache for the
 * end of the replica's latest epoch and truncates its log there (Kafka's
 * OffsetsForLeaderEpoch step), then copies.
 *
 * ISR: a 200 ms tick drops followers that have not caught up within
 * replica.lag.time.max.ms and re-schedules laggards; a follower that catches
 * up rejoins.  The last member of an ISR stays in it when its broker dies,
 * so that a clean election can bring it back.  The same tick runs preferred
 * leader elections (auto.leader.rebalance.enable) and revives offline
 * partitions.
 *
 * Fencing (mk_repl_broker_fence, the storage health manager's): a fenced
 * broker keeps its replicas and keeps replicating, but it never leads and
 * never is in an ISR: its leaderships move to in-sync replicas at once
 * (controlled, as at a shutdown), the tick drops it from every ISR that has
 * another member, and catching up does not bring it back.  Kora does this
 * to a broker whose storage stalls or is slow compared with its peers.
 */
#define MK_PARTITION_FIELDS
#include "fault/fault.h"
#include "repl/repl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_BROKERS 65
/* A round copies at most ROUND_BYTES (Kafka's replica.fetch.max.bytes), and
 * one turn of the loop runs rounds until TURN_BYTES were copied; the rest
 * wait for the next turn, so a flood into one tenant's partitions does not
 * hold every other connection of the loop behind one long copy. */
#define ROUND_BYTES (1u << 20)
/* A turn's budget starts at TURN_BYTES and doubles, up to TURN_BYTES_MAX,
 * for each turn that left rounds behind, so that a backlog that lasts (a
 * flood) is still caught up.  Steps of large copies (below) have a budget
 * of their own, TURN_STEP_BYTES. */
#define TURN_BYTES (4u << 20)
#define TURN_BYTES_MAX (8u << 20)
#define TURN_STEP_BYTES (256u << 10)
/* A queued copy of more than MK_REPL_INLINE_BYTES is written in steps of
 * STEP_BYTES, one per turn, past the follower's log end (mk_log_prewrite),
 * and stored when all is written: no turn writes a whole 1 MB batch. */
#define STEP_BYTES MK_LOG_STEP_BYTES
#define SPARE_BUFS 16
#define TICK_MS 200

/* A scheduled event for one follower: a copy round (a follower Fetch: it
 * brings what the leader had when the round was scheduled) or the
 * acknowledgement of one reaching the leader (the follower's new log end). */
enum { ROUND_COPY, ROUND_ACK };

/* A partition on its way to a new replica set (mk_repl_reassign). */
typedef struct move_s {
    uint8_t topic_id[16];
    int32_t partition;
    int32_t n;
    int32_t target[MK_CLUSTER_MAX_BROKERS];
    int32_t norig;                          /* the replicas before it (ListPartitionReassignments, cancel) */
    int32_t orig[MK_CLUSTER_MAX_BROKERS];
} move_t;

/* A large copy being written in steps (see STEP_BYTES). */
typedef struct stage_s {
    uint8_t topic_id[16];
    int32_t partition;
    int32_t broker;
    const mk_log_t *log;        /* the follower log it is for (a new one voids it) */
    int64_t base;               /* the follower's log end it starts at */
    mk_buf_t buf;               /* owned: the sound batches */
    mk_log_prewrite_t pw;
} stage_t;

typedef struct round_s {
    uint8_t topic_id[16];
    int32_t partition;
    int32_t broker;
    int kind;                   /* ROUND_* */
    int64_t value;              /* COPY: leader end to copy up to; ACK: follower end */
    uint64_t due_ms;
    uint64_t polls;             /* the loop's polls when it was queued (runs only after one more) */
    uint64_t queued_ms;
    int64_t lag;                /* run_rounds' sort key: records the copy brings (0: an ack) */
    size_t seq;                 /* and its tie-break: the order it was queued in */
} round_t;

struct mk_repl_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_repl_config_t cfg;
    mk_partition_writer_t *writer;   /* borrowed: repl observes its appends */
    round_t *rounds;            /* owned, unordered */
    size_t nrounds, cap;
    uv_idle_t *idle;            /* owned: runs due rounds soon */
    uv_timer_t *timer;          /* owned: runs delayed rounds */
    uv_timer_t *tick;           /* owned: ISR and elections */
    uv_prepare_t *prep;         /* owned: counts the loop's polls */
    uint64_t polls;
    size_t turn_budget;         /* bytes of rounds this turn may copy */
    size_t turn_steps;          /* bytes written in steps this turn */
    uint64_t xaz[MAX_BROKERS][MAX_BROKERS];
    uint64_t xaz_reads;
    uint64_t copy_rounds;       /* copy rounds run (one per follower per round) */
    uint64_t ack_rounds;        /* acknowledgements delayed across AZs */
    mk_repl_xaz_cb xaz_cb;      /* observer of cross-AZ rounds (admin/), or NULL */
    void *xaz_cb_ud;
    mk_buf_t scratch;
    stage_t *stages;            /* owned, unordered */
    size_t nstages, stages_cap;
    mk_buf_t spare[SPARE_BUFS]; /* emptied stage buffers, reused warm */
    size_t nspare;
    bool in_rounds;
    uint8_t warned_topic[16];   /* the last corrupt leader batch warned about: once, not per round */
    int32_t warned_partition;
    int64_t warned_offset;
    move_t *moves;              /* owned, unordered: reassignments in flight */
    size_t nmoves, moves_cap;
    uint64_t moves_done;
    mk_repl_rebuild_cb rebuild_cb;  /* a follower below the leader's log start (tier/), or NULL */
    void *rebuild_arg;
    bool fenced[MAX_BROKERS];   /* by broker id: out of every ISR, never leads */
};

static void run_rounds(mk_repl_t *r);
static void moves_tick(mk_repl_t *r, bool *moved);
static void idle_cb(uv_idle_t *h) { run_rounds(h->data); }
static void timer_cb(uv_timer_t *h) { run_rounds(h->data); }
static void prep_cb(uv_prepare_t *h) { ((mk_repl_t *)h->data)->polls++; }

/* ==================================================================== utils */

static bool broker_running(mk_repl_t *r, int32_t id)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(r->c, id);
    return b && b->running;
}

static void progress(mk_repl_t *r) { mk_partition_writer_progress(r->writer); }

static bool fenced(const mk_repl_t *r, int32_t id) { return id > 0 && id < MAX_BROKERS && r->fenced[id]; }
/* Fencing bars a broker from leading p, unless it is p's only replica (the
 * health manager's probe partitions, pinned to one broker). */
static bool barred(const mk_repl_t *r, const mk_partition_t *p, int32_t id)
{
    return p->replica_count > 1 && fenced(r, id);
}


/* What one round of p copied from its leader to a follower in another AZ:
 * the pair's counter and the observer (once per round, never per batch). */
static void count_xaz(mk_repl_t *r, const mk_partition_t *p, int32_t to, uint64_t bytes)
{
    int32_t from = p->leader;
    if (from > 0 && to > 0 && from < MAX_BROKERS && to < MAX_BROKERS)
        r->xaz[from][to] += bytes;
    if (r->xaz_cb)
        r->xaz_cb(p->topic, bytes, r->xaz_cb_ud);
}

void mk_repl_set_xaz_cb(mk_repl_t *r, mk_repl_xaz_cb cb, void *ud)
{
    r->xaz_cb = cb;
    r->xaz_cb_ud = cb ? ud : NULL;
}

void mk_repl_set_rebuild_cb(mk_repl_t *r, mk_repl_rebuild_cb cb, void *arg)
{
    r->rebuild_cb = cb;
    r->rebuild_arg = cb ? arg : NULL;
}

void mk_repl_account_read(mk_repl_t *r, int32_t broker, const char *client_az, uint64_t bytes)
{
    if (client_az && *client_az && strcmp(client_az, mk_cluster_broker_az(r->c, broker)) != 0)
        r->xaz_reads += bytes;
}

void mk_repl_round_counts(const mk_repl_t *r, uint64_t *copy_rounds, uint64_t *ack_rounds)
{
    *copy_rounds = r->copy_rounds;
    *ack_rounds = r->ack_rounds;
}

uint64_t mk_repl_cross_az_total(const mk_repl_t *r, uint64_t *client_reads)
{
    uint64_t t = 0;
    for (int i = 0; i < MAX_BROKERS; i++)
        for (int j = 0; j < MAX_BROKERS; j++)
            t += r->xaz[i][j];
    if (client_reads)
        *client_reads = r->xaz_reads;
    return t + r->xaz_reads;
}

/* ================================================================== rounds */

static bool cross_az(mk_repl_t *r, int32_t a, int32_t b)
{
    return strcmp(mk_cluster_broker_az(r->c, a), mk_cluster_broker_az(r->c, b)) != 0;
}

/* Whether p's leader is on the partitioned side of a net-partition while
 * follower f, running and in the ISR, is on the other. */
static bool leader_isolated(mk_repl_t *r, const mk_partition_t *p, const mk_replica_t *f)
{
    return mk_fault_net_isolated(mk_cluster_broker_az(r->c, p->leader)) &&
           !mk_fault_net_isolated(mk_cluster_broker_az(r->c, f->broker)) && f->log && broker_running(r, f->broker);
}

/* A net-partition fault (fault/) cuts replication between brokers a and b:
 * no round copies and no acknowledgement travels, both ways. */
static bool net_cut(mk_repl_t *r, int32_t a, int32_t b)
{
    return mk_fault_net_cut(mk_cluster_broker_az(r->c, a), mk_cluster_broker_az(r->c, b));
}

static void push_round(mk_repl_t *r, mk_partition_t *p, int32_t broker, int kind, int64_t value, uint64_t delay)
{
    if (r->nrounds == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        round_t *n = mk_realloc(r->rounds, cap * sizeof(round_t));
        if (!n)
            return; /* the tick schedules copies again */
        r->rounds = n;
        r->cap = cap;
    }
    round_t *rd = &r->rounds[r->nrounds++];
    memcpy(rd->topic_id, p->topic->id, 16);
    rd->partition = p->index;
    rd->broker = broker;
    rd->kind = kind;
    rd->value = value;
    rd->due_ms = uv_now(r->loop) + delay;
    rd->polls = r->polls;
    rd->queued_ms = uv_now(r->loop);
    if (delay == 0) {
        uv_idle_start(r->idle, idle_cb);
    } else if (!uv_is_active((uv_handle_t *)r->timer) || uv_timer_get_due_in(r->timer) > delay) {
        uv_timer_start(r->timer, timer_cb, delay, 0);
    }
}

/* Whether a round from p's leader to f waits for the cross-AZ latency. */
static bool cross_az_delayed(mk_repl_t *r, const mk_partition_t *p, const mk_replica_t *f)
{
    return r->cfg.cross_az_latency_ms > 0 && cross_az(r, p->leader, f->broker);
}

/* Schedule a copy round for follower f: it will bring what the leader has
 * now, after the one-way latency if it crosses AZs. */
static void schedule(mk_repl_t *r, mk_partition_t *p, mk_replica_t *f)
{
    if (f->copy_pending || !f->log || f->broker == p->leader || p->leader < 0 || !p->log)
        return;
    uint64_t delay = cross_az(r, p->leader, f->broker) ? (uint64_t)r->cfg.cross_az_latency_ms : 0;
    f->copy_pending = true;
    push_round(r, p, f->broker, ROUND_COPY, mk_log_end_offset(p->log), delay);
}

/* Bring a rejoining follower's log in line with the leader's epochs. */
static void reconcile(mk_partition_t *p, mk_replica_t *f)
{
    f->needs_truncate = false;
    int64_t leo_f = mk_log_end_offset(f->log);
    int32_t epoch_f = mk_log_latest_epoch(f->log);
    int64_t end = mk_log_end_offset(p->log);
    if (epoch_f >= 0) {
        int32_t ep;
        int64_t e;
        if (mk_log_end_offset_for_epoch(p->log, epoch_f, &ep, &e) == 0)
            end = ep < 0 ? mk_log_start_offset(p->log) : e;
    }
    end = MK_MIN(end, mk_log_end_offset(p->log));
    if (leo_f > end) {
        mk_warn("partition %s-%d: replica on broker %d truncates its divergent suffix %lld..%lld", p->topic->name,
                p->index, f->broker, (long long)end, (long long)leo_f);
        int rc = mk_log_truncate_to(f->log, end);
        if (rc < 0)
            mk_error("partition %s-%d: truncation on broker %d failed: %s", p->topic->name, p->index, f->broker,
                     mk_strerror(rc));
    }
    /* What the follower acknowledged to an earlier leader may be the very
     * tail just cut: only this leader's rounds count from here. */
    f->acked_leo = MK_MIN(f->acked_leo, mk_log_end_offset(f->log));
}

/* The leader hears of a follower's log end: ISR and HW may move. */
static void on_ack(mk_repl_t *r, mk_partition_t *p, mk_replica_t *f, int64_t leo_f, bool *moved)
{
    if (!p->log || !f->log)
        return;
    if (leo_f > f->acked_leo)
        f->acked_leo = leo_f;
    if (leo_f >= mk_log_end_offset(p->log)) {
        f->caught_up_ms = uv_now(r->loop);
        if (!f->in_isr && !fenced(r, f->broker)) {
            f->in_isr = true;
            mk_info("partition %s-%d: broker %d joins the ISR", p->topic->name, p->index, f->broker);
            *moved = true;
        }
    }
    if (mk_partition_hw_update(p))
        *moved = true;
}

/* The sound prefix of the whole batches in r->scratch: each is checked with
 * batch/'s validator (CRC32C and header, not the records: they were checked
 * deeply when produced) before a follower stores it, as a Kafka follower
 * checks what it fetches, so that a leader whose stored bytes went bad
 * never spreads them.  Returns the bytes that are sound; a bad batch is
 * logged once. */
static size_t sound_prefix(mk_repl_t *r, const mk_partition_t *p, const uint8_t *data, size_t len, int64_t offset)
{
    size_t pos = 0;
    while (pos < len) {
        int64_t size = mk_batch_size(data + pos, len - pos);
        char why[160];
        if (size < 0 || (uint64_t)size > len - pos) {
            snprintf(why, sizeof(why), "bad batch length");
        } else if (mk_batch_validate_ex(data + pos, (size_t)size, MK_BATCH_VALIDATE_COMPACTED, 0, NULL, why,
                                        sizeof(why)) == 0) {
            pos += (size_t)size;
            continue;
        }
        mk_reader_t rd;
        mk_rd_init(&rd, data + pos, len - pos);
        int64_t base = mk_rd_i64(&rd);
        if (mk_rd_ok(&rd))
            offset = base;
        if (memcmp(r->warned_topic, p->topic->id, 16) != 0 || r->warned_partition != p->index ||
            r->warned_offset != offset) {
            memcpy(r->warned_topic, p->topic->id, 16);
            r->warned_partition = p->index;
            r->warned_offset = offset;
            mk_error("partition %s-%d: the leader's batch at offset %lld is corrupt (%s): followers do not copy it "
                     "(the scrubber repairs or reports it)",
                     p->topic->name, p->index, (long long)offset, why);
        }
        break;
    }
    return pos;
}

/* The batches the leader has just appended, as the write path's appended
 * hook sees them: the set's bytes as stored (offsets and epoch assigned)
 * and the offset of its first batch. */
typedef struct appended_s {
    const uint8_t *set;
    size_t len;
    int64_t base;
} appended_t;

/* Stores data (sound whole batches of the leader's) on follower f.  Returns
 * 0, or -1 with the failure logged (a held storage gate is not logged: the
 * tick tries again). */
static int follower_append(mk_partition_t *p, mk_replica_t *f, const uint8_t *data, size_t len, int64_t now)
{
    mk_log_append_info_t info;
    int rc = mk_log_append_replica(f->log, data, len, now, &info);
    if (rc == MK_ERR_AGAIN)
        return -1; /* held at the follower's storage I/O gate */
    if (rc < 0) {
        mk_error("partition %s-%d: replica append on broker %d failed: %s", p->topic->name, p->index, f->broker,
                 mk_strerror(rc));
        return -1;
    }
    return 0;
}

static stage_t *stage_find_id(mk_repl_t *r, const uint8_t *topic_id, int32_t partition, int32_t broker)
{
    for (size_t i = 0; i < r->nstages; i++)
        if (r->stages[i].partition == partition && r->stages[i].broker == broker &&
            memcmp(r->stages[i].topic_id, topic_id, 16) == 0)
            return &r->stages[i];
    return NULL;
}

static stage_t *stage_find(mk_repl_t *r, const mk_partition_t *p, int32_t broker)
{
    return stage_find_id(r, p->topic->id, p->index, broker);
}

static void stage_drop(mk_repl_t *r, stage_t *st)
{
    if (r->nspare < SPARE_BUFS) {
        mk_buf_reset(&st->buf);
        r->spare[r->nspare++] = st->buf;
    } else {
        mk_buf_free(&st->buf);
    }
    *st = r->stages[--r->nstages];
}

/* A stage for f from r->scratch's bytes (its buffer moves to the stage). */
static stage_t *stage_new(mk_repl_t *r, const mk_partition_t *p, const mk_replica_t *f, int64_t base)
{
    if (r->nstages == r->stages_cap) {
        size_t cap = r->stages_cap ? r->stages_cap * 2 : 8;
        stage_t *n = mk_realloc(r->stages, cap * sizeof(stage_t));
        if (!n)
            return NULL;
        r->stages = n;
        r->stages_cap = cap;
    }
    stage_t *st = &r->stages[r->nstages++];
    memset(st, 0, sizeof(*st));
    memcpy(st->topic_id, p->topic->id, 16);
    st->partition = p->index;
    st->broker = f->broker;
    st->log = f->log;
    st->base = base;
    st->buf = r->scratch;
    if (r->nspare)
        r->scratch = r->spare[--r->nspare];
    else
        mk_buf_init(&r->scratch);
    return st;
}

/* One step of f's stage: 1 when its batches are stored (leo_f moved), 0
 * when steps are left, -1 when the stage is gone and the round goes on as
 * if there had been none. */
static int stage_step(mk_repl_t *r, mk_partition_t *p, mk_replica_t *f, stage_t *st, int64_t now, size_t *copied,
                      size_t *stepped)
{
    if (st->log != f->log || st->base != mk_log_end_offset(f->log)) {
        stage_drop(r, st);
        return -1;
    }
    if (r->turn_steps >= TURN_STEP_BYTES)
        return 0; /* this turn's steps are spent: the next turn */
    r->turn_steps += STEP_BYTES;
    int rc = mk_log_prewrite(f->log, &st->pw, st->buf.data, st->buf.len, STEP_BYTES);
    if (rc == 0) {
        *stepped += STEP_BYTES;
        return 0;
    }
    if (rc == 1) {
        mk_log_append_info_t info;
        rc = mk_log_append_replica_prewritten(f->log, st->buf.data, st->buf.len, now, &st->pw, &info);
        if (rc < 0 && rc != MK_ERR_AGAIN)
            mk_error("partition %s-%d: replica append on broker %d failed: %s", p->topic->name, p->index, f->broker,
                     mk_strerror(rc));
        if (rc == 0)
            *copied += st->buf.len;
        stage_drop(r, st);
        return rc == 0 ? 1 : -1;
    }
    stage_drop(r, st); /* a roll ahead, the gate, a failure: the plain append sorts it out */
    return -1;
}

/* One replication round: copy what the follower lacks, up to what the leader
 * had when the round was scheduled (upto < 0: everything).  ap (or NULL):
 * the batches the leader is appending now; a follower whose log ends right
 * where they start takes them from memory, as a Kafka follower takes them
 * from its fetch answer, instead of reading them back from the leader's log
 * (a pread and an index scan per batch per follower: with many partitions
 * and small batches that was a quarter of the loop; issue 16). */
static size_t do_round(mk_repl_t *r, mk_partition_t *p, mk_replica_t *f, int64_t upto, uint64_t asked_ms,
                       const appended_t *ap, bool *moved)
{
    if (!p->log || !f->log || f->broker == p->leader || net_cut(r, p->leader, f->broker))
        return 0;
    if (f->needs_truncate)
        reconcile(p, f);
    int64_t leo_l = mk_log_end_offset(p->log);
    if (upto >= 0 && upto < leo_l)
        leo_l = upto;
    int64_t leo_f = mk_log_end_offset(f->log);
    if (leo_f > mk_log_end_offset(p->log)) {
        f->needs_truncate = true;
        reconcile(p, f);
        leo_f = mk_log_end_offset(f->log);
    }
    size_t copied = 0;
    bool stalled = false; /* stopped at a corrupt leader batch */
    bool blocked = false; /* a read or append failed or was held (storage I/O gate) */
    int64_t now = mk_now_ms();
    if (ap && ap->len && leo_f == ap->base && leo_f < leo_l) {
        /* The same checks as bytes read back from the log get (CRC and
         * header), so the two paths store the same thing. */
        size_t sound = sound_prefix(r, p, ap->set, ap->len, leo_f);
        stalled = sound < ap->len;
        if (sound > 0) {
            if (follower_append(p, f, ap->set, sound, now) < 0) {
                blocked = true;
            } else {
                copied += sound;
                leo_f = mk_log_end_offset(f->log);
            }
        }
        if (stalled || blocked)
            leo_l = leo_f; /* no read-back after a bad or refused batch */
    }
    stage_t *st = ap ? NULL : stage_find(r, p, f->broker);
    bool stepping = false, may_stage = !ap;
    size_t stepped = 0; /* written ahead by steps: the turn's budget, not yet copied */
    if (st) {
        may_stage = false;
        int sr = stage_step(r, p, f, st, now, &copied, &stepped);
        if (sr == 1)
            leo_f = mk_log_end_offset(f->log);
        stepping = sr == 0;
    }
    while (!stepping && leo_f < leo_l && copied < ROUND_BYTES) {
        mk_buf_reset(&r->scratch);
        int64_t next;
        int rc = mk_log_read(p->log, leo_f, 1u << 20, true, &r->scratch, &next);
        if (rc == MK_ERR_RANGE && leo_f < mk_log_start_offset(p->log)) {
            /* The leader no longer has what the follower needs (retention,
             * DeleteRecords, or a new replica of an old log): as Kafka's
             * follower does on OFFSET_OUT_OF_RANGE, restart at its start. */
            int64_t start = mk_log_start_offset(p->log);
            if (r->rebuild_cb) {
                if (r->rebuild_cb(r->rebuild_arg, p, f->broker, f->log, start) < 0)
                    break;
            } else {
                mk_info("partition %s-%d: replica on broker %d is below the leader's log start %lld: restarting "
                        "there", p->topic->name, p->index, f->broker, (long long)start);
                if (mk_log_truncate_fully(f->log, start) < 0)
                    break;
            }
            leo_f = mk_log_end_offset(f->log);
            continue;
        }
        if (rc < 0 || r->scratch.len == 0) {
            blocked = rc < 0;
            break;
        }
        size_t sound = sound_prefix(r, p, r->scratch.data, r->scratch.len, leo_f);
        stalled = sound < r->scratch.len;
        r->scratch.len = sound;
        if (sound == 0)
            break;
        if (may_stage && sound > MK_REPL_INLINE_BYTES && !stalled && copied == 0 &&
            (st = stage_new(r, p, f, leo_f))) {
            /* A large copy in steps, this round's first copy. */
            may_stage = false;
            int sr = stage_step(r, p, f, st, now, &copied, &stepped);
            if (sr == 0) {
                stepping = true;
                break;
            }
            if (sr == 1)
                leo_f = mk_log_end_offset(f->log);
            continue; /* stored, or dropped (read again and copied plainly) */
        }
        if (follower_append(p, f, r->scratch.data, r->scratch.len, now) < 0) {
            blocked = true; /* failed, or held at the storage I/O gate: the tick tries again */
            break;
        }
        copied += r->scratch.len;
        leo_f = mk_log_end_offset(f->log);
        if (stalled)
            break;
    }
    /* The leader's log start comes with every round (Kafka's followers get
     * it in each fetch answer): DeleteRecords and retention on the leader
     * move the follower's start too, up to what the follower has. */
    int64_t lstart = mk_log_start_offset(p->log);
    if (mk_log_start_offset(f->log) < lstart && leo_f >= lstart)
        mk_log_start_follow(f->log, lstart);
    bool xaz = cross_az(r, p->leader, f->broker);
    if (xaz && copied)
        count_xaz(r, p, f->broker, copied);
    /* The acknowledgement travels back: after the latency across AZs. */
    uint64_t delay = xaz ? (uint64_t)r->cfg.cross_az_latency_ms : 0;
    if (delay) {
        push_round(r, p, f->broker, ROUND_ACK, leo_f, delay);
    } else {
        /* A queued round brings what the leader had when it was queued: a
         * follower that has all of that was caught up as of then (Kafka's
         * lastCaughtUpTime), even if the leader has appended since.  Else a
         * follower of a steadily written partition, a turn behind the
         * leader's end of the moment, would leave the ISR. */
        if (asked_ms && upto >= 0 && leo_f >= upto && asked_ms > f->caught_up_ms)
            f->caught_up_ms = asked_ms;
        on_ack(r, p, f, leo_f, moved);
    }
    /* More arrived meanwhile (or this round was capped): another round.  Not
     * after a corrupt batch (the scrubber repairs), nor after a read or an
     * append that failed or was held at a storage gate: the tick tries again
     * (a round scheduled at once would run again in the same pass of the
     * loop's timers, and never let the loop poll). */
    if (!stalled && !blocked && mk_log_end_offset(f->log) < mk_log_end_offset(p->log) && broker_running(r, f->broker))
        schedule(r, p, f);
    return copied + stepped;
}

static int round_cmp(const void *a, const void *b)
{
    const round_t *x = a, *y = b;
    if (x->lag != y->lag)
        return x->lag < y->lag ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void run_rounds(mk_repl_t *r)
{
    if (r->in_rounds)
        return;
    r->in_rounds = true;
    uv_idle_stop(r->idle);
    uint64_t now = uv_now(r->loop);
    bool moved = false;
    /* Take the due rounds out first: a round may schedule new ones. */
    size_t n = r->nrounds, keep = 0;
    round_t *due = mk_malloc(sizeof(round_t) * (n ? n : 1));
    size_t ndue = 0;
    for (size_t i = 0; i < n; i++) {
        /* The next step of a large copy waits until the loop has polled once
         * since it was queued: the connections that became ready meanwhile
         * are served first. */
        const round_t *rd = &r->rounds[i];
        bool wait_poll = rd->kind == ROUND_COPY && rd->polls == r->polls && r->nstages &&
                         stage_find_id(r, rd->topic_id, rd->partition, rd->broker);
        if (rd->due_ms <= now && !wait_poll && due)
            due[ndue++] = r->rounds[i];
        else
            r->rounds[keep++] = r->rounds[i];
    }
    r->nrounds = keep;
    /* The smallest copies first: a follower a few records behind (a quiet
     * tenant's) does not wait for another's large backlog to be copied. */
    for (size_t k = 0; k < ndue && ndue > 1; k++) {
        due[k].seq = k;
        due[k].lag = 0;
        if (due[k].kind == ROUND_COPY) {
            mk_topic_t *t = mk_cluster_topic_find_id(r->c, due[k].topic_id);
            mk_replica_t *f = mk_cluster_partition_replica(mk_cluster_topic_partition(t, due[k].partition),
                                                           due[k].broker);
            if (f && f->log)
                due[k].lag = MK_MAX(due[k].value - mk_log_end_offset(f->log), 0);
        }
    }
    if (ndue > 1)
        qsort(due, ndue, sizeof(round_t), round_cmp);
    size_t spent = 0, i;
    if (r->turn_budget < TURN_BYTES)
        r->turn_budget = TURN_BYTES;
    r->turn_steps = 0;
    for (i = 0; i < ndue && spent < r->turn_budget; i++) {
        mk_topic_t *t = mk_cluster_topic_find_id(r->c, due[i].topic_id);
        mk_partition_t *p = mk_cluster_topic_partition(t, due[i].partition);
        mk_replica_t *f = mk_cluster_partition_replica(p, due[i].broker);
        if (!f)
            continue;
        if (due[i].kind == ROUND_ACK) {
            r->ack_rounds++;
            if (p && !net_cut(r, p->leader, f->broker))
                on_ack(r, p, f, due[i].value, &moved);
            continue;
        }
        f->copy_pending = false;
        r->copy_rounds++;
        spent += do_round(r, p, f, due[i].value, due[i].queued_ms, NULL, &moved);
    }
    r->turn_budget = i < ndue ? MK_MIN(r->turn_budget * 2, (size_t)TURN_BYTES_MAX) : TURN_BYTES;
    if (i < ndue) {
        /* The turn's budget is spent: the rounds not run go first next turn. */
        size_t left = ndue - i;
        if (r->nrounds + left > r->cap) {
            round_t *nr = mk_realloc(r->rounds, (r->nrounds + left) * sizeof(round_t));
            if (nr) {
                r->rounds = nr;
                r->cap = r->nrounds + left;
            }
        }
        if (r->nrounds + left <= r->cap) {
            memmove(r->rounds + left, r->rounds, r->nrounds * sizeof(round_t));
            memcpy(r->rounds, due + i, left * sizeof(round_t));
            r->nrounds += left;
        } else {
            /* Out of memory: those followers are scheduled again by the tick. */
            for (; i < ndue; i++) {
                mk_topic_t *t = mk_cluster_topic_find_id(r->c, due[i].topic_id);
                mk_replica_t *f = mk_cluster_partition_replica(mk_cluster_topic_partition(t, due[i].partition),
                                                               due[i].broker);
                if (f && due[i].kind == ROUND_COPY)
                    f->copy_pending = false;
            }
        }
        uv_idle_start(r->idle, idle_cb);
    }
    mk_free(due);
    /* Re-arm the timer for rounds still in the future; rounds due but not
     * yet past a poll keep the idle handle (a poll that does not block). */
    uint64_t next = UINT64_MAX;
    bool waiting = false;
    for (size_t k = 0; k < r->nrounds; k++) {
        if (r->rounds[k].due_ms <= now)
            waiting = true;
        else
            next = MK_MIN(next, r->rounds[k].due_ms);
    }
    if (waiting)
        uv_idle_start(r->idle, idle_cb);
    if (next != UINT64_MAX)
        uv_timer_start(r->timer, timer_cb, next - now, 0);
    r->in_rounds = false;
    if (moved)
        progress(r);
}

/* ================================================================ elections */

/* broker leads p from the next epoch on; the write path's observers hear
 * of it (txn loads the producer state for the new leader). */
static void set_leader(mk_repl_t *r, mk_partition_t *p, int32_t broker)
{
    mk_cluster_partition_set_leader(r->c, p, broker, p->leader_epoch + 1);
    mk_partition_writer_leader_changed(r->writer, p);
}

/* pick, a running replica of p, leads from the next epoch; the others
 * reconcile with it and catch up. */
static void lead(mk_repl_t *r, mk_partition_t *p, int32_t pick)
{
    set_leader(r, p, pick);
    mk_replica_t *nl = mk_cluster_partition_replica(p, pick);
    nl->in_isr = true;
    /* The HW never passes the new leader's end. */
    mk_partition_hw_clamp(p);
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *rp = &p->replicas[k];
        if (rp->broker == pick)
            continue;
        rp->needs_truncate = true;
        schedule(r, p, rp);
    }
}

/* Elect a leader for p from its ISR (not broker `exclude`); offline if none. */
static void elect(mk_repl_t *r, mk_partition_t *p, int32_t exclude)
{
    int32_t pick = -1;
    for (int32_t k = 0; k < p->replica_count && pick < 0; k++) {
        mk_replica_t *rp = &p->replicas[k];
        if (rp->in_isr && rp->log && rp->broker != exclude && broker_running(r, rp->broker) &&
            !barred(r, p, rp->broker))
            pick = rp->broker;
    }
    if (pick < 0 && (r->cfg.unclean_leader_election || p->topic->cfg.unclean_leader_election))
        for (int32_t k = 0; k < p->replica_count && pick < 0; k++) {
            mk_replica_t *rp = &p->replicas[k];
            if (rp->log && rp->broker != exclude && broker_running(r, rp->broker) && !barred(r, p, rp->broker)) {
                pick = rp->broker;
                mk_warn("partition %s-%d: unclean election of broker %d", p->topic->name, p->index, pick);
            }
        }
    if (pick < 0) {
        if (p->leader >= 0)
            mk_warn("partition %s-%d: offline (no in-sync replica is running)", p->topic->name, p->index);
        mk_cluster_partition_set_offline(r->c, p);
        return;
    }
    lead(r, p, pick);
}

static void foreach_partition_of(mk_repl_t *r, int32_t broker,
                                 void (*fn)(mk_repl_t *, mk_partition_t *, mk_replica_t *, int32_t), int32_t id)
{
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(r->c, &it)))
        for (int32_t i = 0; i < t->partition_count; i++) {
            mk_replica_t *rp = mk_cluster_partition_replica(&t->partitions[i], broker);
            if (rp)
                fn(r, &t->partitions[i], rp, id);
        }
}

static void after_crash(mk_repl_t *r, mk_partition_t *p, mk_replica_t *rp, int32_t id)
{
    /* The last ISR member stays listed so a clean election can pick it later. */
    if (mk_partition_isr_size(p) > 1)
        rp->in_isr = false;
    rp->copy_pending = false;
    if (p->leader == id)
        elect(r, p, id);
    mk_partition_hw_update(p);
}

/* Stop broker id abruptly; crashed says how it is reported (a controlled
 * shutdown ends with this too, after moving leadership). */
static int broker_down(mk_repl_t *r, int32_t id, bool crashed)
{
    int rc = mk_cluster_broker_stop(r->c, id);
    if (rc < 0)
        return rc;
    mk_cluster_broker_find(r->c, id)->crashed = crashed;
    foreach_partition_of(r, id, after_crash, id);
    progress(r);
    return 0;
}

int mk_repl_broker_crash(mk_repl_t *r, int32_t id) { return broker_down(r, id, true); }

/* The storage I/O gate: a log of broker id failed (an EIO, real or
 * injected), so, as in Kafka, its log directory is offline: its replicas go
 * offline (they leave the ISR), the partitions it led elect a leader from
 * the rest of the ISR, and clients that got KAFKA_STORAGE_ERROR find the new
 * leaders.  The broker keeps serving; a restart brings the directory back. */
static void storage_offline_cb(void *arg, int32_t id)
{
    mk_repl_t *r = arg;
    if (mk_cluster_broker_logs_offline(r->c, id) < 0)
        return;
    foreach_partition_of(r, id, after_crash, id);
    progress(r);
}

static void move_leadership(mk_repl_t *r, mk_partition_t *p, mk_replica_t *rp, int32_t id)
{
    (void)rp;
    if (p->leader != id)
        return;
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *o = &p->replicas[k];
        if (o->broker != id && o->in_isr && o->log && broker_running(r, o->broker) && !fenced(r, o->broker)) {
            /* Make sure it has everything before it leads. */
            bool moved = false;
            do_round(r, p, o, -1, 0, NULL, &moved);
            o->acked_leo = mk_log_end_offset(o->log);
            elect(r, p, id);
            return;
        }
    }
}

int mk_repl_broker_shutdown(mk_repl_t *r, int32_t id)
{
    if (!mk_cluster_broker_find(r->c, id))
        return MK_ERR_NOT_FOUND;
    if (!broker_running(r, id))
        return MK_ERR_STATE;
    foreach_partition_of(r, id, move_leadership, id);
    return broker_down(r, id, false);
}

/* A fenced broker's replica leaves p's ISR now when another member is
 * left (its leadership moved first). */
static void after_fence(mk_repl_t *r, mk_partition_t *p, mk_replica_t *rp, int32_t id)
{
    move_leadership(r, p, rp, id);
    if (p->leader == id)
        return; /* no in-sync replica can take over: it leads on, fenced or not */
    if (rp->in_isr && mk_partition_isr_size(p) > 1) {
        rp->in_isr = false;
        mk_info("partition %s-%d: broker %d leaves the ISR (fenced)", p->topic->name, p->index, id);
    }
    mk_partition_hw_update(p);
}

int mk_repl_broker_fence(mk_repl_t *r, int32_t id, bool on)
{
    if (!mk_cluster_broker_find(r->c, id) || id >= MAX_BROKERS)
        return MK_ERR_NOT_FOUND;
    if (r->fenced[id] == on)
        return 0;
    r->fenced[id] = on;
    mk_info("broker %d %s", id, on ? "fenced: out of the ISRs, leads nothing" : "unfenced");
    if (on && broker_running(r, id))
        foreach_partition_of(r, id, after_fence, id);
    progress(r);
    return 0;
}

bool mk_repl_broker_fenced(const mk_repl_t *r, int32_t id) { return fenced(r, id); }

static void after_start(mk_repl_t *r, mk_partition_t *p, mk_replica_t *rp, int32_t id)
{
    (void)id;
    rp->needs_truncate = true;
    rp->copy_pending = false;
    if (p->leader < 0) {
        /* An offline partition comes back with its last in-sync replica. */
        if (rp->in_isr || r->cfg.unclean_leader_election || p->topic->cfg.unclean_leader_election) {
            rp->in_isr = true;
            elect(r, p, -1);
        }
        return;
    }
    schedule(r, p, rp);
}

int mk_repl_broker_start(mk_repl_t *r, int32_t id)
{
    int rc = mk_cluster_broker_start(r->c, id);
    if (rc < 0)
        return rc;
    mk_cluster_broker_find(r->c, id)->crashed = false;
    foreach_partition_of(r, id, after_start, id);
    progress(r);
    return 0;
}

int mk_repl_az_down(mk_repl_t *r, const char *az)
{
    int n = 0;
    for (int i = 0; i < mk_cluster_broker_count(r->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(r->c, i);
        if (b->running && strcmp(b->az, az) == 0 && mk_repl_broker_crash(r, b->id) == 0)
            n++;
    }
    return n;
}

int mk_repl_az_up(mk_repl_t *r, const char *az)
{
    int n = 0;
    for (int i = 0; i < mk_cluster_broker_count(r->c); i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(r->c, i);
        if (!b->running && strcmp(b->az, az) == 0 && mk_repl_broker_start(r, b->id) == 0)
            n++;
    }
    return n;
}

/* ================================================================== removal */

int64_t mk_repl_broker_replicas(mk_repl_t *r, int32_t id, int64_t *leaders)
{
    int64_t n = 0, l = 0;
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(r->c, &it)))
        for (int32_t i = 0; i < t->partition_count && !mk_cluster_topic_internal(t->name); i++) {
            n += mk_cluster_partition_replica(&t->partitions[i], id) != NULL;
            l += t->partitions[i].leader == id;
        }
    if (leaders)
        *leaders = l;
    return n;
}

int mk_repl_broker_remove(mk_repl_t *r, int32_t id, int64_t *replicas_out)
{
    mk_cluster_broker_t *b = mk_cluster_broker_find(r->c, id);
    if (!b)
        return MK_ERR_NOT_FOUND;
    if (b->retired)
        return MK_ERR_EXISTS;
    int64_t n = mk_repl_broker_replicas(r, id, NULL);
    if (replicas_out)
        *replicas_out = n;
    if (n > 0)
        return MK_ERR_STATE;
    /* Another broker of its AZ must stay in its cell (one replica per AZ). */
    bool other = false;
    for (int i = 0; i < mk_cluster_broker_count(r->c) && !other; i++) {
        mk_cluster_broker_t *o = mk_cluster_broker_at(r->c, i);
        other = o->id != id && !o->retired && o->cell == b->cell && strcmp(o->az, b->az) == 0;
    }
    if (!other)
        return MK_ERR_RANGE;
    if (b->running) {
        int rc = mk_repl_broker_shutdown(r, id);
        if (rc < 0)
            return rc;
    }
    /* The cluster's own partitions pinned to it (its health probe) go with it. */
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(r->c, &it)))
        if (mk_cluster_topic_internal(t->name) && t->partition_count == 1 &&
            t->partitions[0].replica_count == 1 && t->partitions[0].replicas[0].broker == id) {
            mk_cluster_topic_delete(r->c, t, NULL, NULL);
            it = 0; /* the map changed under the iterator */
        }
    return mk_cluster_broker_retire(r->c, id);
}

/* ================================================================== repair */

/* A replica with bad data from `from` on (repl.h): a leader hands over to
 * source first, then the replica truncates and fetches again. */
int mk_repl_replica_repair(mk_repl_t *r, mk_partition_t *p, int32_t broker, int64_t from, int32_t source)
{
    mk_replica_t *f = mk_cluster_partition_replica(p, broker);
    if (!f || !f->log || from < 0)
        return MK_ERR_NOT_FOUND;
    if (p->leader == broker) {
        mk_replica_t *s = source >= 0 && source != broker ? mk_cluster_partition_replica(p, source) : NULL;
        if (!s || !s->log || !s->in_isr || !broker_running(r, source))
            return MK_ERR_STATE;
        /* The source takes what it lacks of the leader's sound batches
         * (copies are checked), then leads: a controlled election. */
        bool ignored = false;
        do_round(r, p, s, -1, 0, NULL, &ignored);
        s->acked_leo = mk_log_end_offset(s->log);
        mk_warn("partition %s-%d: leader %d holds bad data from offset %lld: leadership moves to broker %d",
                p->topic->name, p->index, broker, (long long)from, source);
        lead(r, p, source);
    }
    if (f->in_isr)
        mk_info("partition %s-%d: broker %d leaves the ISR for repair", p->topic->name, p->index, broker);
    f->in_isr = false;
    f->acked_leo = MK_MIN(f->acked_leo, from);
    mk_warn("partition %s-%d: replica on broker %d truncates to offset %lld for repair and fetches the rest again",
            p->topic->name, p->index, broker, (long long)from);
    int rc = mk_log_truncate_to(f->log, from);
    if (rc < 0) {
        mk_error("partition %s-%d: repair truncation on broker %d failed: %s", p->topic->name, p->index, broker,
                 mk_strerror(rc));
        return rc;
    }
    f->copy_pending = false;
    schedule(r, p, f);
    mk_partition_hw_update(p);
    progress(r);
    return 0;
}

/* ===================================================================== tick */

static void tick_cb(uv_timer_t *t)
{
    mk_repl_t *r = t->data;
    uint64_t now = uv_now(r->loop);
    bool moved = false;
    /* Stages whose partition, replica or log went away meanwhile. */
    for (size_t k = r->nstages; k-- > 0;) {
        stage_t *st = &r->stages[k];
        mk_topic_t *tp = mk_cluster_topic_find_id(r->c, st->topic_id);
        mk_replica_t *f = mk_cluster_partition_replica(mk_cluster_topic_partition(tp, st->partition), st->broker);
        if (!f || f->log != st->log || !f->log || mk_log_end_offset(f->log) != st->base)
            stage_drop(r, st);
    }
    size_t it = 0;
    mk_topic_t *topic;
    while ((topic = mk_cluster_topic_next(r->c, &it))) {
        for (int32_t i = 0; i < topic->partition_count; i++) {
            mk_partition_t *p = &topic->partitions[i];
            if (p->leader < 0) {
                elect(r, p, -1);
                if (p->leader >= 0)
                    moved = true;
                continue;
            }
            if (!p->log)
                continue;
            if (barred(r, p, p->leader)) {
                /* A fenced leader hands over once another replica is in sync. */
                int32_t was = p->leader;
                move_leadership(r, p, mk_cluster_partition_replica(p, was), was);
                if (p->leader != was)
                    moved = true;
                if (!p->log)
                    continue;
            }
            int64_t leo_l = mk_log_end_offset(p->log);
            for (int32_t k = 0; k < p->replica_count; k++) {
                mk_replica_t *f = &p->replicas[k];
                if (f->broker == p->leader)
                    continue;
                if (!f->log) {
                    if (f->in_isr && mk_partition_isr_size(p) > 1) {
                        f->in_isr = false;
                        moved = true;
                    }
                    continue;
                }
                int64_t leo_f = mk_log_end_offset(f->log);
                /* A follower cut off by a net-partition fetches nothing: it
                 * is not caught up, whatever its log end says. */
                if (leo_f >= leo_l && !f->needs_truncate && !net_cut(r, p->leader, f->broker))
                    f->caught_up_ms = now;
                if (f->in_isr && fenced(r, f->broker) && mk_partition_isr_size(p) > 1) {
                    f->in_isr = false;
                    mk_warn("partition %s-%d: broker %d leaves the ISR (fenced)", topic->name, i, f->broker);
                    moved = true;
                }
                if (f->in_isr && now - f->caught_up_ms > (uint64_t)r->cfg.replica_lag_time_max_ms &&
                    leader_isolated(r, p, f)) {
                    /* The leader is on the partitioned side: in Kafka it could
                     * not shrink the ISR (the controller is out of reach) and
                     * the controller fences it; leadership moves to an in-sync
                     * replica on the other side. */
                    mk_warn("partition %s-%d: leader %d is cut off by a net-partition: leadership moves",
                            topic->name, i, p->leader);
                    elect(r, p, p->leader);
                    moved = true;
                    break;
                }
                if (f->in_isr && now - f->caught_up_ms > (uint64_t)r->cfg.replica_lag_time_max_ms) {
                    f->in_isr = false;
                    mk_warn("partition %s-%d: broker %d leaves the ISR (lagging)", topic->name, i, f->broker);
                    moved = true;
                }
                if (leo_f < leo_l || f->needs_truncate || !f->in_isr)
                    schedule(r, p, f);
            }
            if (mk_partition_hw_update(p))
                moved = true;
            /* Preferred leader back in sync: give it the lead again. */
            mk_replica_t *pref = &p->replicas[0];
            if (r->cfg.auto_leader_rebalance && pref->broker != p->leader && pref->in_isr && pref->log &&
                !fenced(r, pref->broker) &&
                !pref->needs_truncate && mk_log_end_offset(pref->log) >= leo_l &&
                broker_running(r, pref->broker) && p->leader >= 0 &&
                !mk_fault_net_isolated(mk_cluster_broker_az(r->c, pref->broker))) {
                mk_info("partition %s-%d: preferred leader %d is back", topic->name, i, pref->broker);
                set_leader(r, p, pref->broker);
                for (int32_t k = 0; k < p->replica_count; k++)
                    if (p->replicas[k].broker != pref->broker) {
                        p->replicas[k].needs_truncate = true;
                        schedule(r, p, &p->replicas[k]);
                    }
                moved = true;
            }
        }
    }
    moves_tick(r, &moved);
    if (moved)
        progress(r);
}

/* ============================================================ reassignment */

static move_t *move_find(mk_repl_t *r, const mk_partition_t *p)
{
    for (size_t i = 0; i < r->nmoves; i++)
        if (r->moves[i].partition == p->index && memcmp(r->moves[i].topic_id, p->topic->id, 16) == 0)
            return &r->moves[i];
    return NULL;
}

bool mk_repl_reassigning(mk_repl_t *r, const mk_partition_t *p) { return move_find(r, p) != NULL; }

size_t mk_repl_reassignments(const mk_repl_t *r, uint64_t *done)
{
    if (done)
        *done = r->moves_done;
    return r->nmoves;
}

static bool in_target(const move_t *m, int32_t broker)
{
    for (int32_t i = 0; i < m->n; i++)
        if (m->target[i] == broker)
            return true;
    return false;
}

int mk_repl_reassign(mk_repl_t *r, mk_partition_t *p, const int32_t *target, int32_t n)
{
    if (n < 1 || n > MK_CLUSTER_MAX_BROKERS)
        return MK_ERR_INVALID;
    if (move_find(r, p))
        return MK_ERR_EXISTS;
    for (int32_t i = 0; i < n; i++)
        if (!mk_cluster_broker_find(r->c, target[i]))
            return MK_ERR_INVALID;
    if (r->nmoves == r->moves_cap) {
        size_t cap = r->moves_cap ? r->moves_cap * 2 : 16;
        move_t *nm = mk_realloc(r->moves, cap * sizeof(move_t));
        if (!nm)
            return MK_ERR_NOMEM;
        r->moves = nm;
        r->moves_cap = cap;
    }
    move_t m = {.partition = p->index, .n = n, .norig = p->replica_count};
    memcpy(m.topic_id, p->topic->id, 16);
    memcpy(m.target, target, sizeof(int32_t) * (size_t)n);
    for (int32_t k = 0; k < p->replica_count && k < MK_CLUSTER_MAX_BROKERS; k++)
        m.orig[k] = p->replicas[k].broker;
    /* Adding: the target replicas first (the first becomes the preferred
     * leader), then the current ones that are leaving. */
    int32_t all[MK_CLUSTER_MAX_BROKERS];
    int32_t na = 0;
    for (int32_t i = 0; i < n; i++)
        all[na++] = target[i];
    for (int32_t k = 0; k < p->replica_count && na < MK_CLUSTER_MAX_BROKERS; k++)
        if (!in_target(&m, p->replicas[k].broker))
            all[na++] = p->replicas[k].broker;
    int rc = mk_cluster_partition_set_replicas(r->c, p, all, na);
    if (rc == MK_ERR_INVALID || rc == MK_ERR_NOMEM)
        return rc;
    r->moves[r->nmoves++] = m;
    mk_info("partition %s-%d: reassigning to %d replicas (first: broker %d)", p->topic->name, p->index, n,
            target[0]);
    for (int32_t k = 0; k < p->replica_count; k++)
        if (p->replicas[k].broker != p->leader)
            schedule(r, p, &p->replicas[k]);
    return 0;
}

/* One reassignment's next step; true when it is over (done or moot). */
static bool move_step(mk_repl_t *r, move_t *m, bool *moved)
{
    mk_partition_t *p = mk_cluster_topic_partition(mk_cluster_topic_find_id(r->c, m->topic_id), m->partition);
    if (!p)
        return true; /* the topic went */
    if (p->leader < 0 || !p->log)
        return false;
    int64_t leo = mk_log_end_offset(p->log);
    for (int32_t i = 0; i < m->n; i++) {
        mk_replica_t *rp = mk_cluster_partition_replica(p, m->target[i]);
        if (!rp || !rp->log || !rp->in_isr || rp->needs_truncate ||
            (rp->broker != p->leader && mk_log_end_offset(rp->log) < leo))
            return false;
    }
    if (!in_target(m, p->leader)) {
        /* Switch: the first target replica takes everything the leader has,
         * then leads (a controlled election, as at a broker's shutdown). */
        mk_replica_t *nl = mk_cluster_partition_replica(p, m->target[0]);
        bool ignored = false;
        do_round(r, p, nl, -1, 0, NULL, &ignored);
        nl->acked_leo = mk_log_end_offset(nl->log);
        if (nl->acked_leo < mk_log_end_offset(p->log))
            return false;
        mk_info("partition %s-%d: leadership moves to broker %d (reassignment)", p->topic->name, p->index,
                nl->broker);
        set_leader(r, p, nl->broker);
        nl->in_isr = true;
        mk_partition_hw_clamp(p);
    }
    /* Dropping: only the target replicas stay. */
    int rc = mk_cluster_partition_set_replicas(r->c, p, m->target, m->n);
    if (rc == MK_ERR_INVALID || rc == MK_ERR_NOMEM)
        return false;
    for (int32_t k = 0; k < p->replica_count; k++)
        if (p->replicas[k].broker != p->leader)
            schedule(r, p, &p->replicas[k]);
    mk_partition_hw_update(p);
    mk_info("partition %s-%d: reassignment done", p->topic->name, p->index);
    r->moves_done++;
    *moved = true;
    return true;
}

static void moves_tick(mk_repl_t *r, bool *moved)
{
    size_t keep = 0;
    for (size_t i = 0; i < r->nmoves; i++) {
        move_t m = r->moves[i];
        if (!move_step(r, &m, moved))
            r->moves[keep++] = m;
    }
    r->nmoves = keep;
}

/* ================================================================ lifecycle */

static void partition_init(mk_repl_t *r, mk_partition_t *p, bool fresh)
{
    if (p->leader < 0 || !p->log) {
        elect(r, p, -1);
        return;
    }
    if (mk_log_latest_epoch(p->log) < p->leader_epoch)
        mk_log_epoch_begin(p->log, p->leader_epoch);
    int64_t leo = mk_log_end_offset(p->log);
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *f = &p->replicas[k];
        f->caught_up_ms = uv_now(r->loop);
        if (f->broker == p->leader) {
            f->in_isr = true;
            continue;
        }
        if (!f->log) {
            f->in_isr = false;
            continue;
        }
        if (!fresh) {
            f->needs_truncate = true;
            reconcile(p, f);
        }
        f->acked_leo = mk_log_end_offset(f->log);
        f->in_isr = f->acked_leo == leo;
        if (!f->in_isr)
            schedule(r, p, f);
    }
    mk_partition_hw_reset(p);
}

void mk_repl_start_all(mk_repl_t *r)
{
    size_t it = 0;
    mk_topic_t *t;
    while ((t = mk_cluster_topic_next(r->c, &it)))
        for (int32_t i = 0; i < t->partition_count; i++)
            partition_init(r, &t->partitions[i], false);
}

void mk_repl_topic_created(mk_repl_t *r, mk_topic_t *t)
{
    for (int32_t i = 0; i < t->partition_count; i++)
        partition_init(r, &t->partitions[i], true);
}

void mk_repl_partitions_added(mk_repl_t *r, mk_topic_t *t, int32_t from)
{
    for (int32_t i = from; i < t->partition_count; i++)
        partition_init(r, &t->partitions[i], true);
    progress(r);
}

void mk_repl_set_config(mk_repl_t *r, const mk_repl_config_t *cfg) { r->cfg = *cfg; }

/* ============================================= admin: elections, records */

int mk_repl_elect(mk_repl_t *r, mk_partition_t *p, bool unclean)
{
    if (!unclean) {
        mk_replica_t *pref = &p->replicas[0];
        if (pref->broker == p->leader && p->log)
            return MK_ERR_EXISTS;
        if (!pref->in_isr || !pref->log || pref->needs_truncate || !broker_running(r, pref->broker) ||
            fenced(r, pref->broker))
            return MK_ERR_STATE;
        /* A controlled election: the preferred replica takes everything the
         * leader has first, so no acknowledged record is lost. */
        if (p->log) {
            bool moved = false;
            do_round(r, p, pref, -1, 0, NULL, &moved);
            pref->acked_leo = mk_log_end_offset(pref->log);
            if (pref->acked_leo < mk_log_end_offset(p->log))
                return MK_ERR_STATE;
        }
        mk_info("partition %s-%d: preferred leader %d elected (ElectLeaders)", p->topic->name, p->index,
                pref->broker);
        set_leader(r, p, pref->broker);
        mk_partition_hw_clamp(p);
        for (int32_t k = 0; k < p->replica_count; k++)
            if (p->replicas[k].broker != pref->broker) {
                p->replicas[k].needs_truncate = true;
                schedule(r, p, &p->replicas[k]);
            }
        progress(r);
        return 0;
    }
    /* Unclean: only for a partition without a leader; the ISR first, then
     * any replica that is running (records it lacks are lost, as in Kafka). */
    if (p->leader >= 0 && p->log)
        return MK_ERR_EXISTS;
    elect(r, p, -1);
    for (int32_t k = 0; k < p->replica_count && p->leader < 0; k++) {
        mk_replica_t *rp = &p->replicas[k];
        if (rp->log && broker_running(r, rp->broker) && !fenced(r, rp->broker)) {
            mk_warn("partition %s-%d: unclean election of broker %d (ElectLeaders)", p->topic->name, p->index,
                    rp->broker);
            rp->in_isr = true;
            set_leader(r, p, rp->broker);
            mk_partition_hw_clamp(p);
            for (int32_t j = 0; j < p->replica_count; j++)
                if (p->replicas[j].broker != rp->broker) {
                    p->replicas[j].needs_truncate = true;
                    schedule(r, p, &p->replicas[j]);
                }
        }
    }
    if (p->leader < 0)
        return MK_ERR_STATE;
    progress(r);
    return 0;
}

int mk_repl_delete_records(mk_repl_t *r, mk_partition_t *p, int64_t offset, int64_t *low_watermark)
{
    if (!p->log || p->leader < 0)
        return MK_ERR_STATE;
    if (offset < 0 || offset > p->hw)
        return MK_ERR_RANGE;
    int rc = mk_log_delete_records(p->log, offset);
    if (rc < 0)
        return rc;
    /* Followers that have the records move their start now (they are in
     * this process); the others follow on their next round (do_round). */
    int64_t low = mk_log_start_offset(p->log);
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *f = &p->replicas[k];
        if (f->broker == p->leader || !f->log)
            continue;
        if (mk_log_end_offset(f->log) >= offset && mk_log_start_offset(f->log) < offset)
            mk_log_delete_records(f->log, offset);
        if (f->in_isr)
            low = MK_MIN(low, mk_log_start_offset(f->log));
        schedule(r, p, f);
    }
    mk_info("partition %s-%d: records below %lld deleted (DeleteRecords)", p->topic->name, p->index,
            (long long)offset);
    if (low_watermark)
        *low_watermark = low;
    progress(r);
    return 0;
}

/* ===================================================== admin: reassignment */

int mk_repl_reassign_cancel(mk_repl_t *r, mk_partition_t *p)
{
    move_t *m = move_find(r, p);
    if (!m)
        return MK_ERR_NOT_FOUND;
    move_t mv = *m;
    *m = r->moves[--r->nmoves];
    /* Back to the replicas it had: a leader among the added ones hands the
     * lead back first (controlled, as a reassignment's switch). */
    bool leader_kept = false;
    for (int32_t i = 0; i < mv.norig; i++)
        leader_kept |= mv.orig[i] == p->leader;
    if (!leader_kept && p->leader >= 0) {
        for (int32_t i = 0; i < mv.norig; i++) {
            mk_replica_t *o = mk_cluster_partition_replica(p, mv.orig[i]);
            if (!o || !o->log || !o->in_isr || !broker_running(r, o->broker))
                continue;
            bool moved = false;
            do_round(r, p, o, -1, 0, NULL, &moved);
            o->acked_leo = mk_log_end_offset(o->log);
            if (p->log && o->acked_leo < mk_log_end_offset(p->log))
                continue;
            set_leader(r, p, o->broker);
            mk_partition_hw_clamp(p);
            leader_kept = true;
            break;
        }
    }
    if (!leader_kept && p->leader >= 0) {
        r->moves[r->nmoves++] = mv; /* cannot go back safely now: it goes on */
        return MK_ERR_STATE;
    }
    int rc = mk_cluster_partition_set_replicas(r->c, p, mv.orig, mv.norig);
    for (int32_t k = 0; k < p->replica_count; k++)
        if (p->replicas[k].broker != p->leader)
            schedule(r, p, &p->replicas[k]);
    mk_partition_hw_update(p);
    mk_info("partition %s-%d: reassignment cancelled", p->topic->name, p->index);
    progress(r);
    return rc == MK_ERR_INVALID || rc == MK_ERR_NOMEM ? rc : 0;
}

bool mk_repl_reassign_info(mk_repl_t *r, const mk_partition_t *p, int32_t *adding, int32_t *nadding,
                           int32_t *removing, int32_t *nremoving)
{
    move_t *m = move_find(r, p);
    if (!m)
        return false;
    *nadding = *nremoving = 0;
    for (int32_t i = 0; i < m->n; i++) {
        bool was = false;
        for (int32_t j = 0; j < m->norig; j++)
            was |= m->orig[j] == m->target[i];
        if (!was)
            adding[(*nadding)++] = m->target[i];
    }
    for (int32_t j = 0; j < m->norig; j++)
        if (!in_target(m, m->orig[j]))
            removing[(*nremoving)++] = m->orig[j];
    return true;
}

/* The write path's appended hook: the leader appended to p, so each
 * follower gets a round (the write path moves the HW afterwards). */
static void observe_appended(void *arg, mk_partition_t *p, const uint8_t *set, const mk_batch_view_t *v, int n)
{
    mk_repl_t *r = arg;
    /* The views tile the stored bytes (mk_log_append_views refuses others). */
    appended_t ap = {NULL, 0, -1};
    if (n > 0) {
        ap.set = set + v[0].pos;
        ap.len = (size_t)(v[n - 1].pos + v[n - 1].size - v[0].pos);
        ap.base = v[0].hdr.baseOffset;
    }
    bool moved = false;
    for (int32_t k = 0; k < p->replica_count; k++) {
        mk_replica_t *f = &p->replicas[k];
        if (f->broker == p->leader)
            continue;
        /* A round without latency (same AZ, or cross.az.latency.ms 0) runs
         * now, inside the append: the write path then finds the HW already
         * moved and answers an acks=all produce at once.  Deferred to the
         * next loop turn (as before), each such produce parked, waited a
         * turn for its rounds and another for its wake, while its
         * connection held every later request (one request at a time per
         * connection, as in Kafka): small lock-step steps that made 0 ms
         * slower than a little latency, where the client packs more into
         * each request.  Not while rounds run (their own appends), nor
         * while a round is already queued for f (it keeps the order). */
        if (!r->in_rounds && !f->copy_pending && f->log && p->log && !cross_az_delayed(r, p, f) &&
            broker_running(r, f->broker) && ap.len <= MK_REPL_INLINE_BYTES) {
            r->copy_rounds++;
            do_round(r, p, f, -1, 0, &ap, &moved);
        } else {
            schedule(r, p, f);
        }
    }
    /* moved: the write path moves the HW and wakes waiters right after. */
}

int mk_repl_new(uv_loop_t *loop, mk_cluster_t *c, const mk_repl_config_t *cfg, mk_partition_writer_t *writer,
                mk_repl_t **out)
{
    mk_repl_t *r = mk_calloc(1, sizeof(*r));
    if (!r)
        return MK_ERR_NOMEM;
    r->loop = loop;
    r->c = c;
    r->cfg = *cfg;
    r->writer = writer;
    mk_partition_observer_t obs = {.name = "repl", .appended = observe_appended, .arg = r};
    if (mk_partition_writer_observe(writer, &obs) < 0) {
        mk_free(r);
        return MK_ERR_NOMEM;
    }
    mk_buf_init(&r->scratch);
    r->idle = mk_malloc(sizeof(uv_idle_t));
    r->timer = mk_malloc(sizeof(uv_timer_t));
    r->tick = mk_malloc(sizeof(uv_timer_t));
    r->prep = mk_malloc(sizeof(uv_prepare_t));
    if (!r->idle || !r->timer || !r->tick || !r->prep) {
        mk_free(r->idle);
        mk_free(r->timer);
        mk_free(r->tick);
        mk_free(r->prep);
        mk_free(r);
        return MK_ERR_NOMEM;
    }
    uv_idle_init(loop, r->idle);
    uv_timer_init(loop, r->timer);
    uv_timer_init(loop, r->tick);
    uv_prepare_init(loop, r->prep);
    r->idle->data = r->timer->data = r->tick->data = r->prep->data = r;
    uv_timer_start(r->tick, tick_cb, TICK_MS, TICK_MS);
    uv_prepare_start(r->prep, prep_cb);
    uv_unref((uv_handle_t *)r->prep); /* never keeps the loop alive */
    mk_log_io_set_offline_cb(storage_offline_cb, r);
    *out = r;
    return 0;
}

static void handle_free_cb(uv_handle_t *h) { mk_free(h); }

void mk_repl_free(mk_repl_t *r)
{
    if (!r)
        return;
    mk_log_io_set_offline_cb(NULL, NULL);
    uv_close((uv_handle_t *)r->idle, handle_free_cb);
    uv_close((uv_handle_t *)r->timer, handle_free_cb);
    uv_close((uv_handle_t *)r->tick, handle_free_cb);
    uv_close((uv_handle_t *)r->prep, handle_free_cb);
    mk_free(r->rounds);
    mk_free(r->moves);
    mk_buf_free(&r->scratch);
    while (r->nstages)
        stage_drop(r, &r->stages[r->nstages - 1]);
    mk_free(r->stages);
    for (size_t i = 0; i < r->nspare; i++)
        mk_buf_free(&r->spare[i]);
    mk_free(r);
}
