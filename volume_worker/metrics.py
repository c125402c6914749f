"""Prometheus metrics of the worker, served as ``/metrics`` on the health listener.

Counted where things happen, at a cost of a few microseconds: each
operation (``FlowRunner`` calls ``operation_started`` and
``operation_finished``), each driver call (``flows.common.call_driver``),
each reconnection to the broker (a filter on oslo.messaging's log line).
Read when scraped, never on the hot path: journal rows pending, capacity
per pool, backend state, heartbeat age (``WorkerCollector``).
"""

import logging as std_logging
import threading
import time

import prometheus_client
from prometheus_client import core

from volume_worker.db import api as db

# Seconds: operations take milliseconds (a fake create) to minutes (a
# full copy); driver calls the same.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
           60, 300, 1800)

SUCCEEDED, REVERTED, FAILED = 'succeeded', 'reverted', 'failed'

REGISTRY = prometheus_client.REGISTRY

STARTED = prometheus_client.Counter(
    'volume_worker_operations_started', 'Operations started (resumed ones '
    'included), by family.', ['backend', 'family'])
FINISHED = prometheus_client.Counter(
    'volume_worker_operations_finished', 'Operations ended, by family and '
    'outcome: succeeded; reverted (failed, every step undone, the resource '
    'in its error status); failed (failed and its revert did not finish '
    'either: look at the resource).', ['backend', 'family', 'outcome'])
DURATION = prometheus_client.Histogram(
    'volume_worker_operation_duration_seconds', 'Time from the start of an '
    'operation\'s flow to its successful end, by family.',
    ['backend', 'family'], buckets=BUCKETS)
IN_FLIGHT = prometheus_client.Gauge(
    'volume_worker_operations_in_flight', 'Operations running now, by '
    'family.', ['backend', 'family'])
DRIVER_CALLS = prometheus_client.Histogram(
    'volume_worker_driver_call_duration_seconds', 'Time of driver calls '
    'made by operations, by method (errors included).',
    ['backend', 'method'], buckets=BUCKETS)
RECONNECTS = prometheus_client.Counter(
    'volume_worker_broker_reconnects', 'Connections to the broker '
    're-established by oslo.messaging.')


class _Family:
    """The metric children of one (backend, family), looked up once."""

    __slots__ = ('started', 'duration', 'in_flight', 'outcomes')

    def __init__(self, backend, family):
        self.started = STARTED.labels(backend, family)
        self.duration = DURATION.labels(backend, family)
        self.in_flight = IN_FLIGHT.labels(backend, family)
        self.outcomes = {outcome: FINISHED.labels(backend, family, outcome)
                         for outcome in (SUCCEEDED, REVERTED, FAILED)}


_families = {}
_driver_calls = {}

# Operations running now, for the Guru Meditation report: id -> (backend,
# family, subject type, subject id, wall-clock start).
in_flight = {}


def operation_started(backend, op):
    """Count an operation's start; returns what ``operation_finished`` needs."""
    key = (backend, op.family.operation)
    family = _families.get(key)
    if family is None:
        family = _families[key] = _Family(*key)
    family.started.inc()
    family.in_flight.inc()
    subject = op.resources.get(op.family.subject.name)
    in_flight[op.id] = (backend, op.family.operation, op.family.subject.type,
                        getattr(subject, 'id', None), time.time())
    return family, time.perf_counter()


def operation_finished(op, token, outcome):
    """Count its end; outcome None: interrupted (the process is exiting)."""
    family, started = token
    family.in_flight.dec()
    in_flight.pop(op.id, None)
    if outcome is None:
        return
    family.outcomes[outcome].inc()
    if outcome == SUCCEEDED:
        family.duration.observe(time.perf_counter() - started)


def driver_call(method, seconds):
    """Record one driver call of ``seconds`` (a bound driver method)."""
    key = (getattr(getattr(method, '__self__', None), 'host', None) or '',
           getattr(method, '__name__', '?'))
    child = _driver_calls.get(key)
    if child is None:
        child = _driver_calls[key] = DRIVER_CALLS.labels(*key)
    child.observe(seconds)


class _ReconnectCounter(std_logging.Filter):
    """Counts oslo.messaging's "Reconnected to AMQP server" lines."""

    def filter(self, record):
        if record.msg.startswith('[%(connection_id)s] Reconnected to AMQP'):
            RECONNECTS.inc()
        return True


# The rabbit driver's logger, by the name its records carry (and by its
# module's, should that change).
RABBIT_LOGGERS = ('oslo.messaging._drivers.impl_rabbit',
                  'oslo_messaging._drivers.impl_rabbit')


class WorkerCollector:
    """What is read at scrape time from a running ``service.WorkerService``."""

    def __init__(self, worker):
        self.worker = worker

    def collect(self):
        backends = list(self.worker.backends)
        state = core.GaugeMetricFamily(
            'volume_worker_backend_up', 'Whether the backend\'s driver is '
            'set up (1) or not (0); by backend_state when the capability '
            'report carries one.', labels=['backend', 'state'])
        heartbeat = core.GaugeMetricFamily(
            'volume_worker_heartbeat_age_seconds', 'Seconds since the last '
            'successful heartbeat of the backend.', labels=['backend'])
        capacity = core.GaugeMetricFamily(
            'volume_worker_pool_capacity_gb', 'Capacity per pool from the '
            'last capability report, in GiB.',
            labels=['backend', 'pool', 'kind'])
        journal = core.GaugeMetricFamily(
            'volume_worker_journal_rows', 'Operations journaled and not yet '
            'finished (running, or left by a crash until recovery).',
            labels=['backend'])
        now = time.monotonic()
        for backend in backends:
            report = backend.reporter.last_report or {}
            up = bool(backend.driver.initialized)
            label = report.get('backend_state') or ('up' if up else 'down')
            state.add_metric([backend.host, str(label)],
                             1 if up and label == 'up' else 0)
            last = getattr(backend, 'last_heartbeat', None)
            if last is not None:
                heartbeat.add_metric([backend.host], now - last)
            for pool in _pools(report):
                name = str(pool.get('pool_name') or
                           report.get('volume_backend_name') or backend.host)
                for kind in ('total', 'free', 'allocated', 'provisioned'):
                    value = pool.get('%s_capacity_gb' % kind)
                    if isinstance(value, (int, float)):
                        capacity.add_metric([backend.host, name, kind],
                                            float(value))
        try:
            counts = db.journal_counts()
        except Exception:  # the database is away: /healthz says so
            counts = None
        if counts is not None:
            for backend in backends:
                journal.add_metric([backend.host],
                                   counts.get(backend.host, 0))
        return [state, heartbeat, capacity, journal]


def _pools(report):
    pools = report.get('pools')
    if isinstance(pools, list) and pools:
        return [p for p in pools if isinstance(p, dict)]
    return [report] if report else []


_collector_lock = threading.Lock()
_collector = None


def install(worker):
    """Read ``worker`` at scrape time and count broker reconnections (once)."""
    global _collector
    with _collector_lock:
        if _collector is not None:
            _collector.worker = worker
            return
        _collector = WorkerCollector(worker)
        REGISTRY.register(_collector)
        for name in RABBIT_LOGGERS:
            std_logging.getLogger(name).addFilter(_ReconnectCounter())


def page():
    """(HTTP code, content type, body) of ``/metrics``."""
    return (200, prometheus_client.CONTENT_TYPE_LATEST,
            prometheus_client.generate_latest(REGISTRY))
