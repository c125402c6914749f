"""FileVolumeDriver on real files in a temporary directory, local transport."""

import errno
import os
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import configuration
from drivers import datapath
from drivers import exception
from drivers import file as file_driver
from drivers import fileops

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]

GiB = 1 << 30
MiB = 1 << 20


def make_driver(directory, **overrides):
    conf = cfg.ConfigOpts()
    section = configuration.Configuration([], config_group='file1', conf=conf)
    driver = file_driver.FileVolumeDriver(configuration=section)
    options = {'file_volume_dir': str(directory), 'target_protocol': 'local',
               'volume_backend_name': 'file1'}
    options.update(overrides)
    for name, value in options.items():
        conf.set_override(name, value, group='file1')
    driver.do_setup(None)
    driver.check_for_setup_error()
    return driver


def new_volume(size=1, **fields):
    return types.SimpleNamespace(id=str(uuid.uuid4()), size=size,
                                 provider_location=None, provider_auth=None,
                                 **fields)


def new_snapshot(volume):
    return types.SimpleNamespace(id=str(uuid.uuid4()), volume_id=volume.id,
                                 volume_size=volume.size)


def write_at(path, offset, data):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def read_at(path, offset, length):
    with open(path, 'rb') as f:
        f.seek(offset)
        return f.read(length)


PATTERN = bytes(range(256)) * 4096          # 1 MiB


@pytest.fixture
def voldir(tmp_path):
    return tmp_path / 'volumes'


@pytest.fixture
def driver(voldir):
    return make_driver(voldir)


# -- create / delete ----------------------------------------------------------

def test_setup_creates_private_directory_and_probes_clone_method(driver,
                                                                 voldir):
    assert voldir.is_dir()
    assert oct(voldir.stat().st_mode & 0o777) == oct(0o700)
    # /tmp here is ext4: no reflinks.
    assert driver.clone_method in ('copy', 'reflink')
    assert not os.listdir(voldir), 'probe files must not be left behind'


def test_create_volume_is_sparse_and_idempotent(driver):
    vol = new_volume(size=3)
    assert driver.create_volume(vol) is None
    path = driver.local_path(vol)
    st = os.stat(path)
    assert os.path.basename(path) == 'volume-' + vol.id
    assert st.st_size == 3 * GiB
    assert st.st_blocks == 0
    assert st.st_mode & 0o777 == 0o600
    driver.create_volume(vol)                       # already there: fine
    assert os.stat(path).st_ino == st.st_ino


def test_create_volume_conflicting_size_is_refused(driver):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    vol.size = 2
    with pytest.raises(exception.InvalidVolume, match='already exists'):
        driver.create_volume(vol)


def test_failed_create_leaves_nothing(driver, voldir):
    vol = new_volume(size=1 << 20)                  # 1 PiB: EFBIG on ext4
    with pytest.raises(exception.VolumeBackendAPIException,
                       match='create_volume failed.*too large'):
        driver.create_volume(vol)
    assert os.listdir(voldir) == []


def test_create_cleans_temporaries_of_an_interrupted_attempt(driver, voldir):
    vol = new_volume()
    stale = voldir / ('.tmp-volume-%s-deadbeef' % vol.id)
    stale.write_bytes(b'half')
    driver.create_volume(vol)
    assert sorted(os.listdir(voldir)) == ['volume-' + vol.id]


def test_delete_volume_absent_is_success(driver):
    vol = new_volume()
    driver.create_volume(vol)
    driver.delete_volume(vol)
    assert not os.path.exists(driver.local_path(vol))
    driver.delete_volume(vol)


def test_delete_with_zero_clear_overwrites_data_first(voldir, monkeypatch):
    driver = make_driver(voldir, file_volume_clear='zero',
                         file_clone_method='copy')
    vol = new_volume()
    driver.create_volume(vol)
    path = driver.local_path(vol)
    write_at(path, 5 * MiB, PATTERN)
    seen = {}
    real_unlink = os.unlink

    def unlink(p, *a, **kw):
        if p == path:
            seen['data'] = read_at(p, 5 * MiB, len(PATTERN))
        return real_unlink(p, *a, **kw)

    monkeypatch.setattr(file_driver.os, 'unlink', unlink)
    driver.delete_volume(vol)
    assert seen['data'] == bytes(len(PATTERN))
    assert not os.path.exists(path)


# -- snapshots, clones, revert, extend ----------------------------------------

def test_snapshot_keeps_its_data_when_the_volume_is_overwritten(driver):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    path = driver.local_path(vol)
    write_at(path, 0, PATTERN)
    write_at(path, GiB - MiB, PATTERN)
    snap = new_snapshot(vol)
    driver.create_snapshot(snap)
    snap_path = os.path.join(driver.layout.directory, 'snapshot-' + snap.id)
    assert os.stat(snap_path).st_mode & 0o777 == 0o400

    write_at(path, 0, b'\xff' * len(PATTERN))
    write_at(path, GiB - MiB, b'\xee' * len(PATTERN))

    assert read_at(snap_path, 0, len(PATTERN)) == PATTERN
    assert read_at(snap_path, GiB - MiB, len(PATTERN)) == PATTERN
    # Holes stayed holes: two 1 MiB extents, not a 1 GiB copy.
    assert fileops.allocated_bytes(snap_path) <= 4 * MiB
    driver.create_snapshot(snap)                    # idempotent
    driver.delete_snapshot(snap)
    assert not os.path.exists(snap_path)
    driver.delete_snapshot(snap)


def test_volume_from_snapshot_may_be_larger(driver):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    write_at(driver.local_path(vol), 123, PATTERN)
    snap = new_snapshot(vol)
    driver.create_snapshot(snap)
    write_at(driver.local_path(vol), 123, bytes(len(PATTERN)))

    clone = new_volume(size=2)
    driver.create_volume_from_snapshot(clone, snap)
    clone_path = driver.local_path(clone)
    assert os.stat(clone_path).st_size == 2 * GiB
    assert os.stat(clone_path).st_mode & 0o777 == 0o600
    assert read_at(clone_path, 123, len(PATTERN)) == PATTERN
    assert read_at(clone_path, GiB + 5, 16) == bytes(16)


def test_volume_from_snapshot_smaller_than_snapshot_is_refused(driver):
    vol = new_volume(size=2)
    driver.create_volume(vol)
    snap = new_snapshot(vol)
    driver.create_snapshot(snap)
    with pytest.raises(exception.InvalidInput, match='cannot make'):
        driver.create_volume_from_snapshot(new_volume(size=1), snap)


def test_cloned_volume_is_independent_and_can_grow(driver):
    src = new_volume(size=1)
    driver.create_volume(src)
    write_at(driver.local_path(src), 7 * MiB, PATTERN)
    clone = new_volume(size=3)
    driver.create_cloned_volume(clone, src)
    write_at(driver.local_path(src), 7 * MiB, b'\x01' * len(PATTERN))
    assert os.stat(driver.local_path(clone)).st_size == 3 * GiB
    assert read_at(driver.local_path(clone), 7 * MiB, len(PATTERN)) == PATTERN


def test_full_copy_clone_honours_volume_copy_bps_limit(voldir):
    import time
    drv = make_driver(voldir, file_clone_method='copy',
                      volume_copy_bps_limit=8 * MiB)
    drv.set_throttle()
    src = new_volume(size=1)
    drv.create_volume(src)
    with open(drv.local_path(src), 'r+b') as f:
        f.write(os.urandom(12 * MiB))
    began = time.monotonic()
    drv.create_cloned_volume(new_volume(size=1), src)
    # 12 MiB at 8 MiB/s (less half a second of burst): over a second.
    assert time.monotonic() - began >= 0.9


def test_clone_of_missing_volume_is_volume_not_found(driver):
    with pytest.raises(exception.VolumeNotFound):
        driver.create_cloned_volume(new_volume(), new_volume())


def test_failed_copy_leaves_no_partial_volume(driver, voldir, monkeypatch):
    src = new_volume()
    driver.create_volume(src)
    write_at(driver.local_path(src), 0, PATTERN)

    def broken(src_fd, dst_fd, length, block_size=0, **kwargs):
        os.pwrite(dst_fd, b'partial', 0)
        raise OSError(errno.EIO, 'simulated I/O error')

    monkeypatch.setattr(driver, 'clone_method', fileops.CLONE_COPY)
    monkeypatch.setattr(fileops, 'sparse_copy_fd', broken)
    clone = new_volume()
    with pytest.raises(exception.VolumeBackendAPIException, match='simulated'):
        driver.create_cloned_volume(clone, src)
    assert os.listdir(voldir) == ['volume-' + src.id]


def test_revert_to_snapshot_restores_data_and_size(driver):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    path = driver.local_path(vol)
    write_at(path, 0, PATTERN)
    snap = new_snapshot(vol)
    driver.create_snapshot(snap)
    write_at(path, 0, b'\x77' * len(PATTERN))
    driver.extend_volume(vol, 2)
    driver.revert_to_snapshot(None, vol, snap)
    assert read_at(path, 0, len(PATTERN)) == PATTERN
    assert os.stat(path).st_size == GiB
    assert os.stat(path).st_mode & 0o777 == 0o600
    # The snapshot is unaffected by later writes to the reverted volume.
    write_at(path, 0, b'\x55' * 10)
    snap_path = os.path.join(driver.layout.directory, 'snapshot-' + snap.id)
    assert read_at(snap_path, 0, 10) == PATTERN[:10]


def test_extend_grows_and_shrink_is_refused(driver):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    write_at(driver.local_path(vol), 0, PATTERN)
    driver.extend_volume(vol, 4)
    assert os.stat(driver.local_path(vol)).st_size == 4 * GiB
    assert read_at(driver.local_path(vol), 0, len(PATTERN)) == PATTERN
    driver.extend_volume(vol, 4)                    # idempotent
    with pytest.raises(exception.InvalidInput, match='shrinking'):
        driver.extend_volume(vol, 2)
    assert os.stat(driver.local_path(vol)).st_size == 4 * GiB


# -- manage / unmanage --------------------------------------------------------

def make_foreign(voldir, name, size):
    path = voldir / name
    with open(path, 'wb') as f:
        f.truncate(size)
    return path


def test_manageable_volumes_listing_and_paging(driver, voldir):
    managed = new_volume(size=2)
    driver.create_volume(managed)
    orphan = new_volume(size=1)
    driver.create_volume(orphan)
    make_foreign(voldir, 'alpha.img', 3 * GiB + 1)
    make_foreign(voldir, 'beta.img', GiB)
    make_foreign(voldir, '.hidden', GiB)
    os.symlink('/etc/passwd', voldir / 'link.img')
    (voldir / 'subdir').mkdir()
    snap = new_snapshot(managed)
    driver.create_snapshot(snap)

    listing = driver.get_manageable_volumes([managed], None, None, 0,
                                            ['reference'], ['asc'])
    by_name = {e['reference']['source-name']: e for e in listing}
    assert sorted(by_name) == sorted(['alpha.img', 'beta.img', 'link.img',
                                      'volume-' + managed.id,
                                      'volume-' + orphan.id])
    assert by_name['alpha.img']['size'] == 4
    assert by_name['alpha.img']['safe_to_manage'] is True
    assert by_name['alpha.img']['cinder_id'] is None
    assert by_name['link.img']['safe_to_manage'] is False
    assert 'symbolic link' in by_name['link.img']['reason_not_safe']
    mine = by_name['volume-' + managed.id]
    assert (mine['safe_to_manage'], mine['cinder_id']) == (False, managed.id)
    assert mine['reason_not_safe'] == 'already managed'
    assert by_name['volume-' + orphan.id]['safe_to_manage'] is False

    by_size = driver.get_manageable_volumes([managed], None, None, 0,
                                            ['size', 'reference'],
                                            ['desc', 'asc'])
    assert by_size[0]['reference'] == {'source-name': 'alpha.img'}
    assert [e['size'] for e in by_size] == sorted(
        (e['size'] for e in by_size), reverse=True)

    page = driver.get_manageable_volumes(
        [managed], {'source-name': 'alpha.img'}, 2, 1, ['reference'],
        ['asc'])
    names = sorted(by_name)
    start = names.index('alpha.img') + 2
    assert [e['reference']['source-name'] for e in page] == \
        names[start:start + 2]
    with pytest.raises(exception.InvalidInput, match='marker'):
        driver.get_manageable_volumes([], {'source-name': 'nope'}, 1, 0,
                                      None, None)
    with pytest.raises(exception.InvalidInput):
        driver.get_manageable_volumes([], None, 1, 0, ['colour'], None)


def test_manage_existing_renames_and_rounds_up(driver, voldir):
    make_foreign(voldir, 'legacy.img', GiB + 4096)
    write_at(voldir / 'legacy.img', 0, PATTERN)
    vol = new_volume(size=None)
    ref = {'source-name': 'legacy.img'}
    assert driver.manage_existing_get_size(vol, ref) == 2
    vol.size = 2
    driver.manage_existing(vol, ref)
    path = driver.local_path(vol)
    assert not (voldir / 'legacy.img').exists()
    assert os.stat(path).st_size == 2 * GiB
    assert read_at(path, 0, len(PATTERN)) == PATTERN
    with pytest.raises(exception.ManageExistingInvalidReference,
                       match='no file'):
        driver.manage_existing_get_size(vol, ref)

    driver.unmanage(vol)
    kept = voldir / ('unmanaged-volume-' + vol.id)
    assert kept.exists() and not os.path.exists(path)
    driver.unmanage(vol)                            # idempotent
    listing = driver.get_manageable_volumes([], None, None, 0, None, None)
    entry = [e for e in listing
             if e['reference']['source-name'] == kept.name][0]
    assert entry['safe_to_manage'] is True


def test_manage_and_unmanage_snapshots(driver, voldir):
    vol = new_volume(size=1)
    driver.create_volume(vol)
    managed_snap = new_snapshot(vol)
    driver.create_snapshot(managed_snap)
    make_foreign(voldir, 'backup-copy.img', GiB)

    listing = driver.get_manageable_snapshots([managed_snap], None, None, 0,
                                              None, None)
    assert [e['reference']['source-name'] for e in listing] == \
        ['snapshot-' + managed_snap.id]
    assert listing[0]['cinder_id'] == managed_snap.id
    assert listing[0]['source_reference'] == {'source-name':
                                              'volume-' + vol.id}

    driver.unmanage_snapshot(managed_snap)
    released = 'unmanaged-snapshot-' + managed_snap.id
    listing = driver.get_manageable_snapshots([], None, None, 0, None, None)
    assert [(e['reference']['source-name'], e['safe_to_manage'])
            for e in listing] == [(released, True)]
    # Snapshot-looking files are not offered as volumes.
    volumes = driver.get_manageable_volumes([], None, None, 0, None, None)
    assert released not in [e['reference']['source-name'] for e in volumes]

    adopted = new_snapshot(vol)
    ref = {'source-name': released}
    assert driver.manage_existing_snapshot_get_size(adopted, ref) == 1
    driver.manage_existing_snapshot(adopted, ref)
    path = voldir / ('snapshot-' + adopted.id)
    assert path.exists() and path.stat().st_mode & 0o777 == 0o400
    clone = new_volume(size=1)
    driver.create_volume_from_snapshot(clone, adopted)

    # A released snapshot adopted as a volume stops looking like a snapshot.
    driver.unmanage_snapshot(adopted)
    as_volume = new_volume(size=1)
    driver.manage_existing(as_volume, {'source-name': released.replace(
        managed_snap.id, adopted.id)})
    volumes = driver.get_manageable_volumes([as_volume], None, None, 0,
                                            None, None)
    assert as_volume.id in [e['cinder_id'] for e in volumes]
    assert driver.get_manageable_snapshots([], None, None, 0, None,
                                           None) == []


# -- hostile input ------------------------------------------------------------

@pytest.mark.parametrize('bad_id', ['../escape', '/etc/passwd', 'a/b', '..',
                                    'x\0y', '.hidden', ''])
def test_hostile_volume_ids_are_refused(driver, voldir, bad_id):
    vol = new_volume()
    vol.id = bad_id
    with pytest.raises(exception.InvalidInput, match='not usable'):
        driver.create_volume(vol)
    snap = types.SimpleNamespace(id=bad_id, volume_id=str(uuid.uuid4()))
    with pytest.raises(exception.InvalidInput):
        driver.delete_snapshot(snap)
    assert os.listdir(voldir) == []


@pytest.mark.parametrize('name, reason', [
    ('../outside.img', 'not a path'),
    ('/etc/passwd', 'not a path'),
    ('sub/file.img', 'not a path'),
    ('..', 'not a path'),
    ('nul\0byte', 'NUL'),
    ('.tmp-volume-x', 'hidden'),
    ('volume-' + str(uuid.uuid4()), 'already manages'),
    ('missing.img', 'no file'),
    ('', 'non-empty'),
])
def test_hostile_references_are_refused(driver, tmp_path, name, reason):
    (tmp_path / 'outside.img').write_bytes(b'secret')
    ref = {'source-name': name}
    with pytest.raises(exception.ManageExistingInvalidReference) as info:
        driver.manage_existing(new_volume(), ref)
    assert reason in str(info.value)
    with pytest.raises(exception.ManageExistingInvalidReference):
        driver.manage_existing_snapshot_get_size(new_snapshot(new_volume()),
                                                 ref)
    assert (tmp_path / 'outside.img').read_bytes() == b'secret'


def test_references_that_are_not_dicts_are_refused(driver):
    for ref in ('plain.img', None, {'source-id': 'x'},
                {'source-name': 42}):
        with pytest.raises(exception.ManageExistingInvalidReference):
            driver.manage_existing_get_size(new_volume(), ref)


def test_symlinks_out_of_the_directory_are_refused(driver, voldir, tmp_path):
    outside = tmp_path / 'outside.img'
    outside.write_bytes(b'x' * 4096)
    os.symlink(outside, voldir / 'escape.img')
    with pytest.raises(exception.ManageExistingInvalidReference,
                       match='symbolic link'):
        driver.manage_existing(new_volume(), {'source-name': 'escape.img'})

    # A planted symlink under a volume's own name is never followed.
    vol = new_volume()
    os.symlink(outside, driver.local_path(vol))
    with pytest.raises(exception.InvalidInput, match='outside'):
        driver.create_volume(vol)
    with pytest.raises(exception.InvalidInput, match='outside'):
        driver.delete_volume(vol)
    with pytest.raises(exception.InvalidInput, match='outside'):
        driver.extend_volume(vol, 5)
    assert outside.read_bytes() == b'x' * 4096

    inside = new_volume()
    driver.create_volume(inside)
    alias = new_volume()
    os.symlink(driver.local_path(inside), os.path.join(
        driver.layout.directory, 'volume-' + alias.id))
    with pytest.raises(exception.InvalidVolume, match='symbolic link'):
        driver.create_cloned_volume(new_volume(), alias)


def test_volume_dir_that_is_a_symlink_is_resolved(tmp_path):
    real = tmp_path / 'real'
    real.mkdir()
    os.symlink(real, tmp_path / 'alias')
    driver = make_driver(tmp_path / 'alias')
    vol = new_volume()
    driver.create_volume(vol)
    assert os.path.dirname(driver.local_path(vol)) == str(real)


def test_relative_volume_dir_is_refused(tmp_path):
    with pytest.raises(exception.InvalidInput, match='absolute'):
        make_driver('relative/dir')


# -- stats and connections ----------------------------------------------------

def test_volume_stats(driver):
    a, b = new_volume(size=2), new_volume(size=3)
    driver.create_volume(a)
    driver.create_volume(b)
    driver.create_snapshot(new_snapshot(a))
    stats = driver.get_volume_stats(refresh=True)
    fs = os.statvfs(driver.layout.directory)
    assert stats['total_capacity_gb'] == round(
        fs.f_blocks * fs.f_frsize / GiB, 2)
    assert stats['free_capacity_gb'] > 0
    assert stats['provisioned_capacity_gb'] == 7.0      # 2 + 3 + snapshot 2
    assert 'allocated_capacity_gb' not in stats
    assert stats['thin_provisioning_support'] is True
    assert stats['thick_provisioning_support'] is False
    assert stats['max_over_subscription_ratio'] == 20.0
    assert stats['volume_backend_name'] == 'file1'
    assert stats['storage_protocol'] == 'local'
    assert stats['driver_version'] == file_driver.FileVolumeDriver.VERSION
    assert stats['clone_method'] == driver.clone_method
    [pool] = stats['pools']
    assert pool['pool_name'] == 'file1' == driver.get_pool(a)
    assert pool['provisioned_capacity_gb'] == 7.0
    assert driver.get_volume_stats() is stats


def test_local_connection_and_exports(driver):
    vol = new_volume()
    driver.create_volume(vol)
    assert driver.create_export(None, vol, {}) is None
    assert driver.ensure_export(None, vol) is None
    info = driver.initialize_connection(vol, {'host': 'h'})
    assert info == {'driver_volume_type': 'local',
                    'data': {'device_path': driver.local_path(vol),
                             'volume_id': vol.id}}
    driver.terminate_connection(vol, {'host': 'h'})
    driver.remove_export(None, vol)


def test_list_opts_covers_the_driver_options():
    [(section, opts)] = file_driver.list_opts()
    names = {o.name for o in opts}
    assert {'file_volume_dir', 'file_volume_clear', 'file_clone_method',
            'file_copy_block_size_mb', 'file_tgtadm_path',
            'file_tgt_control_port'} <= names
    assert all(o.help for o in opts)


# -- data path through os-brick -----------------------------------------------

@pytest.fixture(scope='module')
def os_brick_ready(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('os-brick without a privsep daemon needs root')
    lock_path = str(tmp_path_factory.mktemp('locks'))
    datapath.init_os_brick(cfg.CONF, lock_path=lock_path,
                           in_process_privsep=True)


def test_copy_volume_data_through_os_brick_local(driver, os_brick_ready):
    src, dst = new_volume(size=1), new_volume(size=1)
    driver.create_volume(src)
    driver.create_volume(dst)
    write_at(driver.local_path(src), 3 * MiB, PATTERN)
    write_at(driver.local_path(src), GiB - len(PATTERN), PATTERN)
    # Stale data in the destination where the source has a hole.
    write_at(driver.local_path(dst), 100 * MiB, b'\xdd' * MiB)

    datapath.copy_volume_data(driver.initialize_connection(src, {}),
                              driver.initialize_connection(dst, {}), 1)

    dst_path = driver.local_path(dst)
    assert read_at(dst_path, 3 * MiB, len(PATTERN)) == PATTERN
    assert read_at(dst_path, GiB - len(PATTERN), len(PATTERN)) == PATTERN
    assert read_at(dst_path, 100 * MiB, MiB) == bytes(MiB)
    assert fileops.allocated_bytes(dst_path) <= 4 * MiB


def test_copy_volume_data_reports_failures(driver, os_brick_ready):
    src = new_volume(size=1)
    driver.create_volume(src)
    missing = {'driver_volume_type': 'local',
               'data': {'device_path': '/nonexistent/volume'}}
    with pytest.raises(exception.VolumeBackendAPIException,
                       match='copying volume data failed'):
        datapath.copy_volume_data(driver.initialize_connection(src, {}),
                                  missing, 1)


def test_raw_image_copy_uses_the_generic_data_path(driver, os_brick_ready,
                                                  monkeypatch):
    class Images:
        def show(self, context, image_id):
            return {'disk_format': 'raw', 'container_format': 'bare',
                    'size': 2 * MiB}

        def download(self, context, image_id, data):
            data.write(PATTERN)
            data.write(PATTERN[::-1])

    # os-brick's real probe of this host would touch /etc (NVMe host NQN).
    monkeypatch.setattr(driver, '_local_connector', lambda: {'host': 'h'})
    vol = new_volume(size=1)
    driver.create_volume(vol)
    driver.copy_image_to_volume(None, vol, Images(), 'image-1')
    path = driver.local_path(vol)
    assert read_at(path, 0, 2 * MiB) == PATTERN + PATTERN[::-1]
    assert os.path.getsize(path) == GiB


# -- tgtadm output parsing ----------------------------------------------------

TGTADM_SHOW = """\
Target 1: iqn.2010-10.org.openstack:volume-a
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 3
            Initiator: iqn.2010-04.org.libiscsi alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            Backing store type: null
            Backing store path: None
        LUN: 1
            Type: disk
            Size: 105 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /srv/volumes/volume-a
    Account information:
        userA
    ACL information:
        ALL
Target 3: iqn.2000-01.other:b
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
    Account information:
    ACL information:
"""


def test_parse_tgtadm_targets():
    from drivers import tgt
    targets = tgt.parse_targets(TGTADM_SHOW)
    a = targets['iqn.2010-10.org.openstack:volume-a']
    assert (a.tid, a.luns, a.accounts, a.acls, a.sessions) == (
        1, {1: '/srv/volumes/volume-a'}, ['userA'], ['ALL'], 1)
    b = targets['iqn.2000-01.other:b']
    assert (b.tid, b.luns, b.accounts, b.acls, b.sessions) == (
        3, {}, [], [], 0)


def test_update_provider_info_names_each_objects_file(driver):
    vol = new_volume(1)
    driver.create_volume(vol)
    snap = new_snapshot(vol)
    driver.create_snapshot(snap)
    moved = new_volume(1)
    moved.name_id = vol.id  # after a migration: another id's file
    missing = new_volume(1)
    volumes, snapshots = driver.update_provider_info([vol, moved, missing],
                                                     [snap])
    assert volumes == [{'id': vol.id, 'provider_id': 'volume-' + vol.id},
                       {'id': moved.id, 'provider_id': 'volume-' + vol.id}]
    assert snapshots == [{'id': snap.id,
                          'provider_id': 'snapshot-' + snap.id}]
    vol.provider_id = 'volume-' + vol.id  # recorded: nothing to report
    assert driver.update_provider_info([vol], []) == ([], [])
