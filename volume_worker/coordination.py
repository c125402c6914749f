"""Per-resource locks through tooz, held across a whole flow.

A file backend serves one host (a lock dies with its process); Redis, etcd or
ZooKeeper serve a cluster of workers (a lock expires when its holder stops
heart-beating).
"""

import contextlib
import uuid

from oslo_log import log as logging
from tooz import coordination as tooz_coordination

LOG = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0  # seconds a check of the lock backend may take


class Coordinator:
    def __init__(self, backend_url, member_id=None):
        self.backend_url = backend_url
        self.member_id = (member_id or 'volume-worker-%s' % uuid.uuid4()).encode()
        self._coordinator = None

    def start(self):
        if self._coordinator is not None:
            return
        self._ensure_file_dir()
        coordinator = tooz_coordination.get_coordinator(self.backend_url,
                                                        self.member_id)
        coordinator.start(start_heart=True)
        self._coordinator = coordinator
        LOG.info('Lock backend %s started', _mask_url(self.backend_url))

    def stop(self):
        if self._coordinator is not None:
            try:
                self._coordinator.stop()
            except tooz_coordination.ToozError:
                LOG.warning('Lock backend did not stop cleanly', exc_info=True)
            self._coordinator = None

    def unreachable(self, timeout=PROBE_TIMEOUT):
        """Why the lock backend cannot be used now, or None when it answers.

        Redis: a PING on a connection of its own, ``timeout`` seconds at
        most (tooz's own calls retry for about a minute before failing).
        File locks always answer; other backends: a tooz heartbeat.
        """
        url = self.backend_url
        if url.startswith('file://'):
            return None
        try:
            if url.startswith('redis://'):
                return _redis_ping(url, timeout)
            if self._coordinator is None:
                self.start()
            else:
                self._coordinator.heartbeat()
        except Exception as exc:
            return '%s: %s' % (type(exc).__name__, str(exc)[:200])
        return None

    def _ensure_file_dir(self):
        if self.backend_url.startswith('file://'):
            import os
            os.makedirs(self.backend_url[len('file://'):].split('?')[0],
                        exist_ok=True)

    def get_lock(self, name):
        if self._coordinator is None:
            self.start()
        return self._coordinator.get_lock(name.encode())

    def remove_lock_file(self, name):
        """Delete a file lock's file once its resource is gone for good.

        A file backend leaves one file per lock name; without this, every
        volume ever deleted would leave one behind. Call it while holding
        the lock, for a resource no operation can act on any more (a
        late waiter then locks a file no one else will take). Other
        backends keep nothing per name.
        """
        if not self.backend_url.startswith('file://'):
            return
        import os
        directory = self.backend_url[len('file://'):].split('?')[0]
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            LOG.warning('Could not remove lock file of %s: %s', name, exc)

    @contextlib.contextmanager
    def lock(self, name):
        """Hold the named lock for the block; waits while another holds it."""
        try:
            lock = self.get_lock(name)
            lock.acquire(blocking=True)
        except tooz_coordination.ToozConnectionError as exc:
            from volume_worker import exception
            raise exception.CoordinationUnavailable(
                url=_mask_url(self.backend_url)) from exc
        try:
            yield
        finally:
            try:
                lock.release()
            except tooz_coordination.ToozError:
                LOG.warning('Lock %s was lost before release', name)

    @contextlib.contextmanager
    def locks_free_now(self, names):
        """Take those of ``names`` no one holds, without waiting; yields them.

        For background work that should leave a resource to whoever is
        working on it (start-up export checks, say).
        """
        held = []
        try:
            for name in sorted(set(names)):
                lock = self.get_lock(name)
                if lock.acquire(blocking=False):
                    held.append((name, lock))
            yield {name for name, _ in held}
        finally:
            for name, lock in reversed(held):
                try:
                    lock.release()
                except tooz_coordination.ToozError:
                    LOG.warning('Lock %s was lost before release', name)


def _redis_ping(url, timeout):
    """None when a Redis server answers at ``url``, else why not.

    Any reply is an answer (``-NOAUTH`` too: the server is there; tooz
    authenticates its own connections).
    """
    import socket
    from urllib import parse
    parts = parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or '127.0.0.1',
                                       parts.port or 6379),
                                      timeout=timeout) as conn:
            conn.sendall(b'PING\r\n')
            reply = conn.recv(64)
    except OSError as exc:
        return '%s: %s' % (type(exc).__name__, exc)
    return None if reply[:1] in (b'+', b'-') else 'no reply to PING'


def _mask_url(url):
    head, sep, tail = url.partition('@')
    if not sep or '://' not in head:
        return url
    scheme, _, _cred = head.partition('://')
    return '%s://***@%s' % (scheme, tail)


def volume_lock_name(volume_id):
    return 'volume-worker-volume-%s' % volume_id
