"""A bandwidth limit shared by every data copy of one backend.

``volume_copy_bps_limit`` (bytes per second, 0 for none) caps the sum of
the copies a backend runs at once, as Cinder's blkio throttle does: two
concurrent copies each get about half. Copies done in this process call
``consume(nbytes)`` after each block (it sleeps as long as the limit asks);
copies done by a tool (``qemu-img convert -r``) take ``process_rate()``,
their share of the limit when they start.  ``BaseVD.set_throttle`` installs
the driver's throttle from its configuration.
"""

import contextlib
import time

from drivers import common


class Throttle:
    """A token bucket of ``bps`` bytes per second; ``bps`` 0 or None: no limit.

    Thread-safe: copies run in native threads.  ``burst`` is how many
    seconds of unused budget a copy may catch up on after a pause.
    """

    def __init__(self, bps=0, burst=0.5, clock=time.monotonic,
                 sleep=time.sleep):
        if bps is not None and bps < 0:
            raise ValueError('a bandwidth limit cannot be negative: %r' % bps)
        self.bps = int(bps or 0)
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        # Copies run in native threads, also under eventlet: a green lock
        # shared by two of them fails ("Cannot switch to a different thread").
        self._lock = common.native_lock()
        self._available = 0.0
        self._last = None
        self._copies = 0

    @property
    def limited(self):
        return self.bps > 0

    def consume(self, nbytes):
        """Account for ``nbytes`` copied; sleep until the limit allows them."""
        if not self.limited or nbytes <= 0:
            return
        with self._lock:
            now = self._clock()
            if self._last is None:
                self._last = now
            self._available = min(
                self._available + (now - self._last) * self.bps,
                self.bps * self._burst)
            self._last = now
            self._available -= nbytes
            wait = -self._available / self.bps if self._available < 0 else 0
        if wait > 0:
            self._sleep(wait)

    @contextlib.contextmanager
    def copy(self):
        """Count one running copy for as long as the block lasts."""
        with self._lock:
            self._copies += 1
        try:
            yield self
        finally:
            with self._lock:
                self._copies -= 1

    def process_rate(self):
        """Bytes per second for a tool starting a copy now (0: no limit).

        The limit split between the copies running (this one included, when
        it is inside ``copy()``); at least 1 byte per second.
        """
        if not self.limited:
            return 0
        with self._lock:
            sharing = max(self._copies, 1)
        return max(self.bps // sharing, 1)

    def qemu_img_args(self):
        """``['-r', RATE]`` for ``qemu-img convert``, or nothing unlimited."""
        rate = self.process_rate()
        return ['-r', str(rate)] if rate else []


UNLIMITED = Throttle(0)
