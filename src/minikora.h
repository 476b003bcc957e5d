/*
 * minikora.h -- embed a minikora cluster in a C or C++ program.
 *
 * The public API of libminikora.a (`make lib`): start a real cluster
 * (brokers with their own listeners, replication, groups, transactions, the
 * admin HTTP API) inside the calling process, on a thread and an event loop
 * of its own, and stop it again -- the place librdkafka's mock cluster has
 * in a test, with the real protocol behind it.  Any Kafka client connects to
 * minikora_bootstrap(); the admin API (faults, reset, topics) answers at
 * minikora_admin_url() with the bearer token minikora_admin_token().
 *
 *     minikora_opts_t o;
 *     minikora_opts_init(&o);             // 1 broker, 1 AZ, ephemeral, free ports
 *     o.brokers = 3;
 *     minikora_t *m;
 *     char err[256];
 *     if (minikora_start(&o, &m, err, sizeof(err)) != 0) { puts(err); exit(1); }
 *     ... bootstrap.servers = minikora_bootstrap(m) ...
 *     minikora_destroy(m);                // stops it first if still running
 *
 * Link: cc prog.c -Isrc build/libminikora.a $(make -s print-libs)
 * (the libraries are listed in docs/EMBEDDING.md).
 *
 * This header is self-contained: it includes nothing of minikora's own.
 *
 * Threads: minikora_start() and minikora_destroy() from any thread but not
 * concurrently for the same cluster; minikora_stop() and the accessors from
 * any thread, concurrently too.  Several clusters may run in one process.
 * Logging is process-wide (minikora_opts_t.log_level of the last start).
 * The first start sets SIGPIPE to SIG_IGN when it was SIG_DFL: a client
 * that goes away must not kill the process.
 */
#ifndef MINIKORA_H
#define MINIKORA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MINIKORA_API_VERSION 1

typedef struct minikora_s minikora_t;

typedef struct minikora_opts_s {
    int brokers;            /* 1..64 (default 1) */
    int azs;                /* simulated availability zones, 1..16 (default 1) */
    const char *data_dir;   /* NULL (default): a temporary directory, removed by minikora_destroy() */
    const char *host;       /* bind address (default 127.0.0.1) */
    int port;               /* first broker port; 0 (default) picks free ports */
    int admin_port;         /* admin HTTP API: 0 (default) free port, -1 disabled */
    int tls_port;           /* first SSL port: 0 free ports, -1 (default) no TLS listeners */
    int s3_port;            /* bundled S3 server: 0 free port, -1 (default) disabled */
    const char *admin_token;/* NULL (default): a random one, see minikora_admin_token() */
    /* Kafka-style settings, "key=value", NULL-terminated (e.g. "num.partitions=3"); or NULL. */
    const char *const *config;
    const char *log_level;  /* "debug", "info", "warn" (default), "error" */
} minikora_opts_t;

/* Fill *opts with the defaults above. */
void minikora_opts_init(minikora_opts_t *opts);

/* Start a cluster and return once every listener is open and it serves.
 * 0 and *out (owned by the caller: minikora_destroy()), or -1 with a
 * sentence in errbuf (when errbuf is not NULL) and nothing left behind. */
int minikora_start(const minikora_opts_t *opts, minikora_t **out, char *errbuf, size_t errlen);

/* "host:port,host:port,...": the brokers' PLAINTEXT listeners.  Valid until
 * minikora_destroy(). */
const char *minikora_bootstrap(const minikora_t *m);
/* The SSL listeners as a bootstrap list, and the CA file clients should
 * trust; "" when TLS is off. */
const char *minikora_tls_bootstrap(const minikora_t *m);
const char *minikora_ca_file(const minikora_t *m);
/* "http://host:port" of the admin API, "" when disabled; its bearer token. */
const char *minikora_admin_url(const minikora_t *m);
const char *minikora_admin_token(const minikora_t *m);
/* The data directory in use. */
const char *minikora_data_dir(const minikora_t *m);

/* Stop the cluster cleanly (connections closed, data flushed) and wait for
 * its thread to end.  Safe from any thread, more than once and concurrently;
 * not from a callback that the cluster's own thread runs (there are none in
 * this API).  Returns 0. */
int minikora_stop(minikora_t *m);

/* Stop if running, remove the temporary data directory, free m.  NULL is a
 * no-op. */
void minikora_destroy(minikora_t *m);

#ifdef __cplusplus
}
#endif

#endif /* MINIKORA_H */
