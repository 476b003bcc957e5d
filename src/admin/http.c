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
 * The connection plumbing (listener and connection list, the shared read
 * buffer, writes and the unsent-output mark, the lingering close, the idle
 * and linger sweep, reason phrases) is httpd/'s, shared with s3d/; this
 * file is the admin server's part of it.
 *
 * Ownership: a connection is freed only in its libuv close callback; pending
 * writes are cancelled (their callbacks run) before it.
 */
#include "admin/admin_int.h"
#include "httpd/httpd.h"
#include "net/net.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LINGER_MS 2000        /* draining after the last answer, at most */

typedef struct conn_s conn_t;

struct mk_http_server_s {
    mk_httpd_t hd;            /* first: listener, connections, read buffer (httpd.h) */
    mk_http_handler_fn fn;
    void *ud;
    http_parser_settings settings;
};

struct conn_s {
    mk_httpd_conn_t hc;       /* first: socket, writes, reading, closing (httpd.h) */
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
};

/* The server of an open connection (NULL once closing). */
static mk_http_server_t *server_of(const conn_t *c) { return (mk_http_server_t *)c->hc.srv; }

/* ================================================================ responses */

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
                      r->status, mk_httpd_reason(r->status), r->content_type, r->body.len, allow, challenge,
                      keep_alive ? "keep-alive" : "close");
    size_t blen = head ? 0 : r->body.len;
    char *out = mk_malloc((size_t)hn + blen);
    if (!out) {
        mk_httpd_conn_close(&c->hc);
        return;
    }
    memcpy(out, head_buf, (size_t)hn);
    if (blen)
        memcpy(out + hn, r->body.data, blen);
    mk_httpd_conn_write(&c->hc, out, (size_t)hn + blen);
}

/* Answer with a JSON error and close after it is written. */
static void conn_fail(conn_t *c, int status, const char *code, const char *msg)
{
    mk_http_resp_t r = {0};
    mk_buf_init(&r.body);
    mk_admin_http_error(&r, status, code, "%s", msg);
    c->hc.close_after_write = true;
    c->hc.stop_parsing = true;
    conn_respond(c, &r, false, false);
    mk_buf_free(&r.body);
    if (c->hc.writes == 0)
        mk_httpd_conn_finish(&c->hc);
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
    if (c->expect_continue && p->content_length != 0)
        mk_httpd_conn_continue(&c->hc);
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
    if (c->hc.closing)
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
        server_of(c)->fn(server_of(c)->ud, &req, &r);
    }
    conn_respond(c, &r, p->method == HTTP_HEAD, keep_alive);
    mk_buf_free(&r.body);
    if (c->hc.closing)
        return 1;
    if (!keep_alive) {
        c->hc.close_after_write = true;
        c->hc.stop_parsing = true;
        if (c->hc.writes == 0)
            mk_httpd_conn_finish(&c->hc);
        return 1;
    }
    /* Bodies can be large: do not keep their memory between requests. */
    if (c->body.cap > 65536)
        mk_buf_free(&c->body);
    return 0;
}

/* ============================================================== connections */

static void conn_free(mk_httpd_conn_t *hc)
{
    conn_t *c = (conn_t *)hc;
    mk_buf_free(&c->url);
    mk_buf_free(&c->body);
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (n == 0 || c->hc.closing)
        return;
    if (n < 0) {
        mk_httpd_conn_close(&c->hc);
        return;
    }
    if (c->hc.stop_parsing)
        return; /* answered an error or a last request: drain the rest */
    c->hc.last_active_ms = mk_mono_ms();
    size_t used = http_parser_execute(&c->parser, &server_of(c)->settings, buf->base, (size_t)n);
    if (c->hc.closing || c->hc.stop_parsing)
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

/* Reading pauses while unsent output is at MK_ADMIN_MAX_OUT; a lingering
 * close drains for LINGER_MS at most (counted from the FIN, not renewed by
 * what the client sends). */
static const mk_httpd_ops_t admin_ops = {
    .read = read_cb,
    .free = conn_free,
    .max_out = MK_ADMIN_MAX_OUT,
    .idle_ms = MK_ADMIN_IDLE_MS,
    .linger_ms = LINGER_MS,
};

static void accept_cb(uv_stream_t *ls, int status)
{
    mk_http_server_t *s = ls->data;
    if (status < 0)
        return;
    conn_t *c = (conn_t *)mk_httpd_accept(&s->hd, sizeof(*c));
    if (!c)
        return;
    mk_buf_init(&c->url);
    mk_buf_init(&c->body);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (s->hd.nconns > MK_ADMIN_MAX_CONNS) {
        conn_fail(c, 503, "too_many_connections", "too many admin connections; close some and retry");
        return;
    }
    mk_httpd_conn_update_reading(&c->hc);
}

/* =================================================================== server */

int mk_admin_http_open(uv_loop_t *loop, const char *host, int port, mk_http_handler_fn fn, void *ud,
                 mk_http_server_t **out)
{
    mk_http_server_t *s = mk_calloc(1, sizeof(*s));
    if (!s)
        return MK_ERR_NOMEM;
    mk_httpd_init(&s->hd, loop, &admin_ops);
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
    int rc = mk_net_tcp_listen(loop, &s->hd.tcp, host, port, 128, accept_cb, &s->hd.port);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->hd.tcp, (uv_close_cb)mk_free);
        return rc;
    }
    *out = s;
    return 0;
}

int mk_admin_http_port(const mk_http_server_t *s) { return s->hd.port; }
int mk_admin_http_conn_count(const mk_http_server_t *s) { return s->hd.nconns; }

void mk_admin_http_sweep(mk_http_server_t *s, uint64_t now_ms) { mk_httpd_sweep(&s->hd, now_ms); }

void mk_admin_http_close(mk_http_server_t *s) { mk_httpd_close(&s->hd); }
