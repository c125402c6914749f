"""Progress of long copies, published as ``<event>.progress`` notifications.

A copy runs in a native thread (a driver call) and reports its bytes with
``advance(nbytes)`` (or ``update(done)``, the bytes done so far); those
only count. A publisher of the reporter's own (a green thread under
eventlet, where the notifier must not be used from a native thread) sends
``<event>.progress`` with ``percent`` at most every ``interval`` seconds
while the count moves, and a last one at 100 % when the copy ended
complete::

    with progress.ProgressReporter(notifier, 'volume.create', payload,
                                   total_bytes) as reporter:
        common.call_driver(copy, ..., reporter.advance)
"""

import threading

from oslo_log import log as logging

from volume_worker import concurrency

LOG = logging.getLogger(__name__)


class ProgressReporter:
    """Counts a copy's bytes; publishes its percent while it runs.

    ``payload`` (a dict, e.g. a resource's ``notification_payload()``) is
    sent with ``percent``, ``bytes_done`` and ``total_bytes`` added.
    """

    def __init__(self, notifier, event, payload, total_bytes, interval=1.0):
        self.notifier = notifier
        self.event = event + '.progress'
        self.payload = dict(payload or {})
        self.total_bytes = max(int(total_bytes or 0), 0)
        self.interval = interval
        self._done = 0
        self._published = None
        self._stop = None
        self._publisher = None

    # Counting, from the copying (native) thread: one writer, and a reader
    # that only needs some recent value.
    def advance(self, nbytes):
        self._done += int(nbytes)

    def update(self, done_bytes):
        self._done = int(done_bytes)

    @property
    def bytes_done(self):
        return self._done

    @property
    def percent(self):
        if not self.total_bytes:
            return 0
        return min(100, self._done * 100 // self.total_bytes)

    # Publishing: from the thread that owns the reporter.
    def __enter__(self):
        self._stop = threading.Event()
        self._publisher = concurrency.spawn(self._publish_loop)
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop.set()
        try:
            self._publisher.wait()
        except Exception:
            LOG.exception('Progress publisher of %s failed', self.event)
        if exc_type is None and self.total_bytes:
            self._done = max(self._done, self.total_bytes)
            self.publish()
        return False

    def _publish_loop(self):
        while not self._stop.wait(self.interval):
            self.publish()

    def publish(self):
        """Send the percent now, unless it is the one last sent."""
        percent = self.percent
        if percent == self._published:
            return
        self._published = percent
        payload = dict(self.payload, percent=percent,
                       bytes_done=min(self._done, self.total_bytes),
                       total_bytes=self.total_bytes)
        try:
            self.notifier.publish(self.event, payload)
        except Exception:  # progress must never fail the copy
            LOG.exception('Could not publish %s', self.event)
