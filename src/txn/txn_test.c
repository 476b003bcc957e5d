/*
 * txn_test.c -- unit test of producer-state loading (txn.c).  Standalone
 * program; exits 0 when every check passes.
 *
 * Covered: many partitions' loads asked at once hold at most a few
 * descriptors (the loop's queue: the others wait without a cursor) and all
 * complete; a load that cannot open its cursor (no descriptor left) is
 * retried, not lost; a topic deleted while its loads wait, and the txn
 * module freed while loads wait, leave nothing behind (run under ASan).
 * The Kafka-level behaviour (idempotence, transactions) is
 * tests/test_txn.py's and tests/test_idempotence.py's.
 */
#include "txn/txn.h"
#include "cluster/cluster.h"
#include "partition/partition.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define NPARTS 200

static void no_accept(mk_net_conn_t *c, void *ud) {}
static void no_frame(mk_net_conn_t *c, uint8_t *frame, size_t len, void *ud) { mk_free(frame); }
static void no_close(mk_net_conn_t *c, void *ud) {}

/* Descriptors open in this process (not counting the listing's own). */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

typedef struct env_s {
    char dir[64];
    mk_config_t cfg;
    uv_loop_t loop;
    mk_cluster_t *c;
    mk_partition_writer_t *w;
    mk_txn_t *t;
    mk_topic_t *topic;
} env_t;

static void env_open(env_t *e, const char *name)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/txn_test.XXXXXX");
    CHECK(mkdtemp(e->dir));
    mk_cluster_config_init(&e->cfg);
    char why[256];
    CHECK(mk_cluster_config_set(&e->cfg, "minikora.log.max.open.files", "48", why, sizeof(why)) == 0);
    CHECK(uv_loop_init(&e->loop) == 0);
    mk_cluster_opts_t o = {0};
    o.data_dir = e->dir;
    o.host = "127.0.0.1";
    o.tls_base_port = -1;
    o.brokers = 1;
    o.azs = 1;
    o.config = &e->cfg;
    o.handler = (mk_net_handler_t){no_accept, no_frame, no_close};
    CHECK(mk_cluster_open(&e->loop, &o, &e->c) == 0);
    CHECK(mk_partition_writer_new(e->c, &e->w) == 0);
    CHECK(mk_txn_new(&e->loop, e->c, NULL, e->w, &e->t) == 0);
    mk_topic_spec_t spec = {.name = name, .partitions = NPARTS, .replication_factor = 1};
    CHECK(mk_cluster_topic_create(e->c, &spec, NULL, NULL, &e->topic) == 0);
}

static void env_close(env_t *e)
{
    mk_txn_free(e->t);
    mk_partition_writer_free(e->w);
    mk_cluster_close(e->c);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&e->loop) == 0);
    mk_cluster_config_free(&e->cfg);
    mk_rm_rf(e->dir);
}

/* How many of the topic's partitions have their producer state (asking
 * starts the loads of the others). */
static int ready(env_t *e)
{
    int n = 0;
    for (int i = 0; i < NPARTS; i++)
        n += mk_txn_ready(e->t, mk_cluster_topic_partition(e->topic, i));
    return n;
}

/* Runs the loop until every partition is ready or ms passed. */
static int run_until_ready(env_t *e, int ms)
{
    int n = 0;
    for (int waited = 0; (n = ready(e)) < NPARTS && waited < ms; waited += 10) {
        uv_run(&e->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    return n;
}

/* All loads asked at once: only a few cursors (one .log descriptor each
 * here) are held at any time, and every load completes. */
static void test_many_bounded(void)
{
    env_t e;
    env_open(&e, "many");
    int before = open_fds();
    CHECK(ready(&e) == 0); /* asks for all NPARTS loads */
    int after = open_fds();
    CHECK(after - before <= 8);
    int peak = after;
    int n = 0;
    for (int waited = 0; (n = ready(&e)) < NPARTS && waited < 10000; waited += 1) {
        uv_run(&e.loop, UV_RUN_NOWAIT);
        int now = open_fds();
        peak = now > peak ? now : peak;
        usleep(1000);
    }
    CHECK(n == NPARTS);
    CHECK(peak - before <= 8);
    env_close(&e);
}

/* No descriptor left when the loads are asked for: none starts, none is
 * lost; once descriptors are back (and the tick retried) all complete. */
static void test_emfile_retried(void)
{
    env_t e;
    env_open(&e, "emfile");
    struct rlimit old;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    struct rlimit low = {(rlim_t)open_fds(), old.rlim_max}; /* every descriptor in use */
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    CHECK(ready(&e) == 0);
    for (int i = 0; i < 20; i++) {
        uv_run(&e.loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    CHECK(ready(&e) == 0);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    CHECK(run_until_ready(&e, 5000) == NPARTS);
    env_close(&e);
}

/* The topic deleted while its loads wait, then the txn module freed with
 * loads waiting (another topic's): nothing is used after it was freed. */
static void test_gone_while_waiting(void)
{
    env_t e;
    env_open(&e, "gone");
    CHECK(ready(&e) == 0);
    CHECK(mk_cluster_topic_delete(e.c, e.topic, NULL, NULL) == 0);
    for (int i = 0; i < 50; i++) {
        uv_run(&e.loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    mk_topic_spec_t spec = {.name = "gone2", .partitions = NPARTS, .replication_factor = 1};
    CHECK(mk_cluster_topic_create(e.c, &spec, NULL, NULL, &e.topic) == 0);
    CHECK(ready(&e) == 0);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    env_close(&e); /* frees t with loads waiting and some on the threadpool */
}

int main(void)
{
    mk_logger_set_level(MK_LOGGER_WARN);
    test_many_bounded();
    test_emfile_retried();
    test_gone_while_waiting();
    printf("txn_test: ok\n");
    return 0;
}
