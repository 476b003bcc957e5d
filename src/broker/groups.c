/*
 * groups.c -- handlers for the group APIs: FindCoordinator, JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups, DeleteGroups, OffsetDelete, and KIP-848's
 * ConsumerGroupHeartbeat and ConsumerGroupDescribe.
 *
 * They translate between the wire structs and group/'s coordinator.  Every
 * group request must reach the group's coordinating broker; elsewhere it gets
 * NOT_COORDINATOR and the client looks the coordinator up again.  Answers
 * that come later (JoinGroup, SyncGroup, OffsetCommit) arrive through
 * callbacks whose data is copied into the request arena before the response
 * is queued.  Group ids go through the session's tenant like topic names.
 *
 * ACLs (the operations Kafka's authorizer asks for; names are the client's):
 *   FindCoordinator  group DESCRIBE / transactional id DESCRIBE
 *   JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit  group READ
 *   OffsetCommit     and topic READ per topic (TOPIC_AUTHORIZATION_FAILED)
 *   OffsetFetch      group DESCRIBE; topics without DESCRIBE answered with
 *                    TOPIC_AUTHORIZATION_FAILED, or left out of "all offsets"
 *   DescribeGroups   group DESCRIBE;  DeleteGroups  group DELETE
 *   ListGroups       only the groups the principal may DESCRIBE (all of them
 *                    with DESCRIBE on the cluster)
 *   OffsetDelete     group DELETE, topic READ per topic
 *   ConsumerGroupHeartbeat  group READ; topic DESCRIBE on every subscribed
 *                    name (TOPIC_AUTHORIZATION_FAILED); regex subscriptions
 *                    match the tenant's topics
 *   ConsumerGroupDescribe   group DESCRIBE; topic DESCRIBE on every topic a
 *                    member subscribes to or is assigned, else the group
 *                    gets TOPIC_AUTHORIZATION_FAILED
 * Authorization comes before the coordinator check, as in Kafka, so a
 * denied client learns nothing about where the group lives.
 */
#include "broker/broker_int.h"
#include "group/group.h"
#include "txn/txn.h"

#include <string.h>

static const char *internal_group(mk_req_t *req, mk_str_t id)
{
    const char *g = mk_broker_req_internal(req, id);
    return g ? g : "";
}

static mk_str_t external_group(mk_req_t *req, const char *internal)
{
    const mk_tenant_t *t = req->sess ? req->sess->tenant : mk_tenant_default();
    return mk_broker_req_str(req, mk_tenant_to_external(t, internal));
}

/* NONE, or the error a request for group id gets on this broker. */
static int16_t coordinator_check(mk_req_t *req, const char *group_id)
{
    if (!req->b->groups || req->b->closing)
        return MK_KERR_COORDINATOR_NOT_AVAILABLE;
    if (!group_id || !*group_id)
        return MK_KERR_INVALID_GROUP_ID;
    int32_t id = mk_group_coordinator(req->b->groups, group_id);
    if (id < 0)
        return MK_KERR_COORDINATOR_NOT_AVAILABLE;
    return id == req->node->id ? 0 : MK_KERR_NOT_COORDINATOR;
}

static mk_bytes_t copy_bytes(mk_req_t *req, const uint8_t *p, int32_t n)
{
    mk_bytes_t b = {(const uint8_t *)"", 0};
    if (p && n > 0) {
        uint8_t *d = mk_arena_alloc(&req->arena, (size_t)n);
        if (d) {
            memcpy(d, p, (size_t)n);
            b.ptr = d;
            b.len = n;
        }
    }
    return b;
}

/* =========================================================== FindCoordinator */

static void find_one(mk_req_t *req, const char *key, int8_t key_type, int16_t *err, int32_t *node,
                     mk_str_t *host, int32_t *port, mk_str_t *msg)
{
    *node = -1;
    *host = mk_str("");
    *port = -1;
    if (key_type != 0 && key_type != 1) {
        *err = MK_KERR_INVALID_REQUEST;
        *msg = mk_str("unknown coordinator key type");
        return;
    }
    if (key_type == 0 && !mk_broker_req_authorized(req, MK_ACL_RES_GROUP, key, MK_ACL_OP_DESCRIBE)) {
        *err = MK_KERR_GROUP_AUTHORIZATION_FAILED;
        return;
    }
    if (key_type == 1 && !mk_broker_req_authorized(req, MK_ACL_RES_TRANSACTIONAL_ID, key, MK_ACL_OP_DESCRIBE)) {
        *err = MK_KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return;
    }
    if (!req->b->groups) {
        *err = MK_KERR_COORDINATOR_NOT_AVAILABLE;
        return;
    }
    int32_t id = mk_group_coordinator(req->b->groups, internal_group(req, mk_str(key)));
    mk_cluster_broker_t *b = id >= 0 ? mk_cluster_broker_find(req->c, id) : NULL;
    if (!b || !b->running) {
        *err = MK_KERR_COORDINATOR_NOT_AVAILABLE;
        return;
    }
    *err = 0;
    *node = b->id;
    mk_broker_req_endpoint(req, b, host, port);
    *msg = mk_str(NULL);
}

int mk_broker_handle_find_coordinator(mk_req_t *req)
{
    mk_FindCoordinatorRequest_t *q = req->body;
    mk_FindCoordinatorResponse_t *r = req->resp;
    if (req->version < 4) {
        find_one(req, q->Key.ptr ? q->Key.ptr : "", q->KeyType, &r->ErrorCode, &r->NodeId, &r->Host, &r->Port,
                 &r->ErrorMessage);
        return MK_REQ_DONE;
    }
    int32_t n = q->CoordinatorKeys.count > 0 ? q->CoordinatorKeys.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Coordinators, n, FindCoordinatorResponse_Coordinator))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_FindCoordinatorResponse_Coordinator_t *c = &r->Coordinators.items[i];
        c->Key = q->CoordinatorKeys.items[i];
        find_one(req, c->Key.ptr ? c->Key.ptr : "", q->KeyType, &c->ErrorCode, &c->NodeId, &c->Host, &c->Port,
                 &c->ErrorMessage);
    }
    return MK_REQ_DONE;
}

/* ================================================================= JoinGroup */

static void join_done(const mk_group_join_result_t *res, void *arg)
{
    mk_req_t *req = arg;
    mk_JoinGroupResponse_t *r = req->resp;
    r->ErrorCode = res->error;
    r->GenerationId = res->generation;
    r->ProtocolType = mk_broker_req_str(req, res->protocol_type);
    r->ProtocolName = mk_broker_req_str(req, res->protocol_name);
    r->Leader = mk_broker_req_str(req, res->leader ? res->leader : "");
    r->MemberId = mk_broker_req_str(req, res->member_id ? res->member_id : "");
    r->SkipAssignment = res->skip_assignment;
    if (res->member_count > 0 &&
        MK_ARRAY_ALLOC(req, r->Members, res->member_count, JoinGroupResponse_JoinGroupResponseMember)) {
        for (int32_t i = 0; i < res->member_count; i++) {
            r->Members.items[i].MemberId = mk_broker_req_str(req, res->members[i].member_id);
            r->Members.items[i].GroupInstanceId = mk_broker_req_str(req, res->members[i].group_instance_id);
            r->Members.items[i].Metadata = copy_bytes(req, res->members[i].metadata, res->members[i].metadata_len);
        }
    }
    mk_broker_req_finish(req);
}

int mk_broker_handle_join_group(mk_req_t *req)
{
    mk_JoinGroupRequest_t *q = req->body;
    mk_JoinGroupResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    r->MemberId = q->MemberId;
    r->GenerationId = -1;
    if ((r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ)) ||
        (r->ErrorCode = coordinator_check(req, gid)))
        return MK_REQ_DONE;
    int32_t n = q->Protocols.count > 0 ? q->Protocols.count : 0;
    mk_group_protocol_t *protos = mk_arena_alloc(&req->arena, sizeof(*protos) * (size_t)(n + 1));
    if (!protos)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        protos[i].name = q->Protocols.items[i].Name.ptr;
        protos[i].metadata = q->Protocols.items[i].Metadata.ptr;
        protos[i].metadata_len = q->Protocols.items[i].Metadata.len;
    }
    mk_group_join_t j = {0};
    j.group_id = gid;
    j.member_id = q->MemberId.ptr ? q->MemberId.ptr : "";
    j.group_instance_id = q->GroupInstanceId.ptr;
    j.client_id = req->hdr.ClientId.ptr ? req->hdr.ClientId.ptr : "";
    j.client_host = req->sess ? mk_net_conn_peer(req->sess->conn) : "";
    j.protocol_type = q->ProtocolType.ptr;
    j.session_timeout_ms = q->SessionTimeoutMs;
    j.rebalance_timeout_ms = req->version >= 1 ? q->RebalanceTimeoutMs : -1;
    j.protocol_count = n;
    j.protocols = protos;
    j.require_known_member_id = req->version >= 4;
    int rc = mk_group_join(req->b->groups, &j, join_done, req);
    return rc < 0 ? rc : MK_REQ_PENDING;
}

/* ================================================================= SyncGroup */

static void sync_done(const mk_group_sync_result_t *res, void *arg)
{
    mk_req_t *req = arg;
    mk_SyncGroupResponse_t *r = req->resp;
    r->ErrorCode = res->error;
    r->ProtocolType = mk_broker_req_str(req, res->protocol_type);
    r->ProtocolName = mk_broker_req_str(req, res->protocol_name);
    r->Assignment = copy_bytes(req, res->assignment, res->assignment_len);
    mk_broker_req_finish(req);
}

int mk_broker_handle_sync_group(mk_req_t *req)
{
    mk_SyncGroupRequest_t *q = req->body;
    mk_SyncGroupResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    if ((r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ)) ||
        (r->ErrorCode = coordinator_check(req, gid)))
        return MK_REQ_DONE;
    int32_t n = q->Assignments.count > 0 ? q->Assignments.count : 0;
    mk_group_assignment_t *as = mk_arena_alloc(&req->arena, sizeof(*as) * (size_t)(n + 1));
    if (!as)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        as[i].member_id = q->Assignments.items[i].MemberId.ptr ? q->Assignments.items[i].MemberId.ptr : "";
        as[i].assignment = q->Assignments.items[i].Assignment.ptr;
        as[i].assignment_len = q->Assignments.items[i].Assignment.len;
    }
    mk_group_sync_t s = {gid, q->MemberId.ptr ? q->MemberId.ptr : "", q->GroupInstanceId.ptr, q->GenerationId,
                         req->version >= 5 ? q->ProtocolType.ptr : NULL,
                         req->version >= 5 ? q->ProtocolName.ptr : NULL, n, as};
    int rc = mk_group_sync(req->b->groups, &s, sync_done, req);
    return rc < 0 ? rc : MK_REQ_PENDING;
}

/* ======================================================= Heartbeat and Leave */

int mk_broker_handle_heartbeat(mk_req_t *req)
{
    mk_HeartbeatRequest_t *q = req->body;
    mk_HeartbeatResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    if ((r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ)) ||
        (r->ErrorCode = coordinator_check(req, gid)))
        return MK_REQ_DONE;
    r->ErrorCode = mk_group_heartbeat(req->b->groups, gid, q->MemberId.ptr ? q->MemberId.ptr : "",
                                      q->GroupInstanceId.ptr, q->GenerationId);
    return MK_REQ_DONE;
}

int mk_broker_handle_leave_group(mk_req_t *req)
{
    mk_LeaveGroupRequest_t *q = req->body;
    mk_LeaveGroupResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    if ((r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ)) ||
        (r->ErrorCode = coordinator_check(req, gid)))
        return MK_REQ_DONE;
    if (req->version < 3) {
        r->ErrorCode = mk_group_leave(req->b->groups, gid, q->MemberId.ptr ? q->MemberId.ptr : "", NULL);
        return MK_REQ_DONE;
    }
    int32_t n = q->Members.count > 0 ? q->Members.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Members, n, LeaveGroupResponse_MemberResponse))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_LeaveGroupRequest_MemberIdentity_t *m = &q->Members.items[i];
        r->Members.items[i].MemberId = m->MemberId;
        r->Members.items[i].GroupInstanceId = m->GroupInstanceId;
        r->Members.items[i].ErrorCode =
            mk_group_leave(req->b->groups, gid, m->MemberId.ptr ? m->MemberId.ptr : "", m->GroupInstanceId.ptr);
    }
    return MK_REQ_DONE;
}

/* ============================================================== OffsetCommit */

static void commit_done(int16_t error, void *arg)
{
    mk_req_t *req = arg;
    mk_OffsetCommitResponse_t *r = req->resp;
    mk_group_commit_t *commits = req->ctx;
    int k = 0;
    /* A partition refused before the call (topic ACL, unknown) keeps its own
     * error; the call's error (member, generation) goes to the others. */
    for (int32_t i = 0; i < r->Topics.count; i++)
        for (int32_t j = 0; j < r->Topics.items[i].Partitions.count; j++, k++) {
            mk_OffsetCommitResponse_OffsetCommitResponsePartition_t *p = &r->Topics.items[i].Partitions.items[j];
            p->ErrorCode = commits[k].error ? commits[k].error : error;
        }
    mk_broker_req_finish(req);
}

int mk_broker_handle_offset_commit(mk_req_t *req)
{
    mk_OffsetCommitRequest_t *q = req->body;
    mk_OffsetCommitResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    int16_t cerr = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ);
    if (!cerr)
        cerr = coordinator_check(req, gid);
    if (!cerr) /* a consumer-protocol member commits with v9+ (member epoch) */
        cerr = mk_group_commit_version_check(req->b->groups, gid, q->MemberId.ptr, req->version);
    int32_t nt = q->Topics.count > 0 ? q->Topics.count : 0, total = 0;
    if (!MK_ARRAY_ALLOC(req, r->Topics, nt, OffsetCommitResponse_OffsetCommitResponseTopic))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++)
        total += q->Topics.items[i].Partitions.count > 0 ? q->Topics.items[i].Partitions.count : 0;
    mk_group_commit_t *commits = mk_arena_alloc(&req->arena, sizeof(*commits) * (size_t)(total + 1));
    if (!commits)
        return MK_ERR_NOMEM;
    int k = 0;
    for (int32_t i = 0; i < nt; i++) {
        mk_OffsetCommitRequest_OffsetCommitRequestTopic_t *qt = &q->Topics.items[i];
        mk_OffsetCommitResponse_OffsetCommitResponseTopic_t *rt = &r->Topics.items[i];
        rt->Name = qt->Name;
        int32_t np = qt->Partitions.count > 0 ? qt->Partitions.count : 0;
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, np, OffsetCommitResponse_OffsetCommitResponsePartition))
            return MK_ERR_NOMEM;
        mk_topic_t *t = mk_broker_req_topic(req, qt->Name);
        int16_t terr = mk_broker_req_acl_error(req, MK_ACL_RES_TOPIC, qt->Name, MK_ACL_OP_READ);
        for (int32_t j = 0; j < np; j++, k++) {
            mk_OffsetCommitRequest_OffsetCommitRequestPartition_t *qp = &qt->Partitions.items[j];
            rt->Partitions.items[j].PartitionIndex = qp->PartitionIndex;
            commits[k].topic = t ? t->name : "";
            commits[k].partition = qp->PartitionIndex;
            commits[k].offset = qp->CommittedOffset;
            commits[k].leader_epoch = qp->CommittedLeaderEpoch;
            commits[k].metadata = qp->CommittedMetadata.ptr;
            commits[k].error = terr;
            if (!terr && (!t || !mk_cluster_topic_partition(t, qp->PartitionIndex)))
                commits[k].error = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
            /* A group error (ACL, coordinator) answers every partition. */
            rt->Partitions.items[j].ErrorCode = cerr;
        }
    }
    if (cerr)
        return MK_REQ_DONE;
    req->ctx = commits;
    int rc = mk_group_commit(req->b->groups, gid, q->MemberId.ptr ? q->MemberId.ptr : "", q->GroupInstanceId.ptr,
                             q->GenerationIdOrMemberEpoch, commits, total, commit_done, req);
    return rc < 0 ? rc : MK_REQ_PENDING;
}

/* =============================================================== OffsetFetch */

typedef struct all_offsets_s {
    mk_req_t *req;
    int count;
    const char **topics;
    int32_t *partitions;
    mk_group_offset_t *offs;
    int cap;
} all_offsets_t;

static void collect_offset(const char *topic, int32_t partition, const mk_group_offset_t *o, void *arg)
{
    all_offsets_t *a = arg;
    if (a->count == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        const char **t = mk_arena_alloc(&a->req->arena, sizeof(char *) * (size_t)cap);
        int32_t *p = mk_arena_alloc(&a->req->arena, sizeof(int32_t) * (size_t)cap);
        mk_group_offset_t *of = mk_arena_alloc(&a->req->arena, sizeof(*of) * (size_t)cap);
        if (!t || !p || !of)
            return;
        if (a->count) {
            memcpy(t, a->topics, sizeof(char *) * (size_t)a->count);
            memcpy(p, a->partitions, sizeof(int32_t) * (size_t)a->count);
            memcpy(of, a->offs, sizeof(*of) * (size_t)a->count);
        }
        a->topics = t;
        a->partitions = p;
        a->offs = of;
        a->cap = cap;
    }
    a->topics[a->count] = mk_arena_strndup(&a->req->arena, topic, strlen(topic));
    a->partitions[a->count] = partition;
    a->offs[a->count] = *o;
    a->offs[a->count].metadata = mk_arena_strndup(&a->req->arena, o->metadata, strlen(o->metadata));
    a->count++;
}

static void fill_partition(mk_req_t *req, const char *gid, const mk_topic_t *t, int32_t partition, int64_t *offset,
                           int32_t *epoch, mk_str_t *metadata, int16_t *err)
{
    mk_group_offset_t o;
    if (!t) {
        *offset = -1;
        *epoch = -1;
        *metadata = mk_str("");
        *err = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    mk_group_offset_get(req->b->groups, gid, t->name, partition, &o);
    *offset = o.offset;
    *epoch = o.leader_epoch;
    *metadata = mk_broker_req_str(req, o.metadata);
    *err = 0;
    /* require_stable (v7+): offsets held by an open transaction are not final. */
    mk_OffsetFetchRequest_t *q = req->body;
    if (req->version >= 7 && q->RequireStable && req->b->txn &&
        mk_txn_pending_offset(req->b->txn, gid, t->name, partition)) {
        *offset = -1;
        *err = MK_KERR_UNSTABLE_OFFSET_COMMIT;
    }
}

/* Fill one group's topics: from the request's list, or every committed one. */
static int offset_fetch_topics(mk_req_t *req, const char *gid, bool all, int32_t nt,
                               mk_OffsetFetchRequest_OffsetFetchRequestTopics_t *qts,
                               mk_OffsetFetchResponse_OffsetFetchResponseTopics_t **out_topics, int32_t *out_count)
{
    if (all) {
        all_offsets_t a = {req, 0, NULL, NULL, NULL, 0};
        mk_group_offsets_foreach(req->b->groups, gid, collect_offset, &a);
        /* One response topic per committed (topic, partition) grouped by topic. */
        mk_OffsetFetchResponse_OffsetFetchResponseTopics_t *ts =
            mk_broker_req_structs(req, &mk_pdesc_OffsetFetchResponse_OffsetFetchResponseTopics, a.count);
        int32_t ntop = 0;
        for (int i = 0; i < a.count; i++) {
            mk_topic_t *t = mk_cluster_topic_find(req->c, a.topics[i]);
            /* Topics the principal may not DESCRIBE are left out, as Kafka does. */
            const char *name = t ? mk_broker_req_topic_name(req, t).ptr : NULL;
            if (!t || !mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, name, MK_ACL_OP_DESCRIBE))
                continue;
            int32_t ti = -1;
            for (int32_t x = 0; x < ntop; x++)
                if (strcmp(ts[x].Name.ptr, mk_broker_req_topic_name(req, t).ptr) == 0)
                    ti = x;
            if (ti < 0) {
                ti = ntop++;
                ts[ti].Name = mk_broker_req_str(req, mk_broker_req_topic_name(req, t).ptr);
                ts[ti].Partitions.items =
                    mk_broker_req_structs(req, &mk_pdesc_OffsetFetchResponse_OffsetFetchResponsePartitions, a.count);
                ts[ti].Partitions.count = 0;
            }
            mk_OffsetFetchResponse_OffsetFetchResponsePartitions_t *p =
                &ts[ti].Partitions.items[ts[ti].Partitions.count++];
            p->PartitionIndex = a.partitions[i];
            p->CommittedOffset = a.offs[i].offset;
            p->CommittedLeaderEpoch = a.offs[i].leader_epoch;
            p->Metadata = mk_str(a.offs[i].metadata);
        }
        *out_topics = ts;
        *out_count = ntop;
        return 0;
    }
    mk_OffsetFetchResponse_OffsetFetchResponseTopics_t *ts =
        mk_broker_req_structs(req, &mk_pdesc_OffsetFetchResponse_OffsetFetchResponseTopics, nt);
    if (nt && !ts)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        ts[i].Name = qts[i].Name;
        mk_topic_t *t = mk_broker_req_topic(req, qts[i].Name);
        int16_t terr = mk_broker_req_acl_error(req, MK_ACL_RES_TOPIC, qts[i].Name, MK_ACL_OP_DESCRIBE);
        int32_t np = qts[i].PartitionIndexes.count > 0 ? qts[i].PartitionIndexes.count : 0;
        if (!MK_ARRAY_ALLOC(req, ts[i].Partitions, np, OffsetFetchResponse_OffsetFetchResponsePartitions))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++) {
            mk_OffsetFetchResponse_OffsetFetchResponsePartitions_t *p = &ts[i].Partitions.items[j];
            p->PartitionIndex = qts[i].PartitionIndexes.items[j];
            if (terr) { /* before existence: a denied client learns nothing of the topic */
                p->CommittedOffset = -1;
                p->CommittedLeaderEpoch = -1;
                p->Metadata = mk_str("");
                p->ErrorCode = terr;
                continue;
            }
            fill_partition(req, gid, t, p->PartitionIndex, &p->CommittedOffset, &p->CommittedLeaderEpoch,
                           &p->Metadata, &p->ErrorCode);
        }
    }
    *out_topics = ts;
    *out_count = nt;
    return 0;
}

/* OffsetFetch v0-1 have no group-level error: it goes to every requested
 * partition, as Kafka answers them. */
static int group_error_per_partition(mk_req_t *req, int16_t err)
{
    mk_OffsetFetchRequest_t *q = req->body;
    mk_OffsetFetchResponse_t *r = req->resp;
    int32_t nt = q->Topics.count > 0 ? q->Topics.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Topics, nt, OffsetFetchResponse_OffsetFetchResponseTopic))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        mk_OffsetFetchRequest_OffsetFetchRequestTopic_t *qt = &q->Topics.items[i];
        int32_t np = qt->PartitionIndexes.count > 0 ? qt->PartitionIndexes.count : 0;
        r->Topics.items[i].Name = qt->Name;
        if (!MK_ARRAY_ALLOC(req, r->Topics.items[i].Partitions, np, OffsetFetchResponse_OffsetFetchResponsePartition))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++) {
            mk_OffsetFetchResponse_OffsetFetchResponsePartition_t *p = &r->Topics.items[i].Partitions.items[j];
            p->PartitionIndex = qt->PartitionIndexes.items[j];
            p->CommittedOffset = -1;
            p->Metadata = mk_str("");
            p->ErrorCode = err;
        }
    }
    return MK_REQ_DONE;
}

int mk_broker_handle_offset_fetch(mk_req_t *req)
{
    mk_OffsetFetchRequest_t *q = req->body;
    mk_OffsetFetchResponse_t *r = req->resp;
    if (req->version >= 8) {
        int32_t ng = q->Groups.count > 0 ? q->Groups.count : 0;
        if (!MK_ARRAY_ALLOC(req, r->Groups, ng, OffsetFetchResponse_OffsetFetchResponseGroup))
            return MK_ERR_NOMEM;
        for (int32_t g = 0; g < ng; g++) {
            mk_OffsetFetchRequest_OffsetFetchRequestGroup_t *qg = &q->Groups.items[g];
            mk_OffsetFetchResponse_OffsetFetchResponseGroup_t *rg = &r->Groups.items[g];
            const char *gid = internal_group(req, qg->GroupId);
            rg->GroupId = qg->GroupId;
            if ((rg->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, qg->GroupId, MK_ACL_OP_DESCRIBE)) ||
                (rg->ErrorCode = coordinator_check(req, gid)))
                continue;
            /* v9+: a consumer group member fetches with its member id and epoch */
            if (req->version >= 9 && (qg->MemberId.ptr || qg->MemberEpoch >= 0) &&
                (rg->ErrorCode = mk_group_offset_fetch_check(req->b->groups, gid, qg->MemberId.ptr, qg->MemberEpoch)))
                continue;
            int rc = offset_fetch_topics(req, gid, qg->Topics.count < 0, qg->Topics.count, qg->Topics.items,
                                         &rg->Topics.items, &rg->Topics.count);
            if (rc < 0)
                return rc;
        }
        return MK_REQ_DONE;
    }
    const char *gid = internal_group(req, q->GroupId);
    int16_t err = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_DESCRIBE);
    if (!err)
        err = coordinator_check(req, gid);
    if (err) {
        r->ErrorCode = err;
        return req->version < 2 ? group_error_per_partition(req, err) : MK_REQ_DONE;
    }
    /* v0-7: the same data in the older shape; the struct layouts match field
     * for field, so convert through the v8 shape. */
    int32_t nt = q->Topics.count;
    mk_OffsetFetchRequest_OffsetFetchRequestTopics_t *qts =
        mk_broker_req_structs(req, &mk_pdesc_OffsetFetchRequest_OffsetFetchRequestTopics, nt > 0 ? nt : 0);
    for (int32_t i = 0; i < nt; i++) {
        qts[i].Name = q->Topics.items[i].Name;
        qts[i].PartitionIndexes.items = q->Topics.items[i].PartitionIndexes.items;
        qts[i].PartitionIndexes.count = q->Topics.items[i].PartitionIndexes.count;
    }
    mk_OffsetFetchResponse_OffsetFetchResponseTopics_t *ts = NULL;
    int32_t count = 0;
    int rc = offset_fetch_topics(req, gid, nt < 0, nt, qts, &ts, &count);
    if (rc < 0)
        return rc;
    if (!MK_ARRAY_ALLOC(req, r->Topics, count, OffsetFetchResponse_OffsetFetchResponseTopic))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < count; i++) {
        r->Topics.items[i].Name = ts[i].Name;
        int32_t np = ts[i].Partitions.count;
        if (!MK_ARRAY_ALLOC(req, r->Topics.items[i].Partitions, np, OffsetFetchResponse_OffsetFetchResponsePartition))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++) {
            mk_OffsetFetchResponse_OffsetFetchResponsePartition_t *d = &r->Topics.items[i].Partitions.items[j];
            mk_OffsetFetchResponse_OffsetFetchResponsePartitions_t *s = &ts[i].Partitions.items[j];
            d->PartitionIndex = s->PartitionIndex;
            d->CommittedOffset = s->CommittedOffset;
            d->CommittedLeaderEpoch = s->CommittedLeaderEpoch;
            d->Metadata = s->Metadata;
            d->ErrorCode = s->ErrorCode;
        }
    }
    return MK_REQ_DONE;
}

/* ===================================================== Describe/List/Delete */

typedef struct describe_ctx_s {
    mk_req_t *req;
    mk_DescribeGroupsResponse_DescribedGroup_t *out;
} describe_ctx_t;

static void describe_cb(const mk_group_desc_t *d, void *arg)
{
    describe_ctx_t *c = arg;
    mk_req_t *req = c->req;
    mk_DescribeGroupsResponse_DescribedGroup_t *g = c->out;
    g->GroupState = mk_broker_req_str(req, d->state);
    g->ProtocolType = mk_broker_req_str(req, d->protocol_type);
    g->ProtocolData = mk_broker_req_str(req, d->protocol_name);
    if (!MK_ARRAY_ALLOC(req, g->Members, d->member_count, DescribeGroupsResponse_DescribedGroupMember))
        return;
    for (int32_t i = 0; i < d->member_count; i++) {
        mk_DescribeGroupsResponse_DescribedGroupMember_t *m = &g->Members.items[i];
        m->MemberId = mk_broker_req_str(req, d->members[i].member_id);
        m->GroupInstanceId = mk_broker_req_str(req, d->members[i].group_instance_id);
        m->ClientId = mk_broker_req_str(req, d->members[i].client_id);
        m->ClientHost = mk_broker_req_str(req, d->members[i].client_host);
        m->MemberMetadata = copy_bytes(req, d->members[i].metadata, d->members[i].metadata_len);
        m->MemberAssignment = copy_bytes(req, d->members[i].assignment, d->members[i].assignment_len);
    }
}

int mk_broker_handle_describe_groups(mk_req_t *req)
{
    mk_DescribeGroupsRequest_t *q = req->body;
    mk_DescribeGroupsResponse_t *r = req->resp;
    int32_t n = q->Groups.count > 0 ? q->Groups.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Groups, n, DescribeGroupsResponse_DescribedGroup))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_DescribeGroupsResponse_DescribedGroup_t *g = &r->Groups.items[i];
        const char *gid = internal_group(req, q->Groups.items[i]);
        g->GroupId = q->Groups.items[i];
        g->AuthorizedOperations = INT32_MIN;
        g->GroupState = mk_str("Dead");
        if ((g->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->Groups.items[i], MK_ACL_OP_DESCRIBE)) ||
            (g->ErrorCode = coordinator_check(req, gid)))
            continue;
        describe_ctx_t c = {req, g};
        mk_group_describe(req->b->groups, gid, describe_cb, &c);
    }
    return MK_REQ_DONE;
}

typedef struct list_ctx_s {
    mk_req_t *req;
    mk_ListGroupsRequest_t *q;
    bool all;                  /* DESCRIBE on the cluster: every group is listed */
    mk_ListGroupsResponse_ListedGroup_t *items;
    int32_t count, cap;
} list_ctx_t;

static bool filter_has(const mk_str_t *items, int32_t n, const char *v)
{
    if (n <= 0)
        return true;
    for (int32_t i = 0; i < n; i++)
        if (items[i].ptr && v && strcasecmp(items[i].ptr, v) == 0)
            return true;
    return false;
}

static void list_cb(const mk_group_desc_t *d, void *arg)
{
    list_ctx_t *c = arg;
    const mk_tenant_t *tn = c->req->sess ? c->req->sess->tenant : mk_tenant_default();
    if (!mk_tenant_visible(tn, d->group_id))
        return;
    if (!filter_has(c->q->StatesFilter.items, c->q->StatesFilter.count, d->state))
        return;
    if (!filter_has(c->q->TypesFilter.items, c->q->TypesFilter.count, d->type))
        return;
    mk_str_t id = external_group(c->req, d->group_id);
    if (!c->all && !mk_broker_req_authorized(c->req, MK_ACL_RES_GROUP, id.ptr, MK_ACL_OP_DESCRIBE))
        return; /* Kafka lists only the groups the principal may describe */
    if (c->count == c->cap) {
        int32_t cap = c->cap ? c->cap * 2 : 16;
        mk_ListGroupsResponse_ListedGroup_t *n =
            mk_broker_req_structs(c->req, &mk_pdesc_ListGroupsResponse_ListedGroup, cap);
        if (!n)
            return;
        if (c->count)
            memcpy(n, c->items, sizeof(*n) * (size_t)c->count);
        c->items = n;
        c->cap = cap;
    }
    mk_ListGroupsResponse_ListedGroup_t *g = &c->items[c->count++];
    g->GroupId = id;
    g->ProtocolType = mk_broker_req_str(c->req, d->protocol_type);
    g->GroupState = mk_broker_req_str(c->req, d->state);
    g->GroupType = mk_str(d->type);
}

int mk_broker_handle_list_groups(mk_req_t *req)
{
    mk_ListGroupsRequest_t *q = req->body;
    mk_ListGroupsResponse_t *r = req->resp;
    if (!req->b->groups) {
        r->ErrorCode = MK_KERR_COORDINATOR_NOT_AVAILABLE;
        return MK_REQ_DONE;
    }
    list_ctx_t c = {req, q, mk_broker_req_authorized(req, MK_ACL_RES_CLUSTER, MK_ACL_CLUSTER_NAME, MK_ACL_OP_DESCRIBE),
                    NULL, 0, 0};
    mk_group_list(req->b->groups, req->node->id, list_cb, &c);
    r->Groups.items = c.items;
    r->Groups.count = c.count;
    return MK_REQ_DONE;
}

int mk_broker_handle_delete_groups(mk_req_t *req)
{
    mk_DeleteGroupsRequest_t *q = req->body;
    mk_DeleteGroupsResponse_t *r = req->resp;
    int32_t n = q->GroupsNames.count > 0 ? q->GroupsNames.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Results, n, DeleteGroupsResponse_DeletableGroupResult))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        const char *gid = internal_group(req, q->GroupsNames.items[i]);
        r->Results.items[i].GroupId = q->GroupsNames.items[i];
        int16_t err = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupsNames.items[i], MK_ACL_OP_DELETE);
        if (!err)
            err = coordinator_check(req, gid);
        r->Results.items[i].ErrorCode = err ? err : mk_group_delete(req->b->groups, gid);
    }
    return MK_REQ_DONE;
}

int mk_broker_handle_offset_delete(mk_req_t *req)
{
    mk_OffsetDeleteRequest_t *q = req->body;
    mk_OffsetDeleteResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    if ((r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_DELETE)) ||
        (r->ErrorCode = coordinator_check(req, gid)))
        return MK_REQ_DONE;
    int32_t nt = q->Topics.count > 0 ? q->Topics.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Topics, nt, OffsetDeleteResponse_OffsetDeleteResponseTopic))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        mk_OffsetDeleteRequest_OffsetDeleteRequestTopic_t *qt = &q->Topics.items[i];
        mk_OffsetDeleteResponse_OffsetDeleteResponseTopic_t *rt = &r->Topics.items[i];
        rt->Name = qt->Name;
        mk_topic_t *t = mk_broker_req_topic(req, qt->Name);
        int16_t terr = mk_broker_req_acl_error(req, MK_ACL_RES_TOPIC, qt->Name, MK_ACL_OP_READ);
        int32_t np = qt->Partitions.count > 0 ? qt->Partitions.count : 0;
        if (!MK_ARRAY_ALLOC(req, rt->Partitions, np, OffsetDeleteResponse_OffsetDeleteResponsePartition))
            return MK_ERR_NOMEM;
        for (int32_t j = 0; j < np; j++) {
            int32_t p = qt->Partitions.items[j].PartitionIndex;
            rt->Partitions.items[j].PartitionIndex = p;
            if ((rt->Partitions.items[j].ErrorCode = terr))
                continue;
            if (!t || !mk_cluster_topic_partition(t, p)) {
                rt->Partitions.items[j].ErrorCode = MK_KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            int16_t err = mk_group_offset_delete(req->b->groups, gid, t->name, p);
            if (err == MK_KERR_GROUP_ID_NOT_FOUND) {
                r->ErrorCode = err;
                return MK_REQ_DONE;
            }
            rt->Partitions.items[j].ErrorCode = err;
        }
    }
    return MK_REQ_DONE;
}

/* ==================================================== ConsumerGroupHeartbeat */

int mk_broker_handle_consumer_group_heartbeat(mk_req_t *req)
{
    mk_ConsumerGroupHeartbeatRequest_t *q = req->body;
    mk_ConsumerGroupHeartbeatResponse_t *r = req->resp;
    const char *gid = internal_group(req, q->GroupId);
    r->MemberId = mk_str(NULL);
    r->Assignment.TopicPartitions.items = NULL;
    r->Assignment.TopicPartitions.count = -1;
    /* As Kafka: group READ, then DESCRIBE on the subscribed topics, then the coordinator. */
    if ((r->ErrorCode = mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupId, MK_ACL_OP_READ)))
        return MK_REQ_DONE;
    int32_t nt = q->SubscribedTopicNames.count;
    const char **topics = mk_arena_alloc(&req->arena, sizeof(char *) * (size_t)(nt > 0 ? nt + 1 : 1));
    if (!topics)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < nt; i++) {
        mk_str_t n = q->SubscribedTopicNames.items[i];
        if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, n.ptr ? n.ptr : "", MK_ACL_OP_DESCRIBE)) {
            r->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
            r->ErrorMessage = mk_broker_req_str(
                req, mk_arena_sprintf(&req->arena, "Not authorized to describe topic %s.", n.ptr ? n.ptr : ""));
            return MK_REQ_DONE;
        }
        topics[i] = mk_broker_req_internal(req, n);
        if (!topics[i])
            topics[i] = "";
    }
    if ((r->ErrorCode = coordinator_check(req, gid)))
        return MK_REQ_DONE;
    int32_t no = q->TopicPartitions.count;
    mk_group_tps_t *owned = mk_arena_alloc(&req->arena, sizeof(*owned) * (size_t)(no > 0 ? no + 1 : 1));
    if (!owned)
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < no; i++) {
        memcpy(owned[i].topic_id, q->TopicPartitions.items[i].TopicId.b, 16);
        int32_t np = q->TopicPartitions.items[i].Partitions.count;
        owned[i].count = np > 0 ? np : 0;
        owned[i].partitions = q->TopicPartitions.items[i].Partitions.items;
    }
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    mk_group_cg_heartbeat_t hb = {
        .group_id = gid,
        .member_id = q->MemberId.ptr ? q->MemberId.ptr : "",
        .member_epoch = q->MemberEpoch,
        .instance_id = q->InstanceId.ptr,
        .rack_id = q->RackId.ptr,
        .rebalance_timeout_ms = q->RebalanceTimeoutMs,
        .topics_set = nt >= 0,
        .topic_count = nt > 0 ? nt : 0,
        .topics = topics,
        .regex = req->version >= 1 ? q->SubscribedTopicRegex.ptr : NULL,
        .assignor = q->ServerAssignor.ptr,
        .owned_set = no >= 0,
        .owned_count = no > 0 ? no : 0,
        .owned = owned,
        .client_id = req->hdr.ClientId.ptr ? req->hdr.ClientId.ptr : "",
        .client_host = req->sess ? mk_net_conn_peer(req->sess->conn) : "",
        .tenant_prefix = tn->prefix,
        .version = req->version,
    };
    mk_group_cg_result_t res;
    mk_group_cg_heartbeat(req->b->groups, &hb, &req->arena, &res);
    r->ErrorCode = res.error;
    r->ErrorMessage = mk_str(res.error_message);
    if (res.error)
        return MK_REQ_DONE;
    r->MemberId = mk_broker_req_str(req, res.member_id);
    r->MemberEpoch = res.member_epoch;
    r->HeartbeatIntervalMs = res.heartbeat_interval_ms;
    if (res.has_assignment) {
        if (!MK_ARRAY_ALLOC(req, r->Assignment.TopicPartitions, res.assignment_count,
                            ConsumerGroupHeartbeatResponse_TopicPartitions))
            return MK_ERR_NOMEM;
        for (int32_t i = 0; i < res.assignment_count; i++) {
            mk_ConsumerGroupHeartbeatResponse_TopicPartitions_t *tp = &r->Assignment.TopicPartitions.items[i];
            memcpy(tp->TopicId.b, res.assignment[i].topic_id, 16);
            tp->Partitions.items = (int32_t *)res.assignment[i].partitions;
            tp->Partitions.count = res.assignment[i].count;
        }
    }
    return MK_REQ_DONE;
}

/* ===================================================== ConsumerGroupDescribe */

typedef struct cg_describe_ctx_s {
    mk_req_t *req;
    mk_ConsumerGroupDescribeResponse_DescribedGroup_t *out;
} cg_describe_ctx_t;

/* The wire form of an assignment; false if a topic may not be described. */
static bool cg_assignment(mk_req_t *req, const mk_group_tps_t *tps, int32_t n,
                          mk_ConsumerGroupDescribeResponse_Assignment_t *out)
{
    if (!MK_ARRAY_ALLOC(req, out->TopicPartitions, n, ConsumerGroupDescribeResponse_TopicPartitions))
        return true;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        mk_topic_t *t = mk_cluster_topic_find_id(req->c, tps[i].topic_id);
        if (!t)
            continue; /* deleted since: left out */
        mk_str_t name = mk_broker_req_topic_name(req, t);
        if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, name.ptr, MK_ACL_OP_DESCRIBE))
            return false;
        mk_ConsumerGroupDescribeResponse_TopicPartitions_t *tp = &out->TopicPartitions.items[k++];
        memcpy(tp->TopicId.b, tps[i].topic_id, 16);
        tp->TopicName = mk_broker_req_str(req, name.ptr);
        int32_t *parts = mk_arena_alloc(&req->arena, sizeof(int32_t) * (size_t)(tps[i].count + 1));
        if (parts && tps[i].count)
            memcpy(parts, tps[i].partitions, sizeof(int32_t) * (size_t)tps[i].count);
        tp->Partitions.items = parts;
        tp->Partitions.count = parts ? tps[i].count : 0;
    }
    out->TopicPartitions.count = k;
    return true;
}

static void cg_describe_cb(const mk_group_cg_desc_t *d, void *arg)
{
    cg_describe_ctx_t *c = arg;
    mk_req_t *req = c->req;
    mk_ConsumerGroupDescribeResponse_DescribedGroup_t *g = c->out;
    const mk_tenant_t *tn = req->sess ? req->sess->tenant : mk_tenant_default();
    g->ErrorCode = d->error;
    g->ErrorMessage = mk_broker_req_str(req, d->error_message);
    g->GroupState = mk_broker_req_str(req, d->state);
    g->GroupEpoch = d->group_epoch;
    g->AssignmentEpoch = d->assignment_epoch;
    g->AssignorName = mk_broker_req_str(req, d->assignor ? d->assignor : "");
    if (d->error || !MK_ARRAY_ALLOC(req, g->Members, d->member_count, ConsumerGroupDescribeResponse_Member))
        return;
    bool denied = false;
    for (int32_t i = 0; i < d->member_count && !denied; i++) {
        const mk_group_cg_member_t *s = &d->members[i];
        mk_ConsumerGroupDescribeResponse_Member_t *m = &g->Members.items[i];
        m->MemberId = mk_broker_req_str(req, s->member_id);
        m->InstanceId = mk_broker_req_str(req, s->instance_id);
        m->RackId = mk_broker_req_str(req, s->rack_id);
        m->MemberEpoch = s->member_epoch;
        m->ClientId = mk_broker_req_str(req, s->client_id);
        m->ClientHost = mk_broker_req_str(req, s->client_host);
        m->SubscribedTopicRegex = mk_broker_req_str(req, s->regex);
        m->SubscribedTopicNames.items = mk_arena_alloc(&req->arena, sizeof(mk_str_t) * (size_t)(s->topic_count + 1));
        if (!m->SubscribedTopicNames.items)
            return;
        m->SubscribedTopicNames.count = s->topic_count;
        for (int32_t k = 0; k < s->topic_count; k++) {
            const char *ext = mk_tenant_to_external(tn, s->topics[k]);
            if (!mk_broker_req_authorized(req, MK_ACL_RES_TOPIC, ext, MK_ACL_OP_DESCRIBE))
                denied = true;
            m->SubscribedTopicNames.items[k] = mk_broker_req_str(req, ext);
        }
        denied = denied || !cg_assignment(req, s->assigned, s->assigned_count, &m->Assignment) ||
                 !cg_assignment(req, s->target, s->target_count, &m->TargetAssignment);
    }
    if (denied) {
        g->ErrorCode = MK_KERR_TOPIC_AUTHORIZATION_FAILED;
        g->ErrorMessage = mk_str("The group has subscribed or assigned topics which are not authorized.");
        g->Members.count = 0;
    }
}

int mk_broker_handle_consumer_group_describe(mk_req_t *req)
{
    mk_ConsumerGroupDescribeRequest_t *q = req->body;
    mk_ConsumerGroupDescribeResponse_t *r = req->resp;
    int32_t n = q->GroupIds.count > 0 ? q->GroupIds.count : 0;
    if (!MK_ARRAY_ALLOC(req, r->Groups, n, ConsumerGroupDescribeResponse_DescribedGroup))
        return MK_ERR_NOMEM;
    for (int32_t i = 0; i < n; i++) {
        mk_ConsumerGroupDescribeResponse_DescribedGroup_t *g = &r->Groups.items[i];
        const char *gid = internal_group(req, q->GroupIds.items[i]);
        g->GroupId = q->GroupIds.items[i];
        g->AuthorizedOperations = INT32_MIN;
        g->GroupState = mk_str("");
        g->AssignorName = mk_str("");
        if ((g->ErrorCode =
                 mk_broker_req_acl_error(req, MK_ACL_RES_GROUP, q->GroupIds.items[i], MK_ACL_OP_DESCRIBE)) ||
            (g->ErrorCode = coordinator_check(req, gid)))
            continue;
        cg_describe_ctx_t c = {req, g};
        mk_group_cg_describe(req->b->groups, gid, cg_describe_cb, &c);
    }
    return MK_REQ_DONE;
}
