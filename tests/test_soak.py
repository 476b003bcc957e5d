"""The chaos soak's short version (the long one is `make soak`; see tests/soak.py): a seeded
chaos run of 18 mixed faults (disk-slow, disk-stall, broker-slow, net-partition, crash) under two
idempotent acks=all producers and a read_committed consumer; every acknowledged record is read
back exactly once, in order per partition, and the cluster is healthy with full ISRs after."""

import pytest

import soak


@pytest.mark.timeout(150)
def test_soak_short():
    try:
        figures = soak.run(faults=18, seed=11, rate_per_min=40.0)
    except soak.SoakError as e:
        pytest.fail(str(e))
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["out_of_order"] == 0
    assert figures["faults_injected"] >= 18
    assert figures["records_acknowledged"] > 1000
