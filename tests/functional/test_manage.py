"""Manage, unmanage and transfer end to end: the real broker, a worker, the file driver.

A file put into the backend directory by hand is listed as manageable,
adopted as a volume (its bytes intact, its size rounded up to GiB), let go
again (the file stays, renamed), and hostile references are refused with
the volume in ``error_managing`` and the file system untouched. One kill -9
inside the adoption; accept_transfer moves a volume and its snapshots.
"""

import json
import os
import uuid

import pytest

from volume_worker import exception
from tests.functional.test_crash_recovery import running_rig
from tests.functional.test_snapshots import _cast_snapshot
from tests.functional.test_snapshots import _wait_snapshot
from volume_worker.objects import SnapshotStatus
from volume_worker.objects import VolumeStatus

GiB = 1 << 30


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    yield from running_rig(tmp_path_factory, 'manage')


def _place(rig, name, data=b'', size=None):
    path = os.path.join(rig.volume_dir, name)
    with open(path, 'wb') as f:
        f.write(data)
        if size:
            f.truncate(size)
    return path


def _manage(rig, ref, volume_id=None):
    from volume_worker import objects
    volume = objects.Volume(id=volume_id or str(uuid.uuid4()),
                            host=rig.backend, display_name='adopted')
    rig.api.manage_existing(rig.ctx, rig.backend, volume, ref)
    return volume.id


def test_manage_a_file_then_unmanage_it(rig):
    name = 'legacy-disk-%s.img' % uuid.uuid4().hex[:6]
    _place(rig, name, b'data from before', size=GiB + 5)
    listed = rig.api.get_manageable_volumes(rig.ctx, rig.backend,
                                            sort_keys=['size'],
                                            sort_dirs=['desc'])
    entry = next(e for e in listed
                 if e['reference'] == {'source-name': name})
    assert entry['safe_to_manage'] and entry['size'] == 2

    volume_id = _manage(rig, {'source-name': name})
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)
    assert rig.db.volume(volume_id)['size'] == 2
    path = os.path.join(rig.volume_dir, 'volume-' + volume_id)
    with open(path, 'rb') as f:
        assert f.read(16) == b'data from before'
    assert os.path.getsize(path) == 2 * GiB
    assert not os.path.exists(os.path.join(rig.volume_dir, name))
    rig.assert_consistent()

    rig.api.delete_volume(rig.ctx, rig.backend, volume_id,
                          unmanage_only=True)
    rig.wait_status(volume_id, VolumeStatus.DELETED)
    kept = os.path.join(rig.volume_dir, 'unmanaged-volume-' + volume_id)
    with open(kept, 'rb') as f:
        assert f.read(16) == b'data from before'
    os.unlink(kept)
    rig.assert_consistent()


def test_manageable_lists_page_and_sort(rig):
    names = ['page-%d-%s' % (i, uuid.uuid4().hex[:4]) for i in range(3)]
    for i, name in enumerate(names):
        _place(rig, name, size=(i + 1) * GiB)
    try:
        everything = rig.api.get_manageable_volumes(
            rig.ctx, rig.backend, sort_keys=['identifier'])
        ours = [e['reference']['source-name'] for e in everything
                if e['reference']['source-name'] in names]
        assert ours == sorted(names)
        by_size = rig.api.get_manageable_volumes(
            rig.ctx, rig.backend, sort_keys=['size'], sort_dirs=['desc'],
            limit=1)
        assert len(by_size) == 1 and by_size[0]['size'] >= 3
        second = rig.api.get_manageable_volumes(
            rig.ctx, rig.backend, sort_keys=['size'], sort_dirs=['desc'],
            limit=1, offset=1)
        assert second[0]['size'] <= by_size[0]['size']
        with pytest.raises(exception.InvalidInput):
            rig.api.get_manageable_volumes(rig.ctx, rig.backend,
                                           sort_keys=['nonsense'])
    finally:
        for name in names:
            os.unlink(os.path.join(rig.volume_dir, name))


@pytest.mark.parametrize('ref', [
    {'source-name': '../outside.img'},
    {'source-name': '/etc/passwd'},
    {'source-name': 'no-such-file'},
    {'source-name': 'link-out'},
    {'bogus': 1},
])
def test_hostile_references_are_refused(rig, tmp_path, ref):
    outside = tmp_path / 'outside.img'
    outside.write_bytes(b'not yours')
    link = os.path.join(rig.volume_dir, 'link-out')
    if not os.path.lexists(link):
        os.symlink(str(outside), link)
    before = sorted(os.listdir(rig.volume_dir))
    volume_id = _manage(rig, ref)
    rig.wait_status(volume_id, VolumeStatus.ERROR_MANAGING)
    assert sorted(os.listdir(rig.volume_dir)) == before
    assert outside.read_bytes() == b'not yours'
    os.unlink(link)
    rig.cast_delete(volume_id)
    rig.wait_status(volume_id, VolumeStatus.DELETED)


def test_kill_inside_the_adoption_then_restart(rig):
    name = 'to-adopt-%s' % uuid.uuid4().hex[:6]
    _place(rig, name, b'adopt me', size=GiB)
    volume_id = str(uuid.uuid4())
    rig.hang({volume_id: 'manage_existing'})
    _manage(rig, {'source-name': name}, volume_id=volume_id)
    rig.wait_inside({volume_id: 'manage_existing'})
    assert rig.db.status(volume_id) == VolumeStatus.MANAGING
    rig.kill()
    rig.clear_faults()
    rig.start()
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    with open(os.path.join(rig.volume_dir, 'volume-' + volume_id),
              'rb') as f:
        assert f.read(8) == b'adopt me'
    rig.assert_consistent()


def test_accept_transfer_and_client(rig):
    [volume_id] = rig.create_available(1)
    snapshot_id = _cast_snapshot(rig, volume_id)
    _wait_snapshot(rig, snapshot_id, SnapshotStatus.AVAILABLE)
    out = rig.client('accept-transfer', volume_id, '--user', 'u2',
                     '--project', 'p2')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['project_id'] == 'p2'
    assert rig.db.snapshot(snapshot_id)['project_id'] == 'p2'
    name = 'cli-adopt-%s' % uuid.uuid4().hex[:6]
    _place(rig, name, size=GiB)
    out = rig.client('manage-existing', '--ref',
                     json.dumps({'source-name': name}), '--wait')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['status'] == 'available'
    out = rig.client('manage-existing', '--ref', '{"source-name": "../x"}',
                     '--wait')
    assert out.returncode != 0 and 'error_managing' in out.stderr
    listed = json.loads(rig.client('get-manageable-volumes').stdout)
    assert isinstance(listed, list)


def _volume_type(rig, **extra_specs):
    import datetime
    import sqlalchemy as sa
    from volume_worker.db import models
    type_id = str(uuid.uuid4())
    with rig.db.engine.begin() as conn:
        conn.execute(sa.insert(models.volume_types).values(
            id=type_id, name='type-%s' % type_id[:8], is_public=True,
            extra_specs=extra_specs, created_at=datetime.datetime.now(),
            deleted=False))
    return type_id


def test_retype_through_the_broker(rig):
    gold = _volume_type(rig, tier='gold')
    [volume_id] = rig.create_available(1)
    out = rig.client('retype', volume_id, gold, '--wait')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)['volume_type_id'] == gold
    assert rig.db.volume(volume_id)['volume_type_id'] == gold
    assert rig.db.status(volume_id) == VolumeStatus.AVAILABLE
    out = rig.client('retype', volume_id, gold, '--wait')
    assert out.returncode != 0 and 'already' in out.stderr
    out = rig.client('retype', volume_id, str(uuid.uuid4()), '--wait')
    assert out.returncode != 0 and 'does not exist' in out.stderr
