"""Snapshots end to end: the real broker, a worker process, the file driver.

A snapshot is an operation on two resources: the snapshot it creates and the
volume it holds. These tests check it through RabbitMQ, with one real
failure (the volume's file gone behind the worker's back) and one kill -9
inside the backend snapshot, after which both resources were locked,
nothing is stuck and the backend directory matches the database.
"""

import os
import uuid

import pytest

from volume_worker import exception
from drivers import file_layout
from tests.functional.test_crash_recovery import CrashRig
from volume_worker.objects import SnapshotStatus
from volume_worker.objects import VolumeStatus
from volume_worker import operations
from volume_worker.testing import state


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    from volume_worker import events
    r = CrashRig(tmp_path_factory.mktemp('snapshots'))
    r.clear_faults()
    r.start()
    r.events = events.EventStream(r.conf.transport_url,
                                  scheduler_topic=r.conf.scheduler_topic)
    r.events.start()
    r.seen = []
    try:
        yield r
    finally:
        r.events.close()
        r.close()


def _cast_snapshot(rig, volume_id, snapshot_id=None, force=False):
    from volume_worker import objects
    snap = objects.Snapshot(id=snapshot_id or str(uuid.uuid4()),
                            volume_id=volume_id, display_name='snap')
    rig.api.create_snapshot(rig.ctx, rig.backend, snap, force=force)
    return snap.id


def _wait_snapshot(rig, snapshot_id, status, timeout=30):
    state.wait_until(lambda: rig.db.snapshot_status(snapshot_id) == status,
                     timeout, 'snapshot %s %s' % (snapshot_id, status))


def _notification(rig, event_type, snapshot_id, timeout=20):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in rig.seen:
            if (event.get('event_type') == event_type and
                    event['payload'].get('snapshot_id') == snapshot_id):
                return event
        rig.seen.extend(rig.events.poll(0.2))
    raise AssertionError('no %s for %s' % (event_type, snapshot_id))


def _snapshot_file(rig, snapshot_id):
    return os.path.join(rig.volume_dir,
                        file_layout.SNAPSHOT_PREFIX + snapshot_id)


def _volume_file(rig, volume_id):
    return os.path.join(rig.volume_dir, file_layout.VOLUME_PREFIX + volume_id)


def _assert_snapshots_consistent(rig):
    live = {s['id'] for s in rig.db.live_snapshots()
            if s['status'] == SnapshotStatus.AVAILABLE}
    stuck = [(s['id'], s['status']) for s in rig.db.live_snapshots()
             if s['status'] in (SnapshotStatus.CREATING,
                                SnapshotStatus.DELETING)]
    assert stuck == []
    files = {f[len(file_layout.SNAPSHOT_PREFIX):]
             for f in rig.volume_files()
             if f.startswith(file_layout.SNAPSHOT_PREFIX)}
    assert files == live, 'backend and database disagree on snapshots'


def test_snapshot_through_the_broker_holds_its_volume(rig):
    [volume_id] = rig.create_available(1)
    with open(_volume_file(rig, volume_id), 'r+b') as f:
        f.write(b'before the snapshot')
    snapshot_id = _cast_snapshot(rig, volume_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.AVAILABLE)
    assert _notification(rig, 'snapshot.create.end', snapshot_id)[
        'payload']['status'] == SnapshotStatus.AVAILABLE
    with open(_volume_file(rig, volume_id), 'r+b') as f:
        f.write(b'AFTER')
    with open(_snapshot_file(rig, snapshot_id), 'rb') as f:
        assert f.read(19) == b'before the snapshot'

    got = rig.api.get_snapshot(rig.ctx, rig.backend, snapshot_id)
    assert (got.status, got.volume_id, got.volume_size) == (
        SnapshotStatus.AVAILABLE, volume_id, 1)
    listed = rig.api.list_snapshots(rig.ctx, rig.backend,
                                    filters={'volume_id': volume_id})
    assert [s.id for s in listed] == [snapshot_id]

    # The volume cannot go while its snapshot exists.
    with pytest.raises(exception.ResourceInUse) as err:
        rig.api.client.prepare(server=rig.backend).call(
            rig.ctx, 'delete_volume', volume_id=volume_id)
    assert '1 snapshot' in str(err.value)
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE

    rig.api.delete_snapshot(rig.ctx, rig.backend, snapshot_id)
    _notification(rig, 'snapshot.delete.end', snapshot_id)
    assert rig.db.snapshot(snapshot_id)['deleted']
    assert not os.path.exists(_snapshot_file(rig, snapshot_id))
    rig.cast_delete(volume_id)
    state.wait_until(lambda: rig.db.volume(volume_id)['deleted'], 30,
                     'volume deleted')
    _assert_snapshots_consistent(rig)


def test_a_failed_snapshot_is_error_and_leaves_nothing(rig):
    [volume_id] = rig.create_available(1)
    os.unlink(_volume_file(rig, volume_id))  # the backend lost it
    snapshot_id = _cast_snapshot(rig, volume_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.ERROR)
    error = _notification(rig, 'snapshot.create.error', snapshot_id)
    assert volume_id in error['payload']['reason']
    assert not os.path.exists(_snapshot_file(rig, snapshot_id))
    # The error status and its notification come from the last revert; the
    # operation's journal row goes once the whole flow has ended.
    state.wait_until(lambda: rig.db.journal() == {}, 30, 'journal emptied')
    # An errored snapshot can be deleted; then the volume can.
    rig.api.delete_snapshot(rig.ctx, rig.backend, snapshot_id)
    state.wait_until(lambda: rig.db.snapshot(snapshot_id)['deleted'], 30,
                     'snapshot deleted')
    rig.cast_delete(volume_id)
    state.wait_until(lambda: rig.db.volume(volume_id)['deleted'], 30,
                     'volume deleted')


def test_bad_snapshot_requests_get_clear_errors(rig):
    from volume_worker import objects
    [volume_id] = rig.create_available(1)
    client = rig.api.client.prepare(server=rig.backend, timeout=10)

    def refused(**kwargs):
        with pytest.raises((exception.NotFound, exception.Invalid)) as err:
            client.call(rig.ctx, 'create_snapshot', **kwargs)
        return '%s: %s' % (type(err.value).__name__, err.value)

    def snap(**kw):
        values = dict(id=str(uuid.uuid4()), volume_id=volume_id)
        values.update(kw)
        return objects.Snapshot(**values)

    assert 'VolumeNotFound' in refused(snapshot=snap(
        volume_id=str(uuid.uuid4())))
    taken = snap()
    client.call(rig.ctx, 'create_snapshot', snapshot=taken)
    # A snapshot id is not a volume id.
    assert 'VolumeNotFound' in refused(snapshot=snap(volume_id=taken.id))
    assert 'InvalidInput' in refused(snapshot=snap(), force='yes')
    assert 'InvalidInput' in refused(snapshot=snap(display_name='a\x00b'))
    assert 'InvalidInput' in refused(snapshot='../../etc/passwd')
    with pytest.raises(exception.SnapshotNotFound):
        client.call(rig.ctx, 'delete_snapshot', snapshot_id=str(uuid.uuid4()))
    assert [s['id'] for s in rig.db.live_snapshots()
            if s['volume_id'] == volume_id] == [taken.id]


def test_kill_inside_the_backend_snapshot_then_restart(rig):
    from tooz import coordination as tooz_coordination
    [volume_id] = rig.create_available(1)
    snapshot_id = str(uuid.uuid4())
    faults = {snapshot_id: 'create_snapshot'}
    rig.hang(faults)
    _cast_snapshot(rig, volume_id, snapshot_id)
    rig.wait_inside(faults)

    # Inside the backend step both resources are locked by the worker.
    locks = tooz_coordination.get_coordinator(
        'file://%s/locks' % rig.state_dir, b'test-peer')
    locks.start()
    try:
        for name in (operations.lock_name('volume', volume_id),
                     operations.lock_name('snapshot', snapshot_id)):
            lock = locks.get_lock(name.encode())
            assert not lock.acquire(blocking=False), '%s not held' % name
    finally:
        locks.stop()
    [row] = rig.db.operations()
    assert sorted(tuple(r) for r in row['resources']) == [
        ('snapshot', 'snapshot', snapshot_id), ('volume', 'volume', volume_id)]
    assert rig.db.snapshot_status(snapshot_id) == SnapshotStatus.CREATING

    rig.kill()
    rig.clear_faults()
    rig.start()

    assert rig.db.snapshot_status(snapshot_id) == SnapshotStatus.AVAILABLE
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    rig.assert_consistent()
    _assert_snapshots_consistent(rig)
    rig.api.delete_snapshot(rig.ctx, rig.backend, snapshot_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.DELETED)
    _assert_snapshots_consistent(rig)


def test_client_snapshot_subcommands(rig):
    import json
    [volume_id] = rig.create_available(1)

    run = rig.client

    out = run('create-snapshot', volume_id, '--name', 'cli', '--wait')
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    assert (snap['status'], snap['volume_id'], snap['display_name']) == (
        'available', volume_id, 'cli')
    assert json.loads(run('show-snapshot', snap['id']).stdout)['id'] == \
        snap['id']
    listed = json.loads(run('list-snapshots', '--volume-id', volume_id).stdout)
    assert [s['id'] for s in listed] == [snap['id']]
    out = run('delete-volume', volume_id, '--wait')
    assert out.returncode != 0 and 'snapshot' in out.stderr, out
    out = run('delete-snapshot', snap['id'], '--wait')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['status'] == 'deleted'
    out = run('delete-snapshot', snap['id'], '--wait')
    assert out.returncode != 0 and 'does not exist' in out.stderr
    assert 'Traceback' not in out.stderr
    out = run('create-snapshot', str(uuid.uuid4()), '--wait')
    assert out.returncode != 0 and out.stderr.startswith('error:')
