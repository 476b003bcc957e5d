/*
 * httpd.h -- L1: the connection plumbing of an HTTP/1.1 server on libuv,
 * shared by the admin API's server (admin/http.c) and the bundled S3
 * server's (s3d/http.c).
 *
 * What it owns: a listener's list and count of connections, the one 64 KiB
 * read buffer of a listener (parsing is done inside the read callback), the
 * write queue with its count of unsent bytes, reading paused while that
 * count is at the server's mark, the lingering close (FIN once the last
 * answer is written, then drain what the client still sends until it closes
 * or the sweep gives up, so that unread input cannot reset the connection
 * before the client has read the answer), the idle and linger sweep, and
 * the reason phrases of the status line.
 *
 * What it does not own: parsing (each server runs http_parser itself and
 * calls its own read callback), what is answered and how, the bounds on a
 * request, and what to do past the connection limit (each server answers
 * that in its own words).
 *
 * Use: a server embeds an mk_httpd_t as the FIRST member of its server
 * struct and an mk_httpd_conn_t as the FIRST member of its connection
 * struct, so that one pointer is both (and libuv's close callbacks free the
 * whole struct).  The server sets the flags stop_parsing, close_after_write
 * and paused and calls the functions here; this module calls it back
 * through its mk_httpd_ops_t.  Depends on base/ only.
 *
 * Threads: the loop thread of the server only.
 * Ownership: a connection is freed only in its libuv close callback (after
 * ops->free); pending writes are cancelled (their callbacks run) before it.
 */
#ifndef MK_HTTPD_H
#define MK_HTTPD_H

#include "base/base.h"
#include <uv.h>

#define MK_HTTPD_READ_CHUNK 65536

typedef struct mk_httpd_s mk_httpd_t;
typedef struct mk_httpd_conn_s mk_httpd_conn_t;

/* One kind of server: its callbacks and its limits (a static const). */
typedef struct mk_httpd_ops_s {
    /* The server's read callback; st->data is the connection, buf is the
     * listener's read buffer, valid until the callback returns. */
    uv_read_cb read;
    /* Optional.  One write of len bytes went out on an open connection:
     * the server's own bookkeeping.  Returns true when it has decided what
     * comes next; false for the default: the lingering close once the last
     * write of a closing exchange is out (and nothing is paused), else
     * reading is updated. */
    bool (*written)(mk_httpd_conn_t *c, size_t len);
    /* Optional.  The connection starts to close (once; c->srv is still
     * set): release what the server holds besides memory. */
    void (*closing)(mk_httpd_conn_t *c);
    /* Optional.  In the close callback: free the server's buffers (this
     * module frees the connection itself). */
    void (*free)(mk_httpd_conn_t *c);
    size_t max_out;           /* unsent bytes at which reading pauses */
    uint64_t idle_ms;         /* a connection silent this long is closed */
    uint64_t linger_ms;       /* a lingering close drains this long at most */
} mk_httpd_ops_t;

struct mk_httpd_s {
    uv_tcp_t tcp;             /* first: the close callback frees the enclosing struct */
    uv_loop_t *loop;
    const mk_httpd_ops_t *ops;   /* borrowed: the server's static const */
    int port;                 /* bound (mk_net_tcp_listen fills it) */
    mk_httpd_conn_t *conns;   /* intrusive list of open connections */
    int nconns;
    char rbuf[MK_HTTPD_READ_CHUNK];  /* shared: parsed inside the read callback */
};

struct mk_httpd_conn_s {
    uv_tcp_t tcp;             /* first: the close callback frees the enclosing struct */
    mk_httpd_t *srv;          /* NULL once closing */
    const mk_httpd_ops_t *ops;   /* borrowed: srv's, kept for the close callback */
    mk_httpd_conn_t *prev, *next;
    bool closing, reading;
    bool stop_parsing;        /* answered an error or a last request: parse no more */
    bool close_after_write;   /* the lingering close once the writes are out */
    bool paused;              /* the server holds its parser: reading is off */
    bool lingering;           /* answered and shut down: reading only to drain */
    uv_shutdown_t shutdown;
    size_t out_pending;       /* unsent bytes */
    int writes;               /* writes in flight */
    uint64_t last_active_ms;  /* monotonic */
};

/* Set up h (zeroed, the first member of its server) for ops on loop; the
 * caller then binds h->tcp (mk_net_tcp_listen) with its accept callback. */
void mk_httpd_init(mk_httpd_t *h, uv_loop_t *loop, const mk_httpd_ops_t *ops);
/* Accept one connection from the listener into a zeroed struct of size
 * bytes that starts with an mk_httpd_conn_t, and link and count it.  NULL
 * when out of memory or the accept failed (nothing is left open).  The
 * caller sets up its parts, then calls mk_httpd_conn_update_reading(). */
mk_httpd_conn_t *mk_httpd_accept(mk_httpd_t *h, size_t size);
/* Close every connection, then the listener; the listener's close
 * callback frees the struct h is the first member of. */
void mk_httpd_close(mk_httpd_t *h);
/* Close connections silent for longer than ops->idle_ms, or lingering for
 * longer than ops->linger_ms. */
void mk_httpd_sweep(mk_httpd_t *h, uint64_t now_ms);

/* Queue len bytes; takes ownership of data (mk_malloc'd).  A failure
 * closes the connection. */
void mk_httpd_conn_write(mk_httpd_conn_t *c, char *data, size_t len);
/* Queue "HTTP/1.1 100 Continue" (nothing when out of memory). */
void mk_httpd_conn_continue(mk_httpd_conn_t *c);
/* The last answer is written: FIN, then drain until the client closes (or
 * the sweep gives up). */
void mk_httpd_conn_finish(mk_httpd_conn_t *c);
/* Reading is on iff the connection is open and either drains a lingering
 * close, or parses (not stopped, not paused) with its unsent output below
 * ops->max_out. */
void mk_httpd_conn_update_reading(mk_httpd_conn_t *c);
/* Start closing (once): ops->closing, unlink, uv_close. */
void mk_httpd_conn_close(mk_httpd_conn_t *c);

/* "Not Found" for 404 (never NULL; "Unknown" for a status without one). */
const char *mk_httpd_reason(int status);

#endif
