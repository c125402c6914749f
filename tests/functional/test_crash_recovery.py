"""kill -9 of a real worker inside each backend step of create and delete.

The worker runs the file driver (volumes are files in a directory), wrapped
so a test can make one call of one volume hang while the worker runs
(``volume_worker.testing.drivers``). Each round hangs four operations at
once, one inside each backend step, kills the worker, and restarts it; after
start-up no volume may be left creating/deleting, and the directory must
hold exactly the files of the volumes the database says are there.
"""

import os
import re
import shutil
import time
import uuid

import pytest

from drivers import file_layout
from drivers import fileops
from tests.conftest import make_postgres_database
from volume_worker.objects import VolumeStatus
from volume_worker.objects.fields import VOLUME_TRANSITIONS
from volume_worker.testing import drivers as faulty
from volume_worker.testing import process
from volume_worker.testing import state

HANG = 120  # seconds a hung call would sleep: far longer than any round
ROUNDS = 3


class CrashRig:
    """A worker on a file backend, its database, and an RPC client."""

    def __init__(self, tmp_path, executor='eventlet', database=None,
                 coordination_url=None, backend_options=None,
                 sections=None):
        from volume_worker import rpc
        from volume_worker import rpcapi
        self.state_dir = str(tmp_path / 'state')
        self.volume_dir = os.path.join(self.state_dir, 'volumes')
        self.control = os.path.join(self.state_dir, 'faults.json')
        self.conf_path, settings = process.write_config(
            self.state_dir, executor=executor, database=database,
            coordination_url=coordination_url, sections=sections,
            backends={'file1': {
                'volume_driver':
                    'volume_worker.testing.drivers.FaultyFileDriver',
                'volume_backend_name': 'file1',
                'file_volume_dir': self.volume_dir,
                'target_protocol': 'local',
                'fault_control_file': self.control,
                **(backend_options or {})}})
        self.backend = settings['backends'][0]
        self.db = state.WorkerDB(
            database or 'sqlite:///%s/volume-worker.sqlite' % self.state_dir)
        self.conf = process.client_config(self.conf_path)
        self.api = rpcapi.VolumeAPI(self.conf, timeout=30)
        self.ctx = rpc.admin_context()
        self.worker = None
        self.kills = 0
        self.runs = 0

    # -- the worker ----------------------------------------------------------

    def start(self, wait_ready=True, env=None):
        # A log per run: readiness is judged on this run's lines only.
        self.runs += 1
        self.worker = process.WorkerProcess(
            self.conf_path, '%s.%d.log' % (self.conf_path, self.runs))
        self.worker.start(wait_ready=wait_ready, env=env)
        return self.worker

    def kill(self):
        self.worker.kill()
        self.worker._log.close()
        self.kills += 1

    def stop(self):
        if self.worker is not None:
            self.worker.stop()

    def close(self):
        self.stop()
        self.db.close()

    # -- faults --------------------------------------------------------------

    def hang(self, faults):
        """{volume_id: method}: that call of that volume hangs."""
        faulty.control(self.control, {vid: {method: HANG}
                                      for vid, method in faults.items()})

    def clear_faults(self):
        faulty.control(self.control, {})
        shutil.rmtree(self.control + '.inside', ignore_errors=True)

    def wait_inside(self, faults, timeout=30):
        markers = [faulty.marker(self.control, method, vid)
                   for vid, method in faults.items()]
        state.wait_until(lambda: all(os.path.exists(m) for m in markers),
                         timeout, 'worker inside %s' % faults)

    # -- operations ----------------------------------------------------------

    def cast_create(self, volume_id=None, size=1):
        from volume_worker import objects
        volume = objects.Volume(id=volume_id or str(uuid.uuid4()), size=size,
                                host=self.backend, metadata={},
                                display_name='crash')
        self.api.create_volume(self.ctx, self.backend, volume)
        return volume.id

    def cast_delete(self, volume_id):
        self.api.delete_volume(self.ctx, self.backend, volume_id)

    def wait_status(self, volume_id, status, timeout=30):
        state.wait_until(lambda: self.db.status(volume_id) == status,
                         timeout, 'volume %s %s' % (volume_id, status))

    def create_available(self, count):
        ids = [self.cast_create() for _ in range(count)]
        for volume_id in ids:
            self.wait_status(volume_id, VolumeStatus.AVAILABLE)
        return ids

    # -- what must hold after start-up -------------------------------------------

    def volume_files(self):
        return sorted(os.listdir(self.volume_dir))

    def assert_consistent(self):
        live = self.db.live_volumes()
        stuck = [(v['id'], v['status']) for v in live
                 if v['status'] in VOLUME_TRANSITIONS.on_restart]
        assert stuck == [], 'volumes stuck after start-up: %s' % stuck
        assert self.db.journal() == {}
        expected = sorted(file_layout.VOLUME_PREFIX + v['id'] for v in live
                          if v['status'] == VolumeStatus.AVAILABLE)
        files = self.volume_files()
        temps = [f for f in files if f.startswith(fileops.TEMP_PREFIX)]
        assert temps == [], 'temporary files leaked: %s' % temps
        volumes = [f for f in files
                   if f.startswith(file_layout.VOLUME_PREFIX)]
        assert volumes == expected, (
            'backend and database disagree: leaked %s, lost %s' % (
                sorted(set(volumes) - set(expected)),
                sorted(set(expected) - set(volumes))))
        services = self.db.services()
        assert services and all(s['recovered_at'] for s in services)

    def client(self, *args):
        """Run volume-worker-client against this worker's backend."""
        import subprocess
        return subprocess.run(
            [os.path.join(process.VENV_BIN, 'volume-worker-client'),
             '--config-file', self.conf_path, *args, '--backend',
             self.backend], capture_output=True, text=True, timeout=60)

    def recovery_seconds(self):
        found = re.findall(r'recovered in ([0-9.]+)s',
                           self.worker.log_text())
        return float(found[-1])


def running_rig(tmp_path_factory, name):
    """A started CrashRig for a whole module (generator for a fixture)."""
    r = CrashRig(tmp_path_factory.mktemp(name))
    r.clear_faults()
    r.start()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(params=[
    ('eventlet', 'sqlite'),
    ('threading', 'sqlite'),
    pytest.param(('eventlet', 'postgresql'), marks=pytest.mark.postgres),
], ids=lambda p: '-'.join(p))
def rig(request, tmp_path):
    executor, database = request.param
    drop = None
    url = None
    if database == 'postgresql':
        url, drop = make_postgres_database()
    r = CrashRig(tmp_path, executor=executor, database=url)
    r.clear_faults()
    try:
        yield r
    finally:
        r.close()
        if drop is not None:
            drop()


@pytest.fixture
def eventlet_rig(tmp_path):
    r = CrashRig(tmp_path)
    r.clear_faults()
    try:
        yield r
    finally:
        r.close()


def _kill_inside_every_step(rig, deletable):
    """One round: four operations, each hung inside a different backend step."""
    created_in_export = str(uuid.uuid4())
    created_in_backend = str(uuid.uuid4())
    steps = {created_in_export: 'create_export',
             created_in_backend: 'create_volume',
             deletable[0]: 'remove_export',
             deletable[1]: 'delete_volume'}
    # Hang before casting: the casts are consumed at once (a create cast
    # first could pass its export before the fault is in place).
    rig.hang(steps)
    rig.cast_create(created_in_export)
    rig.cast_create(created_in_backend)
    for volume_id in deletable:
        rig.cast_delete(volume_id)
    rig.wait_inside(steps)
    rig.kill()

    # The kill landed where it was meant to, and the journal says so.
    journal = rig.db.journal()
    assert set(journal) == set(steps)
    assert sorted(journal[created_in_export]['progress']) == [
        'CreateOnBackend']
    assert journal[created_in_backend]['progress'] == {}
    assert journal[deletable[0]]['progress'] == {}
    assert journal[deletable[1]]['progress'] == {}
    for volume_id in (created_in_export, created_in_backend):
        assert rig.db.status(volume_id) == VolumeStatus.CREATING
    for volume_id in deletable:
        assert rig.db.status(volume_id) == VolumeStatus.DELETING
    files = rig.volume_files()
    assert file_layout.VOLUME_PREFIX + created_in_export in files
    assert file_layout.VOLUME_PREFIX + created_in_backend not in files
    return created_in_export, created_in_backend


def test_kill_inside_each_step_of_create_and_delete(rig):
    rig.start()
    deletable = rig.create_available(2)
    recovery = []
    for _round in range(ROUNDS):
        created = _kill_inside_every_step(rig, deletable)
        rig.clear_faults()
        rig.start()
        recovery.append(rig.recovery_seconds())
        rig.assert_consistent()
        for volume_id in created:
            assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
        for volume_id in deletable:
            row = rig.db.volume(volume_id)
            assert row['deleted'] and row['status'] == VolumeStatus.DELETED
        # Next round deletes what this one created.
        deletable = list(created)
    assert rig.kills == ROUNDS
    # Four interrupted operations resumed in well under a second.
    assert max(recovery) < 5, recovery


def test_kill_during_recovery_then_restart(eventlet_rig):
    rig = eventlet_rig
    rig.start()
    deletable = rig.create_available(2)
    created_in_export, created_in_backend = _kill_inside_every_step(
        rig, deletable)
    # The restart hangs while resuming one create (inside its export; the
    # resumed operations run one after another) and is killed there too.
    during_recovery = {created_in_backend: 'create_export'}
    rig.clear_faults()
    rig.hang(during_recovery)
    rig.start(wait_ready=False)
    rig.wait_inside(during_recovery)
    rig.kill()
    assert sorted(rig.db.journal()[created_in_backend]['progress']) == [
        'CreateOnBackend']

    rig.clear_faults()
    rig.start()
    rig.assert_consistent()
    assert rig.db.status(created_in_export) == VolumeStatus.AVAILABLE
    assert rig.db.status(created_in_backend) == VolumeStatus.AVAILABLE
    for volume_id in deletable:
        assert rig.db.volume(volume_id)['deleted']
    # The worker works normally afterwards.
    volume_id = rig.cast_create()
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)
    rig.cast_delete(volume_id)
    state.wait_until(lambda: rig.db.volume(volume_id)['deleted']
                     and not rig.db.journal(), 30,
                     'delete of %s' % volume_id)
    rig.assert_consistent()


# -- per-volume locks --------------------------------------------------------------

# A dead worker's Redis lock lasts until it expires (tooz's lock_timeout,
# 30 s by default; live holders keep theirs refreshed by the heartbeat).
REDIS_LOCK_TIMEOUT = 3
REDIS_URL = 'redis://127.0.0.1:6379?lock_timeout=%d' % REDIS_LOCK_TIMEOUT


def _redis_up():
    import socket
    try:
        with socket.create_connection(('127.0.0.1', 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=['file', 'redis'])
def locking_rig(request, tmp_path):
    url = None
    if request.param == 'redis':
        if not _redis_up():
            pytest.skip('Redis is not running on 127.0.0.1:6379')
        url = REDIS_URL
    r = CrashRig(tmp_path, coordination_url=url)
    r.clear_faults()
    try:
        yield r
    finally:
        r.close()


def test_delete_waits_for_the_running_create_of_the_same_volume(locking_rig):
    rig = locking_rig
    rig.start()
    volume_id = str(uuid.uuid4())
    faulty.control(rig.control, {volume_id: {'create_volume': 1.5}})
    rig.cast_create(volume_id)
    rig.wait_inside({volume_id: 'create_volume'})
    rig.cast_delete(volume_id)
    # The delete is in the worker, blocked on the volume's lock: it has
    # neither journaled anything nor touched the volume.
    for _ in range(5):
        assert rig.db.status(volume_id) == VolumeStatus.CREATING
        assert rig.db.journal()[volume_id]['operation'] == 'create_volume'
        time.sleep(0.1)
    state.wait_until(lambda: (rig.db.volume(volume_id) or {}).get('deleted')
                     and not rig.db.journal(), 30, 'create then delete')
    rig.assert_consistent()
    log = rig.worker.log_text()
    assert 'Traceback' not in log


def test_a_crashed_workers_lock_does_not_block_recovery(locking_rig):
    rig = locking_rig
    rig.start()
    volume_id = rig.cast_create(str(uuid.uuid4()))
    rig.hang({volume_id: 'create_export'})
    rig.wait_inside({volume_id: 'create_export'})
    rig.kill()
    rig.clear_faults()
    rig.start()
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    rig.assert_consistent()
    # File locks die with the process; a Redis lock expires.
    assert rig.recovery_seconds() < REDIS_LOCK_TIMEOUT + 2
