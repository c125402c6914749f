"""Replication end to end: the real broker, a worker process on the file driver.

The file backend has two replication targets (directories). Volumes of a
replicated type keep copies there; a failover makes a target's directory
the one served (data readable there, non-replicated volumes ``error``), a
second failover moves to the other target, a failback returns to the
primary; the active target survives a restart. Freeze refuses changes until
thaw. One injected failure in the driver's failover and one kill -9 inside
it: neither leaves the service ``failing-over``.
"""

import json
import os
import subprocess
import uuid

import pytest

from drivers import file_layout
from tests.conftest import make_postgres_database
from tests.functional.test_crash_recovery import CrashRig
from tests.functional.test_crash_recovery import HANG
from tests.functional.test_manage import _volume_type
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import process
from volume_worker.testing import state

GiB = 1 << 30
DATA = b'replicated data ' * 4096


class ReplicationRig(CrashRig):
    """A CrashRig whose file backend replicates to ``site2`` and ``site3``."""

    def __init__(self, tmp_path, executor='eventlet', database=None):
        super().__init__(tmp_path, executor=executor, database=database)
        self.sites = {'default': self.volume_dir}
        lines = []
        for name in ('site2', 'site3'):
            self.sites[name] = os.path.join(self.state_dir, name)
            lines.append('replication_device = backend_id:%s,path:%s'
                         % (name, self.sites[name]))
        with open(self.conf_path, 'a') as f:  # the backend section is last
            f.write('\n'.join(lines) + '\n')
        self.replicated_type = None

    def path(self, site, volume_id):
        return os.path.join(self.sites[site],
                            file_layout.VOLUME_PREFIX + volume_id)

    def create(self, replicated=True, size=1):
        from volume_worker import objects
        if replicated and self.replicated_type is None:
            self.replicated_type = _volume_type(
                self, replication_enabled='<is> True')
        volume = objects.Volume(
            id=str(uuid.uuid4()), size=size, host=self.backend, metadata={},
            volume_type_id=self.replicated_type if replicated else None)
        self.api.create_volume(self.ctx, self.backend, volume)
        self.wait_status(volume.id, VolumeStatus.AVAILABLE)
        return volume.id

    def service(self):
        [row] = [s for s in self.db.services() if s['host'] == self.backend]
        return row

    def manage(self, *args, timeout=120):
        return subprocess.run(
            [os.path.join(process.VENV_BIN, 'volume-worker-manage'),
             '--config-file', self.conf_path, *args],
            capture_output=True, text=True, timeout=timeout)

    def failover(self, target):
        return self.manage('failover', '--backend', self.backend, '--to',
                           target, '--timeout', '60')

    def fault_failover(self, value):
        faulty.control(self.control, {'*': {'failover_host': value}})


def _write(path, data, offset=0):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def _read(path, size, offset=0):
    with open(path, 'rb') as f:
        f.seek(offset)
        return f.read(size)


@pytest.fixture
def rig(tmp_path):
    yield from _started(ReplicationRig(tmp_path))


@pytest.fixture(params=[
    ('eventlet', 'sqlite'),
    ('threading', 'sqlite'),
    pytest.param(('eventlet', 'postgresql'), marks=pytest.mark.postgres),
], ids=lambda p: '-'.join(p))
def any_rig(request, tmp_path):
    executor, database = request.param
    url = drop = None
    if database == 'postgresql':
        url, drop = make_postgres_database()
    try:
        yield from _started(ReplicationRig(tmp_path, executor=executor,
                                           database=url))
    finally:
        if drop is not None:
            drop()


def _started(r):
    r.clear_faults()
    r.start()
    try:
        yield r
    finally:
        r.close()


def test_failover_to_a_target_then_another_then_back(rig):
    assert rig.service()['replication_status'] == 'enabled'
    replicated = rig.create()
    plain = rig.create(replicated=False)
    _write(rig.path('default', replicated), DATA, GiB // 2)
    assert os.path.exists(rig.path('site2', replicated))
    assert not os.path.exists(rig.path('site2', plain))

    out = rig.failover('site2')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['replication_status'] == 'failed-over'
    svc = rig.service()
    assert (svc['replication_status'], svc['active_backend_id'],
            svc['frozen']) == ('failed-over', 'site2', False)
    # The data written on the primary is readable from the target.
    assert _read(rig.path('site2', replicated), len(DATA), GiB // 2) == DATA
    assert rig.db.status(plain) == VolumeStatus.ERROR
    assert rig.db.volume(plain)['replication_status'] == 'not-capable'
    report = rig.api.get_capabilities(rig.ctx, rig.backend, discover=True)
    assert (report['replication_status'], report['active_backend_id'],
            report['replication_targets']) == ('failed-over', 'site2',
                                               ['site2', 'site3'])
    row = rig.db.volume(replicated)
    assert (row['status'], row['replication_status']) == (
        VolumeStatus.AVAILABLE, 'failed-over')

    # Served from site2 now, and after a restart too; site3 follows.
    rig.api.extend_volume(rig.ctx, rig.backend, replicated, 2)
    state.wait_until(lambda: rig.db.volume(replicated)['size'] == 2, 30,
                     'extend')
    assert os.path.getsize(rig.path('site2', replicated)) == 2 * GiB
    assert os.path.getsize(rig.path('site3', replicated)) == 2 * GiB
    assert os.path.getsize(rig.path('default', replicated)) == GiB
    rig.stop()
    rig.start()
    created_there = rig.create()
    assert os.path.exists(rig.path('site2', created_there))
    assert not os.path.exists(rig.path('default', created_there))

    # Failover to the second target, then back to the primary.
    out = rig.failover('site3')
    assert out.returncode == 0, out.stderr
    assert rig.service()['active_backend_id'] == 'site3'
    assert _read(rig.path('site3', replicated), len(DATA), GiB // 2) == DATA
    _write(rig.path('site3', replicated), b'written on site3')
    out = rig.failover('default')
    assert out.returncode == 0, out.stderr
    svc = rig.service()
    assert (svc['replication_status'], svc['active_backend_id']) == (
        'enabled', None)
    assert _read(rig.path('default', replicated), 16) == b'written on site3'
    assert os.path.getsize(rig.path('default', replicated)) == 2 * GiB
    # The volume that could not follow never left the primary: usable again.
    assert rig.db.status(plain) == VolumeStatus.AVAILABLE

    listed = json.loads(rig.manage('service', 'list').stdout)
    [mine] = [s for s in listed if s['host'] == rig.backend]
    assert mine['state'] == 'up' and mine['heartbeat_age_s'] < 10
    assert (mine['replication_status'], mine['active_backend_id'],
            mine['frozen']) == ('enabled', None, False)
    # Refused before anything changed: not a target, already active.
    out = rig.failover('nowhere')
    assert out.returncode == 1 and 'not a replication target' in out.stderr
    out = rig.failover('default')
    assert out.returncode == 1 and 'already the active' in out.stderr


def test_freeze_refuses_a_create_and_thaw_allows_it(rig):
    existing = rig.create()
    out = rig.manage('freeze', '--backend', rig.backend)
    assert out.returncode == 0, out.stderr
    assert rig.service()['frozen']
    out = rig.client('create', '--size', '1', '--wait')
    assert out.returncode != 0 and 'frozen' in out.stderr, out.stderr
    # Reads work while frozen.
    out = rig.client('show', existing)
    assert out.returncode == 0 and json.loads(out.stdout)['id'] == existing
    # The frozen state outlives a restart.
    rig.stop()
    rig.start()
    out = rig.client('delete', existing, '--wait')
    assert out.returncode != 0 and 'frozen' in out.stderr
    out = rig.client('thaw-host')
    assert out.returncode == 0 and json.loads(out.stdout) is True
    assert not rig.service()['frozen']
    out = rig.client('create', '--size', '1', '--wait')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['status'] == VolumeStatus.AVAILABLE


def test_a_failing_driver_failover_ends_failover_error(rig):
    replicated = rig.create()
    rig.fault_failover(faulty.RAISE)
    out = rig.client('failover-host', 'site2', '--wait')
    assert out.returncode != 0 and 'fault injected' in out.stderr, out.stderr
    svc = rig.service()
    assert (svc['replication_status'], svc['frozen'],
            svc['active_backend_id']) == ('failover-error', True, None)
    assert rig.db.status(replicated) == VolumeStatus.AVAILABLE
    # --wait ends at the .error notification, sent by the last revert; the
    # journal row goes once the whole flow has ended.
    state.wait_until(lambda: rig.db.journal() == {}, 30, 'journal emptied')
    # Fixed, the operator fails over again.
    rig.clear_faults()
    out = rig.client('failover-host', 'site2', '--wait')
    assert out.returncode == 0, out.stderr
    svc = rig.service()
    assert (svc['replication_status'], svc['active_backend_id']) == (
        'failed-over', 'site2')


def test_kill_inside_the_driver_failover_then_restart(any_rig):
    rig = any_rig
    replicated = rig.create()
    rig.fault_failover(HANG)
    rig.api.failover_host(rig.ctx, rig.backend, secondary_backend_id='site2')
    state.wait_until(lambda: os.path.exists(faulty.marker(
        rig.control, 'failover_host', None)), 30, 'inside failover_host')
    assert rig.service()['replication_status'] == 'failing-over'
    rig.kill()
    rig.clear_faults()
    rig.start()
    svc = rig.service()
    assert svc['replication_status'] == 'failover-error'
    assert svc['frozen'] and rig.db.journal() == {}
    assert rig.db.status(replicated) == VolumeStatus.AVAILABLE
    out = rig.failover('site2')
    assert out.returncode == 0, out.stderr
    assert rig.service()['replication_status'] == 'failed-over'
    assert os.path.exists(rig.path('site2', replicated))


def test_a_cluster_fails_over_together(tmp_path):
    """Two workers of one cluster on one backend: the one that fails over
    runs the driver's ``failover``, the other follows by the fanout."""
    import datetime
    import sqlalchemy as sa
    from volume_worker.db import models
    from volume_worker import objects
    from volume_worker import rpc
    from volume_worker import rpcapi
    unique = uuid.uuid4().hex[:8]
    shared = tmp_path / 'shared'
    shared.mkdir()
    sites = {'default': str(shared / 'volumes'),
             'site2': str(shared / 'site2')}
    backend = {'volume_driver': 'drivers.file.FileVolumeDriver',
               'volume_backend_name': 'file1',
               'file_volume_dir': sites['default'],
               'target_protocol': 'local',
               'replication_device': 'backend_id:site2,path:%s'
                                     % sites['site2']}
    url = 'sqlite:///%s/volume-worker.sqlite' % shared
    workers, hosts = [], []
    # A topic of its own: the fanout reaches this test's workers only.
    for name in ('a', 'b'):
        path, settings = process.write_config(
            str(tmp_path / name), database=url,
            coordination_url='file://%s/locks' % shared,
            extra_default={'cluster': 'cl-%s' % unique,
                           'volume_topic': 'volume-worker-%s' % unique},
            backends={'file1': backend})
        workers.append(process.WorkerProcess(path).start())
        hosts.append((path, settings['backends'][0]))
    db = state.WorkerDB(url)
    try:
        type_id = str(uuid.uuid4())
        with db.engine.begin() as conn:
            conn.execute(sa.insert(models.volume_types).values(
                id=type_id, name='replicated-%s' % unique, is_public=True,
                extra_specs={'replication_enabled': '<is> True'},
                created_at=datetime.datetime.now(), deleted=False))
        (path_a, backend_a), (path_b, backend_b) = hosts
        out = subprocess.run(
            [os.path.join(process.VENV_BIN, 'volume-worker-manage'),
             '--config-file', path_a, 'failover', '--backend', backend_a,
             '--to', 'site2', '--timeout', '60'],
            capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        services = {s['host']: s for s in db.services()}
        assert services[backend_a]['active_backend_id'] == 'site2'
        state.wait_until(
            lambda: {s['host']: s for s in db.services()}[backend_b][
                'active_backend_id'] == 'site2', 30, 'the peer following')
        assert 'follows its cluster' in workers[1].log_text()
        # The peer's driver serves from site2 now.
        api = rpcapi.VolumeAPI(process.client_config(path_b), timeout=30)
        volume = objects.Volume(id=str(uuid.uuid4()), size=1, metadata={},
                                host=backend_b, volume_type_id=type_id)
        api.create_volume(rpc.admin_context(), backend_b, volume)
        state.wait_until(lambda: db.status(volume.id) ==
                         VolumeStatus.AVAILABLE, 30, 'create on the peer')
        assert os.path.exists(os.path.join(
            sites['site2'], file_layout.VOLUME_PREFIX + volume.id))
        assert not os.path.exists(os.path.join(
            sites['default'], file_layout.VOLUME_PREFIX + volume.id))

        # One worker frozen freezes the cluster (they share its queue); a
        # thaw through any of them thaws all.
        def tool(name, path, *args):
            return subprocess.run(
                [os.path.join(process.VENV_BIN, name), '--config-file', path,
                 *args], capture_output=True, text=True, timeout=60)
        out = tool('volume-worker-manage', path_a, 'freeze', '--backend',
                   backend_a)
        assert out.returncode == 0, out.stderr
        out = tool('volume-worker-client', path_b, 'create', '--size', '1',
                   '--wait', '--backend', backend_b)
        assert out.returncode != 0 and 'frozen' in out.stderr, out.stderr
        out = tool('volume-worker-manage', path_b, 'thaw', '--backend',
                   backend_b)
        assert out.returncode == 0, out.stderr
        assert not any(s['frozen'] for s in db.services())
        out = tool('volume-worker-client', path_a, 'create', '--size', '1',
                   '--wait', '--backend', backend_a)
        assert out.returncode == 0, out.stderr
    finally:
        for worker in workers:
            worker.stop()
        db.close()


def test_failover_when_the_primary_is_gone(rig):
    replicated = rig.create()
    _write(rig.path('default', replicated), DATA)
    rig.api.extend_volume(rig.ctx, rig.backend, replicated, 2)  # a sync
    state.wait_until(lambda: rig.db.volume(replicated)['size'] == 2, 30,
                     'extend')
    _write(rig.path('default', replicated), b'lost with the site')
    os.rename(rig.sites['default'], rig.sites['default'] + '.gone')
    out = rig.failover('site2')
    assert out.returncode == 0, out.stderr
    assert rig.service()['active_backend_id'] == 'site2'
    # The last copy is served: what was written after it is lost.
    assert _read(rig.path('site2', replicated), len(DATA)) == DATA
    assert rig.db.status(replicated) == VolumeStatus.AVAILABLE
    created = rig.create()
    assert os.path.exists(rig.path('site3', created))
