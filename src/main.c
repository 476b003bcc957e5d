/*
 * main.c -- the `minikora` command: flag parsing, the event loop, the ready
 * line, periodic housekeeping, and clean shutdown on SIGTERM/SIGINT.
 *
 *   minikora serve [options]      run a cluster (see usage())
 *   minikora apis [--markdown]    print the supported APIs (dispatch table)
 *   minikora verify --data-dir DIR   check a stopped cluster's data offline
 *   minikora version
 *
 * Everything runs on one libuv loop; brokers share it.  Blocking work
 * (SQLite commits, fsync) goes to libuv's worker threads from the modules
 * that own it.
 */
#include "admin/admin.h"
#include "app/app.h"
#include "broker/broker.h"
#include "cluster/cluster.h"
#include "repl/repl.h"
#include "scrub/scrub.h"
#include "s3d/s3d.h"
#include "tui.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <jansson.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MK_HAS_ASAN 1
#endif
#endif
#ifndef MK_HAS_ASAN
#define MK_HAS_ASAN 0
#endif

static void nofile_setup(const mk_config_t *config);

static void usage(FILE *out)
{
    fprintf(out,
            "usage: minikora serve [options]   run a Kafka-compatible cluster\n"
            "       minikora apis [--markdown] list supported Kafka APIs and versions (a table, or Markdown)\n"
            "       minikora tui [--admin URL] [--admin-token T]  watch and steer a cluster\n"
            "       minikora verify --data-dir DIR  check a stopped cluster's stored data (exit 1: problems)\n"
            "       minikora version\n"
            "\n"
            "serve options:\n"
            "  --data-dir DIR        data directory (default ./data; Kafka's log.dirs)\n"
            "  --ephemeral           use a temporary data directory, removed on exit\n"
            "  --port N              first broker port (default 9092; 0 picks free ports)\n"
            "  --admin-port N        admin HTTP API and /metrics (default 8080, or 0 with --port 0;\n"
            "                        0 picks a free port; -1 disables it)\n"
            "  --tls-port N          first SSL (TLS) broker port (default: --port + brokers, i.e. 9098;\n"
            "                        free ports with --port 0; -1 disables TLS; minikora.tls.port)\n"
            "  --tls-cert FILE       PEM certificate chain for the SSL listeners (with --tls-key);\n"
            "                        default: a CA and a server certificate made in DATA/tls/\n"
            "  --tls-key FILE        PEM private key of --tls-cert\n"
            "  --tls-ca FILE         the CA file clients should trust (default: DATA/tls/ca.pem,\n"
            "                        or --tls-cert itself)\n"
            "  --ready-file PATH     once ready, write {bootstrap, tls_bootstrap, ca_file, admin,\n"
            "                        admin_token, brokers, s3} there as JSON\n"
            "  --s3-port N           the bundled S3 server (default 9000, or 0 with --port 0;\n"
            "                        0 picks a free port; -1 disables it)\n"
            "  --s3-access-key KEY   its access key and secret key (default $MINIKORA_S3_ACCESS_KEY and\n"
            "  --s3-secret-key S     $MINIKORA_S3_SECRET_KEY, else DATA/s3/_credentials, else a new\n"
            "                        random pair kept there, mode 0600)\n"
            "  --s3-bucket NAME      the bucket that exists from the start (default minikora)\n"
            "  --admin-token TOKEN   bearer token the admin API's acting routes require (default\n"
            "                        $MINIKORA_ADMIN_TOKEN, else a random one); written to\n"
            "                        DATA/admin-token (mode 0600) and the ready file\n"
            "  --host ADDR           address to bind (default 127.0.0.1; ::1 or [::1] for IPv6)\n"
            "  --advertise-host H    host name given to clients (default: --host; for 0.0.0.0 or ::\n"
            "                        this machine's name if it resolves here, else loopback)\n"
            "  --advertise-ports P   ports given to clients instead of the bound ones, behind port\n"
            "                        mapping: P1,P2,... (one per broker) or a first port P (P, P+1, ...);\n"
            "                        PUT /v1/advertised changes them while running\n"
            "  --advertise-tls-ports P  the same for the SSL (TLS) listeners\n"
            "  --brokers N           brokers (default 6; minikora.brokers)\n"
            "  --azs N               simulated availability zones (default 3; minikora.azs)\n"
            "  --config FILE         Kafka-style properties file (key=value)\n"
            "  --set KEY=VALUE       one setting by Kafka's name, e.g. --set num.partitions=3\n"
            "  --log-level LEVEL     debug, info (default), warn, error\n"
            "  --tui                 run the TUI in this terminal as well (logs go to DATA/minikora.log)\n"
            "  --control-stdin       read lifecycle commands on stdin, one per line: crash ID,\n"
            "                        stop ID (controlled), start ID, az-down AZ, az-up AZ, stats;\n"
            "                        each is answered by a 'control: ...' line on stdout; the end\n"
            "                        of stdin (a file, /dev/null) means no more commands\n"
            "                        (the admin API offers the same and more)\n");
}

typedef struct app_s {
    uv_loop_t *loop;
    mk_app_t *app;              /* the server: cluster, brokers, admin, S3 (app/) */
    mk_cluster_t *cluster;      /* mk_app_cluster(app); NULL once stopping */
    mk_broker_t *broker;        /* mk_app_broker(app) */
    mk_s3d_t *s3d;              /* mk_app_s3d(app) */
    uv_signal_t sigterm, sigint;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } control;                  /* --control-stdin: a pipe, socket or terminal on stdin */
    uv_async_t stop_async;      /* serve --tui: stops the loop from the TUI thread */
    bool control_on;            /* control is open (closed at end of input or at stop) */
    char control_buf[1024];
    size_t control_len;
    bool stopping;
} app_t;

static void app_stop(app_t *app)
{
    if (app->stopping)
        return;
    app->stopping = true;
    uv_signal_stop(&app->sigterm);
    uv_signal_stop(&app->sigint);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    if (app->control_on)
        uv_close((uv_handle_t *)&app->control, NULL);
    app->control_on = false;
    mk_app_stop(app->app);
    app->cluster = NULL;
    app->broker = NULL;
    app->s3d = NULL;
}

/* Text of an error that may be ours (MK_ERR_*) or libuv's (listeners). */
static const char *err_text(int rc)
{
    const char *t = mk_strerror(rc);
    return strcmp(t, "unknown error") == 0 ? uv_strerror(rc) : t;
}

/* ------------------------------------------------------------------ control */

static void control_line(app_t *app, char *line)
{
    char cmd[32] = "", arg[64] = "";
    if (sscanf(line, "%31s %63s", cmd, arg) < 1)
        return;
    mk_repl_t *r = mk_broker_repl(app->broker);
    int rc = 0;
    if (strcmp(cmd, "stats") == 0) {
        uint64_t reads = 0;
        uint64_t total = mk_repl_cross_az_total(r, &reads);
        printf("control: stats {\"cross_az_replication_bytes\": %llu, \"cross_az_client_read_bytes\": %llu}\n",
               (unsigned long long)(total - reads), (unsigned long long)reads);
        fflush(stdout);
        return;
    }
    if (strcmp(cmd, "crash") == 0)
        rc = mk_repl_broker_crash(r, atoi(arg));
    else if (strcmp(cmd, "stop") == 0)
        rc = mk_repl_broker_shutdown(r, atoi(arg));
    else if (strcmp(cmd, "start") == 0)
        rc = mk_repl_broker_start(r, atoi(arg));
    else if (strcmp(cmd, "az-down") == 0)
        rc = mk_repl_az_down(r, arg) > 0 ? 0 : MK_ERR_NOT_FOUND;
    else if (strcmp(cmd, "az-up") == 0)
        rc = mk_repl_az_up(r, arg) > 0 ? 0 : MK_ERR_NOT_FOUND;
    else
        rc = MK_ERR_INVALID;
    if (rc < 0)
        printf("control: error %s %s: %s\n", cmd, arg, err_text(rc));
    else
        printf("control: ok %s %s\n", cmd, arg);
    fflush(stdout);
}

static void control_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    app_t *app = h->data;
    (void)suggested;
    buf->base = app->control_buf + app->control_len;
    buf->len = sizeof(app->control_buf) - app->control_len - 1;
}

/* Run every complete line in control_buf; at end of input (eof) the last
 * line too, even without its newline. */
static void control_lines(app_t *app, bool eof)
{
    char *nl;
    while (app->cluster && (nl = strchr(app->control_buf, '\n'))) {
        *nl = 0;
        control_line(app, app->control_buf);
        size_t used = (size_t)(nl - app->control_buf) + 1;
        memmove(app->control_buf, nl + 1, app->control_len - used + 1);
        app->control_len -= used;
    }
    if (eof && app->cluster && app->control_len > 0)
        control_line(app, app->control_buf);
    if (eof || app->control_len >= sizeof(app->control_buf) - 1) {
        app->control_len = 0; /* an over-long line is dropped */
        app->control_buf[0] = 0;
    }
}

static void control_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    app_t *app = s->data;
    (void)buf;
    if (n < 0) {
        /* End of input (or a read error): no more commands; the cluster runs on. */
        control_lines(app, true);
        if (n != UV_EOF)
            mk_warn("--control-stdin: %s; no more commands", uv_strerror((int)n));
        else
            mk_info("--control-stdin: end of input; no more commands");
        if (app->control_on) {
            uv_close((uv_handle_t *)s, NULL);
            app->control_on = false;
        }
        return;
    }
    app->control_len += (size_t)n;
    app->control_buf[app->control_len] = 0;
    control_lines(app, false);
}

/* stdin as a file (a regular file, /dev/null: what a background CI job gets)
 * cannot be watched by the loop; its commands are read now, to its end, and
 * that end means no more commands.  Reading a file does not wait on anyone. */
static void control_read_file(app_t *app)
{
    int lines = 0;
    size_t total = 0;
    for (;;) {
        if (total >= (1u << 20)) { /* a device that never ends (/dev/zero): stop somewhere */
            mk_warn("--control-stdin: stdin gave 1 MiB without ending; no more commands");
            break;
        }
        size_t room = sizeof(app->control_buf) - app->control_len - 1;
        ssize_t n = read(0, app->control_buf + app->control_len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += (size_t)n;
        for (ssize_t i = 0; i < n; i++)
            lines += app->control_buf[app->control_len + (size_t)i] == '\n';
        app->control_len += (size_t)n;
        app->control_buf[app->control_len] = 0;
        control_lines(app, false);
    }
    control_lines(app, true);
    mk_info("--control-stdin: stdin is a file; %d command line(s) read, then end of input", lines);
}

static void control_start(app_t *app)
{
    uv_handle_type t = uv_guess_handle(0);
    int rc = UV_EINVAL;
    app->control.pipe.data = app;
    if (t == UV_TTY) {
        rc = uv_tty_init(app->loop, &app->control.tty, 0, 1);
    } else if (t == UV_NAMED_PIPE) {
        rc = uv_pipe_init(app->loop, &app->control.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&app->control.pipe, 0)) < 0)
            uv_close((uv_handle_t *)&app->control, NULL);
    } else if (t == UV_FILE) {
        control_read_file(app);
        return;
    } else {
        mk_warn("--control-stdin: stdin is closed or not a pipe, terminal or file; control disabled");
        return;
    }
    if (rc < 0) {
        mk_warn("--control-stdin: cannot read stdin: %s; control disabled", uv_strerror(rc));
        return;
    }
    app->control.pipe.data = app;
    app->control_on = true;
    uv_read_start((uv_stream_t *)&app->control, control_alloc_cb, control_read_cb);
}

/* serve --tui: the loop's thread, and the TUI's way to stop it. */
static void loop_thread(void *arg)
{
    app_t *app = arg;
    uv_run(app->loop, UV_RUN_DEFAULT);
}

static void stop_async_cb(uv_async_t *h)
{
    app_t *app = h->data;
    uv_close((uv_handle_t *)h, NULL);
    app_stop(app);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    (void)signum;
    app_stop(s->data);
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

/* ---------------------------------------------------------- abnormal exits */

/* What a fatal signal must not leave behind: the ready file (a stale one
 * points a fixture at dead ports) and the --ephemeral data directory. */
static const char *fatal_ready_file;
static const char *fatal_ephemeral_dir;

/* Runs on the signal: only async-signal-safe calls (unlink, fork, execv,
 * _exit, signal, raise).  The data directory is removed by an rm of its own,
 * since walking a tree here is not safe; then the signal's default action
 * (core, termination) happens as if we had not caught it. */
static void fatal_signal_cb(int sig)
{
    if (sig != SIGHUP && sig != SIGQUIT) {
        /* The stack, for the log (addresses: `addr2line -f -e minikora`). */
        static const char head[] = "minikora: fatal signal; stack:\n";
        void *frames[64];
        int n = backtrace(frames, 64);
        if (write(2, head, sizeof(head) - 1) > 0)
            backtrace_symbols_fd(frames, n, 2);
    }
    if (fatal_ready_file)
        unlink(fatal_ready_file);
    if (fatal_ephemeral_dir && fork() == 0) {
        char *argv[] = {"rm", "-rf", (char *)fatal_ephemeral_dir, NULL};
        execv("/bin/rm", argv);
        _exit(127);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Catch the signals that end a process without a clean stop (crashes,
 * abort, a hang-up), once the ready file exists.  SIGKILL cannot be caught. */
static void fatal_signals_catch(const char *ready_file, const char *ephemeral_dir)
{
    fatal_ready_file = ready_file;
    fatal_ephemeral_dir = ephemeral_dir;
#if defined(__SANITIZE_ADDRESS__) || MK_HAS_ASAN
    /* Under ASan its own handler reports a SIGSEGV; leave the faults to it. */
    static const int sigs[] = {SIGABRT, SIGHUP, SIGQUIT};
#else
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGHUP, SIGQUIT};
#endif
    void *warm[1];
    backtrace(warm, 1); /* loads what backtrace() needs now, not inside the handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fatal_signal_cb;
    sa.sa_flags = SA_NODEFER | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}

/* --advertise-ports (or --advertise-tls-ports, named by flag): "P1,P2,..."
 * (one port per broker) or "P" (the first of brokers consecutive ports)
 * into ports[0..brokers).  0, or -1 after a message on stderr. */
static int parse_advertise_ports(const char *flag, const char *arg, int brokers, int ports[64])
{
    int n = 0;
    const char *p = arg;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 1 || v > 65535 || (*end && *end != ',') || n >= 64) {
            fprintf(stderr, "minikora: bad %s '%s' (P1,P2,... one per broker, or a first port)\n", flag, arg);
            return -1;
        }
        ports[n++] = (int)v;
        if (!*end)
            break;
        p = end + 1;
    }
    if (n == 1) {
        if (ports[0] + brokers - 1 > 65535) {
            fprintf(stderr, "minikora: %s %d: %d brokers do not fit below 65536\n", flag, ports[0], brokers);
            return -1;
        }
        for (int i = 1; i < brokers; i++)
            ports[i] = ports[0] + i;
    } else if (n != brokers) {
        fprintf(stderr, "minikora: %s names %d ports for %d brokers\n", flag, n, brokers);
        return -1;
    }
    return 0;
}

/* --ready-file: {bootstrap, advertised_bootstrap, admin, admin_token, pid,
 * data_dir, brokers: [...], tls_bootstrap, ca_file, s3: {url, access_key,
 * secret_key, bucket, region}} on one
 * line, written to PATH.tmp and renamed, so a reader never sees half a
 * file.  jansson's default separators (", " and ": ") keep the line as it
 * always was, so the README's sed recipe that matches "bootstrap": "..."
 * still finds the bootstrap servers.  0 or -1 (errno set). */
static int write_ready_file(app_t *app, const char *path, const char *boot, const char *admin_url,
                            const char *admin_token, const char *data_dir)
{
    /* s3: {url, access_key, secret_key, bucket, region}, or null when disabled */
    json_t *s3 = app->s3d ? json_pack("{s:s, s:s, s:s, s:s, s:s}", "url", mk_s3d_url(app->s3d), "access_key",
                                      mk_s3d_access_key(app->s3d), "secret_key", mk_s3d_secret_key(app->s3d),
                                      "bucket", mk_s3d_bucket(app->s3d), "region", mk_s3d_region(app->s3d))
                          : json_null();
    json_t *brokers = json_array();
    int n = mk_cluster_broker_count(app->cluster);
    for (int i = 0; brokers && i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(app->cluster, i);
        int aport;
        const char *ahost = mk_cluster_broker_endpoint(app->cluster, b, false, &aport);
        char hp[300], thp[300] = "";
        mk_net_host_port(ahost, aport, hp, sizeof(hp));
        if (b->tls_port >= 0) {
            int tport;
            const char *thost = mk_cluster_broker_endpoint(app->cluster, b, true, &tport);
            mk_net_host_port(thost, tport, thp, sizeof(thp));
        }
        if (json_array_append_new(brokers, json_pack("{s:i, s:s, s:i, s:s, s:i, s:i, s:s, s:o}", "id", (int)b->id,
                                                     "host", mk_cluster_advertise_host(app->cluster), "port", b->port,
                                                     "az", b->az, "cell", (int)b->cell, "tls_port", b->tls_port,
                                                     "advertised", hp, "tls_advertised",
                                                     thp[0] ? json_string(thp) : json_null())) < 0) {
            json_decref(brokers);
            brokers = NULL;
        }
    }
    /* NULL members (out of memory, text that is not UTF-8) make json_pack fail. */
    char tls_boot[4096];
    mk_cluster_tls_bootstrap(app->cluster, tls_boot, sizeof(tls_boot));
    const char *ca = mk_cluster_tls_ca_file(app->cluster);
    char adv[4096];
    mk_cluster_advertised_bootstrap(app->cluster, adv, sizeof(adv));
    json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:i, s:s, s:o, s:o, s:o, s:o}", "bootstrap", boot,
                          "advertised_bootstrap", adv, "admin",
                          admin_url ? json_string(admin_url) : json_null(), "admin_token",
                          admin_url ? json_string(admin_token) : json_null(), "pid", (int)getpid(), "data_dir",
                          data_dir, "brokers", brokers, "tls_bootstrap", ca ? json_string(tls_boot) : json_null(),
                          "ca_file", ca ? json_string(ca) : json_null(), "s3", s3);
    if (!j) {
        errno = EINVAL;
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        json_decref(j);
        return -1;
    }
    int rc = json_dumpf(j, f, 0);
    json_decref(j);
    if (rc < 0 || fputc('\n', f) == EOF) {
        fclose(f);
        unlink(tmp);
        errno = EIO;
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    mk_config_t config;
    mk_cluster_config_init(&config);
    const char *data_dir = NULL, *host = "127.0.0.1", *advertise = NULL, *adv_ports_arg = NULL, *adv_tls_arg = NULL;
    char host_buf[64];
    int adv_ports[64], adv_tls_ports[64];
    int port = 9092, brokers = -1, azs = -1;
    int admin_port = 8080;
    bool admin_port_set = false;
    int s3_port = 9000;
    bool s3_port_set = false;
    const char *s3_access = getenv("MINIKORA_S3_ACCESS_KEY"), *s3_secret = getenv("MINIKORA_S3_SECRET_KEY");
    const char *s3_bucket = NULL;
    const char *ready_file = NULL;
    const char *admin_token = getenv("MINIKORA_ADMIN_TOKEN");
    bool ephemeral = false, control = false, tui = false;
    char why[512];
    uint64_t t0 = mk_mono_ns();

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                     \
    do {                                                                 \
        if (!v) {                                                        \
            fprintf(stderr, "minikora: %s needs a value\n", a);          \
            return 2;                                                    \
        }                                                                \
        i++;                                                             \
    } while (0)
        if (strcmp(a, "--ephemeral") == 0) {
            ephemeral = true;
        } else if (strcmp(a, "--control-stdin") == 0) {
            control = true;
        } else if (strcmp(a, "--tui") == 0) {
            tui = true;
        } else if (strcmp(a, "--data-dir") == 0) {
            NEED_VALUE();
            data_dir = v;
        } else if (strcmp(a, "--port") == 0) {
            NEED_VALUE();
            if (parse_int(v, &port) < 0) {
                fprintf(stderr, "minikora: bad port '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--admin-port") == 0) {
            NEED_VALUE();
            if (strcmp(v, "-1") == 0) {
                admin_port = -1;
            } else if (parse_int(v, &admin_port) < 0) {
                fprintf(stderr, "minikora: bad admin port '%s' (0..65535, or -1 to disable)\n", v);
                return 2;
            }
            admin_port_set = true;
        } else if (strcmp(a, "--s3-port") == 0) {
            NEED_VALUE();
            if (strcmp(v, "-1") == 0) {
                s3_port = -1;
            } else if (parse_int(v, &s3_port) < 0) {
                fprintf(stderr, "minikora: bad S3 port '%s' (0..65535, or -1 to disable)\n", v);
                return 2;
            }
            s3_port_set = true;
        } else if (strcmp(a, "--s3-access-key") == 0) {
            NEED_VALUE();
            s3_access = v;
        } else if (strcmp(a, "--s3-secret-key") == 0) {
            NEED_VALUE();
            s3_secret = v;
        } else if (strcmp(a, "--s3-bucket") == 0) {
            NEED_VALUE();
            s3_bucket = v;
        } else if (strcmp(a, "--tls-port") == 0) {
            NEED_VALUE();
            int tp;
            if (strcmp(v, "-1") != 0 && parse_int(v, &tp) < 0) {
                fprintf(stderr, "minikora: bad TLS port '%s' (0..65535, or -1 to disable)\n", v);
                return 2;
            }
            mk_cluster_config_set(&config, "minikora.tls.port", v, NULL, 0);
        } else if (strcmp(a, "--tls-cert") == 0 || strcmp(a, "--tls-key") == 0 || strcmp(a, "--tls-ca") == 0) {
            NEED_VALUE();
            char name[32];
            snprintf(name, sizeof(name), "minikora.tls.%s", a + 6);
            if (mk_cluster_config_set(&config, name, v, why, sizeof(why)) < 0) {
                fprintf(stderr, "minikora: %s\n", why);
                return 2;
            }
        } else if (strcmp(a, "--ready-file") == 0) {
            NEED_VALUE();
            ready_file = v;
        } else if (strcmp(a, "--admin-token") == 0) {
            NEED_VALUE();
            admin_token = v;
            if (!mk_admin_token_valid(v)) {
                fprintf(stderr, "minikora: --admin-token wants 1..%d visible ASCII characters, no spaces\n",
                        MK_ADMIN_TOKEN_MAX);
                return 2;
            }
        } else if (strcmp(a, "--host") == 0) {
            NEED_VALUE();
            host = v;
            size_t hl = strlen(v);
            if (hl > 2 && v[0] == '[' && v[hl - 1] == ']' && hl - 2 < sizeof(host_buf)) {
                snprintf(host_buf, sizeof(host_buf), "%.*s", (int)(hl - 2), v + 1); /* [::1] is ::1 */
                host = host_buf;
            }
        } else if (strcmp(a, "--advertise-host") == 0) {
            NEED_VALUE();
            advertise = v;
        } else if (strcmp(a, "--advertise-ports") == 0) {
            NEED_VALUE();
            adv_ports_arg = v;
        } else if (strcmp(a, "--advertise-tls-ports") == 0) {
            NEED_VALUE();
            adv_tls_arg = v;
        } else if (strcmp(a, "--brokers") == 0 || strcmp(a, "--azs") == 0) {
            NEED_VALUE();
            if (mk_cluster_config_set(&config, a[2] == 'b' ? "minikora.brokers" : "minikora.azs", v, why, sizeof(why)) < 0) {
                fprintf(stderr, "minikora: %s\n", why);
                return 2;
            }
        } else if (strcmp(a, "--config") == 0) {
            NEED_VALUE();
            if (mk_cluster_config_load_file(&config, v, why, sizeof(why)) < 0) {
                fprintf(stderr, "minikora: %s\n", why);
                return 2;
            }
        } else if (strcmp(a, "--set") == 0) {
            NEED_VALUE();
            char kv[1024];
            snprintf(kv, sizeof(kv), "%s", v);
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "minikora: --set wants KEY=VALUE, got '%s'\n", v);
                return 2;
            }
            *eq = 0;
            if (mk_cluster_config_set(&config, kv, eq + 1, why, sizeof(why)) < 0) {
                fprintf(stderr, "minikora: %s\n", why);
                return 2;
            }
        } else if (strcmp(a, "--log-level") == 0) {
            NEED_VALUE();
            int lvl = strcmp(v, "debug") == 0 ? MK_LOGGER_DEBUG
                      : strcmp(v, "info") == 0 ? MK_LOGGER_INFO
                      : strcmp(v, "warn") == 0 ? MK_LOGGER_WARN
                      : strcmp(v, "error") == 0 ? MK_LOGGER_ERROR : -1;
            if (lvl < 0) {
                fprintf(stderr, "minikora: unknown log level '%s'\n", v);
                return 2;
            }
            mk_logger_set_level(lvl);
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            /* One line, not the whole usage: the reason stays the last thing a CI log shows. */
            fprintf(stderr, "minikora: unknown option '%s' (minikora serve --help lists them)\n", a);
            return 2;
        }
#undef NEED_VALUE
    }
    if (!admin_port_set && port == 0)
        admin_port = 0; /* fixtures run many clusters at once: free ports for all */
    if (!s3_port_set && port == 0)
        s3_port = 0;
    if (s3_access && !s3_access[0])
        s3_access = NULL;
    if (s3_secret && !s3_secret[0])
        s3_secret = NULL;
    if ((s3_access != NULL) != (s3_secret != NULL) || (s3_access && !mk_s3d_access_key_valid(s3_access)) ||
        (s3_secret && !mk_s3d_secret_key_valid(s3_secret))) {
        fprintf(stderr, "minikora: give the S3 access key (3..128 of A-Z a-z 0-9) and secret key (8..128 visible "
                        "ASCII characters, no spaces) together\n");
        return 2;
    }
    if (admin_token && !admin_token[0])
        admin_token = NULL; /* MINIKORA_ADMIN_TOKEN= (empty) means: generate one */
    if (admin_token && !mk_admin_token_valid(admin_token)) {
        fprintf(stderr, "minikora: MINIKORA_ADMIN_TOKEN wants 1..%d visible ASCII characters, no spaces\n",
                MK_ADMIN_TOKEN_MAX);
        return 2;
    }
    brokers = (int)mk_cluster_config_get_i64(&config, "minikora.brokers");
    azs = (int)mk_cluster_config_get_i64(&config, "minikora.azs");
    if (brokers < 1 || brokers > 64 || azs < 1 || azs > 16) {
        fprintf(stderr, "minikora: brokers must be 1..64 and AZs 1..16\n");
        return 2;
    }
    if (adv_ports_arg && parse_advertise_ports("--advertise-ports", adv_ports_arg, brokers, adv_ports) < 0)
        return 2;
    if (adv_tls_arg && parse_advertise_ports("--advertise-tls-ports", adv_tls_arg, brokers, adv_tls_ports) < 0)
        return 2;

    /* The server itself: the same startup the embedding API uses (app/). */
    app_t app;
    memset(&app, 0, sizeof(app));
    signal(SIGPIPE, SIG_IGN);
    nofile_setup(&config);
#ifdef __GLIBC__
    /* Request bodies (up to a few MB each, allocated per frame by net/)
     * come from the heap and their pages stay there for the next one:
     * glibc's defaults map each one afresh or trim the heap top under
     * them, and the page faults of touching new memory cost more than the
     * copy into it on a VM.  At most 32 MiB of free heap is kept (closing
     * connections still trims: net/ calls malloc_trim). */
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
    app.loop = uv_default_loop();
    /* The loop's idle time (uv_metrics_idle_time): its busy fraction in
     * /metrics (minikora_loop_idle_seconds_total). */
    uv_loop_configure(app.loop, UV_METRICS_IDLE_TIME);
    mk_app_opts_t opts = {0};
    opts.data_dir = data_dir;
    opts.ephemeral = ephemeral;
    opts.host = host;
    opts.advertise_host = advertise;
    opts.advertise_ports = adv_ports_arg ? adv_ports : NULL;
    opts.advertise_tls_ports = adv_tls_arg ? adv_tls_ports : NULL;
    opts.port = port;
    opts.admin_port = admin_port;
    opts.admin_port_set = admin_port_set;
    opts.s3_port = s3_port;
    opts.s3_port_set = s3_port_set;
    opts.s3_access_key = s3_access;
    opts.s3_secret_key = s3_secret;
    opts.s3_bucket = s3_bucket;
    opts.admin_token = admin_token;
    opts.config = &config;
    opts.version = MINIKORA_VERSION;
    if (mk_app_opts_check(&opts, why, sizeof(why)) < 0) {
        fprintf(stderr, "minikora: %s\n", why);
        return 2;
    }
    int rc = mk_app_open(app.loop, &opts, &app.app, why, sizeof(why));
    if (rc < 0) {
        fprintf(stderr, "minikora: %s\n", why);
        return 1;
    }
    app.cluster = mk_app_cluster(app.app);
    app.broker = mk_app_broker(app.app);
    app.s3d = mk_app_s3d(app.app);
    data_dir = mk_app_data_dir(app.app);
    admin_token = mk_app_admin_token(app.app);
    const char *admin_url = mk_app_admin_url(app.app);
    const char *ephemeral_dir = mk_app_ephemeral_dir(app.app);

    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&app.sigint, signal_cb, SIGINT);

    const char *boot = mk_app_bootstrap(app.app);
    int n = mk_cluster_broker_count(app.cluster);
    if (ready_file && write_ready_file(&app, ready_file, boot, admin_url[0] ? admin_url : NULL, admin_token,
                                       data_dir) < 0)
        mk_warn("cannot write the ready file %s: %s", ready_file, strerror(errno));
    if (ready_file || ephemeral_dir)
        fatal_signals_catch(ready_file, ephemeral_dir);
    /* The TLS part comes last, after a space, so the admin URL stays one
     * whitespace-delimited word as tests and scripts parse it. */
    char tls_part[4600] = "";
    const char *ca = mk_cluster_tls_ca_file(app.cluster);
    if (ca) {
        char tls_boot[4096];
        mk_cluster_tls_bootstrap(app.cluster, tls_boot, sizeof(tls_boot));
        snprintf(tls_part, sizeof(tls_part), " tls %s ca %s", tls_boot, ca);
    }
    /* the S3 part follows the admin URL, before the TLS part */
    char s3_part[800] = "";
    if (app.s3d)
        snprintf(s3_part, sizeof(s3_part), " s3 %s bucket %s key %s secret %s", mk_s3d_url(app.s3d),
                 mk_s3d_bucket(app.s3d), mk_s3d_access_key(app.s3d), mk_s3d_secret_key(app.s3d));
    int ncells = (n + azs - 1) / azs, nazs = azs < n ? azs : n;
    printf("minikora ready: bootstrap servers %s (%d broker%s in %d cell%s over %d AZ%s; data %s; %.1f ms)%s%s%s%s\n",
           boot, n, n == 1 ? "" : "s", ncells, ncells == 1 ? "" : "s", nazs, nazs == 1 ? "" : "s", data_dir,
           (double)(mk_mono_ns() - t0) / 1e6, admin_url[0] ? " admin " : "", admin_url, s3_part, tls_part);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_at(app.cluster, i);
        int aport;
        const char *ahost = mk_cluster_broker_endpoint(app.cluster, b, false, &aport);
        mk_info("broker %d: port %d (tls %d), %s, cell %d; clients are told %s:%d", b->id, b->port, b->tls_port, b->az,
                b->cell, ahost, aport);
    }
    if (control)
        control_start(&app); /* after the ready line: answers never come before it */

    if (tui && admin_url[0]) {
        /* `serve --tui`: the cluster's loop runs on a thread of its own and the
         * TUI, a plain admin API client, owns this thread and the terminal. */
        char logpath[4200];
        snprintf(logpath, sizeof(logpath), "%s/minikora.log", data_dir);
        if (!freopen(logpath, "a", stderr))
            mk_warn("cannot send logs to %s", logpath);
        uv_async_init(app.loop, &app.stop_async, stop_async_cb);
        app.stop_async.data = &app;
        uv_thread_t thr;
        if (uv_thread_create(&thr, loop_thread, &app) == 0) {
            char *targv[] = {"--admin", (char *)admin_url, "--admin-token", (char *)admin_token, NULL};
            mk_tui_main(4, targv);
            uv_async_send(&app.stop_async);
            uv_thread_join(&thr);
        } else {
            uv_close((uv_handle_t *)&app.stop_async, NULL);
            uv_run(app.loop, UV_RUN_DEFAULT);
        }
    } else {
        if (tui)
            mk_warn("--tui needs the admin API (--admin-port is -1); running without it");
        uv_run(app.loop, UV_RUN_DEFAULT);
    }
    rc = uv_loop_close(app.loop);
    if (rc < 0)
        mk_warn("event loop closed with handles still open");
    fatal_ephemeral_dir = NULL; /* removed and freed now */
    mk_app_free(app.app);
    if (ready_file)
        unlink(ready_file); /* a stale ready file would point at nothing */
    mk_cluster_config_free(&config);
    mk_info("stopped");
    return 0;
}

/* Six brokers share this process, so its descriptors are the cluster's:
 * the soft RLIMIT_NOFILE is raised to the hard limit, and the segment
 * descriptor cache (log/) is bounded by minikora.log.max.open.files (0, the
 * default: a quarter of that limit, at least 4096), at most half of it so
 * that connections, SQLite and transient duplicates (flushes, cursors) keep
 * the other half. */
static void nofile_setup(const mk_config_t *config)
{
    struct rlimit rl;
    rlim_t soft = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        soft = rl.rlim_cur;
        if (rl.rlim_cur < rl.rlim_max) {
            struct rlimit want = {rl.rlim_max, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                soft = rl.rlim_max;
            else
                mk_warn("cannot raise the open files limit from %llu to %llu: %s", (unsigned long long)rl.rlim_cur,
                        (unsigned long long)rl.rlim_max, strerror(errno));
        }
        mk_info("open files limit %llu (soft was %llu, hard %llu)", (unsigned long long)soft,
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    }
    int64_t set = mk_cluster_config_get_i64(config, "minikora.log.max.open.files");
    int64_t cap = soft == RLIM_INFINITY || soft > INT32_MAX ? INT32_MAX : (int64_t)soft / 2;
    /* 0: a quarter of the limit, at least MK_LOG_MAX_OPEN_FILES_DEFAULT */
    int64_t want = set > 0 ? set : MK_MAX((int64_t)MK_LOG_MAX_OPEN_FILES_DEFAULT, cap / 2);
    if (want > cap) {
        if (set > 0)
            mk_warn("minikora.log.max.open.files %lld is over half the open files limit: %lld used",
                    (long long)want, (long long)cap);
        want = cap;
    }
    mk_log_set_max_open_files((size_t)want);
    mk_info("segment files: at most %lld descriptors open (minikora.log.max.open.files)", (long long)want);
}

/* `minikora verify --data-dir DIR`: the scrubber's checks and the audit's
 * rules offline (scrub/).  Exit 0 clean, 1 problems found, 2 usage or an
 * unreadable directory. */
static int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc)
            i++; /* accepted for symmetry with serve; verify logs warnings only */
        else {
            fprintf(stderr, "minikora verify: unknown argument '%s'\nusage: minikora verify --data-dir DIR\n",
                    argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: minikora verify --data-dir DIR\n");
        return 2;
    }
    mk_logger_set_level(MK_LOGGER_WARN);
    int n = mk_scrub_verify_dir(dir, stdout);
    fflush(stdout);
    return n < 0 ? 2 : n > 0 ? 1 : 0;
}

/* minikora apis [--markdown]: the dispatch table as a terminal table, or as
 * the Markdown of docs/COMPATIBILITY.md. */
static int cmd_apis(int argc, char **argv)
{
    bool markdown = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0) {
            markdown = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: minikora apis [--markdown]\n");
            return 0;
        } else {
            fprintf(stderr, "minikora apis: unknown option '%s' (usage: minikora apis [--markdown])\n", argv[i]);
            return 2;
        }
    }
    if (markdown) {
        mk_broker_apis_markdown(stdout);
        return 0;
    }
    int width = 100;
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    if (isatty(1) && ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        width = ws.ws_col;
    else if (cols && atoi(cols) > 0)
        width = atoi(cols);
    mk_broker_apis_table(stdout, width);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "tui") == 0)
        return mk_tui_main(argc - 2, argv + 2);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(argv[1], "apis") == 0)
        return cmd_apis(argc - 2, argv + 2);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("minikora %s\n", MINIKORA_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "minikora: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
