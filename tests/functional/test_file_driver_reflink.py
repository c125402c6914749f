"""FileVolumeDriver on btrfs and XFS (reflink) made on loop devices."""

import os
import shutil
import subprocess
import time
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import configuration
from drivers import exception
from drivers import file as file_driver
from drivers import fileops

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]

GiB = 1 << 30
MiB = 1 << 20
PATTERN = bytes(range(256)) * 4096          # 1 MiB

MKFS = {
    'btrfs': (['mkfs.btrfs', '-q', '-f'], 'btrfs-progs'),
    'xfs': (['mkfs.xfs', '-q', '-f', '-m', 'reflink=1'], 'xfsprogs'),
}


def _run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


@pytest.fixture(scope='module', params=sorted(MKFS))
def reflink_mount(request, tmp_path_factory):
    """A fresh filesystem of the param's type mounted on a loop device."""
    fstype = request.param
    mkfs, package = MKFS[fstype]
    if os.geteuid() != 0:
        pytest.skip('loop devices unavailable: needs root')
    for tool in ('losetup', 'mount', mkfs[0]):
        if shutil.which(tool) is None:
            pytest.skip('%s missing (install %s)' % (
                tool, package if tool == mkfs[0] else 'util-linux'))
    base = tmp_path_factory.mktemp(fstype)
    image = base / 'fs.img'
    mountpoint = base / 'mnt'
    mountpoint.mkdir()
    with open(image, 'wb') as f:
        f.truncate(GiB)
    try:
        device = _run('losetup', '-f', '--show', str(image)).stdout.strip()
    except subprocess.CalledProcessError as exc:
        pytest.skip('loop devices unavailable: %s' % exc.stderr.strip())
    try:
        _run(*mkfs, device)
        _run('mount', device, str(mountpoint))
    except subprocess.CalledProcessError as exc:
        subprocess.run(['losetup', '-d', device])
        pytest.skip('cannot make a %s filesystem on %s: %s'
                    % (fstype, device, exc.stderr.strip()))
    try:
        yield fstype, mountpoint
    finally:
        subprocess.run(['umount', str(mountpoint)], check=False)
        subprocess.run(['losetup', '-d', device], check=False)


def make_driver(directory, **overrides):
    conf = cfg.ConfigOpts()
    section = configuration.Configuration([], config_group='file1', conf=conf)
    driver = file_driver.FileVolumeDriver(configuration=section)
    options = {'file_volume_dir': str(directory), 'target_protocol': 'local'}
    options.update(overrides)
    for name, value in options.items():
        conf.set_override(name, value, group='file1')
    driver.do_setup(None)
    return driver


def new_volume(size):
    return types.SimpleNamespace(id=str(uuid.uuid4()), size=size,
                                 provider_location=None, provider_auth=None)


def fill(path, offset, data, count):
    with open(path, 'r+b') as f:
        for i in range(count):
            f.seek(offset + i * len(data))
            f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_at(path, offset, length):
    with open(path, 'rb') as f:
        f.seek(offset)
        return f.read(length)


def shared_extents(path):
    """Number of extents filefrag reports as shared with another file."""
    if shutil.which('filefrag') is None:
        pytest.skip('filefrag missing (install e2fsprogs)')
    out = _run('filefrag', '-v', str(path)).stdout
    return sum('shared' in line for line in out.splitlines())


def free_bytes(path):
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize


@pytest.fixture
def driver(reflink_mount):
    _fstype, mountpoint = reflink_mount
    directory = mountpoint / ('vols-' + uuid.uuid4().hex[:8])
    drv = make_driver(directory)
    yield drv
    shutil.rmtree(directory, ignore_errors=True)


def test_probe_finds_reflink_and_stats_report_it(driver):
    assert driver.clone_method == fileops.CLONE_REFLINK
    assert driver.get_volume_stats(True)['clone_method'] == 'reflink'


def test_ten_gib_clone_shares_extents_and_is_instant(driver, reflink_mount):
    fstype, _ = reflink_mount
    src = new_volume(size=10)
    driver.create_volume(src)
    src_path = driver.local_path(src)
    fill(src_path, 0, PATTERN, 64)                  # 64 MiB of real data
    fill(src_path, 9 * GiB, PATTERN, 16)
    free_before = free_bytes(src_path)

    clone = new_volume(size=10)
    started = time.monotonic()
    driver.create_cloned_volume(clone, src)
    elapsed = time.monotonic() - started
    clone_path = driver.local_path(clone)

    print('\n%s: reflink clone of a 10 GiB volume (80 MiB written) took '
          '%.3f s' % (fstype, elapsed))
    assert elapsed < 5
    assert shared_extents(clone_path) > 0
    # No data was duplicated: far less than the 80 MiB written went.
    assert free_before - free_bytes(src_path) < 16 * MiB
    assert read_at(clone_path, 9 * GiB, len(PATTERN)) == PATTERN


def test_snapshot_on_reflink_is_unaffected_by_writes(driver):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    path = driver.local_path(vol)
    fill(path, 0, PATTERN, 4)
    snap = types.SimpleNamespace(id=str(uuid.uuid4()), volume_id=vol.id)
    driver.create_snapshot(snap)
    snap_path = os.path.join(driver.layout.directory, 'snapshot-' + snap.id)
    assert shared_extents(snap_path) > 0

    fill(path, 0, b'\xab' * MiB, 4)                 # copy-on-write
    assert read_at(snap_path, 0, len(PATTERN)) == PATTERN
    assert read_at(snap_path, 3 * MiB, len(PATTERN)) == PATTERN

    restored = new_volume(size=2)
    driver.create_volume_from_snapshot(restored, snap)
    assert read_at(driver.local_path(restored), MiB, MiB) == PATTERN
    assert os.stat(driver.local_path(restored)).st_size == 2 * GiB

    driver.revert_to_snapshot(None, vol, snap)
    assert read_at(path, 0, len(PATTERN)) == PATTERN


def test_forced_copy_does_not_share_extents(reflink_mount):
    _fstype, mountpoint = reflink_mount
    drv = make_driver(mountpoint / 'copy-vols', file_clone_method='copy')
    assert drv.clone_method == fileops.CLONE_COPY
    src = new_volume(size=1)
    drv.create_volume(src)
    fill(drv.local_path(src), 0, PATTERN, 8)
    clone = new_volume(size=1)
    drv.create_cloned_volume(clone, src)
    assert shared_extents(drv.local_path(clone)) == 0
    fill(drv.local_path(src), 0, b'\0' * MiB, 8)
    assert read_at(drv.local_path(clone), 0, len(PATTERN)) == PATTERN


def test_forced_reflink_on_ext4_is_refused(tmp_path):
    if fileops.probe_reflink(str(tmp_path)):
        pytest.skip('%s supports reflinks' % tmp_path)
    with pytest.raises(exception.VolumeBackendAPIException, match='reflink'):
        make_driver(tmp_path / 'vols', file_clone_method='reflink')


def test_copy_throughput_against_cp(tmp_path):
    """Measure the sparse copy against cp --reflink=never (figures only)."""
    if shutil.which('cp') is None:
        pytest.skip('cp missing (install coreutils)')
    src = tmp_path / 'src'
    with open(src, 'wb') as f:
        f.truncate(GiB)
    fill(src, 0, PATTERN, 256)                      # 256 MiB data, rest hole
    timings = {}
    started = time.monotonic()
    fileops.clone_file(str(src), str(tmp_path / 'ours'), GiB,
                       fileops.CLONE_COPY, 8 * MiB)
    timings['fileops'] = time.monotonic() - started
    started = time.monotonic()
    _run('cp', '--reflink=never', '--sparse=always', str(src),
         str(tmp_path / 'cp'))
    _run('sync', '-f', str(tmp_path / 'cp'))
    timings['cp'] = time.monotonic() - started
    print('\nsparse copy of 1 GiB (256 MiB data): fileops %.3f s '
          '(%.0f MiB/s of data), cp --reflink=never %.3f s (%.0f MiB/s)'
          % (timings['fileops'], 256 / timings['fileops'], timings['cp'],
             256 / timings['cp']))
    assert read_at(tmp_path / 'ours', 255 * MiB, MiB) == PATTERN
    assert fileops.allocated_bytes(tmp_path / 'ours') <= 260 * MiB


# -- raw images of a store on the same filesystem (clone_image) -----------------

def _image_store(root):
    from volume_worker import image_store
    return image_store.LocalImageStore(str(root / ('images-' +
                                                   uuid.uuid4().hex[:8])))


def _raw_image(store, directory, size_gb=4):
    source = directory / ('disk-%s.raw' % uuid.uuid4().hex[:8])
    with open(source, 'wb') as f:
        f.truncate(size_gb * GiB)
    fill(str(source), 0, PATTERN, 32)
    fill(str(source), size_gb * GiB - 16 * MiB, PATTERN, 16)
    image = store.import_file(None, str(source), 'disk')
    os.unlink(source)
    return image


def test_raw_image_on_the_same_filesystem_becomes_a_volume_by_reflink(
        driver, reflink_mount):
    fstype, mountpoint = reflink_mount
    store = _image_store(mountpoint)
    image = _raw_image(store, mountpoint)
    free_before = free_bytes(store.path)
    vol = new_volume(size=4)
    started = time.monotonic()
    update, cloned = driver.clone_image(
        vol, store.get_location(None, image['id']), image['id'], image,
        store)
    elapsed = time.monotonic() - started
    print('\n%s: a 4 GiB raw image (48 MiB of data) cloned in %.3f s'
          % (fstype, elapsed))
    assert cloned is True
    path = driver.local_path(vol)
    assert os.stat(path).st_size == 4 * GiB
    assert shared_extents(path) > 0
    assert free_before - free_bytes(store.path) < 16 * MiB
    assert read_at(path, 4 * GiB - MiB, len(PATTERN)) == PATTERN
    # The image is not touched by writes to the volume.
    fill(path, 0, b'\xab' * MiB, 1)
    assert read_at(store.local_path(None, image['id']), 0,
                   len(PATTERN)) == PATTERN


def test_images_that_cannot_be_shared_are_declined(driver, reflink_mount,
                                                   tmp_path):
    _fstype, mountpoint = reflink_mount
    vol = new_volume(size=1)
    same_fs = _image_store(mountpoint)
    raw = _raw_image(same_fs, mountpoint, size_gb=1)
    qcow2 = dict(raw, disk_format='qcow2')
    location = same_fs.get_location(None, raw['id'])
    assert driver.clone_image(vol, location, raw['id'], qcow2,
                              same_fs) == (None, False)
    assert driver.clone_image(vol, (None, []), raw['id'], raw,
                              same_fs) == (None, False)
    other_fs = _image_store(tmp_path)                   # ext4
    elsewhere = _raw_image(other_fs, tmp_path, size_gb=1)
    assert driver.clone_image(
        vol, other_fs.get_location(None, elsewhere['id']), elsewhere['id'],
        elsewhere, other_fs) == (None, False)
    assert not os.path.exists(driver.local_path(vol))


def test_a_raw_image_hiding_a_qcow2_header_is_refused(driver, reflink_mount):
    _fstype, mountpoint = reflink_mount
    store = _image_store(mountpoint)
    hidden = mountpoint / ('hidden-%s' % uuid.uuid4().hex[:8])
    _run('qemu-img', 'create', '-f', 'qcow2', '-b', '/etc/shadow', '-F',
         'raw', str(hidden), '1M')
    with pytest.raises(exception.ImageUnacceptable):
        store.import_file(None, str(hidden), 'hidden')  # as "raw"
    # Planted behind the store's back, as a compromised store would hold it.
    image = store.create(None, {'name': 'hidden'})
    os.replace(hidden, os.path.join(store.path, image['id'] + '.img'))
    image.update(status='active', size=MiB, virtual_size=MiB)
    store._write_meta(image)
    vol = new_volume(size=1)
    with pytest.raises(exception.ImageUnacceptable, match='qcow2 header'):
        driver.clone_image(vol, store.get_location(None, image['id']),
                           image['id'], image, store)
    assert not os.path.exists(driver.local_path(vol))
