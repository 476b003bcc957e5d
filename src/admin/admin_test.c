/*
 * admin_test.c -- unit tests of admin/: route matching and the route table,
 * percent-decoding and query strings, latency buckets and quantiles,
 * Prometheus text helpers, JSON errors, the admin-token rules, and the HTTP
 * server driven over a
 * real socket with good, pipelined, malformed and oversized requests (with
 * a stub handler, no cluster).
 */
#include "admin/admin_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;
#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);    \
        }                                                                   \
    } while (0)

/* ================================================================ matching */

static void test_path_match(void)
{
    mk_admin_caps_t c;
    CHECK(mk_admin_path_match("/v1/topics", "/v1/topics", &c) && c.n == 0);
    CHECK(mk_admin_path_match("/v1/topics", "/v1/topics/", &c));
    CHECK(!mk_admin_path_match("/v1/topics", "/v1/topic", &c));
    CHECK(!mk_admin_path_match("/v1/topics", "/v1/topics/x", &c));
    CHECK(!mk_admin_path_match("/v1/topics", "/v1//topics", &c));
    CHECK(!mk_admin_path_match("/v1/topics", "v1/topics", &c));
    CHECK(mk_admin_path_match("/", "/", &c));
    CHECK(!mk_admin_path_match("/", "/x", &c));
    CHECK(!mk_admin_path_match("/v1", "/", &c));

    CHECK(mk_admin_path_match("/v1/topics/{}", "/v1/topics/orders", &c) && c.n == 1 &&
          strcmp(c.v[0], "orders") == 0);
    CHECK(mk_admin_path_match("/v1/topics/{}", "/v1/topics/a%2Eb", &c) && strcmp(c.v[0], "a.b") == 0);
    CHECK(!mk_admin_path_match("/v1/topics/{}", "/v1/topics/a%2Fb", &c)); /* no '/' inside a capture */
    CHECK(!mk_admin_path_match("/v1/topics/{}", "/v1/topics/a%00b", &c));
    CHECK(!mk_admin_path_match("/v1/topics/{}", "/v1/topics/a%zz", &c));
    CHECK(!mk_admin_path_match("/v1/topics/{}", "/v1/topics/a%2", &c));
    CHECK(!mk_admin_path_match("/v1/topics/{}", "/v1/topics/", &c));
    CHECK(!mk_admin_path_match("/v1/topics/{}", "/v1/topics//", &c));
    CHECK(mk_admin_path_match("/v1/brokers/{}/stop", "/v1/brokers/3/stop", &c) && c.n == 1 &&
          strcmp(c.v[0], "3") == 0);
    CHECK(!mk_admin_path_match("/v1/brokers/{}/stop", "/v1/brokers/3/start", &c));
    CHECK(!mk_admin_path_match("/v1/brokers/{}/stop", "/v1/brokers/3", &c));

    char longseg[600] = "/v1/topics/";
    memset(longseg + strlen(longseg), 'a', 300);
    CHECK(!mk_admin_path_match("/v1/topics/{}", longseg, &c)); /* over MK_ADMIN_CAP_LEN */
}

static void test_route_find(void)
{
    mk_admin_caps_t c;
    int allow;
    const mk_admin_route_t *r = mk_admin_route_find(MK_HTTP_GET, "/v1/topics", &c, &allow);
    CHECK(r && strcmp(r->pattern, "/v1/topics") == 0 && r->method == MK_HTTP_GET);
    r = mk_admin_route_find(MK_HTTP_POST, "/v1/topics", &c, &allow);
    CHECK(r && r->method == MK_HTTP_POST);
    r = mk_admin_route_find(MK_HTTP_HEAD, "/metrics", &c, &allow);
    CHECK(r && r->method == MK_HTTP_GET);
    r = mk_admin_route_find(MK_HTTP_PUT, "/v1/topics", &c, &allow);
    CHECK(!r && allow == (MK_HTTP_GET | MK_HTTP_HEAD | MK_HTTP_POST));
    r = mk_admin_route_find(MK_HTTP_DELETE, "/v1/topics/x", &c, &allow);
    CHECK(r && c.n == 1 && strcmp(c.v[0], "x") == 0);
    r = mk_admin_route_find(MK_HTTP_GET, "/v1/brokers/2/stop", &c, &allow);
    CHECK(!r && allow == MK_HTTP_POST);
    r = mk_admin_route_find(MK_HTTP_POST, "/v1/azs/az-2/down", &c, &allow);
    CHECK(r && strcmp(c.v[0], "az-2") == 0);
    r = mk_admin_route_find(MK_HTTP_GET, "/v2/cluster", &c, &allow);
    CHECK(!r && allow == 0);
    r = mk_admin_route_find(MK_HTTP_OTHER, "/v1/cluster", &c, &allow);
    CHECK(!r && allow != 0);

    /* Every pattern is well formed and no two rows share method and pattern. */
    int n;
    const mk_admin_route_t *t = mk_admin_routes(&n);
    CHECK(n > 10);
    for (int i = 0; i < n; i++) {
        CHECK(t[i].pattern[0] == '/' && t[i].fn && t[i].summary && t[i].summary[0]);
        for (int j = 0; j < i; j++)
            CHECK(t[i].method != t[j].method || strcmp(t[i].pattern, t[j].pattern) != 0);
    }
}

static void test_decode_and_query(void)
{
    char out[32];
    CHECK(mk_admin_url_decode("a%20b", 5, out, sizeof(out)) == 3 && strcmp(out, "a b") == 0);
    CHECK(mk_admin_url_decode("a+b", 3, out, sizeof(out)) == 3 && strcmp(out, "a+b") == 0);
    CHECK(mk_admin_url_decode("%41%6a", 6, out, sizeof(out)) == 2 && strcmp(out, "Aj") == 0);
    CHECK(mk_admin_url_decode("%4", 2, out, sizeof(out)) == -1);
    CHECK(mk_admin_url_decode("%", 1, out, sizeof(out)) == -1);
    CHECK(mk_admin_url_decode("%00", 3, out, sizeof(out)) == -1);
    CHECK(mk_admin_url_decode("abcd", 4, out, 4) == -1); /* no room for the NUL */
    CHECK(mk_admin_url_decode("", 0, out, sizeof(out)) == 0 && out[0] == 0);

    CHECK(mk_admin_query_get("since=5&limit=10", "limit", out, sizeof(out)) && strcmp(out, "10") == 0);
    CHECK(mk_admin_query_get("since=5&limit=10", "since", out, sizeof(out)) && strcmp(out, "5") == 0);
    CHECK(!mk_admin_query_get("since=5&limit=10", "lim", out, sizeof(out)));
    CHECK(!mk_admin_query_get("", "since", out, sizeof(out)));
    CHECK(mk_admin_query_get("pretty&x=1", "pretty", out, sizeof(out)) && out[0] == 0);
    CHECK(mk_admin_query_get("type=leader%5Fchanged", "type", out, sizeof(out)) &&
          strcmp(out, "leader_changed") == 0);
    CHECK(!mk_admin_query_get("type=%zz", "type", out, sizeof(out)));
}

/* =============================================================== histogram */

static void test_histogram(void)
{
    CHECK(mk_admin_hist_bucket(0) == 0);
    CHECK(mk_admin_hist_bucket(10) == 0);
    CHECK(mk_admin_hist_bucket(11) == 1);
    CHECK(mk_admin_hist_bound(mk_admin_hist_bucket(1000)) == 1000);
    CHECK(mk_admin_hist_bound(mk_admin_hist_bucket(1001)) == 1500);
    CHECK(mk_admin_hist_bucket(UINT64_MAX) == MK_ADMIN_HIST_BUCKETS - 1);
    CHECK(mk_admin_hist_bound(MK_ADMIN_HIST_BUCKETS - 2) == 10000000);
    for (int i = 1; i < MK_ADMIN_HIST_BUCKETS; i++)
        CHECK(mk_admin_hist_bound(i) > mk_admin_hist_bound(i - 1));
    /* The Prometheus bounds (ms) are bucket bounds. */
    static const uint64_t prom[] = {100, 200, 500, 1000, 2000, 5000, 10000, 10000000};
    for (size_t i = 0; i < MK_ARRAY_LEN(prom); i++)
        CHECK(mk_admin_hist_bound(mk_admin_hist_bucket(prom[i])) == prom[i]);

    uint32_t counts[MK_ADMIN_HIST_BUCKETS] = {0};
    CHECK(mk_admin_hist_quantile(counts, 0, 0.5, 0) == 0);
    /* 100 samples in (1000, 1500] us, max 1400 */
    counts[mk_admin_hist_bucket(1200)] = 100;
    double p50 = mk_admin_hist_quantile(counts, 100, 0.50, 1400);
    double p99 = mk_admin_hist_quantile(counts, 100, 0.99, 1400);
    CHECK(p50 > 1000 && p50 <= 1400);
    CHECK(p99 >= p50 && p99 <= 1400);
    /* 90 fast, 10 slow: p50 is fast, p95 slow */
    memset(counts, 0, sizeof(counts));
    counts[mk_admin_hist_bucket(50)] = 90;
    counts[mk_admin_hist_bucket(40000)] = 10;
    CHECK(mk_admin_hist_quantile(counts, 100, 0.50, 40000) <= 50);
    CHECK(mk_admin_hist_quantile(counts, 100, 0.95, 40000) > 30000);
    CHECK(mk_admin_hist_quantile(counts, 100, 1.0, 40000) == 40000);
}

/* ========================================================== text and JSON */

static void test_prom_and_json(void)
{
    mk_buf_t b;
    mk_buf_init(&b);
    mk_prom_sample(&b, "m_total", 3, "topic", "a\"b\\c\nd", "broker", "1", NULL);
    mk_buf_put(&b, "", 1);
    CHECK(strcmp((char *)b.data, "m_total{topic=\"a\\\"b\\\\c\\nd\",broker=\"1\"} 3\n") == 0);
    mk_buf_reset(&b);
    mk_prom_sample(&b, "g", 0.25, NULL);
    mk_buf_put(&b, "", 1);
    CHECK(strcmp((char *)b.data, "g 0.25\n") == 0);
    mk_buf_reset(&b);
    /* Small values (a tenant's cross-AZ cost) in plain decimals, 10 digits. */
    mk_prom_sample(&b, "c", 6.5764e-07, NULL);
    mk_prom_sample(&b, "d", 1234.56789012345, NULL);
    mk_buf_put(&b, "", 1);
    CHECK(strcmp((char *)b.data, "c 0.00000065764\nd 1234.56789\n") == 0);
    mk_buf_reset(&b);
    mk_prom_help(&b, "g", "gauge", "A gauge.");
    mk_buf_put(&b, "", 1);
    CHECK(strcmp((char *)b.data, "# HELP g A gauge.\n# TYPE g gauge\n") == 0);
    mk_buf_free(&b);

    mk_http_resp_t r = {0};
    mk_buf_init(&r.body);
    mk_admin_http_error(&r, 404, "unknown_topic", "no topic '%s'", "x\xff\x01");
    CHECK(r.status == 404);
    json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "error")), "unknown_topic") == 0);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "message")), "no topic 'x?" "?'") == 0);
    json_decref(j);
    mk_buf_free(&r.body);

    char allow[64];
    mk_admin_http_allow_str(MK_HTTP_GET | MK_HTTP_HEAD | MK_HTTP_DELETE, allow, sizeof(allow));
    CHECK(strcmp(allow, "GET, HEAD, DELETE") == 0);
}

/* ============================================================= HTTP server */

static int handled;

static void stub_handler(void *ud, const mk_http_req_t *req, mk_http_resp_t *resp)
{
    handled++;
    if (strcmp(req->path, "/auth") == 0 && !mk_admin_auth_ok(req->authorization, "tok-123")) {
        mk_admin_http_error(resp, 401, "unauthorized", "no");
        resp->bearer_challenge = true;
        return;
    }
    char text[256];
    snprintf(text, sizeof(text), "{\"method\":\"%s\",\"path\":\"%s\",\"query\":\"%s\",\"body_len\":%zu}",
             req->method_name, req->path, req->query, req->body_len);
    mk_buf_put(&resp->body, text, strlen(text));
}

/* Send raw bytes to the server and collect what comes back until the peer
 * closes, want bytes arrived, or about two seconds passed. */
static size_t exchange(uv_loop_t *loop, int port, const char *req, size_t req_len, char *out, size_t cap,
                       const char *until)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    size_t sent = 0, got = 0;
    uint64_t deadline = mk_mono_ms() + 2000;
    while (mk_mono_ms() < deadline) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (sent < req_len) {
            ssize_t n = send(fd, req + sent, req_len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        ssize_t n = recv(fd, out + got, cap - 1 - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0) {
            got += (size_t)n;
            out[got] = 0;
            if (until && strstr(out, until))
                break;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            break;
        }
        usleep(1000);
    }
    out[got] = 0;
    close(fd);
    for (int i = 0; i < 5; i++)
        uv_run(loop, UV_RUN_NOWAIT);
    return got;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_http_server(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    mk_http_server_t *s = NULL;
    CHECK(mk_admin_http_open(&loop, "127.0.0.1", 0, stub_handler, NULL, &s) == 0);
    if (!s)
        return;
    int port = mk_admin_http_port(s);
    static char out[1 << 16];

    /* A plain request, keep-alive, path and query split. */
    const char *r1 = "GET /v1/x?a=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    exchange(&loop, port, r1, strlen(r1), out, sizeof(out), "}");
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "\"path\":\"/v1/x\"") && strstr(out, "\"query\":\"a=1\""));
    CHECK(strstr(out, "Connection: keep-alive"));

    /* Two pipelined requests, the second with a body and Connection: close. */
    const char *r2 = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                     "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    exchange(&loop, port, r2, strlen(r2), out, sizeof(out), NULL);
    CHECK(count_of(out, "HTTP/1.1 200 OK") == 2);
    CHECK(strstr(out, "\"path\":\"/a\"") && strstr(out, "\"body_len\":5"));
    CHECK(strstr(out, "Connection: close"));

    /* Chunked body. */
    const char *r3 = "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    exchange(&loop, port, r3, strlen(r3), out, sizeof(out), NULL);
    CHECK(strstr(out, "\"body_len\":5"));

    /* Garbage: 400 with a JSON error, then the connection closes. */
    int before = handled;
    const char *bad = "\x01\x02 nonsense\r\n\r\n";
    exchange(&loop, port, bad, strlen(bad), out, sizeof(out), NULL);
    CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0 && strstr(out, "\"error\":\"bad_request\""));
    CHECK(handled == before);

    /* A body over the limit is refused from its Content-Length alone. */
    const char *big = "POST /d HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n";
    exchange(&loop, port, big, strlen(big), out, sizeof(out), NULL);
    CHECK(strncmp(out, "HTTP/1.1 413 ", 13) == 0 && strstr(out, "payload_too_large"));

    /* A chunked body over the limit too. */
    static char chunked[MK_ADMIN_MAX_BODY + 140000];
    size_t len = (size_t)snprintf(chunked, sizeof(chunked),
                                  "POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    while (len + 70000 < sizeof(chunked)) {
        len += (size_t)snprintf(chunked + len, sizeof(chunked) - len, "10000\r\n");
        memset(chunked + len, 'x', 0x10000);
        len += 0x10000;
        len += (size_t)snprintf(chunked + len, sizeof(chunked) - len, "\r\n");
    }
    exchange(&loop, port, chunked, len, out, sizeof(out), NULL);
    CHECK(strncmp(out, "HTTP/1.1 413 ", 13) == 0);

    /* An over-long request target. */
    static char longurl[MK_ADMIN_MAX_URL + 200];
    len = (size_t)snprintf(longurl, sizeof(longurl), "GET /");
    memset(longurl + len, 'a', MK_ADMIN_MAX_URL + 10);
    len += MK_ADMIN_MAX_URL + 10;
    len += (size_t)snprintf(longurl + len, sizeof(longurl) - len, " HTTP/1.1\r\n\r\n");
    exchange(&loop, port, longurl, len, out, sizeof(out), NULL);
    CHECK(strncmp(out, "HTTP/1.1 414 ", 13) == 0);

    /* HEAD: headers with the length, no body. */
    const char *h = "HEAD /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    exchange(&loop, port, h, strlen(h), out, sizeof(out), NULL);
    CHECK(strncmp(out, "HTTP/1.1 200 OK", 15) == 0 && strstr(out, "Content-Length: ") && !strchr(out, '{'));

    /* Expect: 100-continue is answered before the body. */
    const char *e = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
                    "Connection: close\r\n\r\nok";
    exchange(&loop, port, e, strlen(e), out, sizeof(out), NULL);
    CHECK(strncmp(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 40) == 0);

    /* Authorization reaches the handler; a 401 carries WWW-Authenticate;
     * the header is per request on a keep-alive connection. */
    const char *a1 = "POST /auth HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                     "POST /auth HTTP/1.1\r\nHost: t\r\nAuthoriz";
    const char *a2 = "ation: Bearer tok-123\r\nContent-Length: 0\r\n\r\n"
                     "POST /auth HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    char both[512];
    snprintf(both, sizeof(both), "%s%s", a1, a2);
    exchange(&loop, port, both, strlen(both), out, sizeof(out), NULL);
    CHECK(count_of(out, "HTTP/1.1 401 Unauthorized") == 2 && count_of(out, "HTTP/1.1 200 OK") == 1);
    CHECK(count_of(out, "WWW-Authenticate: Bearer") == 2);
    CHECK(strstr(out, "HTTP/1.1 401") < strstr(out, "HTTP/1.1 200"));

    CHECK(mk_admin_http_conn_count(s) == 0);
    mk_admin_http_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

/* ================================================================= token */

static void test_auth_rules(void)
{
    CHECK(mk_admin_auth_ok("Bearer abc", "abc"));
    CHECK(mk_admin_auth_ok("bearer abc", "abc"));
    CHECK(mk_admin_auth_ok("  BEARER \t abc  ", "abc"));
    CHECK(!mk_admin_auth_ok("Bearer abcd", "abc"));
    CHECK(!mk_admin_auth_ok("Bearer ab", "abc"));
    CHECK(!mk_admin_auth_ok("Bearer abC", "abc"));
    CHECK(!mk_admin_auth_ok("Bearer ", "abc"));
    CHECK(!mk_admin_auth_ok("Bearerabc", "abc"));
    CHECK(!mk_admin_auth_ok("Basic abc", "abc"));
    CHECK(!mk_admin_auth_ok("abc", "abc"));
    CHECK(!mk_admin_auth_ok("", "abc"));
    CHECK(!mk_admin_auth_ok(NULL, "abc"));
    CHECK(!mk_admin_auth_ok("Bearer ", ""));
    CHECK(!mk_admin_auth_ok("Bearer abc\x01", "abc"));

    CHECK(mk_admin_auth_needed(MK_HTTP_POST, "/v1/reset", false));
    CHECK(mk_admin_auth_needed(MK_HTTP_DELETE, "/v1/topics/x", false));
    CHECK(mk_admin_auth_needed(MK_HTTP_PUT, "/healthz", false));
    CHECK(mk_admin_auth_needed(MK_HTTP_OTHER, "/v1/nope", false));
    CHECK(!mk_admin_auth_needed(MK_HTTP_GET, "/v1/cluster", false));
    CHECK(!mk_admin_auth_needed(MK_HTTP_HEAD, "/metrics", false));
    CHECK(mk_admin_auth_needed(MK_HTTP_GET, "/v1/cluster", true));
    CHECK(mk_admin_auth_needed(MK_HTTP_GET, "/metrics", true));
    CHECK(mk_admin_auth_needed(MK_HTTP_GET, "/healthzz", true));
    CHECK(!mk_admin_auth_needed(MK_HTTP_GET, "/healthz", true));
    CHECK(!mk_admin_auth_needed(MK_HTTP_HEAD, "/readyz/", true));

    CHECK(mk_admin_token_valid("a"));
    CHECK(mk_admin_token_valid("s3cret-Token_~!"));
    CHECK(!mk_admin_token_valid(""));
    CHECK(!mk_admin_token_valid(NULL));
    CHECK(!mk_admin_token_valid("has space"));
    CHECK(!mk_admin_token_valid("caf\xc3\xa9"));
    char longtok[MK_ADMIN_TOKEN_MAX + 2];
    memset(longtok, 'x', sizeof(longtok) - 1);
    longtok[MK_ADMIN_TOKEN_MAX] = 0;
    CHECK(mk_admin_token_valid(longtok));
    longtok[MK_ADMIN_TOKEN_MAX] = 'x';
    longtok[MK_ADMIN_TOKEN_MAX + 1] = 0;
    CHECK(!mk_admin_token_valid(longtok));
}

int main(void)
{
    json_set_alloc_funcs(mk_malloc, mk_free);
    test_path_match();
    test_route_find();
    test_decode_and_query();
    test_histogram();
    test_prom_and_json();
    test_auth_rules();
    test_http_server();
    if (failures) {
        fprintf(stderr, "admin_test: %d failures\n", failures);
        return 1;
    }
    printf("admin_test: ok\n");
    return 0;
}
