"""Consistent group snapshots of the file driver: one btrfs snapshot, every member at one instant.

On btrfs (a loop device) a writer keeps stamping a round number into three
volumes, one after the other, while group snapshots are taken: in every
group snapshot the members must read as one instant of that writer (no
member ahead of the one written before it, none more than a round
behind). On XFS the driver has no consistent group snapshot and says so.
Through the worker: a group of a consistent type is snapshotted by the
driver's group call, not member by member, and a new group made from it
holds each member's data as of the snapshot.
"""

import json
import os
import struct
import subprocess
import threading
import types
import uuid

import pytest

from drivers import file_groups
from tests.functional.test_crash_recovery import CrashRig
from tests.functional.test_file_driver_reflink import make_driver
from tests.functional.test_file_driver_reflink import new_volume
from tests.functional.test_file_driver_reflink import reflink_mount  # noqa
from volume_worker.testing import drivers as faulty
from volume_worker.testing import process
from volume_worker.testing import state

CONSISTENT = {'consistent_group_snapshot_enabled': '<is> True'}


def _group_snapshot(specs):
    return types.SimpleNamespace(
        id=str(uuid.uuid4()),
        group_type=types.SimpleNamespace(group_specs=specs))


def _member(group_snapshot, volume):
    return types.SimpleNamespace(id=str(uuid.uuid4()), volume_id=volume.id,
                                 group_snapshot_id=group_snapshot.id)


def _stamp(path):
    with open(path, 'rb') as f:
        return struct.unpack('>Q', f.read(8))[0]


def test_members_are_taken_at_one_instant_on_btrfs_only(reflink_mount):  # noqa
    fstype, mountpoint = reflink_mount
    driver = make_driver(mountpoint / ('vols-' + uuid.uuid4().hex[:8]))
    driver._update_volume_stats()
    assert driver._stats['consistent_group_snapshot_enabled'] == (
        fstype == 'btrfs')
    volumes = [new_volume(1) for _ in range(3)]
    for volume in volumes:
        driver.create_volume(volume)
    plain = _group_snapshot({})
    with pytest.raises(NotImplementedError):  # left to the worker
        driver.create_group_snapshot(None, plain, [_member(plain, volumes[0])])
    if fstype != 'btrfs':
        consistent = _group_snapshot(CONSISTENT)
        with pytest.raises(NotImplementedError):
            driver.create_group_snapshot(
                None, consistent, [_member(consistent, v) for v in volumes])
        return

    paths = [driver.local_path(v) for v in volumes]
    stop = threading.Event()
    rounds = [0]

    def writer():
        # Each write durable before the next (as a consumer's ordered writes
        # with flushes are): a snapshot is crash-consistent, so buffered
        # writes of one file still in the page cache need not be in it while
        # a later file's, already written back, are.
        fds = [os.open(p, os.O_WRONLY | os.O_DSYNC) for p in paths]
        try:
            while not stop.is_set():
                rounds[0] += 1
                for fd in fds:  # the first volume first, each round
                    os.pwrite(fd, struct.pack('>Q', rounds[0]), 0)
        finally:
            for fd in fds:
                os.close(fd)
    thread = threading.Thread(target=writer)
    thread.start()
    taken = []
    try:
        for _ in range(15):
            group_snapshot = _group_snapshot(CONSISTENT)
            members = [_member(group_snapshot, v) for v in volumes]
            model, updates = driver.create_group_snapshot(
                None, group_snapshot, members)
            assert model == {'status': 'available'}
            assert [u['status'] for u in updates] == ['available'] * 3
            taken.append([_stamp(driver.layout.snapshot_path(m.id))
                          for m in members])
    finally:
        stop.set()
        thread.join()
    for first, second, third in taken:
        assert first >= second >= third >= first - 1, taken
    assert taken[-1][0] > taken[0][0]  # the writer ran throughout
    leftovers = [n for n in os.listdir(mountpoint)
                 if n.startswith(file_groups.SNAPSHOT_DIR_PREFIX)]
    assert leftovers == []


def _manage(rig, *args):
    return subprocess.run(
        [process.VENV_BIN + '/python', '-m', 'volume_worker.cmd.manage',
         '--config-file', rig.conf_path, *args],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=os.getcwd()))


@pytest.mark.parametrize('reflink_mount', ['btrfs'], indirect=True)
def test_a_consistent_group_through_the_worker(reflink_mount, tmp_path):  # noqa
    # Only btrfs takes consistent group snapshots (the XFS refusal is tested
    # above, on the driver).
    fstype, mountpoint = reflink_mount
    assert fstype == 'btrfs'
    volume_dir = str(mountpoint / ('worker-' + uuid.uuid4().hex[:8]))
    rig = CrashRig(tmp_path, backend_options={'file_volume_dir': volume_dir})
    rig.volume_dir = volume_dir
    rig.clear_faults()
    rig.start()
    try:
        out = _manage(rig, 'group-type', 'create', 'cg', '--spec',
                      'consistent_group_snapshot_enabled=<is> True')
        assert out.returncode == 0, out.stderr
        gtype = json.loads(out.stdout)
        out = rig.client('create-group', '--type', gtype['id'], '--wait')
        assert out.returncode == 0, out.stderr
        group_id = json.loads(out.stdout)['id']
        volumes = rig.create_available(5)
        out = rig.client('update-group', group_id, '--add',
                         ','.join(volumes), '--wait')
        assert out.returncode == 0, out.stderr
        for volume_id in volumes:
            with open(os.path.join(volume_dir, 'volume-' + volume_id),
                      'r+b') as f:
                f.write(volume_id.encode())
        out = rig.client('create-group-snapshot', group_id, '--wait')
        assert out.returncode == 0, out.stderr
        gs_id = json.loads(out.stdout)['id']
        for volume_id in volumes:  # not in the snapshot
            with open(os.path.join(volume_dir, 'volume-' + volume_id),
                      'r+b') as f:
                f.write(b'Z' * 36)
        # The driver took them in its group call, not one by one.
        assert not [c for c in faulty.calls(rig.control)
                    if c[0] == 'create_snapshot']
        out = rig.client('create-group-from-src', '--group-snapshot', gs_id,
                         '--wait')
        assert out.returncode == 0, out.stderr
        copy_id = json.loads(out.stdout)['id']
        copies = [v for v in rig.db.live_volumes()
                  if v['group_id'] == copy_id]
        assert len(copies) == 5
        for copy in copies:
            source = rig.db.snapshot(copy['snapshot_id'])['volume_id']
            with open(os.path.join(volume_dir, 'volume-' + copy['id']),
                      'rb') as f:
                assert f.read(36) == source.encode()
        out = rig.client('delete-group', copy_id, '--delete-volumes',
                         '--wait')
        assert out.returncode == 0, out.stderr
        out = rig.client('delete-group', group_id, '--delete-volumes',
                         '--wait')
        assert out.returncode != 0 and 'snapshot' in out.stderr
        out = rig.client('delete-group-snapshot', gs_id, '--wait')
        assert out.returncode == 0, out.stderr
        out = rig.client('delete-group', group_id, '--delete-volumes',
                         '--wait')
        assert out.returncode == 0, out.stderr
        state.wait_until(lambda: not rig.db.journal(), 30, 'journal empty')
        rig.assert_consistent()
    finally:
        rig.close()
