/*
 * embed.c -- the embedding API (src/minikora.h) over app.c.
 *
 * minikora_start() builds the configuration from minikora_opts_t, opens the
 * server with mk_app_open() on a loop of its own (not libuv's default loop:
 * the host program may use that one, and several clusters may run at once),
 * from the calling thread, before any other thread touches the loop; then it
 * hands the loop to a new thread that runs it.  Handing over is safe: the
 * loop is not running yet, and thread creation orders the memory.
 *
 * Stopping from any thread: minikora_stop() sends the loop an async wake-up
 * (uv_async_send is the one libuv call that is safe from other threads);
 * its callback, on the loop's thread, closes the wake-up handle and begins
 * mk_app_stop(); the loop ends when every close has completed; the stopper
 * joins the thread.  A mutex makes concurrent and repeated stops one stop:
 * the first joins, the others wait for it on the mutex.
 *
 * The values handed out (bootstrap, admin URL, token, TLS bootstrap, CA
 * file) are copied at start, so every accessor reads memory that no thread
 * writes after minikora_start() returned.
 */
#include "minikora.h"

#include "app/app.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct minikora_s {
    uv_loop_t loop;             /* owned, run by thread */
    mk_app_t *app;              /* owned; freed by minikora_destroy() after the loop ended */
    mk_config_t config;         /* owned; outlives app */
    uv_async_t stop_async;      /* the wake-up minikora_stop() sends */
    uv_thread_t thread;
    pthread_mutex_t stop_lock;  /* one stop at a time; stopped is read under it */
    bool stopped;               /* the thread has been joined */
    char tls_bootstrap[4096];
    char ca_file[4200];
};

void minikora_opts_init(minikora_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->brokers = 1;
    o->azs = 1;
    o->port = 0;
    o->admin_port = 0;
    o->tls_port = -1;
    o->s3_port = -1;
    o->log_level = "warn";
}

/* Runs on the cluster's thread. */
static void loop_thread(void *arg)
{
    minikora_t *m = arg;
    uv_run(&m->loop, UV_RUN_DEFAULT);
}

/* Loop thread: minikora_stop() asked. */
static void stop_async_cb(uv_async_t *h)
{
    minikora_t *m = h->data;
    uv_close((uv_handle_t *)h, NULL);
    mk_app_stop(m->app);
}

static int fail(char *errbuf, size_t errlen, const char *fmt, const char *what)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, fmt, what);
    return -1;
}

/* The configuration of o into m->config.  0, or -1 with a sentence in why. */
static int opts_config(minikora_t *m, const minikora_opts_t *o, char *why, size_t whylen)
{
    char num[32];
    snprintf(num, sizeof(num), "%d", o->brokers);
    if (mk_cluster_config_set(&m->config, "minikora.brokers", num, why, whylen) < 0)
        return -1;
    snprintf(num, sizeof(num), "%d", o->azs);
    if (mk_cluster_config_set(&m->config, "minikora.azs", num, why, whylen) < 0)
        return -1;
    snprintf(num, sizeof(num), "%d", o->tls_port);
    if (mk_cluster_config_set(&m->config, "minikora.tls.port", num, why, whylen) < 0)
        return -1;
    for (const char *const *kv = o->config; kv && *kv; kv++) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", *kv);
        char *eq = strchr(buf, '=');
        if (!eq) {
            snprintf(why, whylen, "config entry '%s' is not key=value", *kv);
            return -1;
        }
        *eq = 0;
        if (mk_cluster_config_set(&m->config, buf, eq + 1, why, whylen) < 0)
            return -1;
    }
    return 0;
}

static void sigpipe_ignore_once(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO))
        signal(SIGPIPE, SIG_IGN);
}

int minikora_start(const minikora_opts_t *opts, minikora_t **out, char *errbuf, size_t errlen)
{
    minikora_opts_t defaults;
    if (!out)
        return fail(errbuf, errlen, "%s", "minikora_start: out is NULL");
    *out = NULL;
    if (!opts) {
        minikora_opts_init(&defaults);
        opts = &defaults;
    }
    const char *lvl = opts->log_level ? opts->log_level : "warn";
    int level = strcmp(lvl, "debug") == 0  ? MK_LOGGER_DEBUG
                : strcmp(lvl, "info") == 0 ? MK_LOGGER_INFO
                : strcmp(lvl, "warn") == 0 ? MK_LOGGER_WARN
                : strcmp(lvl, "error") == 0 ? MK_LOGGER_ERROR
                                            : -1;
    if (level < 0)
        return fail(errbuf, errlen, "unknown log level '%s' (debug, info, warn, error)", lvl);
    mk_logger_set_level(level);
    static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;
    pthread_once(&sigpipe_once, sigpipe_ignore_once);

    minikora_t *m = mk_calloc(1, sizeof(*m));
    if (!m)
        return fail(errbuf, errlen, "%s", "out of memory");
    mk_cluster_config_init(&m->config);
    char why[512] = "";
    if (opts_config(m, opts, why, sizeof(why)) < 0) {
        mk_cluster_config_free(&m->config);
        mk_free(m);
        return fail(errbuf, errlen, "%s", why);
    }
    mk_app_opts_t ao = {0};
    ao.data_dir = opts->data_dir;
    ao.ephemeral = opts->data_dir == NULL;
    ao.host = opts->host;
    ao.port = opts->port;
    ao.admin_port = opts->admin_port;
    ao.admin_port_set = true; /* a port asked for is that port or an error */
    ao.s3_port = opts->s3_port;
    ao.s3_port_set = true;
    ao.admin_token = opts->admin_token;
    ao.config = &m->config;
    ao.version = MINIKORA_VERSION;
    int rc = uv_loop_init(&m->loop);
    if (rc < 0) {
        mk_cluster_config_free(&m->config);
        mk_free(m);
        return fail(errbuf, errlen, "cannot make an event loop: %s", uv_strerror(rc));
    }
    if (mk_app_open(&m->loop, &ao, &m->app, why, sizeof(why)) < 0) {
        uv_loop_close(&m->loop);
        mk_cluster_config_free(&m->config);
        mk_free(m);
        return fail(errbuf, errlen, "%s", why);
    }
    mk_cluster_t *c = mk_app_cluster(m->app);
    const char *ca = mk_cluster_tls_ca_file(c);
    if (ca) {
        mk_cluster_tls_bootstrap(c, m->tls_bootstrap, sizeof(m->tls_bootstrap));
        snprintf(m->ca_file, sizeof(m->ca_file), "%s", ca);
    }
    pthread_mutex_init(&m->stop_lock, NULL);
    uv_async_init(&m->loop, &m->stop_async, stop_async_cb);
    m->stop_async.data = m;
    rc = uv_thread_create(&m->thread, loop_thread, m);
    if (rc < 0) {
        uv_close((uv_handle_t *)&m->stop_async, NULL);
        mk_app_stop(m->app);
        uv_run(&m->loop, UV_RUN_DEFAULT);
        m->stopped = true;
        minikora_destroy(m);
        return fail(errbuf, errlen, "cannot start the cluster's thread: %s", uv_strerror(rc));
    }
    *out = m;
    return 0;
}

int minikora_stop(minikora_t *m)
{
    if (!m)
        return 0;
    pthread_mutex_lock(&m->stop_lock);
    if (!m->stopped) {
        uv_async_send(&m->stop_async);
        uv_thread_join(&m->thread);
        m->stopped = true;
    }
    pthread_mutex_unlock(&m->stop_lock);
    return 0;
}

void minikora_destroy(minikora_t *m)
{
    if (!m)
        return;
    minikora_stop(m);
    if (uv_loop_close(&m->loop) < 0)
        mk_warn("embedded cluster: event loop closed with handles still open");
    mk_app_free(m->app);
    mk_cluster_config_free(&m->config);
    pthread_mutex_destroy(&m->stop_lock);
    mk_free(m);
}

const char *minikora_bootstrap(const minikora_t *m) { return mk_app_bootstrap(m->app); }
const char *minikora_tls_bootstrap(const minikora_t *m) { return m->tls_bootstrap; }
const char *minikora_ca_file(const minikora_t *m) { return m->ca_file; }
const char *minikora_admin_url(const minikora_t *m) { return mk_app_admin_url(m->app); }
const char *minikora_admin_token(const minikora_t *m) { return mk_app_admin_token(m->app); }
const char *minikora_data_dir(const minikora_t *m) { return mk_app_data_dir(m->app); }
