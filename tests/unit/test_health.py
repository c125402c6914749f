"""The health checks' mechanics: probes with deadlines, the bind option."""

import socket
import threading
import time

import pytest

from volume_worker import health


def test_a_hung_probe_fails_at_its_deadline_and_is_not_started_twice():
    release = threading.Event()
    calls = []

    def hangs():
        calls.append(1)
        release.wait(10)
        return 'late'

    # fresh: the late answer must still be the one read below, however
    # slowly a loaded machine gets there.
    probe = health.Probe(hangs, timeout=0.2, fresh=60)
    began = time.monotonic()
    status, output, _ = probe.result()
    assert status == health.FAIL and 'no answer within 0.2s' in output
    assert time.monotonic() - began < 1
    status, output, _ = probe.result()  # still the same probe in flight
    assert status == health.FAIL
    assert len(calls) == 1
    while time.monotonic() - began < 0.3:  # surely past its deadline
        time.sleep(0.01)
    release.set()
    for _ in range(100):
        if probe._running is None:
            break
        time.sleep(0.01)
    status, output, took = probe.result()
    # It answered, but later than its deadline.
    assert status == health.WARN and 'answered after' in output
    assert len(calls) == 1  # the late answer is fresh: reused


def test_a_probe_that_raises_fails_with_the_reason():
    def broken():
        raise RuntimeError('database is locked')
    status, output, _ = health.Probe(broken, timeout=1).result()
    assert (status, output) == (health.FAIL,
                                'RuntimeError: database is locked')


def test_a_fresh_answer_is_reused_then_asked_again():
    calls = []
    probe = health.Probe(lambda: calls.append(1) or 'ok', timeout=1,
                         fresh=0.1)
    assert probe.result()[:2] == (health.PASS, 'ok')
    assert probe.result()[:2] == (health.PASS, 'ok')
    assert len(calls) == 1
    time.sleep(0.15)
    probe.result()
    assert len(calls) == 2


@pytest.mark.parametrize('value, expected', [
    ('8778', (socket.AF_INET, '127.0.0.1', 8778)),
    (':8778', (socket.AF_INET, '127.0.0.1', 8778)),
    ('10.0.0.5:9000', (socket.AF_INET, '10.0.0.5', 9000)),
    ('[::1]:8778', (socket.AF_INET6, '::1', 8778)),
    ('localhost:8778', (socket.AF_INET, 'localhost', 8778)),
])
def test_bind_values(value, expected):
    assert health.parse_bind(value) == expected


def test_a_bad_bind_says_what_to_write():
    with pytest.raises(ValueError, match='HOST:PORT or PORT'):
        health.parse_bind('127.0.0.1:http')


def test_a_self_call_stuck_behind_a_full_executor_warns(monkeypatch):
    import types
    from volume_worker import metrics
    conf = types.SimpleNamespace(executor_thread_pool_size=2, host='h',
                                 health=types.SimpleNamespace(
                                     check_timeout=1))
    monkeypatch.setattr(health.db, 'utcnow', lambda: None)
    checks = health.HealthChecks(conf, worker=None)
    monkeypatch.setattr(metrics, 'in_flight', {
        1: ('h@b', 'create_volume', 'volume', 'v1', 0),
        2: ('h@other', 'create_volume', 'volume', 'v2', 0)})
    failed = (health.FAIL, 'no answer within 1.0s')
    assert checks._busy('h@b', *failed) == failed  # 1 of 2 slots
    metrics.in_flight[3] = ('h@b', 'create_volume', 'volume', 'v3', 0)
    status, output = checks._busy('h@b', *failed)
    assert status == health.WARN and '2 operations running' in output
