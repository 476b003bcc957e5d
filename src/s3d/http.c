/*
 * http.c -- the bundled S3 server's HTTP/1.1: a libuv listener on the s3d
 * loop, its connections, http_parser (Debian's libhttp-parser), and the
 * writing of answers, small or streamed from a file.
 *
 * A request is read in three steps, and the handler (ops.c) sees each:
 *   headers   the request line and headers are collected into bounded
 *             buffers (URL <= MK_S3_MAX_URL, names and values <=
 *             MK_S3_MAX_HEADER_BYTES in <= MK_S3_MAX_HEADERS lines), then
 *             handed over as an mk_s3_req_t: begin() routes, authenticates
 *             and either wants the body or answers at once;
 *   body      each piece goes to body() as it arrives (nothing is
 *             buffered here; an upload streams to its temporary file);
 *   complete  complete() fills the answer.
 * "Expect: 100-continue" is answered with 100 when begin() wants the body
 * (also an empty one, as S3 does); a refusal is the final answer, sent
 * before the body, after which the connection is closed.  Any answer given before the whole body was
 * read closes the connection too (the rest of the body is drained, not
 * parsed).
 *
 * Answers: a status line, S3's fixed headers (x-amz-request-id,
 * x-amz-id-2, Date, Server), the handler's own lines, then a small body,
 * or a file range (GetObject) written 256 KiB at a time as the socket
 * drains, so a large object never sits in memory.  While a file is being
 * streamed the parser is paused and unparsed pipelined bytes are kept
 * aside; they are parsed when the file is done, so answers stay in order.
 * Header names are spelled as S3 spells them (ETag, Content-Length,
 * x-amz-request-id): libs3 reads some of them case-sensitively.
 *
 * Limits: MK_S3_MAX_CONNS connections (503 SlowDown beyond), reading pauses
 * while unsent output is above MK_S3_MAX_OUT, a connection silent for
 * MK_S3_IDLE_MS is closed, and a closing one is drained for at most
 * MK_S3_LINGER_MS (a lingering close, so that the client reads the answer
 * before a reset).  Malformed HTTP gets a 400 S3 error and a close.
 *
 * The connection plumbing (listener and connection list, the shared read
 * buffer, writes and the unsent-output mark, the lingering close, the idle
 * and linger sweep, reason phrases) is httpd/'s, shared with admin/; this
 * file is the S3 server's part of it.
 *
 * Ownership: a connection is freed only in its libuv close callback; the
 * handler's end() is called exactly once per begun request, also when the
 * connection goes away first.  Threads: the s3d thread only.
 */
#include "s3d/s3d_int.h"
#include "httpd/httpd.h"
#include "net/net.h"

#include <errno.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct conn_s conn_t;

struct mk_s3_http_s {
    mk_httpd_t hd;            /* first: listener, connections, read buffer (httpd.h) */
    const mk_s3_handler_t *h;
    void *ud;
    uint64_t seq;             /* request ids */
    uint64_t id_salt;
    http_parser_settings settings;
    mk_s3_fault_state_t *fault;   /* the fault switch (s3d.c), or NULL */
    uv_timer_t *delay_timer;  /* owned: wakes connections held by a SLOW fault */
};

struct conn_s {
    mk_httpd_conn_t hc;       /* first: socket, writes, reading, closing (httpd.h) */
    http_parser parser;
    mk_s3_req_t *req;         /* the request being read, or NULL */
    bool begun;               /* begin() was called for req */
    bool keep_alive;
    mk_buf_t url;
    mk_buf_t hbuf;            /* "name\0value\0" ... */
    int nh;
    bool in_value;
    int err;                  /* MK_S3E_* from a callback that stopped the parser */
    uint8_t *pending;         /* unparsed bytes kept while paused */
    size_t pending_len;
    int sfd;                  /* the file being streamed, or -1 */
    uint64_t soff, sleft;
    uint64_t delay_due_ms;    /* SLOW fault: held until then (monotonic), 0 = not held */
};

/* The server of an open connection (NULL once closing). */
static mk_s3_http_t *server_of(const conn_t *c) { return (mk_s3_http_t *)c->hc.srv; }

/* ================================================================ answers */

void mk_s3_resp_init(mk_s3_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    r->status = 200;
    r->fd = -1;
    mk_buf_init(&r->head);
    mk_buf_init(&r->body);
}

void mk_s3_resp_free(mk_s3_resp_t *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    mk_buf_free(&r->head);
    mk_buf_free(&r->body);
}

void mk_s3_resp_header(mk_s3_resp_t *r, const char *name, const char *fmt, ...)
{
    char v[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    /* never let a value end the header block */
    for (char *p = v; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    mk_buf_put(&r->head, name, strlen(name));
    mk_buf_put(&r->head, ": ", 2);
    mk_buf_put(&r->head, v, strlen(v));
    mk_buf_put(&r->head, "\r\n", 2);
}

static int headers_begin(conn_t *c);
static void delay_cb(uv_timer_t *t);
static void conn_parse(conn_t *c, const char *data, size_t n);
static void stream_more(conn_t *c);

/* A streamed answer is done: the parser may go on with what was kept. */
static void conn_resume(conn_t *c)
{
    if (!c->hc.paused || c->hc.closing)
        return;
    c->hc.paused = false;
    uint8_t *p = c->pending;
    size_t n = c->pending_len;
    c->pending = NULL;
    c->pending_len = 0;
    if (!c->hc.stop_parsing) {
        if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
            http_parser_pause(&c->parser, 0);
        if (n)
            conn_parse(c, (const char *)p, n);
    }
    mk_free(p);
    if (c->hc.closing || c->hc.paused)
        return;
    if (c->hc.writes == 0 && c->hc.close_after_write)
        mk_httpd_conn_finish(&c->hc);
    else
        mk_httpd_conn_update_reading(&c->hc);
}

/* Write the next pieces of the streamed file while output is low. */
static void stream_more(conn_t *c)
{
    while (!c->hc.closing && c->sfd >= 0 && c->hc.out_pending < MK_S3_MAX_OUT / 2) {
        if (!c->sleft) {
            close(c->sfd);
            c->sfd = -1;
            conn_resume(c);
            return;
        }
        size_t want = (size_t)MK_MIN((uint64_t)MK_S3_STREAM_CHUNK, c->sleft);
        char *buf = mk_malloc(want);
        if (!buf) {
            mk_httpd_conn_close(&c->hc);
            return;
        }
        ssize_t got;
        do
            got = pread(c->sfd, buf, want, (off_t)c->soff);
        while (got < 0 && errno == EINTR);
        if (got <= 0) {
            /* the status line is out: all we can do is cut the answer short */
            mk_warn("s3: read error while sending an object: %s", got < 0 ? strerror(errno) : "short file");
            mk_free(buf);
            mk_httpd_conn_close(&c->hc);
            return;
        }
        c->soff += (uint64_t)got;
        c->sleft -= (uint64_t)got;
        mk_httpd_conn_write(&c->hc, buf, (size_t)got);
    }
}

/* Serialize and queue an answer.  Takes the answer's file, if any. */
static void conn_respond(conn_t *c, mk_s3_req_t *req, mk_s3_resp_t *r, bool head)
{
    if (!mk_buf_ok(&r->body) || !mk_buf_ok(&r->head)) {
        mk_buf_reset(&r->body);
        mk_buf_reset(&r->head);
        r->body.oom = r->head.oom = false;
        r->status = 500;
        r->content_type = NULL;
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        r->close = true;
    }
    if (r->close)
        c->keep_alive = false;
    char date[32];
    mk_s3_http_date(mk_now_ms(), date);
    const char *id = req ? req->id : "0000000000000000";
    mk_buf_t out;
    mk_buf_init(&out);
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "HTTP/1.1 %d %s\r\nx-amz-request-id: %s\r\nx-amz-id-2: minikora/%s\r\nDate: %s\r\n"
                     "Server: minikora\r\n",
                     r->status, mk_httpd_reason(r->status), id, id, date);
    mk_buf_put(&out, line, (size_t)n);
    mk_buf_put(&out, r->head.data, r->head.len);
    uint64_t clen = r->fd >= 0 || r->head_only ? r->len : r->body.len;
    if (!r->no_body) {
        if (r->content_type) {
            n = snprintf(line, sizeof(line), "Content-Type: %s\r\n", r->content_type);
            mk_buf_put(&out, line, (size_t)n);
        }
        n = snprintf(line, sizeof(line), "Content-Length: %llu\r\n", (unsigned long long)clen);
        mk_buf_put(&out, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "Connection: %s\r\n\r\n", c->keep_alive ? "keep-alive" : "close");
    mk_buf_put(&out, line, (size_t)n);
    bool send_body = !head && !r->no_body && !r->head_only;
    if (send_body && r->fd < 0)
        mk_buf_put(&out, r->body.data, r->body.len);
    if (!mk_buf_ok(&out)) {
        mk_buf_free(&out);
        mk_httpd_conn_close(&c->hc);
        return;
    }
    size_t len;
    char *data = (char *)mk_buf_steal(&out, &len);
    mk_httpd_conn_write(&c->hc, data, len);
    if (send_body && r->fd >= 0 && r->len > 0 && !c->hc.closing) {
        c->sfd = r->fd;
        r->fd = -1;
        c->soff = r->off;
        c->sleft = r->len;
    }
    if (!c->keep_alive) {
        c->hc.close_after_write = true;
        c->hc.stop_parsing = true;
    }
}

/* Answer the current request (or, with none, a bare error) and finish it:
 * the handler's end() runs (first, so that its counters are current when
 * the client reads the answer) and the request is freed. */
static void finish_request(conn_t *c, mk_s3_resp_t *r)
{
    mk_s3_req_t *req = c->req;
    mk_s3_http_t *s = server_of(c);
    bool head = c->parser.method == HTTP_HEAD;
    if (s)
        s->h->end(s->ud, req, r->status);
    c->begun = false;
    conn_respond(c, req, r, head);
    mk_s3_resp_free(r);
    if (req) {
        c->req = NULL;
        mk_arena_free(&req->arena);
        mk_free(req);
    }
    if (c->sfd >= 0) {
        /* pause until the file is out; pipelined requests wait */
        c->hc.paused = true;
        if (!c->hc.stop_parsing && HTTP_PARSER_ERRNO(&c->parser) == HPE_OK)
            http_parser_pause(&c->parser, 1);
        stream_more(c);
    } else if (c->hc.close_after_write && c->hc.writes == 0) {
        mk_httpd_conn_finish(&c->hc);
    }
}

/* An S3 error as the whole answer, from this layer (no handler involved). */
static void fail_resp(mk_s3_resp_t *r, int err, const char *id)
{
    mk_s3_resp_init(r);
    r->status = mk_s3_err_status(err);
    r->content_type = "application/xml";
    r->close = true;
    mk_buf_t *b = &r->body;
    static const char hdr[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>";
    mk_buf_put(b, hdr, sizeof(hdr) - 1);
    mk_s3_xml_elem(b, "Code", mk_s3_err_code(err));
    mk_s3_xml_elem(b, "Message", mk_s3_err_message(err));
    mk_s3_xml_elem(b, "RequestId", id);
    mk_buf_put(b, "</Error>", 8);
}

static void conn_fail(conn_t *c, int err)
{
    mk_s3_resp_t r;
    fail_resp(&r, err, c->req ? c->req->id : "0000000000000000");
    c->hc.stop_parsing = true;
    finish_request(c, &r);
}

/* ========================================================= parser callbacks */

static int stop_with(conn_t *c, int err)
{
    if (!c->err)
        c->err = err;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    conn_t *c = p->data;
    mk_buf_reset(&c->url);
    mk_buf_reset(&c->hbuf);
    c->nh = 0;
    c->in_value = false;
    c->begun = false;
    if (c->req) { /* cannot happen: every request is finished before the next begins */
        mk_arena_free(&c->req->arena);
        mk_free(c->req);
    }
    c->req = mk_calloc(1, sizeof(*c->req));
    if (!c->req)
        return stop_with(c, MK_S3E_INTERNAL);
    mk_arena_init(&c->req->arena);
    mk_s3_http_t *s = server_of(c);
    snprintf(c->req->id, sizeof(c->req->id), "%016llX", (unsigned long long)(s->id_salt + ++s->seq));
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->url.len + n > MK_S3_MAX_URL)
        return stop_with(c, MK_S3E_URI_TOO_LONG);
    mk_buf_put(&c->url, at, n);
    return mk_buf_ok(&c->url) ? 0 : stop_with(c, MK_S3E_INTERNAL);
}

static int header_bytes(conn_t *c, size_t n)
{
    if (c->hbuf.len + n + 2 > MK_S3_MAX_HEADER_BYTES)
        return stop_with(c, MK_S3E_HEADERS_TOO_LARGE);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (header_bytes(c, n))
        return -1;
    if (c->in_value || c->nh == 0) {
        if (c->in_value)
            mk_buf_put(&c->hbuf, "", 1); /* end the value */
        if (++c->nh > MK_S3_MAX_HEADERS)
            return stop_with(c, MK_S3E_HEADERS_TOO_LARGE);
        c->in_value = false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = at[i];
        ch = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        mk_buf_put(&c->hbuf, &ch, 1);
    }
    return mk_buf_ok(&c->hbuf) ? 0 : stop_with(c, MK_S3E_INTERNAL);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (header_bytes(c, n))
        return -1;
    if (!c->in_value) {
        mk_buf_put(&c->hbuf, "", 1); /* end the name */
        c->in_value = true;
    }
    mk_buf_put(&c->hbuf, at, n);
    return mk_buf_ok(&c->hbuf) ? 0 : stop_with(c, MK_S3E_INTERNAL);
}

/* Split "/path?query" (or an absolute "http://host/path?query"). */
static int split_target(mk_s3_req_t *req, char *url)
{
    char *path = url;
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
        path = strchr(url + (url[4] == ':' ? 7 : 8), '/');
        if (!path)
            return -1;
    }
    if (path[0] != '/')
        return -1;
    char *hash = strchr(path, '#');
    if (hash)
        *hash = 0;
    char *q = strchr(path, '?');
    if (q)
        *q++ = 0;
    req->raw_path = path;
    req->raw_query = q ? q : "";
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
    return s;
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    mk_s3_req_t *req = c->req;
    mk_s3_http_t *s = server_of(c);
    if (c->in_value)
        mk_buf_put(&c->hbuf, "", 1);
    else if (c->nh)
        mk_buf_put(&c->hbuf, "\0", 2); /* a name without a value */
    mk_buf_put(&c->url, "", 1);
    if (!mk_buf_ok(&c->url) || !mk_buf_ok(&c->hbuf))
        return stop_with(c, MK_S3E_INTERNAL);
    req->method = http_method_str((enum http_method)p->method);
    char *url = mk_arena_strndup(&req->arena, (const char *)c->url.data, c->url.len - 1);
    req->hdrs = mk_arena_alloc(&req->arena, sizeof(mk_s3_hdr_t) * (size_t)(c->nh + 1));
    char *hb = c->hbuf.len ? mk_arena_strndup(&req->arena, (const char *)c->hbuf.data, c->hbuf.len) : NULL;
    if (!url || !req->hdrs || (c->hbuf.len && !hb))
        return stop_with(c, MK_S3E_INTERNAL);
    if (split_target(req, url) < 0)
        return stop_with(c, MK_S3E_INVALID_URI);
    char *h = hb, *end = hb ? hb + c->hbuf.len : NULL;
    for (int i = 0; i < c->nh && h && h < end; i++) {
        char *name = h;
        char *val = name + strlen(name) + 1;
        if (val >= end)
            break;
        h = val + strlen(val) + 1;
        req->hdrs[req->nhdrs].name = name;
        req->hdrs[req->nhdrs].value = trim(val);
        req->nhdrs++;
    }
    req->has_length = p->content_length != ULLONG_MAX && !(p->flags & F_CHUNKED);
    req->content_length = req->has_length ? p->content_length : 0;
    req->chunked = (p->flags & F_CHUNKED) != 0;
    const char *expect = mk_s3_req_header(req, "expect");
    req->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
    req->now_ms = mk_now_ms();
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;

    /* The fault switch (s3d.h), before the handler sees the request. */
    uint64_t fw = s->fault ? atomic_load(&s->fault->word) : 0;
    int ftype = (int)(fw & 0xff);
    if (ftype == MK_S3D_FAULT_DOWN) {
        atomic_fetch_add(&s->fault->injected, 1);
        mk_httpd_conn_close(&c->hc);
        return -1;
    }
    if (ftype == MK_S3D_FAULT_ERROR) {
        int pct = (int)((fw >> 8) & 0xff);
        if (pct == 0 || (int)(s->seq % 100) < pct) {
            atomic_fetch_add(&s->fault->injected, 1);
            return stop_with(c, ((fw >> 16) & 0xffff) == 503 ? MK_S3E_SLOW_DOWN : MK_S3E_INTERNAL);
        }
    }
    if (ftype == MK_S3D_FAULT_SLOW) {
        /* Held: the parser pauses here and the delay timer calls begin. */
        atomic_fetch_add(&s->fault->injected, 1);
        c->delay_due_ms = mk_mono_ms() + (fw >> 32);
        c->hc.paused = true;
        http_parser_pause(p, 1);
        uint64_t due = uv_timer_get_due_in(s->delay_timer);
        if (!uv_is_active((uv_handle_t *)s->delay_timer) || due > (fw >> 32))
            uv_timer_start(s->delay_timer, delay_cb, fw >> 32, 0);
        return 0;
    }
    return headers_begin(c);
}

/* The second half of the headers: the handler's begin and its answer or
 * the body that follows (also run by delay_cb for a request a SLOW fault
 * held).  0 to parse on, -1 to stop. */
static int headers_begin(conn_t *c)
{
    mk_s3_req_t *req = c->req;
    mk_s3_http_t *s = server_of(c);
    mk_s3_resp_t r;
    mk_s3_resp_init(&r);
    c->begun = true;
    int rc = s->h->begin(s->ud, req, &r);
    bool body_coming = req->chunked || req->content_length > 0;
    if (rc == MK_S3_ANSWERED) {
        /* A final answer instead of 100 closes the connection when a body
         * may follow, and also after an "Expect: 100-continue": botocore
         * keeps the status line of such an answer for the next request on
         * the same connection (real S3 always sends 100 first). */
        if (body_coming || req->expect_continue) {
            r.close = true;
            c->hc.stop_parsing = true;
        }
        finish_request(c, &r);
        return c->hc.stop_parsing || c->hc.closing ? -1 : 0;
    }
    mk_s3_resp_free(&r);
    /* 100 even for an empty body, as S3 does (see above) */
    if (req->expect_continue)
        mk_httpd_conn_continue(&c->hc);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (!c->req || !c->begun)
        return 0; /* answered at the headers, body drained (cannot happen: parsing stopped) */
    mk_s3_http_t *s = server_of(c);
    s->h->count(s->ud, n, 0, 0);
    mk_s3_resp_t r;
    mk_s3_resp_init(&r);
    if (s->h->body(s->ud, c->req, (const uint8_t *)at, n, &r) == MK_S3_ANSWERED) {
        r.close = true;
        c->hc.stop_parsing = true;
        finish_request(c, &r);
        return -1;
    }
    mk_s3_resp_free(&r);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    if (c->hc.closing)
        return -1;
    if (c->req && c->begun) {
        mk_s3_resp_t r;
        mk_s3_resp_init(&r);
        mk_s3_http_t *s = server_of(c);
        s->h->complete(s->ud, c->req, &r);
        finish_request(c, &r);
    }
    if (c->hc.closing)
        return -1;
    if (c->hc.stop_parsing)
        return -1;
    /* Request bodies are large: do not keep their header buffers big. */
    if (c->hbuf.cap > 16384)
        mk_buf_free(&c->hbuf);
    if (c->url.cap > 16384)
        mk_buf_free(&c->url);
    return 0;
}

/* ============================================================= connections */

/* A write went out: count it; while a file is streamed, write its next
 * pieces (the default of httpd.c otherwise). */
static bool conn_written(mk_httpd_conn_t *hc, size_t len)
{
    conn_t *c = (conn_t *)hc;
    mk_s3_http_t *s = server_of(c);
    s->h->count(s->ud, 0, len, 0);
    c->hc.last_active_ms = mk_mono_ms();
    if (c->sfd >= 0) {
        stream_more(c);
        return true;
    }
    return false;
}

static void conn_closing(mk_httpd_conn_t *hc)
{
    conn_t *c = (conn_t *)hc;
    mk_s3_http_t *s = server_of(c);
    if (c->req) {
        s->h->end(s->ud, c->req, 0); /* an upload in progress is dropped */
        mk_arena_free(&c->req->arena);
        mk_free(c->req);
        c->req = NULL;
    }
    if (c->sfd >= 0) {
        close(c->sfd);
        c->sfd = -1;
    }
    s->h->count(s->ud, 0, 0, -1);
}

static void conn_free(mk_httpd_conn_t *hc)
{
    conn_t *c = (conn_t *)hc;
    mk_buf_free(&c->url);
    mk_buf_free(&c->hbuf);
    mk_free(c->pending);
}

/* Feed the parser; keep what it did not take when it paused. */
static void conn_parse(conn_t *c, const char *data, size_t n)
{
    size_t used = http_parser_execute(&c->parser, &server_of(c)->settings, data, n);
    if (c->hc.closing || c->hc.stop_parsing)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        size_t rest = n - used;
        if (rest) {
            uint8_t *keep = mk_malloc(c->pending_len + rest);
            if (!keep) {
                mk_httpd_conn_close(&c->hc);
                return;
            }
            memcpy(keep, data + used, rest);
            if (c->pending_len) /* cannot happen: the stream resumes with an empty pending */
                memcpy(keep + rest, c->pending, c->pending_len);
            mk_free(c->pending);
            c->pending = keep;
            c->pending_len += rest;
        }
        mk_httpd_conn_update_reading(&c->hc);
        return;
    }
    if (c->err) {
        conn_fail(c, c->err);
    } else if (e != HPE_OK || used != n) {
        mk_debug("s3: malformed HTTP request: %s", http_errno_description(e));
        conn_fail(c, e == HPE_HEADER_OVERFLOW ? MK_S3E_HEADERS_TOO_LARGE : MK_S3E_INVALID_REQUEST);
    }
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (n == 0 || c->hc.closing)
        return;
    if (n < 0) {
        if (n == UV_EOF && c->hc.writes > 0 && !c->hc.lingering) {
            /* the client is done sending (a half-close): answers already
             * queued still go out, then the connection closes */
            c->hc.close_after_write = true;
            c->hc.stop_parsing = true;
            uv_read_stop(st);
            c->hc.reading = false;
            return;
        }
        mk_httpd_conn_close(&c->hc);
        return;
    }
    c->hc.last_active_ms = mk_mono_ms();
    if (c->hc.stop_parsing || c->hc.lingering)
        return; /* answered and closing: drain */
    conn_parse(c, buf->base, (size_t)n);
}

/* SLOW fault: the held requests whose time has come go on (begin, then
 * the parser resumes with the bytes it kept); the timer is set again for
 * the next one. */
static void delay_cb(uv_timer_t *t)
{
    mk_s3_http_t *s = t->data;
    uint64_t now = mk_mono_ms(), next = 0;
    conn_t *c = (conn_t *)s->hd.conns;
    while (c) {
        conn_t *nx = (conn_t *)c->hc.next;
        if (c->delay_due_ms && !c->hc.closing) {
            if (c->delay_due_ms <= now) {
                c->delay_due_ms = 0;
                if (c->req && headers_begin(c) < 0 && !c->hc.closing)
                    c->hc.stop_parsing = true;
                conn_resume(c);
            } else if (!next || c->delay_due_ms - now < next) {
                next = c->delay_due_ms - now;
            }
        }
        c = nx;
    }
    if (next)
        uv_timer_start(s->delay_timer, delay_cb, next, 0);
}

/* Reading pauses while unsent output is at MK_S3_MAX_OUT or a file is
 * being streamed; a lingering close drains until MK_S3_LINGER_MS pass
 * without a byte from the client. */
static const mk_httpd_ops_t s3_ops = {
    .read = read_cb,
    .written = conn_written,
    .closing = conn_closing,
    .free = conn_free,
    .max_out = MK_S3_MAX_OUT,
    .idle_ms = MK_S3_IDLE_MS,
    .linger_ms = MK_S3_LINGER_MS,
};

static void accept_cb(uv_stream_t *ls, int status)
{
    mk_s3_http_t *s = ls->data;
    if (status < 0)
        return;
    if (s->fault && (atomic_load(&s->fault->word) & 0xff) == MK_S3D_FAULT_DOWN) {
        /* looks stopped: accepted and closed at once */
        uv_tcp_t *t = mk_malloc(sizeof(*t));
        if (t) {
            uv_tcp_init(s->hd.loop, t);
            if (uv_accept(ls, (uv_stream_t *)t) == 0)
                atomic_fetch_add(&s->fault->injected, 1);
            uv_close((uv_handle_t *)t, (uv_close_cb)mk_free);
        }
        return;
    }
    conn_t *c = (conn_t *)mk_httpd_accept(&s->hd, sizeof(*c));
    if (!c)
        return;
    c->sfd = -1;
    mk_buf_init(&c->url);
    mk_buf_init(&c->hbuf);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    s->h->count(s->ud, 0, 0, 1);
    if (s->hd.nconns > MK_S3_MAX_CONNS) {
        c->keep_alive = false;
        conn_fail(c, MK_S3E_SLOW_DOWN);
        return;
    }
    mk_httpd_conn_update_reading(&c->hc);
}

/* =================================================================== server */

int mk_s3_http_open(uv_loop_t *loop, const char *host, int port, const mk_s3_handler_t *h, void *ud,
                    mk_s3_http_t **out)
{
    mk_s3_http_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    mk_httpd_init(&s->hd, loop, &s3_ops);
    s->h = h;
    s->ud = ud;
    s->id_salt = mk_mono_ns() << 8;
    http_parser_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    s->delay_timer = mk_malloc(sizeof(uv_timer_t));
    if (!s->delay_timer) {
        mk_free(s);
        return MK_ERR_NOMEM;
    }
    uv_timer_init(loop, s->delay_timer);
    s->delay_timer->data = s;
    int rc = mk_net_tcp_listen(loop, &s->hd.tcp, host, port, 128, accept_cb, &s->hd.port);
    if (rc < 0) {
        uv_close((uv_handle_t *)s->delay_timer, (uv_close_cb)mk_free);
        uv_close((uv_handle_t *)&s->hd.tcp, (uv_close_cb)mk_free);
        return rc;
    }
    *out = s;
    return 0;
}

int mk_s3_http_port(const mk_s3_http_t *s) { return s->hd.port; }

void mk_s3_http_set_fault(mk_s3_http_t *s, mk_s3_fault_state_t *f) { s->fault = f; }

void mk_s3_http_sweep(mk_s3_http_t *s, uint64_t now_ms) { mk_httpd_sweep(&s->hd, now_ms); }

void mk_s3_http_close(mk_s3_http_t *s)
{
    uv_close((uv_handle_t *)s->delay_timer, (uv_close_cb)mk_free);
    mk_httpd_close(&s->hd);
}
