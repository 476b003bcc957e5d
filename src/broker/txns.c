/*
 * txns.c -- handlers for idempotence and transactions: InitProducerId,
 * AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
 * DescribeProducers, DescribeTransactions, ListTransactions.
 *
 * Transactional requests must reach the transactional id's coordinator
 * (spread over brokers like group coordinators); elsewhere they get
 * NOT_COORDINATOR.  Transactional ids go through the tenant namespace.
 */
#include "broker/broker_int.h"
#include "txn/txn.h"

#include <string.h>

static int16_t txn_coordinator_check(mk_req_t *req, const char *tid)
{
    if (!req->b->txn || req->b->closing)
        return MK_KERR_COORDINATOR_NOT_AVAILABLE;
    if (!tid || !*tid)
        return MK_KERR_INVALID_REQUEST;
    int32_t id = mk_txn_coordinator(req->b->txn, tid);
    if (id < 0)
        return MK_KERR_COORDINATOR_NOT_AVAILABLE;
    return id == req->node->id ? 0 : MK_KERR_NOT_COORDINATOR;
}

int mk_broker_handle_init_producer_id(mk_req_t *req)
{
    mk_InitProducerIdRequest_t *q = req->body;
    mk_InitProducerIdResponse_t *r = req->resp;
    r->ProducerId = -1;
    r->ProducerEpoch = -1;
    const char *tid = mk_broker_req_internal(req, q->TransactionalId);
    if (tid && (r->ErrorCode = txn_coordinator_check(req, tid)))
        return MK_REQ_DONE;
    if (!req->b->txn) {
        r->ErrorCode = MK_KERR_COORDINATOR_NOT_AVAILABLE;
        return MK_REQ_DONE;
    }
    mk_txn_pid_t p = mk_txn_init_pid(req->b->txn, tid, q->TransactionTimeoutMs, q->ProducerId, q->ProducerEpoch);
    r->ErrorCode = p.error;
    r->ProducerId = p.producer_id;
    r->ProducerEpoch = p.producer_epoch;
    return MK_REQ_DONE;
}

/* One transaction's partitions (the v3-and-below shape or one v4+ entry). */
static int add_partitions(mk_req_t *req, const char *tid, int64_t pid, int16_t epoch, bool verify_only,
                          int32_t nt, mk_AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_t *topics,
                          mk_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t **out, int32_t *out_count)
{
    mk_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t *res =
        mk_broker_req_structs(req, &mk_pdesc_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult, nt);
    if (nt > 0 && !res)
        return MK_ERR_NOMEM;
    int16_t cerr = txn_coordinator_check(req, tid);
    if (!cerr)
        cerr = mk_txn_check(req->b->txn, tid, pid, epoch);
    /* Kafka checks every partition first: one unknown partition fails the
     * request and the rest are OPERATION_NOT_ATTEMPTED. */
    bool any_unknown = false;
    for (int32_t i = 0; i < nt && !cerr; i++)
        for (int32_t j = 0; j < topics[i].Partitions.count; j++)
            if (!mk_cluster_topic_partition(mk_broker_req_topic(req, topics[i].Name), topics[i].Partitions.items[j]))
                any_unknown = true;
    for (int32_t i = 0; i < nt; i++) {
        res[i].Name = topics[i].Name;
        int32_t np = topics[i].Partitions.count > 0 ? topics[i].Partitions.count : 0;
        if (!MK_ARRAY_ALLOC(req, res[i].ResultsByPartition, np,
                            AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult))
            return MK_ERR_NOMEM;
        mk_topic_t *t = mk_broker_req_topic(req, topics[i].Name);
        for (int32_t j = 0; j < np; j++) {
            mk_AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_t *pr = &res[i].ResultsByPartition.items[j];
            pr->PartitionIndex = topics[i].Partitions.items[j];
            mk_partition_t *p = mk_cluster_topic_partition(t, pr->PartitionIndex);
            if (cerr)
                pr->PartitionErrorCode = cerr;
            else if (!p)
                pr->PartitionErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            else if (any_unknown)
                pr->PartitionErrorCode = MK_KERR_OPERATION_NOT_ATTEMPTED;
            else if (!verify_only)
                pr->PartitionErrorCode = mk_txn_add_partition(req->b->txn, tid, pid, epoch, p);
        }
    }
    *out = res;
    *out_count = nt;
    return 0;
}

int mk_broker_handle_add_partitions_to_txn(mk_req_t *req)
{
    mk_AddPartitionsToTxnRequest_t *q = req->body;
    mk_AddPartitionsToTxnResponse_t *r = req->resp;
    if (req->version <= 3) {
        return add_partitions(req, mk_broker_req_internal(req, q->V3AndBelowTransactionalId), q->V3AndBelowProducerId,
                              q->V3AndBelowProducerEpoch, false, q->V3AndBelowTopics.count,
                              q->V3AndBelowTopics.items, &r->ResultsByTopicV3AndBelow.items,
                              &r->ResultsByTopicV3AndBelow.count) < 0
                   ? MK_ERR_NOMEM
                   : MK_REQ_DONE;
    }
    int32_t n = q->Transactions.count > 0 ? q->Transactions.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->ResultsByTransaction, n, AddPartitionsToTxnResponse_AddPartitionsToTxnResult))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction_t *x = &q->Transactions.items[i];
        r->ResultsByTransaction.items[i].TransactionalId = x->TransactionalId;
        if (add_partitions(req, mk_broker_req_internal(req, x->TransactionalId), x->ProducerId, x->ProducerEpoch,
                           x->VerifyOnly, x->Topics.count, x->Topics.items,
                           &r->ResultsByTransaction.items[i].TopicResults.items,
                           &r->ResultsByTransaction.items[i].TopicResults.count) < 0)
            return MK_ERR_NOMEM;
    }
    return MK_REQ_DONE;
}

int mk_broker_handle_add_offsets_to_txn(mk_req_t *req)
{
    mk_AddOffsetsToTxnRequest_t *q = req->body;
    mk_AddOffsetsToTxnResponse_t *r = req->resp;
    const char *tid = mk_broker_req_internal(req, q->TransactionalId);
    if ((r->ErrorCode = txn_coordinator_check(req, tid)))
        return MK_REQ_DONE;
    r->ErrorCode = mk_txn_add_offsets(req->b->txn, tid, q->ProducerId, q->ProducerEpoch,
                                      mk_broker_req_internal(req, q->GroupId));
    return MK_REQ_DONE;
}

int mk_broker_handle_end_txn(mk_req_t *req)
{
    mk_EndTxnRequest_t *q = req->body;
    mk_EndTxnResponse_t *r = req->resp;
    const char *tid = mk_broker_req_internal(req, q->TransactionalId);
    r->ProducerId = q->ProducerId;
    r->ProducerEpoch = q->ProducerEpoch;
    if ((r->ErrorCode = txn_coordinator_check(req, tid)))
        return MK_REQ_DONE;
    r->ErrorCode = mk_txn_end(req->b->txn, tid, q->ProducerId, q->ProducerEpoch, q->Committed);
    mk_broker_req_wake_soon(req->b); /* read_committed fetches may move */
    return MK_REQ_DONE;
}

int mk_broker_handle_txn_offset_commit(mk_req_t *req)
{
    mk_TxnOffsetCommitRequest_t *q = req->body;
    mk_TxnOffsetCommitResponse_t *r = req->resp;
    const char *tid = mk_broker_req_internal(req, q->TransactionalId);
    const char *gid = mk_broker_req_internal(req, q->GroupId);
    /* TxnOffsetCommit goes to the group's coordinator. */
    int16_t err = 0;
    if (!req->b->groups || !req->b->txn || !gid)
        err = MK_KERR_COORDINATOR_NOT_AVAILABLE;
    else if (mk_group_coordinator(req->b->groups, gid) != req->node->id)
        err = MK_KERR_NOT_COORDINATOR;
    int32_t nt = q->Topics.count > 0 ? q->Topics.count : 0, total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += q->Topics.items[i].Partitions.count > 0 ? q->Topics.items[i].Partitions.count : 0;
    mk_group_commit_t *commits = mk_arena_alloc(&req->arena, sizeof(*commits) * (size_t)(total + 1));
    if (!commits || !MK_ARRAY_ALLOC(req, r->Topics, nt, TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic))
        return MK_ERR_NOMEM;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        mk_TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic_t *qt = &q->Topics.items[i];
        mk_topic_t *t = mk_broker_req_topic(req, qt->Name);
        int32_t np = qt->Partitions.count > 0 ? qt->Partitions.count : 0;
        r->Topics.items[i].Name = qt->Name;
        if (!MK_ARRAY_ALLOC(req, r->Topics.items[i].Partitions, np, TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++, k++) {
            mk_TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition_t *qp = &qt->Partitions.items[j];
            commits[k].topic = t ? t->name : "";
            commits[k].partition = qp->PartitionIndex;
            commits[k].offset = qp->CommittedOffset;
            commits[k].leader_epoch = qp->CommittedLeaderEpoch;
            commits[k].metadata = qp->CommittedMetadata.ptr;
            commits[k].error = (!t || !mk_cluster_topic_partition(t, qp->PartitionIndex)) ? MK_KERR_UNKNOWN_TOPIC_OR_PARTITION : 0;
        }
    }
    if (!err)
        err = mk_txn_offset_commit(req->b->txn, tid, q->ProducerId, q->ProducerEpoch, gid, commits, total);
    k = 0;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < r->Topics.items[i].Partitions.count; j++, k++) {
            r->Topics.items[i].Partitions.items[j].PartitionIndex = commits[k].partition;
            r->Topics.items[i].Partitions.items[j].ErrorCode = err ? err : commits[k].error;
        }
    return MK_REQ_DONE;
}

/* ================================================================ describe */

typedef struct prod_list_s {
    mk_req_t *req;
    mk_DescribeProducersResponse_ProducerState_t items[256];
    int n;
} prod_list_t;

static void prod_cb(int64_t pid, int16_t epoch, int32_t last_seq, int64_t last_ts, int64_t txn_start, void *arg)
{
    prod_list_t *l = arg;
    if (l->n >= 256)
        return;
    mk_DescribeProducersResponse_ProducerState_t *s = &l->items[l->n++];
    s->ProducerId = pid;
    s->ProducerEpoch = epoch;
    s->LastSequence = last_seq;
    s->LastTimestamp = last_ts;
    s->CoordinatorEpoch = 0;
    s->CurrentTxnStartOffset = txn_start;
}

int mk_broker_handle_describe_producers(mk_req_t *req)
{
    mk_DescribeProducersRequest_t *q = req->body;
    mk_DescribeProducersResponse_t *r = req->resp;
    int32_t nt = q->Topics.count > 0 ? q->Topics.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Topics, nt, DescribeProducersResponse_TopicResponse))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        mk_DescribeProducersRequest_TopicRequest_t *qt = &q->Topics.items[i];
        mk_topic_t *t = mk_broker_req_topic(req, qt->Name);
        int32_t np = qt->PartitionIndexes.count > 0 ? qt->PartitionIndexes.count : 0;
        r->Topics.items[i].Name = qt->Name;
        if (!MK_ARRAY_ALLOC(req, r->Topics.items[i].Partitions, np, DescribeProducersResponse_PartitionResponse))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++) {
            mk_DescribeProducersResponse_PartitionResponse_t *pr = &r->Topics.items[i].Partitions.items[j];
            pr->PartitionIndex = qt->PartitionIndexes.items[j];
            mk_partition_t *p = mk_cluster_topic_partition(t, pr->PartitionIndex);
            if (!p) {
                pr->ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (mk_partition_leader(p) != req->node->id || !mk_partition_log(p) || !req->b->txn ||
                !mk_txn_ready(req->b->txn, p)) {
                pr->ErrorCode = MK_KERR_NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            prod_list_t *l = mk_arena_alloc(&req->arena, sizeof(*l));
            if (!l)
                return MK_ERR_NOMEM;
            l->req = req;
            mk_txn_producers(req->b->txn, p, prod_cb, l);
            if (!MK_ARRAY_ALLOC(req, pr->ActiveProducers, l->n, DescribeProducersResponse_ProducerState))
                return MK_ERR_NOMEM;
            if (l->n > 0)
                memcpy(pr->ActiveProducers.items, l->items, sizeof(l->items[0]) * (size_t)l->n);
        }
    }
    return MK_REQ_DONE;
}

typedef struct desc_ctx_s {
    mk_req_t *req;
    mk_DescribeTransactionsResponse_TransactionState_t *out;
} desc_ctx_t;

static void desc_cb(const mk_txn_desc_t *d, void *arg)
{
    desc_ctx_t *c = arg;
    mk_DescribeTransactionsResponse_TransactionState_t *o = c->out;
    o->TransactionState = mk_broker_req_str(c->req, d->state);
    o->TransactionTimeoutMs = d->timeout_ms;
    o->TransactionStartTimeMs = d->start_ms;
    o->ProducerId = d->producer_id;
    o->ProducerEpoch = d->producer_epoch;
    /* One topic entry per partition keeps this simple; clients merge. */
    if (!MK_ARRAY_ALLOC(c->req, o->Topics, d->partition_count, DescribeTransactionsResponse_TopicData))
        return;
    for (int32_t i = 0; i < d->partition_count; i++) {
        const mk_tenant_t *tn = c->req->sess ? c->req->sess->tenant : mk_tenant_default();
        o->Topics.items[i].Topic = mk_broker_req_str(c->req, mk_tenant_to_external(tn, d->topics[i]));
        int32_t *p = mk_arena_alloc(&c->req->arena, sizeof(int32_t));
        if (p) {
            *p = d->partitions[i];
            o->Topics.items[i].Partitions.items = p;
            o->Topics.items[i].Partitions.count = 1;
        }
    }
}

int mk_broker_handle_describe_transactions(mk_req_t *req)
{
    mk_DescribeTransactionsRequest_t *q = req->body;
    mk_DescribeTransactionsResponse_t *r = req->resp;
    int32_t n = q->TransactionalIds.count > 0 ? q->TransactionalIds.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->TransactionStates, n, DescribeTransactionsResponse_TransactionState))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_DescribeTransactionsResponse_TransactionState_t *o = &r->TransactionStates.items[i];
        const char *tid = mk_broker_req_internal(req, q->TransactionalIds.items[i]);
        o->TransactionalId = q->TransactionalIds.items[i];
        o->TransactionState = mk_str("");
        if ((o->ErrorCode = txn_coordinator_check(req, tid)))
            continue;
        desc_ctx_t c = {req, o};
        if (!mk_txn_describe(req->b->txn, tid, desc_cb, &c))
            o->ErrorCode = MK_KERR_TRANSACTIONAL_ID_NOT_FOUND;
    }
    return MK_REQ_DONE;
}

typedef struct list_ctx_s {
    mk_req_t *req;
    mk_ListTransactionsRequest_t *q;
    mk_ListTransactionsResponse_TransactionState_t items[1024];
    int n;
} list_ctx_t;

static void list_cb(const mk_txn_desc_t *d, void *arg)
{
    list_ctx_t *c = arg;
    if (c->n >= 1024 || mk_txn_coordinator(c->req->b->txn, d->transactional_id) != c->req->node->id)
        return;
    bool ok = c->q->StateFilters.count <= 0;
    for (int32_t i = 0; !ok && i < c->q->StateFilters.count; i++)
        ok = mk_str_eq(c->q->StateFilters.items[i], d->state);
    bool pid_ok = c->q->ProducerIdFilters.count <= 0;
    for (int32_t i = 0; !pid_ok && i < c->q->ProducerIdFilters.count; i++)
        pid_ok = c->q->ProducerIdFilters.items[i] == d->producer_id;
    if (c->q->DurationFilter >= 0 && d->start_ms >= 0 && mk_now_ms() - d->start_ms < c->q->DurationFilter)
        ok = false;
    const mk_tenant_t *tn = c->req->sess ? c->req->sess->tenant : mk_tenant_default();
    if (!ok || !pid_ok || !mk_tenant_visible(tn, d->transactional_id))
        return;
    mk_ListTransactionsResponse_TransactionState_t *s = &c->items[c->n++];
    mk_proto_struct_defaults(&mk_pdesc_ListTransactionsResponse_TransactionState, s);
    s->TransactionalId = mk_broker_req_str(c->req, mk_tenant_to_external(tn, d->transactional_id));
    s->ProducerId = d->producer_id;
    s->TransactionState = mk_broker_req_str(c->req, d->state);
}

int mk_broker_handle_list_transactions(mk_req_t *req)
{
    mk_ListTransactionsRequest_t *q = req->body;
    mk_ListTransactionsResponse_t *r = req->resp;
    if (!req->b->txn)
        return MK_REQ_DONE;
    list_ctx_t *c = mk_arena_alloc(&req->arena, sizeof(*c));
    if (!c)
        return MK_ERR_NOMEM;
    c->req = req;
    c->q = q;
    mk_txn_describe(req->b->txn, NULL, list_cb, c);
    if (!MK_ARRAY_ALLOC(req, r->TransactionStates, c->n, ListTransactionsResponse_TransactionState))
        return MK_ERR_NOMEM;
    if (c->n > 0)
        memcpy(r->TransactionStates.items, c->items, sizeof(c->items[0]) * (size_t)c->n);
    return MK_REQ_DONE;
}
