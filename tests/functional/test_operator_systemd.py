"""systemd's notify protocol: READY=1 only once recovery is done, then the watchdog.

The test plays systemd: a datagram socket passed as ``$NOTIFY_SOCKET``.
A worker is killed inside a create; at the next start its resumed create
is slowed down, and READY=1 must come after that recovery, never before.
"""

import json
import os
import socket
import time

from tests.functional import test_operator_health as health_test
from tests.functional.test_crash_recovery import CrashRig
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import state

RECOVERY_DELAY = 3  # seconds the resumed create_volume is held


class NotifySocket:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def receive(self, timeout):
        """The fields of the next message, or None after ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        return dict(line.split('=', 1)
                    for line in data.decode().splitlines() if '=' in line)

    def wait_for(self, key, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            fields = self.receive(max(0.01, deadline - time.monotonic()))
            if fields is None:
                break
            seen.append(fields)
            if key in fields:
                return fields, seen
        raise AssertionError('no %s within %ss; got %s' % (key, timeout,
                                                          seen))

    def close(self):
        self.sock.close()


def _page(url):
    """(code, body) of the page, or None while nothing listens."""
    try:
        return health_test.get(url, timeout=5)
    except OSError:
        return None


def test_ready_after_recovery_then_watchdog(tmp_path):
    rig = CrashRig(tmp_path)
    rig.clear_faults()
    notify = NotifySocket(str(tmp_path / 'notify.sock'))
    try:
        rig.start()
        volume_id = rig.cast_create()
        rig.hang({volume_id: 'create_volume'})
        rig.wait_inside({volume_id: 'create_volume'})
        rig.kill()
        assert rig.db.journal() != {}

        # The resumed create is held a while: recovery takes that long.
        rig.clear_faults()
        faulty.control(rig.control, {volume_id: {
            'create_volume': RECOVERY_DELAY}})
        port = health_test.free_port()
        with open(rig.conf_path, 'a') as f:
            f.write('\n[health]\nbind = 127.0.0.1:%d\n' % port)
        url = 'http://127.0.0.1:%d/healthz' % port
        started = time.monotonic()
        rig.start(wait_ready=False, env={
            'NOTIFY_SOCKET': notify.path, 'WATCHDOG_USEC': '2000000'})
        # While it recovers, /healthz says so (and fails).
        page = state.wait_until(lambda: _page(url), 30, 'the health listener')
        code, body = page
        assert code == 503, body
        recovery = json.loads(body)['checks']['recovery:%s' % rig.backend]
        assert recovery[0]['status'] == 'fail'
        fields, seen = notify.wait_for('READY', 60)
        assert seen[0].get('STATUS', '').startswith('starting'), seen
        # Read at once: what held when the worker said it was ready.
        journal = rig.db.journal()
        status = rig.db.status(volume_id)
        services = rig.db.services()
        assert time.monotonic() - started >= RECOVERY_DELAY
        assert os.path.exists(faulty.marker(rig.control, 'create_volume',
                                            volume_id))
        assert journal == {}
        assert status == VolumeStatus.AVAILABLE
        assert services and all(s['recovered_at'] for s in services)
        assert fields['STATUS'] == 'serving %s' % rig.backend
        assert int(fields['MAINPID']) == rig.worker.pid
        assert 'recovered in' in rig.worker.log_text()

        # The periodic loop pings at half of WATCHDOG_USEC.
        notify.wait_for('WATCHDOG', 5)
        notify.wait_for('WATCHDOG', 3)
        code, body = health_test.wait_health(url[:-len('/healthz')], 'pass',
                                             15)
        assert code == 200
        # SIGTERM: it says it is stopping before it drains.
        rig.worker.proc.terminate()
        notify.wait_for('STOPPING', 10)
    finally:
        rig.close()
        notify.close()
