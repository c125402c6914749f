"""/healthz of a real worker: every check passes, and the broker check fails
within seconds when the worker loses its broker and passes again after.

The shared RabbitMQ stays up (other tests use it): the worker reaches it
through a TCP proxy on loopback that the test cuts (every connection
closed, new ones refused) and restores, which is what a broker outage
looks like from the worker.
"""

import json
import os
import select
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from volume_worker.testing import process
from volume_worker.testing import state


class TcpProxy:
    """Relays 127.0.0.1:<port> to the broker; ``cut()`` and ``restore()`` it."""

    def __init__(self, upstream=('127.0.0.1', 5672)):
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets = []
        self._listener = None
        self.restore()

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,),
                         daemon=True).start()

    def cut(self):
        """Refuse new connections and drop the open ones."""
        listener, self._listener = self._listener, None
        listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        if self._listener is not None:
            self.cut()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            threading.Thread(target=self._relay, args=(client, server),
                             daemon=True).start()

    @staticmethod
    def _relay(a, b):
        peers = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def get(url, timeout=10):
    """(HTTP code, body) of a GET, error codes included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start_worker(tmp_path, executor, transport_url=None, **kw):
    state_dir = str(tmp_path / 'state')
    port = free_port()
    extra = {}
    if transport_url:
        extra['transport_url'] = transport_url
    conf_path, settings = process.write_config(
        state_dir, executor=executor, extra_default=extra,
        sections={'health': {'bind': '127.0.0.1:%d' % port},
                  # Reconnect soon after the proxy is back: what is tested
                  # is the health page, not oslo.messaging's back-off.
                  'oslo_messaging_rabbit': {'rabbit_interval_max': '2'}},
        **kw)
    worker = process.WorkerProcess(conf_path).start()
    return worker, 'http://127.0.0.1:%d' % port, settings


def wait_health(url, status, timeout):
    seen = {}

    def reached():
        code, body = get(url + '/healthz')
        seen['last'] = (code, body)
        return json.loads(body)['status'] == status
    state.wait_until(reached, timeout,
                     'healthz %s (last: %s)' % (status, seen.get('last')))
    return seen['last']


@pytest.fixture(params=['eventlet', 'threading'])
def executor(request):
    return request.param


def test_healthz_follows_the_broker(tmp_path, executor):
    proxy = TcpProxy()
    worker, url, settings = start_worker(
        tmp_path, executor,
        transport_url='rabbit://guest:guest@127.0.0.1:%d/' % proxy.port)
    backend = settings['backends'][0]
    try:
        code, body = wait_health(url, 'pass', 30)
        page = json.loads(body)
        assert code == 200
        assert set(page['checks']) == {
            'database:write', 'broker:%s' % backend, 'driver:%s' % backend,
            'heartbeat:%s' % backend, 'recovery:%s' % backend}
        for name, (entry,) in page['checks'].items():
            assert entry['status'] == 'pass', (name, entry)

        proxy.cut()
        cut_at = time.monotonic()
        code, body = wait_health(url, 'fail', 15)
        took = time.monotonic() - cut_at
        assert code == 503
        checks = json.loads(body)['checks']
        assert checks['broker:%s' % backend][0]['status'] == 'fail'
        assert checks['database:write'][0]['status'] == 'pass'
        assert took < 10, 'healthz took %.1fs to fail' % took

        proxy.restore()
        code, body = wait_health(url, 'pass', 60)
        assert code == 200
        # oslo.messaging's reconnections were counted.
        from prometheus_client import parser
        code, text = get(url + '/metrics')
        reconnects = [s.value for f in parser.text_string_to_metric_families(
            text) for s in f.samples
            if s.name == 'volume_worker_broker_reconnects_total']
        assert reconnects and reconnects[0] >= 1
    finally:
        worker.stop()
        proxy.close()


def test_healthz_is_off_by_default_and_serves_only_its_pages(tmp_path):
    worker, url, _ = start_worker(tmp_path, 'eventlet')
    try:
        assert get(url + '/nothing-here')[0] == 404
        assert 'Health and metrics on %s/healthz' % url in worker.log_text()
    finally:
        worker.stop()
    conf_path, _ = process.write_config(str(tmp_path / 'off'))
    off = process.WorkerProcess(conf_path).start()
    try:
        assert 'Health and metrics on' not in off.log_text()
    finally:
        off.stop()


def test_metrics_page_parses_and_counts_a_create(tmp_path):
    from prometheus_client import parser
    from tests.functional.conftest import start_harness
    port = free_port()
    h = start_harness(tmp_path, sections={
        'health': {'bind': '127.0.0.1:%d' % port}})
    url = 'http://127.0.0.1:%d/metrics' % port
    backend = h.backend()

    def scrape():
        code, body = get(url)
        assert code == 200
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in parser.text_string_to_metric_families(body)
                for s in f.samples}

    def value(samples, name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    try:
        before = scrape()
        volume = h.new_volume()
        h.api.create_volume(h.ctx, backend, volume)
        h.wait_status(volume.id, ['available'])
        # The flow's end is counted once Finish has saved the status.
        state.wait_until(lambda: value(
            scrape(), 'volume_worker_operations_finished_total',
            backend=backend, family='create_volume',
            outcome='succeeded') == value(
            before, 'volume_worker_operations_finished_total',
            backend=backend, family='create_volume',
            outcome='succeeded') + 1, 10, 'create counted')
        after = scrape()
        family = dict(backend=backend, family='create_volume')
        assert value(after, 'volume_worker_operations_started_total',
                     **family) == value(
            before, 'volume_worker_operations_started_total', **family) + 1
        assert value(after, 'volume_worker_operation_duration_seconds_count',
                     **family) >= 1
        assert value(after, 'volume_worker_operations_in_flight',
                     **family) == 0
        assert value(after, 'volume_worker_driver_call_duration_seconds_count',
                     backend=backend, method='create_volume') >= 1
        assert value(after, 'volume_worker_journal_rows',
                     backend=backend) == 0
        assert value(after, 'volume_worker_backend_up', backend=backend,
                     state='up') == 1
        assert any(name == 'volume_worker_pool_capacity_gb'
                   for name, _ in after)
    finally:
        h.close()
        h.worker.stop()
