"""ACLs within a tenant (issue 10): CreateAcls, DescribeAcls and DeleteAcls through
kafka-python's admin client, enforced for a confluent-kafka producer and consumer
authenticated with SASL PLAIN.  A tenant without ACLs allows its principals everything;
once bindings name a resource, only what they allow is allowed, and each denial carries
Kafka's exact error.  Another tenant sees none of the bindings; they survive a restart.
"""

import time

import confluent_kafka as ck
import pytest
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, ResourcePattern, ResourcePatternFilter, ResourceType)
from kafka.errors import ClusterAuthorizationFailedError

from test_tenants import ck_conf, ck_create, new_tenant, sasl

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30


def kp_admin(mk, key, secret):
    return KafkaAdminClient(bootstrap_servers=mk.bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username=key,
                            sasl_plain_password=secret, request_timeout_ms=10000)


def acl(principal, op, rtype, name, perm=ACLPermissionType.ALLOW,
        pattern=ACLResourcePatternType.LITERAL):
    return ACL(principal=principal, host="*", operation=op, permission_type=perm,
               resource_pattern=ResourcePattern(rtype, name, pattern))


def everything():
    return ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                            ACLResourcePatternType.ANY))


def produce_error(mk, topic, creds):
    """Produce one record; the delivery error code, or None when it was stored."""
    p = ck.Producer(ck_conf(mk, acks="all", **{"message.timeout.ms": 10000}, **creds))
    got = []
    p.produce(topic, value=b"v", partition=0, on_delivery=lambda err, msg: got.append(err))
    p.flush(20)
    assert got, "no delivery report"
    return got[0].code() if got[0] else None


def consume_error(mk, topic, creds, timeout=20):
    c = ck.Consumer(ck_conf(mk, **{"group.id": "acl-g", "enable.auto.commit": False}, **creds))
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.5):
                if m.error():
                    return m.error().code()
                return None
        return "timeout"
    finally:
        c.close()


@pytest.mark.timeout(240)
def test_acls_within_a_tenant(minikora, tmp_path):
    mk = minikora(data_dir=tmp_path / "data")
    _, admin_key, admin_secret = new_tenant(mk, "acme")
    st, k = __import__("test_tenants").http(mk, "POST", "/v1/tenants/acme/keys")
    assert st == 201, k
    app_key, app_secret = k["key"], k["secret"]
    _, other_key, other_secret = new_tenant(mk, "globex")
    ADMIN, APP = "User:" + admin_key, "User:" + app_key
    admin_creds, app_creds = sasl(admin_key, admin_secret), sasl(app_key, app_secret)

    ck_create(mk, "orders", admin_creds)
    ck_create(mk, "payments", admin_creds)
    # No ACLs yet: the app key may do everything in its tenant.
    assert produce_error(mk, "payments", app_creds) is None

    a = kp_admin(mk, admin_key, admin_secret)
    try:
        res = a.create_acls([
            acl(ADMIN, ACLOperation.ALL, ResourceType.CLUSTER, "kafka-cluster"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.TOPIC, "*"),
            acl(APP, ACLOperation.WRITE, ResourceType.TOPIC, "orders"),
            acl(APP, ACLOperation.READ, ResourceType.GROUP, "acl-g", perm=ACLPermissionType.DENY),
        ])
        assert not res["failed"], res
        assert len(res["succeeded"]) == 4
        # An invalid binding is refused with its reason, the others are kept.
        res = a.create_acls([acl(APP, ACLOperation.READ, ResourceType.CLUSTER, "not-the-cluster")])
        assert len(res["failed"]) == 1, res

        acls, err = a.describe_acls(everything())
        assert err.errno == 0 and len(acls) == 4, acls
        assert {x.principal for x in acls} == {ADMIN, APP}
    finally:
        a.close()

    # The bindings now name every topic: WRITE on orders only, nothing on payments.
    assert produce_error(mk, "orders", app_creds) is None
    assert produce_error(mk, "payments", app_creds) == TOPIC_AUTHORIZATION_FAILED
    assert consume_error(mk, "orders", app_creds) == TOPIC_AUTHORIZATION_FAILED
    # ListOffsets needs DESCRIBE (WRITE implies it on orders; nothing on payments).
    c = ck.Consumer(ck_conf(mk, **{"group.id": "acl-wm"}, **app_creds))
    try:
        assert c.get_watermark_offsets(ck.TopicPartition("orders", 0), timeout=10)[1] >= 1
        with pytest.raises(ck.KafkaException) as ei:
            c.get_watermark_offsets(ck.TopicPartition("payments", 0), timeout=10)
        # librdkafka already stops at Metadata's TOPIC_AUTHORIZATION_FAILED for the topic
        assert ei.value.args[0].code() in (TOPIC_AUTHORIZATION_FAILED, ck.KafkaError._UNKNOWN_PARTITION), ei.value
    finally:
        c.close()
    assert produce_error(mk, "payments", admin_creds) is None

    # The app key may not manage ACLs (CLUSTER_AUTHORIZATION_FAILED).
    b = kp_admin(mk, app_key, app_secret)
    try:
        res = b.create_acls([acl(APP, ACLOperation.ALL, ResourceType.TOPIC, "*")])
        assert len(res["failed"]) == 1 and isinstance(res["failed"][0][1], ClusterAuthorizationFailedError) or \
            getattr(res["failed"][0][1], "errno", None) == 31, res
        with pytest.raises(ClusterAuthorizationFailedError):
            b.describe_acls(everything())
    finally:
        b.close()

    # Another tenant sees none of acme's bindings, and its own principals are not limited.
    o = kp_admin(mk, other_key, other_secret)
    try:
        acls, err = o.describe_acls(everything())
        assert err.errno == 0 and acls == [], acls
    finally:
        o.close()
    ck_create(mk, "payments", sasl(other_key, other_secret))
    assert produce_error(mk, "payments", sasl(other_key, other_secret)) is None

    # They survive a restart; then deleting the app's WRITE takes it away.
    mk.restart()
    assert produce_error(mk, "payments", app_creds) == TOPIC_AUTHORIZATION_FAILED
    a = kp_admin(mk, admin_key, admin_secret)
    try:
        flt = ACLFilter(principal=APP, host=None, operation=ACLOperation.WRITE,
                        permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "orders",
                                                               ACLResourcePatternType.LITERAL))
        out = a.delete_acls([flt])
        assert len(out) == 1 and len(out[0][1]) == 1, out
        acls, _ = a.describe_acls(everything())
        assert len(acls) == 3, acls
    finally:
        a.close()
    assert produce_error(mk, "orders", app_creds) == TOPIC_AUTHORIZATION_FAILED
