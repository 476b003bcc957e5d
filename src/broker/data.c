/*
 * data.c -- handlers for the data path: Produce, Fetch (with long polling),
 * ListOffsets, OffsetForLeaderEpoch.
 *
 * Produce: each partition's records go through the partition write path
 * (partition/: validation of every batch before the first byte is appended,
 * producer checks, append, replication, high watermark); offsets are
 * assigned in place in the request frame, which we own.  acks=all parks the
 * request (req.c) until the high watermark passes its records.
 *
 * Fetch: partitions are read in request order into req->data; while the
 * answer has fewer than MinBytes and MaxWaitMs has not passed, the request is
 * parked.  Appends wake parked fetches through an idle handle, so a burst of
 * produces costs one re-check per loop iteration.  Fetch sessions (KIP-227)
 * are declined the way the protocol allows: we answer SessionId 0, so every
 * fetch is a full fetch.  Offsets the scrubber found lost on this replica
 * (no sound copy anywhere; scrub/) are never served: a read stops before
 * them, and a read from them is answered CORRUPT_MESSAGE (the partition
 * writer's read check).
 *
 * Tiered storage (tier/): the log start offset clients see (Fetch
 * LogStartOffset, ListOffsets earliest, Produce LogStartOffset) is the first
 * offset still in S3 when that is below the local log; ListOffsets -4
 * (earliest-local) answers the local start and -5 (latest-tiered) the last
 * offset in S3.  A Fetch below the local log start reads from S3 through
 * tier's chunk cache: while a chunk is on its way the request is parked (up
 * to remote.fetch.max.wait.ms; other requests go on meanwhile) and woken
 * when it lands; at that deadline a partition still waiting is answered
 * with no records and no error (the client fetches again and finds the
 * chunk cached).  A failed S3 read answers KAFKA_STORAGE_ERROR, which
 * clients retry.  ListOffsets by timestamp looks in S3 first for the
 * segments below the local log, parked the same way (REQUEST_TIMED_OUT if
 * the chunk has not come within its wait).
 *
 * Racks: the rack (AZ) a Fetch v11+ names is remembered by the session as
 * "in this broker's AZ or not", for the connection's later requests too; the
 * request observer hears it (cross-AZ bytes and cost per tenant, admin/).
 *
 * ACLs (Kafka's operations): Produce topic WRITE (and transactional id
 * WRITE for transactional records); Fetch topic READ; ListOffsets topic
 * DESCRIBE; OffsetForLeaderEpoch topic DESCRIBE or cluster CLUSTER_ACTION.
 */
#include "batch/batch.h"
#include "broker/broker_int.h"
#include "partition/partition.h"
#include "repl/repl.h"
#include "tier/tier.h"
#include "txn/txn.h"

#include <stdlib.h>
#include <string.h>

#define MAX_UNCOMPRESSED (256u << 20)
/* How long a read waits for a partition's producer state to load. */
#define LOAD_WAIT_MS 10000

/* The partition of this broker a data request may use, or an error code. */
static mk_partition_t *leader_partition(mk_req_t *req, mk_topic_t *t, int32_t index, int16_t *err)
{
    mk_partition_t *p = mk_cluster_topic_partition(t, index);
    if (!t || !p) {
        *err = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (mk_partition_leader(p) != req->node->id || !mk_partition_log(p)) {
        *err = MK_KERR_NOT_LEADER_OR_FOLLOWER;
        return NULL;
    }
    *err = 0;
    return p;
}

/* The partition and log a consumer Fetch may read on this broker: the
 * leader's, or (fetch from follower) an in-sync follower's. */
static mk_partition_t *read_partition(mk_req_t *req, mk_topic_t *t, int32_t index, mk_log_t **log, int16_t *err)
{
    mk_partition_t *p = mk_cluster_topic_partition(t, index);
    if (!t || !p) {
        *err = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    mk_log_t *rlog = mk_partition_replica_log(p, req->node->id);
    if (!mk_partition_log(p) || !rlog ||
        (mk_partition_leader(p) != req->node->id && !mk_partition_replica_in_isr(p, req->node->id))) {
        *err = MK_KERR_NOT_LEADER_OR_FOLLOWER;
        return NULL;
    }
    *log = rlog;
    *err = 0;
    return p;
}

/* The broker a consumer in AZ rack should read p from, if not this leader
 * (RackAwareReplicaSelector; with replica.selector.class empty, never). */
static int32_t preferred_read_replica(mk_req_t *req, mk_partition_t *p, mk_str_t rack)
{
    if (!req->b->rack_aware_reads || !rack.ptr || !rack.len || mk_partition_leader(p) != req->node->id ||
        strcmp(mk_cluster_broker_az(req->c, req->node->id), rack.ptr) == 0)
        return -1;
    for (int32_t k = 0; k < mk_partition_replica_count(p); k++) {
        int32_t id = mk_partition_replica_broker(p, k);
        mk_cluster_broker_t *b = mk_cluster_broker_find(req->c, id);
        if (mk_partition_replica_in_isr(p, id) && mk_partition_replica_log(p, id) && b && b->running &&
            strcmp(b->az, rack.ptr) == 0)
            return id;
    }
    return -1;
}

static int16_t check_epoch(const mk_partition_t *p, int32_t current_leader_epoch)
{
    int32_t epoch = mk_partition_leader_epoch(p);
    if (current_leader_epoch < 0 || current_leader_epoch == epoch)
        return 0;
    return current_leader_epoch > epoch ? MK_KERR_UNKNOWN_LEADER_EPOCH : MK_KERR_FENCED_LEADER_EPOCH;
}

/* KIP-951: brokers named in CurrentLeader fields are described in the
 * response's NodeEndpoints so the client can go there without Metadata.
 * ids[] collects distinct leader ids (n in/out, at most 64). */
static void note_leader(int32_t *ids, int *n, int32_t id)
{
    if (id < 0)
        return;
    for (int i = 0; i < *n; i++)
        if (ids[i] == id)
            return;
    if (*n < 64)
        ids[(*n)++] = id;
}

/* Fill an endpoints array (Produce's and Fetch's have the same layout). */
#define FILL_ENDPOINTS(req, arr, desc, ids, n)                                           \
    do {                                                                                 \
        if ((n) > 0 && MK_ARRAY_ALLOC(req, arr, n, desc))                                \
            for (int i_ = 0; i_ < (n); i_++) {                                           \
                mk_cluster_broker_t *b_ = mk_cluster_broker_find((req)->c, (ids)[i_]);   \
                (arr).items[i_].NodeId = (ids)[i_];                                      \
                (arr).items[i_].Host = mk_str(mk_cluster_advertise_host((req)->c));      \
                (arr).items[i_].Port = -1;                                               \
                if (b_)                                                                  \
                    mk_broker_req_endpoint(req, b_, &(arr).items[i_].Host,               \
                                           &(arr).items[i_].Port);                       \
                (arr).items[i_].Rack = mk_str(b_ ? b_->az : NULL);                       \
            }                                                                            \
    } while (0)

/* Whether a record set holds a zstd batch (headers only; a set that does
 * not parse is the validator's business). */
static bool has_zstd(const uint8_t *set, size_t len)
{
    size_t pos = 0;
    mk_batch_view_t v;
    while (mk_batch_view_next(set, len, &pos, &v) == 1)
        if (mk_batch_hdr_codec(&v.hdr) == MK_CODEC_ZSTD)
            return true;
    return false;
}

/* =================================================================== Produce */

/* A partition of a Produce that is not answered yet: acks=all waiting for
 * its high watermark, or an append waiting for the partition's producer
 * state to load (retried on the next wake). */
typedef struct produce_wait_s {
    struct produce_wait_s *next;
    uint8_t topic_id[16];
    int32_t partition;
    int64_t end_offset;        /* the HW must reach this; -1 once settled */
    bool soft;                 /* acks=1 backing off (repl.h): answered without error whatever happens */
    const mk_ProduceRequest_PartitionProduceData_t *retry;   /* loading: the partition's data */
    mk_ProduceResponse_PartitionProduceResponse_t *resp;
} produce_wait_t;

static void produce_partition(mk_req_t *req, mk_topic_t *t, const mk_ProduceRequest_PartitionProduceData_t *qp,
                              mk_ProduceResponse_PartitionProduceResponse_t *rp);

/* Settle w, an acks=all wait: replicated to the ISR, or failed (leader
 * moved: NOT_LEADER_OR_FOLLOWER; ISR shrank below min.insync.replicas:
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND); with final, REQUEST_TIMED_OUT.
 * Returns false while it must wait on. */
static bool settle_wait(mk_req_t *req, produce_wait_t *w, bool final)
{
    mk_topic_t *t = mk_cluster_topic_find_id(req->c, w->topic_id);
    mk_partition_t *p = mk_cluster_topic_partition(t, w->partition);
    if (w->soft) {
        /* The leader has it: only the answer was held back. */
        if (p && mk_partition_leader(p) == req->node->id && mk_partition_log(p) &&
            mk_partition_hw(p) < w->end_offset && !final)
            return false;
        w->end_offset = -1;
        return true;
    }
    int16_t err = 0;
    if (!p || mk_partition_leader(p) != req->node->id || !mk_partition_log(p)) {
        err = MK_KERR_NOT_LEADER_OR_FOLLOWER;
    } else if (mk_partition_hw(p) >= w->end_offset) {
        if (mk_partition_isr_size(p) < t->cfg.min_insync_replicas)
            err = MK_KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    } else if (final) {
        err = MK_KERR_REQUEST_TIMED_OUT;
    } else {
        return false;
    }
    w->resp->ErrorCode = err;
    if (err)
        w->resp->BaseOffset = -1;
    else
        req->b->acks_all_acked++;
    w->end_offset = -1;
    return true;
}

/* The park function of a Produce (see req.c): settle what can be settled.
 * A partition whose producer state has loaded meanwhile is appended now
 * (once per call: if it is still loading it queues a new entry for the next
 * wake); waits are settled by settle_wait().  With final, what is left gets
 * REQUEST_TIMED_OUT.  Returns whether every partition is answered. */
static bool produce_check(mk_req_t *req, bool final)
{
    bool all = true;
    produce_wait_t *head = req->ctx;
    for (produce_wait_t *w = head; w; w = w->next) {
        if (w->retry) {
            const mk_ProduceRequest_PartitionProduceData_t *qp = w->retry;
            mk_topic_t *t = mk_cluster_topic_find_id(req->c, w->topic_id);
            w->retry = NULL;
            w->end_offset = -1;
            if (final || !t)
                w->resp->ErrorCode = t ? MK_KERR_REQUEST_TIMED_OUT : MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                produce_partition(req, t, qp, w->resp); /* may queue a new entry before head */
        } else if (w->end_offset >= 0 && !settle_wait(req, w, final)) {
            all = false;
        }
    }
    /* Entries the retries just queued: waits are looked at now, a partition
     * still loading waits for the next wake. */
    for (produce_wait_t *w = req->ctx; w != head; w = w->next) {
        if (w->retry)
            all = false;
        else if (w->end_offset >= 0 && !settle_wait(req, w, final))
            all = false;
    }
    return all;
}

/* Leave partition rp of a Produce unanswered: until the HW reaches end, or
 * (retry != NULL) until the partition's producer state has loaded. */
static void produce_wait(mk_req_t *req, const mk_topic_t *t, int32_t index, int64_t end, bool soft,
                         const mk_ProduceRequest_PartitionProduceData_t *retry,
                         mk_ProduceResponse_PartitionProduceResponse_t *rp)
{
    produce_wait_t *w = mk_arena_alloc(&req->arena, sizeof(*w));
    if (!w) {
        rp->ErrorCode = MK_KERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    memcpy(w->topic_id, t->id, 16);
    w->partition = index;
    w->end_offset = end;
    w->soft = soft;
    w->retry = retry;
    w->resp = rp;
    w->next = req->ctx;
    req->ctx = w;
}

static void produce_partition(mk_req_t *req, mk_topic_t *t, const mk_ProduceRequest_PartitionProduceData_t *qp,
                              mk_ProduceResponse_PartitionProduceResponse_t *rp)
{
    int16_t err;
    rp->Index = qp->Index;
    rp->BaseOffset = -1; /* until appended */
    mk_partition_t *p = leader_partition(req, t, qp->Index, &err);
    if (!p) {
        rp->ErrorCode = err;
        if (err == MK_KERR_NOT_LEADER_OR_FOLLOWER && t) {
            mk_partition_t *pp = mk_cluster_topic_partition(t, qp->Index);
            rp->CurrentLeader.LeaderId = mk_partition_leader(pp);
            rp->CurrentLeader.LeaderEpoch = mk_partition_leader_epoch(pp);
        }
        return;
    }
    mk_ProduceRequest_t *q = req->body;
    /* zstd needs Produce v7+ (KIP-110), as Kafka's request check says. */
    if (req->version < 7 && has_zstd(qp->Records.ptr, qp->Records.ptr ? (size_t)qp->Records.len : 0)) {
        rp->ErrorCode = MK_KERR_UNSUPPORTED_COMPRESSION_TYPE;
        rp->ErrorMessage = mk_str("zstd-compressed batches need Produce v7 or later");
        return;
    }
    /* The frame is ours: offsets and epochs are written into it in place. */
    mk_partition_append_t a = {.acks = q->Acks};
    err = mk_partition_append(req->b->writer, p, (uint8_t *)qp->Records.ptr,
                              qp->Records.ptr ? (size_t)qp->Records.len : 0, &a);
    if (err && a.loading && q->Acks != 0) {
        /* Idempotent or transactional, and this leader's producer state is
         * still loading (off the loop): answered once it has.  Or a large
         * append written in steps: the next step in the next turn. */
        produce_wait(req, t, qp->Index, -1, false, qp, rp);
        if (a.stepped)
            mk_broker_req_wake_next(req->b);
        return;
    }
    if (err) {
        rp->ErrorCode = err;
        if (err != MK_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER && err != MK_KERR_INVALID_PRODUCER_EPOCH)
            rp->ErrorMessage = mk_broker_req_str(req, a.why);
        if (err != MK_KERR_NOT_ENOUGH_REPLICAS && err != MK_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER &&
            err != MK_KERR_INVALID_PRODUCER_EPOCH && err != MK_KERR_KAFKA_STORAGE_ERROR)
            mk_warn("broker %d: produce to %s-%d from %s rejected (%s): %s", req->node->id, t->name, qp->Index,
                    req->sess ? mk_net_conn_peer(req->sess->conn) : "?", mk_kafka_strerror(err), a.why);
        return;
    }
    rp->BaseOffset = a.base_offset;
    rp->LogAppendTimeMs = a.duplicate ? -1 : a.log_append_time;
    rp->LogStartOffset = mk_tier_log_start(req->b->tier, p, a.log_start_offset);
    /* acks=all: answered once the ISR has it (see produce_check); a retried
     * duplicate only once the original is replicated. */
    if (q->Acks == -1 && mk_partition_hw(p) < a.end_offset)
        produce_wait(req, t, qp->Index, a.end_offset, false, NULL, rp);
    else if (q->Acks == -1)
        req->b->acks_all_acked++;
    else if (q->Acks == 1 && !a.duplicate && qp->Records.len > (int32_t)MK_REPL_INLINE_BYTES &&
             mk_partition_hw(p) < a.end_offset)
        produce_wait(req, t, qp->Index, a.end_offset, true, NULL, rp); /* backing off (repl.h) */
}

int mk_broker_handle_produce(mk_req_t *req)
{
    mk_ProduceRequest_t *q = req->body;
    mk_ProduceResponse_t *r = req->resp;
    bool acks_ok = q->Acks == 0 || q->Acks == 1 || q->Acks == -1;
    if (!MK_ARRAY_ALLOC(req, r->Responses, q->TopicData.count, ProduceResponse_TopicProduceResponse))
        return MK_ERR_NOMEM;
    const char *full = mk_broker_limits_storage_full(req); /* max_storage_bytes (quotas.c) */
    for (int32_t i = 0; i < q->TopicData.count; i++) {
        mk_ProduceRequest_TopicProduceData_t *qt = &q->TopicData.items[i];
        mk_ProduceResponse_TopicProduceResponse_t *rt = &r->Responses.items[i];
        rt->Name = qt->Name;
        mk_topic_t *t = mk_broker_req_topic(req, qt->Name);
        if (!MK_ARRAY_ALLOC(req, rt->PartitionResponses, qt->PartitionData.count,
                            ProduceResponse_PartitionProduceResponse))
            return MK_ERR_NOMEM;
        bool may = t && qt->Name.ptr && mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_WRITE);
        if (may && q->TransactionalId.ptr)
            may = mk_broker_req_authorized(req, MK_ACL_RES_TRANSACTIONAL_ID, q->TransactionalId.ptr, MK_ACL_OP_WRITE);
        for (int32_t j = 0; j < qt->PartitionData.count; j++) {
            if (!acks_ok || (t && !may)) {
                rt->PartitionResponses.items[j].Index = qt->PartitionData.items[j].Index;
                rt->PartitionResponses.items[j].ErrorCode =
                    !acks_ok ? MK_KERR_INVALID_REQUIRED_ACKS
                    : mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr ? qt->Name.ptr : "", MK_ACL_OP_WRITE)
                        ? MK_KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                        : MK_KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (full && t) {
                rt->PartitionResponses.items[j].Index = qt->PartitionData.items[j].Index;
                rt->PartitionResponses.items[j].ErrorCode = MK_KERR_POLICY_VIOLATION;
                rt->PartitionResponses.items[j].ErrorMessage = mk_str(full);
                continue;
            }
            produce_partition(req, t, &qt->PartitionData.items[j], &rt->PartitionResponses.items[j]);
        }
    }
    if (q->Acks == 0)
        return MK_REQ_NONE;
    int32_t leaders[64];
    int nl = 0;
    for (int32_t i = 0; i < r->Responses.count; i++)
        for (int32_t j = 0; j < r->Responses.items[i].PartitionResponses.count; j++)
            note_leader(leaders, &nl, r->Responses.items[i].PartitionResponses.items[j].CurrentLeader.LeaderId);
    FILL_ENDPOINTS(req, r->NodeEndpoints, ProduceResponse_NodeEndpoint, leaders, nl);
    if (req->ctx && !produce_check(req, false)) {
        int64_t wait_ms = q->TimeoutMs > 0 ? q->TimeoutMs : 1;
        bool soft = true;
        for (const produce_wait_t *w = req->ctx; w; w = w->next)
            soft &= w->soft || (w->end_offset < 0 && !w->retry);
        if (soft && wait_ms > MK_REPL_BACKOFF_MS)
            wait_ms = MK_REPL_BACKOFF_MS;
        mk_broker_req_park(req, wait_ms, produce_check);
        return MK_REQ_PENDING;
    }
    return MK_REQ_DONE;
}

/* ===================================================================== Fetch */

typedef struct fetch_span_s {
    mk_bytes_t *dst;
    size_t off, len;
} fetch_span_t;

/* A Fetch's state across re-runs (req->ctx). */
typedef struct fetch_state_s {
    bool remote_pending;       /* a partition waits for a chunk from S3 */
    bool final;                /* the last run: a partition still waiting gets no records */
} fetch_state_t;

static fetch_state_t *fetch_state(mk_req_t *req)
{
    if (!req->ctx)
        req->ctx = mk_arena_alloc(&req->arena, sizeof(fetch_state_t));
    return req->ctx;
}

typedef struct aborted_ctx_s {
    mk_req_t *req;
    mk_FetchResponse_PartitionData_t *rp;
    mk_FetchResponse_AbortedTransaction_t *items;
    int32_t n, cap;
} aborted_ctx_t;

static void aborted_cb(int64_t pid, int64_t first, void *arg)
{
    aborted_ctx_t *c = arg;
    if (c->n == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 8;
        mk_FetchResponse_AbortedTransaction_t *n = mk_broker_req_structs(c->req, &mk_pdesc_FetchResponse_AbortedTransaction, cap);
        if (!n)
            return;
        if (c->n)
            memcpy(n, c->items, sizeof(*n) * (size_t)c->n);
        c->items = n;
        c->cap = cap;
    }
    c->items[c->n].ProducerId = pid;
    c->items[c->n].FirstOffset = first;
    c->n++;
}

/* Build the whole Fetch response from the logs.  Returns the number of
 * record bytes gathered, or -1 if a partition carries an error (answer now). */
static int64_t fetch_fill(mk_req_t *req)
{
    mk_FetchRequest_t *q = req->body;
    mk_FetchResponse_t *r = req->resp;
    mk_proto_struct_defaults(&mk_pdesc_FetchResponse, r);
    mk_buf_reset(&req->data);
    bool any_error = false;
    int64_t total = 0;
    int64_t limit = q->MaxBytes > 0 ? q->MaxBytes : INT32_MAX;
    fetch_state_t *fs = fetch_state(req);
    if (!fs)
        return -1;
    fs->remote_pending = false;

    if (q->SessionId != 0) {
        r->ErrorCode = MK_KERR_FETCH_SESSION_ID_NOT_FOUND;
        return -1;
    }
    r->SessionId = 0; /* sessions declined: full fetches only */

    int32_t nparts = 0;
    for (int32_t i = 0; i < q->Topics.count; i++)
        nparts += q->Topics.items[i].Partitions.count;
    fetch_span_t *spans = mk_arena_alloc(&req->arena, sizeof(fetch_span_t) * (size_t)(nparts + 1));
    int nspans = 0;
    if (!spans || !MK_ARRAY_ALLOC(req, r->Responses, q->Topics.count, FetchResponse_FetchableTopicResponse))
        return -1;
    for (int32_t i = 0; i < q->Topics.count; i++) {
        mk_FetchRequest_FetchTopic_t *qt = &q->Topics.items[i];
        mk_FetchResponse_FetchableTopicResponse_t *rt = &r->Responses.items[i];
        mk_topic_t *t;
        int16_t missing;
        if (req->version >= 13) {
            t = mk_broker_req_topic_id(req, qt->TopicId.b);
            rt->TopicId = qt->TopicId;
            missing = MK_KERR_UNKNOWN_TOPIC_ID;
        } else {
            t = mk_broker_req_topic(req, qt->Topic);
            rt->Topic = qt->Topic;
            missing = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, qt->Partitions.count, FetchResponse_PartitionData))
            return -1;
        for (int32_t j = 0; j < qt->Partitions.count; j++) {
            mk_FetchRequest_FetchPartition_t *qp = &qt->Partitions.items[j];
            mk_FetchResponse_PartitionData_t *rp = &rt->Partitions.items[j];
            rp->PartitionIndex = qp->Partition;
            /* Error partitions carry empty (not null) records, as Kafka sends them. */
            rp->Records.ptr = (const uint8_t *)"";
            rp->Records.len = 0;
            int16_t err;
            mk_log_t *log = NULL;
            mk_partition_t *p = t ? read_partition(req, t, qp->Partition, &log, &err) : NULL;
            if (!t)
                err = missing;
            if (p && !mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, mk_broker_req_topic_name(req, t).ptr,
                                               MK_ACL_OP_READ)) {
                p = NULL;
                err = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            }
            if (!p) {
                rp->ErrorCode = err;
                any_error = true;
                if (t && err == MK_KERR_NOT_LEADER_OR_FOLLOWER) {
                    mk_partition_t *pp = mk_cluster_topic_partition(t, qp->Partition);
                    rp->CurrentLeader.LeaderId = mk_partition_leader(pp);
                    rp->CurrentLeader.LeaderEpoch = mk_partition_leader_epoch(pp);
                }
                continue;
            }
            int64_t local_start = mk_log_start_offset(log), leo = mk_log_end_offset(log);
            int64_t start = mk_tier_log_start(req->b->tier, p, local_start);
            int64_t hw = MK_MIN(mk_partition_hw(p), leo);
            int64_t lso = req->b->txn ? mk_txn_lso(req->b->txn, p) : hw;
            /* Producer state still loading: nothing is known stable yet
             * beyond the log start; the fetch waits for the load's wake. */
            lso = lso < 0 ? start : MK_MIN(lso, hw);
            rp->HighWatermark = hw;
            rp->LastStableOffset = lso;
            rp->LogStartOffset = start;
            /* read_committed stops at the last stable offset. */
            if (q->IsolationLevel == 1)
                hw = lso;
            if ((err = check_epoch(p, qp->CurrentLeaderEpoch))) {
                rp->ErrorCode = err;
                any_error = true;
                continue;
            }
            if (qp->FetchOffset < start || qp->FetchOffset > leo) {
                rp->ErrorCode = MK_KERR_OFFSET_OUT_OF_RANGE;
                any_error = true;
                continue;
            }
            /* KIP-392: a consumer in another AZ is sent to an in-sync replica in its own. */
            int32_t pref = preferred_read_replica(req, p, q->RackId);
            if (pref >= 0) {
                rp->PreferredReadReplica = pref;
                continue;
            }
            /* Offsets the scrubber found lost (no sound copy) are refused, never served. */
            int64_t lost_at;
            if ((err = mk_partition_read_check(req->b->writer, p, req->node->id, qp->FetchOffset, &lost_at))) {
                rp->ErrorCode = err;
                any_error = true;
                continue;
            }
            hw = MK_MIN(hw, lost_at);
            if (qp->FetchOffset >= hw || total >= limit)
                continue;
            size_t max = (size_t)MK_MIN((int64_t)(qp->PartitionMaxBytes > 0 ? qp->PartitionMaxBytes : 0),
                                        limit - total);
            size_t before = req->data.len;
            int64_t next;
            bool remote = qp->FetchOffset < local_start;
            int rc = remote ? mk_tier_read(req->b->tier, p, req->node->id, qp->FetchOffset, hw, max, &req->data, &next)
                            : mk_log_read_upto(log, qp->FetchOffset, hw, max, total == 0, &req->data, &next);
            if (rc == MK_ERR_AGAIN) {
                /* A chunk is on its way from S3: parked until it lands (or,
                 * in the final run, answered without records). */
                if (!fs->final)
                    fs->remote_pending = true;
                continue;
            }
            if (rc < 0) {
                rp->ErrorCode = rc == MK_ERR_RANGE ? MK_KERR_OFFSET_OUT_OF_RANGE : MK_KERR_KAFKA_STORAGE_ERROR;
                any_error = true;
                continue;
            }
            size_t got = req->data.len - before;
            /* Fetch below v10 cannot carry zstd (KIP-110): as Kafka, a topic
             * whose compression.type is zstd is refused; zstd batches that a
             * producer sent to a "producer" topic are served as stored, as
             * Kafka serves them (a client that cannot read them sees them). */
            if (req->version < 10 && t->cfg.compression_zstd) {
                req->data.len = before;
                rp->ErrorCode = MK_KERR_UNSUPPORTED_COMPRESSION_TYPE;
                any_error = true;
                continue;
            }
            if (got && req->b->repl)
                mk_repl_account_read(req->b->repl, req->node->id, q->RackId.ptr, got);
            if (got && q->IsolationLevel == 1 && req->b->txn) {
                aborted_ctx_t ac = {req, rp, NULL, 0, 0};
                if (remote)
                    mk_tier_aborted(req->b->tier, p, qp->FetchOffset, next, aborted_cb, &ac);
                mk_txn_aborted(req->b->txn, p, qp->FetchOffset, next, aborted_cb, &ac);
                rp->AbortedTransactions.items = ac.items;
                rp->AbortedTransactions.count = ac.n;
            }
            if (got) {
                spans[nspans].dst = &rp->Records;
                spans[nspans].off = before;
                spans[nspans].len = got;
                nspans++;
                total += (int64_t)got;
            }
        }
    }
    int32_t leaders[64];
    int nl = 0;
    for (int32_t i = 0; i < r->Responses.count; i++)
        for (int32_t j = 0; j < r->Responses.items[i].Partitions.count; j++)
            note_leader(leaders, &nl, r->Responses.items[i].Partitions.items[j].CurrentLeader.LeaderId);
    FILL_ENDPOINTS(req, r->NodeEndpoints, FetchResponse_NodeEndpoint, leaders, nl);
    /* req->data may have moved while growing: point the records in now. */
    for (int i = 0; i < nspans; i++) {
        spans[i].dst->ptr = req->data.data + spans[i].off;
        spans[i].dst->len = (int32_t)spans[i].len;
    }
    if (fs->remote_pending)
        return total; /* the caller parks it; an error elsewhere waits with it */
    return any_error ? -1 : total;
}

/* Whether any partition of a parked fetch has moved (new data, deleted
 * topic, moved leader): only then is the full fetch worth re-running. */
static bool fetch_may_progress(mk_req_t *req)
{
    mk_FetchRequest_t *q = req->body;
    const fetch_state_t *fs = req->ctx;
    if (fs && fs->remote_pending)
        return true; /* a chunk may have landed: a re-run is cheap */
    for (int32_t i = 0; i < q->Topics.count; i++) {
        mk_FetchRequest_FetchTopic_t *qt = &q->Topics.items[i];
        mk_topic_t *t = req->version >= 13 ? mk_broker_req_topic_id(req, qt->TopicId.b)
                                           : mk_broker_req_topic(req, qt->Topic);
        if (!t)
            return true;
        for (int32_t j = 0; j < qt->Partitions.count; j++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, qt->Partitions.items[j].Partition);
            if (!p || !mk_partition_log(p) || !mk_partition_replica_log(p, req->node->id) ||
                mk_partition_hw(p) > qt->Partitions.items[j].FetchOffset)
                return true;
        }
    }
    return false;
}

/* Park function of a Fetch: re-read when something moved; at the deadline,
 * answer with what there is. */
static bool fetch_retry(mk_req_t *req, bool final)
{
    fetch_state_t *fs = fetch_state(req);
    if (final) {
        if (fs)
            fs->final = true;
        fetch_fill(req);
        return true;
    }
    if (!fetch_may_progress(req))
        return false;
    bool was_remote = fs && fs->remote_pending;
    int64_t got = fetch_fill(req);
    if (fs && fs->remote_pending)
        return false; /* still waiting for S3 */
    return got < 0 || got >= ((mk_FetchRequest_t *)req->body)->MinBytes || (was_remote && got > 0);
}

/* A Fetch v11+ that names the client's rack: the session remembers whether
 * that is this broker's AZ (an empty RackId leaves what it knew). */
static void note_rack(mk_req_t *req, mk_str_t rack)
{
    if (!req->sess || !rack.ptr || rack.len <= 0)
        return;
    const char *az = req->node->az;
    size_t n = strlen(az);
    req->sess->rack_known = true;
    req->sess->cross_az = (size_t)rack.len != n || memcmp(rack.ptr, az, n) != 0;
}

int mk_broker_handle_fetch(mk_req_t *req)
{
    mk_FetchRequest_t *q = req->body;
    note_rack(req, q->RackId);
    int64_t got = fetch_fill(req);
    const fetch_state_t *fs = req->ctx;
    if (fs && fs->remote_pending) {
        /* Reading from S3: wait up to remote.fetch.max.wait.ms for it. */
        mk_broker_req_park(req, MK_MAX(req->b->remote_fetch_wait_ms, 1), fetch_retry);
        return MK_REQ_PENDING;
    }
    if (got < 0 || got >= q->MinBytes || q->MaxWaitMs <= 0)
        return MK_REQ_DONE;
    mk_broker_req_park(req, q->MaxWaitMs, fetch_retry);
    return MK_REQ_PENDING;
}

/* =============================================================== ListOffsets */

enum {
    TS_LATEST = -1, TS_EARLIEST = -2, TS_MAX_TIMESTAMP = -3, TS_EARLIEST_LOCAL = -4, TS_LATEST_TIERED = -5
};

typedef struct ts_find_s {
    int64_t target;     /* find the first record with timestamp >= target */
    bool exact_max;     /* or the first record whose timestamp == target */
    int64_t offset, timestamp;
} ts_find_t;

static int ts_find_cb(const mk_record_t *rec, void *arg)
{
    ts_find_t *f = arg;
    if (f->exact_max ? rec->timestamp == f->target : rec->timestamp >= f->target) {
        f->offset = rec->offset;
        f->timestamp = rec->timestamp;
        return 1;
    }
    return 0;
}

/* Search the batch holding offset for a record (see ts_find_t). */
static bool find_in_batch(mk_log_t *log, int64_t offset, ts_find_t *f)
{
    mk_buf_t b, scratch;
    mk_buf_init(&b);
    mk_buf_init(&scratch);
    int64_t next;
    bool found = false;
    if (mk_log_read(log, offset, 1, true, &b, &next) == 0 && b.len > 0)
        found = mk_batch_records_foreach(b.data, b.len, &scratch, MAX_UNCOMPRESSED, ts_find_cb, f) == 1;
    mk_buf_free(&b);
    mk_buf_free(&scratch);
    return found;
}

/* One partition of a ListOffsets: 0, MK_ERR_AGAIN (a chunk of a remote
 * segment is on its way: re-run after the wake), MK_ERR_IO (S3 failed). */
static int list_offset_partition(mk_req_t *req, mk_partition_t *p, int64_t ts, int8_t isolation,
                                 int64_t *offset, int64_t *timestamp)
{
    mk_log_t *log = mk_partition_log(p);
    mk_tier_t *tier = req->b->tier;
    int64_t local_start = mk_log_start_offset(log);
    *timestamp = -1;
    switch (ts) {
    case TS_LATEST: {
        int64_t hw = MK_MIN(mk_partition_hw(p), mk_log_end_offset(log));
        if (isolation == 1 && req->b->txn)
            hw = MK_MIN(hw, mk_txn_lso(req->b->txn, p));
        *offset = hw;
        return 0;
    }
    case TS_LATEST_TIERED: /* KIP-1005: the last offset in S3, -1 when none */
        *offset = mk_tier_last_tiered_offset(tier, p);
        return 0;
    case TS_EARLIEST:      /* the log start, S3 included */
        *offset = mk_tier_log_start(tier, p, local_start);
        return 0;
    case TS_EARLIEST_LOCAL: /* KIP-405: where the local log starts */
        *offset = local_start;
        return 0;
    case TS_MAX_TIMESTAMP: {
        mk_log_ts_t mt;
        *offset = -1;
        bool local = mk_log_max_timestamp(log, &mt) == 0 && mt.timestamp >= 0;
        if (tier) {
            int rc = mk_tier_max_timestamp(tier, p, req->node->id, local ? mt.timestamp : -1, local_start, offset,
                                           timestamp);
            if (rc != MK_ERR_NOT_FOUND)
                return rc;
        }
        if (local) {
            ts_find_t f = {mt.timestamp, true, mt.last_offset, mt.timestamp};
            find_in_batch(log, mt.base_offset, &f);
            *offset = f.offset;
            *timestamp = f.timestamp;
        }
        return 0;
    }
    }
    *offset = -1;
    if (ts < 0)
        return 0;
    /* The older data first: the segments in S3 below the local log. */
    if (tier) {
        int rc = mk_tier_offset_for_time(tier, p, req->node->id, ts, local_start, offset, timestamp);
        if (rc != MK_ERR_NOT_FOUND)
            return rc;
    }
    /* The log finds the first batch whose max timestamp reaches ts; within
     * that batch the first record at or after ts is the answer. */
    int64_t boff, bts;
    if (mk_log_offset_for_time(log, ts, &boff, &bts) == 0) {
        ts_find_t f = {ts, false, -1, -1};
        if (find_in_batch(log, boff, &f)) {
            *offset = f.offset;
            *timestamp = f.timestamp;
        } else {
            *offset = boff;
            *timestamp = bts;
        }
    }
    return 0;
}

/* Fill the ListOffsets answer.  A read_committed "latest" needs the
 * partition's producer state: while that is loading, *waiting is set and
 * the partition is left for a re-run (final: NOT_LEADER_OR_FOLLOWER, which
 * clients retry).  0 or MK_ERR_NOMEM. */
static int list_offsets_fill(mk_req_t *req, bool final, bool *waiting)
{
    mk_ListOffsetsRequest_t *q = req->body;
    mk_ListOffsetsResponse_t *r = req->resp;
    *waiting = false;
    if (!MK_ARRAY_ALLOC(req, r->Topics, q->Topics.count, ListOffsetsResponse_ListOffsetsTopicResponse))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < q->Topics.count; i++) {
        mk_ListOffsetsRequest_ListOffsetsTopic_t *qt = &q->Topics.items[i];
        mk_ListOffsetsResponse_ListOffsetsTopicResponse_t *rt = &r->Topics.items[i];
        rt->Name = qt->Name;
        mk_topic_t *t = mk_broker_req_topic(req, qt->Name);
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, qt->Partitions.count,
                            ListOffsetsResponse_ListOffsetsPartitionResponse))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < qt->Partitions.count; j++) {
            mk_ListOffsetsRequest_ListOffsetsPartition_t *qp = &qt->Partitions.items[j];
            mk_ListOffsetsResponse_ListOffsetsPartitionResponse_t *rp = &rt->Partitions.items[j];
            rp->PartitionIndex = qp->PartitionIndex;
            int16_t err;
            mk_partition_t *p = leader_partition(req, t, qp->PartitionIndex, &err);
            if (p)
                err = check_epoch(p, qp->CurrentLeaderEpoch);
            if (!err && !mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr ? qt->Name.ptr : "",
                                                  MK_ACL_OP_DESCRIBE))
                err = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            if (err) {
                rp->ErrorCode = err;
                continue;
            }
            if (q->IsolationLevel == 1 && req->b->txn && (qp->Timestamp == TS_LATEST || qp->Timestamp == TS_LATEST_TIERED) &&
                !mk_txn_ready(req->b->txn, p)) {
                if (final)
                    rp->ErrorCode = MK_KERR_NOT_LEADER_OR_FOLLOWER;
                else
                    *waiting = true;
                continue;
            }
            int64_t off, ts;
            int lrc = list_offset_partition(req, p, qp->Timestamp, q->IsolationLevel, &off, &ts);
            if (lrc == MK_ERR_AGAIN && !final) {
                *waiting = true;
                continue;
            }
            if (lrc < 0) {
                rp->ErrorCode = lrc == MK_ERR_AGAIN ? MK_KERR_REQUEST_TIMED_OUT : MK_KERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            rp->Offset = off;
            rp->Timestamp = ts;
            rp->LeaderEpoch = mk_partition_leader_epoch(p);
            if (req->version == 0) {
                int64_t *o = mk_arena_alloc(&req->arena, sizeof(int64_t));
                if (!o)
                    return MK_ERR_NOMEM;
                *o = off;
                rp->OldStyleOffsets.items = o;
                rp->OldStyleOffsets.count = off >= 0 && qp->MaxNumOffsets > 0 ? 1 : 0;
            }
        }
    }
    return 0;
}

/* Park function of a ListOffsets waiting for producer state: re-run it. */
static bool list_offsets_retry(mk_req_t *req, bool final)
{
    bool waiting;
    if (list_offsets_fill(req, final, &waiting) < 0)
        return true; /* out of memory: answer with what there is */
    return !waiting || final;
}

int mk_broker_handle_list_offsets(mk_req_t *req)
{
    bool waiting;
    int rc = list_offsets_fill(req, false, &waiting);
    if (rc < 0)
        return rc;
    if (waiting) {
        mk_broker_req_park(req, LOAD_WAIT_MS, list_offsets_retry);
        return MK_REQ_PENDING;
    }
    return MK_REQ_DONE;
}

/* ====================================================== OffsetForLeaderEpoch */

int mk_broker_handle_offset_for_leader_epoch(mk_req_t *req)
{
    mk_OffsetForLeaderEpochRequest_t *q = req->body;
    mk_OffsetForLeaderEpochResponse_t *r = req->resp;
    if (!MK_ARRAY_ALLOC(req, r->Topics, q->Topics.count, OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult))
        return MK_ERR_NOMEM;
    /* A follower's form (Kafka's brokers) needs CLUSTER_ACTION; a consumer's
     * (KIP-320) DESCRIBE on each topic. */
    bool cluster_action =
        mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_CLUSTER_ACTION);
    for (int32_t i = 0; i < q->Topics.count; i++) {
        mk_OffsetForLeaderEpochRequest_OffsetForLeaderTopic_t *qt = &q->Topics.items[i];
        mk_OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_t *rt = &r->Topics.items[i];
        rt->Topic = qt->Topic;
        mk_topic_t *t = mk_broker_req_topic(req, qt->Topic);
        /* Checked before existence, so a denied client learns nothing. */
        bool may = cluster_action || mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Topic.ptr, MK_ACL_OP_DESCRIBE);
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, qt->Partitions.count, OffsetForLeaderEpochResponse_EpochEndOffset))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < qt->Partitions.count; j++) {
            mk_OffsetForLeaderEpochRequest_OffsetForLeaderPartition_t *qp = &qt->Partitions.items[j];
            mk_OffsetForLeaderEpochResponse_EpochEndOffset_t *rp = &rt->Partitions.items[j];
            rp->Partition = qp->Partition;
            int16_t err = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            mk_partition_t *p = may ? leader_partition(req, t, qp->Partition, &err) : NULL;
            if (p)
                err = check_epoch(p, qp->CurrentLeaderEpoch);
            if (err) {
                rp->ErrorCode = err;
                continue;
            }
            int32_t ep = -1;
            int64_t end = -1;
            if (qp->LeaderEpoch >= 0 && mk_log_end_offset_for_epoch(mk_partition_log(p), qp->LeaderEpoch, &ep, &end) < 0) {
                ep = -1;
                end = -1;
            }
            rp->LeaderEpoch = ep;
            rp->EndOffset = end;
        }
    }
    return MK_REQ_DONE;
}

/* ============================================================ admin reads */

int16_t mk_broker_records_read(mk_broker_t *b, mk_partition_t *p, int64_t offset, size_t max_bytes, mk_buf_t *out,
                               mk_broker_records_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->next_offset = offset;
    mk_log_t *log = mk_partition_log(p);
    int32_t leader = mk_partition_leader(p);
    if (!log || leader < 0)
        return MK_KERR_LEADER_NOT_AVAILABLE;
    int64_t local_start = mk_log_start_offset(log), leo = mk_log_end_offset(log);
    int64_t hw = MK_MIN(mk_partition_hw(p), leo);
    info->log_start_offset = mk_tier_log_start(b->tier, p, local_start);
    info->local_log_start_offset = local_start;
    info->high_watermark = hw;
    /* Negative offsets: -1 the newest (ending at the high watermark), -2 the
     * oldest; the caller turns "the last N" into an offset itself. */
    if (offset == -1)
        offset = hw;
    else if (offset == -2)
        offset = local_start;
    if (offset < info->log_start_offset || offset > leo)
        return MK_KERR_OFFSET_OUT_OF_RANGE;
    if (offset < local_start) {
        /* In S3 only: this route reads the local log (no waiting on S3 here). */
        info->skipped_remote = true;
        offset = local_start;
    }
    info->offset = info->next_offset = offset;
    /* Offsets the scrubber found lost (no sound copy) are refused, never served. */
    int64_t lost_at;
    int16_t err = mk_partition_read_check(b->writer, p, leader, offset, &lost_at);
    if (err)
        return err;
    hw = MK_MIN(hw, lost_at);
    info->served_upto = hw;
    if (offset >= hw)
        return 0;
    int64_t next;
    int rc = mk_log_read_upto(log, offset, hw, max_bytes, true, out, &next);
    if (rc < 0)
        return rc == MK_ERR_RANGE ? MK_KERR_OFFSET_OUT_OF_RANGE : MK_KERR_KAFKA_STORAGE_ERROR;
    info->next_offset = next;
    return 0;
}
