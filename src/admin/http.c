/*
 * http.c -- the admin HTTP/1.1 server: a libuv listener, its connections,
 * request parsing with http_parser (Debian's libhttp-parser), and responses.
 *
 * A connection reads into a server-wide 64 KiB buffer (parsing is done
 * inside the read callback, so one buffer serves every connection) and feeds
 * http_parser.  The parser's callbacks collect the URL and the body into
 * per-connection buffers that are bounded before they grow:
 *
 *   request target   MK_ADMIN_MAX_URL      else 414
 *   header bytes     MK_ADMIN_MAX_HEADERS  else 431
 *   body             MK_ADMIN_MAX_BODY     else 413 (Content-Length is
 *                                          checked before any body byte)
 *   connections      MK_ADMIN_MAX_CONNS    else 503 and close
 *   unsent output    MK_ADMIN_MAX_OUT      reading pauses until it drains
 *   idle time        MK_ADMIN_IDLE_MS      the connection is closed
 *
 * Of the headers, only Expect and Authorization are kept (the latter, up to
 * MK_ADMIN_MAX_TOKEN + 16 bytes, for admin.c's token check; a longer one is
 * handed on as NULL, never truncated into something that could match).  A
 * response that asks for it carries WWW-Authenticate: Bearer (a 401).
 *
 * When a message is complete the handler answers it synchronously and the
 * response is queued; pipelined requests are answered in order.  A request
 * the parser rejects gets a 400 JSON error and the connection is shut down
 * after the answer is written, then drained for at most LINGER_MS so that
 * unread input cannot reset it before the client has read the answer.
 * Nothing from the wire is asserted.
 *
 * Bodies are JSON (jansson): mk_admin_http_json() serializes one and
 * mk_admin_http_error() writes the API's one error shape,
 *   {"error": "<code>", "message": "<sentence>"},
 * which this server uses for its own refusals and the routes for theirs.
 * The server knows nothing of routes: it hands every complete request to
 * the one handler given at open (admin.c's dispatcher) and depends on no
 * other file of admin/.
 *
 * Ownership: a connection is freed only in its libuv close callback; pending
 * writes are cancelled (their callbacks run) before it.
 */
#include "admin/admin_int.h"
#include "net/net.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define READ_CHUNK 65536
#define LINGER_MS 2000        /* draining after the last answer, at most */

typedef struct conn_s conn_t;

struct mk_http_server_s {
    uv_tcp_t tcp;             /* first: the close callback frees the struct */
    uv_loop_t *loop;
    mk_http_handler_fn fn;
    void *ud;
    int port;
    conn_t *conns;            /* intrusive list of open connections */
    int nconns;
    http_parser_settings settings;
    char rbuf[READ_CHUNK];    /* shared: parsed inside the read callback */
};

struct conn_s {
    uv_tcp_t tcp;
    mk_http_server_t *s;      /* NULL once closing */
    conn_t *prev, *next;
    http_parser parser;
    mk_buf_t url;
    mk_buf_t body;
    size_t header_bytes;
    char hname[16];           /* current header name (prefix), lower case */
    size_t hname_len;
    bool hname_done;          /* a value started: the next name is a new header */
    char hval[16];            /* current header value (prefix) */
    size_t hval_len;
    char auth[MK_ADMIN_MAX_TOKEN + 17];  /* Authorization value, bounded */
    size_t auth_len;
    bool auth_too_long;
    bool expect_continue;
    int err_status;           /* set by a callback that stopped the parser */
    const char *err_code;
    char err_msg[128];
    bool closing, reading, close_after_write, stop_parsing;
    bool lingering;           /* answered and shut down: reading only to drain */
    uv_shutdown_t shutdown;
    size_t out_pending;       /* unsent bytes */
    int writes;               /* writes in flight */
    uint64_t last_active_ms;
};

typedef struct write_req_s {
    uv_write_t req;
    conn_t *c;
    char *data;
    size_t len;
} write_req_t;

/* ================================================================ responses */

const char *mk_admin_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void mk_admin_http_allow_str(int mask, char *out, size_t n)
{
    static const struct { int bit; const char *name; } m[] = {
        {MK_HTTP_GET, "GET"}, {MK_HTTP_HEAD, "HEAD"}, {MK_HTTP_POST, "POST"},
        {MK_HTTP_PUT, "PUT"}, {MK_HTTP_DELETE, "DELETE"},
    };
    size_t len = 0;
    if (n)
        out[0] = 0;
    for (size_t i = 0; i < MK_ARRAY_LEN(m); i++)
        if ((mask & m[i].bit) && len < n)
            len += (size_t)snprintf(out + len, n - len, "%s%s", len ? ", " : "", m[i].name);
}

static int dump_cb(const char *p, size_t n, void *data)
{
    mk_buf_put(data, p, n);
    return mk_buf_ok(data) ? 0 : -1;
}

void mk_admin_http_json(mk_http_resp_t *resp, int status, json_t *j)
{
    mk_buf_reset(&resp->body);
    resp->content_type = "application/json";
    if (!j) {
        resp->body.oom = true; /* answered as a 500 by conn_respond() */
        return;
    }
    resp->status = status;
    if (json_dump_callback(j, dump_cb, &resp->body, JSON_COMPACT | JSON_REAL_PRECISION(10)) < 0)
        resp->body.oom = true;
    mk_buf_put(&resp->body, "\n", 1);
    json_decref(j);
}

void mk_admin_http_error(mk_http_resp_t *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Messages may quote client bytes: keep them valid UTF-8 (ASCII). */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    mk_admin_http_json(resp, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

static void conn_close(conn_t *c);
static void conn_update_reading(conn_t *c);

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    if (status < 0)
        conn_close(req->data);
}

/* The last answer is written: send FIN, then drain what the client still
 * sends until it closes (or the sweep gives up), so that closing with
 * unread input cannot reset the connection before the client reads the
 * answer (a "lingering close", as nginx does). */
static void conn_finish(conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    c->lingering = true;
    c->last_active_ms = mk_mono_ms();
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
        conn_close(c);
        return;
    }
    conn_update_reading(c);
}

static void write_cb(uv_write_t *w, int status)
{
    write_req_t *wr = (write_req_t *)w;
    conn_t *c = wr->c;
    c->writes--;
    c->out_pending -= wr->len;
    mk_free(wr->data);
    mk_free(wr);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->writes == 0 && c->close_after_write) {
        conn_finish(c);
        return;
    }
    conn_update_reading(c);
}

/* Queue bytes; takes ownership of data. */
static void conn_write(conn_t *c, char *data, size_t len)
{
    if (c->closing) {
        mk_free(data);
        return;
    }
    write_req_t *wr = mk_malloc(sizeof(*wr));
    if (!wr) {
        mk_free(data);
        conn_close(c);
        return;
    }
    wr->c = c;
    wr->data = data;
    wr->len = len;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    if (rc < 0) {
        mk_free(data);
        mk_free(wr);
        conn_close(c);
        return;
    }
    c->writes++;
    c->out_pending += len;
    conn_update_reading(c);
}

/* Serialize and queue one response.  head: no body bytes (HEAD). */
static void conn_respond(conn_t *c, mk_http_resp_t *r, bool head, bool keep_alive)
{
    char allow[64] = "";
    if (r->allow) {
        char methods[48];
        mk_admin_http_allow_str(r->allow, methods, sizeof(methods));
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", methods);
    }
    bool ok = mk_buf_ok(&r->body);
    if (!ok) {
        static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}\n";
        mk_buf_reset(&r->body);
        r->body.oom = false;
        r->status = 500;
        r->content_type = "application/json";
        mk_buf_put(&r->body, oom, sizeof(oom) - 1);
    }
    /* RFC 6750: a 401 names the scheme it wants. */
    const char *challenge = r->bearer_challenge ? "WWW-Authenticate: Bearer realm=\"minikora admin\"\r\n" : "";
    char head_buf[640];
    int hn = snprintf(head_buf, sizeof(head_buf),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Cache-Control: no-store\r\n%s%sConnection: %s\r\n\r\n",
                      r->status, mk_admin_http_reason(r->status), r->content_type, r->body.len, allow, challenge,
                      keep_alive ? "keep-alive" : "close");
    size_t blen = head ? 0 : r->body.len;
    char *out = mk_malloc((size_t)hn + blen);
    if (!out) {
        conn_close(c);
        return;
    }
    memcpy(out, head_buf, (size_t)hn);
    if (blen)
        memcpy(out + hn, r->body.data, blen);
    conn_write(c, out, (size_t)hn + blen);
}

/* Answer with a JSON error and close after it is written. */
static void conn_fail(conn_t *c, int status, const char *code, const char *msg)
{
    mk_http_resp_t r = {0};
    mk_buf_init(&r.body);
    mk_admin_http_error(&r, status, code, "%s", msg);
    c->close_after_write = true;
    c->stop_parsing = true;
    conn_respond(c, &r, false, false);
    mk_buf_free(&r.body);
    if (c->writes == 0)
        conn_finish(c);
}

/* ============================================================ parser callbacks */

static int stop_with(conn_t *c, int status, const char *code, const char *fmt, const char *detail)
{
    c->err_status = status;
    c->err_code = code;
    snprintf(c->err_msg, sizeof(c->err_msg), fmt, detail);
    return -1; /* an error for every callback (1 from on_headers_complete means "no body") */
}

static int on_message_begin(http_parser *p)
{
    conn_t *c = p->data;
    mk_buf_reset(&c->url);
    mk_buf_reset(&c->body);
    c->header_bytes = 0;
    c->hname_len = c->hval_len = 0;
    c->hname_done = false;
    c->expect_continue = false;
    c->auth_len = 0;
    c->auth[0] = 0;
    c->auth_too_long = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->url.len + n > MK_ADMIN_MAX_URL)
        return stop_with(c, 414, "uri_too_long", "the request target is longer than %s bytes", "8192");
    mk_buf_put(&c->url, at, n);
    return mk_buf_ok(&c->url) ? 0 : stop_with(c, 500, "internal", "%s", "out of memory");
}

static int header_bytes(conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > MK_ADMIN_MAX_HEADERS)
        return stop_with(c, 431, "headers_too_large", "request headers are larger than %s bytes", "65536");
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->hname_done) { /* a new header starts */
        c->hname_len = c->hval_len = 0;
        c->hname_done = false;
    }
    for (size_t i = 0; i < n && c->hname_len < sizeof(c->hname) - 1; i++) {
        char ch = at[i];
        c->hname[c->hname_len++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    c->hname[c->hname_len] = 0;
    return header_bytes(c, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    c->hname_done = true;
    for (size_t i = 0; i < n && c->hval_len < sizeof(c->hval) - 1; i++)
        c->hval[c->hval_len++] = at[i];
    c->hval[c->hval_len] = 0;
    if (strcmp(c->hname, "expect") == 0 && strcasecmp(c->hval, "100-continue") == 0)
        c->expect_continue = true;
    if (strcmp(c->hname, "authorization") == 0) {
        /* A value may arrive in pieces; a second Authorization header is
         * appended to the first and so never matches a token. */
        if (c->auth_len + n >= sizeof(c->auth)) {
            c->auth_too_long = true;
        } else {
            memcpy(c->auth + c->auth_len, at, n);
            c->auth_len += n;
            c->auth[c->auth_len] = 0;
        }
    }
    return header_bytes(c, n);
}

static int on_headers_complete(http_parser *p)
{
    conn_t *c = p->data;
    /* content_length is ULLONG_MAX when absent (chunked or no body). */
    if (p->content_length != ULLONG_MAX && p->content_length > MK_ADMIN_MAX_BODY)
        return stop_with(c, 413, "payload_too_large", "the request body is larger than %s bytes", "1048576");
    if (c->expect_continue && p->content_length != 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *d = mk_malloc(sizeof(cont) - 1);
        if (d) {
            memcpy(d, cont, sizeof(cont) - 1);
            conn_write(c, d, sizeof(cont) - 1);
        }
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn_t *c = p->data;
    if (c->body.len + n > MK_ADMIN_MAX_BODY)
        return stop_with(c, 413, "payload_too_large", "the request body is larger than %s bytes", "1048576");
    mk_buf_put(&c->body, at, n);
    return mk_buf_ok(&c->body) ? 0 : stop_with(c, 500, "internal", "%s", "out of memory");
}

static int method_bit(unsigned m)
{
    switch (m) {
    case HTTP_GET: return MK_HTTP_GET;
    case HTTP_HEAD: return MK_HTTP_HEAD;
    case HTTP_POST: return MK_HTTP_POST;
    case HTTP_PUT: return MK_HTTP_PUT;
    case HTTP_DELETE: return MK_HTTP_DELETE;
    default: return MK_HTTP_OTHER;
    }
}

static int on_message_complete(http_parser *p)
{
    conn_t *c = p->data;
    if (c->closing)
        return 1;
    mk_buf_put(&c->url, "", 1);
    mk_buf_put(&c->body, "", 1);
    if (!mk_buf_ok(&c->url) || !mk_buf_ok(&c->body))
        return stop_with(c, 500, "internal", "%s", "out of memory");
    bool keep_alive = http_should_keep_alive(p) && !p->upgrade;

    mk_http_resp_t r = {0};
    r.status = 200;
    r.content_type = "application/json";
    mk_buf_init(&r.body);

    struct http_parser_url u;
    http_parser_url_init(&u);
    char *url = (char *)c->url.data;
    char *path = NULL, *query = NULL;
    if (http_parser_parse_url(url, c->url.len - 1, 0, &u) == 0 && (u.field_set & (1 << UF_PATH))) {
        path = url + u.field_data[UF_PATH].off;
        if (u.field_set & (1 << UF_QUERY)) {
            query = url + u.field_data[UF_QUERY].off;
            query[u.field_data[UF_QUERY].len] = 0;
        }
        path[u.field_data[UF_PATH].len] = 0;
    }
    if (!path) {
        mk_admin_http_error(&r, 400, "bad_request", "cannot parse the request target");
    } else {
        mk_http_req_t req = {method_bit(p->method), http_method_str((enum http_method)p->method), path,
                             query ? query : "", (const char *)c->body.data, c->body.len - 1,
                             c->auth_too_long ? NULL : c->auth};
        c->s->fn(c->s->ud, &req, &r);
    }
    conn_respond(c, &r, p->method == HTTP_HEAD, keep_alive);
    mk_buf_free(&r.body);
    if (c->closing)
        return 1;
    if (!keep_alive) {
        c->close_after_write = true;
        c->stop_parsing = true;
        if (c->writes == 0)
            conn_finish(c);
        return 1;
    }
    /* Bodies can be large: do not keep their memory between requests. */
    if (c->body.cap > 65536)
        mk_buf_free(&c->body);
    return 0;
}

/* ============================================================== connections */

static void conn_free_cb(uv_handle_t *h)
{
    conn_t *c = h->data;
    mk_buf_free(&c->url);
    mk_buf_free(&c->body);
    mk_free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    mk_http_server_t *s = c->s;
    if (s) {
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        s->nconns--;
        c->s = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)suggested;
    if (!c->s) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = c->s->rbuf;
    buf->len = sizeof(c->s->rbuf);
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (c->stop_parsing)
        return; /* answered an error or a last request: drain the rest */
    c->last_active_ms = mk_mono_ms();
    size_t used = http_parser_execute(&c->parser, &c->s->settings, buf->base, (size_t)n);
    if (c->closing || c->stop_parsing)
        return;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (c->err_status) {
        conn_fail(c, c->err_status, c->err_code, c->err_msg);
    } else if (e != HPE_OK || used != (size_t)n) {
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(e));
        conn_fail(c, e == HPE_HEADER_OVERFLOW ? 431 : 400, e == HPE_HEADER_OVERFLOW ? "headers_too_large"
                                                                                    : "bad_request", msg);
    }
}

/* Reading is on iff the connection is open, parsing, and its unsent output
 * is below MK_ADMIN_MAX_OUT. */
static void conn_update_reading(conn_t *c)
{
    if (c->closing)
        return;
    bool want = c->lingering || (!c->stop_parsing && c->out_pending < MK_ADMIN_MAX_OUT);
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = true;
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void accept_cb(uv_stream_t *ls, int status)
{
    mk_http_server_t *s = ls->data;
    if (status < 0)
        return;
    conn_t *c = mk_calloc(1, sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)mk_free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    mk_buf_init(&c->url);
    mk_buf_init(&c->body);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->s = s;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->last_active_ms = mk_mono_ms();
    if (s->nconns > MK_ADMIN_MAX_CONNS) {
        conn_fail(c, 503, "too_many_connections", "too many admin connections; close some and retry");
        return;
    }
    conn_update_reading(c);
}

/* =================================================================== server */

int mk_admin_http_open(uv_loop_t *loop, const char *host, int port, mk_http_handler_fn fn, void *ud,
                 mk_http_server_t **out)
{
    mk_http_server_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    s->loop = loop;
    s->fn = fn;
    s->ud = ud;
    http_parser_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    s->tcp.data = s;
    int rc = mk_net_tcp_listen(loop, &s->tcp, host, port, 128, accept_cb, &s->port);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)mk_free);
        return rc;
    }
    *out = s;
    return 0;
}

int mk_admin_http_port(const mk_http_server_t *s) { return s->port; }
int mk_admin_http_conn_count(const mk_http_server_t *s) { return s->nconns; }

void mk_admin_http_sweep(mk_http_server_t *s, uint64_t now_ms)
{
    conn_t *c = s->conns;
    while (c) {
        conn_t *next = c->next;
        if (now_ms - c->last_active_ms > (c->lingering ? LINGER_MS : MK_ADMIN_IDLE_MS))
            conn_close(c);
        c = next;
    }
}

void mk_admin_http_close(mk_http_server_t *s)
{
    while (s->conns)
        conn_close(s->conns);
    /* The server struct starts with its uv_tcp_t, so libuv frees it whole. */
    uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)mk_free);
}
