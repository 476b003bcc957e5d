/*
 * txn.c -- producer state (idempotence, open and aborted transactions per
 * partition) and the transaction coordinator.
 *
 * Producer state is derived data: it is rebuilt from the leader's log the
 * first time a partition needs it, and again whenever the partition's leader
 * epoch has moved since (a new leader's log is the truth).  Rebuilding reads
 * batch headers only, plus the one control record of each marker.
 *
 * Per producer id and partition we keep the epoch, the last 5 batches
 * (first/last sequence and offset), the first offset of its open transaction
 * (-1 if none).  Per partition: the aborted transactions
 * {producer id, first offset, marker offset}, for read_committed fetches.
 *
 * Coordinator state per transactional id lives in memory and in meta's kv
 * store under "txn/<id>" as one line:
 *     v1 <pid> <epoch> <timeout_ms> <state> <start_ms> <topic>/<partition>...
 *        @<hex group>:<topic>:<partition>:<offset>:<leader epoch>:<hex metadata|->...
 * (the @ tokens are offsets sent to the transaction, so a commit completed
 * after a restart still applies them).
 * Producer ids come from blocks of 1000 reserved in kv "producer.id.next",
 * so ids are never reused across restarts.  A transaction found in a
 * Prepare state at start has its markers written again (they are
 * idempotent for readers: a second marker finds nothing open).
 */
#define MK_PARTITION_FIELDS
#include "txn/txn.h"
#include "meta/meta.h"
#include "partition/partition.h"
#include "proto/proto.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECENT 5
#define PID_BLOCK 1000
#define MAX_TIMEOUT_MS 900000

/* ========================================================== producer state */

typedef struct seqent_s {
    int32_t first_seq, last_seq;
    int64_t first_off, last_off;
} seqent_t;

typedef struct prod_s {
    int64_t pid;
    int16_t epoch;
    int n;
    seqent_t recent[RECENT];
    int64_t txn_first;   /* first offset of the open transaction, -1 */
    int64_t last_ts;
} prod_t;

typedef struct aborted_s {
    int64_t pid, first, last;
} aborted_t;

/* A batch appended while the state was loading: folded in once it is. */
typedef struct pending_s {
    mk_batch_hdr_t hdr;
    int marker;          /* control batches: 0 abort, 1 commit; else -1 */
} pending_t;

typedef struct load_s load_t;
typedef struct loadq_s loadq_t;

/* Producer state of one partition: the folded part (producers, aborted),
 * then whether it is built, and the load in flight. */
typedef struct pstate_s {
    mk_map_t producers;  /* "<pid>" -> prod_t* */
    aborted_t *aborted;
    int naborted, cap;
    int32_t built_epoch;
    bool built;
    load_t *load;        /* waiting in its loop's queue or on the threadpool, or NULL */
    pending_t *pending;  /* owned: appended since the load's cursor was opened */
    int npending, pcap;
} pstate_t;

enum { T_EMPTY, T_ONGOING, T_PREPARE_COMMIT, T_PREPARE_ABORT, T_COMPLETE_COMMIT, T_COMPLETE_ABORT };
static const char *tstate_names[] = {"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit",
                                     "CompleteAbort"};

typedef struct tpart_s {
    char *topic;
    int32_t partition;
} tpart_t;

typedef struct toffs_s {
    char *group;
    char *topic;
    char *metadata;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
} toffs_t;

typedef struct tstate_s {
    char *tid;
    int64_t pid;
    int16_t epoch;
    int state;
    int32_t timeout_ms;
    int64_t start_ms;
    tpart_t *parts;
    int nparts, pcap;
    toffs_t *offs;
    int noffs, ocap;
} tstate_t;

struct mk_txn_s {
    uv_loop_t *loop;
    mk_cluster_t *c;
    mk_group_coord_t *groups;
    mk_meta_t *meta;
    mk_partition_writer_t *writer;   /* borrowed: markers go through it; txn observes it */
    mk_map_t partitions;   /* "<topic id hex>-<p>" -> pstate_t* */
    mk_map_t tids;         /* tid -> tstate_t* */
    int64_t next_pid, pid_limit;
    uv_timer_t *tick;      /* owned */
};

/* The partitions map's key of p, "<topic id hex>-<index>".  Every Fetch
 * asks for it once per partition (mk_txn_lso), so it is built by hand: as
 * seventeen snprintf calls it was a quarter of the loop's time with 1000
 * partitions (issue 16). */
static void pkey(const mk_partition_t *p, char buf[64])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        buf[2 * i] = hx[p->topic->id[i] >> 4];
        buf[2 * i + 1] = hx[p->topic->id[i] & 15];
    }
    char *o = buf + 32;
    *o++ = '-';
    uint32_t v = (uint32_t)p->index;
    if (p->index < 0) {
        *o++ = '-';
        v = 0u - v;
    }
    char digits[10];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd)
        *o++ = digits[--nd];
    *o = 0;
}

static void pstate_clear(pstate_t *ps)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&ps->producers, &it, &k, &v))
        mk_free(v);
    mk_map_free(&ps->producers);
    mk_map_init(&ps->producers);
    mk_free(ps->aborted);
    ps->aborted = NULL;
    ps->naborted = ps->cap = 0;
    ps->built = false;
}

static prod_t *prod_get(pstate_t *ps, int64_t pid, bool create)
{
    char k[32];
    snprintf(k, sizeof(k), "%" PRId64, pid);
    prod_t *pr = mk_map_get(&ps->producers, k);
    if (pr || !create)
        return pr;
    pr = mk_calloc(1, sizeof(*pr));
    if (!pr)
        return NULL;
    pr->pid = pid;
    pr->epoch = -1;
    pr->txn_first = -1;
    if (mk_map_put(&ps->producers, k, pr) < 0) {
        mk_free(pr);
        return NULL;
    }
    return pr;
}

static int marker_type_cb(const mk_record_t *rec, void *arg)
{
    /* Control record key: version int16, type int16 (0 abort, 1 commit). */
    if (rec->key && rec->key_len >= 4)
        *(int *)arg = (rec->key[2] << 8) | rec->key[3];
    return 1;
}

/* The type of the marker in control batch b (n bytes): 0 abort, 1
 * commit, -1 unknown.  Pure: any thread. */
static int marker_type(const uint8_t *b, size_t n)
{
    int type = -1;
    mk_buf_t scratch;
    mk_buf_init(&scratch);
    mk_batch_records_foreach(b, n, &scratch, 0, marker_type_cb, &type);
    mk_buf_free(&scratch);
    return type;
}

/* Fold one batch (its parsed header; marker = its marker type for a
 * control batch) into the partition's producer state.  Touches only ps:
 * the loader runs it on a worker thread over its own state. */
static void apply_hdr(pstate_t *ps, const mk_batch_hdr_t *hp, int marker)
{
    const mk_batch_hdr_t h = *hp;
    if (h.producerId < 0)
        return;
    prod_t *pr = prod_get(ps, h.producerId, true);
    if (!pr)
        return;
    if (mk_batch_hdr_is_control(&h)) {
        if (pr->txn_first >= 0 && marker == 0) {
            if (ps->naborted == ps->cap) {
                int cap = ps->cap ? ps->cap * 2 : 16;
                aborted_t *a = mk_realloc(ps->aborted, sizeof(aborted_t) * (size_t)cap);
                if (!a)
                    return;
                ps->aborted = a;
                ps->cap = cap;
            }
            ps->aborted[ps->naborted++] = (aborted_t){h.producerId, pr->txn_first, h.baseOffset};
        }
        pr->txn_first = -1;
        if (h.producerEpoch > pr->epoch) {
            pr->epoch = h.producerEpoch;
            pr->n = 0;
        }
        return;
    }
    if (h.producerEpoch != pr->epoch) {
        pr->epoch = h.producerEpoch;
        pr->n = 0;
    }
    seqent_t e = {h.baseSequence, (int32_t)((uint32_t)h.baseSequence + (uint32_t)h.lastOffsetDelta) & INT32_MAX,
                  h.baseOffset, h.baseOffset + h.lastOffsetDelta};
    if (pr->n == RECENT) {
        memmove(&pr->recent[0], &pr->recent[1], sizeof(seqent_t) * (RECENT - 1));
        pr->n--;
    }
    pr->recent[pr->n++] = e;
    if (mk_batch_hdr_is_transactional(&h) && pr->txn_first < 0)
        pr->txn_first = h.baseOffset;
    pr->last_ts = h.maxTimestamp;
}

/* Fold one batch as appended by the leader (bytes at b, n of them). */
static void apply_batch(pstate_t *ps, const mk_batch_hdr_t *h, const uint8_t *b, size_t n)
{
    apply_hdr(ps, h, h->producerId >= 0 && mk_batch_hdr_is_control(h) ? marker_type(b, n) : -1);
}

/* ------------------------------------------------------ loading the state */

/* Producer state is rebuilt from the leader's log on the threadpool (STYLE
 * 11: a partition log can be large), through a cursor opened on the loop:
 *   - the worker folds every batch header below the cursor's end into its
 *     own pstate (and reads the body of control batches for their type);
 *   - batches appended meanwhile are queued in ps->pending by the appended
 *     hook (those appended while the load waited for a slot are dropped
 *     when its cursor opens: the cursor sees them);
 *   - back on the loop, if the partition still has the leader epoch the
 *     load began under, the loaded state is installed, the pending batches
 *     are folded in, and the write path's progress callback wakes the
 *     requests that waited (a Produce parks on MK_PARTITION_LOADING);
 *     otherwise the result is dropped and the next use starts over. */
struct load_s {
    uv_work_t req;
    mk_txn_t *t;               /* NULL once the txn module was freed */
    loadq_t *q;                /* the loop's queue: waiting in it (cur NULL) or holding one of its slots */
    load_t *prev, *next;       /* in q's waiting list while cur is NULL */
    char key[64];
    uint8_t topic_id[16];
    int32_t partition;
    int32_t epoch;             /* the leader epoch it was started under */
    mk_log_cursor_t *cur;      /* owned; opened when the load starts */
    bool waiting;              /* in q's list, not started yet */
    pstate_t st;               /* built by the worker */
    int rc;
};

/* Worker thread: fold the cursor's batches into l->st. */
static void load_work_cb(uv_work_t *req)
{
    load_t *l = req->data;
    mk_batch_view_t v;
    mk_buf_t body;
    mk_buf_init(&body);
    int rc;
    while ((rc = mk_log_cursor_next(l->cur, &v)) == 1) {
        int marker = -1;
        if (v.hdr.producerId >= 0 && mk_batch_hdr_is_control(&v.hdr)) {
            if ((rc = mk_log_cursor_read(l->cur, &v, &body)) < 0)
                break;
            marker = marker_type(body.data, body.len);
        }
        apply_hdr(&l->st, &v.hdr, marker);
    }
    mk_buf_free(&body);
    l->rc = rc < 0 ? rc : 0;
}

/* Replace to's folded state with from's (from is left empty). */
static void pstate_move(pstate_t *to, pstate_t *from)
{
    pstate_clear(to);
    mk_map_free(&to->producers);
    to->producers = from->producers;
    to->aborted = from->aborted;
    to->naborted = from->naborted;
    to->cap = from->cap;
    mk_map_init(&from->producers);
    from->aborted = NULL;
    from->naborted = from->cap = 0;
}

/* ------------------------------------------------------ the load queue
 *
 * A started load holds a dup()ed descriptor of every .log segment of its
 * partition (its cursor) until its after-work callback.  A new broker's
 * first fetches and produces ask for the state of every partition it leads
 * at once -- about 1,000 loads with 1,500 partitions, enough to reach a
 * 1024 descriptor limit alone (issue 16) -- so each loop lets at most
 * LOAD_INFLIGHT of them be started; the others wait in the loop's FIFO
 * without a cursor and open it when their turn comes (the same scheme as
 * log/'s flush queue, see log.c).  A waiting load checks then that its
 * partition still exists, has a log and the leader epoch it was asked
 * under; if not it is dropped and the parked requests re-check (starting a
 * load for the new epoch if there is one).  A load that cannot start (no
 * descriptor, no memory) goes back to the head of the queue,
 * which stalls until a load ends or the next tick: it is retried, not lost.
 * mk_txn_free() takes its waiting loads out.  The queue is per loop (the
 * embedding API runs brokers' loops on other threads): touched by its
 * loop's thread only, the lock guards just the list of queues; it exists
 * while it holds or runs something. */

#define LOAD_INFLIGHT 4
#define LOAD_RETRY 1 /* load_open(): could not start now, try again later */

struct loadq_s {
    mk_per_loop_t link;        /* on loadqs, by loop */
    size_t inflight;           /* loads of this loop on the threadpool */
    bool stalled;              /* the head could not start: wait for an end or a tick */
    int64_t warned_ms;         /* the last "cannot start" warning (one per 10 s) */
    load_t *head, *tail;       /* waiting loads, oldest first */
};

static mk_per_loop_t *loadqs;

/* loop's queue; created when missing if create (NULL on no memory). */
static loadq_t *loadq_find(uv_loop_t *loop, bool create)
{
    return mk_per_loop_get(&loadqs, loop, create ? sizeof(loadq_t) : 0);
}

/* Frees q when nothing runs or waits in it any more. */
static void loadq_release(loadq_t *q)
{
    if (!q->inflight && !q->head)
        mk_per_loop_free(&loadqs, q);
}

static void loadq_push(loadq_t *q, load_t *l, bool front)
{
    assert(!l->waiting && !l->cur);
    l->waiting = true;
    if (front) {
        l->prev = NULL;
        l->next = q->head;
        if (q->head)
            q->head->prev = l;
        else
            q->tail = l;
        q->head = l;
    } else {
        l->next = NULL;
        l->prev = q->tail;
        if (q->tail)
            q->tail->next = l;
        else
            q->head = l;
        q->tail = l;
    }
}

static void loadq_remove(load_t *l)
{
    loadq_t *q = l->q;
    assert(l->waiting);
    if (l->prev)
        l->prev->next = l->next;
    else
        q->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        q->tail = l->prev;
    l->prev = l->next = NULL;
    l->waiting = false;
}

static void load_free(load_t *l)
{
    if (l->waiting)
        loadq_remove(l);
    pstate_clear(&l->st);
    mk_map_free(&l->st.producers);
    mk_log_cursor_close(l->cur);
    mk_free(l);
}

static void load_after_cb(uv_work_t *req, int status);

/* Opens l's cursor on its partition's log and hands l to the threadpool:
 * 0 (started; the caller counts the slot), LOAD_RETRY (nothing held, try
 * later), or an error to drop the load: MK_ERR_NOT_FOUND (the partition is
 * gone, has no log or a new leader epoch), MK_ERR_IO (its log failed),
 * MK_ERR_AGAIN (its disk is held by an injected stall).  Loop thread. */
static int load_open(load_t *l)
{
    mk_txn_t *t = l->t;
    pstate_t *ps = mk_map_get(&t->partitions, l->key);
    mk_topic_t *topic = mk_cluster_topic_find_id(t->c, l->topic_id);
    mk_partition_t *p = mk_cluster_topic_partition(topic, l->partition);
    if (!ps || ps->load != l || !p || !p->log || p->leader_epoch != l->epoch)
        return MK_ERR_NOT_FOUND;
    int rc = mk_log_cursor_open(p->log, &l->cur);
    if (rc == MK_ERR_IO || rc == MK_ERR_AGAIN)
        return rc; /* the log failed, or its disk is held: dropped as before queueing existed */
    const char *why = rc < 0 ? mk_strerror(rc) : NULL;
    int urc = rc < 0 ? 0 : uv_queue_work(t->loop, &l->req, load_work_cb, load_after_cb);
    if (urc) {
        why = uv_strerror(urc);
        mk_log_cursor_close(l->cur);
        l->cur = NULL;
    }
    if (why) {
        int64_t now = mk_now_ms();
        if (now - l->q->warned_ms >= 10000) {
            l->q->warned_ms = now;
            mk_warn("producer state of %s-%d: cannot start loading, retrying: %s", topic->name, l->partition, why);
        }
        return LOAD_RETRY;
    }
    ps->npending = 0; /* the cursor sees everything appended until now */
    return 0;
}

/* Gives the loop's load slots to waiting loads, oldest first.  Loop thread. */
static void loadq_run(loadq_t *q)
{
    while (q->inflight < LOAD_INFLIGHT && q->head && !q->stalled) {
        load_t *l = q->head;
        loadq_remove(l);
        int rc = load_open(l);
        if (rc == 0) {
            q->inflight++;
            continue;
        }
        if (rc == LOAD_RETRY) {
            loadq_push(q, l, true);
            q->stalled = true;
            break;
        }
        /* Dropped: its partition moved on while it waited (then the parked
         * requests re-check, starting a load for the new epoch), or its
         * log failed or is held (they wait for the next progress, as a
         * load that could not start always did: waking them now would
         * queue it again behind the others and loop here). */
        mk_txn_t *t = l->t;
        pstate_t *ps = mk_map_get(&t->partitions, l->key);
        if (ps && ps->load == l) {
            ps->load = NULL;
            mk_free(ps->pending);
            ps->pending = NULL;
            ps->npending = ps->pcap = 0;
        }
        load_free(l);
        if (rc == MK_ERR_NOT_FOUND)
            mk_partition_writer_progress(t->writer);
    }
}

/* The txn tick: a stalled queue tries again. */
static void loadq_kick(uv_loop_t *loop)
{
    loadq_t *q = loadq_find(loop, false);
    if (!q || !q->stalled)
        return;
    q->stalled = false;
    loadq_run(q);
    loadq_release(q);
}

/* A started load ended: install its state, or drop it. */
static void load_finish(load_t *l, int status)
{
    mk_txn_t *t = l->t;
    pstate_t *ps = t ? mk_map_get(&t->partitions, l->key) : NULL;
    if (!ps || ps->load != l) {
        load_free(l);
        return;
    }
    ps->load = NULL;
    mk_topic_t *topic = mk_cluster_topic_find_id(t->c, l->topic_id);
    mk_partition_t *p = mk_cluster_topic_partition(topic, l->partition);
    if (status == 0 && l->rc == 0 && p && p->log && p->leader_epoch == l->epoch) {
        pstate_move(ps, &l->st);
        for (int i = 0; i < ps->npending; i++)
            apply_hdr(ps, &ps->pending[i].hdr, ps->pending[i].marker);
        ps->built = true;
        ps->built_epoch = l->epoch;
    } else if (l->rc < 0) {
        mk_error("producer state of %s-%d: the log could not be read: %s", topic ? topic->name : "?", l->partition,
                 mk_strerror(l->rc));
    }
    mk_free(ps->pending);
    ps->pending = NULL;
    ps->npending = ps->pcap = 0;
    load_free(l);
    /* Requests parked on the load re-check (and start it again if the
     * epoch moved meanwhile). */
    mk_partition_writer_progress(t->writer);
}

/* Loop thread: the slot goes to the next waiting load. */
static void load_after_cb(uv_work_t *req, int status)
{
    load_t *l = req->data;
    loadq_t *q = l->q;
    assert(q->inflight > 0);
    q->inflight--;
    q->stalled = false; /* descriptors were just given back */
    load_finish(l, status);
    loadq_run(q);
    loadq_release(q);
}

/* Start loading ps from p's log now if the loop has a free slot, else
 * queue the load.  Never wakes parked requests itself (its callers are on
 * the write path).  Loop thread. */
static void load_start(mk_txn_t *t, pstate_t *ps, mk_partition_t *p, const char *key)
{
    load_t *l = mk_calloc(1, sizeof(*l));
    loadq_t *q = l ? loadq_find(t->loop, true) : NULL;
    if (!q) {
        mk_free(l);
        return;
    }
    mk_map_init(&l->st.producers);
    snprintf(l->key, sizeof(l->key), "%s", key);
    memcpy(l->topic_id, p->topic->id, 16);
    l->partition = p->index;
    l->epoch = p->leader_epoch;
    l->t = t;
    l->q = q;
    l->req.data = l;
    pstate_clear(ps);
    ps->npending = 0;
    ps->load = l;
    if (q->inflight < LOAD_INFLIGHT && !q->head && !q->stalled) {
        int rc = load_open(l);
        if (rc == 0) {
            q->inflight++;
            return;
        }
        if (rc != LOAD_RETRY) {
            ps->load = NULL;
            load_free(l);
            loadq_release(q);
            return;
        }
        q->stalled = true;
    }
    loadq_push(q, l, false);
}

/* The partition's state when it is built for the current leader epoch;
 * otherwise NULL, with a load started unless one is in flight. */
static pstate_t *pstate(mk_txn_t *t, mk_partition_t *p)
{
    char k[64];
    pkey(p, k);
    pstate_t *ps = mk_map_get(&t->partitions, k);
    if (!ps) {
        ps = mk_calloc(1, sizeof(*ps));
        if (!ps)
            return NULL;
        mk_map_init(&ps->producers);
        if (mk_map_put(&t->partitions, k, ps) < 0) {
            mk_free(ps);
            return NULL;
        }
    }
    if (ps->built && ps->built_epoch == p->leader_epoch)
        return ps;
    if (!ps->load && p->log)
        load_start(t, ps, p, k);
    return NULL;
}

bool mk_txn_ready(mk_txn_t *t, mk_partition_t *p) { return pstate(t, p) != NULL; }

/* The write path's check hook: a client batch of producer h->producerId
 * before it is appended (see mk_partition_observer_t.check). */
static int observe_check(void *arg, mk_partition_t *p, const mk_batch_hdr_t *h, int64_t *dup_offset)
{
    mk_txn_t *t = arg;
    if (h->producerId < 0)
        return 0;
    pstate_t *ps = pstate(t, p);
    if (!ps)
        return MK_PARTITION_LOADING;
    prod_t *pr = prod_get(ps, h->producerId, false);
    if (pr && h->producerEpoch < pr->epoch)
        return MK_KERR_INVALID_PRODUCER_EPOCH; /* fenced (a newer epoch wrote here) */
    if (!pr || pr->n == 0) {
        /* A producer new to this partition (or whose state retention
         * removed) must start at sequence 0. */
        return h->baseSequence == 0 || !pr ? 0 : MK_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    if (h->producerEpoch > pr->epoch)
        return h->baseSequence == 0 ? 0 : MK_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    int32_t last_seq = (int32_t)((uint32_t)h->baseSequence + (uint32_t)h->lastOffsetDelta) & INT32_MAX;
    for (int i = 0; i < pr->n; i++)
        if (pr->recent[i].first_seq == h->baseSequence && pr->recent[i].last_seq == last_seq) {
            *dup_offset = pr->recent[i].first_off;
            return MK_PARTITION_DUPLICATE;
        }
    int32_t expected = pr->recent[pr->n - 1].last_seq == INT32_MAX ? 0 : pr->recent[pr->n - 1].last_seq + 1;
    return h->baseSequence == expected ? 0 : MK_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

/* The write path's appended hook: fold the batches just appended (their
 * headers as the append left them) into the producer state. */
static void observe_appended(void *arg, mk_partition_t *p, const uint8_t *set, const mk_batch_view_t *v, int n)
{
    mk_txn_t *t = arg;
    char k[64];
    pkey(p, k);
    pstate_t *ps = mk_map_get(&t->partitions, k);
    if (ps && ps->built && ps->built_epoch == p->leader_epoch) {
        for (int i = 0; i < n; i++)
            apply_batch(ps, &v[i].hdr, set + v[i].pos, v[i].size);
        return;
    }
    if (!ps || !ps->load || ps->load->waiting)
        return; /* built from the log (which has these batches) when first needed or started */
    /* Loading: the cursor does not see these; fold them in afterwards. */
    for (int i = 0; i < n; i++) {
        if (v[i].hdr.producerId < 0)
            continue;
        if (ps->npending == ps->pcap) {
            int cap = ps->pcap ? ps->pcap * 2 : 16;
            pending_t *np = mk_realloc(ps->pending, sizeof(pending_t) * (size_t)cap);
            if (!np) {
                ps->load->epoch = -1; /* cannot keep up: drop this load, start over */
                return;
            }
            ps->pending = np;
            ps->pcap = cap;
        }
        const mk_batch_hdr_t *h = &v[i].hdr;
        ps->pending[ps->npending++] =
            (pending_t){*h, mk_batch_hdr_is_control(h) ? marker_type(set + v[i].pos, v[i].size) : -1};
    }
}

/* The write path's leadership hook: a new leader loads the partition's
 * producer state now, off the loop, so it is ready before clients need it. */
static void observe_leader_changed(void *arg, mk_partition_t *p)
{
    if (p->log)
        pstate(arg, p);
}

int64_t mk_txn_lso(mk_txn_t *t, mk_partition_t *p)
{
    pstate_t *ps = pstate(t, p);
    int64_t lso = p->hw;
    if (!ps)
        return -1;
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&ps->producers, &it, &k, &v)) {
        prod_t *pr = v;
        if (pr->txn_first >= 0 && pr->txn_first < lso)
            lso = pr->txn_first;
    }
    return lso;
}

void mk_txn_aborted(mk_txn_t *t, mk_partition_t *p, int64_t from, int64_t to, mk_txn_aborted_cb cb, void *arg)
{
    pstate_t *ps = pstate(t, p);
    for (int i = 0; ps && i < ps->naborted; i++)
        if (ps->aborted[i].last >= from && ps->aborted[i].first < to)
            cb(ps->aborted[i].pid, ps->aborted[i].first, arg);
}

void mk_txn_aborted_ended(mk_txn_t *t, mk_partition_t *p, int64_t from, int64_t to, mk_txn_aborted_ended_cb cb,
                          void *arg)
{
    pstate_t *ps = pstate(t, p);
    for (int i = 0; ps && i < ps->naborted; i++)
        if (ps->aborted[i].last >= from && ps->aborted[i].last < to)
            cb(ps->aborted[i].pid, ps->aborted[i].first, ps->aborted[i].last, arg);
}

void mk_txn_producers(mk_txn_t *t, mk_partition_t *p, mk_txn_producer_cb cb, void *arg)
{
    pstate_t *ps = pstate(t, p);
    size_t it = 0;
    const char *k;
    void *v;
    while (ps && mk_map_next(&ps->producers, &it, &k, &v)) {
        prod_t *pr = v;
        cb(pr->pid, pr->epoch, pr->n ? pr->recent[pr->n - 1].last_seq : -1, pr->last_ts, pr->txn_first, arg);
    }
}

/* ============================================================= coordinator */

static int64_t alloc_pid(mk_txn_t *t)
{
    if (t->next_pid >= t->pid_limit) {
        t->pid_limit = t->next_pid + PID_BLOCK;
        char v[32];
        snprintf(v, sizeof(v), "%" PRId64, t->pid_limit);
        mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = "producer.id.next", .value = v};
        mk_meta_op_submit(t->meta, t->loop, &op, NULL, NULL);
    }
    return t->next_pid++;
}

int32_t mk_txn_coordinator(const mk_txn_t *t, const char *tid) { return mk_group_coordinator(t->groups, tid); }

static void put_hex(mk_buf_t *b, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    for (; *s; s++) {
        char two[2] = {hx[(uint8_t)*s >> 4], hx[(uint8_t)*s & 15]};
        mk_buf_put(b, two, 2);
    }
}

/* Decode hex (NUL-terminated result, mk_malloc'd) or NULL on bad input. */
static char *get_hex(const char *s, size_t n)
{
    if (n % 2)
        return NULL;
    char *out = mk_malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 2) {
        int hi = s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10;
        int lo = s[i + 1] <= '9' ? s[i + 1] - '0' : s[i + 1] - 'a' + 10;
        if (hi < 0 || hi > 15 || lo < 0 || lo > 15) {
            mk_free(out);
            return NULL;
        }
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[n / 2] = 0;
    return out;
}

static void persist(mk_txn_t *t, tstate_t *ts)
{
    mk_buf_t b;
    mk_buf_init(&b);
    char head[160];
    int n = snprintf(head, sizeof(head), "v1 %" PRId64 " %d %d %d %" PRId64, ts->pid, ts->epoch, ts->timeout_ms,
                     ts->state, ts->start_ms);
    mk_buf_put(&b, head, (size_t)n);
    for (int i = 0; i < ts->nparts; i++) {
        char part[32];
        n = snprintf(part, sizeof(part), "/%d", ts->parts[i].partition);
        mk_buf_put(&b, " ", 1);
        mk_buf_put(&b, ts->parts[i].topic, strlen(ts->parts[i].topic));
        mk_buf_put(&b, part, (size_t)n);
    }
    for (int i = 0; i < ts->noffs; i++) {
        const toffs_t *o = &ts->offs[i];
        mk_buf_put(&b, " @", 2);
        put_hex(&b, o->group);
        char mid[96];
        n = snprintf(mid, sizeof(mid), ":%d:%" PRId64 ":%d:", o->partition, o->offset, o->leader_epoch);
        mk_buf_put(&b, ":", 1);
        mk_buf_put(&b, o->topic, strlen(o->topic));
        mk_buf_put(&b, mid, (size_t)n);
        if (o->metadata)
            put_hex(&b, o->metadata);
        else
            mk_buf_put(&b, "-", 1);
    }
    mk_buf_put(&b, "", 1);
    char key[1100];
    snprintf(key, sizeof(key), "txn/%s", ts->tid);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = key, .value = (const char *)b.data};
    if (mk_buf_ok(&b))
        mk_meta_op_submit(t->meta, t->loop, &op, NULL, NULL);
    mk_buf_free(&b);
}

static void tstate_clear_txn(tstate_t *ts)
{
    for (int i = 0; i < ts->nparts; i++)
        mk_free(ts->parts[i].topic);
    ts->nparts = 0;
    for (int i = 0; i < ts->noffs; i++) {
        mk_free(ts->offs[i].group);
        mk_free(ts->offs[i].topic);
        mk_free(ts->offs[i].metadata);
    }
    ts->noffs = 0;
}

static void tstate_free(tstate_t *ts)
{
    tstate_clear_txn(ts);
    mk_free(ts->parts);
    mk_free(ts->offs);
    mk_free(ts->tid);
    mk_free(ts);
}

static int add_part(tstate_t *ts, const char *topic, int32_t partition)
{
    for (int i = 0; i < ts->nparts; i++)
        if (ts->parts[i].partition == partition && strcmp(ts->parts[i].topic, topic) == 0)
            return 0;
    if (ts->nparts == ts->pcap) {
        int cap = ts->pcap ? ts->pcap * 2 : 8;
        tpart_t *np = mk_realloc(ts->parts, sizeof(tpart_t) * (size_t)cap);
        if (!np)
            return MK_ERR_NOMEM;
        ts->parts = np;
        ts->pcap = cap;
    }
    ts->parts[ts->nparts].topic = mk_strdup(topic);
    if (!ts->parts[ts->nparts].topic)
        return MK_ERR_NOMEM;
    ts->parts[ts->nparts++].partition = partition;
    return 0;
}

/* Write the commit or abort marker to every partition of the transaction.
 * Partitions that have no leader now stay in ts->parts (written when they
 * come back, from the tick); returns how many are left. */
static int write_markers(mk_txn_t *t, tstate_t *ts, bool commit)
{
    mk_buf_t b;
    mk_buf_init(&b);
    int left = 0;
    for (int i = 0; i < ts->nparts; i++) {
        mk_topic_t *topic = mk_cluster_topic_find(t->c, ts->parts[i].topic);
        mk_partition_t *p = mk_cluster_topic_partition(topic, ts->parts[i].partition);
        if (!topic || !p) {
            mk_free(ts->parts[i].topic); /* the topic is gone: nothing to mark */
            continue;
        }
        if (!p->log) {
            mk_warn("transaction %s: no leader for %s-%d; its marker waits for one", ts->tid,
                    ts->parts[i].topic, ts->parts[i].partition);
            ts->parts[left++] = ts->parts[i];
            continue;
        }
        mk_batch_build_opts_t o;
        mk_batch_build_opts_init(&o);
        o.producerId = ts->pid;
        o.producerEpoch = ts->epoch;
        o.baseSequence = -1;
        o.transactional = true;
        o.control = true;
        o.partitionLeaderEpoch = p->leader_epoch;
        mk_buf_reset(&b);
        if (mk_batch_build_control(&b, &o, commit, 0, mk_now_ms()) < 0) {
            mk_error("transaction %s: cannot build a marker", ts->tid);
            continue;
        }
        mk_partition_append_t a = {.control = true};
        if (mk_partition_append(t->writer, p, b.data, b.len, &a)) {
            mk_error("transaction %s: marker for %s-%d failed: %s", ts->tid, ts->parts[i].topic,
                     ts->parts[i].partition, a.why);
            ts->parts[left++] = ts->parts[i];
            continue;
        }
        mk_free(ts->parts[i].topic);
    }
    ts->nparts = left;
    mk_buf_free(&b);
    return left;
}

static void commit_done(int16_t err, void *arg)
{
    if (err)
        mk_error("transaction offsets for group %s could not be stored: %s", (const char *)arg,
                 mk_kafka_strerror(err));
    mk_free(arg);
}

/* Markers of a Prepare state, retried until every partition has one. */
static void finish_prepared(mk_txn_t *t, tstate_t *ts)
{
    bool commit = ts->state == T_PREPARE_COMMIT;
    if (write_markers(t, ts, commit) > 0) {
        persist(t, ts);
        return;
    }
    tstate_clear_txn(ts);
    ts->state = commit ? T_COMPLETE_COMMIT : T_COMPLETE_ABORT;
    persist(t, ts);
    mk_info("transaction %s (producer %" PRId64 " epoch %d) %s", ts->tid, ts->pid, ts->epoch,
            commit ? "committed" : "aborted");
}

/* Offsets sent to the transaction: stored in the groups on commit, dropped
 * on abort. */
static void settle_offsets(mk_txn_t *t, tstate_t *ts, bool commit)
{
    for (int i = 0; i < ts->noffs; i++) {
        if (commit) {
            /* One commit per offset keeps this simple; they are few. */
            mk_group_commit_t c = {ts->offs[i].topic, ts->offs[i].partition, ts->offs[i].offset,
                                   ts->offs[i].leader_epoch, ts->offs[i].metadata, 0};
            char *g = mk_strdup(ts->offs[i].group);
            if (g && mk_group_commit_txn(t->groups, ts->offs[i].group, &c, 1, commit_done, g) < 0)
                mk_free(g);
        }
        mk_free(ts->offs[i].group);
        mk_free(ts->offs[i].topic);
        mk_free(ts->offs[i].metadata);
    }
    ts->noffs = 0;
}

/* Finish the open transaction: Prepare state persisted (with its partitions
 * and offsets), offsets settled, markers written (later for partitions
 * without a leader now). */
static void complete(mk_txn_t *t, tstate_t *ts, bool commit)
{
    ts->state = commit ? T_PREPARE_COMMIT : T_PREPARE_ABORT;
    persist(t, ts);
    settle_offsets(t, ts, commit);
    finish_prepared(t, ts);
}

mk_txn_pid_t mk_txn_init_pid(mk_txn_t *t, const char *tid, int32_t timeout_ms, int64_t pid, int16_t epoch)
{
    mk_txn_pid_t r = {0, -1, -1};
    if (!tid) {
        if (pid >= 0 && epoch >= 0 && epoch < INT16_MAX) {
            r.producer_id = pid;
            r.producer_epoch = (int16_t)(epoch + 1);
        } else {
            r.producer_id = alloc_pid(t);
            r.producer_epoch = 0;
        }
        return r;
    }
    if (timeout_ms <= 0 || timeout_ms > MAX_TIMEOUT_MS) {
        r.error = MK_KERR_INVALID_TRANSACTION_TIMEOUT;
        return r;
    }
    tstate_t *ts = mk_map_get(&t->tids, tid);
    if (!ts) {
        ts = mk_calloc(1, sizeof(*ts));
        if (!ts || !(ts->tid = mk_strdup(tid)) || mk_map_put(&t->tids, tid, ts) < 0) {
            if (ts)
                mk_free(ts->tid);
            mk_free(ts);
            r.error = MK_KERR_UNKNOWN_SERVER_ERROR;
            return r;
        }
        ts->pid = alloc_pid(t);
        ts->epoch = 0;
    } else {
        if (pid >= 0 && (pid != ts->pid || epoch != ts->epoch)) {
            r.error = MK_KERR_PRODUCER_FENCED;
            return r;
        }
        if (ts->state == T_PREPARE_COMMIT || ts->state == T_PREPARE_ABORT) {
            r.error = MK_KERR_CONCURRENT_TRANSACTIONS;
            return r;
        }
        if (ts->state == T_ONGOING) {
            /* Fence the old producer: the abort markers carry a newer epoch,
             * so its late batches are refused by the partitions. */
            ts->epoch++;
            complete(t, ts, false);
        }
        if (ts->epoch >= INT16_MAX - 1) {
            ts->pid = alloc_pid(t);
            ts->epoch = 0;
        } else {
            ts->epoch++;
        }
    }
    ts->timeout_ms = timeout_ms;
    ts->state = T_EMPTY;
    persist(t, ts);
    r.producer_id = ts->pid;
    r.producer_epoch = ts->epoch;
    return r;
}

int16_t mk_txn_check(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch)
{
    tstate_t *ts = tid ? mk_map_get(&t->tids, tid) : NULL;
    if (!ts || ts->pid != pid)
        return MK_KERR_INVALID_PRODUCER_ID_MAPPING;
    if (epoch != ts->epoch)
        return MK_KERR_INVALID_PRODUCER_EPOCH;
    if (ts->state == T_PREPARE_COMMIT || ts->state == T_PREPARE_ABORT)
        return MK_KERR_CONCURRENT_TRANSACTIONS;
    return 0;
}

static int16_t begin(mk_txn_t *t, tstate_t *ts)
{
    (void)t;
    if (ts->state != T_ONGOING) {
        ts->state = T_ONGOING;
        ts->start_ms = mk_now_ms();
    }
    return 0;
}

int16_t mk_txn_add_partition(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, mk_partition_t *p)
{
    int16_t err = mk_txn_check(t, tid, pid, epoch);
    if (err)
        return err;
    tstate_t *ts = mk_map_get(&t->tids, tid);
    begin(t, ts);
    if (add_part(ts, p->topic->name, p->index) < 0)
        return MK_KERR_UNKNOWN_SERVER_ERROR;
    persist(t, ts);
    return 0;
}

int16_t mk_txn_add_offsets(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, const char *group_id)
{
    int16_t err = mk_txn_check(t, tid, pid, epoch);
    if (err)
        return err;
    (void)group_id; /* the group's offsets arrive with TxnOffsetCommit */
    begin(t, mk_map_get(&t->tids, tid));
    return 0;
}

int16_t mk_txn_offset_commit(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, const char *group_id,
                             const mk_group_commit_t *commits, int32_t n)
{
    int16_t err = mk_txn_check(t, tid, pid, epoch);
    if (err)
        return err;
    tstate_t *ts = mk_map_get(&t->tids, tid);
    if (ts->state != T_ONGOING)
        return MK_KERR_INVALID_TXN_STATE;
    for (int32_t i = 0; i < n; i++) {
        if (commits[i].error)
            continue;
        if (ts->noffs == ts->ocap) {
            int cap = ts->ocap ? ts->ocap * 2 : 8;
            toffs_t *no = mk_realloc(ts->offs, sizeof(toffs_t) * (size_t)cap);
            if (!no)
                return MK_KERR_UNKNOWN_SERVER_ERROR;
            ts->offs = no;
            ts->ocap = cap;
        }
        toffs_t *o = &ts->offs[ts->noffs++];
        o->group = mk_strdup(group_id);
        o->topic = mk_strdup(commits[i].topic);
        o->metadata = commits[i].metadata ? mk_strdup(commits[i].metadata) : NULL;
        o->partition = commits[i].partition;
        o->offset = commits[i].offset;
        o->leader_epoch = commits[i].leader_epoch;
    }
    persist(t, ts);
    return 0;
}

int16_t mk_txn_end(mk_txn_t *t, const char *tid, int64_t pid, int16_t epoch, bool commit)
{
    int16_t err = mk_txn_check(t, tid, pid, epoch);
    if (err)
        return err;
    tstate_t *ts = mk_map_get(&t->tids, tid);
    if (ts->state == T_ONGOING) {
        complete(t, ts, commit);
        return 0;
    }
    /* A retried EndTxn for a finished transaction is fine; the opposite
     * outcome is not. */
    if ((ts->state == T_COMPLETE_COMMIT && !commit) || (ts->state == T_COMPLETE_ABORT && commit))
        return MK_KERR_INVALID_TXN_STATE;
    return 0;
}

bool mk_txn_pending_offset(mk_txn_t *t, const char *group_id, const char *topic, int32_t partition)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&t->tids, &it, &k, &v)) {
        tstate_t *ts = v;
        for (int i = 0; ts->state == T_ONGOING && i < ts->noffs; i++)
            if (ts->offs[i].partition == partition && strcmp(ts->offs[i].group, group_id) == 0 &&
                strcmp(ts->offs[i].topic, topic) == 0)
                return true;
    }
    return false;
}

bool mk_txn_describe(mk_txn_t *t, const char *tid, mk_txn_desc_cb cb, void *arg)
{
    size_t it = 0;
    const char *k;
    void *v;
    bool found = false;
    while (mk_map_next(&t->tids, &it, &k, &v)) {
        tstate_t *ts = v;
        if (tid && strcmp(tid, ts->tid) != 0)
            continue;
        const char *topics[256];
        int32_t parts[256];
        int n = ts->nparts < 256 ? ts->nparts : 256;
        for (int i = 0; i < n; i++) {
            topics[i] = ts->parts[i].topic;
            parts[i] = ts->parts[i].partition;
        }
        mk_txn_desc_t d = {ts->tid, tstate_names[ts->state], ts->pid, ts->epoch, ts->timeout_ms,
                           ts->state == T_ONGOING ? ts->start_ms : -1, n, topics, parts};
        cb(&d, arg);
        found = true;
    }
    return found;
}

/* ================================================================ lifecycle */

static void tick_cb(uv_timer_t *h)
{
    mk_txn_t *t = h->data;
    loadq_kick(t->loop);
    int64_t now = mk_now_ms();
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&t->tids, &it, &k, &v)) {
        tstate_t *ts = v;
        if (ts->state == T_ONGOING && now - ts->start_ms > ts->timeout_ms) {
            mk_warn("transaction %s timed out after %d ms; aborting", ts->tid, ts->timeout_ms);
            /* Fence the producer that let it time out (markers carry the new epoch). */
            ts->epoch++;
            complete(t, ts, false);
        } else if (ts->state == T_PREPARE_COMMIT || ts->state == T_PREPARE_ABORT) {
            finish_prepared(t, ts);
        }
    }
}

/* One "@<hex group>:<topic>:<partition>:<offset>:<epoch>:<hex meta|->" token. */
static void load_offset_token(tstate_t *ts, char *tok)
{
    char *f[6];
    int nf = 0;
    for (char *p = tok; nf < 6; nf++) {
        f[nf] = p;
        char *c = strchr(p, ':');
        if (!c) {
            nf++;
            break;
        }
        *c = 0;
        p = c + 1;
    }
    if (nf != 6)
        return;
    if (ts->noffs == ts->ocap) {
        int cap = ts->ocap ? ts->ocap * 2 : 8;
        toffs_t *no = mk_realloc(ts->offs, sizeof(toffs_t) * (size_t)cap);
        if (!no)
            return;
        ts->offs = no;
        ts->ocap = cap;
    }
    toffs_t *o = &ts->offs[ts->noffs];
    o->group = get_hex(f[0], strlen(f[0]));
    o->topic = mk_strdup(f[1]);
    o->partition = atoi(f[2]);
    o->offset = strtoll(f[3], NULL, 10);
    o->leader_epoch = atoi(f[4]);
    o->metadata = strcmp(f[5], "-") == 0 ? NULL : get_hex(f[5], strlen(f[5]));
    if (!o->group || !o->topic) {
        mk_free(o->group);
        mk_free(o->topic);
        mk_free(o->metadata);
        return;
    }
    ts->noffs++;
}

static int load_tid_cb(const char *key, const char *value, void *arg)
{
    mk_txn_t *t = arg;
    const char *tid = key + 4;
    int64_t pid, start;
    int epoch, timeout, state, used = 0;
    if (sscanf(value, "v1 %" SCNd64 " %d %d %d %" SCNd64 "%n", &pid, &epoch, &timeout, &state, &start, &used) != 5 ||
        state < 0 || state > T_COMPLETE_ABORT) {
        mk_warn("transaction state of %s is unreadable; ignored", tid);
        return 0;
    }
    tstate_t *ts = mk_calloc(1, sizeof(*ts));
    if (!ts || !(ts->tid = mk_strdup(tid)) || mk_map_put(&t->tids, tid, ts) < 0) {
        if (ts)
            mk_free(ts->tid);
        mk_free(ts);
        return MK_ERR_NOMEM;
    }
    ts->pid = pid;
    ts->epoch = (int16_t)epoch;
    ts->timeout_ms = timeout;
    ts->state = state;
    ts->start_ms = start;
    const char *s = value + used;
    char tok[1100];
    int n;
    while (sscanf(s, " %1099s%n", tok, &n) == 1) {
        s += n;
        if (tok[0] == '@') {
            load_offset_token(ts, tok + 1);
            continue;
        }
        char *slash = strrchr(tok, '/');
        if (!slash)
            continue;
        *slash = 0;
        add_part(ts, tok, atoi(slash + 1));
    }
    if (pid >= t->next_pid)
        t->next_pid = pid + 1;
    return 0;
}

int mk_txn_new(uv_loop_t *loop, mk_cluster_t *c, mk_group_coord_t *groups, mk_partition_writer_t *writer,
               mk_txn_t **out)
{
    mk_txn_t *t = mk_calloc(1, sizeof(*t));
    if (!t)
        return MK_ERR_NOMEM;
    t->loop = loop;
    t->c = c;
    t->groups = groups;
    t->meta = mk_cluster_meta(c);
    t->writer = writer;
    mk_map_init(&t->partitions);
    mk_map_init(&t->tids);
    /* Observe the write path before any marker of a prepared transaction
     * below goes through it. */
    mk_partition_observer_t obs = {.name = "txn",
                                   .check = observe_check,
                                   .appended = observe_appended,
                                   .leader_changed = observe_leader_changed,
                                   .arg = t};
    int orc = mk_partition_writer_observe(writer, &obs);
    if (orc < 0) {
        mk_free(t);
        return orc;
    }
    char *v = NULL;
    t->next_pid = 1000;
    if (mk_meta_kv_get(t->meta, "producer.id.next", &v) == 0 && v)
        t->next_pid = strtoll(v, NULL, 10);
    mk_free(v);
    int rc = mk_meta_kv_foreach(t->meta, "txn/", load_tid_cb, t);
    /* Reserve the first block now so a crash never hands out an id twice. */
    t->pid_limit = t->next_pid + PID_BLOCK;
    char lim[32];
    snprintf(lim, sizeof(lim), "%" PRId64, t->pid_limit);
    mk_meta_op_t op = {.kind = MK_META_KV_SET, .key = "producer.id.next", .value = lim};
    if (rc == 0)
        rc = mk_meta_op_run(t->meta, &op);
    t->tick = mk_malloc(sizeof(uv_timer_t));
    if (rc < 0 || !t->tick) {
        mk_free(t->tick);
        t->tick = NULL;
        mk_txn_free(t);
        return rc < 0 ? rc : MK_ERR_NOMEM;
    }
    uv_timer_init(loop, t->tick);
    t->tick->data = t;
    uv_timer_start(t->tick, tick_cb, 1000, 1000);
    /* Transactions caught between their Prepare state and completion. */
    size_t it = 0;
    const char *k;
    void *val;
    while (mk_map_next(&t->tids, &it, &k, &val)) {
        tstate_t *ts = val;
        if (ts->state == T_PREPARE_COMMIT || ts->state == T_PREPARE_ABORT) {
            mk_info("transaction %s: completing its %s after a restart", ts->tid,
                    ts->state == T_PREPARE_COMMIT ? "commit" : "abort");
            settle_offsets(t, ts, ts->state == T_PREPARE_COMMIT);
            finish_prepared(t, ts);
        }
    }
    *out = t;
    return 0;
}

static void tick_free_cb(uv_handle_t *h) { mk_free(h); }

void mk_txn_free(mk_txn_t *t)
{
    if (!t)
        return;
    if (t->tick)
        uv_close((uv_handle_t *)t->tick, tick_free_cb);
    size_t it = 0;
    const char *k;
    void *v;
    while (mk_map_next(&t->partitions, &it, &k, &v)) {
        pstate_t *ps = v;
        if (ps->load && ps->load->waiting) {
            loadq_t *q = ps->load->q;
            load_free(ps->load); /* out of its queue */
            loadq_release(q);
        } else if (ps->load) {
            ps->load->t = NULL; /* its after-work callback frees it */
        }
        pstate_clear(ps);
        mk_map_free(&ps->producers);
        mk_free(ps->pending);
        mk_free(ps);
    }
    mk_map_free(&t->partitions);
    it = 0;
    while (mk_map_next(&t->tids, &it, &k, &v))
        tstate_free(v);
    mk_map_free(&t->tids);
    mk_free(t);
}
