/*
 * app.h -- L6: one whole minikora server on a libuv loop.
 *
 * The startup and shutdown that `minikora serve` (src/main.c) and the
 * embedding API (src/minikora.h, src/app/embed.c) share: the data directory
 * (or an ephemeral one), the cluster and its brokers, the request layer, the
 * once-a-second housekeeping tick, the bundled S3 server, tiered storage,
 * the admin token (generated when none is given, written to
 * DATA/admin-token) and the admin API.  What only the command has (flags,
 * signals, --control-stdin, the ready file and line, the TUI) stays in
 * main.c; what only embedding has (a thread of its own, a thread-safe stop)
 * stays in embed.c.
 *
 * Threads: every function runs on the loop's thread (the thread that runs
 * or will run the loop), except the accessors of values fixed at open
 * (bootstrap, admin URL, token, data directory), which any thread may call.
 */
#ifndef MK_APP_H
#define MK_APP_H

#include "admin/admin.h"
#include "broker/broker.h"
#include "cluster/cluster.h"
#include "s3d/s3d.h"

/* The release, for `minikora version`, /v1/cluster and minikora.h users. */
#define MINIKORA_VERSION "0.1.0"

typedef struct mk_app_s mk_app_t;

typedef struct mk_app_opts_s {
    const char *data_dir;        /* NULL: the config's log.dirs (ignored when ephemeral) */
    bool ephemeral;              /* a fresh /tmp/minikora-XXXXXX, removed by mk_app_free() */
    const char *host;            /* bind address (NULL: 127.0.0.1) */
    const char *advertise_host;  /* NULL: from host (cluster/) */
    const int *advertise_ports;  /* one per broker, or NULL */
    const int *advertise_tls_ports; /* the same for the SSL listeners, or NULL */
    int port;                    /* first broker port; 0 picks free ports */
    int admin_port;              /* 0 picks a free port, -1 disables the admin API */
    bool admin_port_set;         /* given by the user: no fallback to a free port when taken */
    int s3_port;                 /* the bundled S3 server: 0 free, -1 disabled */
    bool s3_port_set;            /* as admin_port_set */
    const char *s3_access_key;   /* both or neither; NULL: DATA/s3/_credentials or new */
    const char *s3_secret_key;
    const char *s3_bucket;       /* NULL: minikora */
    const char *admin_token;     /* NULL: a random one (when the admin API is on) */
    mk_config_t *config;         /* borrowed; outlives the app (brokers, AZs, TLS port, ...) */
    const char *version;         /* for /v1/cluster */
} mk_app_opts_t;

/* Pure: are the options usable (brokers 1..64, AZs 1..16, the TLS ports
 * fit, ports in range, a valid admin token)?  0, or MK_ERR_INVALID with a
 * sentence in why.  mk_app_open() checks them too. */
int mk_app_opts_check(const mk_app_opts_t *opts, char *why, size_t whylen);

/* Open everything on loop, which must have no other active handles (on a
 * failure the loop is run here until what was opened has closed).  Returns
 * 0 and *out, or a negative MK / libuv error with a sentence in why and
 * nothing left behind (the ephemeral directory removed).  The cluster then
 * serves as soon as the caller runs the loop. */
int mk_app_open(uv_loop_t *loop, const mk_app_opts_t *opts, mk_app_t **out, char *why, size_t whylen);

/* Begin a clean stop: close the admin API, the S3 server (joins its
 * thread), the request layer and the cluster.  The loop ends once their
 * close callbacks have run.  Idempotent. */
void mk_app_stop(mk_app_t *app);

/* After the loop has ended: remove the ephemeral directory, free app. */
void mk_app_free(mk_app_t *app);

/* Parts, for the command's extras (control, ready file).  Loop thread. */
mk_cluster_t *mk_app_cluster(const mk_app_t *app);
mk_broker_t *mk_app_broker(const mk_app_t *app);
mk_s3d_t *mk_app_s3d(const mk_app_t *app);
bool mk_app_stopping(const mk_app_t *app);

/* Fixed at open; any thread.  "" when absent (admin API disabled). */
const char *mk_app_bootstrap(const mk_app_t *app);     /* host:port,... the bound listeners */
const char *mk_app_admin_url(const mk_app_t *app);     /* http://host:port */
const char *mk_app_admin_token(const mk_app_t *app);
const char *mk_app_data_dir(const mk_app_t *app);
const char *mk_app_ephemeral_dir(const mk_app_t *app); /* NULL unless ephemeral */

#endif /* MK_APP_H */
