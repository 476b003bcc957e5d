/*
 * embed.c -- the embedding API (src/minikora.h) shown whole: start a
 * cluster inside this process, produce one record and consume it back with
 * librdkafka, stop the cluster from another thread, destroy it.
 *
 * Built and run by `make embed-test` (part of `make test`, through
 * clients/test.sh).  Exit 0 when the record came back and the temporary
 * data directory is gone; 1 with a reason on stderr otherwise.
 *
 *   cc clients/c/embed.c $(PKG_CONFIG_PATH=build pkg-config --cflags --libs minikora) -lrdkafka
 */
#include <minikora.h>

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TOPIC "embed-demo"

static int die(const char *what, const char *why)
{
    fprintf(stderr, "embed: %s: %s\n", what, why);
    return 1;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, const char *bootstrap, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, errlen) != RD_KAFKA_CONF_OK ||
        (type == RD_KAFKA_CONSUMER &&
         (rd_kafka_conf_set(conf, "group.id", "embed-example", err, errlen) != RD_KAFKA_CONF_OK ||
          rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) != RD_KAFKA_CONF_OK))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rd_kafka_new(type, conf, err, errlen); /* takes conf on success */
}

/* Produce "hello" with key "k" and a header to TOPIC, partition 0; wait for the ack. */
static int produce(const char *bootstrap)
{
    char err[512];
    rd_kafka_t *p = client_new(RD_KAFKA_PRODUCER, bootstrap, err, sizeof(err));
    if (!p)
        return die("producer", err);
    rd_kafka_resp_err_t e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                                              RD_KAFKA_V_KEY("k", 1), RD_KAFKA_V_VALUE("hello", 5),
                                              RD_KAFKA_V_HEADER("source", "embed", 5), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_destroy(p);
        return die("produce", rd_kafka_err2str(e));
    }
    e = rd_kafka_flush(p, 20000);
    int rc = e ? die("flush", rd_kafka_err2str(e)) : 0;
    rd_kafka_destroy(p);
    return rc;
}

/* Read TOPIC partition 0 from the start (assigned, no group rebalance)
 * until the record comes back or 20 s pass. */
static int consume(const char *bootstrap)
{
    char err[512];
    rd_kafka_t *c = client_new(RD_KAFKA_CONSUMER, bootstrap, err, sizeof(err));
    if (!c)
        return die("consumer", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int rc = e ? die("assign", rd_kafka_err2str(e)) : 1;
    time_t deadline = time(NULL) + 20;
    while (rc == 1 && time(NULL) < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 500);
        if (!msg)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (msg->err) {
            fprintf(stderr, "embed: consume: %s (retrying)\n", rd_kafka_message_errstr(msg));
        } else if (msg->len == 5 && memcmp(msg->payload, "hello", 5) == 0 && msg->key_len == 1) {
            printf("embed: consumed key=%.*s value=%.*s offset=%lld\n", (int)msg->key_len, (const char *)msg->key,
                   (int)msg->len, (const char *)msg->payload, (long long)msg->offset);
            rc = 0;
        } else {
            rc = die("consume", "a record that is not the one produced");
        }
        rd_kafka_message_destroy(msg);
    }
    if (rc == 1)
        fprintf(stderr, "embed: consume: no record within 20 s\n");
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return rc;
}

/* minikora_stop() is thread-safe: stop from a thread of our own. */
static void *stopper(void *arg)
{
    minikora_stop(arg);
    return NULL;
}

int main(void)
{
    minikora_opts_t o;
    minikora_opts_init(&o);
    o.brokers = 3;
    o.azs = 3;
    static const char *const config[] = {"num.partitions=1", "default.replication.factor=3", NULL};
    o.config = config;
    minikora_t *m;
    char err[512];
    if (minikora_start(&o, &m, err, sizeof(err)) != 0)
        return die("minikora_start", err);
    printf("embed: cluster up: bootstrap %s admin %s data %s\n", minikora_bootstrap(m), minikora_admin_url(m),
           minikora_data_dir(m));
    char data_dir[4200];
    snprintf(data_dir, sizeof(data_dir), "%s", minikora_data_dir(m));

    int rc = produce(minikora_bootstrap(m));
    if (rc == 0)
        rc = consume(minikora_bootstrap(m));

    pthread_t t;
    if (pthread_create(&t, NULL, stopper, m) == 0) {
        minikora_stop(m); /* concurrently with the stopper: one stop */
        pthread_join(t, NULL);
    }
    minikora_stop(m); /* and once more: a no-op */
    minikora_destroy(m);
    struct stat st;
    if (stat(data_dir, &st) == 0)
        rc = die("destroy", "the temporary data directory is still there");
    printf("embed: %s\n", rc == 0 ? "ok" : "FAILED");
    return rc;
}
