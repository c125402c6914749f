"""Groups end to end: the real broker, a worker process, the file driver.

The file driver has no group calls for groups of plain types, so the
worker's generic behaviour runs: a group of file volumes is created,
filled, snapshotted, copied, emptied and deleted with its volumes, its
members a few at a time (overlap seen in the driver's own call times); a
kill -9 halfway through deleting 20 members is finished at the next start
with nothing stuck or leaked, and only the members not journaled as done
are deleted again.
"""

import collections
import json
import os
import uuid

import pytest

from tests.functional.test_crash_recovery import running_rig
from volume_worker import exception
from volume_worker.flows import group_snapshot as gs_flows
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import state


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    yield from running_rig(tmp_path_factory, 'groups')


def _group_row(rig, group_id):
    import sqlalchemy as sa
    from volume_worker.db import models
    t = models.groups
    with rig.db.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == group_id)).first()
    return dict(row._mapping) if row else None


def _create_group(rig, volume_count):
    from volume_worker import objects
    group = objects.Group(id=str(uuid.uuid4()), name='g')
    rig.api.create_group(rig.ctx, rig.backend, group)
    state.wait_until(lambda: (_group_row(rig, group.id) or {}).get(
        'status') == 'available', 30, 'group available')
    volumes = rig.create_available(volume_count)
    rig.api.update_group(rig.ctx, rig.backend, group.id, add_volumes=volumes)
    state.wait_until(lambda: all(rig.db.volume(v)['group_id'] == group.id
                                 for v in volumes), 30, 'members added')
    return group.id, volumes


def test_a_group_of_file_volumes_lives_and_goes_with_its_volumes(rig):
    group_id, volumes = _create_group(rig, 5)
    listed = rig.api.list_groups(rig.ctx, rig.backend)
    assert group_id in [g.id for g in listed]
    rig.api.update_group(rig.ctx, rig.backend, group_id,
                         remove_volumes=[volumes[0]])
    state.wait_until(lambda: rig.db.volume(volumes[0])['group_id'] is None,
                     30, 'member removed')
    with pytest.raises(exception.ResourceInUse) as err:
        rig.api.client.prepare(server=rig.backend, timeout=10).call(
            rig.ctx, 'delete_group', group_id=group_id)
    assert '4 volume' in str(err.value)
    rig.api.delete_group(rig.ctx, rig.backend, group_id, delete_volumes=True)
    state.wait_until(lambda: _group_row(rig, group_id)['deleted'], 30,
                     'group deleted')
    for volume_id in volumes[1:]:
        assert rig.db.volume(volume_id)['deleted']
    assert rig.db.status(volumes[0]) == VolumeStatus.AVAILABLE
    rig.assert_consistent()


def _journaled_members(rig, operation_id, task):
    progress = rig.db.journal()[operation_id]['progress'] or {}
    prefix = task + ':'
    return {name[len(prefix):] for name in progress if name.startswith(prefix)}


def test_kill_halfway_through_a_20_member_generic_delete(rig):
    group_id, volumes = _create_group(rig, 20)
    hung = sorted(volumes)[7]
    faults = {v: {'delete_volume': 0.3} for v in volumes}
    faults[hung] = {'delete_volume': 120}
    faulty.control(rig.control, faults)
    rig.api.delete_group(rig.ctx, rig.backend, group_id, delete_volumes=True)

    def files_left():
        files = set(rig.volume_files())
        return [v for v in volumes if 'volume-' + v in files]
    state.wait_until(lambda: len(files_left()) <= 12, 60, 'half deleted')
    rig.kill()
    left = files_left()
    assert hung in left and 1 < len(left) < 20
    # Each member finished before the kill is journaled as such, and only
    # those: their files are gone.
    done = _journaled_members(rig, group_id, 'DeleteMember')
    assert done and not done & set(left)
    rig.clear_faults()
    rig.start()
    assert _group_row(rig, group_id)['deleted']
    assert all(rig.db.volume(v)['deleted'] for v in volumes)
    assert not rig.db.journal()
    rig.assert_consistent()
    # The restart deleted only what was not journaled as done.
    deletes = collections.Counter(
        r for m, r, _s, _e in faulty.calls(rig.control)
        if m == 'delete_volume' and r in volumes)
    assert all(deletes[v] == 1 for v in done), deletes
    assert deletes[hung] == 1  # the restart's (the killed call never returned)


def _max_overlap(intervals):
    edges = sorted([(start, 1) for start, _ in intervals] +
                   [(end, -1) for _, end in intervals],
                   key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _time, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture(scope='module')
def threading_rig(tmp_path_factory):
    from tests.functional.test_crash_recovery import CrashRig
    r = CrashRig(tmp_path_factory.mktemp('groups-threading'),
                 executor='threading')
    r.clear_faults()
    r.start()
    try:
        yield r
    finally:
        r.close()


@pytest.mark.parametrize('executor', ['eventlet', 'threading'])
def test_member_snapshots_run_at_once_up_to_the_parallelism(
        request, executor):
    rig = request.getfixturevalue(
        'rig' if executor == 'eventlet' else 'threading_rig')
    group_id, volumes = _create_group(rig, 8)
    gs_id = str(uuid.uuid4())
    snapshots = {gs_flows.member_snapshot_id(gs_id, v) for v in volumes}
    faulty.control(rig.control, {s: {'create_snapshot': 0.5}
                                 for s in snapshots})
    _cast_group_snapshot(rig, group_id, gs_id)
    state.wait_until(lambda: (_group_snapshot_row(rig, gs_id) or {}).get(
        'status') == 'available', 60, 'group snapshot')
    rig.clear_faults()
    taken = [(start, end) for m, r, start, end in faulty.calls(rig.control)
             if m == 'create_snapshot' and r in snapshots]
    assert len(taken) == 8
    # group_member_parallelism (4 by default) at a time, no more.
    assert 2 <= _max_overlap(taken) <= 4, taken
    rig.api.delete_group_snapshot(rig.ctx, rig.backend, gs_id)
    state.wait_until(lambda: _group_snapshot_row(rig, gs_id)['deleted'], 30,
                     'group snapshot deleted')


def test_one_members_failure_fails_it_and_the_group_snapshot_only(rig):
    group_id, volumes = _create_group(rig, 5)
    gs_id = str(uuid.uuid4())
    failing = gs_flows.member_snapshot_id(gs_id, volumes[2])
    faulty.control(rig.control, {failing: {'create_snapshot': 'raise'}})
    _cast_group_snapshot(rig, group_id, gs_id)
    state.wait_until(lambda: (_group_snapshot_row(rig, gs_id) or {}).get(
        'status') == 'error', 30, 'group snapshot in error')
    rig.clear_faults()
    statuses = {v: rig.db.snapshot(gs_flows.member_snapshot_id(gs_id, v))[
        'status'] for v in volumes}
    assert statuses.pop(volumes[2]) == 'error'
    assert set(statuses.values()) == {'available'}
    files = rig.volume_files()
    assert ['snapshot-' + gs_flows.member_snapshot_id(gs_id, v) in files
            for v in volumes] == [True, True, False, True, True]
    assert not rig.db.journal()
    out = rig.client('delete-group-snapshot', gs_id, '--wait')
    assert out.returncode == 0, out.stderr
    assert not [f for f in rig.volume_files() if f.startswith('snapshot-')]


def test_client_group_subcommands(rig):
    out = rig.client('create-group', '--name', 'cli', '--wait')
    assert out.returncode == 0, out.stderr
    group = json.loads(out.stdout)
    [volume_id] = rig.create_available(1)
    out = rig.client('update-group', group['id'], '--add', volume_id,
                     '--wait')
    assert out.returncode == 0, out.stderr
    assert json.loads(rig.client('show-group', group['id']).stdout)[
        'status'] == 'available'
    out = rig.client('delete-group', group['id'], '--wait')
    assert out.returncode != 0 and 'refused' in out.stderr
    out = rig.client('delete-group', group['id'], '--delete-volumes',
                     '--wait')
    assert out.returncode == 0, out.stderr
    assert not os.path.exists(os.path.join(rig.volume_dir,
                                           'volume-' + volume_id))


def _group_snapshot_row(rig, group_snapshot_id):
    import sqlalchemy as sa
    from volume_worker.db import models
    t = models.group_snapshots
    with rig.db.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(
            t.c.id == group_snapshot_id)).first()
    return dict(row._mapping) if row else None


def _cast_group_snapshot(rig, group_id, group_snapshot_id=None):
    from volume_worker import objects
    gs = objects.GroupSnapshot(id=group_snapshot_id or str(uuid.uuid4()),
                               group_id=group_id, name='gs')
    rig.api.create_group_snapshot(rig.ctx, rig.backend, gs)
    return gs.id


def test_group_snapshot_keeps_each_members_data(rig):
    from volume_worker.flows import group_snapshot as gs_flows
    group_id, volumes = _create_group(rig, 5)
    for volume_id in volumes:
        with open(os.path.join(rig.volume_dir, 'volume-' + volume_id),
                  'r+b') as f:
            f.write(volume_id.encode())
    gs_id = _cast_group_snapshot(rig, group_id)
    state.wait_until(lambda: (_group_snapshot_row(rig, gs_id) or {}).get(
        'status') == 'available', 30, 'group snapshot')
    for volume_id in volumes:
        with open(os.path.join(rig.volume_dir, 'volume-' + volume_id),
                  'r+b') as f:
            f.write(b'X' * 36)
        snapshot_id = gs_flows.member_snapshot_id(gs_id, volume_id)
        with open(os.path.join(rig.volume_dir, 'snapshot-' + snapshot_id),
                  'rb') as f:
            assert f.read(36) == volume_id.encode()
    rig.api.delete_group_snapshot(rig.ctx, rig.backend, gs_id)
    state.wait_until(lambda: _group_snapshot_row(rig, gs_id)['deleted'], 30,
                     'group snapshot deleted')
    assert not [f for f in rig.volume_files() if f.startswith('snapshot-')]
    rig.api.delete_group(rig.ctx, rig.backend, group_id, delete_volumes=True)
    state.wait_until(lambda: _group_row(rig, group_id)['deleted'], 30,
                     'group deleted')
    rig.assert_consistent()


def test_kill_inside_a_member_snapshot_then_restart(rig):
    from volume_worker.flows import group_snapshot as gs_flows
    group_id, volumes = _create_group(rig, 4)
    gs_id = str(uuid.uuid4())
    second = gs_flows.member_snapshot_id(gs_id, sorted(volumes)[1])
    rig.hang({second: 'create_snapshot'})
    _cast_group_snapshot(rig, group_id, gs_id)
    rig.wait_inside({second: 'create_snapshot'})
    assert gs_id in rig.db.journal()
    rig.kill()
    rig.clear_faults()
    rig.start()
    assert _group_snapshot_row(rig, gs_id)['status'] == 'available'
    snapshots = [f for f in rig.volume_files() if f.startswith('snapshot-')]
    assert len(snapshots) == 4
    assert not rig.db.journal()
    out = rig.client('delete-group-snapshot', gs_id, '--wait')
    assert out.returncode == 0, out.stderr
    rig.assert_consistent()


def test_a_new_group_from_a_group_snapshot_reads_the_snapshot_data(rig):
    from volume_worker import objects
    from volume_worker.flows import group_from_src
    group_id, volumes = _create_group(rig, 5)
    for volume_id in volumes:
        with open(os.path.join(rig.volume_dir, 'volume-' + volume_id),
                  'r+b') as f:
            f.write(volume_id.encode())
    gs_id = _cast_group_snapshot(rig, group_id)
    state.wait_until(lambda: (_group_snapshot_row(rig, gs_id) or {}).get(
        'status') == 'available', 30, 'group snapshot')
    for volume_id in volumes:  # later writes are not in the snapshot
        with open(os.path.join(rig.volume_dir, 'volume-' + volume_id),
                  'r+b') as f:
            f.write(b'Y' * 36)

    new_group = objects.Group(id=str(uuid.uuid4()), name='copy')
    from volume_worker.flows import group_snapshot as gs_flows
    first_source = sorted(gs_flows.member_snapshot_id(gs_id, v)
                          for v in volumes)[0]
    hung = group_from_src.new_volume_id(new_group.id, first_source)
    rig.hang({hung: 'create_volume_from_snapshot'})
    rig.api.create_group_from_src(rig.ctx, rig.backend, new_group,
                                  group_snapshot_id=gs_id)
    rig.wait_inside({hung: 'create_volume_from_snapshot'})
    rig.kill()
    rig.clear_faults()
    rig.start()

    assert _group_row(rig, new_group.id)['status'] == 'available'
    copies = [v for v in rig.db.live_volumes()
              if v['group_id'] == new_group.id]
    assert len(copies) == 5
    for copy in copies:
        snapshot = rig.db.snapshot(copy['snapshot_id'])
        with open(os.path.join(rig.volume_dir, 'volume-' + copy['id']),
                  'rb') as f:
            assert f.read(36) == snapshot['volume_id'].encode()
    assert not rig.db.journal()
    rig.assert_consistent()
    out = rig.client('create-group-from-src', '--source-group', group_id,
                     '--wait')
    assert out.returncode == 0, out.stderr
