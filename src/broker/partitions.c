/*
 * partitions.c -- the admin APIs on partitions: CreatePartitions,
 * DeleteRecords, ElectLeaders, AlterPartitionReassignments,
 * ListPartitionReassignments, DescribeLogDirs, DescribeTopicPartitions
 * (KIP-966).
 *
 * The work is done below: the cluster grows a topic
 * (mk_cluster_topic_add_partitions), replication moves log starts, elects
 * and reassigns (mk_repl_delete_records, mk_repl_elect, mk_repl_reassign,
 * mk_repl_reassign_cancel).  This file checks requests, applies the
 * tenant's rules and words Kafka's answers.
 *
 * Placement rules (CreatePartitions assignments, reassignment targets):
 * distinct existing brokers, each in a different AZ (one replica per AZ,
 * as everywhere in minikora); for a tenant other than the default one,
 * every broker in the tenant's cell.  Without assignments new partitions go
 * to the topic's cell, one replica per AZ.
 *
 * ACLs (Kafka's KafkaApis): CreatePartitions ALTER on the topic;
 * DeleteRecords DELETE on the topic; ElectLeaders and
 * AlterPartitionReassignments ALTER on the cluster;
 * ListPartitionReassignments and DescribeLogDirs DESCRIBE on the cluster;
 * DescribeTopicPartitions DESCRIBE on the topic.  Names in and out go
 * through the session's tenant, and a tenant sees only its own topics.
 */
#include "broker/broker_int.h"
#include "repl/repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

/* A tenant's partitions stay in its cell (-1: the default tenant, any). */
static int32_t tenant_cell(const mk_req_t *req)
{
    return req->sess && req->sess->tenant != mk_tenant_default() ? req->sess->tenant->cell : -1;
}

/* The one placement check of a replica list: NULL when fine, else why. */
static const char *placement_check(mk_req_t *req, const int32_t *ids, int32_t n, char *why, size_t why_len)
{
    int32_t cell = tenant_cell(req);
    if (n < 1) {
        snprintf(why, why_len, "a replica list must name at least one broker");
        return why;
    }
    for (int32_t i = 0; i < n; i++) {
        mk_cluster_broker_t *b = mk_cluster_broker_find(req->c, ids[i]);
        if (!b) {
            snprintf(why, why_len, "broker %d does not exist", ids[i]);
            return why;
        }
        if (cell >= 0 && b->cell != cell) {
            snprintf(why, why_len, "broker %d is outside the tenant's cell %d", ids[i], cell);
            return why;
        }
        for (int32_t j = 0; j < i; j++) {
            if (ids[j] == ids[i]) {
                snprintf(why, why_len, "broker %d is named twice", ids[i]);
                return why;
            }
            if (strcmp(mk_cluster_broker_az(req->c, ids[j]), b->az) == 0) {
                snprintf(why, why_len, "brokers %d and %d are both in %s (one replica per AZ)", ids[j], ids[i],
                         b->az);
                return why;
            }
        }
    }
    return NULL;
}

static void persist_done(int status, void *arg)
{
    mk_req_t *req = arg;
    if (status < 0 && req->status == 0)
        req->status = status;
    if (--req->outstanding == 0)
        mk_broker_req_finish(req);
}

/* ========================================================= CreatePartitions */

int mk_broker_handle_create_partitions(mk_req_t *req)
{
    mk_CreatePartitionsRequest_t *q = req->body;
    mk_CreatePartitionsResponse_t *r = req->resp;
    int32_t n = q->Topics.count < 0 ? 0 : q->Topics.count;
    if (!MK_ARRAY_ALLOC(req, r->Results, n, CreatePartitionsResponse_CreatePartitionsTopicResult))
        return MK_ERR_NOMEM;
    req->outstanding = 1;
    int64_t have = -1;
    int32_t throttle = 0;
    for (int32_t i = 0; i < n; i++) {
        mk_CreatePartitionsRequest_CreatePartitionsTopic_t *qt = &q->Topics.items[i];
        mk_CreatePartitionsResponse_CreatePartitionsTopicResult_t *rt = &r->Results.items[i];
        rt->Name = qt->Name;
        char why[300] = "";
        int16_t err = 0;
        bool dup = false;
        for (int32_t j = 0; j < n && !dup; j++)
            dup = j != i && mk_str_eq(q->Topics.items[j].Name, qt->Name.ptr ? qt->Name.ptr : "");
        mk_topic_t *t = NULL;
        if (!qt->Name.ptr || dup) {
            err = MK_KERR_INVALID_REQUEST;
            snprintf(why, sizeof(why), "Duplicate topic in request.");
        } else if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_ALTER)) {
            err = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            snprintf(why, sizeof(why), "not authorized to alter topic '%s'", qt->Name.ptr);
        } else if (!(t = mk_broker_req_topic(req, qt->Name))) {
            err = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(why, sizeof(why), "The topic '%s' does not exist.", qt->Name.ptr);
        }
        int32_t old = t ? t->partition_count : 0;
        int16_t rf = t ? t->replication_factor : 0;
        int32_t add = qt->Count - old;
        if (!err && qt->Count == old) {
            err = MK_KERR_INVALID_PARTITIONS;
            snprintf(why, sizeof(why), "Topic already has %d partitions.", old);
        } else if (!err && qt->Count < old) {
            err = MK_KERR_INVALID_PARTITIONS;
            snprintf(why, sizeof(why), "Topic currently has %d partitions, which is higher than the requested %d.",
                     old, qt->Count);
        } else if (!err && qt->Count > MK_CLUSTER_MAX_PARTITIONS) {
            err = MK_KERR_INVALID_PARTITIONS;
            snprintf(why, sizeof(why), "Number of partitions must be at most %d, not %d.", MK_CLUSTER_MAX_PARTITIONS,
                     qt->Count);
        }
        for (int32_t p = 0; !err && t && p < old; p++)
            if (req->b->repl && mk_repl_reassigning(req->b->repl, mk_cluster_topic_partition(t, p))) {
                err = MK_KERR_REASSIGNMENT_IN_PROGRESS;
                snprintf(why, sizeof(why), "A partition reassignment is in progress for topic '%s'.", qt->Name.ptr);
            }
        int32_t *assignment = NULL;
        if (!err && qt->Assignments.count >= 0) {
            if (qt->Assignments.count != add) {
                err = MK_KERR_INVALID_REPLICA_ASSIGNMENT;
                snprintf(why, sizeof(why), "Increasing the number of partitions by %d but %d assignments provided.",
                         add, qt->Assignments.count);
            }
            assignment = err ? NULL : mk_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)add * (size_t)rf + 4);
            for (int32_t a = 0; !err && a < add; a++) {
                mk_CreatePartitionsRequest_CreatePartitionsAssignment_t *as = &qt->Assignments.items[a];
                char w2[200];
                if (as->BrokerIds.count != rf) {
                    err = MK_KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(why, sizeof(why), "Inconsistent replication factor between partitions, partition 0 has "
                             "%d replicas while partition %d has %d.", rf, old + a, as->BrokerIds.count);
                } else if (placement_check(req, as->BrokerIds.items, as->BrokerIds.count, w2, sizeof(w2))) {
                    err = MK_KERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(why, sizeof(why), "partition %d: %s", old + a, w2);
                } else if (assignment) {
                    memcpy(assignment + (size_t)a * (size_t)rf, as->BrokerIds.items, sizeof(int32_t) * (size_t)rf);
                }
            }
            if (!err && !assignment)
                return MK_ERR_NOMEM;
        }
        if (!err && !assignment) {
            /* The topic's cell must still hold rf brokers (one per AZ). */
            int cellsz = 0;
            for (int b = 0; b < mk_cluster_broker_count(req->c); b++)
                cellsz += mk_cluster_broker_at(req->c, b)->cell == t->cell;
            if (cellsz < rf) {
                err = MK_KERR_INVALID_REPLICATION_FACTOR;
                snprintf(why, sizeof(why), "the topic's cell has %d brokers, fewer than its replication factor %d",
                         cellsz, rf);
            }
        }
        if (!err && !mk_broker_limits_partitions(req, &have, add, why, sizeof(why)))
            err = MK_KERR_POLICY_VIOLATION;
        if (!err && !q->ValidateOnly &&
            !mk_broker_limits_mutation(req, req->version >= 3, add, &throttle, why, sizeof(why)))
            err = MK_KERR_THROTTLING_QUOTA_EXCEEDED;
        if (err) {
            rt->ErrorCode = err;
            rt->ErrorMessage = mk_broker_req_str(req, why);
            mk_info("CreatePartitions %s refused: %s", qt->Name.ptr ? qt->Name.ptr : "(null)", why);
            continue;
        }
        if (q->ValidateOnly)
            continue;
        req->outstanding++;
        int rc = mk_cluster_topic_add_partitions(req->c, t, qt->Count, assignment, rf, persist_done, req);
        if (rc < 0) {
            req->outstanding--;
            rt->ErrorCode = rc == MK_ERR_INVALID ? MK_KERR_INVALID_REPLICA_ASSIGNMENT : MK_KERR_UNKNOWN_SERVER_ERROR;
            rt->ErrorMessage = mk_str(mk_strerror(rc));
            continue;
        }
        if (req->b->repl)
            mk_repl_partitions_added(req->b->repl, t, old);
        if (have >= 0)
            have += add;
    }
    r->ThrottleTimeMs = throttle;
    if (--req->outstanding == 0)
        return MK_REQ_DONE;
    return MK_REQ_PENDING;
}

/* ============================================================ DeleteRecords */

int mk_broker_handle_delete_records(mk_req_t *req)
{
    mk_DeleteRecordsRequest_t *q = req->body;
    mk_DeleteRecordsResponse_t *r = req->resp;
    int32_t n = q->Topics.count < 0 ? 0 : q->Topics.count;
    if (!MK_ARRAY_ALLOC(req, r->Topics, n, DeleteRecordsResponse_DeleteRecordsTopicResult))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_DeleteRecordsRequest_DeleteRecordsTopic_t *qt = &q->Topics.items[i];
        mk_DeleteRecordsResponse_DeleteRecordsTopicResult_t *rt = &r->Topics.items[i];
        rt->Name = qt->Name;
        int32_t np = qt->Partitions.count < 0 ? 0 : qt->Partitions.count;
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, np, DeleteRecordsResponse_DeleteRecordsPartitionResult))
            return MK_ERR_NOMEM;
        bool may = qt->Name.ptr && mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, qt->Name.ptr, MK_ACL_OP_DELETE);
        mk_topic_t *t = may ? mk_broker_req_topic(req, qt->Name) : NULL;
        for (int32_t j = 0; j < np; j++) {
            mk_DeleteRecordsRequest_DeleteRecordsPartition_t *qp = &qt->Partitions.items[j];
            mk_DeleteRecordsResponse_DeleteRecordsPartitionResult_t *rp = &rt->Partitions.items[j];
            rp->PartitionIndex = qp->PartitionIndex;
            rp->LowWatermark = -1;
            mk_partition_t *p = mk_cluster_topic_partition(t, qp->PartitionIndex);
            if (!may) {
                rp->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
                continue;
            }
            if (!p) {
                rp->ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (mk_partition_leader(p) != req->node->id || !mk_partition_log(p) || !req->b->repl) {
                rp->ErrorCode = MK_KERR_NOT_LEADER_OR_FOLLOWER;
                continue;
            }
            /* -1: up to the high watermark (Kafka's DeleteRecordsRequest.HIGH_WATERMARK). */
            int64_t off = qp->Offset == -1 ? mk_partition_hw(p) : qp->Offset;
            int64_t low = -1;
            int rc = mk_repl_delete_records(req->b->repl, p, off, &low);
            if (rc == MK_ERR_RANGE) {
                rp->ErrorCode = MK_KERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            if (rc < 0) {
                rp->ErrorCode = rc == MK_ERR_STATE ? MK_KERR_NOT_LEADER_OR_FOLLOWER : MK_KERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            rp->LowWatermark = low;
        }
    }
    /* Parked fetches below the new start see it. */
    mk_broker_req_wake_soon(req->b);
    return MK_REQ_DONE;
}

/* ============================================================ ElectLeaders */

enum { ELECT_PREFERRED = 0, ELECT_UNCLEAN = 1 };

static int16_t elect_one(mk_req_t *req, mk_partition_t *p, int8_t type, const char **msg)
{
    int rc = mk_repl_elect(req->b->repl, p, type == ELECT_UNCLEAN);
    *msg = NULL;
    if (rc == 0)
        return 0;
    if (rc == MK_ERR_EXISTS) {
        *msg = type == ELECT_UNCLEAN ? "The partition has a leader: no unclean election is needed."
                                     : "The preferred replica is already the leader.";
        return MK_KERR_ELECTION_NOT_NEEDED;
    }
    if (type == ELECT_UNCLEAN) {
        *msg = "No replica of the partition is running.";
        return MK_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
    }
    *msg = "The preferred replica is not running or not in sync.";
    return MK_KERR_PREFERRED_LEADER_NOT_AVAILABLE;
}

int mk_broker_handle_elect_leaders(mk_req_t *req)
{
    mk_ElectLeadersRequest_t *q = req->body;
    mk_ElectLeadersResponse_t *r = req->resp;
    int8_t type = req->version >= 1 ? q->ElectionType : ELECT_PREFERRED;
    bool authorized = mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER);
    if (!authorized)
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
    bool bad_type = type != ELECT_PREFERRED && type != ELECT_UNCLEAN;
    if (q->TopicPartitions.count < 0) {
        /* Every partition of the tenant's topics: only those where an
         * election ran or failed are answered, as Kafka does. */
        if (!authorized || bad_type) {
            r->ErrorCode = authorized ? MK_KERR_INVALID_REQUEST : r->ErrorCode;
            return MK_REQ_DONE;
        }
        const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
        int nt = mk_cluster_topic_count(req->c), k = 0;
        if (!MK_ARRAY_ALLOC(req, r->ReplicaElectionResults, nt, ElectLeadersResponse_ReplicaElectionResult))
            return MK_ERR_NOMEM;
        size_t it = 0;
        mk_topic_t *t;
        while ((t = mk_cluster_topic_next(req->c, &it)) && k < nt) {
            if (!mk_tenant_visible(tn, t->name))
                continue;
            mk_ElectLeadersResponse_ReplicaElectionResult_t *rt = &r->ReplicaElectionResults.items[k];
            if (!MK_ARRAY_ALLOC(req, rt->PartitionResult, t->partition_count, ElectLeadersResponse_PartitionResult))
                return MK_ERR_NOMEM;
            int32_t m = 0;
            for (int32_t p = 0; p < t->partition_count; p++) {
                const char *msg;
                int16_t err = elect_one(req, mk_cluster_topic_partition(t, p), type, &msg);
                if (err == MK_KERR_ELECTION_NOT_NEEDED)
                    continue;
                rt->PartitionResult.items[m].PartitionId = p;
                rt->PartitionResult.items[m].ErrorCode = err;
                rt->PartitionResult.items[m].ErrorMessage = mk_str(msg);
                m++;
            }
            rt->PartitionResult.count = m;
            if (m) {
                rt->Topic = mk_broker_req_topic_name(req, t);
                k++;
            }
        }
        r->ReplicaElectionResults.count = k;
        return MK_REQ_DONE;
    }
    int32_t n = q->TopicPartitions.count;
    if (!MK_ARRAY_ALLOC(req, r->ReplicaElectionResults, n, ElectLeadersResponse_ReplicaElectionResult))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_ElectLeadersRequest_TopicPartitions_t *qt = &q->TopicPartitions.items[i];
        mk_ElectLeadersResponse_ReplicaElectionResult_t *rt = &r->ReplicaElectionResults.items[i];
        rt->Topic = qt->Topic;
        int32_t np = qt->Partitions.count < 0 ? 0 : qt->Partitions.count;
        if (!MK_ARRAY_ALLOC(req, rt->PartitionResult, np, ElectLeadersResponse_PartitionResult))
            return MK_ERR_NOMEM;
        mk_topic_t *t = qt->Topic.ptr ? mk_broker_req_topic(req, qt->Topic) : NULL;
        for (int32_t j = 0; j < np; j++) {
            mk_ElectLeadersResponse_PartitionResult_t *rp = &rt->PartitionResult.items[j];
            rp->PartitionId = qt->Partitions.items[j];
            mk_partition_t *p = mk_cluster_topic_partition(t, rp->PartitionId);
            const char *msg = NULL;
            if (!authorized) {
                rp->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
            } else if (bad_type) {
                rp->ErrorCode = MK_KERR_INVALID_REQUEST;
                msg = "unknown election type";
            } else if (!p || !req->b->repl) {
                rp->ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            } else {
                rp->ErrorCode = elect_one(req, p, type, &msg);
            }
            rp->ErrorMessage = mk_str(msg);
        }
    }
    return MK_REQ_DONE;
}

/* ============================================== partition reassignments */

int mk_broker_handle_alter_partition_reassignments(mk_req_t *req)
{
    mk_AlterPartitionReassignmentsRequest_t *q = req->body;
    mk_AlterPartitionReassignmentsResponse_t *r = req->resp;
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_ALTER)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        r->ErrorMessage = mk_str("not authorized to reassign partitions");
        return MK_REQ_DONE;
    }
    int32_t n = q->Topics.count < 0 ? 0 : q->Topics.count;
    if (!MK_ARRAY_ALLOC(req, r->Responses, n, AlterPartitionReassignmentsResponse_ReassignableTopicResponse))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_AlterPartitionReassignmentsRequest_ReassignableTopic_t *qt = &q->Topics.items[i];
        mk_AlterPartitionReassignmentsResponse_ReassignableTopicResponse_t *rt = &r->Responses.items[i];
        rt->Name = qt->Name;
        int32_t np = qt->Partitions.count < 0 ? 0 : qt->Partitions.count;
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, np, AlterPartitionReassignmentsResponse_ReassignablePartitionResponse))
            return MK_ERR_NOMEM;
        mk_topic_t *t = qt->Name.ptr ? mk_broker_req_topic(req, qt->Name) : NULL;
        for (int32_t j = 0; j < np; j++) {
            mk_AlterPartitionReassignmentsRequest_ReassignablePartition_t *qp = &qt->Partitions.items[j];
            mk_AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_t *rp = &rt->Partitions.items[j];
            rp->PartitionIndex = qp->PartitionIndex;
            mk_partition_t *p = mk_cluster_topic_partition(t, qp->PartitionIndex);
            char why[200];
            if (!p || !req->b->repl) {
                rp->ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                rp->ErrorMessage = mk_str("The partition does not exist.");
                continue;
            }
            if (qp->Replicas.count < 0) {
                int rc = mk_repl_reassign_cancel(req->b->repl, p);
                if (rc == MK_ERR_NOT_FOUND) {
                    rp->ErrorCode = MK_KERR_NO_REASSIGNMENT_IN_PROGRESS;
                    rp->ErrorMessage = mk_str("No reassignment is in progress for this partition.");
                } else if (rc < 0) {
                    rp->ErrorCode = MK_KERR_REASSIGNMENT_IN_PROGRESS;
                    rp->ErrorMessage = mk_str("The reassignment cannot be cancelled now: no original replica can "
                                              "take the lead back; it goes on.");
                }
                continue;
            }
            if (placement_check(req, qp->Replicas.items, qp->Replicas.count, why, sizeof(why))) {
                rp->ErrorCode = MK_KERR_INVALID_REPLICA_ASSIGNMENT;
                rp->ErrorMessage = mk_broker_req_str(req, why);
                continue;
            }
            /* Already the replica set, in this order: nothing to do. */
            bool same = qp->Replicas.count == mk_partition_replica_count(p) && !mk_repl_reassigning(req->b->repl, p);
            for (int32_t k = 0; same && k < qp->Replicas.count; k++)
                same = mk_partition_replica_broker(p, k) == qp->Replicas.items[k];
            if (same)
                continue;
            int rc = mk_repl_reassign(req->b->repl, p, qp->Replicas.items, qp->Replicas.count);
            if (rc == MK_ERR_EXISTS) {
                rp->ErrorCode = MK_KERR_REASSIGNMENT_IN_PROGRESS;
                rp->ErrorMessage = mk_str("A reassignment of this partition is in progress: cancel it first.");
            } else if (rc < 0) {
                rp->ErrorCode = rc == MK_ERR_INVALID ? MK_KERR_INVALID_REPLICA_ASSIGNMENT : MK_KERR_UNKNOWN_SERVER_ERROR;
                rp->ErrorMessage = mk_str(mk_strerror(rc));
            }
        }
    }
    return MK_REQ_DONE;
}

/* One partition's ongoing reassignment into out; false when there is none. */
static bool reassignment_of(mk_req_t *req, mk_partition_t *p,
                            mk_ListPartitionReassignmentsResponse_OngoingPartitionReassignment_t *out)
{
    int32_t add[MK_CLUSTER_MAX_BROKERS], rem[MK_CLUSTER_MAX_BROKERS], na, nr;
    if (!p || !req->b->repl || !mk_repl_reassign_info(req->b->repl, p, add, &na, rem, &nr))
        return false;
    int32_t n = mk_partition_replica_count(p);
    int32_t *ids = mk_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)(n + na + nr + 1));
    if (!ids)
        return false;
    for (int32_t k = 0; k < n; k++)
        ids[k] = mk_partition_replica_broker(p, k);
    memcpy(ids + n, add, sizeof(int32_t) * (size_t)na);
    memcpy(ids + n + na, rem, sizeof(int32_t) * (size_t)nr);
    out->PartitionIndex = mk_partition_index(p);
    out->Replicas.items = ids;
    out->Replicas.count = n;
    out->AddingReplicas.items = ids + n;
    out->AddingReplicas.count = na;
    out->RemovingReplicas.items = ids + n + na;
    out->RemovingReplicas.count = nr;
    return true;
}

int mk_broker_handle_list_partition_reassignments(mk_req_t *req)
{
    mk_ListPartitionReassignmentsRequest_t *q = req->body;
    mk_ListPartitionReassignmentsResponse_t *r = req->resp;
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE)) {
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        r->ErrorMessage = mk_str("not authorized to list reassignments");
        return MK_REQ_DONE;
    }
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    bool all = q->Topics.count < 0;
    int32_t nt = all ? mk_cluster_topic_count(req->c) : q->Topics.count;
    if (!MK_ARRAY_ALLOC(req, r->Topics, nt, ListPartitionReassignmentsResponse_OngoingTopicReassignment))
        return MK_ERR_NOMEM;
    int32_t k = 0;
    size_t it = 0;
    for (int32_t i = 0; i < nt; i++) {
        mk_topic_t *t;
        int32_t np;
        const int32_t *want = NULL;
        if (all) {
            t = mk_cluster_topic_next(req->c, &it);
            if (!t)
                break;
            if (!mk_tenant_visible(tn, t->name))
                continue;
            np = t->partition_count;
        } else {
            t = q->Topics.items[i].Name.ptr ? mk_broker_req_topic(req, q->Topics.items[i].Name) : NULL;
            if (!t)
                continue; /* Kafka leaves unknown topics out */
            np = q->Topics.items[i].PartitionIndexes.count < 0 ? 0 : q->Topics.items[i].PartitionIndexes.count;
            want = q->Topics.items[i].PartitionIndexes.items;
        }
        mk_ListPartitionReassignmentsResponse_OngoingTopicReassignment_t *rt = &r->Topics.items[k];
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, np, ListPartitionReassignmentsResponse_OngoingPartitionReassignment))
            return MK_ERR_NOMEM;
        int32_t m = 0;
        for (int32_t j = 0; j < np; j++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, want ? want[j] : j);
            if (reassignment_of(req, p, &rt->Partitions.items[m]))
                m++;
        }
        rt->Partitions.count = m;
        if (m) {
            rt->Name = mk_broker_req_topic_name(req, t);
            k++;
        }
    }
    r->Topics.count = k;
    return MK_REQ_DONE;
}

/* ========================================================= DescribeLogDirs */

/* This broker's one log directory (Kafka's log.dirs has one entry here),
 * with every replica it holds: size in bytes and offset lag (the high
 * watermark minus the replica's log end, 0 for the leader and for a
 * follower that has everything committed). */
int mk_broker_handle_describe_log_dirs(mk_req_t *req)
{
    mk_DescribeLogDirsRequest_t *q = req->body;
    mk_DescribeLogDirsResponse_t *r = req->resp;
    if (!mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE)) {
        /* Kafka answers an empty list (and from v3 the error). */
        r->ErrorCode = MK_KERR_CLUSTER_AUTHORIZATION_FAILED;
        return MK_REQ_DONE;
    }
    if (!MK_ARRAY_ALLOC(req, r->Results, 1, DescribeLogDirsResponse_DescribeLogDirsResult))
        return MK_ERR_NOMEM;
    mk_DescribeLogDirsResponse_DescribeLogDirsResult_t *res = &r->Results.items[0];
    int32_t id = req->node->id;
    char real[4096];
    const char *dir = realpath(req->node->log_dir, real) ? real : req->node->log_dir;
    res->LogDir = mk_broker_req_str(req, dir);
    struct statvfs vs;
    if (statvfs(req->node->log_dir, &vs) == 0) {
        res->TotalBytes = (int64_t)vs.f_blocks * (int64_t)vs.f_frsize;
        res->UsableBytes = (int64_t)vs.f_bavail * (int64_t)vs.f_frsize;
    }
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    bool all = q->Topics.count < 0;
    int32_t nt = all ? mk_cluster_topic_count(req->c) : q->Topics.count;
    if (!MK_ARRAY_ALLOC(req, res->Topics, nt, DescribeLogDirsResponse_DescribeLogDirsTopic))
        return MK_ERR_NOMEM;
    int32_t k = 0;
    size_t it = 0;
    for (int32_t i = 0; i < nt; i++) {
        mk_topic_t *t;
        const int32_t *want = NULL;
        int32_t np;
        if (all) {
            if (!(t = mk_cluster_topic_next(req->c, &it)))
                break;
            if (!mk_tenant_visible(tn, t->name))
                continue;
            np = t->partition_count;
        } else {
            t = q->Topics.items[i].Topic.ptr ? mk_broker_req_topic(req, q->Topics.items[i].Topic) : NULL;
            if (!t)
                continue;
            np = q->Topics.items[i].Partitions.count < 0 ? 0 : q->Topics.items[i].Partitions.count;
            want = q->Topics.items[i].Partitions.items;
        }
        mk_DescribeLogDirsResponse_DescribeLogDirsTopic_t *rt = &res->Topics.items[k];
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, np, DescribeLogDirsResponse_DescribeLogDirsPartition))
            return MK_ERR_NOMEM;
        int32_t m = 0;
        for (int32_t j = 0; j < np; j++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, want ? want[j] : j);
            mk_log_t *log = p ? mk_partition_replica_log(p, id) : NULL;
            if (!log)
                continue;
            mk_log_stats_t st;
            mk_log_stats(log, &st);
            mk_DescribeLogDirsResponse_DescribeLogDirsPartition_t *rp = &rt->Partitions.items[m++];
            rp->PartitionIndex = mk_partition_index(p);
            rp->PartitionSize = (int64_t)st.size_bytes;
            int64_t lag = mk_partition_hw(p) - st.end_offset;
            rp->OffsetLag = lag > 0 ? lag : 0;
            rp->IsFutureKey = false;
        }
        rt->Partitions.count = m;
        if (m) {
            rt->Name = mk_broker_req_topic_name(req, t);
            k++;
        }
    }
    res->Topics.count = k;
    return MK_REQ_DONE;
}

/* ================================================== DescribeTopicPartitions */

static int topic_cmp(const void *a, const void *b)
{
    return strcmp((*(mk_topic_t *const *)a)->name, (*(mk_topic_t *const *)b)->name);
}

/* KIP-966: topics in name order (their client-visible names), their
 * partitions from the cursor on, at most ResponsePartitionLimit partitions
 * in all (a topic is never cut before its first partition); NextCursor
 * names where the next request starts, null when everything was said.
 * Named topics that do not exist (or are not the tenant's) come back with
 * UNKNOWN_TOPIC_OR_PARTITION; ones the principal may not DESCRIBE with
 * TOPIC_AUTHORIZATION_FAILED; listing all topics leaves those out. */
int mk_broker_handle_describe_topic_partitions(mk_req_t *req)
{
    mk_DescribeTopicPartitionsRequest_t *q = req->body;
    mk_DescribeTopicPartitionsResponse_t *r = req->resp;
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    int32_t limit = q->ResponsePartitionLimit > 0 ? q->ResponsePartitionLimit : 2000;
    bool all = q->Topics.count <= 0;
    int32_t cap = all ? mk_cluster_topic_count(req->c) : q->Topics.count;
    /* Sort by the name the client sees: in a tenant its prefix is common. */
    mk_topic_t **ts = mk_arena_alloc(&req->arena, sizeof(mk_topic_t *) * (size_t)(cap + 1));
    const char **names = mk_arena_alloc(&req->arena, sizeof(char *) * (size_t)(cap + 1));
    if (!ts || !names)
        return MK_ERR_NOMEM;
    int32_t nt = 0;
    if (all) {
        size_t it = 0;
        mk_topic_t *t;
        while ((t = mk_cluster_topic_next(req->c, &it)) && nt < cap)
            if (mk_tenant_visible(tn, t->name) &&
                mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, mk_broker_req_topic_name(req, t).ptr,
                                         MK_ACL_OP_DESCRIBE))
                ts[nt++] = t;
        qsort(ts, (size_t)nt, sizeof(*ts), topic_cmp);
        for (int32_t i = 0; i < nt; i++)
            names[i] = mk_broker_req_topic_name(req, ts[i]).ptr;
    } else {
        /* Named topics: sorted by the names asked, duplicates once. */
        for (int32_t i = 0; i < q->Topics.count; i++) {
            const char *nm = q->Topics.items[i].Name.ptr;
            if (!nm)
                continue;
            int32_t at = nt;
            bool dup = false;
            for (int32_t j = 0; j < nt && !dup; j++)
                dup = strcmp(names[j], nm) == 0;
            if (dup)
                continue;
            while (at > 0 && strcmp(names[at - 1], nm) > 0) {
                names[at] = names[at - 1];
                ts[at] = ts[at - 1];
                at--;
            }
            names[at] = nm;
            ts[at] = NULL;
            nt++;
        }
        for (int32_t i = 0; i < nt; i++)
            ts[i] = mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, names[i], MK_ACL_OP_DESCRIBE)
                        ? mk_broker_req_topic(req, mk_str(names[i]))
                        : NULL;
    }
    if (!MK_ARRAY_ALLOC(req, r->Topics, nt, DescribeTopicPartitionsResponse_DescribeTopicPartitionsResponseTopic))
        return MK_ERR_NOMEM;
    const char *cur_name = q->Cursor.TopicName.ptr;
    int32_t cur_part = cur_name ? q->Cursor.PartitionIndex : 0;
    int32_t k = 0, used = 0;
    r->NextCursor.TopicName = mk_str(NULL); /* null: nothing left */
    r->NextCursor.TopicName.len = -1;
    for (int32_t i = 0; i < nt; i++) {
        if (cur_name && strcmp(names[i], cur_name) < 0)
            continue;
        int32_t first = cur_name && strcmp(names[i], cur_name) == 0 ? MK_MAX(cur_part, 0) : 0;
        mk_topic_t *t = ts[i];
        if (used >= limit) {
            r->NextCursor.TopicName = mk_broker_req_str(req, names[i]);
            r->NextCursor.PartitionIndex = first;
            break;
        }
        mk_DescribeTopicPartitionsResponse_DescribeTopicPartitionsResponseTopic_t *rt = &r->Topics.items[k++];
        rt->Name = mk_broker_req_str(req, names[i]);
        rt->TopicAuthorizedOperations = INT32_MIN;
        if (!t) {
            rt->ErrorCode = mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, names[i], MK_ACL_OP_DESCRIBE)
                                ? MK_KERR_UNKNOWN_TOPIC_OR_PARTITION
                                : MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        memcpy(rt->TopicId.b, t->id, 16);
        int32_t np = t->partition_count > first ? t->partition_count - first : 0;
        int32_t take = MK_MIN(np, limit - used);
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, take,
                            DescribeTopicPartitionsResponse_DescribeTopicPartitionsResponsePartition))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < take; j++) {
            mk_partition_t *p = mk_cluster_topic_partition(t, first + j);
            mk_DescribeTopicPartitionsResponse_DescribeTopicPartitionsResponsePartition_t *rp = &rt->Partitions.items[j];
            mk_cluster_broker_t *leader = mk_cluster_broker_find(req->c, mk_partition_leader(p));
            bool up = leader && leader->running && mk_partition_log(p);
            rp->PartitionIndex = first + j;
            rp->LeaderId = up ? mk_partition_leader(p) : -1;
            rp->LeaderEpoch = mk_partition_leader_epoch(p);
            rp->ErrorCode = up ? 0 : MK_KERR_LEADER_NOT_AVAILABLE;
            int32_t n = mk_partition_replica_count(p);
            int32_t *ids = mk_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)n * 3 + 4);
            if (!ids)
                return MK_ERR_NOMEM;
            int32_t *isr = ids + n, *off = ids + 2 * n;
            int32_t ni = 0, no = 0;
            for (int32_t x = 0; x < n; x++) {
                int32_t b = mk_partition_replica_broker(p, x);
                mk_cluster_broker_t *bk = mk_cluster_broker_find(req->c, b);
                ids[x] = b;
                if (mk_partition_replica_in_isr(p, b) && (mk_partition_replica_log(p, b) || !up))
                    isr[ni++] = b;
                if (!bk || !bk->running)
                    off[no++] = b;
            }
            rp->ReplicaNodes.items = ids;
            rp->ReplicaNodes.count = n;
            rp->IsrNodes.items = isr;
            rp->IsrNodes.count = ni;
            rp->OfflineReplicas.items = off;
            rp->OfflineReplicas.count = no;
            /* No ELR (KIP-966's eligible leader replicas are a KRaft
             * controller feature): empty lists. */
            rp->EligibleLeaderReplicas.count = 0;
            rp->LastKnownElr.count = 0;
        }
        used += take;
        if (take < np) {
            r->NextCursor.TopicName = mk_broker_req_str(req, names[i]);
            r->NextCursor.PartitionIndex = first + take;
            break;
        }
    }
    r->Topics.count = k;
    return MK_REQ_DONE;
}
