"""Builds the capability report of one backend and fans it out to schedulers.

The report is the driver's stats, with Cinder's scheduler keys, plus
``allocated_capacity_gb`` per pool from one grouped query, so its cost does
not grow with the number of volumes.
"""

import copy
import threading
import time

import oslo_messaging as messaging
from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import rpc
from volume_worker import timestamps

LOG = logging.getLogger(__name__)

SERVICE_NAME = 'volume'


class CapabilityReporter:
    def __init__(self, backend, driver, scheduler_api, extra=None,
                 declare_exchange=None):
        self.backend = backend
        self._declare_exchange = declare_exchange
        self._exchange_declared = False
        self.driver = driver
        self.scheduler_api = scheduler_api
        self.extra = extra or {}
        self.last_report = None
        self.last_published = 0.0
        self._dirty = threading.Event()

    def mark_dirty(self):
        """Capacity changed: publish a fresh report soon."""
        self._dirty.set()

    @property
    def dirty(self):
        return self._dirty.is_set()

    def build(self):
        stats = concurrency.run_blocking(self.driver.get_volume_stats,
                                         refresh=True) or {}
        report = copy.deepcopy(stats)
        allocated = db.volume_allocated_capacity_by_pool(self.backend)
        pools = report.get('pools') or []
        for pool in pools:
            pool['allocated_capacity_gb'] = allocated.get(pool.get('pool_name'), 0)
        report['allocated_capacity_gb'] = sum(allocated.values())
        report.update(self.extra)
        report['timestamp'] = timestamps.utcnow()
        self.last_report = report
        return report

    def publish(self):
        self._dirty.clear()
        report = self.build()
        self.last_published = time.monotonic()
        if not self._exchange_declared:
            self.ensure_exchange()
        for attempt in (1, 2):
            try:
                self.scheduler_api.update_service_capabilities(
                    rpc.admin_context(), SERVICE_NAME, self.backend, report,
                    report['timestamp'])
                break
            except messaging.MessageDeliveryFailure as exc:
                if ('NOT_FOUND' in str(exc) and attempt == 1 and
                        self._declare_exchange is not None):
                    self.ensure_exchange()
                    continue
                LOG.warning('Capability report of %s not delivered: %s',
                            self.backend, exc)
                break
        return report

    def ensure_exchange(self):
        """Make sure the scheduler's fanout exchange exists (see events)."""
        if self._declare_exchange is None:
            return
        try:
            self._declare_exchange()
            self._exchange_declared = True
        except Exception as exc:
            LOG.warning('Could not declare the scheduler fanout exchange: %s',
                        exc)
