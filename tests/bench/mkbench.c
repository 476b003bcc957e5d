/*
 * mkbench -- minikora's own load tool, built on librdkafka.
 *
 * One run of mkbench measures ONE target and prints machine-readable lines
 * `RESULT <key> <value>` on stdout (progress and librdkafka logs go to
 * stderr).  tests/bench/run.sh runs it once per target and joins the two
 * result sets into the side-by-side table; docs/BENCHMARKS.md explains the
 * figures.
 *
 * Targets (exactly one):
 *   --mock             librdkafka's built-in mock cluster, created inside this
 *                      process (rd_kafka_mock_cluster_new).  The mock keeps
 *                      only the last ~5 MiB / 100k message sets per partition,
 *                      so its produce figure is the tool's own ceiling and its
 *                      consume figure covers only the retained tail.
 *   -b BOOTSTRAP       an already running cluster; --pid PID adds RSS figures.
 *   --spawn -- CMD...  spawns CMD (e.g. ./minikora serve --ephemeral --port 0)
 *                      --startup-runs times, waiting each time for the stdout
 *                      line "minikora ready: bootstrap servers H:P,...".  All
 *                      but the last instance are stopped with SIGTERM at once;
 *                      the last one is the target of the load tests.
 *
 * Tests, in this order (each can be left out with --tests):
 *   startup  spawn-to-ready time (median of the runs); for --mock, the time to
 *            create rd_kafka_t + mock cluster.  Idle RSS is read 1 s after
 *            the ready line of the kept instance, before any topic exists.
 *   produce  N records of S bytes to a fresh topic, partition = i % P,
 *            linger.ms=5, batch.size=1000000, no compression; once per
 *            entry of --produce-acks (default: acks=1, then acks=all).  The
 *            clock runs from the first produce call until flush() has seen
 *            every delivery report.
 *   consume  a group-less consumer assigns every partition of the acks=1
 *            topic at its low watermark (explicit offsets, no commits) and
 *            reads up to the high watermark queried beforehand.  The rate is
 *            taken between the first and the last record received, so the
 *            connection set-up does not count.
 *   latency  a producer thread sends at a fixed rate (default 5000/s,
 *            linger.ms=0, acks=--lat-acks, default 1; librdkafka's in-flight
 *            limit unless --lat-inflight; --lat-partitions partitions,
 *            default -p) records that carry their send time
 *            (CLOCK_MONOTONIC, same host, same process) in the first bytes of
 *            the payload; the consumer, assigned at the high watermarks,
 *            computes receive time minus send time.  The first second is
 *            warm-up and is not counted.
 *
 *   ceiling  (with --ceiling-dir DIR; "auto": the spawned minikora's
 *            --ephemeral data directory) the machine's write ceiling, run
 *            after the untimed produce warm-up and before the timed tests:
 *            a plain pwrite() loop into a new file of DIR, as many bytes as
 *            the log gets for -n records, in writes of the warm-up's mean
 *            batch size (librdkafka's statistics; one batch is one pwrite
 *            in minikora's log).  Run twice, both reported
 *            (ceiling_first_mbps, ceiling_mbps: the second, into memory the
 *            first gave back, is the one the table compares with).
 *
 *            With --lat-rates R1,R2,... the test runs once per rate on the
 *            same topic, each run announced by `RESULT curve_rate R` (and
 *            followed by curve_rss_kb): the points of run.sh's curve.
 *
 *   flood    (not in the default list) one producer sends records of S bytes
 *            as fast as it can for --flood-secs seconds (acks=1,
 *            linger.ms=5, batch.size=1000000, at most 64 MB queued) to a
 *            fresh topic of P partitions, and counts what was acknowledged
 *            and the throttle times librdkafka saw (throttle_cb).  What is
 *            still queued at the end is purged, not flushed: a throttled
 *            flood would take long to drain.  The rate is taken after the
 *            first --flood-warm seconds (the part a neighbour's measure
 *            overlaps; see run.sh's noisy-neighbour section).
 *
 * --sasl USER:PASS authenticates every client with SASL/PLAIN (a tenant's
 * API key and secret on minikora).
 *
 * Topics are created with CreateTopics and an explicit replication factor
 * (--rf, default 1; brokers may default to more), plus min.insync.replicas
 * when --min-isr is given.  With --rf above 1 the tool reads the ISR of its
 * topics once more after the tests (rf_isr_min: the smallest ISR seen), so
 * that an acks=all figure taken on a shrunken ISR shows up.
 *
 * While the load tests run, a sampler thread reads VmRSS of the target
 * process from /proc/PID/status every 50 ms and keeps the peak
 * ("loaded RSS").
 *
 * MB/s means 10^6 bytes of record values per second (keys and headers are
 * empty; protocol overhead is not counted).
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* ------------------------------------------------------------------ options */

#define READY_PREFIX "minikora ready: bootstrap servers "
#define MAX_STARTUP_RUNS 50

typedef struct bench_opts_s {
        int mock;                 /* --mock */
        const char *bootstrap;    /* -b */
        pid_t pid;                /* --pid, or the spawned instance */
        char **spawn_argv;        /* --spawn -- CMD... */
        const char *log_path;     /* where the spawned process's output goes */
        long msgs;                /* -n: records per produce test */
        long warmup;              /* --warmup: untimed records first */
        int size;                 /* -s: record value size in bytes */
        int partitions;           /* -p */
        int rate;                 /* --rate: latency test, records/s */
        int lat_secs;             /* --lat-secs: measured seconds (+1 warm-up) */
        int lat_linger_ms;        /* --lat-linger */
        int lat_fetch_wait_ms;    /* --lat-fetch-wait */
        int startup_runs;         /* --startup-runs */
        int mock_brokers;         /* --mock-brokers */
        int timeout_s;            /* --timeout: per test */
        const char *tests;        /* --tests: comma list */
        int rf;                   /* --rf: replication factor of the topics */
        int min_isr;              /* --min-isr: 0 leaves it to the broker */
        const char *produce_acks; /* --produce-acks: comma list of 1, all */
        const char *lat_acks;     /* --lat-acks */
        int lat_inflight;         /* --lat-inflight: 0 = librdkafka's */
        int lat_partitions;       /* --lat-partitions: 0 = -p */
        const char *sasl;         /* --sasl USER:PASS: SASL/PLAIN for every client */
        int flood_secs;           /* --flood-secs: the flood test's length */
        int flood_warm;           /* --flood-warm: seconds before its rate is taken */
        const char *ceiling_dir;  /* --ceiling-dir: where the write ceiling's file goes */
        const char *lat_rates;    /* --lat-rates: comma list, one latency test each (curve) */
} bench_opts_t;

static bench_opts_t opts = {
        .log_path          = "/dev/null",
        .msgs              = 200000,
        .warmup            = -1, /* msgs / 10 */
        .size              = 1024,
        .partitions        = 6,
        .rate              = 5000,
        .lat_secs          = 10,
        .lat_linger_ms     = 0,
        .lat_fetch_wait_ms = -1, /* librdkafka's default (500 ms) */
        .startup_runs      = 5,
        .mock_brokers      = 3,
        .timeout_s         = 60,
        .tests             = "startup,produce,consume,latency",
        .rf                = 1,
        .min_isr           = 0,
        .produce_acks      = "1,all",
        .lat_acks          = "1",
        .lat_inflight      = 0,
        .lat_partitions    = 0,
        .sasl              = NULL,
        .flood_secs        = 15,
        .flood_warm        = 0,
        .ceiling_dir       = NULL,
};

/* The mean size of the record batches the last produce test sent, from
 * librdkafka's statistics (topics.*.batchsize.avg): one batch is one
 * pwrite() in minikora's log, so the write ceiling writes this size. */
static atomic_long stat_batch_avg;

/* Whether the comma list has the entry name. */
static int list_has(const char *list, const char *name) {
        size_t n = strlen(name);
        const char *p = list;
        while (p && *p) {
                if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
                        return 1;
                p = strchr(p, ',');
                if (p)
                        p++;
        }
        return 0;
}

static int test_enabled(const char *name) {
        return list_has(opts.tests, name);
}

/* ------------------------------------------------------------------ helpers */

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

static void say(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("mkbench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

static void result(const char *key, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        printf("RESULT %s ", key);
        vprintf(fmt, ap);
        putchar('\n');
        fflush(stdout);
        va_end(ap);
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Value at quantile q (0..1) of a sorted array, nearest-rank. */
static int64_t quantile(const int64_t *v, size_t n, double q) {
        size_t i;
        if (!n)
                return 0;
        i = (size_t)(q * (double)n + 0.999999);
        if (i < 1)
                i = 1;
        if (i > n)
                i = n;
        return v[i - 1];
}

/* VmRSS of pid in KiB, or -1 when the process is gone / not ours to read. */
static long rss_kb(pid_t pid) {
        char path[64], line[256];
        long kb = -1;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!(f = fopen(path, "r")))
                return -1;
        while (fgets(line, sizeof(line), f))
                if (!strncmp(line, "VmRSS:", 6)) {
                        kb = strtol(line + 6, NULL, 10);
                        break;
                }
        fclose(f);
        return kb;
}

/* Builds a config with bootstrap.servers and quiet defaults; exits on a bad
 * property since that is a bug in this tool. */
static rd_kafka_conf_t *conf_new(const char *bootstrap, ...) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[512];
        const char *k, *v;
        va_list ap;

        if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log.connection.close", "false", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                say("config: %s", errstr);
                exit(2);
        }
        if (opts.sasl) {
                char user[256];
                const char *colon = strchr(opts.sasl, ':');
                snprintf(user, sizeof(user), "%.*s",
                         (int)(colon ? colon - opts.sasl : 0), opts.sasl);
                if (!colon ||
                    rd_kafka_conf_set(conf, "security.protocol", "SASL_PLAINTEXT",
                                      errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
                    rd_kafka_conf_set(conf, "sasl.mechanism", "PLAIN", errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
                    rd_kafka_conf_set(conf, "sasl.username", user, errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK ||
                    rd_kafka_conf_set(conf, "sasl.password", colon + 1, errstr,
                                      sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                        say("--sasl USER:PASS: %s", colon ? errstr : "no ':'");
                        exit(2);
                }
        }
        va_start(ap, bootstrap);
        while ((k = va_arg(ap, const char *))) {
                v = va_arg(ap, const char *);
                if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) !=
                    RD_KAFKA_CONF_OK) {
                        say("config %s=%s: %s", k, v, errstr);
                        exit(2);
                }
        }
        va_end(ap);
        return conf;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
        char errstr[512];
        rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
        if (!rk) {
                say("rd_kafka_new: %s", errstr);
                exit(2);
        }
        return rk;
}

/* ------------------------------------------------------------------ target */

typedef struct target_s {
        const char *name;
        char bootstrap[8192];
        int brokers;
        /* --mock */
        rd_kafka_t *mock_rk;
        rd_kafka_mock_cluster_t *mcluster;
        /* --spawn */
        pid_t pid;
        int out_fd;             /* child's stdout (pipe) */
        int log_fd;
        pthread_t drain_thr;
        atomic_int drain_stop;
        int drain_running;
} target_t;

/* Copies the child's stdout to the log until told to stop (after reaping). */
static void *drain_main(void *arg) {
        target_t *t = arg;
        char buf[8192];
        for (;;) {
                struct pollfd pfd = {t->out_fd, POLLIN, 0};
                int r = poll(&pfd, 1, 50);
                ssize_t n;
                if (r == 0) {
                        if (atomic_load(&t->drain_stop))
                                break;
                        continue;
                }
                if (r < 0 && errno == EINTR)
                        continue;
                n = read(t->out_fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                if (write(t->log_fd, buf, (size_t)n) < 0) {
                        /* the log is best effort */
                }
        }
        return NULL;
}

static int count_brokers(const char *list) {
        int n = *list ? 1 : 0;
        for (; *list; list++)
                if (*list == ',')
                        n++;
        return n;
}

/* Spawns opts.spawn_argv and waits for the ready line.  Returns 0 and fills
 * t (pid, bootstrap, drain thread running) and *ms, or -1 after cleaning up. */
static int spawn_start(target_t *t, double *ms) {
        int fds[2];
        char buf[8192];
        size_t have = 0;
        int64_t t0, deadline;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) == -1) {
                say("pipe: %s", strerror(errno));
                return -1;
        }
        t0 = now_ns();
        pid = fork();
        if (pid == -1) {
                say("fork: %s", strerror(errno));
                return -1;
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                dup2(fds[1], 1);
                dup2(t->log_fd, 2);
                execvp(opts.spawn_argv[0], opts.spawn_argv);
                fprintf(stderr, "mkbench: exec %s: %s\n", opts.spawn_argv[0],
                        strerror(errno));
                _exit(127);
        }
        close(fds[1]);
        t->pid = pid;
        t->out_fd = fds[0];
        deadline = t0 + 30LL * 1000000000LL;

        for (;;) {
                struct pollfd pfd = {t->out_fd, POLLIN, 0};
                int64_t left = (deadline - now_ns()) / 1000000;
                char *nl;
                ssize_t n;
                if (left <= 0) {
                        say("%s: no ready line within 30 s", opts.spawn_argv[0]);
                        goto fail;
                }
                if (poll(&pfd, 1, (int)left) <= 0)
                        continue;
                n = read(t->out_fd, buf + have, sizeof(buf) - 1 - have);
                if (n <= 0) {
                        say("%s exited before the ready line (see %s)",
                            opts.spawn_argv[0], opts.log_path);
                        goto fail;
                }
                have += (size_t)n;
                buf[have] = '\0';
                while ((nl = strchr(buf, '\n'))) {
                        size_t len = (size_t)(nl - buf) + 1;
                        if (write(t->log_fd, buf, len) < 0) {
                                /* best effort */
                        }
                        if (!strncmp(buf, READY_PREFIX, strlen(READY_PREFIX))) {
                                char *s = buf + strlen(READY_PREFIX);
                                *nl = '\0';
                                *ms = (double)(now_ns() - t0) / 1e6;
                                s[strcspn(s, " \r\t")] = '\0';
                                snprintf(t->bootstrap, sizeof(t->bootstrap),
                                         "%s", s);
                                t->brokers = count_brokers(t->bootstrap);
                                have -= len;
                                memmove(buf, buf + len, have);
                                if (have && write(t->log_fd, buf, have) < 0) {
                                        /* best effort */
                                }
                                atomic_store(&t->drain_stop, 0);
                                pthread_create(&t->drain_thr, NULL, drain_main,
                                               t);
                                t->drain_running = 1;
                                return 0;
                        }
                        have -= len;
                        memmove(buf, buf + len, have);
                        buf[have] = '\0';
                }
                if (have >= sizeof(buf) - 1)
                        have = 0; /* an absurdly long line: drop it */
        }
fail:
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(t->out_fd);
        t->pid = 0;
        return -1;
}

/* Sends SIGTERM and waits up to 10 s (then SIGKILL).  Returns the shutdown
 * time in ms and sets *status to the wait status. */
static double spawn_stop(target_t *t, int *status) {
        int64_t t0 = now_ns();
        double ms;
        *status = 0;
        kill(t->pid, SIGTERM);
        for (;;) {
                pid_t r = waitpid(t->pid, status, WNOHANG);
                if (r == t->pid || (r == -1 && errno != EINTR))
                        break;
                if (now_ns() - t0 > 10LL * 1000000000LL) {
                        say("pid %d ignored SIGTERM for 10 s: SIGKILL",
                            (int)t->pid);
                        kill(t->pid, SIGKILL);
                        waitpid(t->pid, status, 0);
                        break;
                }
                sleep_ms(1);
        }
        ms = (double)(now_ns() - t0) / 1e6;
        if (t->drain_running) {
                atomic_store(&t->drain_stop, 1);
                pthread_join(t->drain_thr, NULL);
                t->drain_running = 0;
        }
        close(t->out_fd);
        t->pid = 0;
        return ms;
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs the startup measurement (when enabled) and leaves one instance of the
 * target up.  Returns 0, or -1 when the target could not be brought up. */
static int target_start(target_t *t) {
        double ms[MAX_STARTUP_RUNS], down[MAX_STARTUP_RUNS];
        int runs = test_enabled("startup") ? opts.startup_runs : 1;
        int i, ndown = 0, status;

        if (runs < 1)
                runs = 1;
        if (runs > MAX_STARTUP_RUNS)
                runs = MAX_STARTUP_RUNS;

        if (opts.mock) {
                t->name = "mock";
                for (i = 0; i < runs; i++) {
                        int64_t t0 = now_ns();
                        rd_kafka_conf_t *conf = rd_kafka_conf_new();
                        rd_kafka_t *rk;
                        /* no bootstrap.servers: silence that notice */
                        rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
                        rk = client_new(RD_KAFKA_PRODUCER, conf);
                        rd_kafka_mock_cluster_t *mc =
                            rd_kafka_mock_cluster_new(rk, opts.mock_brokers);
                        ms[i] = (double)(now_ns() - t0) / 1e6;
                        if (!mc) {
                                say("rd_kafka_mock_cluster_new failed");
                                return -1;
                        }
                        if (i < runs - 1) {
                                rd_kafka_mock_cluster_destroy(mc);
                                rd_kafka_destroy(rk);
                        } else {
                                t->mock_rk = rk;
                                t->mcluster = mc;
                        }
                }
                snprintf(t->bootstrap, sizeof(t->bootstrap), "%s",
                         rd_kafka_mock_cluster_bootstraps(t->mcluster));
                t->brokers = opts.mock_brokers;
        } else if (opts.spawn_argv) {
                t->name = "spawn";
                t->log_fd = open(opts.log_path,
                                 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (t->log_fd == -1) {
                        say("%s: %s", opts.log_path, strerror(errno));
                        return -1;
                }
                for (i = 0; i < runs; i++) {
                        if (spawn_start(t, &ms[i]) == -1)
                                return -1;
                        say("startup run %d: ready after %.1f ms", i + 1, ms[i]);
                        if (i < runs - 1) {
                                down[ndown++] = spawn_stop(t, &status);
                                if (!WIFEXITED(status) || WEXITSTATUS(status))
                                        say("startup run %d: exit status 0x%x",
                                            i + 1, status);
                        }
                }
                opts.pid = t->pid;
                if (ndown)
                        result("shutdown_ms", "%.1f", median(down, ndown));
        } else {
                t->name = "external";
                snprintf(t->bootstrap, sizeof(t->bootstrap), "%s",
                         opts.bootstrap);
                t->brokers = count_brokers(t->bootstrap);
        }
        result("target", "%s", t->name);
        result("brokers", "%d", t->brokers);
        if (test_enabled("startup") && (opts.mock || opts.spawn_argv)) {
                double med = median(ms, runs);
                result("startup_ms", "%.1f", med);
                result("startup_ms_min", "%.1f", ms[0]);
                result("startup_ms_max", "%.1f", ms[runs - 1]);
                result("startup_runs", "%d", runs);
        }
        return 0;
}

static void target_stop(target_t *t) {
        int status;
        if (t->mcluster) {
                rd_kafka_mock_cluster_destroy(t->mcluster);
                rd_kafka_destroy(t->mock_rk);
        }
        if (t->pid) {
                double ms = spawn_stop(t, &status);
                result("final_shutdown_ms", "%.1f", ms);
                if (!WIFEXITED(status) || WEXITSTATUS(status)) {
                        result("final_exit_status", "0x%x", status);
                        say("target exited with status 0x%x after SIGTERM",
                            status);
                }
        }
}

/* ------------------------------------------------------------------ RSS sampler */

static struct {
        pthread_t thr;
        atomic_int stop;
        atomic_long peak_kb;
        int running;
} sampler;

static void *sampler_main(void *arg) {
        (void)arg;
        while (!atomic_load(&sampler.stop)) {
                long kb = rss_kb(opts.pid);
                if (kb > atomic_load(&sampler.peak_kb))
                        atomic_store(&sampler.peak_kb, kb);
                sleep_ms(50);
        }
        return NULL;
}

static void sampler_start(void) {
        if (opts.pid <= 0)
                return;
        atomic_store(&sampler.stop, 0);
        atomic_store(&sampler.peak_kb, -1);
        pthread_create(&sampler.thr, NULL, sampler_main, NULL);
        sampler.running = 1;
}

static void sampler_stop(void) {
        if (!sampler.running)
                return;
        atomic_store(&sampler.stop, 1);
        pthread_join(sampler.thr, NULL);
        sampler.running = 0;
        result("rss_loaded_kb", "%ld", atomic_load(&sampler.peak_kb));
}

/* ------------------------------------------------------------------ topics */

/* Creates topic with nparts partitions and RF opts.rf, then waits until metadata shows
 * every partition with a leader.  Returns the partition count, or -1. */
static int topic_create(target_t *t, rd_kafka_t *ctl, const char *topic,
                        int nparts) {
        int64_t deadline;
        rd_kafka_topic_t *rkt;
        int found = -1;

        if (t->mcluster) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    t->mcluster, topic, nparts, opts.rf);
                if (err)
                        say("mock topic %s: %s", topic, rd_kafka_err2str(err));
        } else {
                char errstr[256];
                rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(
                    topic, nparts, opts.rf, errstr, sizeof(errstr));
                rd_kafka_queue_t *q = rd_kafka_queue_new(ctl);
                rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(
                    ctl, RD_KAFKA_ADMIN_OP_CREATETOPICS);
                rd_kafka_event_t *ev;

                if (opts.min_isr > 0) {
                        char v[16];
                        snprintf(v, sizeof(v), "%d", opts.min_isr);
                        rd_kafka_NewTopic_set_config(nt, "min.insync.replicas",
                                                     v);
                }
                /* Short: a broker without CreateTopics must not eat the
                 * whole time budget before auto-create gets its chance. */
                rd_kafka_AdminOptions_set_request_timeout(ao, 10000, NULL, 0);
                rd_kafka_CreateTopics(ctl, &nt, 1, ao, q);
                ev = rd_kafka_queue_poll(q, 15000);
                rd_kafka_AdminOptions_destroy(ao);
                if (!ev) {
                        say("CreateTopics %s: no answer (relying on "
                            "auto-create)", topic);
                } else if (rd_kafka_event_error(ev)) {
                        say("CreateTopics %s: %s (relying on auto-create)",
                            topic, rd_kafka_event_error_string(ev));
                } else {
                        size_t n;
                        const rd_kafka_topic_result_t **tr =
                            rd_kafka_CreateTopics_result_topics(
                                rd_kafka_event_CreateTopics_result(ev), &n);
                        if (n == 1 && rd_kafka_topic_result_error(tr[0]) &&
                            rd_kafka_topic_result_error(tr[0]) !=
                                RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                                say("CreateTopics %s: %s (relying on "
                                    "auto-create)",
                                    topic,
                                    rd_kafka_topic_result_error_string(tr[0]));
                }
                if (ev)
                        rd_kafka_event_destroy(ev);
                rd_kafka_queue_destroy(q);
                rd_kafka_NewTopic_destroy(nt);
        }

        /* Asking for the topic's metadata also triggers auto-creation. */
        deadline = now_ns() + (int64_t)opts.timeout_s * 1000000000LL;
        rkt = rd_kafka_topic_new(ctl, topic, NULL);
        while (now_ns() < deadline) {
                const struct rd_kafka_metadata *md = NULL;
                if (rd_kafka_metadata(ctl, 0, rkt, &md, 5000) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt > 0) {
                        int i, ok = 1;
                        for (i = 0; i < md->topics[0].partition_cnt; i++)
                                if (md->topics[0].partitions[i].err ||
                                    md->topics[0].partitions[i].leader < 0)
                                        ok = 0;
                        if (ok)
                                found = md->topics[0].partition_cnt;
                }
                if (md)
                        rd_kafka_metadata_destroy(md);
                if (found > 0)
                        break;
                sleep_ms(100);
        }
        rd_kafka_topic_destroy(rkt);
        if (found <= 0)
                say("topic %s never became ready", topic);
        else if (found != nparts)
                say("topic %s has %d partitions (asked for %d)", topic, found,
                    nparts);
        return found > 0 ? found : -1;
}

/* ------------------------------------------------------------------ produce */

typedef struct dr_stats_s {
        atomic_long ok;
        atomic_long failed;
        char first_err[256];
} dr_stats_t;

/* Keeps the largest-count window's batchsize.avg of the statistics JSON
 * (a crude scan: the keys are librdkafka's, the values plain integers). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
        const char *b = json;
        (void)rk;
        (void)len;
        (void)opaque;
        while ((b = strstr(b, "\"batchsize\":"))) {
                const char *avg = strstr(b, "\"avg\":");
                const char *cnt = strstr(b, "\"cnt\":");
                b += 12;
                if (avg && cnt && atol(cnt + 6) > 0 && atol(avg + 6) > 0)
                        atomic_store(&stat_batch_avg, atol(avg + 6));
        }
        return 0;
}

/* The machine's write ceiling (issue 16): a plain loop of pwrite() calls of
 * wsize bytes into a new file in dir, as many bytes as minikora's log gets
 * for n records of opts.size (a record's own header is about 10 bytes for
 * these records, a batch's 61), then close().  The rate is given as record
 * value bytes per second, the unit of the produce rows.  The file is removed
 * afterwards.  Returns MB/s, or -1. */
static double ceiling_run(const char *dir, long n, long wsize) {
        char path[4096];
        uint64_t total = (uint64_t)n * (uint64_t)(opts.size + 10);
        uint64_t off = 0;
        char *buf;
        int64_t t0;
        double secs;
        int fd;

        if (wsize < 4096)
                wsize = 4096;
        total += (total / (uint64_t)wsize + 1) * 61;
        snprintf(path, sizeof(path), "%s/mkbench-ceiling-%d.log", dir,
                 (int)getpid());
        buf = malloc((size_t)wsize);
        if (!buf)
                return -1;
        for (long i = 0; i < wsize; i++)
                buf[i] = (char)('a' + i % 26);
        unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
                say("ceiling: %s: %s", path, strerror(errno));
                free(buf);
                return -1;
        }
        t0 = now_ns();
        while (off < total) {
                size_t w = (size_t)(total - off < (uint64_t)wsize ? total - off
                                                                  : (uint64_t)wsize);
                ssize_t k = pwrite(fd, buf, w, (off_t)off);
                if (k <= 0) {
                        say("ceiling: write: %s", strerror(errno));
                        break;
                }
                off += (uint64_t)k;
        }
        close(fd);
        secs = (double)(now_ns() - t0) / 1e9;
        unlink(path);
        free(buf);
        if (off < total || secs <= 0)
                return -1;
        return (double)n * opts.size / secs / 1e6;
}

/* "auto": the --ephemeral data directory of the target, the first open
 * file of opts.pid under /tmp/minikora-XXXXXX (its segments and SQLite). */
static int ceiling_find_dir(char *out, size_t cap) {
        char fdpath[64], link[4096];
        for (int fd = 0; fd < 4096 && opts.pid > 0; fd++) {
                ssize_t k;
                snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%d", (int)opts.pid, fd);
                k = readlink(fdpath, link, sizeof(link) - 1);
                if (k <= 0)
                        continue;
                link[k] = 0;
                if (!strncmp(link, "/tmp/minikora-", 14)) {
                        char *slash = strchr(link + 14, '/');
                        if (slash)
                                *slash = 0;
                        snprintf(out, cap, "%s", link);
                        return 0;
                }
        }
        return -1;
}

/* Both passes of the ceiling, reported: the first writes into memory the
 * process may not have touched yet, the second into memory the first just
 * gave back (the figure the table compares with). */
static void test_ceiling(const char *dir, long n) {
        char found[4096];
        long wsize = atomic_load(&stat_batch_avg);
        double first, second;
        if (wsize <= 0)
                wsize = 64 * 1024; /* no statistics seen: a guess, noted */
        if (!strcmp(dir, "auto")) {
                if (ceiling_find_dir(found, sizeof(found)) < 0) {
                        result("ceiling_note", "data directory not found");
                        return;
                }
                dir = found;
        }
        result("ceiling_dir", "%s", dir);
        result("ceiling_write_bytes", "%ld", wsize);
        if (atomic_load(&stat_batch_avg) <= 0)
                result("ceiling_note", "no batch size from librdkafka: %ld B writes", wsize);
        first = ceiling_run(dir, n, wsize);
        second = ceiling_run(dir, n, wsize);
        say("ceiling: %ld B writes into %s: %.1f then %.1f MB/s", wsize, dir,
            first, second);
        if (first > 0)
                result("ceiling_first_mbps", "%.1f", first);
        if (second > 0)
                result("ceiling_mbps", "%.1f", second);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        dr_stats_t *st = opaque;
        (void)rk;
        if (m->err) {
                if (atomic_fetch_add(&st->failed, 1) == 0)
                        snprintf(st->first_err, sizeof(st->first_err), "%s",
                                 rd_kafka_err2str(m->err));
        } else
                atomic_fetch_add(&st->ok, 1);
}

/* Produces n records with the given acks; prints produce_<tag>_*, or
 * nothing when tag is "warmup". */
static void test_produce(const char *bootstrap, const char *topic, int parts,
                         const char *acks, const char *tag, long n) {
        dr_stats_t st = {0};
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        char key[64], *payload;
        int64_t t0, deadline;
        double secs;
        long i;

        conf = conf_new(bootstrap, "acks", acks, "linger.ms", "5",
                        "batch.size", "1000000", "compression.codec", "none",
                        "queue.buffering.max.messages", "1000000",
                        "queue.buffering.max.kbytes", "1048576",
                        "message.timeout.ms", "60000",
                        "statistics.interval.ms", "100", NULL);
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        atomic_store(&stat_batch_avg, 0);
        rd_kafka_conf_set_opaque(conf, &st);
        rk = client_new(RD_KAFKA_PRODUCER, conf);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        payload = malloc((size_t)opts.size);
        for (i = 0; i < opts.size; i++)
                payload[i] = (char)('a' + i % 26);

        /* Connect and learn the leaders before the clock starts. */
        {
                const struct rd_kafka_metadata *md;
                if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000))
                        rd_kafka_metadata_destroy(md);
        }

        say("produce %s: %ld x %d B to %s", tag, n, opts.size, topic);
        t0 = now_ns();
        deadline = t0 + (int64_t)opts.timeout_s * 1000000000LL;
        for (i = 0; i < n; i++) {
                while (rd_kafka_produce(rkt, (int32_t)(i % parts),
                                        RD_KAFKA_MSG_F_COPY, payload,
                                        (size_t)opts.size, NULL, 0,
                                        NULL) == -1) {
                        rd_kafka_resp_err_t err = rd_kafka_last_error();
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                say("produce: %s", rd_kafka_err2str(err));
                                goto out;
                        }
                        rd_kafka_poll(rk, 1);
                }
                if ((i & 1023) == 0) {
                        rd_kafka_poll(rk, 0);
                        if (now_ns() > deadline)
                                break;
                }
        }
out:
        {
                int64_t left = (deadline - now_ns()) / 1000000;
                rd_kafka_flush(rk, left > 1000 ? (int)left : 1000);
        }
        secs = (double)(now_ns() - t0) / 1e9;
        /* A short test may end inside the first statistics interval: wait
         * (untimed, up to 1 s) for the window that holds its batches. */
        for (int w = 0; w < 20 && atomic_load(&stat_batch_avg) <= 0; w++)
                rd_kafka_poll(rk, 50);

        say("produce %s: %ld ok, %ld failed in %.2f s", tag,
            atomic_load(&st.ok), atomic_load(&st.failed), secs);
        if (!strcmp(tag, "warmup"))
                goto done;
        snprintf(key, sizeof(key), "produce_%s_msgs", tag);
        result(key, "%ld", atomic_load(&st.ok));
        snprintf(key, sizeof(key), "produce_%s_secs", tag);
        result(key, "%.3f", secs);
        snprintf(key, sizeof(key), "produce_%s_errors", tag);
        result(key, "%ld", atomic_load(&st.failed));
        if (atomic_load(&st.failed)) {
                snprintf(key, sizeof(key), "produce_%s_note", tag);
                result(key, "%ld failed deliveries, first: %s",
                       atomic_load(&st.failed), st.first_err);
        }
        if (atomic_load(&st.ok) < n) {
                snprintf(key, sizeof(key), "produce_%s_incomplete", tag);
                result(key, "%ld of %ld delivered", atomic_load(&st.ok),
                       n);
        }
        snprintf(key, sizeof(key), "produce_%s_mbps", tag);
        result(key, "%.1f",
               (double)atomic_load(&st.ok) * opts.size / secs / 1e6);
        snprintf(key, sizeof(key), "produce_%s_mps", tag);
        result(key, "%.0f", (double)atomic_load(&st.ok) / secs);
        if (atomic_load(&stat_batch_avg) > 0) {
                snprintf(key, sizeof(key), "produce_%s_batch_bytes", tag);
                result(key, "%ld", atomic_load(&stat_batch_avg));
        }
done:
        free(payload);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
}

/* ------------------------------------------------------------------ consume */

/* Reads topic from its low to its high watermarks; prints consume_*. */
static void test_consume(const char *bootstrap, rd_kafka_t *ctl,
                         const char *topic, int parts) {
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        rd_kafka_queue_t *rkqu;
        int64_t *lo = calloc((size_t)parts, sizeof(*lo));
        int64_t *hi = calloc((size_t)parts, sizeof(*hi));
        int *done = calloc((size_t)parts, sizeof(*done));
        int64_t expected = 0, t_assign, t_first = 0, t_last = 0, deadline;
        long msgs = 0, errors = 0;
        double bytes = 0, secs;
        int p, ndone = 0;
        char first_err[256] = "";

        for (p = 0; p < parts; p++) {
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    ctl, topic, p, &lo[p], &hi[p], 10000);
                if (err) {
                        say("watermarks %s[%d]: %s", topic, p,
                            rd_kafka_err2str(err));
                        result("consume_note", "ListOffsets failed: %s",
                               rd_kafka_err2str(err));
                        goto out_free;
                }
                expected += hi[p] - lo[p];
                if (hi[p] <= lo[p]) {
                        done[p] = 1;
                        ndone++;
                }
        }
        result("consume_expected", "%" PRId64, expected);

        conf = conf_new(bootstrap, "enable.auto.commit", "false",
                        "enable.partition.eof", "true",
                        "auto.offset.reset", "error", NULL);
        rk = client_new(RD_KAFKA_CONSUMER, conf);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        rkqu = rd_kafka_queue_new(rk);

        say("consume: %" PRId64 " records from %s", expected, topic);
        t_assign = now_ns();
        deadline = t_assign + (int64_t)opts.timeout_s * 1000000000LL;
        for (p = 0; p < parts; p++)
                if (rd_kafka_consume_start_queue(rkt, p, lo[p], rkqu) == -1)
                        say("consume_start %s[%d]: %s", topic, p,
                            rd_kafka_err2str(rd_kafka_last_error()));

        while (ndone < parts && now_ns() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consume_queue(rkqu, 100);
                if (!m)
                        continue;
                p = m->partition;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p >= 0 && p < parts && !done[p] &&
                            m->offset >= hi[p]) {
                                done[p] = 1;
                                ndone++;
                        }
                } else if (m->err) {
                        if (!errors++)
                                snprintf(first_err, sizeof(first_err), "%s",
                                         rd_kafka_message_errstr(m));
                        if (errors > 1000) {
                                rd_kafka_message_destroy(m);
                                break; /* hopeless: report what we have */
                        }
                } else {
                        t_last = now_ns();
                        if (!msgs)
                                t_first = t_last;
                        msgs++;
                        bytes += (double)m->len;
                        if (p >= 0 && p < parts && !done[p] &&
                            m->offset + 1 >= hi[p]) {
                                done[p] = 1;
                                ndone++;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        for (p = 0; p < parts; p++)
                rd_kafka_consume_stop(rkt, p);
        rd_kafka_queue_destroy(rkqu);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);

        result("consume_msgs", "%ld", msgs);
        result("consume_total_secs", "%.3f",
               (double)((t_last ? t_last : now_ns()) - t_assign) / 1e9);
        if (errors)
                result("consume_note", "%ld errors, first: %s", errors,
                       first_err);
        if (ndone < parts)
                result("consume_incomplete", "%ld of %" PRId64 " read", msgs,
                       expected);
        secs = (double)(t_last - t_first) / 1e9;
        if (msgs > 1 && secs > 0) {
                /* n records arrive in the n-1 gaps after the first one */
                result("consume_mbps", "%.1f",
                       bytes * (double)(msgs - 1) / (double)msgs / secs / 1e6);
                result("consume_mps", "%.0f", (double)(msgs - 1) / secs);
        }
        say("consume: %ld records (%.1f MB) in %.2f s, %ld errors", msgs,
            bytes / 1e6, secs, errors);
out_free:
        free(lo);
        free(hi);
        free(done);
}

/* ------------------------------------------------------------------ latency */

typedef struct lat_prod_s {
        const char *bootstrap;
        const char *topic;
        int parts;
        long total;
        atomic_int finished;
        long sent;
        double actual_rate;
} lat_prod_t;

static void *lat_producer_main(void *arg) {
        lat_prod_t *lp = arg;
        dr_stats_t st = {0};
        char linger[16], *payload;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        int64_t period = 1000000000LL / opts.rate, t0;
        struct timespec ts;
        long i;

        snprintf(linger, sizeof(linger), "%d", opts.lat_linger_ms);
        conf = conf_new(lp->bootstrap, "acks", opts.lat_acks, "linger.ms", linger,
                        "compression.codec", "none", NULL);
        if (opts.lat_inflight > 0) {
                char v[16];
                snprintf(v, sizeof(v), "%d", opts.lat_inflight);
                rd_kafka_conf_set(conf, "max.in.flight.requests.per.connection",
                                  v, NULL, 0);
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, &st);
        rk = client_new(RD_KAFKA_PRODUCER, conf);
        rkt = rd_kafka_topic_new(rk, lp->topic, NULL);
        payload = calloc(1, (size_t)opts.size);
        {
                const struct rd_kafka_metadata *md;
                if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000))
                        rd_kafka_metadata_destroy(md);
        }

        t0 = now_ns();
        for (i = 0; i < lp->total; i++) {
                int64_t due = t0 + i * period, ts_ns, seq = i;
                ts.tv_sec = (time_t)(due / 1000000000LL);
                ts.tv_nsec = (long)(due % 1000000000LL);
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
                                       NULL) == EINTR)
                        ;
                ts_ns = now_ns();
                memcpy(payload, &seq, 8);
                memcpy(payload + 8, &ts_ns, 8);
                while (rd_kafka_produce(rkt, (int32_t)(i % lp->parts),
                                        RD_KAFKA_MSG_F_COPY, payload,
                                        (size_t)opts.size, NULL, 0,
                                        NULL) == -1)
                        rd_kafka_poll(rk, 1);
                rd_kafka_poll(rk, 0);
        }
        lp->actual_rate = (double)lp->total / ((double)(now_ns() - t0) / 1e9);
        lp->sent = lp->total;
        rd_kafka_flush(rk, 10000);
        if (atomic_load(&st.failed))
                say("latency producer: %ld failed deliveries, first: %s",
                    atomic_load(&st.failed), st.first_err);
        atomic_store(&lp->finished, 1);
        free(payload);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return NULL;
}

/* Fixed-rate end-to-end latency; prints lat_*. */
static void test_latency(const char *bootstrap, rd_kafka_t *ctl,
                         const char *topic, int parts) {
        lat_prod_t lp = {.bootstrap = bootstrap, .topic = topic, .parts = parts};
        long warm = opts.rate; /* one second of warm-up */
        long measured = (long)opts.rate * opts.lat_secs;
        int64_t *lat, *sec_max, t_done = 0, t_first_send = 0;
        int nsec;
        long n = 0, seen = 0;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        rd_kafka_queue_t *rkqu;
        pthread_t thr;
        char fw[16];
        int p;

        if (opts.size < 16) {
                result("lat_note", "record size below 16 bytes");
                return;
        }
        lp.total = warm + measured;
        lat = calloc((size_t)measured, sizeof(*lat));
        /* The worst latency of the records sent in each second (to stderr):
         * shows when a stall happened, beside a neighbour's timeline. */
        nsec = opts.lat_secs + 2;
        sec_max = calloc((size_t)nsec, sizeof(*sec_max));

        conf = conf_new(bootstrap, "enable.auto.commit", "false",
                        "auto.offset.reset", "error", NULL);
        if (opts.lat_fetch_wait_ms >= 0) {
                snprintf(fw, sizeof(fw), "%d", opts.lat_fetch_wait_ms);
                rd_kafka_conf_set(conf, "fetch.wait.max.ms", fw, NULL, 0);
        }
        rk = client_new(RD_KAFKA_CONSUMER, conf);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        rkqu = rd_kafka_queue_new(rk);
        for (p = 0; p < parts; p++) {
                int64_t lo = 0, hi = 0;
                rd_kafka_query_watermark_offsets(ctl, topic, p, &lo, &hi,
                                                 10000);
                if (rd_kafka_consume_start_queue(rkt, p, hi, rkqu) == -1)
                        say("consume_start %s[%d]: %s", topic, p,
                            rd_kafka_err2str(rd_kafka_last_error()));
        }
        /* Let the consumer connect and start fetching. */
        {
                int64_t until = now_ns() + 500000000LL;
                while (now_ns() < until) {
                        rd_kafka_message_t *m = rd_kafka_consume_queue(rkqu, 50);
                        if (m)
                                rd_kafka_message_destroy(m);
                }
        }

        say("latency: %d records/s for 1+%d s to %s", opts.rate,
            opts.lat_secs, topic);
        pthread_create(&thr, NULL, lat_producer_main, &lp);
        for (;;) {
                rd_kafka_message_t *m = rd_kafka_consume_queue(rkqu, 100);
                int64_t now = now_ns();
                if (m) {
                        if (!m->err && m->len >= 16) {
                                int64_t seq, ts_ns;
                                memcpy(&seq, m->payload, 8);
                                memcpy(&ts_ns, (char *)m->payload + 8, 8);
                                seen++;
                                if (seq == 0 || !t_first_send)
                                        t_first_send = ts_ns - seq * (1000000000LL / opts.rate);
                                if (seq >= warm && n < measured) {
                                        int sec = (int)((ts_ns - t_first_send) / 1000000000LL);
                                        lat[n++] = now - ts_ns;
                                        if (sec >= 0 && sec < nsec && now - ts_ns > sec_max[sec])
                                                sec_max[sec] = now - ts_ns;
                                }
                        }
                        rd_kafka_message_destroy(m);
                }
                if (seen >= lp.total)
                        break;
                if (atomic_load(&lp.finished)) {
                        if (!t_done)
                                t_done = now;
                        else if (now - t_done > 5000000000LL)
                                break; /* 5 s grace after the last delivery */
                }
        }
        pthread_join(thr, NULL);
        for (p = 0; p < parts; p++)
                rd_kafka_consume_stop(rkt, p);
        rd_kafka_queue_destroy(rkqu);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);

        for (p = 1; p < nsec; p++)
                if (sec_max[p] > 0)
                        say("latency: records sent in second %d (from %.3f): worst %.2f ms", p,
                            (double)(t_first_send + (int64_t)p * 1000000000LL) / 1e9,
                            sec_max[p] / 1e6);
        free(sec_max);
        qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
        result("lat_count", "%ld", n);
        result("lat_lost", "%ld", lp.total - seen);
        result("lat_rate", "%.0f", lp.actual_rate);
        if (n) {
                result("lat_p50_us", "%.0f", quantile(lat, (size_t)n, 0.50) / 1e3);
                result("lat_p95_us", "%.0f", quantile(lat, (size_t)n, 0.95) / 1e3);
                result("lat_p99_us", "%.0f", quantile(lat, (size_t)n, 0.99) / 1e3);
                result("lat_p999_us", "%.0f",
                       quantile(lat, (size_t)n, 0.999) / 1e3);
                result("lat_max_us", "%.0f", lat[n - 1] / 1e3);
        }
        if (lp.total - seen)
                result("lat_note", "%ld of %ld records never arrived",
                       lp.total - seen, lp.total);
        say("latency: %ld measured, p50 %.2f ms, p99 %.2f ms", n,
            n ? quantile(lat, (size_t)n, 0.50) / 1e6 : 0.0,
            n ? quantile(lat, (size_t)n, 0.99) / 1e6 : 0.0);
        free(lat);
}

/* ------------------------------------------------------------------ flood */

typedef struct flood_stats_s {
        atomic_long ok, failed;
        atomic_long ok_after_warm;  /* acknowledged after the warm-up */
        atomic_long throttles, throttle_ms_max, throttle_ms_sum;
        int64_t warm_end_ns, t0_ns;
        atomic_long per_sec[128];   /* acknowledged in each second (timeline, stderr) */
} flood_stats_t;

static void flood_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
        flood_stats_t *st = opaque;
        (void)rk;
        if (m->err) {
                /* purged at the end, or refused */
                atomic_fetch_add(&st->failed, 1);
                return;
        }
        atomic_fetch_add(&st->ok, 1);
        if (now_ns() >= st->warm_end_ns)
                atomic_fetch_add(&st->ok_after_warm, 1);
        {
                int64_t sec = (now_ns() - st->t0_ns) / 1000000000LL;
                if (sec >= 0 && sec < 128)
                        atomic_fetch_add(&st->per_sec[sec], 1);
        }
}

static void flood_throttle_cb(rd_kafka_t *rk, const char *broker_name,
                              int32_t broker_id, int throttle_time_ms,
                              void *opaque) {
        flood_stats_t *st = opaque;
        (void)rk;
        (void)broker_name;
        if (throttle_time_ms <= 0)
                return;
        say("flood: throttled %d ms by broker %d at %.3f", throttle_time_ms,
            (int)broker_id, (double)now_ns() / 1e9);
        atomic_fetch_add(&st->throttles, 1);
        atomic_fetch_add(&st->throttle_ms_sum, throttle_time_ms);
        if (throttle_time_ms > atomic_load(&st->throttle_ms_max))
                atomic_store(&st->throttle_ms_max, throttle_time_ms);
}

/* As fast as the client can send, for opts.flood_secs; prints flood_*. */
static void test_flood(const char *bootstrap, const char *topic, int parts) {
        flood_stats_t st = {0};
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        char *payload;
        int64_t t0, end, warm_ns;
        long i = 0;
        double secs;

        conf = conf_new(bootstrap, "acks", "1", "linger.ms", "5",
                        "batch.size", "1000000", "compression.codec", "none",
                        "queue.buffering.max.messages", "1000000",
                        "queue.buffering.max.kbytes", "65536",
                        "message.timeout.ms", "300000", NULL);
        rd_kafka_conf_set_dr_msg_cb(conf, flood_dr_cb);
        rd_kafka_conf_set_throttle_cb(conf, flood_throttle_cb);
        rd_kafka_conf_set_opaque(conf, &st);
        rk = client_new(RD_KAFKA_PRODUCER, conf);
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        payload = malloc((size_t)opts.size);
        memset(payload, 'f', (size_t)opts.size);
        {
                const struct rd_kafka_metadata *md;
                if (!rd_kafka_metadata(rk, 0, rkt, &md, 10000))
                        rd_kafka_metadata_destroy(md);
        }
        say("flood: %d B records to %s for %d s", opts.size, topic,
            opts.flood_secs);
        t0 = now_ns();
        st.t0_ns = t0;
        warm_ns = (int64_t)opts.flood_warm * 1000000000LL;
        st.warm_end_ns = t0 + warm_ns;
        end = t0 + (int64_t)opts.flood_secs * 1000000000LL;
        while (now_ns() < end) {
                if (rd_kafka_produce(rkt, (int32_t)(i % parts),
                                     RD_KAFKA_MSG_F_COPY, payload,
                                     (size_t)opts.size, NULL, 0,
                                     NULL) == -1) {
                        if (rd_kafka_last_error() !=
                            RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                say("flood: %s", rd_kafka_err2str(
                                                     rd_kafka_last_error()));
                                break;
                        }
                        rd_kafka_poll(rk, 1);
                        continue;
                }
                i++;
                if ((i & 255) == 0)
                        rd_kafka_poll(rk, 0);
        }
        secs = (double)(now_ns() - t0) / 1e9;
        /* What is acknowledged by now counts; the rest is purged. */
        rd_kafka_poll(rk, 0);
        {
                long ok = atomic_load(&st.ok);
                long after = atomic_load(&st.ok_after_warm);
                double measured = secs - (double)opts.flood_warm;
                result("flood_secs", "%.3f", secs);
                result("flood_msgs", "%ld", ok);
                result("flood_mbps_total", "%.1f",
                       (double)ok * opts.size / secs / 1e6);
                if (measured > 0)
                        result("flood_mbps", "%.1f",
                               (double)after * opts.size / measured / 1e6);
                result("flood_throttles", "%ld", atomic_load(&st.throttles));
                result("flood_throttle_ms_max", "%ld",
                       atomic_load(&st.throttle_ms_max));
                say("flood: %ld records acknowledged in %.1f s (%.1f MB/s after "
                    "%d s), %ld throttle times (max %ld ms)",
                    ok, secs,
                    measured > 0 ? (double)after * opts.size / measured / 1e6 : 0,
                    opts.flood_warm, atomic_load(&st.throttles),
                    atomic_load(&st.throttle_ms_max));
        }
        for (i = 0; i < 128 && i <= (long)secs; i++)
                say("flood: second %ld (from %.3f): %ld records acknowledged", i,
                    (double)(t0 + i * 1000000000LL) / 1e9, atomic_load(&st.per_sec[i]));
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 2000);
        free(payload);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
}

/* ------------------------------------------------------------------ ISR */

/* Reads the ISR of the given topics (NULL entries skipped) and prints the
 * smallest ISR and replica counts seen over their partitions. */
static void report_isr(rd_kafka_t *ctl, const char **topics, int n) {
        int isr_min = -1, repl_min = -1, i, j;
        for (i = 0; i < n; i++) {
                const struct rd_kafka_metadata *md = NULL;
                rd_kafka_topic_t *rkt;
                if (!topics[i])
                        continue;
                rkt = rd_kafka_topic_new(ctl, topics[i], NULL);
                if (rd_kafka_metadata(ctl, 0, rkt, &md, 5000) ==
                        RD_KAFKA_RESP_ERR_NO_ERROR &&
                    md->topic_cnt == 1 && !md->topics[0].err)
                        for (j = 0; j < md->topics[0].partition_cnt; j++) {
                                const rd_kafka_metadata_partition_t *mp =
                                    &md->topics[0].partitions[j];
                                if (isr_min < 0 || mp->isr_cnt < isr_min)
                                        isr_min = mp->isr_cnt;
                                if (repl_min < 0 || mp->replica_cnt < repl_min)
                                        repl_min = mp->replica_cnt;
                        }
                else
                        say("metadata %s: no answer for the ISR check",
                            topics[i]);
                if (md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
        }
        if (isr_min < 0)
                return;
        result("rf_replicas_min", "%d", repl_min);
        result("rf_isr_min", "%d", isr_min);
        if (repl_min < opts.rf)
                result("rf_note", "a partition has %d replicas (asked for %d)",
                       repl_min, opts.rf);
        if (isr_min < repl_min)
                result("rf_isr_note", "ISR down to %d of %d after the tests",
                       isr_min, repl_min);
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
        fprintf(stderr,
                "usage: mkbench (--mock | -b BOOTSTRAP [--pid PID] | --spawn "
                "[--log FILE] -- CMD ARGS...)\n"
                "         [-n MSGS] [-s SIZE] [-p PARTITIONS] [--rate N] "
                "[--lat-secs S]\n"
                "         [--lat-linger MS] [--lat-fetch-wait MS] "
                "[--startup-runs N]\n"
                "         [--mock-brokers N] [--timeout S] [--warmup MSGS] "
                "[--tests startup,produce,consume,latency,flood]\n"
                "         [--rf N] [--min-isr N] [--produce-acks 1,all] "
                "[--lat-acks 1|all] [--lat-inflight N]\n"
                "         [--lat-partitions N] [--sasl USER:PASS] "
                "[--flood-secs S] [--flood-warm S]\n"
                "         [--ceiling-dir DIR] [--lat-rates R1,R2,...]\n");
        exit(2);
}

int main(int argc, char **argv) {
        static const struct option lopts[] = {
            {"mock", no_argument, NULL, 'M'},
            {"spawn", no_argument, NULL, 'S'},
            {"pid", required_argument, NULL, 'P'},
            {"log", required_argument, NULL, 'L'},
            {"rate", required_argument, NULL, 'r'},
            {"lat-secs", required_argument, NULL, 'l'},
            {"lat-linger", required_argument, NULL, 'g'},
            {"lat-fetch-wait", required_argument, NULL, 'w'},
            {"startup-runs", required_argument, NULL, 'u'},
            {"mock-brokers", required_argument, NULL, 'k'},
            {"timeout", required_argument, NULL, 't'},
            {"warmup", required_argument, NULL, 'W'},
            {"ceiling-dir", required_argument, NULL, 'C'},
            {"lat-rates", required_argument, NULL, 'X'},
            {"tests", required_argument, NULL, 'T'},
            {"rf", required_argument, NULL, 'R'},
            {"min-isr", required_argument, NULL, 'I'},
            {"produce-acks", required_argument, NULL, 'A'},
            {"lat-acks", required_argument, NULL, 'a'},
            {"lat-inflight", required_argument, NULL, 'i'},
            {"lat-partitions", required_argument, NULL, 'q'},
            {"sasl", required_argument, NULL, 'U'},
            {"flood-secs", required_argument, NULL, 'F'},
            {"flood-warm", required_argument, NULL, 'G'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0}};
        target_t t = {0};
        rd_kafka_t *ctl;
        const char *made[3] = {NULL, NULL, NULL};
        char t_warm[128], t_p1[128], t_pall[128], t_lat[128], t_flood[128];
        int spawn = 0, c, parts;

        while ((c = getopt_long(argc, argv, "b:n:s:p:h", lopts, NULL)) != -1) {
                switch (c) {
                case 'M': opts.mock = 1; break;
                case 'S': spawn = 1; break;
                case 'b': opts.bootstrap = optarg; break;
                case 'P': opts.pid = (pid_t)atoi(optarg); break;
                case 'L': opts.log_path = optarg; break;
                case 'n': opts.msgs = atol(optarg); break;
                case 's': opts.size = atoi(optarg); break;
                case 'p': opts.partitions = atoi(optarg); break;
                case 'r': opts.rate = atoi(optarg); break;
                case 'l': opts.lat_secs = atoi(optarg); break;
                case 'g': opts.lat_linger_ms = atoi(optarg); break;
                case 'w': opts.lat_fetch_wait_ms = atoi(optarg); break;
                case 'u': opts.startup_runs = atoi(optarg); break;
                case 'k': opts.mock_brokers = atoi(optarg); break;
                case 't': opts.timeout_s = atoi(optarg); break;
                case 'W': opts.warmup = atol(optarg); break;
                case 'C': opts.ceiling_dir = optarg; break;
                case 'X': opts.lat_rates = optarg; break;
                case 'T': opts.tests = optarg; break;
                case 'R': opts.rf = atoi(optarg); break;
                case 'I': opts.min_isr = atoi(optarg); break;
                case 'A': opts.produce_acks = optarg; break;
                case 'a': opts.lat_acks = optarg; break;
                case 'i': opts.lat_inflight = atoi(optarg); break;
                case 'q': opts.lat_partitions = atoi(optarg); break;
                case 'U': opts.sasl = optarg; break;
                case 'F': opts.flood_secs = atoi(optarg); break;
                case 'G': opts.flood_warm = atoi(optarg); break;
                default: usage();
                }
        }
        if (spawn) {
                if (optind >= argc)
                        usage();
                opts.spawn_argv = argv + optind;
        } else if (optind < argc)
                usage();
        if (opts.mock + !!opts.bootstrap + spawn != 1 || opts.msgs < 1 ||
            opts.size < 1 || opts.partitions < 1 || opts.rate < 1 ||
            opts.lat_secs < 1 || opts.mock_brokers < 1 || opts.timeout_s < 1 ||
            opts.rf < 1 || opts.min_isr < 0 || opts.lat_inflight < 0 ||
            opts.lat_partitions < 0 || opts.flood_secs < 1 ||
            opts.flood_warm < 0 || opts.flood_warm >= opts.flood_secs ||
            (strcmp(opts.lat_acks, "1") && strcmp(opts.lat_acks, "all")))
                usage();
        if (opts.warmup < 0)
                opts.warmup = opts.msgs / 10;
        if (!opts.lat_partitions)
                opts.lat_partitions = opts.partitions;
        signal(SIGPIPE, SIG_IGN);

        if (target_start(&t) == -1) {
                result("target_failed", "1");
                return 1;
        }
        if (opts.pid > 0) {
                sleep_ms(1000);
                result("rss_idle_kb", "%ld", rss_kb(opts.pid));
        }
        say("target %s: %s", t.name, t.bootstrap);
        result("rf", "%d", opts.rf);
        if (opts.min_isr > 0)
                result("min_isr", "%d", opts.min_isr);
        result("lat_acks", "%s", opts.lat_acks);
        if (opts.lat_inflight > 0)
                result("lat_inflight", "%d", opts.lat_inflight);
        result("lat_partitions", "%d", opts.lat_partitions);

        /* Unique names so that reruns against one cluster never collide. */
        snprintf(t_warm, sizeof(t_warm), "mkbench-warmup-%d-%ld",
                 (int)getpid(), (long)time(NULL));
        snprintf(t_p1, sizeof(t_p1), "mkbench-acks1-%d-%ld", (int)getpid(),
                 (long)time(NULL));
        snprintf(t_pall, sizeof(t_pall), "mkbench-acksall-%d-%ld",
                 (int)getpid(), (long)time(NULL));
        snprintf(t_lat, sizeof(t_lat), "mkbench-latency-%d-%ld", (int)getpid(),
                 (long)time(NULL));
        snprintf(t_flood, sizeof(t_flood), "mkbench-flood-%d-%ld", (int)getpid(),
                 (long)time(NULL));

        ctl = client_new(RD_KAFKA_PRODUCER,
                         conf_new(t.bootstrap, "allow.auto.create.topics",
                                  "true", NULL));
        sampler_start();
        /* Untimed warm-up: both the client and the target allocate their
         * buffers here, so the first timed test is not penalised. */
        if (test_enabled("produce") && opts.warmup > 0 &&
            (parts = topic_create(&t, ctl, t_warm, opts.partitions)) > 0)
                test_produce(t.bootstrap, t_warm, parts,
                             list_has(opts.produce_acks, "1") ? "1" : "all",
                             "warmup", opts.warmup);
        /* The write ceiling, after the warm-up (whose batch sizes it
         * writes) and before the timed tests. */
        if (opts.ceiling_dir && test_enabled("produce"))
                test_ceiling(opts.ceiling_dir, opts.msgs);
        if ((test_enabled("produce") && list_has(opts.produce_acks, "1")) ||
            test_enabled("consume")) {
                if ((parts = topic_create(&t, ctl, t_p1, opts.partitions)) > 0) {
                        made[0] = t_p1;
                        test_produce(t.bootstrap, t_p1, parts, "1", "acks1",
                                     opts.msgs);
                        if (test_enabled("consume"))
                                test_consume(t.bootstrap, ctl, t_p1, parts);
                } else
                        result("produce_acks1_note", "topic not ready");
        }
        if (test_enabled("produce") && list_has(opts.produce_acks, "all")) {
                if ((parts = topic_create(&t, ctl, t_pall, opts.partitions)) > 0) {
                        made[1] = t_pall;
                        test_produce(t.bootstrap, t_pall, parts, "all",
                                     "acksall", opts.msgs);
                } else
                        result("produce_acksall_note", "topic not ready");
        }
        if (test_enabled("latency")) {
                if ((parts = topic_create(&t, ctl, t_lat, opts.lat_partitions)) > 0) {
                        made[2] = t_lat;
                        if (opts.lat_rates) {
                                /* The curve (run.sh BENCH_ONLY=curve): one
                                 * latency test per rate on the same topic,
                                 * each announced by a curve_rate line. */
                                char rates[256], *save = NULL, *tok;
                                snprintf(rates, sizeof(rates), "%s", opts.lat_rates);
                                for (tok = strtok_r(rates, ",", &save); tok;
                                     tok = strtok_r(NULL, ",", &save)) {
                                        if ((opts.rate = atoi(tok)) < 1)
                                                continue;
                                        result("curve_rate", "%d", opts.rate);
                                        test_latency(t.bootstrap, ctl, t_lat, parts);
                                        if (opts.pid > 0)
                                                result("curve_rss_kb", "%ld", rss_kb(opts.pid));
                                }
                        } else
                                test_latency(t.bootstrap, ctl, t_lat, parts);
                } else
                        result("lat_note", "topic not ready");
        }
        if (test_enabled("flood")) {
                if ((parts = topic_create(&t, ctl, t_flood, opts.partitions)) > 0)
                        test_flood(t.bootstrap, t_flood, parts);
                else
                        result("flood_note", "topic not ready");
        }
        sampler_stop();
        if (opts.rf > 1)
                report_isr(ctl, made, 3);
        rd_kafka_destroy(ctl);
        target_stop(&t);
        return 0;
}
