"""Clusters: journal leases, claims and fencing; the driver's consent; lock URLs."""

import datetime
import uuid

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from drivers import base_vd
from drivers import fake
from drivers import file as file_driver
from tests.unit import test_runner as helpers
from volume_worker import cluster
from volume_worker.db import api as db
from volume_worker.db import models
from volume_worker import exception
from volume_worker.flows import create_volume
from volume_worker.flows import runner as flow_runner
from volume_worker import objects
from volume_worker import operations

BACKEND = 'cl@fake'


def _row(owner='m1@fake', lease=30):
    journal = db.OperationJournal.start(
        str(uuid.uuid4()), BACKEND, 'create_volume', [], {}, owner=owner,
        lease_timeout=lease)
    journal.flush()
    [row] = [r for r in db.journal_get_all(BACKEND) if r['id'] == journal.id]
    return journal, row


def _expire(row_id):
    t = models.operations
    with db.get_engine().begin() as conn:
        conn.execute(t.update().where(t.c.id == row_id).values(
            expires_at=db.utcnow() - datetime.timedelta(seconds=1)))


def test_a_live_lease_is_not_claimable_and_is_renewed(database):
    _journal, row = _row()
    assert row['owner'] == 'm1@fake' and row['lease_epoch'] == 0
    assert db.journal_claimable(BACKEND, 'm2@fake') == []
    assert db.journal_claim(row, 'm2@fake', 30) is None
    # Its owner sees it (its own rows, left by its previous process).
    assert [r['id'] for r in db.journal_claimable(BACKEND, 'm1@fake')] == [
        row['id']]
    _expire(row['id'])
    assert db.journal_renew('m1@fake', 30) == 1  # one UPDATE, all its rows
    assert db.journal_claimable(BACKEND, 'm2@fake') == []


def test_an_expired_row_is_claimed_once_and_fences_its_old_owner(database):
    journal, row = _row()
    _expire(row['id'])
    [seen] = db.journal_claimable(BACKEND, 'm2@fake')
    claimed = db.journal_claim(seen, 'm2@fake', 30)
    assert claimed['owner'] == 'm2@fake' and claimed['lease_epoch'] == 1
    assert db.journal_claim(seen, 'm3@fake', 30) is None  # one claimant
    # The old owner's writes match nothing now.
    with pytest.raises(exception.OperationFenced):
        journal.checkpoint({'CreateOnBackend': {}})
    assert journal.finish() is False
    [left] = db.journal_get_all(BACKEND)
    assert (left['owner'], left['lease_epoch'], left['progress']) == (
        'm2@fake', 1, {})
    # The new owner's handle writes.
    mine = db.OperationJournal.of_row(claimed)
    mine.checkpoint({'CreateOnBackend': {}})
    assert mine.finish() is True


def test_a_fenced_finish_rolls_back_the_write_it_rides_with(database):
    volume_id = str(uuid.uuid4())
    db.volume_create({'id': volume_id, 'size': 1, 'status': 'creating',
                      'host': BACKEND + '#pool1'})
    journal, row = _row()
    _expire(row['id'])
    db.journal_claim(row, 'm2@fake', 30)
    journal.defer_finish()
    with pytest.raises(exception.OperationFenced):
        db.volume_update(volume_id, {'status': 'available'},
                         expected_status='creating', journal=journal)
    assert db.volume_get(volume_id)['status'] == 'creating'
    assert len(db.journal_get_all(BACKEND)) == 1


def test_a_run_taken_over_stops_without_reverting(database, driver, notifier,
                                                  coordinator, monkeypatch):
    ops = operations.Operations(
        BACKEND, driver, coordinator,
        flow_runner.FlowRunner(BACKEND, owner='m1@fake', lease_timeout=30),
        notifier, helpers.Reporter(), member='m1@fake')
    original = create_volume.CreateExport.execute

    def taken_meanwhile(task, *args, **kwargs):
        # A peer claims the row while this worker is inside the flow.
        [row] = db.journal_get_all(BACKEND)
        _expire(row['id'])
        assert db.journal_claim(row, 'm2@fake', 30) is not None
        return original(task, *args, **kwargs)
    monkeypatch.setattr(create_volume.CreateExport, 'execute',
                        taken_meanwhile)
    volume = objects.Volume(id=str(uuid.uuid4()), size=1, metadata={},
                            host=BACKEND + '#pool1')
    volume.obj_fill_unset()
    with pytest.raises(exception.OperationFenced):
        helpers.run_create(ops, volume)
    # Nothing undone, nothing finished: the peer resumes it.
    assert helpers.status_of(volume.id) == 'creating'
    assert volume.id in driver._volumes  # not deleted by a revert
    [row] = db.journal_get_all(BACKEND)
    assert (row['owner'], row['lease_epoch']) == ('m2@fake', 1)
    peer = operations.Operations(
        BACKEND, driver, coordinator,
        flow_runner.FlowRunner(BACKEND, owner='m2@fake', lease_timeout=30),
        notifier, helpers.Reporter(), member='m2@fake')
    monkeypatch.setattr(create_volume.CreateExport, 'execute', original)
    from volume_worker import recovery
    summary = recovery.recover(peer, None, running=True, peers_only=True)
    assert summary['resumed'] == 0  # its lease is live: not the peer's yet
    _expire(row['id'])
    [row] = db.journal_get_all(BACKEND)
    # (A claim by m3 while m2's lease is expired, then resumed.)
    summary = recovery.recover(
        operations.Operations(
            BACKEND, driver, coordinator,
            flow_runner.FlowRunner(BACKEND, owner='m3@fake',
                                   lease_timeout=30),
            notifier, helpers.Reporter(), member='m3@fake'),
        None, running=True, peers_only=True)
    assert summary['resumed'] == 1
    assert helpers.status_of(volume.id) == 'available'
    assert db.journal_get_all(BACKEND) == []


def test_resources_of_the_cluster_and_of_the_member_are_owned(database):
    ops = operations.Operations(BACKEND, None, None, None, None, None,
                                member='m1@fake')
    owned = [objects.Volume(host=h) for h in ('cl@fake#p', 'm1@fake#p')]
    assert all(ops.owns(v) for v in owned)
    assert not ops.owns(objects.Volume(host='m2@fake#p'))


class _Plain(base_vd.BaseVD):
    """A driver that says nothing of active-active."""


def _conf(**overrides):
    conf = cfg.ConfigOpts()
    from volume_worker import opts
    opts.register_opts(conf)
    conf([], project='volume-worker-test')
    for name, value in overrides.items():
        group = 'coordination' if name == 'backend_url' else None
        conf.set_override(name, value, group=group)
    return conf


def test_only_drivers_declaring_active_active_run_clustered():
    conf = _conf(cluster='cl')
    with pytest.raises(exception.ActiveActiveNotSupported) as refused:
        cluster.check_driver(conf, 'h@b', _Plain())
    assert 'SUPPORTS_ACTIVE_ACTIVE' in str(refused.value)
    assert 'cluster = cl' in str(refused.value)
    assert fake.FakeDriver.SUPPORTS_ACTIVE_ACTIVE
    assert file_driver.FileVolumeDriver.SUPPORTS_ACTIVE_ACTIVE
    cluster.check_driver(_conf(), 'h@b', _Plain())  # alone: anything goes


def test_a_cluster_locks_on_redis_by_default_with_the_lease_as_timeout():
    unset = _conf(cluster='cl', lease_timeout=12)
    assert cluster.coordination_url(unset, lambda n, g: False) == (
        'redis://127.0.0.1:6379?lock_timeout=12')
    chosen = _conf(cluster='cl', backend_url='redis://r:6379?db=2')
    assert cluster.coordination_url(chosen, lambda n, g: True) == (
        'redis://r:6379?db=2&lock_timeout=30')
    alone = _conf()
    assert cluster.coordination_url(alone, lambda n, g: False).startswith(
        'file://')


def test_cluster_names():
    conf = _conf(cluster='cl', host='h1')
    assert cluster.backend_name(conf, 'fake') == 'cl@fake'
    assert cluster.backend_name(_conf(host='h1'), 'fake') == 'h1@fake'


@pytest.fixture
def driver():
    return helpers.make_driver()


@pytest.fixture
def notifier():
    return helpers.RecordingNotifier()


@pytest.fixture
def coordinator(tmp_path):
    coord = helpers.RecordingCoordinator('file://%s' % (tmp_path / 'locks'))
    yield coord
    coord.stop()


def test_no_lease_outside_a_cluster(database):
    journal = db.OperationJournal.start(str(uuid.uuid4()), 'h@b',
                                        'create_volume', [], {})
    journal.flush()
    t = models.operations
    with db.get_engine().connect() as conn:
        row = conn.execute(sa.select(t)).first()._mapping
    assert (row['owner'], row['expires_at']) == ('h@b', None)


class _Server:
    def __init__(self):
        self.stopped = self.waited = False

    def stop(self):
        self.stopped = True

    def wait(self):
        self.waited = True


class _Locks:
    def __init__(self):
        self.reason = None

    def unreachable(self):
        return self.reason


def test_a_member_without_its_lock_backend_stops_consuming_until_it_is_back():
    import threading
    from volume_worker import concurrency
    from volume_worker import service
    backend = service.BackendService.__new__(service.BackendService)
    backend.host = 'm1@fake'
    backend.coordinator = _Locks()
    backend.ready = True
    backend.paused = None
    backend._serve_lock = threading.Lock()
    backend._stopping = concurrency.event()
    first = _Server()
    backend.servers = [first]
    started = []

    def start_rpc():
        started.append(_Server())
        backend.servers.append(started[-1])
    backend.start_rpc = start_rpc
    backend._follow_lock_backend()  # reachable: nothing changes
    assert backend.servers == [first] and backend.paused is None
    backend.coordinator.reason = 'ToozConnectionError: refused'
    backend._follow_lock_backend()
    assert backend.paused == 'ToozConnectionError: refused'
    assert first.stopped and backend.servers == []
    backend._follow_lock_backend()  # still away: stays paused, no restart
    assert started == []
    backend.coordinator.reason = None
    backend._follow_lock_backend()
    assert backend.paused is None and backend.servers == started
    assert len(started) == 1


def test_the_lock_backend_check_sees_redis_go_and_come_back(tmp_path):
    import shutil
    import subprocess
    import time
    from volume_worker import coordination
    if not shutil.which('redis-server'):
        pytest.skip('redis-server is not installed')
    port = _free_port()
    url = 'redis://127.0.0.1:%d' % port
    check = coordination.Coordinator(url, member_id='m1')
    assert check.unreachable()  # nobody there: the reason
    server = subprocess.Popen(
        ['redis-server', '--port', str(port), '--save', '',
         '--appendonly', 'no', '--dir', str(tmp_path)],
        stdout=subprocess.DEVNULL)
    try:
        state_deadline = time.monotonic() + 10
        while check.unreachable() and time.monotonic() < state_deadline:
            time.sleep(0.05)
        assert check.unreachable() is None
    finally:
        server.kill()
        server.wait()
    started = time.monotonic()
    assert check.unreachable()
    assert time.monotonic() - started < 10  # bounded, not tooz's minute
    files = coordination.Coordinator('file://%s' % tmp_path, member_id='m1')
    assert files.unreachable() is None


def _free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    number = s.getsockname()[1]
    s.close()  # nobody listens there now
    return number


def test_a_lock_backend_lost_mid_request_is_a_clear_refusal(monkeypatch,
                                                           tmp_path):
    from tooz import coordination as tooz_coordination
    from volume_worker import coordination

    class _Lock:
        def acquire(self, blocking=True):
            raise tooz_coordination.ToozConnectionError('refused')
    coord = coordination.Coordinator('redis://user:secret@r:6379')
    monkeypatch.setattr(coord, 'get_lock', lambda name: _Lock())
    with pytest.raises(exception.CoordinationUnavailable) as refused:
        with coord.lock('volume-worker-volume-x'):
            pass
    assert 'secret' not in str(refused.value)
    assert 'takes no new work' in str(refused.value)


def test_the_client_addresses_the_cluster_by_default():
    from volume_worker.cmd import client_core
    client = client_core.Client.__new__(client_core.Client)
    client.conf = _conf(cluster='cl', host='h1',
                        enabled_backends=['file1', 'file2'])
    assert client.default_backend() == 'cl@file1'
    client.conf = _conf(host='h1', enabled_backends=['file1'])
    assert client.default_backend() == 'h1@file1'


def test_do_cleanup_takes_over_an_expired_peer_operation(
        database, driver, notifier, coordinator, monkeypatch):
    from volume_worker.endpoints import service as service_endpoints
    dead = operations.Operations(
        BACKEND, driver, coordinator,
        flow_runner.FlowRunner(BACKEND, owner='m1@fake', lease_timeout=30),
        notifier, helpers.Reporter(), member='m1@fake')
    volume = objects.Volume(id=str(uuid.uuid4()), size=1, metadata={},
                            host=BACKEND + '#pool1')
    volume.obj_fill_unset()
    helpers.crash_in(monkeypatch, create_volume.CreateExport)
    with pytest.raises(helpers._Crash):  # the process "dies" in the flow
        helpers.run_create(dead, volume)
    monkeypatch.undo()
    [row] = db.journal_get_all(BACKEND)
    assert row['owner'] == 'm1@fake'

    class _Endpoints(service_endpoints.ServiceEndpoints):
        backend = BACKEND
        reporter = helpers.Reporter()

        def __init__(self, ops):
            self.operations = ops
            self.driver = ops.driver
    driver.set_initialized()
    alive = _Endpoints(operations.Operations(
        BACKEND, driver, coordinator,
        flow_runner.FlowRunner(BACKEND, owner='m2@fake', lease_timeout=30),
        notifier, helpers.Reporter(), member='m2@fake'))
    # m1's lease still runs: a cleanup leaves its operation alone.
    assert alive.do_cleanup(None)['resumed'] == 0
    assert helpers.status_of(volume.id) == 'creating'
    _expire(row['id'])
    assert alive.do_cleanup(None)['resumed'] == 1
    assert helpers.status_of(volume.id) == 'available'
    assert db.journal_get_all(BACKEND) == []


def test_what_a_worker_made_alone_joins_its_cluster(database):
    def row(table, **values):
        t = models.metadata.tables[table]
        values.setdefault('id', str(uuid.uuid4()))
        values.setdefault('created_at', db.utcnow())
        if 'deleted' in t.c:
            values.setdefault('deleted', False)
        with db.get_engine().begin() as conn:
            conn.execute(t.insert().values(**values))
        return values['id']
    mine = row('volumes', size=1, status='available', host='m1@fake#p1')
    other = row('volumes', size=1, status='available', host='m10@fake#p1')
    snap = row('snapshots', volume_id=mine, volume_size=1,
               status='available', host='m1@fake#p1')
    attachment = row('volume_attachment', volume_id=mine, status='attached',
                     host='m1@fake')  # the consumer's host: left alone
    journal = db.OperationJournal.start(str(uuid.uuid4()), 'm1@fake',
                                        'create_volume', [], {})
    journal.flush()
    moved = db.move_to_backend('m1@fake', 'cl@fake')
    assert moved['volumes'] == 1 and moved['snapshots'] == 1
    assert moved['operations'] == 1
    assert db.volume_get(mine)['host'] == 'cl@fake#p1'
    assert db.volume_get(mine)['cluster_name'] == 'cl@fake'
    assert db.volume_get(other)['host'] == 'm10@fake#p1'
    assert db.snapshot_get(snap)['host'] == 'cl@fake#p1'
    t = models.volume_attachment
    with db.get_engine().connect() as conn:
        assert conn.execute(sa.select(t.c.host).where(
            t.c.id == attachment)).scalar() == 'm1@fake'
    [op] = db.journal_get_all('cl@fake')
    assert op['owner'] == 'm1@fake'  # still its own: resumed at its start
