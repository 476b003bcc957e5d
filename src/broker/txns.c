/*
 * txns.c -- handlers for idempotence and transactions: InitProducerId,
 * AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
 * DescribeProducers, DescribeTransactions, ListTransactions.
 *
 * Transactional requests must reach the transactional id's coordinator
 * (spread over brokers like group coordinators); elsewhere they get
 * NOT_COORDINATOR.  Transactional ids go through the tenant namespace.
 *
 * ACLs, with the operations and errors of Kafka's authorizer, checked before
 * the coordinator (names are the client's):
 *   InitProducerId       transactional id WRITE; without one, IDEMPOTENT_WRITE
 *                        on the cluster or WRITE on at least one topic
 *                        (CLUSTER_AUTHORIZATION_FAILED)
 *   AddPartitionsToTxn   transactional id WRITE, topic WRITE per partition (a
 *                        denied or unknown partition fails the transaction's
 *                        request: the others are OPERATION_NOT_ATTEMPTED);
 *                        the batched form v4+ (broker to broker in Kafka) also
 *                        needs CLUSTER_ACTION on the cluster
 *   AddOffsetsToTxn      transactional id WRITE, group READ
 *   TxnOffsetCommit      transactional id WRITE, group READ, topic READ
 *   EndTxn               transactional id WRITE
 *   DescribeProducers    topic READ
 *   DescribeTransactions transactional id DESCRIBE; only topics it may DESCRIBE
 *   ListTransactions     only the transactional ids it may DESCRIBE
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
    if (tid)
        r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_TRANSACTIONAL_ID, q->TransactionalId, MK_ACL_OP_WRITE);
    if (r->ErrorCode)
        return MK_REQ_DONE;
    if (!tid && !mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_IDEMPOTENT_WRITE) &&
        !mk_broker_req_authorized_any(req, MK_ACL_RES_TOPIC, MK_ACL_OP_WRITE)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        return MK_REQ_DONE;
    }
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

/* One transaction's partitions (the v3-and-below shape or one v4+ entry),
 * client_tid as the client named it.  Kafka's order: the transactional id's
 * ACL; then each partition's topic ACL and existence, where one refusal
 * fails the whole transaction's request and leaves the other partitions
 * OPERATION_NOT_ATTEMPTED; then the coordinator and the producer. */
static int add_partitions(mk_req_t *req, mk_str_t client_tid, int64_t pid, int16_t epoch, bool verify_only,
                          int32_t nt, mk_AddPartitionsToTxnRequest_AddPartitionsToTxnTopic_t *topics,
                          mk_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t **out, int32_t *out_count)
{
    const char *tid = mk_broker_req_internal(req, client_tid);
    mk_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_t *res =
        mk_broker_req_structs(req, &mk_pdesc_AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult, nt);
    if (nt > 0 && !res)
        return MK_ERR_NOMEM;
    int16_t aerr = mk_broker_req_acl_error(req, MK_ACL_RES_TRANSACTIONAL_ID, client_tid, MK_ACL_OP_WRITE);
    bool any_refused = false;
    for (int32_t i = 0; i < nt; i++) {
        res[i].Name = topics[i].Name;
        int32_t np = topics[i].Partitions.count > 0 ? topics[i].Partitions.count : 0;
        if (!MK_ARRAY_ALLOC(req, res[i].ResultsByPartition, np,
                            AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult))
            return MK_ERR_NOMEM;
        mk_topic_t *t = mk_broker_req_topic(req, topics[i].Name);
        int16_t terr = mk_broker_req_acl_error(req, MK_ACL_RES_TOPIC, topics[i].Name, MK_ACL_OP_WRITE);
        for (int32_t j = 0; j < np; j++) {
            mk_AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_t *pr = &res[i].ResultsByPartition.items[j];
            pr->PartitionIndex = topics[i].Partitions.items[j];
            if (aerr)
                pr->PartitionErrorCode = aerr;
            else if (terr)
                pr->PartitionErrorCode = terr;
            else if (!mk_cluster_topic_partition(t, pr->PartitionIndex))
                pr->PartitionErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            any_refused |= pr->PartitionErrorCode != 0;
        }
    }
    *out = res;
    *out_count = nt;
    if (aerr)
        return 0;
    int16_t cerr = 0;
    if (!any_refused && !(cerr = txn_coordinator_check(req, tid)))
        cerr = mk_txn_check(req->b->txn, tid, pid, epoch);
    for (int32_t i = 0; i < nt; i++) {
        mk_topic_t *t = mk_broker_req_topic(req, topics[i].Name);
        for (int32_t j = 0; j < res[i].ResultsByPartition.count; j++) {
            mk_AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_t *pr = &res[i].ResultsByPartition.items[j];
            if (pr->PartitionErrorCode)
                continue;
            if (any_refused)
                pr->PartitionErrorCode = MK_KERR_OPERATION_NOT_ATTEMPTED;
            else if (cerr)
                pr->PartitionErrorCode = cerr;
            else if (!verify_only)
                pr->PartitionErrorCode = mk_txn_add_partition(req->b->txn, tid, pid, epoch,
                                                              mk_cluster_topic_partition(t, pr->PartitionIndex));
        }
    }
    return 0;
}

int mk_broker_handle_add_partitions_to_txn(mk_req_t *req)
{
    mk_AddPartitionsToTxnRequest_t *q = req->body;
    mk_AddPartitionsToTxnResponse_t *r = req->resp;
    if (req->version <= 3) {
        return add_partitions(req, q->V3AndBelowTransactionalId, q->V3AndBelowProducerId,
                              q->V3AndBelowProducerEpoch, false, q->V3AndBelowTopics.count,
                              q->V3AndBelowTopics.items, &r->ResultsByTopicV3AndBelow.items,
                              &r->ResultsByTopicV3AndBelow.count) < 0
                   ? MK_ERR_NOMEM
                   : MK_REQ_DONE;
    }
    /* v4+ is Kafka's broker-to-broker form: CLUSTER_ACTION first (and each
     * transaction is still checked as a client's would be). */
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_CLUSTER_ACTION)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        return MK_REQ_DONE;
    }
    int32_t n = q->Transactions.count > 0 ? q->Transactions.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->ResultsByTransaction, n, AddPartitionsToTxnResponse_AddPartitionsToTxnResult))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction_t *x = &q->Transactions.items[i];
        r->ResultsByTransaction.items[i].TransactionalId = x->TransactionalId;
        if (add_partitions(req, x->TransactionalId, x->ProducerId, x->ProducerEpoch,
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
    if ((r->ErrorCode =
             mk_broker_req_acl_error(req, MK_ACL_RES_TRANSACTIONAL_ID, q->TransactionalId, MK_ACL_OP_WRITE)) ||
        (r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ)) ||
        (r->ErrorCode = txn_coordinator_check(req, tid)))
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
    if ((r->ErrorCode =
             mk_broker_req_acl_error(req, MK_ACL_RES_TRANSACTIONAL_ID, q->TransactionalId, MK_ACL_OP_WRITE)) ||
        (r->ErrorCode = txn_coordinator_check(req, tid)))
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
    /* The transactional id's and the group's ACLs answer every partition;
     * a topic's ACL its own partitions. */
    int16_t aerr = mk_broker_req_acl_error(req, MK_ACL_RES_TRANSACTIONAL_ID, q->TransactionalId, MK_ACL_OP_WRITE);
    if (!aerr)
        aerr = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ);
    /* TxnOffsetCommit goes to the group's coordinator. */
    int16_t err = 0;
    if (aerr)
        err = aerr;
    else if (!req->b->groups || !req->b->txn || !gid)
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
        int16_t terr = mk_broker_req_acl_error(req, MK_ACL_RES_TOPIC, qt->Name, MK_ACL_OP_READ);
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
            commits[k].error = terr;
            if (!terr && (!t || !mk_cluster_topic_partition(t, qp->PartitionIndex)))
                commits[k].error = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
    }
    if (!err)
        err = mk_txn_offset_commit(req->b->txn, tid, q->ProducerId, q->ProducerEpoch, gid, commits, total);
    k = 0;
    for (int32_t i = 0; i < nt; i++)
        for (int32_t j = 0; j < r->Topics.items[i].Partitions.count; j++, k++) {
            r->Topics.items[i].Partitions.items[j].PartitionIndex = commits[k].partition;
            /* An ACL of the request wins; else a partition refused before
             * the call keeps its error, and the call's error goes to the rest. */
            r->Topics.items[i].Partitions.items[j].ErrorCode =
                aerr ? aerr : commits[k].error ? commits[k].error : err;
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
        int16_t terr = mk_broker_req_acl_error(req, MK_ACL_RES_TOPIC, qt->Name, MK_ACL_OP_READ);
        int32_t np = qt->PartitionIndexes.count > 0 ? qt->PartitionIndexes.count : 0;
        r->Topics.items[i].Name = qt->Name;
        if (!MK_ARRAY_ALLOC(req, r->Topics.items[i].Partitions, np, DescribeProducersResponse_PartitionResponse))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++) {
            mk_DescribeProducersResponse_PartitionResponse_t *pr = &r->Topics.items[i].Partitions.items[j];
            pr->PartitionIndex = qt->PartitionIndexes.items[j];
            if ((pr->ErrorCode = terr))
                continue;
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
    /* One topic entry per partition keeps this simple; clients merge.  Only
     * the topics the principal may DESCRIBE are shown, as Kafka does. */
    if (!MK_ARRAY_ALLOC(c->req, o->Topics, d->partition_count, DescribeTransactionsResponse_TopicData))
        return;
    const mk_tenant_t *tn = c->req->sess ? c->req->sess->tenant : mk_tenant_default();
    int32_t n = 0;
    for (int32_t i = 0; i < d->partition_count; i++) {
        mk_str_t name = mk_broker_req_str(c->req, mk_tenant_to_external(tn, d->topics[i]));
        if (!mk_broker_req_authorized(c->req, MK_ACL_RES_TOPIC, name.ptr, MK_ACL_OP_DESCRIBE))
            continue;
        o->Topics.items[n].Topic = name;
        int32_t *p = mk_arena_alloc(&c->req->arena, sizeof(int32_t));
        if (p) {
            *p = d->partitions[i];
            o->Topics.items[n].Partitions.items = p;
            o->Topics.items[n].Partitions.count = 1;
        }
        n++;
    }
    o->Topics.count = n;
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
        if ((o->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_TRANSACTIONAL_ID, q->TransactionalIds.items[i],
                                                    MK_ACL_OP_DESCRIBE)) ||
            (o->ErrorCode = txn_coordinator_check(req, tid)))
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
    mk_str_t tid = mk_broker_req_str(c->req, mk_tenant_to_external(tn, d->transactional_id));
    if (!mk_broker_req_authorized(c->req, MK_ACL_RES_TRANSACTIONAL_ID, tid.ptr, MK_ACL_OP_DESCRIBE))
        return; /* Kafka lists only the ids the principal may describe */
    mk_ListTransactionsResponse_TransactionState_t *s = &c->items[c->n++];
    mk_proto_struct_defaults(&mk_pdesc_ListTransactionsResponse_TransactionState, s);
    s->TransactionalId = tid;
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
