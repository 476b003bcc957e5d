/*
 * app.c -- one whole minikora server on a libuv loop (see app.h).
 *
 * Opening, in order: the data directory; the request layer (broker) and the
 * cluster (listeners, brokers, placement); the request layer attached to the
 * cluster; the 1 s housekeeping tick (segment rolls, retention); the bundled
 * S3 server; tiered storage to it or to minikora.s3.endpoint; the admin
 * token file and the admin API.  Each step that fails undoes the earlier
 * ones (mk_app_stop(), the loop run until their closes complete) and says
 * why in one sentence, the same sentences `minikora serve` has always
 * printed after "minikora: ".
 *
 * Stopping closes in the reverse order: the admin API first (it observes
 * requests), the S3 server before the data directory goes, the request layer
 * before the cluster.
 */
#include "app/app.h"
#include "health/health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct mk_app_s {
    uv_loop_t *loop;            /* borrowed */
    mk_cluster_t *cluster;      /* owned, until mk_app_stop() */
    mk_broker_t *broker;        /* owned, until mk_app_stop() */
    mk_admin_t *admin;          /* owned or NULL */
    mk_s3d_t *s3d;              /* owned or NULL: the bundled S3 server, on a thread of its own */
    mk_health_t *health;        /* owned or NULL: the storage health manager (its own timer) */
    uv_timer_t tick;            /* housekeeping, once a second */
    bool tick_on;
    int64_t last_retention_ms;
    bool stopping;
    char *ephemeral_dir;        /* owned; NULL unless ephemeral */
    char *data_dir;             /* owned copy */
    char admin_token[MK_ADMIN_TOKEN_MAX + 1];
    char admin_url[300];
    char bootstrap[4096];
};

/* Text of an error that may be ours (MK_ERR_*) or libuv's (listeners). */
static const char *err_text(int rc)
{
    const char *t = mk_strerror(rc);
    return strcmp(t, "unknown error") == 0 ? uv_strerror(rc) : t;
}

static void tick_cb(uv_timer_t *t)
{
    mk_app_t *app = t->data;
    int64_t now = mk_now_ms();
    bool retain = now - app->last_retention_ms >=
                  mk_cluster_config_get_i64(mk_cluster_config(app->cluster), "log.retention.check.interval.ms");
    if (retain)
        app->last_retention_ms = now;
    mk_cluster_logs_tick(app->cluster, now, retain);
}

/* ------------------------------------------------------------- admin token */

/* A random admin token: 32 bytes from getrandom(2) as 64 hex digits.
 * 0, or -1 (errno set) when the kernel has no randomness to give. */
static int admin_token_generate(char out[65])
{
    uint8_t raw[32];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[64] = 0;
    memset(raw, 0, sizeof(raw));
    return 0;
}

/* DATA/admin-token: the token and a newline, mode 0600 (also when the
 * file existed with wider rights), written to a temporary file and
 * renamed.  0 or -1 (errno set). */
static int admin_token_write(const char *data_dir, const char *token)
{
    char path[4200], text[MK_ADMIN_TOKEN_MAX + 2];
    snprintf(path, sizeof(path), "%s/admin-token", data_dir);
    int n = snprintf(text, sizeof(text), "%s\n", token);
    return mk_file_write_private(path, text, (size_t)n, false);
}

/* ------------------------------------------------------------------ opening */

/* Undo a partial open: close what is open, run the loop until the closes
 * are done, remove the ephemeral directory, free app.  Returns rc. */
static int open_fail(mk_app_t *app, int rc)
{
    mk_app_stop(app);
    uv_run(app->loop, UV_RUN_DEFAULT);
    mk_app_free(app);
    return rc;
}

/* TLS ports follow the PLAINTEXT ones unless set (free ones with port 0). */
static int tls_base_port(const mk_app_opts_t *o, int brokers)
{
    if (mk_cluster_config_is_set(o->config, "minikora.tls.port"))
        return (int)mk_cluster_config_get_i64(o->config, "minikora.tls.port");
    return o->port == 0 ? 0 : o->port + brokers;
}

int mk_app_opts_check(const mk_app_opts_t *o, char *why, size_t whylen)
{
    int brokers = (int)mk_cluster_config_get_i64(o->config, "minikora.brokers");
    int azs = (int)mk_cluster_config_get_i64(o->config, "minikora.azs");
    if (brokers < 1 || brokers > 64 || azs < 1 || azs > 16) {
        snprintf(why, whylen, "brokers must be 1..64 and AZs 1..16");
        return MK_ERR_INVALID;
    }
    int tls_base = tls_base_port(o, brokers);
    if (tls_base < -1 || tls_base + brokers - 1 > 65535) {
        snprintf(why, whylen, "the TLS ports %d.. do not fit (use --tls-port, or -1 to disable TLS)", tls_base);
        return MK_ERR_INVALID;
    }
    if (o->port < 0 || o->port > 65535 || o->admin_port < -1 || o->admin_port > 65535 || o->s3_port < -1 ||
        o->s3_port > 65535) {
        snprintf(why, whylen, "ports are 0..65535 (0: free ones; -1 disables the admin API or the S3 server)");
        return MK_ERR_INVALID;
    }
    if (o->admin_token && o->admin_token[0] && !mk_admin_token_valid(o->admin_token)) {
        snprintf(why, whylen, "the admin token wants 1..%d visible ASCII characters, no spaces", MK_ADMIN_TOKEN_MAX);
        return MK_ERR_INVALID;
    }
    return 0;
}

int mk_app_open(uv_loop_t *loop, const mk_app_opts_t *o, mk_app_t **out, char *why, size_t whylen)
{
    *out = NULL;
    why[0] = 0;
    mk_config_t *config = o->config;
    const char *host = o->host ? o->host : "127.0.0.1";
    int rc = mk_app_opts_check(o, why, whylen);
    if (rc < 0)
        return rc;
    int brokers = (int)mk_cluster_config_get_i64(config, "minikora.brokers");
    int azs = (int)mk_cluster_config_get_i64(config, "minikora.azs");
    int tls_base = tls_base_port(o, brokers);
    mk_app_t *app = mk_calloc(1, sizeof(*app));
    if (!app) {
        snprintf(why, whylen, "out of memory");
        return MK_ERR_NOMEM;
    }
    app->loop = loop;
    const char *data_dir = o->data_dir;
    char tmpl[] = "/tmp/minikora-XXXXXX";
    if (o->ephemeral) {
        if (!mkdtemp(tmpl)) {
            snprintf(why, whylen, "cannot create a temporary directory: %s", strerror(errno));
            mk_free(app);
            return MK_ERR_IO;
        }
        app->ephemeral_dir = mk_strdup(tmpl);
        data_dir = tmpl;
    } else if (!data_dir) {
        data_dir = mk_cluster_config_get(config, "log.dirs");
    }
    app->data_dir = mk_strdup(data_dir);
    if (!app->data_dir || (o->ephemeral && !app->ephemeral_dir)) {
        if (o->ephemeral)
            mk_rm_rf(data_dir);
        snprintf(why, whylen, "out of memory");
        mk_app_free(app);
        return MK_ERR_NOMEM;
    }
    data_dir = app->data_dir;

    rc = mk_broker_new(loop, &app->broker);
    mk_cluster_opts_t copts = {0};
    copts.data_dir = data_dir;
    copts.host = host;
    copts.advertise_host = o->advertise_host;
    copts.advertise_ports = o->advertise_ports;
    copts.advertise_tls_ports = o->advertise_tls_ports;
    copts.base_port = o->port;
    copts.tls_base_port = tls_base;
    copts.brokers = brokers;
    copts.azs = azs;
    copts.config = config;
    copts.handler = mk_broker_net_handler();
    copts.handler_ud = app->broker;
    if (rc == 0)
        rc = mk_cluster_open(loop, &copts, &app->cluster);
    if (rc < 0) {
        snprintf(why, whylen, "cannot start: %s", err_text(rc));
        return open_fail(app, rc);
    }
    rc = mk_broker_attach(app->broker, app->cluster);
    if (rc < 0) {
        snprintf(why, whylen, "cannot start the request layer: %s", mk_strerror(rc));
        return open_fail(app, rc);
    }

    /* The storage health manager: probes and the remediation ladder. */
    mk_health_config_t hcfg;
    mk_health_config_from(config, &hcfg);
    rc = mk_health_new(loop, app->cluster, mk_broker_repl(app->broker), mk_broker_writer(app->broker), &hcfg,
                       &app->health);
    if (rc < 0)
        mk_warn("the storage health manager does not run: %s", mk_strerror(rc));

    uv_timer_init(loop, &app->tick);
    app->tick.data = app;
    app->tick_on = true;
    app->last_retention_ms = mk_now_ms();
    uv_timer_start(&app->tick, tick_cb, 1000, 1000);

    char sub[512] = "";
    if (o->s3_port >= 0) {
        mk_s3d_opts_t sopts = {data_dir, host, o->s3_port, mk_cluster_advertise_host(app->cluster),
                               o->s3_access_key, o->s3_secret_key, o->s3_bucket, NULL, 0};
        rc = mk_s3d_open(&sopts, &app->s3d, sub, sizeof(sub));
        if (rc == UV_EADDRINUSE && !o->s3_port_set) {
            mk_warn("S3 port %d is in use; the S3 server takes a free port instead", o->s3_port);
            sopts.port = 0;
            rc = mk_s3d_open(&sopts, &app->s3d, sub, sizeof(sub));
        }
        if (rc < 0) {
            snprintf(why, whylen, "cannot start the S3 server: %s", sub[0] ? sub : err_text(rc));
            return open_fail(app, rc);
        }
    }

    /* Tiered storage: to minikora.s3.endpoint, else the bundled server, which
     * tiering reaches at its bind address (not the advertised one: that is
     * for clients outside, e.g. of a container). */
    mk_tier_target_t tgt;
    char s3_local[300] = "";
    mk_s3d_t *s3d = app->s3d;
    if (s3d) {
        bool any = strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || !*host;
        const char *h = any ? "127.0.0.1" : host;
        snprintf(s3_local, sizeof(s3_local), strchr(h, ':') ? "http://[%s]:%d" : "http://%s:%d", h, mk_s3d_port(s3d));
    }
    int have_target = mk_tier_target_resolve(config, s3d ? s3_local : NULL, s3d ? mk_s3d_bucket(s3d) : NULL,
                                             s3d ? mk_s3d_access_key(s3d) : NULL, s3d ? mk_s3d_secret_key(s3d) : NULL,
                                             s3d ? mk_s3d_region(s3d) : NULL, &tgt, sub, sizeof(sub));
    rc = have_target > 0 ? mk_broker_tier_start(app->broker, &tgt, data_dir) : have_target;
    if (rc < 0) {
        snprintf(why, whylen, "cannot start tiered storage: %s", have_target < 0 ? sub : err_text(rc));
        return open_fail(app, rc);
    }
    if (have_target == 0)
        mk_info("tiered storage is off (%s)", !mk_cluster_config_get_bool(config, "remote.log.storage.system.enable")
                                                  ? "remote.log.storage.system.enable=false"
                                                  : "no S3 target: --s3-port -1 and no minikora.s3.endpoint");

    if (o->admin_port >= 0) {
        if (o->admin_token && o->admin_token[0]) {
            snprintf(app->admin_token, sizeof(app->admin_token), "%s", o->admin_token);
        } else if (admin_token_generate(app->admin_token) < 0) {
            snprintf(why, whylen, "cannot generate an admin token: %s", strerror(errno));
            return open_fail(app, MK_ERR_IO);
        }
        mk_admin_opts_t aopts = {host, o->admin_port, app->cluster, app->broker, o->version, app->admin_token,
                                 mk_cluster_config_get_bool(config, "minikora.admin.auth.reads"), app->s3d,
                                 app->health};
        /* Before the listener opens: whoever reads the file can act. */
        if (admin_token_write(data_dir, app->admin_token) < 0)
            mk_warn("cannot write %s/admin-token: %s", data_dir, strerror(errno));
        rc = mk_admin_open(loop, &aopts, &app->admin);
        if (rc == UV_EADDRINUSE && !o->admin_port_set) {
            mk_warn("admin port %d is in use; the admin API takes a free port instead", o->admin_port);
            aopts.port = 0;
            rc = mk_admin_open(loop, &aopts, &app->admin);
        }
        if (rc < 0) {
            snprintf(why, whylen, "cannot start the admin API on %s:%d: %s", host, o->admin_port, err_text(rc));
            return open_fail(app, rc);
        }
        const char *ah = mk_cluster_advertise_host(app->cluster);
        snprintf(app->admin_url, sizeof(app->admin_url), strchr(ah, ':') ? "http://[%s]:%d" : "http://%s:%d", ah,
                 mk_admin_port(app->admin));
    }
    mk_cluster_bootstrap(app->cluster, app->bootstrap, sizeof(app->bootstrap));
    *out = app;
    return 0;
}

/* ----------------------------------------------------------------- stopping */

void mk_app_stop(mk_app_t *app)
{
    if (app->stopping)
        return;
    app->stopping = true;
    mk_info("shutting down");
    if (app->broker && mk_broker_repl(app->broker)) {
        /* The replication figures of the run (make bench reads this line). */
        uint64_t copies = 0, acks = 0, acked = mk_broker_acks_all_acked(app->broker);
        mk_repl_round_counts(mk_broker_repl(app->broker), &copies, &acks);
        mk_info("replication: %llu copy rounds, %llu acknowledgements across AZs, %llu acks=all writes "
                "acknowledged, %.2f copy rounds per acknowledged write",
                (unsigned long long)copies, (unsigned long long)acks, (unsigned long long)acked,
                acked ? (double)copies / (double)acked : 0.0);
    }
    if (app->tick_on) {
        uv_timer_stop(&app->tick);
        uv_close((uv_handle_t *)&app->tick, NULL);
        app->tick_on = false;
    }
    mk_admin_close(app->admin); /* before the broker: it observes requests */
    app->admin = NULL;
    mk_health_free(app->health); /* before the broker: it probes through its writer */
    app->health = NULL;
    mk_s3d_close(app->s3d);     /* joins its thread; before the data directory goes */
    app->s3d = NULL;
    if (app->broker)
        mk_broker_free(app->broker);
    app->broker = NULL;
    if (app->cluster)
        mk_cluster_close(app->cluster);
    app->cluster = NULL;
}

void mk_app_free(mk_app_t *app)
{
    if (!app)
        return;
    if (app->ephemeral_dir) {
        mk_rm_rf(app->ephemeral_dir);
        mk_free(app->ephemeral_dir);
    }
    mk_free(app->data_dir);
    memset(app->admin_token, 0, sizeof(app->admin_token));
    mk_free(app);
}

/* ---------------------------------------------------------------- accessors */

mk_cluster_t *mk_app_cluster(const mk_app_t *app) { return app->cluster; }
mk_broker_t *mk_app_broker(const mk_app_t *app) { return app->broker; }
mk_s3d_t *mk_app_s3d(const mk_app_t *app) { return app->s3d; }
bool mk_app_stopping(const mk_app_t *app) { return app->stopping; }
const char *mk_app_bootstrap(const mk_app_t *app) { return app->bootstrap; }
const char *mk_app_admin_url(const mk_app_t *app) { return app->admin_url; }
const char *mk_app_admin_token(const mk_app_t *app) { return app->admin_token; }
const char *mk_app_data_dir(const mk_app_t *app) { return app->data_dir; }
const char *mk_app_ephemeral_dir(const mk_app_t *app) { return app->ephemeral_dir; }
