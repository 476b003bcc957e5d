/*
 * broker.h -- L4: the Kafka request layer.
 *
 * The broker layer registers a net handler with the cluster; every frame a
 * broker's listener receives comes here, is decoded through proto/, checked
 * against the dispatch table (the one place that says which APIs and versions
 * minikora supports), handled on behalf of the connection's tenant, and
 * answered in order.
 *
 * Threads: loop thread only.
 */
#ifndef MK_BROKER_H
#define MK_BROKER_H

#include <stdio.h>

#include "cluster/cluster.h"
#include "quota/quota.h"
#include "tenant/tenant.h"
#include "tier/tier.h"

typedef struct mk_broker_s mk_broker_t;

/* State of the request layer; attach it to a cluster before traffic. */
int mk_broker_new(uv_loop_t *loop, mk_broker_t **out);
/* The net handler to pass in mk_cluster_opts_t (with handler_ud = the broker). */
mk_net_handler_t mk_broker_net_handler(void);
/* Attach to the opened cluster: starts the group coordinator (loads committed
 * offsets).  0 or an error. */
int mk_broker_attach(mk_broker_t *b, mk_cluster_t *c);
/* The replication manager (broker lifecycle calls go through it). */
struct mk_repl_s *mk_broker_repl(mk_broker_t *b);
/* The one leader write path (the health manager's probes append through
 * it); NULL before mk_broker_attach(). */
struct mk_partition_writer_s *mk_broker_writer(mk_broker_t *b);

/* acks=all partition writes acknowledged since start (each partition of a
 * Produce counts once; with the replication rounds of repl/, the rounds
 * per acknowledgement of /metrics and the bench). */
uint64_t mk_broker_acks_all_acked(const mk_broker_t *b);
/* Start tiered storage to target (after mk_broker_attach(), once the S3
 * target is known: the bundled server starts after the cluster).  The
 * layer wires transactions into it (last stable offsets, aborted
 * transactions, producer state), replication's follower rebuild, and the
 * wake of requests parked on remote reads.  0 or an error (tiering off). */
int mk_broker_tier_start(mk_broker_t *b, const mk_tier_target_t *target, const char *data_dir);
/* Tiered storage, or NULL when it does not run. */
mk_tier_t *mk_broker_tier(mk_broker_t *b);
/* Answer parked requests and release everything; call before
 * mk_cluster_close().  Handles are closed through the loop. */
void mk_broker_free(mk_broker_t *b);

/* ============================================================ for admin/ */

/* What the request layer reports about one request once it is over. */
typedef struct mk_broker_req_info_s {
    int32_t broker;           /* id of the broker that received it */
    int16_t api_key;          /* RequestApiKey as sent (may be unknown) */
    int16_t api_version;      /* RequestApiVersion as sent */
    uint64_t latency_ns;      /* frame received -> response queued */
    bool rejected;            /* the connection was closed instead */
    const char *client_id;    /* NULL if none */
    const void *body;         /* decoded request (generated struct) or NULL */
    const void *resp;         /* response struct or NULL */
    const char *tenant;       /* id of the connection's tenant ("default" when none) */
    const char *tenant_prefix;/* its internal name prefix ("" for the default tenant) */
    bool client_cross_az;     /* the client named its rack (Fetch v11+ RackId) on this
                                 connection and it is not this broker's AZ: the request's
                                 record bytes crossed AZs; false while the rack is unknown */
} mk_broker_req_info_t;

/* Called once per request on the loop thread, after its response is queued
 * (or its connection closed), before the request's memory is freed: info and
 * what it points to are valid during the call only.  It must not call back
 * into the broker layer. */
typedef void (*mk_broker_req_cb)(const mk_broker_req_info_t *info, void *ud);
/* Register the one request observer (cb NULL removes it). */
void mk_broker_set_req_cb(mk_broker_t *b, mk_broker_req_cb cb, void *ud);
/* The scrubber and durability audit (NULL before mk_broker_attach()). */
struct mk_scrub_s *mk_broker_scrub(mk_broker_t *b);
/* The group coordinator (NULL before mk_broker_attach()). */
struct mk_group_coord_s *mk_broker_groups(mk_broker_t *b);
/* Create a topic as CreateTopics does (in memory now, its ISR formed, the
 * metadata persisted in the background).  Returns as mk_cluster_topic_create(). */
int mk_broker_topic_create(mk_broker_t *b, const mk_topic_spec_t *spec, mk_topic_t **out);
/* Delete a topic as DeleteTopics does: logs removed, committed offsets of it
 * dropped, parked fetches woken.  t is invalid on return.  0 or an error. */
int mk_broker_topic_delete(mk_broker_t *b, mk_topic_t *t);

/* One bounded read of a partition's records for the admin API (GET
 * /v1/topics/{name}/records), through Fetch's path and checks: the leader's
 * local log, up to the high watermark, and the observers' read check, so
 * offsets the scrubber found lost are never served.  offset -1 means the
 * high watermark, -2 the local log start; offsets only in S3 are skipped
 * (info->skipped_remote: this read never waits on S3).  Appends whole
 * batches to out (the first even when larger than max_bytes).  Returns 0,
 * or a Kafka error code (OFFSET_OUT_OF_RANGE, LEADER_NOT_AVAILABLE,
 * CORRUPT_MESSAGE for lost data, KAFKA_STORAGE_ERROR).  Loop thread; reads
 * from disk as Fetch does. */
typedef struct mk_broker_records_info_s {
    int64_t log_start_offset;       /* first offset readable (S3 included) */
    int64_t local_log_start_offset;
    int64_t high_watermark;
    int64_t served_upto;            /* the high watermark, or the first lost offset before it */
    int64_t offset;                 /* where the read began (-1, -2 and offsets only in S3 resolved) */
    int64_t next_offset;            /* after the last batch appended (where the read began if none) */
    bool skipped_remote;            /* the offset asked for is only in S3: read from the local start */
} mk_broker_records_info_t;
int16_t mk_broker_records_read(mk_broker_t *b, mk_partition_t *p, int64_t offset, size_t max_bytes, mk_buf_t *out,
                               mk_broker_records_info_t *info);

/* The tenant registry (NULL before mk_broker_attach()). */
mk_tenant_registry_t *mk_broker_tenants(mk_broker_t *b);
/* The quota registry (NULL before mk_broker_attach()). */
mk_quota_registry_t *mk_broker_quotas(mk_broker_t *b);
/* A tenant's quota use, summed over brokers (for the admin API, the TUI and
 * /metrics).  All zero for a tenant that has sent nothing since start. */
typedef struct mk_broker_quota_use_s {
    double rate[3];               /* now, over the quota windows: bytes/s produced (producer_byte_rate),
                                     bytes/s fetched (consumer_byte_rate), % of a request-handling
                                     thread (request_percentage) */
    uint64_t throttle_ms_total;   /* throttle time given to its requests since start */
    uint64_t throttled;           /* requests answered with a throttle time */
    uint64_t throttle_ms_minute;  /* throttle time given in the last 60 s */
    /* throttle_ms_total and throttled by the quota (MK_QUOTA_*) whose
     * throttle time was the longest: the three measured keys, and
     * controller_mutation_rate (CreateTopics, DeleteTopics) */
    uint64_t throttle_ms_by[MK_QUOTA__COUNT];
    uint64_t throttled_by[MK_QUOTA__COUNT];
} mk_broker_quota_use_t;
void mk_broker_quota_use(mk_broker_t *b, const char *tenant, mk_broker_quota_use_t *out);
/* One broker's part of a tenant's quotas: rates as above, its share of each
 * tenant-wide limit (0: none), and a saturated broker's allowance (0: none). */
typedef struct mk_broker_quota_broker_s {
    int32_t broker;
    double rate[3], share[3], cap[3];
} mk_broker_quota_broker_t;
typedef int (*mk_broker_quota_broker_cb)(const mk_broker_quota_broker_t *qb, void *arg);
/* Each broker the tenant used or may use; a nonzero return stops the walk. */
int mk_broker_quota_each_broker(mk_broker_t *b, const char *tenant, mk_broker_quota_broker_cb cb, void *arg);
/* Close the connections bound to tenant t (key NULL) or to t's API key
 * (a revoked key, a deleted tenant), logging reason.  Returns how many. */
int mk_broker_sessions_close(mk_broker_t *b, const mk_tenant_t *t, const char *key, const char *reason);
/* Open connections bound to tenant t. */
int mk_broker_sessions_count(mk_broker_t *b, const mk_tenant_t *t);

/* Print the dispatch table as the Markdown of docs/COMPATIBILITY.md. */
void mk_broker_apis_markdown(FILE *out);
/* Print it as a plain table for a terminal `width` columns wide (notes are
 * wrapped under their own column; at least 60 is used). */
void mk_broker_apis_table(FILE *out, int width);

#endif /* MK_BROKER_H */
