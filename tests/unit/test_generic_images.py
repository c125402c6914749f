"""The generic image copies (drivers.generic, drivers.qemu_img) on real files.

A driver that writes only the control path (``FilesDriver``) gets images
onto its volumes and volumes into images through the os-brick data path and
``qemu-img``; hostile images are refused before the volume is attached.
"""

import hashlib
import os
import subprocess
import time
import uuid

import pytest

from drivers import exception
from drivers import throttle
from tests.unit.test_driver_base import FilesDriver  # noqa: F401
from tests.unit.test_driver_base import files  # noqa: F401
from tests.unit.test_driver_base import new_volume
from tests.unit.test_driver_base import os_brick_ready  # noqa: F401
from tests.unit.test_driver_base import read_at
from tests.unit.test_driver_base import write_at
from volume_worker import image_store

MiB = 1 << 20
GiB = 1 << 30
PATTERN = bytes(range(256)) * 4096  # 1 MiB

pytestmark = pytest.mark.skipif(
    subprocess.run(['which', 'qemu-img'], capture_output=True).returncode,
    reason='qemu-img (Debian qemu-utils) is not installed')


class MemoryImages:
    """An image service keeping nothing on this host (as Glance would)."""

    def __init__(self):
        self.images = {}
        self.meta = {}

    def add(self, image_id, data, **meta):
        self.images[image_id] = data
        self.meta[image_id] = dict(meta, size=len(data))

    def show(self, context, image_id):
        return self.meta[image_id]

    def local_path(self, context, image_id):
        return None

    def staging_path(self, context, image_id):
        return None

    def download(self, context, image_id, data):
        for offset in range(0, len(self.images[image_id]), MiB):
            data.write(self.images[image_id][offset:offset + MiB])

    def update(self, context, image_id, image_meta, data):
        self.meta[image_id] = image_meta
        self.images[image_id] = data  # the finished file, kept as it is


@pytest.fixture
def store(tmp_path):
    return image_store.LocalImageStore(str(tmp_path / 'images'))


def qemu_img(*args):
    subprocess.run(('qemu-img',) + args, check=True, capture_output=True)


def raw_file(path, size=8 * MiB):
    with open(path, 'wb') as f:
        f.truncate(size)
        f.seek(MiB)
        f.write(PATTERN)
        f.seek(size - MiB)
        f.write(PATTERN[::-1])
    return str(path)


def same_disk(raw_path, image_path, fmt):
    """Whether the image holds the raw file's disk (qemu-img compare)."""
    return subprocess.run(['qemu-img', 'compare', '-f', 'raw', '-F', fmt,
                           raw_path, image_path],
                          capture_output=True).returncode == 0


def volume_with(files, size=1):
    vol = new_volume(size)
    files.create_volume(vol)
    return vol


class TestImageToVolume:
    def test_glance_like_raw_round_trip(self, files):
        images = MemoryImages()
        images.add('img', PATTERN * 3, disk_format='raw',
                   container_format='bare')
        vol = volume_with(files)
        files.copy_image_to_volume(None, vol, images, 'img')
        assert read_at(files._path(vol), 0, 3 * MiB) == PATTERN * 3
        files.copy_volume_to_image(None, vol, images, {'id': 'out'})
        assert same_disk(files._path(vol), images.images['out'], 'raw')
        assert images.meta['out']['disk_format'] == 'raw'
        assert files.exports == set()

    @pytest.mark.parametrize('fmt', ['raw', 'qcow2'])
    def test_store_round_trip_compares_equal_as_raw(self, files, store,
                                                    tmp_path, fmt):
        source = raw_file(tmp_path / 'disk.raw')
        if fmt == 'qcow2':
            qemu_img('convert', '-f', 'raw', '-O', 'qcow2', source,
                     str(tmp_path / 'disk.qcow2'))
            source = str(tmp_path / 'disk.qcow2')
        image = store.import_file(None, source, 'disk', fmt)
        assert image['virtual_size'] == 8 * MiB
        vol = volume_with(files)
        files.copy_image_to_volume(None, vol, store, image['id'])
        assert read_at(files._path(vol), MiB, MiB) == PATTERN
        assert read_at(files._path(vol), 7 * MiB, MiB) == PATTERN[::-1]
        assert read_at(files._path(vol), 8 * MiB, MiB) == bytes(MiB)

        out = store.create(None, {'name': 'back', 'disk_format': fmt})
        files.copy_volume_to_image(None, vol, store, out)
        back = store.show(None, out['id'])
        assert back['status'] == 'active'
        assert back['disk_format'] == fmt
        assert back['virtual_size'] == GiB
        path = store.local_path(None, out['id'])
        with open(path, 'rb') as f:
            assert back['checksum'] == hashlib.sha256(f.read()).hexdigest()
        assert same_disk(files._path(vol), path, fmt)
        write_at(files._path(vol), 3 * MiB, b'changed')
        assert not same_disk(files._path(vol), path, fmt)
        assert os.listdir(store.staging) == []
        assert files.exports == set()

    def test_progress_follows_the_copy(self, files, store, tmp_path):
        image = store.import_file(None, raw_file(tmp_path / 'd', 64 * MiB),
                                  'd')
        done = []

        class Following:
            def __getattr__(self, name):
                return getattr(store, name)

            def progress(self, nbytes):
                done.append(nbytes)

        files.copy_image_to_volume(None, volume_with(files), Following(),
                                   image['id'])
        assert done and all(n > 0 for n in done)
        assert sum(done) <= 64 * MiB
        assert sum(done) >= 32 * MiB

    def test_throttled_copy_takes_its_time(self, files, store, tmp_path):
        data = tmp_path / 'd'
        data.write_bytes(os.urandom(8 * MiB))
        image = store.import_file(None, str(data), 'd')
        files.throttle = throttle.Throttle(4 * MiB)
        began = time.monotonic()
        files.copy_image_to_volume(None, volume_with(files), store,
                                   image['id'])
        # 8 MiB at 4 MiB/s: 2 s, less qemu-img's first slice (a burst).
        assert time.monotonic() - began >= 1.0

    def test_checksum_mismatch_fails_the_copy(self, files, store, tmp_path):
        image = store.import_file(None, raw_file(tmp_path / 'd'), 'd')
        write_at(store.local_path(None, image['id']), 0, b'tampered')
        with pytest.raises(exception.ImageUnacceptable,
                           match='checksum mismatch'):
            files.copy_image_to_volume(None, volume_with(files), store,
                                       image['id'])
        assert files.exports == set()


def plant(store, tmp_path, name, make, **meta):
    """An image in the store as a compromised store would hold it."""
    path = str(tmp_path / name)
    make(path)
    image = store.create(None, {'name': name})
    os.replace(path, os.path.join(store.path, image['id'] + '.img'))
    image.update(status='active', **meta)
    store._write_meta(image)
    return image['id']


def _qcow2_with_backing(path):
    qemu_img('create', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw',
             path)


def _qcow2_with_data_file(path):
    qemu_img('create', '-f', 'qcow2', '-o',
             'data_file=%s.data' % path, path, '1M')


def _corrupt_qcow2(path):
    qemu_img('create', '-f', 'qcow2', path, '1M')
    write_at(path, 4, b'\xff\xff\xff\xff')  # version 4294967295


def _huge_qcow2(path):
    qemu_img('create', '-f', 'qcow2', path, '2G')


def _raw_with_qcow2_header(path):
    qemu_img('create', '-f', 'qcow2', '-b', '/etc/passwd', '-F', 'raw',
             path)


def _random(path):
    with open(path, 'wb') as f:
        f.write(os.urandom(MiB))


HOSTILE = {
    'backing file': (_qcow2_with_backing, {'disk_format': 'qcow2'},
                     'backing file'),
    'external data file': (_qcow2_with_data_file, {'disk_format': 'qcow2'},
                           'data file'),
    'corrupt header': (_corrupt_qcow2, {'disk_format': 'qcow2'},
                       'not a readable qcow2'),
    'not qcow2 at all': (_random, {'disk_format': 'qcow2'},
                         'not a readable qcow2'),
    'larger than the volume': (_huge_qcow2, {'disk_format': 'qcow2'},
                               'larger than'),
    'lying about its size': (_huge_qcow2, {'disk_format': 'qcow2',
                                           'virtual_size': MiB},
                             'larger than'),
    'raw hiding a qcow2': (_raw_with_qcow2_header, {}, 'qcow2 header'),
    'unknown format': (_random, {'disk_format': 'vmdk'}, 'not one of'),
    'container': (_random, {'container_format': 'ova'}, 'not bare'),
}


@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_images_are_refused_before_any_byte_is_written(
        files, store, tmp_path, case):
    make, meta, reason = HOSTILE[case]
    image_id = plant(store, tmp_path, case.replace(' ', '-'), make, **meta)
    vol = volume_with(files)
    attached = []
    original = files.initialize_connection
    files.initialize_connection = lambda *a, **k: (
        attached.append(1), original(*a, **k))[1]
    with pytest.raises(exception.ImageUnacceptable, match=reason):
        files.copy_image_to_volume(None, vol, store, image_id)
    assert attached == []  # never attached: nothing could be written
    assert files.exports == set()
    with open(files._path(vol), 'rb') as f:
        assert f.read(4 * MiB) == bytes(4 * MiB)


def test_glance_like_image_growing_past_the_volume_is_refused(files):
    class Growing(MemoryImages):
        def download(self, context, image_id, data):
            data.seek(GiB + MiB)
            data.write(PATTERN)
    images = Growing()
    images.add('img', PATTERN)
    images.meta['img']['size'] = None  # size unknown beforehand
    vol = volume_with(files)
    with pytest.raises(exception.ImageUnacceptable, match='larger than'):
        files.copy_image_to_volume(None, vol, images, 'img')
    assert files.exports == set()


def test_unknown_upload_format_is_refused(files, store):
    vol = volume_with(files)
    with pytest.raises(exception.ImageUnacceptable):
        files.copy_volume_to_image(None, vol, store,
                                   {'id': str(uuid.uuid4()),
                                    'disk_format': 'vmdk'})
    assert files.exports == set()


class TestLocalStore:
    def test_import_list_delete(self, store, tmp_path):
        image = store.import_file(None, raw_file(tmp_path / 'd'), 'd')
        assert [i['id'] for i in store.list(None)] == [image['id']]
        assert image['container_format'] == 'bare'
        assert image['size'] == 8 * MiB
        store.delete(None, image['id'])
        assert store.list(None) == []
        assert os.listdir(store.path) == ['staging']

    def test_names_are_never_paths(self, store):
        for bad in ('../../etc/passwd', '', 'x/y'):
            with pytest.raises(exception.ImageNotFound):
                store.show(None, bad)
        store.delete(None, '../x')  # nothing to do, no error

    def test_download_verifies_the_checksum(self, store, tmp_path):
        image = store.import_file(None, raw_file(tmp_path / 'd'), 'd')
        write_at(store.local_path(None, image['id']), 0, b'x')
        with open(tmp_path / 'out', 'wb') as out, \
                pytest.raises(exception.ImageUnacceptable):
            store.download(None, image['id'], out)

    def test_a_failed_import_leaves_nothing(self, store, tmp_path):
        bad = tmp_path / 'bad'
        bad.write_bytes(os.urandom(4096))
        with pytest.raises(exception.ImageUnacceptable):
            store.import_file(None, str(bad), 'bad', 'qcow2')
        assert store.list(None) == []
        assert os.listdir(store.staging) == []


def test_store_knows_an_untouched_file_and_notices_any_write(store,
                                                            tmp_path):
    image = store.import_file(None, raw_file(tmp_path / 'd'), 'd')
    assert store.is_verified(None, image['id'])
    path = store.local_path(None, image['id'])
    with open(path, 'rb') as f:
        f.read()  # reading (atime) changes nothing
    assert store.is_verified(None, image['id'])
    write_at(path, 0, PATTERN[:1])  # the same byte: still a write
    assert not store.is_verified(None, image['id'])


# -- encrypted volumes (LUKS by qemu-img, key from castellan's interface) -------

FIXED_KEY = '0123456789abcdef' * 4


@pytest.fixture
def key_manager():
    from oslo_config import cfg
    from volume_worker import keymgr
    conf = cfg.ConfigOpts()
    keymgr.register_opts(conf)
    conf.set_override('fixed_key', FIXED_KEY, group='key_manager')
    return keymgr.API(conf)


def encrypted_volume(files, key_manager, size=1, **spec):
    import types
    vol = new_volume(size)
    vol.volume_type = types.SimpleNamespace(encryption=dict(
        {'provider': 'luks', 'cipher': 'aes-xts-plain64', 'key_size': '256'},
        **spec))
    vol.encryption_key_id = key_manager.create_key(None, 'AES', 256)
    files.create_volume(vol)
    return vol


def read_luks(path, tmp_path, mib=8):
    """The first ``mib`` MiB of the LUKS volume's plaintext."""
    secret = tmp_path / 'pw'
    secret.write_bytes(FIXED_KEY.encode())
    out = str(tmp_path / 'plain.raw')
    subprocess.run(['qemu-img', 'dd', '--object',
                    'secret,id=s0,file=%s' % secret, '--image-opts',
                    '-O', 'raw', 'bs=1M', 'count=%d' % mib,
                    'if=driver=luks,key-secret=s0,file.filename=%s' % path,
                    'of=%s' % out], check=True, capture_output=True)
    return out


def test_image_onto_an_encrypted_volume(files, store, key_manager, tmp_path,
                                        fmt='qcow2'):
    # (qemu-img encrypts the whole payload, zeros too: a GiB of AES per
    # run, so one format here; the worker test writes a raw one.)
    source = source_raw = raw_file(tmp_path / 'disk.raw')
    if fmt == 'qcow2':
        qemu_img('convert', '-f', 'raw', '-O', 'qcow2', source,
                 str(tmp_path / 'disk.qcow2'))
        source = str(tmp_path / 'disk.qcow2')
    image = store.import_file(None, source, 'disk', fmt)
    files.key_manager = key_manager
    vol = encrypted_volume(files, key_manager)
    files.copy_image_to_encrypted_volume(None, vol, store, image['id'])
    path = files._path(vol)
    assert os.path.getsize(path) == GiB
    with open(path, 'rb') as f:
        assert f.read(6) == b'LUKS\xba\xbe'
        body = f.read()
    assert PATTERN[:4096] not in body  # only ciphertext on the volume
    plain = read_luks(path, tmp_path)
    with open(plain, 'rb') as f, open(source_raw, 'rb') as g:
        assert f.read() == g.read(8 * MiB)
    assert files.exports == set()


def test_encrypted_volume_refuses_an_image_larger_than_its_payload(
        files, store, key_manager, tmp_path):
    image = store.import_file(None, raw_file(tmp_path / 'd', GiB), 'd')
    files.key_manager = key_manager
    vol = encrypted_volume(files, key_manager)  # 1 GiB less the header
    with pytest.raises(exception.ImageUnacceptable, match='larger than'):
        files.copy_image_to_encrypted_volume(None, vol, store, image['id'])
    assert files.exports == set()


def test_encrypted_copy_needs_a_key_manager_and_a_luks_type(
        files, store, key_manager, tmp_path):
    image = store.import_file(None, raw_file(tmp_path / 'd'), 'd')
    vol = encrypted_volume(files, key_manager)
    with pytest.raises(exception.VolumeDriverException,
                       match='no key manager'):
        files.copy_image_to_encrypted_volume(None, vol, store, image['id'])
    files.key_manager = key_manager
    other = encrypted_volume(files, key_manager, provider='plain')
    with pytest.raises(exception.InvalidVolume, match='only luks'):
        files.copy_image_to_encrypted_volume(None, other, store, image['id'])


def test_config_key_manager_behind_castellan(key_manager):
    from castellan.common import exception as castellan_exception
    from castellan.key_manager import key_manager as castellan_km
    from oslo_config import cfg
    from volume_worker import keymgr
    assert isinstance(key_manager, castellan_km.KeyManager)
    key_id = key_manager.create_key(None, 'AES', 256)
    assert key_manager.get(None, key_id).get_encoded().hex() == FIXED_KEY
    with pytest.raises(castellan_exception.KeyManagerError):
        key_manager.create_key(None, 'AES', 128)
    with pytest.raises(castellan_exception.ManagedObjectNotFoundError):
        key_manager.get(None, str(uuid.uuid4()))
    unset = cfg.ConfigOpts()
    keymgr.register_opts(unset)
    with pytest.raises(castellan_exception.KeyManagerError):
        keymgr.API(unset).create_key(None, 'AES', 256)
