"""systemd's notify protocol over a plain datagram socket: readiness, status, watchdog.

Under a ``Type=notify`` unit systemd passes ``$NOTIFY_SOCKET`` (a path, or
an abstract name starting with ``@``) and, with ``WatchdogSec=``,
``$WATCHDOG_USEC``. The worker says ``READY=1`` once every backend is set
up, recovered and consuming; ``WATCHDOG=1`` from its periodic loop (the one
that writes the heartbeats) at half the watchdog period, so a loop that
stops turning gets the process restarted; ``STOPPING=1`` when it drains.
Without ``$NOTIFY_SOCKET`` every call does nothing.
"""

import os
import socket
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        # Taken out of the environment: the driver's child processes
        # (qemu-img, tgtadm, ...) are not the service.
        self.address = environ.pop('NOTIFY_SOCKET', None) or None
        self.interval = None
        usec = environ.pop('WATCHDOG_USEC', None)
        pid = environ.pop('WATCHDOG_PID', None)
        if usec and (not pid or pid == str(os.getpid())):
            try:
                self.interval = int(usec) / 1e6 / 2
            except ValueError:
                LOG.warning('WATCHDOG_USEC=%r is not a number: no watchdog',
                            usec)
        self._next_ping = 0.0
        self._sock = None

    @property
    def enabled(self):
        return self.address is not None

    def send(self, *fields):
        """Send ``KEY=VALUE`` lines; False when there is nobody to tell."""
        if not self.address:
            return False
        address = self.address
        if address.startswith('@'):
            address = '\0' + address[1:]  # the abstract namespace
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto('\n'.join(fields).encode(), address)
            return True
        except OSError as exc:
            LOG.warning('Could not notify systemd at %s: %s', self.address,
                        exc)
            return False

    def ready(self, status):
        if self.send('READY=1', 'STATUS=%s' % status, 'MAINPID=%d'
                     % os.getpid()):
            LOG.info('Told systemd: ready (%s)', status)

    def status(self, status):
        self.send('STATUS=%s' % status)

    def stopping(self, status='draining'):
        self.send('STOPPING=1', 'STATUS=%s' % status)

    def watchdog(self, now=None):
        """``WATCHDOG=1`` when half the watchdog period has passed (cheap to call often)."""
        if self.interval is None:
            return
        now = time.monotonic() if now is None else now
        if now >= self._next_ping:
            self._next_ping = now + self.interval
            self.send('WATCHDOG=1')


def loops_turning(turned, limit, now=None):
    """Whether every loop (its last turn, monotonic; None: not started) turned within ``limit`` seconds."""
    now = time.monotonic() if now is None else now
    return not any(t is not None and now - t > limit for t in turned)


_notifier = None


def notifier():
    """The process's notifier (reads the environment once)."""
    global _notifier
    if _notifier is None:
        _notifier = Notifier()
    return _notifier
