"""Is this worker healthy? The checks behind ``/healthz``, and the HTTP listener serving them.

Each check answers pass, warn or fail with a short reason, in the shape of
the IETF draft "Health Check Response Format for HTTP APIs"
(``application/health+json``); the page's HTTP code is 200 unless a check
fails (503). Checks that wait on the outside world (a database write, a
round trip through the worker's own queue) run in a background thread of
their own with a deadline: a hung broker turns its check to fail after
``[health] check_timeout`` seconds and holds neither the page, nor the
heartbeat, nor another check. A probe still running when the next request
comes is not started twice; the request says how long it has waited.
"""

import http.server
import ipaddress
import json
import socket
import threading
import time

from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import timestamps

LOG = logging.getLogger(__name__)

PASS, WARN, FAIL = 'pass', 'warn', 'fail'
_RANK = {PASS: 0, WARN: 1, FAIL: 2}
CONTENT_TYPE = 'application/health+json'

# A probe's result is reused this long, so a burst of requests costs one
# database write and one round trip per backend.
FRESH = 1.0
# Heartbeat age, in report intervals: warn beyond the first, fail beyond
# the second (where `volume-worker-manage service list` says "down").
HEARTBEAT_WARN, HEARTBEAT_FAIL = 2, 3


class Probe:
    """One check that waits on something outside the process, run in the background."""

    def __init__(self, fn, timeout, fresh=FRESH):
        self.fn = fn
        self.timeout = timeout
        self.fresh = fresh
        self._lock = threading.Lock()
        self._running = None  # the Event of the probe in flight
        self._started = 0.0
        self._result = None  # (status, output, seconds taken, finished at)

    def result(self):
        """(status, output, seconds): waits at most ``timeout`` for a fresh answer."""
        with self._lock:
            now = time.monotonic()
            if (self._running is None and self._result is not None and
                    now - self._result[3] < self.fresh):
                return self._result[:3]
            if self._running is None:
                self._running = threading.Event()
                self._started = now
                concurrency.spawn(self._run, self._running)
            running, started = self._running, self._started
        running.wait(max(0.0, started + self.timeout - time.monotonic()))
        if running.is_set():
            return self._result[:3]
        waited = time.monotonic() - started
        return (FAIL, 'no answer within %.1fs (waiting for %.1fs)'
                % (self.timeout, waited), waited)

    def _run(self, running):
        began = time.monotonic()
        try:
            status, output = PASS, self.fn()
        except Exception as exc:
            status, output = FAIL, _reason(exc)
        took = time.monotonic() - began
        if status == PASS and took > self.timeout:
            status, output = WARN, 'answered after %.1fs' % took
        with self._lock:
            self._result = (status, output, took, time.monotonic())
            self._running = None
        running.set()


def _reason(exc):
    text = ' '.join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + '...'
    return '%s: %s' % (type(exc).__name__, text) if text else \
        type(exc).__name__


class HealthChecks:
    """The checks of one worker process (``service.WorkerService``)."""

    def __init__(self, conf, worker):
        self.conf = conf
        self.worker = worker
        # A backend has recovered in this process when its recovered_at
        # is later than this (the row keeps the last process's time).
        self.started_at = db.utcnow()
        self.timeout = conf.health.check_timeout
        self._probes = {}
        self._api = None

    def _probe(self, key, fn):
        probe = self._probes.get(key)
        if probe is None:
            probe = self._probes[key] = Probe(fn, self.timeout)
        return probe

    def backends(self):
        """{backend name: its BackendService, or None while it starts}."""
        running = {b.backend_name: b for b in list(self.worker.backends)}
        return {name: running.get(name)
                for name in self.conf.enabled_backends}

    def run(self):
        """(overall status, {check name: [result]})."""
        checks = {}
        status, output, took = self._probe(
            'database', self._database_write).result()
        checks['database:write'] = _entry(status, output, took, 's')
        for name, backend in self.backends().items():
            host = '%s@%s' % (self.conf.host, name)
            if backend is None:
                for kind in ('driver', 'recovery', 'broker'):
                    checks['%s:%s' % (kind, host)] = _entry(
                        FAIL, 'starting: driver set-up and recovery not '
                              'finished')
                continue
            checks['driver:%s' % host] = _entry(*self._driver(backend))
            checks['recovery:%s' % host] = _entry(*self._recovery(backend))
            checks['heartbeat:%s' % host] = _entry(
                *self._heartbeat(backend), unit='s')
            status, output, took = self._probe(
                ('broker', host), lambda b=backend: self._self_call(b)
            ).result()
            if status == FAIL:
                status, output = self._busy(host, status, output)
            checks['broker:%s' % host] = _entry(status, output, took, 's')
        overall = max((e[0]['status'] for e in checks.values()),
                      key=_RANK.get, default=PASS)
        return overall, checks

    # -- the checks --------------------------------------------------------

    def _database_write(self):
        db.health_write([b.service.id for b in self.backends().values()
                         if b is not None])
        return 'a write transaction committed'

    def _self_call(self, backend):
        """A call to this backend's own queue, served by this process.

        Any reply, an error included, went through the broker both ways
        and was taken by this worker's consumer: a consumer that died
        silently, or a broker that is away, gets no reply.
        """
        import oslo_messaging as messaging
        from volume_worker import rpc
        if self._api is None:
            from volume_worker import rpcapi
            api = rpcapi.VolumeAPI(self.conf, transport=self.worker.transport,
                                   timeout=self.timeout)
            api.client = api.client.prepare(retry=0)
            self._api = api
        try:
            self._api.get_capabilities(rpc.admin_context(), backend.host)
        except messaging.MessagingTimeout:
            raise RuntimeError('no reply from its own queue within %.1fs'
                               % self.timeout)
        except messaging.RemoteError as exc:
            return 'replied with an error: %s' % exc.exc_type
        except Exception as exc:
            if type(exc).__name__.endswith('_Remote'):
                return 'replied with an error: %s' % type(exc).__name__
            raise
        return 'round trip through its own queue'

    def _busy(self, host, status, output):
        """A self-call queued behind a full executor: busy, not dead (warn).

        Each RPC server runs ``executor_thread_pool_size`` requests at a
        time; the rest, the self-call too, wait in the queue.
        """
        from volume_worker import metrics
        running = sum(1 for entry in list(metrics.in_flight.values())
                      if entry[0] == host)
        if running >= self.conf.executor_thread_pool_size:
            return WARN, '%s; %d operations running (executor_thread_pool_' \
                'size): busy' % (output, running)
        return status, output

    def _driver(self, backend):
        reporter = backend.reporter
        if not backend.driver.initialized:
            return FAIL, 'driver %s did not set up: %s' % (
                type(backend.driver).__name__, reporter.state_reason)
        report = getattr(reporter, 'last_report', None) or {}
        state = report.get('backend_state')
        if state in (None, 'up'):
            return PASS, 'driver %s ready' % type(backend.driver).__name__
        return (FAIL if state == 'down' else WARN,
                'backend_state %s: %s' % (state, reporter.state_reason))

    def _recovery(self, backend):
        recovered = backend.service.recovered_at
        if recovered is not None and recovered.tzinfo is not None:
            recovered = recovered.replace(tzinfo=None)  # UTC, as utcnow()
        if recovered is not None and recovered >= self.started_at:
            return PASS, 'journal recovered at %s' % timestamps.iso(recovered)
        return FAIL, 'journal recovery not finished'

    def _heartbeat(self, backend):
        last = getattr(backend, 'last_heartbeat', None)
        if last is None:
            return WARN, 'no heartbeat yet', None
        age = time.monotonic() - last
        interval = self.conf.report_interval
        if age > HEARTBEAT_FAIL * interval:
            status = FAIL
        elif age > HEARTBEAT_WARN * interval:
            status = WARN
        else:
            status = PASS
        return status, 'last heartbeat %.1fs ago' % age, age

    def page(self):
        """(HTTP code, content type, body) of ``/healthz``."""
        status, checks = self.run()
        body = {'status': status, 'serviceId': self.conf.host,
                'description': 'volume-worker', 'checks': checks}
        return (503 if status == FAIL else 200, CONTENT_TYPE,
                json.dumps(body, indent=2, sort_keys=True).encode() + b'\n')


def _entry(status, output, observed=None, unit=None):
    entry = {'status': status, 'output': output}
    if observed is not None:
        entry['observedValue'] = round(observed, 4)
        entry['observedUnit'] = unit
    return [entry]


# -- the HTTP listener -------------------------------------------------------

def parse_bind(value):
    """``[health] bind`` as (family, host, port); a bare port is loopback."""
    value = value.strip()
    host, sep, port = value.rpartition(':')
    if not sep:
        host, port = '127.0.0.1', value
    host = host.strip('[]') or '127.0.0.1'
    try:
        port = int(port)
    except ValueError:
        raise ValueError('[health] bind %r: give HOST:PORT or PORT' % value)
    try:
        family = (socket.AF_INET6 if ipaddress.ip_address(host).version == 6
                  else socket.AF_INET)
    except ValueError:  # a name
        family = socket.AF_INET
    return family, host, port


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    routes = {}


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'volume-worker'

    def do_GET(self):
        route = self.server.routes.get(self.path.split('?', 1)[0])
        if route is None:
            code, ctype, body = 404, 'text/plain', b'not found: try ' + \
                ' '.join(sorted(self.server.routes)).encode() + b'\n'
        else:
            try:
                code, ctype, body = route()
            except Exception:
                LOG.exception('%s failed', self.path)
                code, ctype, body = 500, 'text/plain', b'internal error\n'
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        LOG.debug('%s %s', self.address_string(), fmt % args)


class Listener:
    """The HTTP server of ``[health] bind``, in a thread of its own.

    Its accept loop is a plain blocking ``accept()``, green under eventlet:
    ``serve_forever`` would poll with the native selector ``socketserver``
    chose when it was imported (before eventlet patched anything) and hold
    the whole event loop.
    """

    def __init__(self, bind, routes):
        family, host, port = parse_bind(bind)
        server_cls = type('Server', (_Server,), {'address_family': family})
        self.server = server_cls((host, port), _Handler)
        self.server.routes = dict(routes)
        self.address = self.server.server_address[:2]
        self._closed = False

    def start(self):
        concurrency.spawn(self._serve)
        return self

    def _serve(self):
        while not self._closed:
            try:
                self.server._handle_request_noblock()  # blocks in accept()
            except Exception:
                if self._closed:
                    return
                LOG.exception('Health listener: request failed')

    def close(self):
        self._closed = True
        self.server.server_close()


def serve(conf, worker):
    """Start the listener of ``[health] bind``; None when it is unset."""
    if not conf.health.bind:
        return None
    checks = HealthChecks(conf, worker)
    from volume_worker import metrics
    metrics.install(worker)
    routes = {'/healthz': checks.page, '/metrics': metrics.page}
    listener = Listener(conf.health.bind, routes).start()
    host, port = listener.address
    LOG.info('Health and metrics on http://%s:%s/healthz and /metrics',
             '[%s]' % host if ':' in host else host, port)
    return listener
