/*
 * httpd.c -- the connection plumbing shared by the two HTTP/1.1 servers
 * (httpd.h says what it owns): accept and the connection list, the shared
 * read buffer, writes and their accounting, reading paused while unsent
 * output is at the mark, the lingering close, the sweep, reason phrases.
 */
#include "httpd/httpd.h"

#include <string.h>

typedef struct write_req_s {
    uv_write_t req;
    mk_httpd_conn_t *c;
    char *data;
    size_t len;
} write_req_t;

/* One table for both servers: a status the one server sends and the other
 * does not is never sent by the other. */
const char *mk_httpd_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/* ================================================================= writing */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    if (status < 0)
        mk_httpd_conn_close(req->data);
}

/* A lingering close (as nginx does): closing with unread input would reset
 * the connection, and a reset can destroy the answer before the client has
 * read it. */
void mk_httpd_conn_finish(mk_httpd_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    c->lingering = true;
    c->last_active_ms = mk_mono_ms();
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
        mk_httpd_conn_close(c);
        return;
    }
    mk_httpd_conn_update_reading(c);
}

static void write_cb(uv_write_t *w, int status)
{
    write_req_t *wr = (write_req_t *)w;
    mk_httpd_conn_t *c = wr->c;
    size_t len = wr->len;
    c->writes--;
    c->out_pending -= len;
    mk_free(wr->data);
    mk_free(wr);
    if (status < 0 || c->closing) {
        mk_httpd_conn_close(c); /* nothing when already closing */
        return;
    }
    if (c->ops->written && c->ops->written(c, len))
        return;
    if (c->writes == 0 && c->close_after_write && !c->paused) {
        mk_httpd_conn_finish(c);
        return;
    }
    mk_httpd_conn_update_reading(c);
}

void mk_httpd_conn_write(mk_httpd_conn_t *c, char *data, size_t len)
{
    if (c->closing) {
        mk_free(data);
        return;
    }
    write_req_t *wr = mk_malloc(sizeof(*wr));
    if (!wr) {
        mk_free(data);
        mk_httpd_conn_close(c);
        return;
    }
    wr->c = c;
    wr->data = data;
    wr->len = len;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) < 0) {
        mk_free(data);
        mk_free(wr);
        mk_httpd_conn_close(c);
        return;
    }
    c->writes++;
    c->out_pending += len;
    mk_httpd_conn_update_reading(c);
}

void mk_httpd_conn_continue(mk_httpd_conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char *d = mk_malloc(sizeof(cont) - 1);
    if (d) {
        memcpy(d, cont, sizeof(cont) - 1);
        mk_httpd_conn_write(c, d, sizeof(cont) - 1);
    }
}

/* ================================================================= reading */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    mk_httpd_conn_t *c = h->data;
    (void)suggested;
    if (!c->srv) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = c->srv->rbuf;
    buf->len = sizeof(c->srv->rbuf);
}

void mk_httpd_conn_update_reading(mk_httpd_conn_t *c)
{
    if (c->closing)
        return;
    bool want = c->lingering || (!c->stop_parsing && !c->paused && c->out_pending < c->ops->max_out);
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, c->ops->read) == 0)
            c->reading = true;
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* ============================================================= connections */

static void conn_free_cb(uv_handle_t *h)
{
    mk_httpd_conn_t *c = h->data;
    if (c->ops->free)
        c->ops->free(c);
    mk_free(c);
}

void mk_httpd_conn_close(mk_httpd_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    mk_httpd_t *h = c->srv;
    if (h) {
        if (c->ops->closing)
            c->ops->closing(c);
        if (c->prev)
            c->prev->next = c->next;
        else
            h->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        h->nconns--;
        c->srv = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

mk_httpd_conn_t *mk_httpd_accept(mk_httpd_t *h, size_t size)
{
    mk_httpd_conn_t *c = mk_calloc(1, size);
    if (!c)
        return NULL;
    uv_tcp_init(h->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept((uv_stream_t *)&h->tcp, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)mk_free);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->srv = h;
    c->ops = h->ops;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    c->last_active_ms = mk_mono_ms();
    return c;
}

/* ================================================================ listener */

void mk_httpd_init(mk_httpd_t *h, uv_loop_t *loop, const mk_httpd_ops_t *ops)
{
    h->loop = loop;
    h->ops = ops;
    h->tcp.data = h;
}

void mk_httpd_sweep(mk_httpd_t *h, uint64_t now_ms)
{
    mk_httpd_conn_t *c = h->conns;
    while (c) {
        mk_httpd_conn_t *next = c->next;
        if (now_ms - c->last_active_ms > (c->lingering ? h->ops->linger_ms : h->ops->idle_ms))
            mk_httpd_conn_close(c);
        c = next;
    }
}

void mk_httpd_close(mk_httpd_t *h)
{
    while (h->conns)
        mk_httpd_conn_close(h->conns);
    /* h->tcp is the first member of the server's struct: libuv frees it whole. */
    uv_close((uv_handle_t *)&h->tcp, (uv_close_cb)mk_free);
}
