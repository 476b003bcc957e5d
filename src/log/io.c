/*
 * io.c -- the storage I/O gate: one domain per broker, which every storage
 * operation of that broker's logs passes (log.h, "storage I/O gate").
 *
 * Why a gate and not hooks in the file calls: the loop must never block.
 * Appends and reads run pwrite/pread on the loop, so a stalled or slow disk
 * cannot be modelled by sleeping where the bytes are written.  Instead the
 * gate decides, before the operation touches a file, whether it may run
 * now: a held operation returns MK_ERR_AGAIN to its caller, which parks
 * (Produce, Fetch) or stops (a replication round) and asks again when the
 * wake callback says so.  The operation "takes" from its first ask to its
 * end: that is the latency counted, and while it waits it is in flight,
 * with an age.  An fsync is asked for on the loop and runs on the
 * threadpool; a held one waits here, not on a worker thread (a stall must
 * not eat the threadpool that SQLite and every other broker need), and the
 * gate re-requests it (the slot's retry) when it may go.
 *
 * Waits are per log and per kind (one held write, read and fsync at a
 * time: a log's appends are serial, like a device queue of depth one).  A
 * wait whose caller gave up (a Produce timed out and nobody asks again) is
 * forgotten 2 s after its last ask, unless the domain is still stalled --
 * a stalled disk's oldest operation keeps ageing, which is what the health
 * manager watches.
 *
 * Latency percentiles come from a log-linear histogram (4 buckets per power
 * of two of microseconds) in two windows of 10 s: the figures cover the
 * last 10 to 20 s.
 *
 * Threads: loop thread only (the stats too).  The fault registry is asked
 * once per operation (one atomic load when nothing is injected).
 */
#include "fault/fault.h"
#include "log/log_int.h"

#include <string.h>
#include <uv.h>

#define NBUCKETS 160
#define WINDOW_MS 10000
#define FORGET_MS 2000

typedef struct hist_s {
    uint32_t b[NBUCKETS];
    uint64_t n;
} hist_t;

typedef struct domain_s {
    mk_log_io_slot_t *slots;   /* its open logs */
    uint64_t ops, errors, held;
    hist_t win[2];             /* [cur] and the one before */
    int cur;
    uint64_t win_start_ms;
    bool offline;
    bool offline_pending;      /* the offline callback is due */
    uint64_t fsync_done_ms;    /* when an fsync of the domain last ended (mono ms) */
} domain_t;

static domain_t domains[MK_LOG_IO_DOMAINS];
static uv_loop_t *gate_loop;
static uv_timer_t *gate_timer;  /* owned: delays that end, deferred callbacks */
static mk_log_io_cb wake_cb, offline_cb;
static void *wake_arg, *offline_arg;

static domain_t *domain_of(const mk_log_io_slot_t *s)
{
    return s->domain > 0 && s->domain < MK_LOG_IO_DOMAINS ? &domains[s->domain] : NULL;
}

/* ============================================================ histogram */

static int bucket_of(uint64_t us)
{
    if (us < 4)
        return (int)us;
    int lg = 63 - __builtin_clzll(us);             /* >= 2 */
    int sub = (int)((us >> (lg - 2)) & 3);
    int b = lg * 4 + sub - 4;
    return b < NBUCKETS ? b : NBUCKETS - 1;
}

/* The upper end of bucket b, in us. */
static uint64_t bucket_top(int b)
{
    if (b < 4)
        return (uint64_t)b;
    int lg = (b + 4) / 4, sub = (b + 4) % 4;
    return ((uint64_t)(4 + sub + 1) << (lg - 2)) - 1;
}

static void hist_roll(domain_t *d, uint64_t now)
{
    if (now - d->win_start_ms < WINDOW_MS)
        return;
    d->cur ^= 1;
    memset(&d->win[d->cur], 0, sizeof(hist_t));
    if (now - d->win_start_ms >= 2 * WINDOW_MS)
        memset(&d->win[d->cur ^ 1], 0, sizeof(hist_t));
    d->win_start_ms = now;
}

static int64_t percentile(const domain_t *d, double q)
{
    uint64_t n = d->win[0].n + d->win[1].n;
    if (!n)
        return 0;
    uint64_t want = (uint64_t)(q * (double)n + 0.999999), seen = 0;
    if (want < 1)
        want = 1;
    for (int b = 0; b < NBUCKETS; b++) {
        seen += d->win[0].b[b] + d->win[1].b[b];
        if (seen >= want)
            return (int64_t)bucket_top(b);
    }
    return (int64_t)bucket_top(NBUCKETS - 1);
}

/* ================================================================ timer */

static void timer_cb(uv_timer_t *t);

static void arm(uint64_t in_ms)
{
    if (!gate_timer)
        return;
    if (!uv_is_active((uv_handle_t *)gate_timer) || uv_timer_get_due_in(gate_timer) > in_ms)
        uv_timer_start(gate_timer, timer_cb, in_ms, 0);
}

/* Re-request the held fsyncs of domain d (all when d is NULL): each asks
 * the gate again and is held again if it must still wait. */
static void retry_flushes(domain_t *only)
{
    for (int i = 1; i < MK_LOG_IO_DOMAINS; i++) {
        domain_t *d = &domains[i];
        if (only && d != only)
            continue;
        /* A retry may close nothing, but it can re-hold: take the list as it is. */
        for (mk_log_io_slot_t *s = d->slots; s; s = s->next)
            if (s->flush_held && s->retry) {
                s->flush_held = false;
                s->retry(s->owner);
            }
    }
}

static void timer_cb(uv_timer_t *t)
{
    (void)t;
    for (int i = 1; i < MK_LOG_IO_DOMAINS; i++) {
        domain_t *d = &domains[i];
        if (d->offline_pending) {
            d->offline_pending = false;
            if (offline_cb)
                offline_cb(offline_arg, i);
        }
    }
    retry_flushes(NULL);
    if (wake_cb)
        wake_cb(wake_arg, -1);
}

/* fault/'s observer: a disk fault came or went; held operations may go. */
static void fault_cb(void *arg, const mk_fault_t *f, bool added)
{
    (void)arg;
    int t = f->spec.type;
    if (t != MK_FAULT_DISK_STALL && t != MK_FAULT_DISK_SLOW && t != MK_FAULT_DISK_ERROR)
        return;
    if (added && t != MK_FAULT_DISK_ERROR)
        return;
    /* Cleared (or an error that fails the held ones now): ask again soon,
     * from the timer, not inside the caller of mk_fault_remove(). */
    arm(0);
}

void mk_log_io_open(struct uv_loop_s *loop)
{
    if (gate_timer)
        return;
    gate_timer = mk_malloc(sizeof(*gate_timer));
    if (!gate_timer)
        return;
    uv_timer_init(loop, gate_timer);
    uv_unref((uv_handle_t *)gate_timer);
    gate_loop = loop;
    mk_fault_observe(fault_cb, &domains);
}

static void timer_close_cb(uv_handle_t *h) { mk_free(h); }

void mk_log_io_close(void)
{
    if (!gate_timer)
        return;
    mk_fault_unobserve(&domains);
    uv_close((uv_handle_t *)gate_timer, timer_close_cb);
    gate_timer = NULL;
    gate_loop = NULL;
}

void mk_log_io_set_wake_cb(mk_log_io_cb cb, void *arg)
{
    wake_cb = cb;
    wake_arg = arg;
}

void mk_log_io_set_offline_cb(mk_log_io_cb cb, void *arg)
{
    offline_cb = cb;
    offline_arg = arg;
}

void mk_log_io_online(int32_t broker)
{
    if (broker > 0 && broker < MK_LOG_IO_DOMAINS)
        domains[broker].offline = domains[broker].offline_pending = false;
}

/* ================================================================ slots */

void mk_log_io_attach(mk_log_io_slot_t *s, int32_t domain, void (*retry)(void *), void *owner)
{
    memset(s, 0, sizeof(*s));
    s->domain = domain > 0 && domain < MK_LOG_IO_DOMAINS ? domain : 0;
    s->retry = retry;
    s->owner = owner;
    domain_t *d = domain_of(s);
    if (!d)
        return;
    s->next = d->slots;
    if (d->slots)
        d->slots->prev = s;
    d->slots = s;
}

void mk_log_io_detach(mk_log_io_slot_t *s)
{
    domain_t *d = domain_of(s);
    if (!d)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else if (d->slots == s)
        d->slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->domain = 0;
}

int mk_log_io_begin(mk_log_io_slot_t *s, int kind, uint64_t *t0_ns)
{
    *t0_ns = mk_mono_ns();
    domain_t *d = domain_of(s);
    mk_fault_disk_t fd;
    if (!d || !mk_fault_disk(s->domain, &fd))
        return 0;
    uint64_t now = *t0_ns / 1000000u;
    if (fd.error_ops & (1 << kind)) {
        hist_roll(d, now);
        d->ops++;
        d->errors++;
        s->wait_ms[kind] = 0;
        return MK_ERR_IO;
    }
    if (fd.stall || fd.slow_ms > 0) {
        if (!s->wait_ms[kind]) {
            s->wait_ms[kind] = now;
            d->held++;
        }
        s->touched_ms[kind] = now;
        if (fd.stall)
            return MK_ERR_AGAIN;
        uint64_t due = s->wait_ms[kind] + (uint64_t)fd.slow_ms;
        if (now < due) {
            arm(due - now);
            return MK_ERR_AGAIN;
        }
    }
    return 0;
}

int mk_log_io_scan(mk_log_io_slot_t *s)
{
    domain_t *d = domain_of(s);
    mk_fault_disk_t fd;
    if (!d || !mk_fault_disk(s->domain, &fd))
        return 0;
    if (fd.error_ops & (1 << MK_LOG_IO_READ)) {
        hist_roll(d, mk_mono_ms());
        d->ops++;
        d->errors++;
        return MK_ERR_IO;
    }
    return fd.stall ? MK_ERR_AGAIN : 0;
}

void mk_log_io_end(mk_log_io_slot_t *s, int kind, uint64_t t0_ns, int rc)
{
    domain_t *d = domain_of(s);
    if (!d)
        return;
    uint64_t now_ns = mk_mono_ns(), now = now_ns / 1000000u;
    uint64_t us = now_ns > t0_ns ? (now_ns - t0_ns) / 1000u : 0;
    if (s->wait_ms[kind] && s->wait_ms[kind] < t0_ns / 1000000u)
        us += (t0_ns / 1000000u - s->wait_ms[kind]) * 1000u;
    s->wait_ms[kind] = 0;
    if (kind == MK_LOG_IO_FSYNC)
        d->fsync_done_ms = now;
    hist_roll(d, now);
    d->ops++;
    if (rc == MK_ERR_IO)
        d->errors++;
    hist_t *h = &d->win[d->cur];
    h->b[bucket_of(us)]++;
    h->n++;
}

void mk_log_io_failed(mk_log_io_slot_t *s)
{
    domain_t *d = domain_of(s);
    if (!d || d->offline)
        return;
    d->offline = true;
    d->offline_pending = true;
    arm(0);
}

/* ================================================================ stats */

int mk_log_io_stats(int32_t broker, mk_log_io_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (broker <= 0 || broker >= MK_LOG_IO_DOMAINS)
        return MK_ERR_NOT_FOUND;
    domain_t *d = &domains[broker];
    uint64_t now = mk_mono_ms();
    mk_fault_disk_t fd;
    mk_fault_disk(broker, &fd);
    hist_roll(d, now);
    out->ops = d->ops;
    out->errors = d->errors;
    out->held = d->held;
    out->offline = d->offline;
    out->stalled = fd.stall;
    out->slow_ms = fd.slow_ms;
    out->error_ops = fd.error_ops;
    out->p50_us = percentile(d, 0.50);
    out->p99_us = percentile(d, 0.99);
    uint64_t oldest = 0;
    for (mk_log_io_slot_t *s = d->slots; s; s = s->next) {
        for (int k = 0; k < MK_LOG_IO_KINDS; k++) {
            if (!s->wait_ms[k] || (k == MK_LOG_IO_FSYNC && s->flight_ms))
                continue;
            /* A caller that gave up: forgotten, unless the disk is still stalled. */
            if (!fd.stall && now - s->touched_ms[k] > (uint64_t)fd.slow_ms + FORGET_MS &&
                !(k == MK_LOG_IO_FSYNC && s->flush_held)) {
                s->wait_ms[k] = 0;
                continue;
            }
            out->inflight++;
            if (!oldest || s->wait_ms[k] < oldest)
                oldest = s->wait_ms[k];
        }
        if (s->flight_ms) {
            /* A flush queued behind others on the threadpool waits while
             * the disk works: its age counts from the domain's last
             * finished fsync when that is later.  (1000 new partitions'
             * first flushes, queued at once, aged past the health
             * manager's 4.5 s and it fenced and restarted every broker of
             * the cell in turn, though fsyncs were finishing all along;
             * issue 16.)  A stalled disk finishes none, so the age grows. */
            uint64_t since = MK_MAX(s->flight_ms, d->fsync_done_ms);
            out->inflight++;
            if (!oldest || since < oldest)
                oldest = since;
        }
    }
    out->oldest_inflight_ms = oldest ? (int64_t)(now - oldest) : 0;
    return 0;
}
