/*
 * admin.c -- the admin module: open and close, the bearer-token check, the
 * dispatcher that maps an HTTP request to its route, and the 1 s tick (a
 * cluster sample for the event ring, the refused-request count, the
 * tenants' throttle events, rate samples, idle connections).
 *
 * Authorization is one rule by method, checked before the route is looked
 * up: anything but GET/HEAD acts and needs "Authorization: Bearer <token>",
 * so a route added later (tenants, keys) is covered without a flag of its
 * own; with minikora.admin.auth.reads every GET/HEAD needs it too except
 * /healthz and /readyz (probes carry no credentials).  A request without
 * the token gets 401, the usual JSON error and WWW-Authenticate: Bearer,
 * and learns nothing about routes (no 404/405 before the check).
 *
 * The files below it (see admin_int.h) never call back into this one: the
 * HTTP server reaches the dispatcher only through the handler given to
 * mk_admin_http_open(), and the broker reaches the stats only through the
 * request callback registered here (replication, through its cross-AZ
 * observer, and the scrubber, through its event observer, also registered
 * here).
 */
#include "admin/admin_int.h"
#include "repl/repl.h"
#include "scrub/scrub.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TICK_MS 1000

/* ============================================================ authorization */

bool mk_admin_token_valid(const char *s)
{
    size_t n = 0;
    for (; s && s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || n >= MK_ADMIN_TOKEN_MAX)
            return false;
    return n > 0;
}

bool mk_admin_auth_ok(const char *authorization, const char *token)
{
    if (!authorization || !token || !token[0])
        return false;
    const char *p = authorization;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return false;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t given = strlen(p);
    while (given > 0 && (p[given - 1] == ' ' || p[given - 1] == '\t'))
        given--;
    /* Constant time in the token's length: every byte of the token is
     * compared whatever the given length, and the lengths are folded in. */
    size_t want = strlen(token);
    unsigned diff = (unsigned)(given != want);
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < given ? p[i] : 0);
    return diff == 0;
}

bool mk_admin_auth_needed(int method, const char *path, bool reads)
{
    if (method != MK_HTTP_GET && method != MK_HTTP_HEAD)
        return true;
    if (!reads)
        return false;
    mk_admin_caps_t caps;
    return !mk_admin_path_match("/healthz", path, &caps) && !mk_admin_path_match("/readyz", path, &caps);
}

/* ================================================================ dispatcher */

void mk_admin_dispatch(void *ud, const mk_http_req_t *req, mk_http_resp_t *resp)
{
    mk_admin_t *a = ud;
    mk_admin_caps_t caps;
    int allow = 0;
    const mk_admin_route_t *r = NULL;
    if (a->token && mk_admin_auth_needed(req->method, req->path, a->auth_reads) &&
        !mk_admin_auth_ok(req->authorization, a->token)) {
        bool sent = req->authorization == NULL || req->authorization[0];
        mk_admin_http_error(resp, 401, "unauthorized",
                            sent ? "%s %s: wrong admin token (send Authorization: Bearer <token>; the token is in "
                                   "the ready file and in <data-dir>/admin-token)"
                                 : "%s %s needs the admin token (send Authorization: Bearer <token>; the token is "
                                   "in the ready file and in <data-dir>/admin-token)",
                            req->method_name, req->path);
        resp->bearer_challenge = true;
        a->unauthorized++;
        mk_info("admin: %s %s refused: %s admin token", req->method_name, req->path, sent ? "wrong" : "no");
    } else if ((r = mk_admin_route_find(req->method, req->path, &caps, &allow))) {
        r->fn(a, req, &caps, resp);
    } else if (allow) {
        char methods[48];
        mk_admin_http_allow_str(allow, methods, sizeof(methods));
        mk_admin_http_error(resp, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", req->method_name,
                       req->path, methods);
        resp->allow = allow;
    } else {
        mk_admin_http_error(resp, 404, "not_found", "no route %s %s (GET /v1 lists the routes)", req->method_name,
                       req->path);
    }
    int cls = resp->status / 100;
    if (cls >= 1 && cls <= 5)
        a->http_by_class[cls]++;
    mk_debug("admin: %s %s -> %d", req->method_name, req->path, resp->status);
}

/* ===================================================================== tick */

static void tick_cb(uv_timer_t *t)
{
    mk_admin_t *a = t->data;
    uint64_t now = mk_mono_ms();
    mk_admin_observe(a, NULL, false);
    /* Refused requests: one event a second at most, however many there were. */
    uint64_t rejected = mk_admin_stats_rejected(a->stats);
    if (rejected > a->rejected_seen)
        mk_admin_event(a, "requests_rejected", -1, "%llu Kafka requests refused (connection closed: malformed or "
                       "unsupported) in the last second; see the broker log",
                       (unsigned long long)(rejected - a->rejected_seen));
    a->rejected_seen = rejected;
    mk_admin_observe_throttles(a);
    mk_admin_stats_tick(a->stats, now);
    mk_admin_balance_tick(a, now);
    mk_admin_http_sweep(a->http, now);
}

static void req_cb(const mk_broker_req_info_t *info, void *ud)
{
    mk_admin_t *a = ud;
    mk_admin_stats_on_request(a->stats, info);
}

static void xaz_cb(const mk_topic_t *t, uint64_t bytes, void *ud)
{
    mk_admin_t *a = ud;
    mk_admin_stats_on_replication(a->stats, t, bytes);
}

/* The scrubber's, the audit's and the health manager's findings go into the event ring. */
static void module_event_cb(const char *type, int32_t broker, const char *text, void *ud)
{
    mk_admin_event(ud, type, broker, "%s", text);
}

/* ================================================================ lifecycle */

static void admin_free(mk_admin_t *a)
{
    if (a->token) {
        /* Wipe the secret; volatile so the stores are not elided. */
        for (volatile char *p = a->token; *p; p++)
            *p = 0;
    }
    mk_free(a->token);
    mk_admin_balance_free(a);
    mk_admin_faults_free(a);
    mk_admin_events_free(a);
    mk_admin_stats_free(a->stats);
    mk_free(a->version);
    mk_free(a->host);
    mk_free(a);
}

int mk_admin_open(uv_loop_t *loop, const mk_admin_opts_t *opts, mk_admin_t **out)
{
    /* jansson allocates through our hooks, so fault tests reach it too. */
    json_set_alloc_funcs(mk_malloc, mk_free);
    mk_admin_t *a = mk_calloc(1, sizeof(*a));
    if (!a)
        return MK_ERR_NOMEM;
    a->loop = loop;
    a->c = opts->cluster;
    a->b = opts->broker;
    a->s3d = opts->s3d;
    int rc = mk_admin_events_init(a);
    a->version = mk_strdup(opts->version ? opts->version : "");
    a->host = mk_strdup(opts->host);
    a->tick = mk_malloc(sizeof(uv_timer_t));
    a->auth_reads = opts->auth_reads;
    if (opts->admin_token && opts->admin_token[0]) {
        if (!mk_admin_token_valid(opts->admin_token) && rc == 0)
            rc = MK_ERR_INVALID;
        a->token = mk_strdup(opts->admin_token);
        if (!a->token && rc == 0)
            rc = MK_ERR_NOMEM;
    }
    if (!a->version || !a->host || !a->tick)
        rc = MK_ERR_NOMEM;
    if (rc == 0)
        rc = mk_admin_stats_new(a->c, &a->stats);
    if (rc == 0)
        rc = mk_admin_balance_init(a);
    if (rc == 0)
        rc = mk_admin_faults_init(a);
    if (rc == 0)
        rc = mk_admin_http_open(loop, opts->host, opts->port, mk_admin_dispatch, a, &a->http);
    if (rc < 0) {
        mk_free(a->tick);
        admin_free(a);
        return rc;
    }
    a->started_mono_ms = mk_mono_ms();
    a->started_wall_ms = mk_now_ms();
    mk_admin_observe(a, NULL, false); /* the first sample: what exists at start is no event */
    mk_admin_event(a, "started", -1, "admin API listening on %s:%d; %d brokers", opts->host, mk_admin_http_port(a->http),
                   mk_cluster_broker_count(a->c));
    uv_timer_init(loop, a->tick);
    a->tick->data = a;
    uv_timer_start(a->tick, tick_cb, TICK_MS, TICK_MS);
    mk_broker_set_req_cb(a->b, req_cb, a);
    if (mk_broker_repl(a->b))
        mk_repl_set_xaz_cb(mk_broker_repl(a->b), xaz_cb, a);
    if (mk_broker_scrub(a->b))
        mk_scrub_set_event_cb(mk_broker_scrub(a->b), module_event_cb, a);
    a->health = opts->health;
    if (a->health)
        mk_health_set_event_cb(a->health, module_event_cb, a); /* the same: into the ring */
    *out = a;
    return 0;
}

int mk_admin_port(const mk_admin_t *a) { return mk_admin_http_port(a->http); }

static void tick_close_cb(uv_handle_t *h) { mk_free(h); }

void mk_admin_close(mk_admin_t *a)
{
    if (!a)
        return;
    mk_broker_set_req_cb(a->b, NULL, NULL);
    if (mk_broker_repl(a->b))
        mk_repl_set_xaz_cb(mk_broker_repl(a->b), NULL, NULL);
    if (mk_broker_scrub(a->b))
        mk_scrub_set_event_cb(mk_broker_scrub(a->b), NULL, NULL);
    if (a->health)
        mk_health_set_event_cb(a->health, NULL, NULL);
    uv_timer_stop(a->tick);
    uv_close((uv_handle_t *)a->tick, tick_close_cb);
    mk_admin_http_close(a->http);
    admin_free(a);
}
