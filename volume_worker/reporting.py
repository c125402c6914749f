"""Builds the capability report of one backend and fans it out to schedulers.

The report is the driver's stats with Cinder's scheduler keys, plus per pool
``allocated_capacity_gb``, ``provisioned_capacity_gb`` and ``total_volumes``
from the pools' usage counters (``db/pool_usage.py``: a row per pool, so
the cost does not grow with the number of volumes), the filter and goodness functions, the operator's
``extra_capabilities``, ``backend_state`` and a timezone-aware timestamp.

A driver's ``get_volume_stats`` may block natively for minutes (a hung
array). It runs in a native thread of its own, and a report never waits for
it longer than ``backend_stats_timeout``: past that the report goes out with
the last stats known and ``backend_state: down`` with the reason, and the
next report after the call returns is ``up`` again. No second stats call is
started while one is still running.
"""

import copy
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import rpc
from volume_worker import timestamps

LOG = logging.getLogger(__name__)

SERVICE_NAME = 'volume'
UP = 'up'
DOWN = 'down'
USAGE_KEYS = ('allocated_capacity_gb', 'provisioned_capacity_gb',
              'total_volumes')


def utc_timestamp():
    """Now, timezone-aware, in the project's one form (``...Z``)."""
    return timestamps.utcnow()


class CapabilityReporter:
    """The reports of one backend (host@backend).

    ``probe()`` says whether a scheduler listens (see
    ``events.FanoutProbe``); ``service_facts()`` returns the service row's
    replication facts; ``extra_capabilities`` is merged into the report
    and into every pool.
    """

    def __init__(self, backend, driver, scheduler_api, probe=None,
                 extra_capabilities=None, stats_timeout=30.0,
                 service_facts=None, cluster_name=None, backend_name=None,
                 usage_backend=None):
        self.backend = backend
        # Whose volumes the allocated capacity counts: the cluster's
        # (cluster@backend) for a member of one, so every member reports
        # the same figures from the shared database.
        self.usage_backend = usage_backend or backend
        self.driver = driver
        self.scheduler_api = scheduler_api
        self.probe = probe
        self.extra_capabilities = dict(extra_capabilities or {})
        self.stats_timeout = stats_timeout
        self.service_facts = service_facts or dict
        self.cluster_name = cluster_name
        self.backend_name = backend_name or backend.partition('@')[2]
        self.last_report = None
        self.last_published = 0.0
        self.published = 0
        self.skipped = 0
        self._dirty = concurrency.event()
        self._pending = None  # the stats call still running, if any
        self._capabilities_pending = None  # and init_capabilities
        self._last_stats = {}
        self._setup_reason = None
        # False from set-up until the backend consumes its queue (the
        # service says when); a reporter of its own serves at once.
        self.serving = True
        self.state = DOWN
        self.state_reason = 'driver set-up has not finished'

    # -- what the service tells it -----------------------------------------

    def mark_dirty(self):
        """Capacity changed: publish a fresh report soon."""
        self._dirty.set()

    @property
    def dirty(self):
        return self._dirty.is_set()

    def wait_dirty(self, timeout):
        """Wait up to ``timeout`` seconds for a change; True if one came."""
        return self._dirty.wait(timeout)

    @property
    def last_stats(self):
        """The driver's last stats that came back ({} before any)."""
        return self._last_stats

    def setup_failing(self, reason):
        """Set-up failed: until the driver is ready, reports give ``reason``."""
        self._setup_reason = reason
        self.state, self.state_reason = DOWN, reason

    # -- the report --------------------------------------------------------

    def build(self):
        """The report now; waits for the driver's stats ``stats_timeout`` at most."""
        if not self.driver.initialized:
            stats = self._last_stats
            reason = self._setup_reason or 'driver set-up has not finished'
        else:
            stats, reason = self._stats()
            if not reason and not self.serving:
                reason = 'starting: recovery before serving'
        self.state = DOWN if reason else UP
        self.state_reason = reason
        report = self._complete(copy.deepcopy(stats) or self._skeleton())
        self.last_report = report
        return report

    def capabilities(self, discover=False):
        """The driver's ``init_capabilities`` (static stats and
        ``properties``), run again with ``discover``, completed as a report.

        Waits ``stats_timeout`` at most (``BackendNotResponding``); one call
        at a time runs, however many callers ask.
        """
        if discover or not self.driver.capabilities:
            if self._capabilities_pending is None:
                self._capabilities_pending = concurrency.submit_blocking(
                    self.driver.init_capabilities)
            pending = self._capabilities_pending
            waited = time.monotonic() - pending.started
            if not pending.wait(max(0.0, self.stats_timeout - waited)):
                raise exception.BackendNotResponding(
                    backend=self.backend, call='init_capabilities',
                    seconds=self.stats_timeout)
            self._capabilities_pending = None
            pending.result()
        return self._complete(copy.deepcopy(self.driver.capabilities))

    def _complete(self, report):
        """Add state, usage, scheduling keys and the timestamp to stats."""
        report['backend_state'] = self.state
        if self.state_reason:
            report['backend_state_reason'] = self.state_reason
        else:
            report.pop('backend_state_reason', None)
        self._add_usage(report)
        self._add_scheduling_keys(report)
        report['timestamp'] = utc_timestamp()
        return report

    def _stats(self):
        """(stats, None), or (the last stats, why they are not fresh)."""
        if self._pending is None:
            self._pending = concurrency.submit_blocking(
                self.driver.get_volume_stats, refresh=True)
        pending = self._pending
        waited = time.monotonic() - pending.started
        if not pending.wait(max(0.0, self.stats_timeout - waited)):
            return self._last_stats, (
                'get_volume_stats has not returned for %.0f s' %
                (time.monotonic() - pending.started))
        self._pending = None
        try:
            stats = pending.result() or {}
        except Exception as exc:
            LOG.warning('get_volume_stats of %s failed: %s', self.backend,
                        exc)
            return self._last_stats, 'get_volume_stats failed: %s' % exc
        if not isinstance(stats, dict):
            return self._last_stats, ('get_volume_stats returned %s, not a '
                                      'dict' % type(stats).__name__)
        self._last_stats = stats
        return stats, None

    def _skeleton(self):
        """What a report says before the driver ever answered."""
        return {'volume_backend_name': self.backend_name,
                'driver_version': _safe(self.driver.get_version),
                'total_capacity_gb': 0, 'free_capacity_gb': 0,
                'pools': []}

    def _add_usage(self, report):
        usage = db.backend_usage_by_pool(self.usage_backend)
        pools = report.get('pools') or []
        for pool in pools:
            found = usage.get(pool.get('pool_name'), {})
            for key in USAGE_KEYS:
                pool[key] = found.get(key, 0)
            pool.update(self.extra_capabilities)
        for key in USAGE_KEYS:
            report[key] = sum(u[key] for u in usage.values())

    def _add_scheduling_keys(self, report):
        functions = {
            'filter_function': _safe(self.driver.get_filter_function),
            'goodness_function': _safe(self.driver.get_goodness_function)}
        facts = self.service_facts() or {}
        report.setdefault('replication_enabled', False)
        report.setdefault('replication_targets', [])
        for key in ('replication_status', 'active_backend_id'):
            if facts.get(key) is not None or key not in report:
                report[key] = facts.get(key)
        for key, value in functions.items():
            report.setdefault(key, value)
        for pool in report.get('pools') or []:
            for key in functions:
                pool.setdefault(key, report[key])
            pool['backend_state'] = report['backend_state']
        report.update(self.extra_capabilities)

    # -- publishing --------------------------------------------------------

    def publish(self):
        """Build a report and fan it out, unless no scheduler listens."""
        self._dirty.clear()
        report = self.build()
        self.last_published = time.monotonic()
        if self.probe is not None and not self.probe():
            self.skipped += 1
            error = getattr(self.probe, 'broker_error', None)
            if error:
                LOG.warning('Capability report of %s not sent: broker '
                            'unreachable (%s)', self.backend, error)
            else:
                LOG.debug('No scheduler listens on the fanout exchange: '
                          'report of %s skipped', self.backend)
            return report
        try:
            self.scheduler_api.update_service_capabilities(
                rpc.admin_context(), SERVICE_NAME, self.backend, report,
                report['timestamp'], cluster_name=self.cluster_name)
            self.published += 1
        except messaging.MessageDeliveryFailure as exc:
            # The exchange went between the probe and the publish.
            LOG.info('Capability report of %s not delivered: %s',
                     self.backend, exc)
        return report


def _safe(method):
    """A driver accessor's answer; None if it raises (a report must go out)."""
    try:
        return method()
    except Exception as exc:
        LOG.warning('%s failed: %s', getattr(method, '__name__', method), exc)
        return None
