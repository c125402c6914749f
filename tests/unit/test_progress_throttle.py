"""The shared pieces of every copy: the bandwidth throttle and progress reports."""

import os
import threading
import time

import pytest

from drivers import datapath
from drivers import throttle
from volume_worker import progress


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_unlimited_throttle_never_sleeps():
    clock = FakeClock()
    t = throttle.Throttle(0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        t.consume(1 << 30)
    assert clock.slept == []
    assert t.qemu_img_args() == []


def test_throttle_holds_the_rate_over_a_copy():
    clock = FakeClock()
    t = throttle.Throttle(10 << 20, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(50):  # 200 MiB in 4 MiB blocks at 10 MiB/s
        t.consume(4 << 20)
    elapsed = clock.now - start
    assert 19.0 <= elapsed <= 20.5


def test_throttle_is_shared_by_concurrent_copies():
    t = throttle.Throttle(8 << 20)
    with t.copy():
        assert t.qemu_img_args() == ['-r', str(8 << 20)]
        with t.copy():
            assert t.process_rate() == 4 << 20
    assert t.process_rate() == 8 << 20


def test_throttle_refuses_a_negative_limit():
    with pytest.raises(ValueError):
        throttle.Throttle(-1)


def test_real_throttle_slows_a_real_copy(tmp_path):
    src, dst = tmp_path / 'src', tmp_path / 'dst'
    data = os.urandom(3 << 20)
    src.write_bytes(data)
    dst.write_bytes(b'')
    done = []
    began = time.monotonic()
    datapath.copy_between_paths(str(src), str(dst), len(data),
                                block_size=256 << 10,
                                throttle=throttle.Throttle(4 << 20, burst=0),
                                progress=done.append)
    elapsed = time.monotonic() - began
    assert dst.read_bytes() == data
    assert sum(done) == len(data)
    assert elapsed >= 0.6  # 3 MiB at 4 MiB/s, without a burst: ~0.75 s


class Recorder:
    def __init__(self):
        self.sent = []
        self.lock = threading.Lock()

    def publish(self, event_type, payload, priority='info'):
        with self.lock:
            self.sent.append((event_type, payload))


def test_progress_publishes_percent_while_running_and_100_at_the_end():
    notifier = Recorder()
    with progress.ProgressReporter(notifier, 'volume.create',
                                   {'volume_id': 'v1'}, 1000,
                                   interval=0.02) as reporter:
        for _ in range(4):
            reporter.advance(100)
            time.sleep(0.06)
    events = {e for e, _ in notifier.sent}
    assert events == {'volume.create.progress'}
    percents = [p['percent'] for _, p in notifier.sent]
    assert percents == sorted(percents)
    assert len(set(percents)) == len(percents)  # nothing sent twice
    assert 10 in percents or 20 in percents
    assert percents[-1] == 100
    assert notifier.sent[-1][1]['volume_id'] == 'v1'
    assert notifier.sent[-1][1]['bytes_done'] == 1000


def test_progress_of_a_failed_copy_never_claims_100():
    notifier = Recorder()
    with pytest.raises(RuntimeError):
        with progress.ProgressReporter(notifier, 'image.upload', {}, 1000,
                                       interval=0.01) as reporter:
            reporter.update(500)
            time.sleep(0.05)
            raise RuntimeError('copy failed')
    assert [p['percent'] for _, p in notifier.sent] == [50]


def test_progress_survives_a_notifier_that_fails():
    class Broken:
        def publish(self, *args, **kwargs):
            raise OSError('broker gone')

    with progress.ProgressReporter(Broken(), 'x', {}, 10,
                                   interval=0.01) as reporter:
        reporter.advance(5)
        time.sleep(0.03)
    assert reporter.percent == 100
