"""Section 1: the raw oslo.messaging limit on this broker, no volume worker involved.

Run as a script it is the no-op RPC server (a separate process, threading
executor); imported, ``measure()`` drives it from the bench process.
"""

import os
import subprocess
import sys
import threading
import time
import uuid

SECTION = '1 raw oslo.messaging'


class NoopEndpoint:
    def __init__(self):
        self.casts = 0
        self._lock = threading.Lock()

    def noop(self, ctxt):
        return None

    def tick(self, ctxt):
        with self._lock:
            self.casts += 1

    def count(self, ctxt):
        return self.casts


def serve(conf_path, topic, server, ready_path):
    import warnings
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    from volume_worker.testing import process
    conf = process.client_config(conf_path)
    import oslo_messaging as messaging
    transport = messaging.get_rpc_transport(conf)
    target = messaging.Target(topic=topic, server=server)
    rpc_server = messaging.get_rpc_server(transport, target, [NoopEndpoint()])
    rpc_server.start()
    with open(ready_path, 'w') as f:
        f.write(rpc_server.executor_type)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


class RawServer:
    """The no-op server as a child process on a unique topic."""

    def __init__(self, conf_path, state_dir):
        self.conf_path = conf_path
        self.topic = 'bench-raw-%s' % uuid.uuid4().hex[:8]
        self.server = 'raw'
        self.ready = os.path.join(state_dir, 'raw-server.ready')
        self.log_path = os.path.join(state_dir, 'raw-server.log')
        self.proc = None
        self.executor = None

    def start(self, timeout=60):
        self._log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), self.conf_path,
             self.topic, self.server, self.ready],
            stdout=self._log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONWARNINGS='ignore'))
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('raw RPC server did not start: %s' %
                                   open(self.log_path).read()[-2000:])
            time.sleep(0.05)
        with open(self.ready) as f:
            self.executor = f.read().strip()
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self._log.close()


def measure(conf, conf_path, state_dir, results, calls, concurrent_calls,
            casts, concurrency=32):
    """Sequential and concurrent no-op calls, casts consumed per second."""
    import oslo_messaging as messaging
    from common import percentile, run_threads

    server = RawServer(conf_path, state_dir).start()
    transport = messaging.get_rpc_transport(conf)
    try:
        client = messaging.get_rpc_client(
            transport, messaging.Target(topic=server.topic,
                                        server=server.server), timeout=30)
        ctxt = {}
        for _ in range(20):  # connections, queues, reply queue
            client.call(ctxt, 'noop')

        latencies = []
        started = time.monotonic()
        for _ in range(calls):
            t0 = time.monotonic()
            client.call(ctxt, 'noop')
            latencies.append(time.monotonic() - t0)
        wall = time.monotonic() - started
        results.add(SECTION, 'call sequential rate', calls / wall, 'calls/s')
        results.add(SECTION, 'call sequential p50',
                    percentile(latencies, 50) * 1e3, 'ms')
        results.add(SECTION, 'call sequential p99',
                    percentile(latencies, 99) * 1e3, 'ms')

        per_thread = max(1, concurrent_calls // concurrency)
        conc_lat = []
        lock = threading.Lock()

        def caller():
            mine = []
            for _ in range(per_thread):
                t0 = time.monotonic()
                client.call(ctxt, 'noop')
                mine.append(time.monotonic() - t0)
            with lock:
                conc_lat.extend(mine)
        wall = run_threads(caller, concurrency)
        results.add(SECTION, 'call %d concurrent rate' % concurrency,
                    len(conc_lat) / wall, 'calls/s')
        results.add(SECTION, 'call %d concurrent p50' % concurrency,
                    percentile(conc_lat, 50) * 1e3, 'ms')

        base = client.call(ctxt, 'count')
        started = time.monotonic()
        for _ in range(casts):
            client.cast(ctxt, 'tick')
        sent = time.monotonic() - started
        deadline = time.monotonic() + 120
        while client.call(ctxt, 'count') - base < casts:
            if time.monotonic() > deadline:
                raise TimeoutError('raw casts were not all consumed')
            time.sleep(0.005)
        wall = time.monotonic() - started
        results.add(SECTION, 'cast publish rate', casts / sent, 'casts/s')
        results.add(SECTION, 'cast consumed rate', casts / wall, 'casts/s')
        results.note('Raw RPC server executor: %s (not monkey-patched).'
                     % server.executor)
    finally:
        transport.cleanup()
        server.stop()


if __name__ == '__main__':
    serve(*sys.argv[1:5])
