"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51) over a tenant (issue 10).

Neither kafka-python 2.0.2 nor the installed confluent-kafka (1.7) has these admin calls, so the
requests are encoded by hand (both are flexible at v0) on a raw connection authenticated with
SASL PLAIN as a tenant's API key.  A credential set through AlterUserScramCredentials (salted
password computed here with hashlib.pbkdf2_hmac) is then used by confluent-kafka to log in with
SCRAM-SHA-512; another tenant can neither see nor change it.
"""

import hashlib
import hmac
import os

import pytest

import kwire
from test_tenants import ck_auth_error, ck_conf, ck_topics, http, new_tenant, sasl, \
    sasl_authenticate_plain

DESCRIBE_SCRAM = 50
ALTER_SCRAM = 51
UNSUPPORTED_SASL_MECHANISM = 33
RESOURCE_NOT_FOUND = 91
DUPLICATE_RESOURCE = 92
UNACCEPTABLE_CREDENTIAL = 93
SHA256, SHA512 = 1, 2


def compact_bytes(b):
    return kwire.uvarint(len(b) + 1) + b


def describe(c, users):
    """users: list of names or None (all).  Returns (error, {user: (err, msg, {mech: iters})})."""
    body = kwire.compact_array(None if users is None else
                               [kwire.compact_string(u) + kwire.TAGS for u in users]) + kwire.TAGS
    r = kwire.Reader(c.call(DESCRIBE_SCRAM, 0, body, flexible_req=True))
    r.i32()  # throttle
    err, _msg = r.i16(), r.compact_string()

    def cred(rr):
        m, it = rr.i8(), rr.i32()
        rr.tags()
        return m, it

    def result(rr):
        user, e, m = rr.compact_string(), rr.i16(), rr.compact_string()
        infos = rr.compact_array(cred)
        rr.tags()
        return user, (e, m, dict(infos or []))

    results = r.compact_array(result)
    return err, results


def alter(c, deletions=(), upsertions=()):
    """deletions: (name, mech); upsertions: (name, mech, iterations, salt, salted)."""
    dels = [kwire.compact_string(n) + kwire.i8(m) + kwire.TAGS for n, m in deletions]
    ups = [kwire.compact_string(n) + kwire.i8(m) + kwire.i32(i) + compact_bytes(s) + compact_bytes(p) +
           kwire.TAGS for n, m, i, s, p in upsertions]
    body = kwire.compact_array(dels) + kwire.compact_array(ups) + kwire.TAGS
    r = kwire.Reader(c.call(ALTER_SCRAM, 0, body, flexible_req=True))
    r.i32()

    def result(rr):
        user, e, m = rr.compact_string(), rr.i16(), rr.compact_string()
        rr.tags()
        return user, (e, m)

    return r.compact_array(result)


def salted(password, salt, iterations, mech=SHA512):
    return hashlib.pbkdf2_hmac("sha512" if mech == SHA512 else "sha256", password.encode(), salt,
                               iterations)


def login(mk, key, secret):
    c = mk.wire()
    err, msg, _ = sasl_authenticate_plain(c, key, secret)
    assert err == 0, msg
    return c


@pytest.fixture(scope="module")
def two(module_cluster):
    mk = module_cluster
    _, ka, sa = new_tenant(mk, "scrama")
    _, kb, sb = new_tenant(mk, "scramb")
    return mk, (ka, sa), (kb, sb)


@pytest.mark.timeout(120)
def test_describe_own_keys_only(two):
    mk, (ka, sa), (kb, _) = two
    c = login(mk, ka, sa)
    err, res = describe(c, None)
    assert err == 0
    assert dict(res) == {ka: (0, None, {SHA256: 4096, SHA512: 4096})}
    err, res = describe(c, [ka, kb, "NOSUCHUSER"])
    res = dict(res)
    assert res[ka][0] == 0
    # another tenant's key answers exactly as an unknown user
    for u in (kb, "NOSUCHUSER"):
        assert res[u][0] == RESOURCE_NOT_FOUND and res[u][2] == {}
        assert res[u][1] == "Attempt to describe a user credential that does not exist: " + u
    err, res = describe(c, [ka, "NOSUCHUSER", ka])
    assert [(u, e) for u, (e, _, _) in res] == [(ka, DUPLICATE_RESOURCE), ("NOSUCHUSER", RESOURCE_NOT_FOUND)]


@pytest.mark.timeout(180)
def test_alter_then_scram_login(two):
    mk, (ka, sa), (kb, sb) = two
    c = login(mk, ka, sa)
    new_key = "SCRAMAPIKEY00001"
    password = "pw-" + os.urandom(12).hex()
    salt = os.urandom(24)
    res = dict(alter(c, upsertions=[(new_key, SHA512, 8192, salt, salted(password, salt, 8192))]))
    assert res == {new_key: (0, None)}
    err, d = describe(c, [new_key])
    assert dict(d)[new_key] == (0, None, {SHA512: 8192})
    # the same StoredKey/ServerKey a Kafka broker would derive: a real client logs in with it
    creds = sasl(new_key, password, "SCRAM-SHA-512")
    assert isinstance(ck_topics(mk, creds), set)
    assert ck_auth_error(mk, sasl(new_key, password + "x", "SCRAM-SHA-512"))
    assert ck_auth_error(mk, sasl(new_key, password, "SCRAM-SHA-256"))  # no SHA-256 credential
    st, t = http(mk, "GET", "/v1/tenants/scrama")
    assert st == 200 and new_key in t["keys"]

    # the other tenant neither sees nor changes it
    cb = login(mk, kb, sb)
    _, d = describe(cb, None)
    assert new_key not in dict(d)
    assert dict(describe(cb, [new_key])[1])[new_key][0] == RESOURCE_NOT_FOUND
    assert dict(alter(cb, deletions=[(new_key, SHA512)]))[new_key][0] == RESOURCE_NOT_FOUND
    s2 = os.urandom(16)
    assert dict(alter(cb, upsertions=[(new_key, SHA512, 4096, s2, salted("evil", s2, 4096))]))[new_key][0] \
        == UNACCEPTABLE_CREDENTIAL
    assert isinstance(ck_topics(mk, creds), set)  # still the old password

    # Kafka's errors
    sp = salted(password, salt, 4096)
    res = dict(alter(c, upsertions=[("SCRAMAPIKEY00002", 3, 4096, salt, sp),
                                    ("SCRAMAPIKEY00003", SHA512, 4095, salt, sp),
                                    ("SCRAMAPIKEY00004", SHA512, 16385, salt, sp),
                                    ("not-a-key-id", SHA512, 4096, salt, sp),
                                    ("SCRAMAPIKEY00005", SHA512, 4096, salt, sp)],
                     deletions=[("SCRAMAPIKEY00005", SHA256), ("SCRAMAPIKEY00006", SHA256)]))
    assert res["SCRAMAPIKEY00002"][0] == UNSUPPORTED_SASL_MECHANISM
    assert res["SCRAMAPIKEY00003"] == (UNACCEPTABLE_CREDENTIAL, "Too few iterations")
    assert res["SCRAMAPIKEY00004"] == (UNACCEPTABLE_CREDENTIAL, "Too many iterations")
    assert res["not-a-key-id"][0] == UNACCEPTABLE_CREDENTIAL
    assert res["SCRAMAPIKEY00005"][0] == DUPLICATE_RESOURCE
    assert res["SCRAMAPIKEY00006"][0] == RESOURCE_NOT_FOUND
    _, d = describe(c, None)
    assert set(dict(d)) == {ka, new_key}  # none of the failed ones was created

    # add SHA-256 too, then delete both mechanisms: the key is revoked
    s3 = os.urandom(16)
    assert dict(alter(c, upsertions=[(new_key, SHA256, 4096, s3, salted(password, s3, 4096, SHA256))])) \
        == {new_key: (0, None)}
    assert dict(describe(c, [new_key])[1])[new_key] == (0, None, {SHA256: 4096, SHA512: 8192})
    assert isinstance(ck_topics(mk, sasl(new_key, password, "SCRAM-SHA-256")), set)
    assert dict(alter(c, deletions=[(new_key, SHA512)])) == {new_key: (0, None)}
    assert ck_auth_error(mk, creds)
    assert dict(alter(c, deletions=[(new_key, SHA256)])) == {new_key: (0, None)}
    assert dict(describe(c, [new_key])[1])[new_key][0] == RESOURCE_NOT_FOUND
    st, t = http(mk, "GET", "/v1/tenants/scrama")
    assert new_key not in t["keys"]
    mk.assert_alive("scram api")


@pytest.mark.timeout(180)
def test_credentials_survive_restart(minikora, tmp_path):
    mk = minikora(data_dir=tmp_path / "d", ephemeral=False)
    _, key, secret = new_tenant(mk, "scramr")
    c = login(mk, key, secret)
    salt = os.urandom(20)
    assert dict(alter(c, upsertions=[(key, SHA512, 10000, salt, salted("new-pw", salt, 10000))])) \
        == {key: (0, None)}
    c.close()
    mk.restart()
    # SHA-512 now has the new password (its own salt and iterations); SHA-256 kept the old one
    assert isinstance(ck_topics(mk, sasl(key, "new-pw", "SCRAM-SHA-512")), set)
    assert isinstance(ck_topics(mk, sasl(key, secret, "SCRAM-SHA-256")), set)
    c = login(mk, key, secret)  # PLAIN checks the SHA-256 credential
    assert dict(describe(c, None)[1]) == {key: (0, None, {SHA256: 4096, SHA512: 10000})}
