"""Copies, extend and revert end to end: the real broker, a worker process, the file driver.

Data is written into the volumes' files and read back after each operation;
each family gets one injected failure (the backend call raising) and one
kill -9 inside its backend step, after which nothing is stuck and the
backend directory matches the database.
"""

import os
import uuid

import pytest

from volume_worker import exception
from drivers import file_layout
from tests.functional.test_crash_recovery import running_rig
from tests.functional.test_snapshots import _cast_snapshot
from tests.functional.test_snapshots import _volume_file
from tests.functional.test_snapshots import _wait_snapshot
from volume_worker.objects import SnapshotStatus
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import state

GiB = 1 << 30


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    yield from running_rig(tmp_path_factory, 'copies')


@pytest.fixture(autouse=True)
def no_faults(rig):
    rig.clear_faults()
    yield
    rig.clear_faults()


def _write(rig, volume_id, data, offset=0):
    with open(_volume_file(rig, volume_id), 'r+b') as f:
        f.seek(offset)
        f.write(data)


def _read(rig, volume_id, size, offset=0):
    with open(_volume_file(rig, volume_id), 'rb') as f:
        f.seek(offset)
        return f.read(size)


def _cast_copy(rig, size=1, snapshot_id=None, source_volid=None,
               volume_id=None):
    from volume_worker import objects
    volume = objects.Volume(id=volume_id or str(uuid.uuid4()), size=size,
                            host=rig.backend, metadata={},
                            snapshot_id=snapshot_id, source_volid=source_volid)
    rig.api.create_volume(rig.ctx, rig.backend, volume)
    return volume.id


def _snapshot(rig, volume_id):
    snapshot_id = _cast_snapshot(rig, volume_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.AVAILABLE)
    return snapshot_id


def _settled(rig, volume_id, status):
    rig.wait_status(volume_id, status)
    return rig.db.volume(volume_id)


def test_a_copy_of_a_copy_of_a_snapshot_reads_back_each_generation(rig):
    [first] = rig.create_available(1)
    _write(rig, first, b'generation one')
    snap1 = _snapshot(rig, first)
    _write(rig, first, b'GENERATION TWO')
    second = _cast_copy(rig, size=2, snapshot_id=snap1)
    assert _settled(rig, second, VolumeStatus.AVAILABLE)['size'] == 2
    assert _read(rig, second, 14) == b'generation one'
    assert os.path.getsize(_volume_file(rig, second)) == 2 * GiB
    _write(rig, second, b'third', offset=GiB + 7)
    third = _cast_copy(rig, size=2, source_volid=second)
    _settled(rig, third, VolumeStatus.AVAILABLE)
    assert _read(rig, third, 14) == b'generation one'
    assert _read(rig, third, 5, offset=GiB + 7) == b'third'
    assert _read(rig, first, 14) == b'GENERATION TWO'
    # Smaller than its source: refused, nothing created.
    refused = _cast_copy(rig, size=1, source_volid=third)
    state.wait_until(lambda: 'cannot hold' in rig.worker.log_text(), 20,
                     'refusal logged')
    assert rig.db.volume(refused) is None
    rig.assert_consistent()


def test_extend_keeps_the_data_and_grows_the_file(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, b'kept across extend')
    rig.api.extend_volume(rig.ctx, rig.backend, volume_id, 3)
    state.wait_until(lambda: rig.db.volume(volume_id)['size'] == 3, 30,
                     'extended')
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    assert os.path.getsize(_volume_file(rig, volume_id)) == 3 * GiB
    assert _read(rig, volume_id, 18) == b'kept across extend'
    with pytest.raises(exception.InvalidInput) as err:
        rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, 'extend_volume', volume_id=volume_id, new_size=2)
    assert 'must be larger' in str(err.value)
    for bad in (-1, 0, 'ten', 10 ** 9):
        with pytest.raises(exception.InvalidInput):
            rig.api.client.prepare(server=rig.backend, timeout=10).call(
                rig.ctx, 'extend_volume', volume_id=volume_id, new_size=bad)
    assert rig.db.volume(volume_id)['size'] == 3


def test_revert_restores_the_bytes_and_keeps_the_snapshot(rig):
    [volume_id] = rig.create_available(1)
    _write(rig, volume_id, b'the snapshot data')
    older = _snapshot(rig, volume_id)
    latest = _snapshot(rig, volume_id)
    _write(rig, volume_id, b'OVERWRITTEN LATER')
    with pytest.raises(exception.InvalidSnapshot) as err:
        rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, 'revert_to_snapshot', volume_id=volume_id,
            snapshot_id=older)
    assert 'most recent' in str(err.value)
    rig.api.revert_to_snapshot(rig.ctx, rig.backend, volume_id, latest)
    state.wait_until(lambda: _read(rig, volume_id, 17) ==
                     b'the snapshot data' and
                     rig.db.status(volume_id) == VolumeStatus.AVAILABLE,
                     30, 'reverted')
    assert rig.db.snapshot_status(latest) == SnapshotStatus.AVAILABLE
    assert not rig.db.journal()


@pytest.mark.parametrize('method, cast, failed_status', [
    ('create_cloned_volume', 'clone', VolumeStatus.ERROR),
    ('extend_volume', 'extend', VolumeStatus.ERROR_EXTENDING),
    ('revert_to_snapshot', 'revert', VolumeStatus.ERROR),
])
def test_a_backend_failure_leaves_the_documented_error(rig, method, cast,
                                                       failed_status):
    [source] = rig.create_available(1)
    snapshot_id = _snapshot(rig, source)
    target = str(uuid.uuid4()) if cast == 'clone' else source
    faulty.control(rig.control, {target: {method: faulty.RAISE}})
    if cast == 'clone':
        _cast_copy(rig, source_volid=source, volume_id=target)
    elif cast == 'extend':
        rig.api.extend_volume(rig.ctx, rig.backend, target, 2)
    else:
        rig.api.revert_to_snapshot(rig.ctx, rig.backend, target, snapshot_id)
    rig.wait_status(target, failed_status)
    # The error status comes from the last revert; the journal row goes
    # once the whole flow has ended.
    state.wait_until(lambda: not rig.db.journal(), 30, 'journal emptied')
    if cast == 'clone':
        assert not os.path.exists(_volume_file(rig, target))
        assert rig.db.status(source) == VolumeStatus.AVAILABLE
    if cast == 'extend':
        assert rig.db.volume(target)['size'] == 1
    # Errored volumes can be deleted (and leave the backend as the
    # database says).
    rig.clear_faults()
    rig.api.delete_snapshot(rig.ctx, rig.backend, snapshot_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.DELETED)
    for volume_id in {source, target}:
        rig.cast_delete(volume_id)
        state.wait_until(lambda: rig.db.volume(volume_id)['deleted'], 30,
                         'volume %s deleted' % volume_id)
    rig.assert_consistent()


@pytest.mark.parametrize('method', ['create_volume_from_snapshot',
                                    'extend_volume', 'revert_to_snapshot'])
def test_kill_inside_the_backend_step_then_restart(rig, method):
    [source] = rig.create_available(1)
    _write(rig, source, b'before')
    snapshot_id = _snapshot(rig, source)
    target = (str(uuid.uuid4()) if method == 'create_volume_from_snapshot'
              else source)
    rig.hang({target: method})
    if method == 'create_volume_from_snapshot':
        _cast_copy(rig, size=2, snapshot_id=snapshot_id, volume_id=target)
    elif method == 'extend_volume':
        rig.api.extend_volume(rig.ctx, rig.backend, target, 2)
    else:
        _write(rig, source, b'AFTER!')
        rig.api.revert_to_snapshot(rig.ctx, rig.backend, target, snapshot_id)
    rig.wait_inside({target: method})
    journal = rig.db.journal()
    assert target in journal and snapshot_id in journal or \
        method == 'extend_volume'
    rig.kill()
    rig.clear_faults()
    rig.start()

    row = rig.db.volume(target)
    assert row['status'] == VolumeStatus.AVAILABLE
    assert row['size'] == (1 if method == 'revert_to_snapshot' else 2)
    assert os.path.getsize(_volume_file(rig, target)) == row['size'] * GiB
    assert _read(rig, target, 6) == b'before'
    rig.assert_consistent()
    assert rig.db.snapshot_status(snapshot_id) == SnapshotStatus.AVAILABLE
    names = os.listdir(rig.volume_dir)
    assert file_layout.SNAPSHOT_PREFIX + snapshot_id in names


def test_client_copy_extend_revert_subcommands(rig):
    import json
    [volume_id] = rig.create_available(1)
    snapshot_id = _snapshot(rig, volume_id)

    run = rig.client

    out = run('create', '--size', '2', '--snapshot', snapshot_id, '--wait')
    assert out.returncode == 0, out.stderr
    copy = json.loads(out.stdout)
    assert (copy['status'], copy['size'], copy['snapshot_id']) == (
        'available', 2, snapshot_id)
    out = run('extend-volume', volume_id, '3', '--wait')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['size'] == 3
    out = run('extend-volume', volume_id, '2', '--wait')
    assert out.returncode != 0
    assert 'refused' in out.stderr and 'must be larger' in out.stderr
    out = run('revert-to-snapshot', volume_id, snapshot_id, '--wait')
    assert out.returncode == 0, out.stderr
    reverted = json.loads(out.stdout)
    assert (reverted['status'], reverted['size']) == ('available', 3)
    assert 'Traceback' not in out.stderr


def test_generic_revert_through_a_scratch_volume(tmp_path):
    """A driver without revert_to_snapshot: the snapshot is cloned into a
    scratch volume, copied back through os-brick, and the scratch removed."""
    from oslo_config import cfg
    from drivers import configuration
    from drivers import datapath
    from drivers import file as file_driver
    from tests.unit import test_runner as units
    from volume_worker.db import api as db
    from volume_worker.db import migration
    from volume_worker.flows import revert
    from volume_worker.flows import snapshot as snapshot_flows

    datapath.init_os_brick(cfg.CONF, lock_path=str(tmp_path),
                           in_process_privsep=os.geteuid() == 0)

    class NoRevertDriver(file_driver.FileVolumeDriver):
        def revert_to_snapshot(self, context, volume, snapshot):
            raise NotImplementedError()

    conf = cfg.ConfigOpts()
    driver = NoRevertDriver(configuration=configuration.Configuration(
        [], config_group='file1', conf=conf), host=units.HOST)
    conf.set_override('file_volume_dir', str(tmp_path / 'volumes'),
                      group='file1')
    conf.set_override('target_protocol', 'local', group='file1')
    driver.do_setup(None)
    driver.check_for_setup_error()
    driver.set_initialized()
    db.configure('sqlite:///%s' % (tmp_path / 'db.sqlite'))
    migration.db_sync()
    coordinator = units.RecordingCoordinator('file://%s' % (tmp_path / 'l'))
    try:
        ops = units.make_ops(driver, units.RecordingNotifier(), coordinator)
        volume = units.available_volume(ops)
        path = driver.local_path(volume)
        with open(path, 'r+b') as f:
            f.write(b'snapshot bytes')
        snap = units.new_snapshot(volume.id)
        units.run(ops, snapshot_flows.CREATE, snapshot=snap)
        with open(path, 'r+b') as f:
            f.write(b'OVERWRITTEN!!!')
        before = set(os.listdir(tmp_path / 'volumes'))
        units.run(ops, revert.FAMILY, volume=volume.id, snapshot=snap.id)
        with open(path, 'rb') as f:
            assert f.read(14) == b'snapshot bytes'
        assert set(os.listdir(tmp_path / 'volumes')) == before  # no scratch
        assert units.status_of(volume.id) == VolumeStatus.AVAILABLE
    finally:
        coordinator.stop()
        db.dispose()
