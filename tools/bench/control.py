"""Sections 2, 3 and 6: create/delete through a real worker over RabbitMQ.

Latency is cast -> the ``volume.<op>.end`` notification carrying the
volume's id, as seen by one event consumer in this process; no polling.
"""

import os
import subprocess
import threading
import time
import uuid

from common import cpu_seconds, percentile, rss_kib, run_threads

SECTION = '2 control path'
CONC_SECTION = '3 concurrency'
MEM_SECTION = '6 memory'


class Driver:
    """Sends creates/deletes to one backend and waits for their completions."""

    def __init__(self, conf, collector, backend):
        from volume_worker import rpc, rpcapi
        self.api = rpcapi.VolumeAPI(conf)
        self.ctxt = rpc.admin_context()
        self.collector = collector
        self.backend = backend

    def send_create(self, volume_id):
        from volume_worker import objects
        self.collector.expect('volume.create.end', volume_id)
        t0 = time.monotonic()
        self.api.create_volume(self.ctxt, self.backend, objects.Volume(
            id=volume_id, size=1, host=self.backend))
        return t0

    def send_delete(self, volume_id):
        self.collector.expect('volume.delete.end', volume_id)
        t0 = time.monotonic()
        self.api.delete_volume(self.ctxt, self.backend, volume_id)
        return t0

    def closed_loop(self, op, ids, clients, timeout=60):
        """``clients`` senders, each sending one op and waiting for its end."""
        send = self.send_create if op == 'create' else self.send_delete
        event = 'volume.%s.end' % op
        latencies = []
        lock = threading.Lock()
        queue = list(ids)
        failures = []

        def client():
            mine = []
            try:
                while True:
                    with lock:
                        if not queue:
                            break
                        volume_id = queue.pop()
                    t0 = send(volume_id)
                    mine.append(self.collector.wait(event, volume_id,
                                                    timeout) - t0)
            except Exception as exc:
                failures.append(exc)
            with lock:
                latencies.extend(mine)
        wall = run_threads(client, clients)
        if failures:
            raise failures[0]
        return len(latencies) / wall, latencies, wall

    def burst(self, op, ids, timeout=120):
        """Cast every op at once, then wait for every end; (rate, lats, wall)."""
        send = self.send_create if op == 'create' else self.send_delete
        event = 'volume.%s.end' % op
        started = time.monotonic()
        sent = [(volume_id, send(volume_id)) for volume_id in ids]
        latencies = []
        last = started
        for volume_id, t0 in sent:
            done = self.collector.wait(event, volume_id, timeout)
            latencies.append(done - t0)
            last = max(last, done)
        wall = last - started
        return len(ids) / wall, latencies, wall


def _ids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


def _record(results, label, rate, latencies, unit_rate):
    results.add(SECTION, '%s rate' % label, rate, unit_rate)
    results.add(SECTION, '%s p50' % label, percentile(latencies, 50) * 1e3, 'ms')
    results.add(SECTION, '%s p99' % label, percentile(latencies, 99) * 1e3, 'ms')


class Profiler:
    """py-spy record of the worker while a block runs (optional)."""

    def __init__(self, pid, out_path, enabled):
        self.pid = pid
        self.out_path = out_path
        self.enabled = enabled
        self.proc = None

    def __enter__(self):
        if self.enabled:
            import shutil
            import sys
            spy = (shutil.which('py-spy') or
                   os.path.join(os.path.dirname(sys.executable), 'py-spy'))
            if not os.path.exists(spy):
                raise RuntimeError('--profile needs py-spy in the venv '
                                   '(.venv/bin/pip install py-spy)')
            self.proc = subprocess.Popen(
                [spy, 'record', '-p', str(self.pid), '-r', '250', '--format',
                 'raw', '-o', self.out_path, '--nonblocking'],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # py-spy attaches
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.send_signal(2)  # SIGINT: py-spy writes its output
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure_control(conf, collector, worker, backend, results, n, clients=32,
                    profile_path=None, tag=''):
    """Closed-loop and burst create/delete; worker CPU and RSS around them."""
    from raw_rpc import SECTION as RAW
    drv = Driver(conf, collector, backend)
    pid = worker.pid
    results.add(MEM_SECTION, 'RSS idle (after start)' + tag, rss_kib(pid) / 1024, 'MiB')

    # Warm up at the concurrency the run reaches (a burst): the database
    # pool opens its overflow connections, each with its own SQLite page
    # cache, on the first concurrent burst; growth measured after a gentle
    # warm-up counts that one-time step as growth.
    warm = _ids(min(200, n))
    drv.burst('create', warm)
    drv.burst('delete', warm)
    rss_warm = rss_kib(pid) / 1024
    results.add(MEM_SECTION, 'RSS after warm-up (%d ops)%s' % (2 * len(warm), tag),
                rss_warm, 'MiB')

    ops = 0
    singles = _ids(n)
    rate, lat, _ = drv.closed_loop('create', singles, 1)
    _record(results, 'create 1 client' + tag, rate, lat, 'vol/s')
    create_p50 = percentile(lat, 50)
    rate, lat, _ = drv.closed_loop('delete', singles, 1)
    _record(results, 'delete 1 client' + tag, rate, lat, 'vol/s')
    ops += 2 * n

    many = _ids(n)
    rate32, lat, _ = drv.closed_loop('create', many, clients)
    _record(results, 'create %d clients%s' % (clients, tag), rate32, lat, 'vol/s')
    rate, lat, _ = drv.closed_loop('delete', many, clients)
    _record(results, 'delete %d clients%s' % (clients, tag), rate, lat, 'vol/s')
    ops += 2 * n

    burst = _ids(n)
    with Profiler(pid, profile_path, profile_path is not None):
        cpu_p = cpu_seconds(pid)
        burst_rate, lat, _ = drv.burst('create', burst)
        cpu1 = cpu_seconds(pid)
        _record(results, 'create burst %d%s' % (n, tag), burst_rate, lat, 'vol/s')
        rate, lat, _ = drv.burst('delete', burst)
        cpu2 = cpu_seconds(pid)
    _record(results, 'delete burst %d%s' % (n, tag), rate, lat, 'vol/s')
    ops += 2 * n
    results.add(SECTION, 'worker CPU per create' + tag, (cpu1 - cpu_p) / n * 1e3,
                'ms')
    results.add(SECTION, 'worker CPU per delete' + tag, (cpu2 - cpu1) / n * 1e3,
                'ms')

    time.sleep(1.5)  # let the periodic report settle
    rss_end = rss_kib(pid) / 1024
    results.add(MEM_SECTION, 'RSS after %d more ops%s' % (ops, tag), rss_end, 'MiB')
    growth = rss_end - rss_warm
    results.add(MEM_SECTION, 'RSS growth after warm-up' + tag, growth, 'MiB',
                '<= 5 MiB (noise)', growth <= 5)

    raw_cast = results.get(RAW, 'cast consumed rate')
    raw_p50 = results.get(RAW, 'call sequential p50')
    best = max(burst_rate, rate32)
    if raw_cast:
        ratio = best / raw_cast
        results.add(SECTION, 'ratio create throughput / raw cast' + tag, ratio, 'x',
                    '>= 0.5', ratio >= 0.5)
    if raw_p50:
        ratio = create_p50 * 1e3 / raw_p50
        results.add(SECTION, 'ratio create p50 (1 client) / raw call p50' + tag,
                    ratio, 'x', '<= 3', ratio <= 3)


def measure_concurrency(conf, collector, worker, backend, results, executor,
                        n=64, delay=1.0):
    """``n`` creates whose driver call sleeps ``delay`` s: all done by when?"""
    drv = Driver(conf, collector, backend)
    ids = _ids(n)
    _, lat, wall = drv.burst('create', ids, timeout=60)
    results.add(CONC_SECTION, '%d creates x %gs driver delay, %s' % (
        n, delay, executor), wall, 's', '<= 2 s', wall <= 2.0)
    return wall
