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
from oslo_utils import timeutils

from volume_worker import concurrency
from volume_worker.db import api as db
from volume_worker import rpc

LOG = logging.getLogger(__name__)

SERVICE_NAME = 'volume'


class CapabilityReporter:
    def __init__(self, backend, driver, scheduler_api, extra=None):
        self.backend = backend
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
        report['timestamp'] = timeutils.utcnow().isoformat()
        self.last_report = report
        return report

    def pool_names(self):
        report = self.last_report or {}
        return [p.get('pool_name') for p in report.get('pools') or []]

    def publish(self):
        self._dirty.clear()
        report = self.build()
        self.last_published = time.monotonic()
        try:
            self.scheduler_api.update_service_capabilities(
                rpc.admin_context(), SERVICE_NAME, self.backend, report,
                report['timestamp'])
        except messaging.MessageDeliveryFailure as exc:
            if 'NOT_FOUND' in str(exc):
                LOG.debug('No scheduler listens on the report fanout yet')
            else:
                LOG.warning('Capability report of %s not delivered: %s',
                            self.backend, exc)
        return report
