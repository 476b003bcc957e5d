/*
 * net.c -- listeners, connections and the frame state machine.
 *
 * Read path: libuv asks for a buffer (alloc_cb) only once a socket is
 * readable, and every connection of the thread gets the same 64 KiB read
 * buffer: the frame parser copies out everything it is given before
 * read_cb returns (the size into hdr[4], the body into its own allocation),
 * so nothing lives in the read buffer between reads, and an idle
 * connection holds no read buffer at all (a connection used to embed one:
 * 5,000 idle connections cost 250 MB).  The TLS path reuses the buffer for
 * plaintext once the engine has copied the ciphertext.  The parser is
 * resumable: state HEADER collects the 4-byte size, then (after checking the
 * size against the limit) allocates exactly that many bytes and state BODY
 * fills them.  While 16 KiB or more of a plaintext body are missing, libuv
 * reads straight into the body instead (alloc_cb hands out its missing
 * part), so a large Produce is not copied through the read buffer.
 * Complete frames go to a FIFO; frames are dispatched one at a
 * time (see net.h).  Memory of closed connections goes back to the system:
 * after a burst of closes the heap is trimmed (malloc_trim), so RSS returns
 * near idle once clients leave.
 *
 * Limits: at accept, before the handler hears of a connection (and so before
 * any byte is read or any authentication), max.connections and
 * max.connections.per.ip are checked against this listener's open
 * connections; one past a limit is closed at once with a log line.  An idle
 * sweep (a timer every idle_ms/5, 10 ms to 1 s) closes connections that have
 * read and written nothing for connections.max.idle.ms and are not inside a
 * frame's life (busy, queued frames, unsent output); a half-received frame
 * does not count as activity, so a slow sender is closed too.
 *
 * Fairness: one connection cannot hold the loop.  libuv reads a readable
 * socket up to 32 times in one turn (64 KiB each here), and every complete
 * frame used to be dispatched at once, so a client that pipelines many small
 * requests could have thousands handled in one turn while other connections
 * waited.  Now at most FRAMES_PER_TURN frames, and frames of at most
 * BYTES_PER_TURN together (past the first one: a large Produce costs its
 * size in copies, CRCs and replication, so sixteen of 1 MB would hold the
 * loop for tens of ms), are dispatched per call; when
 * more are queued, the connection yields: reading stops (which also ends
 * libuv's read burst) and it joins its listener's list of yielded
 * connections, which an idle handle resumes once per loop iteration, after
 * the poll phase has served every other ready connection.  (Not a zero-delay
 * timer: libuv 1.44 runs a timer restarted from its own callback again in
 * the same pass when its delay is 0, which would hold the loop.)
 *
 * Mute (KIP-219): mk_net_conn_mute() stops reading and delivering frames for
 * a while; a per-connection timer ends it.  The upper layer mutes a
 * connection after answering a request over quota.
 *
 * Invariants:
 *   - in_bytes counts the payload bytes of frames queued but not dispatched;
 *   - busy is true from frame_cb until mk_net_conn_done();
 *   - reading is on iff !closing && !muted && !yielded && in_bytes <
 *     in_high_water && unsent output < out_high_water;
 *   - yielded iff on the listener's yielded list; the mute timer runs while muted.
 *
 * TLS listeners (l->tls set): a connection gets its TLS engine (tls.c) on its
 * first read.  read_cb feeds the ciphertext to the engine and the plaintext
 * it yields to the same frame parser; mk_net_conn_send encrypts and writes
 * the ciphertext; handshake records go out after every read.  Nothing is
 * ever sent in the clear on a TLS listener.
 */
#include "net/net_int.h"

#include <netdb.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536
/* Frames one connection may have dispatched in one go before it yields. */
#define FRAMES_PER_TURN 16
#define BYTES_PER_TURN ((size_t)1 << 20)

typedef struct frame_s {
    struct frame_s *next;
    uint8_t *data;
    size_t len;
} frame_t;

struct mk_net_listener_s {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    mk_net_config_t cfg;
    mk_net_handler_t h;
    void *ud;
    int port;
    bool closing;
    mk_net_tls_t *tls;          /* borrowed; NULL: PLAINTEXT */
    mk_net_conn_t *conns;       /* intrusive list of open connections */
    int nconns;
    uv_timer_t *idle_timer;     /* owned; NULL when idle_ms <= 0; freed in its close callback */
    uint64_t refused;           /* connections refused at accept (limits) */
    uint64_t idle_closed;       /* connections closed as idle */
    mk_net_conn_t *yhead, *ytail;   /* connections to resume next loop iteration (see Fairness), FIFO */
    int ycount;
    uv_idle_t *resume;          /* owned; runs while the yielded list is not empty; freed in its close callback */
};

struct mk_net_conn_s {
    uv_tcp_t tcp;
    mk_net_listener_t *l;       /* NULL once the listener is gone */
    mk_net_conn_t *prev, *next;
    void *data;
    char peer[64];
    char ip[48];                /* the peer's address, for max.connections.per.ip */
    uint64_t last_active_ms;    /* monotonic: the last byte read or written */
    bool closing, reading, busy, dispatching;
    bool muted;                 /* mk_net_conn_mute(): no reads, no frames until mute_until_ms */
    bool yielded;               /* frames left after a turn's budget: on l's yielded list */
    mk_net_conn_t *ynext, *yprev;   /* l->yhead..ytail */
    uint64_t mute_until_ms;     /* monotonic */
    uv_timer_t *timer;          /* owned, made on first mute; ends it; freed in its close callback */
    bool authenticated;         /* frames may use max_frame, not pre_auth_max_frame */
    bool on_tls;                /* accepted by a TLS listener */
    mk_net_tls_conn_t *tls;     /* owned; created on the first read */
    /* frame parser */
    uint8_t hdr[4];
    size_t hdr_have;
    uint8_t *body;
    size_t body_len, body_have;
    /* complete frames not yet dispatched */
    frame_t *q_head, *q_tail;
    size_t in_bytes;
};

typedef struct write_req_s {
    uv_write_t req;
    uint8_t *data;
} write_req_t;

void mk_net_config_default(mk_net_config_t *cfg)
{
    cfg->max_frame = 104857600;
    cfg->in_high_water = 8u << 20;
    cfg->out_high_water = 16u << 20;
    cfg->max_connections = INT32_MAX;
    cfg->max_connections_per_ip = INT32_MAX;
    cfg->idle_ms = 600000;
}

/* ================================================================ conn state */

static void conn_update_reading(mk_net_conn_t *c);
static void conn_dispatch(mk_net_conn_t *c);

/* Off the listener's yielded list (a no-op when not on it). */
static void conn_unyield(mk_net_conn_t *c)
{
    if (!c->yielded || !c->l)
        return;
    mk_net_listener_t *l = c->l;
    c->yielded = false;
    if (c->yprev)
        c->yprev->ynext = c->ynext;
    else
        l->yhead = c->ynext;
    if (c->ynext)
        c->ynext->yprev = c->yprev;
    else
        l->ytail = c->yprev;
    c->ynext = c->yprev = NULL;
    l->ycount--;
}

static _Thread_local unsigned long net_closed_since_trim; /* connections freed since the last trim */

static void conn_free_cb(uv_handle_t *h)
{
    mk_net_conn_t *c = h->data;
    frame_t *f = c->q_head;
    while (f) {
        frame_t *n = f->next;
        mk_free(f->data);
        mk_free(f);
        f = n;
    }
    mk_free(c->body);
    mk_net_tls_conn_free(c->tls);
    mk_free(c);
    net_closed_since_trim++;
}

/* After connections closed, give the freed heap back to the system (glibc
 * keeps free pages in the middle of the heap otherwise, and RSS stays at
 * its peak).  Called from the idle sweep, so at most about once a second
 * per listener and only after closes. */
static void net_heap_trim(void)
{
    if (net_closed_since_trim == 0)
        return;
    net_closed_since_trim = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void mk_net_conn_close(mk_net_conn_t *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    if (reason)
        mk_info("connection %s closed: %s", c->peer, reason);
    if (c->timer) {
        uv_timer_stop(c->timer);
        uv_close((uv_handle_t *)c->timer, (uv_close_cb)mk_free);
        c->timer = NULL;
    }
    mk_net_listener_t *l = c->l;
    if (l) {
        conn_unyield(c);
        if (l->h.close_cb)
            l->h.close_cb(c, l->ud);
        if (c->prev)
            c->prev->next = c->next;
        else
            l->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        l->nconns--;
        c->l = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

void mk_net_conn_set_data(mk_net_conn_t *c, void *data) { c->data = data; }
void *mk_net_conn_get_data(const mk_net_conn_t *c) { return c->data; }
void mk_net_conn_set_authenticated(mk_net_conn_t *c) { c->authenticated = true; }
const char *mk_net_conn_peer(const mk_net_conn_t *c) { return c->peer; }
bool mk_net_conn_is_tls(const mk_net_conn_t *c) { return c->on_tls || (c->l && c->l->tls); }

/* The thread's read buffer, shared by all its connections (file header):
 * allocated on the first read, freed when the thread's last listener
 * closes (which closes its connections); see mk_net_listener_close. */
static _Thread_local uint8_t *read_buf;
static _Thread_local int listeners_open;

static uint8_t *read_buf_get(void)
{
    if (!read_buf)
        read_buf = mk_malloc(READ_CHUNK);
    return read_buf;
}

/* Inside a plaintext frame body with at least DIRECT_MIN bytes to come,
 * the socket is read straight into the body (no copy through the read
 * buffer: for a large Produce that copy was a fifth of the broker's CPU);
 * exactly what the body lacks, so the next frame's bytes never land
 * there.  read_cb knows such a read by its address. */
#define DIRECT_MIN 16384

static bool conn_reads_direct(const mk_net_conn_t *c)
{
    return c->body && !c->tls && !c->l->tls && c->body_len - c->body_have >= DIRECT_MIN;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mk_net_conn_t *c = h->data;
    (void)suggested;
    if (conn_reads_direct(c)) {
        buf->base = (char *)(c->body + c->body_have);
        buf->len = c->body_len - c->body_have;
        return;
    }
    uint8_t *p = read_buf_get();
    /* len 0: libuv reports UV_ENOBUFS to read_cb, which closes */
    buf->base = (char *)p;
    buf->len = p ? READ_CHUNK : 0;
}

static void conn_enqueue(mk_net_conn_t *c, uint8_t *data, size_t len)
{
    frame_t *f = mk_malloc(sizeof(*f));
    if (!f) {
        mk_free(data);
        mk_net_conn_close(c, "out of memory queueing a frame");
        return;
    }
    f->next = NULL;
    f->data = data;
    f->len = len;
    if (c->q_tail)
        c->q_tail->next = f;
    else
        c->q_head = f;
    c->q_tail = f;
    c->in_bytes += len;
}

/* The frame being received is whole: it joins the queue. */
static void conn_body_complete(mk_net_conn_t *c)
{
    uint8_t *body = c->body;
    c->body = NULL;
    c->hdr_have = 0;
    conn_enqueue(c, body, c->body_len);
}

/* Feed received bytes to the frame parser.  Returns false if the connection
 * was closed for a bad frame. */
static bool conn_parse(mk_net_conn_t *c, const uint8_t *p, size_t n)
{
    const mk_net_config_t *cfg = &c->l->cfg;
    while (n > 0 && !c->closing) {
        if (!c->body) {
            size_t take = MK_MIN(4 - c->hdr_have, n);
            memcpy(c->hdr + c->hdr_have, p, take);
            c->hdr_have += take;
            p += take;
            n -= take;
            if (c->hdr_have < 4)
                return true;
            int32_t size = (int32_t)(((uint32_t)c->hdr[0] << 24) | ((uint32_t)c->hdr[1] << 16) |
                                     ((uint32_t)c->hdr[2] << 8) | c->hdr[3]);
            bool pre_auth = !c->authenticated && cfg->pre_auth_max_frame > 0;
            size_t limit = pre_auth ? MK_MIN(cfg->max_frame, cfg->pre_auth_max_frame) : cfg->max_frame;
            if (size < 8 || (size_t)size > limit) {
                char why[128];
                snprintf(why, sizeof(why), "frame size %d outside [8, %zu] (%s)", size, limit,
                         pre_auth ? "limit before authentication" : "socket.request.max.bytes");
                mk_warn("connection %s: %s", c->peer, why);
                mk_net_conn_close(c, why);
                return false;
            }
            c->body = mk_malloc((size_t)size);
            if (!c->body) {
                mk_net_conn_close(c, "out of memory for a frame");
                return false;
            }
            c->body_len = (size_t)size;
            c->body_have = 0;
        }
        size_t take = MK_MIN(c->body_len - c->body_have, n);
        memcpy(c->body + c->body_have, p, take);
        c->body_have += take;
        p += take;
        n -= take;
        if (c->body_have == c->body_len)
            conn_body_complete(c);
    }
    return !c->closing;
}

static void conn_write_raw(mk_net_conn_t *c, uint8_t *data, size_t len);

/* Send the ciphertext the TLS engine has waiting.  False if the connection
 * was closed. */
static bool conn_tls_flush(mk_net_conn_t *c)
{
    size_t len;
    uint8_t *out = mk_net_tls_conn_take(c->tls, &len);
    if (out)
        conn_write_raw(c, out, len);
    else if (len)
        mk_net_conn_close(c, "out of memory sending TLS records");
    return !c->closing;
}

/* TLS listener: ciphertext in, plaintext to the frame parser, handshake and
 * alert records out.  False if the connection was closed. */
static bool conn_tls_input(mk_net_conn_t *c, const uint8_t *p, size_t n)
{
    if (!c->tls) {
        c->on_tls = true;
        c->tls = mk_net_tls_conn_new(c->l->tls);
        if (!c->tls) {
            mk_net_conn_close(c, "out of memory starting TLS");
            return false;
        }
    }
    if (mk_net_tls_conn_feed(c->tls, p, n) < 0) {
        mk_net_conn_close(c, "out of memory buffering TLS records");
        return false;
    }
    /* The engine copied the ciphertext: the read buffer is free for the
     * plaintext (p pointed into it). */
    char why[300];
    uint8_t *plain = read_buf_get();
    if (!plain) {
        mk_net_conn_close(c, "out of memory for a read buffer");
        return false;
    }
    for (;;) {
        ssize_t got = mk_net_tls_conn_read(c->tls, plain, READ_CHUNK, why, sizeof(why));
        if (got < 0) {
            bool handshake = !mk_net_tls_conn_ready(c->tls);
            if (handshake)
                mk_warn("connection %s closed: %s", c->peer, why);
            /* The alert OpenSSL queued, if any: libuv tries the write at once,
             * so the peer usually learns why before the close. */
            conn_tls_flush(c);
            mk_net_conn_close(c, handshake ? NULL : why);
            return false;
        }
        if (got == 0)
            break;
        if (!conn_parse(c, plain, (size_t)got))
            return false;
    }
    return conn_tls_flush(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    mk_net_conn_t *c = s->data;
    if (nread < 0) {
        if (nread == UV_EOF) {
            if (c->body || c->hdr_have)
                mk_warn("connection %s: closed mid-frame (%zu of %zu bytes)", c->peer, c->body_have,
                        c->body_len);
            else if (c->tls && !mk_net_tls_conn_ready(c->tls))
                mk_info("connection %s: closed during the TLS handshake", c->peer);
            mk_net_conn_close(c, NULL);
        } else {
            mk_net_conn_close(c, uv_strerror((int)nread));
        }
        return;
    }
    if (nread == 0)
        return;
    c->last_active_ms = mk_mono_ms();
    if (c->body && (const uint8_t *)buf->base == c->body + c->body_have) {
        /* A direct read (alloc_cb): the bytes are in the body already. */
        c->body_have += (size_t)nread;
        if (c->body_have == c->body_len)
            conn_body_complete(c);
    } else if (c->l->tls || c->tls) {
        if (!conn_tls_input(c, (const uint8_t *)buf->base, (size_t)nread))
            return;
    } else if (!conn_parse(c, (const uint8_t *)buf->base, (size_t)nread)) {
        return;
    }
    conn_dispatch(c);
    if (!c->closing)
        conn_update_reading(c);
}

static void conn_update_reading(mk_net_conn_t *c)
{
    if (c->closing || !c->l)
        return;
    bool want = !c->muted && !c->yielded && c->in_bytes < c->l->cfg.in_high_water &&
                uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < c->l->cfg.out_high_water;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* The connection's mute timer, made on first need (false: out of memory,
 * the connection is closed). */
static void conn_timer_cb(uv_timer_t *t);

static bool conn_timer_start(mk_net_conn_t *c, uint64_t ms)
{
    if (!c->timer) {
        c->timer = mk_malloc(sizeof(*c->timer));
        if (!c->timer) {
            mk_net_conn_close(c, "out of memory for a timer");
            return false;
        }
        uv_timer_init(c->l->loop, c->timer);
        c->timer->data = c;
    }
    uv_timer_start(c->timer, conn_timer_cb, ms, 0);
    return true;
}

/* A mute has ended: deliver and read again. */
static void conn_timer_cb(uv_timer_t *t)
{
    mk_net_conn_t *c = t->data;
    uint64_t now = mk_mono_ms();
    if (c->muted && now < c->mute_until_ms) {
        conn_timer_start(c, c->mute_until_ms - now);
        return;
    }
    c->muted = false;
    conn_dispatch(c);
    if (!c->closing)
        conn_update_reading(c);
}

/* Once per loop iteration while connections have yielded: give each of
 * those on the list now its next turn, in order.  One that yields again
 * goes to the tail, for the next iteration. */
static void resume_cb(uv_idle_t *h)
{
    mk_net_listener_t *l = h->data;
    for (int n = l->ycount; n > 0 && l->yhead; n--) {
        mk_net_conn_t *c = l->yhead;
        conn_unyield(c);
        conn_dispatch(c);
        if (!c->closing)
            conn_update_reading(c);
    }
    if (!l->yhead)
        uv_idle_stop(h);
}

static void conn_yield(mk_net_conn_t *c)
{
    mk_net_listener_t *l = c->l;
    c->yielded = true;
    c->ynext = NULL;
    c->yprev = l->ytail;
    if (l->ytail)
        l->ytail->ynext = c;
    else
        l->yhead = c;
    l->ytail = c;
    l->ycount++;
    uv_idle_start(l->resume, resume_cb);
    conn_update_reading(c);
}

/* Deliver queued frames while the upper layer finishes them synchronously,
 * at most FRAMES_PER_TURN of them and BYTES_PER_TURN (see Fairness above).
 * A trampoline, not recursion: mk_net_conn_done() from inside frame_cb only
 * clears busy, and this loop picks the next frame. */
static void conn_dispatch(mk_net_conn_t *c)
{
    if (c->dispatching)
        return;
    c->dispatching = true;
    int budget = FRAMES_PER_TURN;
    size_t bytes = 0;
    while (!c->closing && !c->busy && !c->muted && !c->yielded && c->q_head && c->l) {
        if (budget-- == 0 || bytes >= BYTES_PER_TURN) {
            /* Stop reading too: that ends libuv's read burst on this socket. */
            conn_yield(c);
            break;
        }
        frame_t *f = c->q_head;
        c->q_head = f->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->in_bytes -= f->len;
        bytes += f->len;
        c->busy = true;
        uint8_t *data = f->data;
        size_t len = f->len;
        mk_free(f);
        c->l->h.frame_cb(c, data, len, c->l->ud);
    }
    c->dispatching = false;
}

void mk_net_conn_mute(mk_net_conn_t *c, uint64_t ms)
{
    if (c->closing || !c->l || ms == 0)
        return;
    uint64_t until = mk_mono_ms() + ms;
    if (c->muted && until <= c->mute_until_ms)
        return;
    c->muted = true;
    c->mute_until_ms = until;
    conn_unyield(c);
    if (conn_timer_start(c, until - mk_mono_ms()))
        conn_update_reading(c);
}

bool mk_net_conn_is_muted(const mk_net_conn_t *c) { return c->muted; }

void mk_net_conn_done(mk_net_conn_t *c)
{
    c->busy = false;
    if (c->closing)
        return;
    conn_dispatch(c);
    if (!c->closing)
        conn_update_reading(c);
}

static void write_cb(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    mk_net_conn_t *c = req->handle->data;
    mk_free(w->data);
    mk_free(w);
    if (status < 0) {
        if (status != UV_ECANCELED)
            mk_net_conn_close(c, uv_strerror(status));
        return;
    }
    c->last_active_ms = mk_mono_ms();
    conn_update_reading(c);
}

void mk_net_conn_send(mk_net_conn_t *c, uint8_t *data, size_t len)
{
    if (c->closing) {
        mk_free(data);
        return;
    }
    if (mk_net_conn_is_tls(c)) {
        char why[300];
        int rc = c->tls ? mk_net_tls_conn_write(c->tls, data, len, why, sizeof(why)) : MK_ERR_STATE;
        mk_free(data);
        if (rc < 0) {
            mk_net_conn_close(c, c->tls ? why : "send before the TLS handshake");
            return;
        }
        conn_tls_flush(c);
        return;
    }
    conn_write_raw(c, data, len);
}

/* Write bytes as they are (ciphertext on a TLS connection).  Takes ownership
 * of data. */
static void conn_write_raw(mk_net_conn_t *c, uint8_t *data, size_t len)
{
    if (c->closing) {
        mk_free(data);
        return;
    }
    write_req_t *w = mk_malloc(sizeof(*w));
    if (!w) {
        mk_free(data);
        mk_net_conn_close(c, "out of memory sending");
        return;
    }
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (rc < 0) {
        mk_free(data);
        mk_free(w);
        mk_net_conn_close(c, uv_strerror(rc));
        return;
    }
    conn_update_reading(c);
}

/* ================================================================= listener */

/* max.connections and max.connections.per.ip against this listener's open
 * connections (c not yet among them).  false: refuse, logged here.  The
 * per-IP count walks the list: accepts are rare next to requests, and the
 * walk stops at the limit. */
static bool accept_allowed(mk_net_listener_t *l, const mk_net_conn_t *c)
{
    const mk_net_config_t *cfg = &l->cfg;
    if (l->nconns >= cfg->max_connections) {
        mk_warn("connection %s refused on port %d: %d open connections (max.connections)", c->peer, l->port,
                l->nconns);
        return false;
    }
    if (cfg->max_connections_per_ip >= l->nconns + 1)
        return true; /* cannot be reached: skip the walk */
    int same = 0;
    for (const mk_net_conn_t *o = l->conns; o; o = o->next)
        if (strcmp(o->ip, c->ip) == 0 && ++same >= cfg->max_connections_per_ip)
            break;
    if (same >= cfg->max_connections_per_ip) {
        mk_warn("connection %s refused on port %d: %d open connections from %s (max.connections.per.ip)", c->peer,
                l->port, same, c->ip);
        return false;
    }
    return true;
}

/* connections.max.idle.ms: close what has been quiet for that long. */
static void idle_sweep_cb(uv_timer_t *t)
{
    mk_net_listener_t *l = t->data;
    uint64_t now = mk_mono_ms();
    uint64_t limit = (uint64_t)l->cfg.idle_ms;
    net_heap_trim();
    mk_net_conn_t *c = l->conns;
    while (c) {
        mk_net_conn_t *next = c->next; /* closing unlinks c */
        if (!c->busy && !c->muted && !c->q_head && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0 &&
            now - c->last_active_ms > limit) {
            char why[96];
            snprintf(why, sizeof(why), "idle for %llu ms (connections.max.idle.ms=%lld)",
                     (unsigned long long)(now - c->last_active_ms), (long long)l->cfg.idle_ms);
            l->idle_closed++;
            mk_net_conn_close(c, why);
        }
        c = next;
    }
}

static void accept_cb(uv_stream_t *server, int status)
{
    mk_net_listener_t *l = server->data;
    if (status < 0) {
        mk_warn("accept on port %d: %s", l->port, uv_strerror(status));
        return;
    }
    mk_net_conn_t *c = mk_calloc(1, sizeof(*c));
    if (!c) {
        mk_warn("accept on port %d: out of memory", l->port);
        return;
    }
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    snprintf(c->peer, sizeof(c->peer), "?");
    snprintf(c->ip, sizeof(c->ip), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        int port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", c->ip, port);
    }
    if (!accept_allowed(l, c)) {
        l->refused++;
        uv_close((uv_handle_t *)&c->tcp, conn_free_cb); /* never linked: no close_cb */
        return;
    }
    c->last_active_ms = mk_mono_ms();
    c->l = l;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    if (l->h.accept_cb)
        l->h.accept_cb(c, l->ud);
    if (!c->closing)
        conn_update_reading(c);
}

int mk_net_tcp_listen(uv_loop_t *loop, uv_tcp_t *tcp, const char *host, int port, int backlog,
                      uv_connection_cb cb, int *bound_port)
{
    struct sockaddr_storage addr;
    int rc;
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    uv_tcp_init(loop, tcp);
    if (rc == 0)
        rc = uv_tcp_bind(tcp, (struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)tcp, backlog, cb);
    if (rc < 0)
        return rc;
    struct sockaddr_storage bound;
    int bl = sizeof(bound);
    uv_tcp_getsockname(tcp, (struct sockaddr *)&bound, &bl);
    *bound_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

bool mk_net_host_is_wildcard(const char *host)
{
    return !host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "[::]") == 0;
}

/* Can this process bind addr (port 0)?  That is what "an address of this
 * machine" means here: a name that resolves elsewhere cannot be bound. */
static bool addr_bindable(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_storage a;
    memcpy(&a, addr, len);
    if (a.ss_family == AF_INET)
        ((struct sockaddr_in *)&a)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)&a)->sin6_port = 0;
    bool ok = bind(fd, (struct sockaddr *)&a, len) == 0;
    close(fd);
    return ok;
}

const char *mk_net_wildcard_advertise(const char *host, char *out, size_t n)
{
    static char why[400];
    bool v6 = strchr(host, ':') != NULL;
    char name[256];
    if (gethostname(name, sizeof(name)) == 0 && name[0]) {
        name[sizeof(name) - 1] = 0;
        struct addrinfo hints = {.ai_family = v6 ? AF_UNSPEC : AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
        if (getaddrinfo(name, NULL, &hints, &res) == 0) {
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                char ip[INET6_ADDRSTRLEN] = "?";
                if (!addr_bindable(ai->ai_addr, ai->ai_addrlen))
                    continue;
                getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST);
                snprintf(out, n, "%s", name);
                snprintf(why, sizeof(why), "the host name, which resolves to %s on this machine", ip);
                freeaddrinfo(res);
                return why;
            }
            freeaddrinfo(res);
            snprintf(why, sizeof(why), "loopback: the host name %s resolves to no address of this machine", name);
        } else {
            snprintf(why, sizeof(why), "loopback: the host name %s does not resolve", name);
        }
    } else {
        snprintf(why, sizeof(why), "loopback: this machine has no host name");
    }
    snprintf(out, n, "%s", v6 ? "::1" : "127.0.0.1");
    return why;
}

void mk_net_host_port(const char *host, int port, char *out, size_t n)
{
    snprintf(out, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

int mk_net_listener_open(uv_loop_t *loop, const char *host, int port, const mk_net_config_t *cfg,
                         const mk_net_handler_t *h, void *ud, mk_net_listener_t **out)
{
    mk_net_listener_t *l = mk_calloc(1, sizeof(*l));
    if (!l)
        return MK_ERR_NOMEM;
    l->loop = loop;
    l->cfg = *cfg;
    l->h = *h;
    l->ud = ud;
    l->tcp.data = l;
    int rc = mk_net_tcp_listen(loop, &l->tcp, host, port, 511, accept_cb, &l->port);
    if (rc == 0) {
        l->resume = mk_malloc(sizeof(*l->resume));
        if (!l->resume)
            rc = MK_ERR_NOMEM;
    }
    if (rc == 0 && cfg->idle_ms > 0) {
        l->idle_timer = mk_malloc(sizeof(uv_timer_t));
        if (!l->idle_timer)
            rc = MK_ERR_NOMEM;
    }
    if (rc < 0) {
        mk_free(l->resume);
        uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)mk_free);
        return rc;
    }
    uv_idle_init(loop, l->resume);
    l->resume->data = l;
    listeners_open++;
    if (l->idle_timer) {
        uint64_t period = (uint64_t)MK_MIN(MK_MAX(cfg->idle_ms / 5, 10), 1000);
        uv_timer_init(loop, l->idle_timer);
        l->idle_timer->data = l;
        uv_timer_start(l->idle_timer, idle_sweep_cb, period, period);
        uv_unref((uv_handle_t *)l->idle_timer);
    }
    *out = l;
    return 0;
}

int mk_net_listener_port(const mk_net_listener_t *l) { return l->port; }
void mk_net_listener_set_tls(mk_net_listener_t *l, mk_net_tls_t *t) { l->tls = t; }
int mk_net_listener_conn_count(const mk_net_listener_t *l) { return l->nconns; }
uint64_t mk_net_listener_refused_count(const mk_net_listener_t *l) { return l->refused; }
uint64_t mk_net_listener_idle_closed_count(const mk_net_listener_t *l) { return l->idle_closed; }

void mk_net_listener_close(mk_net_listener_t *l)
{
    l->closing = true;
    if (l->idle_timer) {
        uv_timer_stop(l->idle_timer);
        uv_close((uv_handle_t *)l->idle_timer, (uv_close_cb)mk_free);
        l->idle_timer = NULL;
    }
    while (l->conns)
        mk_net_conn_close(l->conns, "listener stopping");
    uv_idle_stop(l->resume);
    uv_close((uv_handle_t *)l->resume, (uv_close_cb)mk_free);
    l->resume = NULL;
    /* The listener struct starts with its uv_tcp_t, so libuv frees it whole. */
    uv_close((uv_handle_t *)&l->tcp, (uv_close_cb)mk_free);
    /* The count is per thread, and a listener may be opened on one thread and
     * closed on another (the embedding API opens a server, then hands its loop
     * to a new thread): any close that leaves this thread with none of its own
     * open frees the buffer; a later read on the thread allocates it again. */
    if (--listeners_open <= 0) {
        listeners_open = 0;
        mk_free(read_buf);
        read_buf = NULL;
    }
}
