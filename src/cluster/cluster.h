/*
 * cluster.h -- L2: the cluster as one process sees it.
 *
 *   config     Kafka-named settings with defaults, a properties-file reader,
 *              broker values and per-topic overrides (config.c)
 *   topology   cluster -> cells -> brokers; each broker has an AZ (its rack),
 *              a listener and a log directory, and can be stopped and started
 *              alone (cluster.c)
 *   topics     topics, topic ids, partitions and their leaders; placement of a
 *              topic in a cell and of leaders over the cell's brokers;
 *              persistence through meta/ (cluster.c)
 *
 * The request handlers (broker/, L4) sit above: they register a net handler
 * when the cluster is created, and the cluster calls back only through it.
 * Threads: all on the loop thread.
 */
#ifndef MK_CLUSTER_H
#define MK_CLUSTER_H

#include "base/base.h"
#include "log/log.h"
#include "net/net.h"

/* ==================================================================== config */

enum { MK_CFG_BOOL = 1, MK_CFG_STRING, MK_CFG_INT, MK_CFG_SHORT, MK_CFG_LONG, MK_CFG_DOUBLE, MK_CFG_LIST };
enum { MK_CFG_SCOPE_BROKER = 1, MK_CFG_SCOPE_TOPIC = 2 };

/* One known setting.  Topic settings name the broker setting that supplies
 * their default (retention.ms <- log.retention.ms), as Kafka does. */
typedef struct mk_cfg_def_s {
    const char *name;
    int type;                 /* MK_CFG_* (DescribeConfigs ConfigType) */
    int scope;                /* MK_CFG_SCOPE_* */
    const char *dflt;
    const char *broker_name;  /* topic scope: the broker-level synonym, or NULL */
    bool read_only;
    const char *doc;
} mk_cfg_def_t;

/* minikora.tenant.<id>.keys (tenants and keys declared for a CI job) is a
 * family of names rather than a row of the table: the length of <id> when
 * name is one of them (id, if given, gets <id>, truncated to id_len), else 0. */
size_t mk_cluster_cfg_tenant_keys_id(const char *name, char *id, size_t id_len);
/* The same for minikora.tenant.<id>.quotas (tenant-wide limits declared in
 * the configuration, KEY=VALUE[,KEY=VALUE...]; checked by the broker layer). */
size_t mk_cluster_cfg_tenant_quotas_id(const char *name, char *id, size_t id_len);
/* minikora.s3.access.key and minikora.s3.secret.key (the external S3
 * endpoint's key pair) are kept out of the table, as the tenant keys are,
 * so that DescribeConfigs never lists them: true for those two names. */
bool mk_cluster_cfg_is_s3_credential(const char *name);
/* The table of known settings and its length. */
const mk_cfg_def_t *mk_cluster_cfg_defs(int *count);
const mk_cfg_def_t *mk_cluster_cfg_def_find(const char *name);
/* The topic-scope setting of that name, or NULL. */
const mk_cfg_def_t *mk_cluster_cfg_topic_def(const char *name);

/* Broker-wide values: defaults overridden by a properties file and flags
 * (static), and by AlterConfigs / IncrementalAlterConfigs at runtime
 * (dynamic: persisted by cluster.c in meta's kv store, reloaded at start).
 * Lookup order for broker b: b's dynamic value, the cluster-wide dynamic
 * default, the static value, the table's default -- Kafka's order. */
typedef struct mk_config_s {
    mk_map_t values;          /* name -> owned char* value explicitly set */
    mk_map_t dynamic;         /* "<broker id>|name" or "*|name" -> owned char* */
} mk_config_t;

/* Kafka's ConfigSource values (DescribeConfigs). */
enum {
    MK_CFG_SRC_DYNAMIC_TOPIC = 1,
    MK_CFG_SRC_DYNAMIC_BROKER = 2,
    MK_CFG_SRC_DYNAMIC_DEFAULT_BROKER = 3,
    MK_CFG_SRC_STATIC_BROKER = 4,
    MK_CFG_SRC_DEFAULT = 5,
};

void mk_cluster_config_init(mk_config_t *c);
void mk_cluster_config_free(mk_config_t *c);
/* Set name=value after checking the name is known (or starts with
 * "minikora.") and the value parses for its type.  Returns 0, MK_ERR_NOT_FOUND
 * or MK_ERR_INVALID; why (may be NULL) gets a sentence. */
int mk_cluster_config_set(mk_config_t *c, const char *name, const char *value, char *why, size_t why_len);
/* Read a Kafka properties file (key=value or key: value, # and ! comments). */
int mk_cluster_config_load_file(mk_config_t *c, const char *path, char *why, size_t why_len);
/* The effective value (set or default); NULL for an unknown name. */
const char *mk_cluster_config_get(const mk_config_t *c, const char *name);
bool mk_cluster_config_is_set(const mk_config_t *c, const char *name);
int64_t mk_cluster_config_get_i64(const mk_config_t *c, const char *name);
bool mk_cluster_config_get_bool(const mk_config_t *c, const char *name);
/* Validate a value for a setting's type and Kafka's range for it. */
bool mk_cluster_config_value_valid(const mk_cfg_def_t *d, const char *value);
/* NULL when the setting works as in Kafka, else a sentence on what it lacks
 * (accepted, validated, stored and described, without effect yet). */
const char *mk_cluster_cfg_effect(const char *name);
/* The dynamic layer: set (value != NULL) or remove broker's value of name
 * (broker -1: the cluster-wide default).  No check here (the caller checked
 * the name and value).  0 or MK_ERR_NOMEM. */
int mk_cluster_config_set_dynamic(mk_config_t *c, int32_t broker, const char *name, const char *value);
/* The effective value for broker (-1: no particular broker) and its
 * MK_CFG_SRC_*; NULL for an unknown name. */
const char *mk_cluster_config_get_for(const mk_config_t *c, int32_t broker, const char *name, int *source);
/* broker's own dynamic value (-1: the cluster default's), or NULL. */
const char *mk_cluster_config_dynamic(const mk_config_t *c, int32_t broker, const char *name);
/* The static value (file or flag), or NULL. */
const char *mk_cluster_config_static(const mk_config_t *c, const char *name);

/* ================================================================== topology */

typedef struct mk_cluster_s mk_cluster_t;
typedef struct mk_topic_s mk_topic_t;

typedef struct mk_cluster_broker_s {
    int32_t id;
    char az[16];              /* simulated availability zone = Kafka rack */
    int32_t cell;
    int port;                 /* bound port (or configured while stopped) */
    int tls_port;             /* SSL listener's bound port (or configured); -1: no TLS */
    char *log_dir;            /* owned: <data>/broker-<id> */
    mk_net_listener_t *listener;   /* NULL while stopped */
    mk_net_listener_t *tls_listener;   /* NULL while stopped or without TLS */
    bool running;
    bool crashed;             /* stopped by a crash, not a controlled shutdown (repl/) */
    bool retired;             /* replaced (health/): stopped for good, placed on never again */
    bool logs_offline;        /* its log directory failed (a storage error): logs closed,
                                 listeners up, until the next start (cluster.c) */
    char *adv_host;           /* owned: the host clients are told for its PLAINTEXT
                                 listener; NULL: the cluster's advertise host */
    int adv_port;             /* the port clients are told; 0: the bound port.  Both
                                 written only by mk_cluster_broker_advertise() */
    char *adv_tls_host;       /* owned: the same for its SSL listener; NULL: the
                                 cluster's advertise host */
    int adv_tls_port;         /* the SSL port clients are told; 0: the bound TLS port */
    mk_cluster_t *cluster;
} mk_cluster_broker_t;

typedef struct mk_partition_s mk_partition_t;

#ifdef MK_PARTITION_FIELDS
/* A partition and its replicas.  Visible only to the modules that define
 * MK_PARTITION_FIELDS (cluster, partition, repl, txn); the others read
 * through partition/partition.h.  That header says which module writes each
 * field: every field has one writer. */

/* One replica of a partition.  The fields after log are the leader's view of
 * the replica, written by repl/ only. */
typedef struct mk_replica_s {
    int32_t broker;           /* broker id (cluster) */
    mk_log_t *log;            /* owned; NULL while its broker is stopped (cluster) */
    bool in_isr;
    bool needs_truncate;      /* must reconcile with the leader's epochs first */
    bool copy_pending;        /* a replication round is scheduled */
    uint64_t caught_up_ms;    /* last time it had everything the leader had */
    int64_t acked_leo;        /* its log end as the leader last heard it (HW input) */
    mk_partition_t *partition;    /* back-pointer (cluster) */
} mk_replica_t;

struct mk_partition_s {
    mk_topic_t *topic;
    int32_t index;
    int32_t leader;           /* broker id, -1 while offline (cluster) */
    int32_t leader_epoch;     /* (cluster) */
    int32_t replica_count;
    mk_replica_t *replicas;   /* owned; [0] is the preferred leader */
    mk_log_t *log;            /* the leader replica's log (borrowed), NULL if offline (cluster) */
    int64_t hw;               /* high watermark: offsets below it are committed (partition) */
};
#endif

/* A topic's settings, parsed into types once when they change (create,
 * load), so the data path never looks a setting up by name. */
typedef struct mk_topic_config_s {
    mk_log_config_t log;          /* segment, retention, index, flush; for a tiered
                                     topic retention is off here (tier/ applies it) and
                                     segment.bytes is capped (minikora.tier.segment.max.bytes) */
    int64_t max_message_bytes;    /* max.message.bytes */
    int32_t min_insync_replicas;  /* min.insync.replicas */
    bool log_append_time;         /* message.timestamp.type=LogAppendTime */
    bool cleanup_delete;          /* cleanup.policy has delete (else retention keeps all) */
    bool cleanup_compact;         /* cleanup.policy has compact */
    bool unclean_leader_election; /* unclean.leader.election.enable */
    bool compression_zstd;        /* compression.type=zstd (Fetch below v10 refused, as Kafka) */
    bool remote_storage;          /* remote.storage.enable, and remote.log.storage.system.enable */
    bool tiered;                  /* remote_storage while tiering runs (mk_cluster_set_tiering) */
    int64_t retention_ms;         /* retention.ms: the total, local and remote (-1: forever) */
    int64_t retention_bytes;      /* retention.bytes: the total (-1: unbounded) */
    int64_t local_retention_ms;   /* local.retention.ms resolved: -2 taken as the total,
                                     and never more than it; -1: forever */
    int64_t local_retention_bytes;/* local.retention.bytes resolved the same way */
} mk_topic_config_t;

struct mk_topic_s {
    mk_cluster_t *cluster;    /* the owner */
    char *name;               /* owned, internal (tenant-namespaced) name */
    uint8_t id[16];
    int32_t partition_count;
    int16_t replication_factor;
    int32_t cell;
    int64_t created_ms;
    mk_partition_t *partitions;   /* owned array; index with mk_cluster_topic_partition() */
    mk_map_t overrides;           /* config name -> owned char* */
    mk_topic_config_t cfg;        /* parsed from overrides + broker config */
};

typedef struct mk_cluster_opts_s {
    const char *data_dir;
    const char *host;             /* bind address */
    const char *advertise_host;   /* what Metadata tells clients; NULL: host, or for a
                                     wildcard host (0.0.0.0, ::) this machine's name or
                                     loopback (mk_net_wildcard_advertise) */
    const int *advertise_ports;   /* NULL, or the PLAINTEXT port clients are told for
                                     broker i+1, one per broker of opts.brokers (borrowed) */
    const int *advertise_tls_ports; /* NULL, or the same for the SSL listeners */
    int base_port;                /* 0 = pick free ports */
    int tls_base_port;            /* first SSL listener port; 0 = free ports, -1 = no TLS.
                                     Certificate files: minikora.tls.{cert,key,ca} in config,
                                     else made in <data_dir>/tls/ (see net.h) */
    int brokers;                  /* minikora.brokers */
    int azs;                      /* minikora.azs */
    mk_config_t *config;          /* borrowed */
    mk_net_handler_t handler;     /* registered by broker/ */
    void *handler_ud;
} mk_cluster_opts_t;

/* Create the topology, open the metadata store, load topics and open their
 * logs (recovering them), and start every broker's listener.  Returns 0 and
 * *out, or an error with nothing left open. */
int mk_cluster_open(uv_loop_t *loop, const mk_cluster_opts_t *opts, mk_cluster_t **out);
/* Stop every broker, close logs (fsync) and the metadata store.  The loop must
 * run afterwards until it has no more handles. */
void mk_cluster_close(mk_cluster_t *c);

/* The metadata store (for coordinators that persist through it). */
struct mk_meta_s *mk_cluster_meta(mk_cluster_t *c);
/* The handler_ud registered at open (the request layer's state). */
void *mk_cluster_handler_ud(const mk_cluster_t *c);
const char *mk_cluster_id(const mk_cluster_t *c);
const mk_config_t *mk_cluster_config(const mk_cluster_t *c);
const char *mk_cluster_advertise_host(const mk_cluster_t *c);
/* Why the advertise host is what it is, when the cluster chose it (a
 * wildcard --host without --advertise-host), else NULL. */
const char *mk_cluster_advertise_why(const mk_cluster_t *c);
/* The one answer to "what address do clients use for broker b": its host
 * (returned; borrowed until the next mk_cluster_broker_advertise) and port
 * (*port) for the PLAINTEXT listener, or with tls for the SSL one.  Each
 * follows its own mapping set by mk_cluster_broker_advertise(); unmapped,
 * it is the cluster's advertise host and the bound port. */
const char *mk_cluster_broker_endpoint(const mk_cluster_t *c, const mk_cluster_broker_t *b, bool tls, int *port);
/* Map broker id's PLAINTEXT address (or with tls its SSL one) as clients
 * see it (port mapping in front of minikora: Docker's published ports, a
 * proxy): host NULL keeps the cluster's advertise host, port 0 the bound
 * port; both NULL/0 clear the mapping.  Takes effect for every answer built
 * afterwards (Metadata, FindCoordinator, DescribeCluster, leader hints) on
 * connections of that listener type.  Not persisted.  0, MK_ERR_NOT_FOUND,
 * MK_ERR_INVALID (port outside 0..65535, or tls for a broker without an
 * SSL listener) or MK_ERR_NOMEM (nothing changed). */
int mk_cluster_broker_advertise(mk_cluster_t *c, int32_t id, bool tls, const char *host, int port);
int mk_cluster_broker_count(const mk_cluster_t *c);
mk_cluster_broker_t *mk_cluster_broker_at(mk_cluster_t *c, int i);
mk_cluster_broker_t *mk_cluster_broker_find(mk_cluster_t *c, int32_t id);
/* The controller id clients are told: the lowest running broker. */
int32_t mk_cluster_controller_id(const mk_cluster_t *c);
/* Stop / start one broker: listener, logs of its partitions.  0 or error. */
int mk_cluster_broker_stop(mk_cluster_t *c, int32_t id);
int mk_cluster_broker_start(mk_cluster_t *c, int32_t id);
/* Kafka's offline log directory: the broker's replica logs are closed (a
 * storage error failed one) while it keeps serving; repl/ then elects other
 * leaders.  A start (after a stop) opens them again.  0, MK_ERR_NOT_FOUND,
 * MK_ERR_STATE (not running, or already offline). */
int mk_cluster_broker_logs_offline(mk_cluster_t *c, int32_t id);
/* A segment event of the replica of p on broker (see log.h). */
typedef void (*mk_cluster_segment_cb)(void *arg, mk_partition_t *p, int32_t broker,
                                      const mk_log_segment_event_t *ev);
/* Register the one receiver of every replica log's segment events (the
 * partition writer, which hands them to its observers).  Loop thread. */
void mk_cluster_set_segment_cb(mk_cluster_t *c, mk_cluster_segment_cb cb, void *arg);
/* Housekeeping of every open replica log (main's 1 s timer): the flush
 * policy and segment.ms rolls, and with retain the retention policy. */
void mk_cluster_logs_tick(mk_cluster_t *c, int64_t now_ms, bool retain);
/* Tiering runs (tier/ has an S3 target) or stopped: every topic's typed
 * config is parsed again (mk_topic_config_t.tiered) and the open replica
 * logs take it (a tiered log's own retention is off: tier/ deletes local
 * segments only once their remote copy is verified).  Loop thread. */
void mk_cluster_set_tiering(mk_cluster_t *c, bool on);
/* "host:port,host:port..." of running brokers, into buf: the advertise host
 * and the bound ports ("[h]:p" for IPv6), as reached where minikora runs. */
void mk_cluster_bootstrap(const mk_cluster_t *c, char *buf, size_t n);
/* The same with every broker's endpoint (mk_cluster_broker_endpoint): what
 * clients behind a port mapping use. */
void mk_cluster_advertised_bootstrap(const mk_cluster_t *c, char *buf, size_t n);
/* The SSL listeners as clients are told them (mapping applied); "" without TLS. */
void mk_cluster_advertised_tls_bootstrap(const mk_cluster_t *c, char *buf, size_t n);
/* The same for the SSL listeners; "" without TLS. */
void mk_cluster_tls_bootstrap(const mk_cluster_t *c, char *buf, size_t n);
/* The CA file clients should trust (ssl.ca.location), or NULL without TLS. */
const char *mk_cluster_tls_ca_file(const mk_cluster_t *c);

/* ==================================================================== topics */

/* The tenant of the cluster's own topics (the health manager's probe
 * partitions, one pinned to each broker): no client's data.  Counts of
 * replicas, drains and broker removal skip them; removing a broker drops
 * the ones pinned to it. */
#define MK_CLUSTER_INTERNAL_TENANT "minikora-health"
bool mk_cluster_topic_internal(const char *name);

mk_topic_t *mk_cluster_topic_find(mk_cluster_t *c, const char *name);
mk_topic_t *mk_cluster_topic_find_id(mk_cluster_t *c, const uint8_t id[16]);
/* Iterate topics: for (size_t it = 0; (t = mk_cluster_topic_next(c, &it));) */
mk_topic_t *mk_cluster_topic_next(mk_cluster_t *c, size_t *iter);
int mk_cluster_topic_count(const mk_cluster_t *c);

/* Kafka's topic name rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool mk_cluster_topic_name_valid(const char *name, char *why, size_t why_len);

/* Kafka's text form of a Uuid (topic ids, the cluster id): URL-safe base64
 * of the 16 bytes without padding, 22 characters and a NUL. */
#define MK_CLUSTER_UUID_STR_LEN 23
void mk_cluster_uuid_str(const uint8_t id[16], char out[MK_CLUSTER_UUID_STR_LEN]);

typedef void (*mk_cluster_done_cb)(int status, void *arg);

typedef struct mk_topic_spec_s {
    const char *name;
    int32_t partitions;           /* 1..MK_CLUSTER_MAX_PARTITIONS */
    int16_t replication_factor;   /* 1..mk_cluster_cell_size() */
    int32_t config_count;
    const char *const *config_keys;
    const char *const *config_values;
    const int32_t *assignment;    /* optional: partitions x replication_factor broker ids */
    bool pin_cell;                /* place in cell (a tenant's cell), not by P2C; */
    int32_t cell;                 /* an assignment still wins */
} mk_topic_spec_t;

/* The most partitions a topic can have. */
#define MK_CLUSTER_MAX_PARTITIONS 100000

/* What mk_cluster_topic_spec_check() found wrong with a spec. */
enum {
    MK_CLUSTER_SPEC_OK = 0,
    MK_CLUSTER_SPEC_PARTITIONS,   /* partitions outside 1..MK_CLUSTER_MAX_PARTITIONS */
    MK_CLUSTER_SPEC_REPLICATION,  /* replication_factor outside 1..cell size */
    MK_CLUSTER_SPEC_CONFIG_NAME,  /* config_keys[*bad] is no topic setting */
    MK_CLUSTER_SPEC_CONFIG_VALUE, /* config_values[*bad] is NULL or invalid for its type */
};

/* Pure: the one validity check of a topic's partitions, replication factor
 * and configs, used by mk_cluster_topic_create() and by every API that
 * creates topics before it calls it.  Returns the first MK_CLUSTER_SPEC_*
 * problem in the order above (the order the Kafka and admin APIs report
 * them), 0 if none; for a config problem *bad (may be NULL) is its index.
 * The caller words the error: Kafka's messages and the admin API's differ.
 * Not checked here: the name (mk_cluster_topic_name_valid(), on the name the
 * client gave), whether the topic exists, and the shape of an assignment. */
int mk_cluster_topic_spec_check(const mk_cluster_t *c, const mk_topic_spec_t *spec, int32_t *bad);

/* Create a topic now (in memory, logs opened) and persist it in the
 * background; cb (optional) runs on the loop once the metadata is durable.
 * Returns 0 (and *out), MK_ERR_EXISTS, MK_ERR_INVALID (the spec fails
 * mk_cluster_topic_spec_check()), MK_ERR_IO.  On error cb is never called
 * and nothing changed. */
int mk_cluster_topic_create(mk_cluster_t *c, const mk_topic_spec_t *spec, mk_cluster_done_cb cb, void *arg,
                            mk_topic_t **out);
/* Delete a topic: close and remove its logs now, persist in the background;
 * cb as above.  The topic pointer is invalid on return. */
int mk_cluster_topic_delete(mk_cluster_t *c, mk_topic_t *t, mk_cluster_done_cb cb, void *arg);
/* Effective value of a topic setting (override, else the broker synonym's
 * cluster-wide value, else the default) and where it came from
 * (MK_CFG_SRC_*: DescribeConfigs ConfigSource). */
const char *mk_cluster_topic_config(const mk_cluster_t *c, const mk_topic_t *t, const char *name, int *source);
/* The partition, or NULL when out of range.  A partition pointer is good
 * until control returns to the loop: CreatePartitions
 * (mk_cluster_topic_add_partitions) moves the array.  Anything kept longer
 * names the partition by (topic id, index) and looks it up again. */
mk_partition_t *mk_cluster_topic_partition(const mk_topic_t *t, int32_t index);
/* CreatePartitions: grow t to count partitions, each with rf replicas:
 * assignment ((count - old) x rf broker ids, checked by the caller for the
 * tenant's rules) or, without one, the topic's cell, one replica per AZ,
 * rotated as at creation.  Logs are opened now, the change is persisted in
 * the background; cb as for mk_cluster_topic_create.  Every mk_partition_t*
 * of t is invalid afterwards.  0, MK_ERR_INVALID (count not above the
 * current one or over MK_CLUSTER_MAX_PARTITIONS, unknown broker, a cell too
 * small), MK_ERR_NOMEM, MK_ERR_IO; on error t is as it was. */
int mk_cluster_topic_add_partitions(mk_cluster_t *c, mk_topic_t *t, int32_t count, const int32_t *assignment,
                                    int16_t rf, mk_cluster_done_cb cb, void *arg);
/* AlterConfigs on a topic: set (values[i] != NULL) or remove each of the n
 * overrides, all or none (every name must be a topic setting and every
 * value valid, else MK_ERR_INVALID and nothing changed).  The typed form
 * and every replica log's settings follow at once (retention, segment size,
 * min.insync.replicas, cleanup.policy ...); persisted in the background, cb
 * as above.  0, MK_ERR_INVALID, MK_ERR_NOMEM. */
int mk_cluster_topic_config_alter(mk_cluster_t *c, mk_topic_t *t, const char *const *keys,
                                  const char *const *values, int32_t n, mk_cluster_done_cb cb, void *arg);
/* Whether a broker setting may change at runtime (a known, not read-only
 * broker setting). */
bool mk_cluster_broker_config_alterable(const char *name);
/* AlterConfigs on a broker (broker id) or on the cluster-wide default
 * (broker -1, Kafka's entity-default): set or remove dynamic values, all or
 * none; persisted in meta's kv store (config/broker/<id|default>/<name>)
 * and loaded at the next start.  Every topic's defaults are parsed again
 * and the registered config callback runs.  0, MK_ERR_NOT_FOUND (no such
 * broker), MK_ERR_INVALID (a setting not alterable, a bad value),
 * MK_ERR_NOMEM. */
int mk_cluster_broker_config_alter(mk_cluster_t *c, int32_t broker, const char *const *keys,
                                   const char *const *values, int32_t n, mk_cluster_done_cb cb, void *arg);
/* Called on the loop after dynamic broker settings changed, so the layers
 * above can refresh what they keep parsed (replication, quotas). */
typedef void (*mk_cluster_config_cb)(void *arg);
void mk_cluster_set_config_cb(mk_cluster_t *c, mk_cluster_config_cb cb, void *arg);
#ifdef MK_PARTITION_FIELDS
/* The replica of p on broker, or NULL. */
mk_replica_t *mk_cluster_partition_replica(mk_partition_t *p, int32_t broker);
#endif
/* Make broker the leader of p at epoch (NULL broker -1: offline); the new
 * leader's log starts the epoch.  Persisted in the background. */
void mk_cluster_partition_set_leader(mk_cluster_t *c, mk_partition_t *p, int32_t broker, int32_t epoch);
/* No replica can lead p now: offline until an election brings one back.
 * Not persisted: a restart elects from the replicas as they come back. */
void mk_cluster_partition_set_offline(mk_cluster_t *c, mk_partition_t *p);
#ifdef MK_PARTITION_FIELDS
/* Reassignment's one step: p's replicas become brokers[0..n) ([0] is the
 * preferred leader), which must include the current leader.  Replicas on
 * brokers in both keep their logs and state; new ones open empty logs, out
 * of the ISR (repl/ brings them up); the others are closed and their logs
 * deleted.  Persisted in the background.  0, MK_ERR_INVALID (unknown or
 * repeated broker, leader left out), MK_ERR_NOMEM, or a log's open error
 * (the set is changed all the same). */
int mk_cluster_partition_set_replicas(mk_cluster_t *c, mk_partition_t *p, const int32_t *brokers, int32_t n);
#endif

/* =================================================================== cells */

/* The most brokers a cluster can grow to (start flags and added cells). */
#define MK_CLUSTER_MAX_BROKERS 64

/* Cells: their number; the replicas placed on a cell's brokers. */
int mk_cluster_cell_count(const mk_cluster_t *c);
int64_t mk_cluster_cell_replicas(mk_cluster_t *c, int32_t cell);
/* The load of a cell, as a fraction of its capacity, comes from above (the
 * balancer, which sees traffic); until one is registered it is the cell's
 * replica count. */
typedef double (*mk_cluster_cell_load_fn)(void *arg, int32_t cell);
void mk_cluster_set_cell_load_fn(mk_cluster_t *c, mk_cluster_cell_load_fn fn, void *arg);
double mk_cluster_cell_load(mk_cluster_t *c, int32_t cell);
/* The less loaded of two random cells (power of two choices; a tie goes to
 * the lower id), which new tenants go to. */
int32_t mk_cluster_cell_pick(mk_cluster_t *c);
/* Placement's random numbers: reproducible when minikora.placement.seed is
 * set (not 0), else from the system. */
uint32_t mk_cluster_random(mk_cluster_t *c);
/* Add a cell at runtime: one new broker per AZ, listening on free ports,
 * their log directories made; persisted, so a restart brings the cell back.
 * 0 and *cell_out, MK_ERR_RANGE (MK_CLUSTER_MAX_BROKERS reached), or a
 * listener's error (nothing added). */
int mk_cluster_cell_add(mk_cluster_t *c, int32_t *cell_out);
/* Add one broker at runtime in az ("az-2", an AZ of the cluster) and an
 * existing cell: the storage health manager's replacement of a failed
 * broker (a new id, N+1, with an empty log directory), listening on a free
 * port when this returns.  Persisted in cluster.brokers.added (every
 * broker added at runtime, with its AZ and cell, in id order).  0 and
 * *id_out, MK_ERR_RANGE (MK_CLUSTER_MAX_BROKERS), MK_ERR_INVALID, or the
 * listener's error (nothing added). */
int mk_cluster_broker_add(mk_cluster_t *c, const char *az, int32_t cell, int32_t *id_out);
/* Broker id, stopped (and holding no replica any more: the caller moved
 * them), is retired: never started or placed on again, listed as retired.
 * Persisted (cluster.brokers.retired).  0, MK_ERR_NOT_FOUND, MK_ERR_STATE
 * (it runs). */
int mk_cluster_broker_retire(mk_cluster_t *c, int32_t id);
/* The cell a topic's new replicas go to (a tenant's move sets it once its
 * partitions are there).  Persisted.  0 or MK_ERR_INVALID. */
int mk_cluster_topic_set_cell(mk_cluster_t *c, mk_topic_t *t, int32_t cell);
/* Brokers per cell (the largest replication factor a topic can have). */
int mk_cluster_cell_size(const mk_cluster_t *c);
/* The broker's AZ name, or "" for an unknown id. */
const char *mk_cluster_broker_az(mk_cluster_t *c, int32_t id);


#endif /* MK_CLUSTER_H */
