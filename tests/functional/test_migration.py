"""Migration and retype end to end: the real broker, real workers, file backends.

Generic migration between two file backends of one worker (SQLite), and
between two worker processes sharing a PostgreSQL database (created and
dropped by the test); the data is compared byte for byte. A retype the
driver cannot do in place migrates on demand. An injected failure in the
copy leaves the volume where it was and deletes the copy; kill -9 inside
each step of the generic migration (create of the copy, inside the copy,
the completion, the delete of the old data) ends, after the restart, with
exactly one copy of the data as the volume and a final status. At start-up
the driver's update_provider_info is saved.
"""

import os
import subprocess
import uuid

import pytest

from drivers import file_layout
from tests.conftest import make_postgres_database
from volume_worker.objects import MigrationStatus
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import process
from volume_worker.testing import state

HANG = 120
MiB = 1 << 20
GiB = 1 << 30


def _file_backend(name, volume_dir, control):
    return {'volume_driver': 'volume_worker.testing.drivers.FaultyFileDriver',
            'volume_backend_name': name, 'file_volume_dir': volume_dir,
            'target_protocol': 'local', 'fault_control_file': control}


class Worker:
    """One worker process serving file backends, with its fault control."""

    def __init__(self, state_dir, backends, database, host=None):
        self.state_dir = state_dir
        self.control = os.path.join(state_dir, 'faults.json')
        self.dirs = {name: os.path.join(state_dir, name) for name in backends}
        self.conf_path, settings = process.write_config(
            state_dir, host=host, database=database,
            backends={name: _file_backend(name, self.dirs[name],
                                          self.control)
                      for name in backends})
        self.backends = dict(zip(backends, settings['backends']))
        self.proc = None
        self.runs = 0
        faulty.control(self.control, {})

    def start(self, wait_ready=True):
        self.runs += 1
        self.proc = process.WorkerProcess(
            self.conf_path, '%s.%d.log' % (self.conf_path, self.runs))
        self.proc.start(wait_ready=wait_ready)

    def kill(self):
        self.proc.kill()
        self.proc._log.close()

    def stop(self):
        if self.proc is not None:
            self.proc.stop()

    def log(self):
        return self.proc.log_text()


class Rig:
    """Workers sharing one database, and a client."""

    def __init__(self, workers, database_url):
        from volume_worker import rpc
        from volume_worker import rpcapi
        self.workers = workers
        self.db = state.WorkerDB(database_url)
        self.conf = process.client_config(workers[0].conf_path)
        self.api = rpcapi.VolumeAPI(self.conf, timeout=30)
        self.ctx = rpc.admin_context()
        self.backends = {}
        self.dirs = {}
        for worker in workers:
            self.backends.update(worker.backends)
            self.dirs.update({worker.backends[n]: d
                              for n, d in worker.dirs.items()})

    def close(self):
        for worker in self.workers:
            worker.stop()
        self.db.close()

    def create(self, backend, data, size=1):
        """An available volume holding ``data`` (and zeros) on ``backend``."""
        from volume_worker import objects
        volume = objects.Volume(id=str(uuid.uuid4()), size=size,
                                host=backend, metadata={},
                                display_name='migrating')
        self.api.create_volume(self.ctx, backend, volume)
        self.wait_status(volume.id, VolumeStatus.AVAILABLE)
        with open(self.path_of(volume.id), 'r+b') as f:
            for offset, chunk in data:
                f.seek(offset)
                f.write(chunk)
            os.fsync(f.fileno())
        return volume.id

    def path_of(self, volume_id):
        """The file holding the volume's data, as its database row says."""
        row = self.db.volume(volume_id)
        backend = row['host'].partition('#')[0]
        return os.path.join(self.dirs[backend], file_layout.VOLUME_PREFIX +
                            (row['_name_id'] or row['id']))

    def wait_status(self, volume_id, status, timeout=60):
        state.wait_until(lambda: self.db.status(volume_id) == status,
                         timeout, 'volume %s %s' % (volume_id, status))

    def wait_settled(self, volume_id, timeout=60):
        """Until the migration is over: journal empty, status final."""
        def settled():
            row = self.db.volume(volume_id)
            return (not self.db.operations() and row['migration_status']
                    in (MigrationStatus.SUCCESS, MigrationStatus.ERROR))
        state.wait_until(settled, timeout, 'migration of %s' % volume_id)
        return self.db.volume(volume_id)

    def client(self, *args, backend):
        return subprocess.run(
            [os.path.join(process.VENV_BIN, 'volume-worker-client'),
             '--config-file', self.workers[0].conf_path, *args,
             '--backend', backend], capture_output=True, text=True,
            timeout=120)

    def volume_files(self):
        """{backend: [volume file names]} of every backend directory."""
        return {backend: sorted(f for f in os.listdir(d)
                                if f.startswith(file_layout.VOLUME_PREFIX))
                for backend, d in self.dirs.items()}

    def assert_one_copy(self, volume_id, expected_backend, data):
        """The volume lives on ``expected_backend`` with ``data``; no other
        volume file nor row is left anywhere."""
        row = self.db.volume(volume_id)
        assert row['host'].partition('#')[0] == expected_backend
        assert row['status'] == VolumeStatus.AVAILABLE
        assert self.db.operations() == []
        live = self.db.live_volumes()
        assert [v['id'] for v in live] == [volume_id], live
        files = self.volume_files()
        name = os.path.basename(self.path_of(volume_id))
        assert files == {b: ([name] if b == expected_backend else [])
                         for b in files}, files
        path = self.path_of(volume_id)
        assert os.path.getsize(path) == row['size'] * GiB
        assert same_bytes(path, data), 'the data of %s differs' % volume_id


def pattern(seed, length):
    return (uuid.UUID(int=seed).bytes * (length // 16 + 1))[:length]


DATA = [(0, pattern(1, 3 * MiB + 17)), (700 * MiB, pattern(2, MiB)),
        (GiB - 4096, pattern(3, 4096))]


def same_bytes(path, data, block=4 * MiB):
    """The file holds ``data`` [(offset, bytes)] and zeros elsewhere, byte
    for byte (read a block at a time)."""
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        for start in range(0, size, block):
            expected = bytearray(min(block, size - start))
            for offset, chunk in data:
                lo, hi = max(offset, start), min(offset + len(chunk),
                                                 start + len(expected))
                if lo < hi:
                    expected[lo - start:hi - start] = \
                        chunk[lo - offset:hi - offset]
            if f.read(len(expected)) != expected:
                return False
    return True


@pytest.fixture
def one_worker(tmp_path):
    """One worker serving two file backends, file1 and file2 (SQLite)."""
    state_dir = str(tmp_path / 'state')
    worker = Worker(state_dir, ['file1', 'file2'], None)
    worker.start()
    rig = Rig([worker], 'sqlite:///%s/volume-worker.sqlite' % state_dir)
    try:
        yield rig
    finally:
        rig.close()


def test_generic_migration_between_two_backends_of_one_worker(one_worker):
    rig = one_worker
    source, dest = rig.backends['file1'], rig.backends['file2']
    volume_id = rig.create(source, DATA)
    out = rig.client('migrate-volume', volume_id, dest, '--force-host-copy',
                     '--wait', backend=source)
    assert out.returncode == 0, out.stderr
    assert '"migration_status": "success"' in out.stdout
    row = rig.db.volume(volume_id)
    assert row['migration_status'] == MigrationStatus.SUCCESS
    assert row['_name_id'] not in (None, volume_id)  # the copy's file
    rig.assert_one_copy(volume_id, dest, DATA)
    # It is served where it lives now, and can move back.
    out = rig.client('migrate-volume', volume_id, source, '--wait',
                     backend=dest)
    assert out.returncode == 0, out.stderr
    rig.assert_one_copy(volume_id, source, DATA)
    assert 'Traceback' not in rig.workers[0].log()
    # At the next start the driver's update_provider_info names its file.
    assert rig.db.volume(volume_id)['provider_id'] is None
    rig.workers[0].stop()
    rig.workers[0].start()
    assert rig.db.volume(volume_id)['provider_id'] == os.path.basename(
        rig.path_of(volume_id))


def test_refusals_change_nothing(one_worker):
    rig = one_worker
    source = rig.backends['file1']
    volume_id = rig.create(source, DATA[:1])
    for dest, reason in ((source, 'already'), ('nohost@nowhere', 'no backend'),
                         ('not-a-backend', 'host@backend')):
        out = rig.client('migrate-volume', volume_id, dest, '--wait',
                         backend=source)
        assert out.returncode != 0 and reason in out.stderr, out.stderr
    row = rig.db.volume(volume_id)
    assert (row['status'], row['migration_status']) == (
        VolumeStatus.AVAILABLE, None)


def test_a_failed_copy_leaves_the_volume_and_deletes_the_copy(one_worker):
    rig = one_worker
    source, dest = rig.backends['file1'], rig.backends['file2']
    volume_id = rig.create(source, DATA)
    faulty.control(rig.workers[0].control,
                   {volume_id: {'after_volume_copy': faulty.RAISE}})
    out = rig.client('migrate-volume', volume_id, dest, '--wait',
                     backend=source)
    assert out.returncode != 0
    assert 'fault injected into after_volume_copy' in out.stderr, out.stderr
    row = rig.wait_settled(volume_id)
    assert row['migration_status'] == MigrationStatus.ERROR
    rig.assert_one_copy(volume_id, source, DATA)
    assert row['_name_id'] is None


def _retype(rig, volume_id, type_id, backend, *extra):
    return rig.client('retype', volume_id, type_id, *extra, '--wait',
                      backend=backend)


def _type_create(rig, name, *specs):
    out = subprocess.run(
        [os.path.join(process.VENV_BIN, 'volume-worker-manage'),
         '--config-file', rig.workers[0].conf_path, 'type', 'create', name,
         *[a for spec in specs for a in ('--spec', spec)]],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout)['id']


def test_retype_with_and_without_migration(one_worker):
    rig = one_worker
    source, dest = rig.backends['file1'], rig.backends['file2']
    gold = _type_create(rig, 'gold-%s' % uuid.uuid4().hex[:6], 'tier=gold')
    silver = _type_create(rig, 'silver-%s' % uuid.uuid4().hex[:6],
                          'tier=silver')
    volume_id = rig.create(source, DATA)
    # The file driver retypes in place: nothing moves.
    out = _retype(rig, volume_id, gold, source, '--migration-policy',
                  'on-demand', '--dest-backend', dest)
    assert out.returncode == 0, out.stderr
    row = rig.db.volume(volume_id)
    assert (row['volume_type_id'], row['migration_status']) == (gold, None)
    rig.assert_one_copy(volume_id, source, DATA)
    # A driver that cannot: never -> refused, the old type kept.
    faulty.control(rig.workers[0].control,
                   {volume_id: {'retype': faulty.CANNOT}})
    out = _retype(rig, volume_id, silver, source)
    assert out.returncode != 0 and 'cannot be retyped' in out.stderr
    assert rig.db.volume(volume_id)['volume_type_id'] == gold
    # on-demand: migrated to the other backend as a volume of the new type.
    out = _retype(rig, volume_id, silver, source, '--migration-policy',
                  'on-demand', '--dest-backend', dest)
    assert out.returncode == 0, out.stderr
    row = rig.db.volume(volume_id)
    assert (row['volume_type_id'], row['migration_status']) == (
        silver, MigrationStatus.SUCCESS)
    rig.assert_one_copy(volume_id, dest, DATA)


def _kill_steps():
    # (fault key, method): '*' where the resource is the copy, whose id
    # the worker chooses.
    return [('*', 'create_volume'), ('volume', 'before_volume_copy'),
            ('volume', 'after_volume_copy'),
            ('volume', 'update_migrated_volume'), ('*', 'delete_volume')]


def _inside(control, method):
    directory = control + '.inside'
    return os.path.isdir(directory) and any(
        f.startswith(method + '-') for f in os.listdir(directory))


@pytest.mark.parametrize('key, method', _kill_steps(),
                         ids=[m for _k, m in _kill_steps()])
def test_kill_inside_each_step_of_a_generic_migration(one_worker, key,
                                                      method):
    rig = one_worker
    worker = rig.workers[0]
    source, dest = rig.backends['file1'], rig.backends['file2']
    volume_id = rig.create(source, DATA)
    faulty.control(worker.control,
                   {(volume_id if key == 'volume' else key): {method: HANG}})
    rig.api.migrate_volume(rig.ctx, source, volume_id, dest)
    state.wait_until(lambda: _inside(worker.control, method), 60,
                     'worker inside %s' % method)
    worker.kill()
    assert rig.db.volume(volume_id)['status'] == VolumeStatus.MAINTENANCE
    faulty.control(worker.control, {})
    worker.start()
    row = rig.wait_settled(volume_id)
    assert row['migration_status'] == MigrationStatus.SUCCESS, row
    rig.assert_one_copy(volume_id, dest, DATA)
    log = worker.log()
    assert 'resumed its migrations' in log


# -- two worker processes on PostgreSQL ---------------------------------------

@pytest.fixture
def two_workers(tmp_path):
    url, drop = make_postgres_database()
    workers = [Worker(str(tmp_path / name), [backend], url)
               for name, backend in (('a', 'file1'), ('b', 'file2'))]
    rig = None
    try:
        for worker in workers:
            worker.start()
        rig = Rig(workers, url)
        yield rig
    finally:
        if rig is not None:
            rig.close()
        else:
            for worker in workers:
                worker.stop()
        drop()


@pytest.mark.postgres
def test_generic_migration_between_two_workers_on_postgresql(two_workers):
    rig = two_workers
    source, dest = rig.backends['file1'], rig.backends['file2']
    assert source.partition('@')[0] != dest.partition('@')[0]
    volume_id = rig.create(source, DATA)
    out = rig.client('migrate-volume', volume_id, dest, '--wait',
                     backend=source)
    assert out.returncode == 0, out.stderr
    rig.assert_one_copy(volume_id, dest, DATA)
    # kill -9 of the source's worker inside the copy back; its restart
    # finishes the migration with the other worker.
    source_worker = rig.workers[1]
    faulty.control(source_worker.control,
                   {volume_id: {'after_volume_copy': HANG}})
    rig.api.migrate_volume(rig.ctx, dest, volume_id, source)
    state.wait_until(lambda: _inside(source_worker.control,
                                     'after_volume_copy'), 60, 'inside copy')
    source_worker.kill()
    faulty.control(source_worker.control, {})
    source_worker.start()
    row = rig.wait_settled(volume_id)
    assert row['migration_status'] == MigrationStatus.SUCCESS
    rig.assert_one_copy(volume_id, source, DATA)
