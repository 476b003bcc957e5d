/*
 * app_test.c -- unit test of the embedding API (src/minikora.h over
 * app.c).  Standalone program; exits 0 when every check passes.
 *
 * Covered: defaults; a start that serves (a TCP connect to the bootstrap
 * address and to the admin API), the accessors; two clusters at once;
 * stop from several threads at once, repeated stops, destroy removing the
 * temporary data directory; a given data directory kept; starts that must
 * fail (bad brokers, bad config entry, unknown log level, a taken port) with
 * a sentence and nothing left behind.  The Kafka round trip is
 * clients/c/embed.c's (make embed-test), with librdkafka.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "minikora.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Can a TCP connection be made to the port of "h:p" / "http://h:p"? */
static bool connects(const char *hp)
{
    const char *colon = strrchr(hp, ':');
    if (!colon)
        return false;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void *stopper(void *arg)
{
    minikora_stop(arg);
    return NULL;
}

static void test_defaults(void)
{
    minikora_opts_t o;
    minikora_opts_init(&o);
    CHECK(o.brokers == 1 && o.azs == 1 && o.port == 0 && o.admin_port == 0 && o.tls_port == -1 &&
          o.s3_port == -1 && o.data_dir == NULL);
}

static void test_start_stop(void)
{
    minikora_opts_t o;
    minikora_opts_init(&o);
    o.brokers = 3;
    o.azs = 3;
    minikora_t *a, *b;
    char err[256];
    CHECK(minikora_start(&o, &a, err, sizeof(err)) == 0);
    o.brokers = 1;
    CHECK(minikora_start(NULL, &b, err, sizeof(err)) == 0); /* NULL: the defaults */
    const char *boot = minikora_bootstrap(a);
    CHECK(strncmp(boot, "127.0.0.1:", 10) == 0);
    CHECK(strchr(boot, ',') && strchr(strchr(boot, ',') + 1, ','));  /* three brokers */
    CHECK(strncmp(minikora_admin_url(a), "http://127.0.0.1:", 17) == 0);
    CHECK(strlen(minikora_admin_token(a)) == 64);
    CHECK(strcmp(minikora_tls_bootstrap(a), "") == 0 && strcmp(minikora_ca_file(a), "") == 0);
    char first[64];
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(boot, ","), boot);
    CHECK(connects(first));
    CHECK(connects(minikora_admin_url(a)));
    CHECK(connects(minikora_bootstrap(b)));
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", minikora_data_dir(a));
    CHECK(exists(dir));
    CHECK(strcmp(dir, minikora_data_dir(b)) != 0);

    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&t[i], NULL, stopper, a) == 0);
    minikora_stop(a);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK(minikora_stop(a) == 0);
    CHECK(!connects(first));
    CHECK(connects(minikora_bootstrap(b))); /* the other one runs on */
    CHECK(strcmp(minikora_bootstrap(a), boot) == 0); /* accessors stay valid until destroy */
    minikora_destroy(a);
    CHECK(!exists(dir));
    minikora_destroy(b); /* without a stop first */
    minikora_destroy(NULL);
}

static void test_data_dir_kept(void)
{
    char dir[] = "/tmp/app_test.XXXXXX";
    CHECK(mkdtemp(dir));
    minikora_opts_t o;
    minikora_opts_init(&o);
    o.data_dir = dir;
    o.admin_token = "secret-token";
    minikora_t *m;
    char err[256];
    CHECK(minikora_start(&o, &m, err, sizeof(err)) == 0);
    CHECK(strcmp(minikora_admin_token(m), "secret-token") == 0);
    CHECK(strcmp(minikora_data_dir(m), dir) == 0);
    minikora_destroy(m);
    char tok[4300];
    snprintf(tok, sizeof(tok), "%s/admin-token", dir);
    CHECK(exists(tok)); /* a given directory is the user's: kept */
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_failures(void)
{
    minikora_opts_t o;
    minikora_t *m = (minikora_t *)1;
    char err[256];

    minikora_opts_init(&o);
    o.brokers = 0;
    CHECK(minikora_start(&o, &m, err, sizeof(err)) == -1 && m == NULL);
    CHECK(strstr(err, "minikora.brokers") || strstr(err, "brokers"));

    minikora_opts_init(&o);
    static const char *const bad[] = {"num.partitions", NULL};
    o.config = bad;
    CHECK(minikora_start(&o, &m, err, sizeof(err)) == -1 && strstr(err, "key=value"));

    minikora_opts_init(&o);
    o.log_level = "loud";
    CHECK(minikora_start(&o, &m, err, sizeof(err)) == -1 && strstr(err, "log level"));

    /* A taken admin port: an error naming it, and no temporary directory left. */
    minikora_t *a;
    minikora_opts_init(&o);
    CHECK(minikora_start(&o, &a, err, sizeof(err)) == 0);
    const char *url = minikora_admin_url(a);
    o.admin_port = atoi(strrchr(url, ':') + 1);
    CHECK(minikora_start(&o, &m, err, sizeof(err)) == -1 && strstr(err, "admin API"));
    CHECK(minikora_start(&o, &m, NULL, 0) == -1); /* no error buffer: fine */
    minikora_destroy(a);
}

int main(void)
{
    test_defaults();
    test_start_stop();
    test_data_dir_kept();
    test_failures();
    printf("app_test: ok\n");
    return 0;
}
