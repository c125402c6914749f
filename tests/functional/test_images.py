"""Images end to end: the real broker, a worker process, the file driver.

Volumes are made from images of the worker's embedded store and uploaded
back into it through ``volume-worker-client``; the bytes go through
``qemu-img`` and the os-brick data path. One failure is injected into the
copy, one hostile image is refused, and the worker is killed (-9) inside a
running ``qemu-img convert`` of each direction: after the restart nothing
is left ``downloading``/``uploading`` and no partial image file remains.
"""

import json
import os
import subprocess
import uuid

import pytest

from drivers import exception as driver_exception
from drivers import file_layout
from tests.functional.test_crash_recovery import CrashRig
from volume_worker import image_store
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import state

MiB = 1 << 20
GiB = 1 << 30
# Slow enough that a 48 MiB copy takes seconds: time to kill it midway.
BPS_LIMIT = 8 * MiB

pytestmark = pytest.mark.skipif(
    subprocess.run(['which', 'qemu-img'], capture_output=True).returncode,
    reason='qemu-img (Debian qemu-utils) is not installed')


FIXED_KEY = '5a' * 32


def _image_rig(tmp_path_factory, name, **backend_options):
    from volume_worker import events
    r = CrashRig(tmp_path_factory.mktemp(name),
                 backend_options=backend_options,
                 sections={'key_manager': {'fixed_key': FIXED_KEY}})
    r.clear_faults()
    r.start()
    r.store = image_store.LocalImageStore(
        os.path.join(r.state_dir, 'images'))
    r.events = events.EventStream(r.conf.transport_url,
                                  scheduler_topic=r.conf.scheduler_topic,
                                  capabilities=False)
    r.events.start()
    try:
        yield r
    finally:
        r.events.close()
        r.close()


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    yield from _image_rig(tmp_path_factory, 'images')


@pytest.fixture(scope='module')
def slow_rig(tmp_path_factory):
    """Copies throttled: time to watch them, and to kill them midway."""
    yield from _image_rig(tmp_path_factory, 'slow-images',
                          volume_copy_bps_limit=BPS_LIMIT)


def _disk(tmp_path, name, size=48 * MiB):
    """A raw disk with data at both ends and a hole between."""
    path = str(tmp_path / name)
    head, tail = min(16 * MiB, size // 2), min(8 * MiB, size // 4)
    with open(path, 'wb') as f:
        f.write(os.urandom(head))
        f.truncate(size)
        f.seek(size - tail)
        f.write(os.urandom(tail))
    return path


def _import(rig, tmp_path, fmt='raw', size=48 * MiB):
    raw = _disk(tmp_path, 'disk-%s.raw' % uuid.uuid4(), size)
    source = raw
    if fmt == 'qcow2':
        source = raw + '.qcow2'
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, source], check=True)
    return rig.store.import_file(None, source, 'img', fmt)['id'], raw


def _volume_file(rig, volume_id):
    return os.path.join(rig.volume_dir, file_layout.VOLUME_PREFIX + volume_id)


def _same_disk(a, a_fmt, b, b_fmt):
    """qemu-img compare: the two disks hold the same bytes."""
    return subprocess.run(['qemu-img', 'compare', '-f', a_fmt, '-F', b_fmt,
                           a, b], capture_output=True).returncode == 0


def _client_json(result):
    lines = [json.loads(line) for line in result.stdout.splitlines()
             if line.startswith('{')]
    return lines


@pytest.mark.parametrize('fmt', ['raw', 'qcow2'])
def test_round_trip_through_the_client_compares_equal(rig, tmp_path, fmt):
    image_id, raw = _import(rig, tmp_path, fmt)
    made = rig.client('create', '--size', '1', '--image', image_id, '--wait')
    assert made.returncode == 0, made.stderr
    volume = _client_json(made)[-1]
    assert volume['status'] == VolumeStatus.AVAILABLE
    assert volume['bootable'] is True
    assert volume['image_id'] == image_id
    assert volume['image_metadata']['disk_format'] == fmt
    # Not a terminal: progress comes as JSON lines (when the client saw it
    # before the end).
    for line in _client_json(made)[:-1]:
        assert line['event_type'] == 'volume.create.progress'

    path = _volume_file(rig, volume['id'])
    with open(raw, 'rb') as f, open(path, 'rb') as v:
        assert v.read(48 * MiB) == f.read()

    up = rig.client('copy-volume-to-image', volume['id'], '--name', 'back',
                    '--disk-format', fmt, '--wait')
    assert up.returncode == 0, up.stderr
    result = _client_json(up)[-1]
    assert result['status'] == VolumeStatus.AVAILABLE
    image = rig.store.show(None, result['image_id'])
    assert image['status'] == 'active'
    assert image['disk_format'] == fmt
    assert image['virtual_size'] == GiB
    assert _same_disk(path, 'raw',
                      rig.store.local_path(None, image['id']), fmt)
    assert os.listdir(rig.store.staging) == []


def _progress(rig, volume_id, timeout=30):
    seen = []

    def arrived():
        for event in rig.events.poll(0.2):
            if (event.get('event_type', '').endswith('.progress') and
                    event['payload'].get('volume_id') == volume_id):
                seen.append(event['payload']['percent'])
        return seen and seen[-1] == 100
    state.wait_until(arrived, timeout, 'progress of %s' % volume_id)
    return seen


def test_progress_and_the_throttle(slow_rig, tmp_path):
    rig = slow_rig
    image_id, _raw = _import(rig, tmp_path, size=32 * MiB)
    volume_id = str(uuid.uuid4())
    _cast_from_image(rig, volume_id, image_id)
    percents = _progress(rig, volume_id)
    # 24 MiB of data at 8 MiB/s: seconds, reported along the way.
    assert len(percents) >= 2, percents
    assert percents == sorted(percents)
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)


def _cast_from_image(rig, volume_id, image_id, size=1):
    from volume_worker import objects
    volume = objects.Volume(id=volume_id, size=size, host=rig.backend,
                            metadata={}, display_name='img',
                            image_id=image_id)
    rig.api.create_volume(rig.ctx, rig.backend, volume)


def test_injected_failure_in_the_copy_leaves_nothing(rig, tmp_path):
    image_id, _raw = _import(rig, tmp_path, size=4 * MiB)
    volume_id = str(uuid.uuid4())
    faulty.control(rig.control, {volume_id: {
        'copy_image_to_volume': faulty.RAISE}})
    try:
        _cast_from_image(rig, volume_id, image_id)
        rig.wait_status(volume_id, VolumeStatus.ERROR)
        # (The journal row goes once the revert has ended.)
        state.wait_until(lambda: rig.db.journal() == {}, 10, 'no journal')
    finally:
        rig.clear_faults()
    assert not os.path.exists(_volume_file(rig, volume_id))


def test_hostile_image_is_refused_through_the_worker(rig, tmp_path):
    image = rig.store.create(None, {'name': 'hostile',
                                    'disk_format': 'qcow2'})
    path = os.path.join(rig.store.path, image['id'] + '.img')
    subprocess.run(['qemu-img', 'create', '-f', 'qcow2', '-b', '/etc/shadow',
                    '-F', 'raw', path, '1M'], check=True,
                   capture_output=True)
    image.update(status='active', virtual_size=MiB, size=1)
    rig.store._write_meta(image)
    made = rig.client('create', '--size', '1', '--image', image['id'],
                      '--wait')
    assert made.returncode != 0
    assert 'backing file' in made.stderr
    volume = _client_json(made)[-1]
    assert volume['status'] == VolumeStatus.ERROR
    assert not os.path.exists(_volume_file(rig, volume['id']))


def _converting(volume_id):
    """Pids of the qemu-img processes working on this volume."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmdline = f.read().split(b'\0')
        except OSError:
            continue
        if (cmdline[0].endswith(b'qemu-img') and
                any(volume_id.encode() in arg for arg in cmdline)):
            pids.append(int(pid))
    return pids


def _allocated(path):
    try:
        return os.stat(path).st_blocks > 0
    except FileNotFoundError:
        return False


def test_kill_inside_a_download_resumes_it(slow_rig, tmp_path):
    rig = slow_rig
    image_id, raw = _import(rig, tmp_path)
    volume_id = str(uuid.uuid4())
    _cast_from_image(rig, volume_id, image_id)
    state.wait_until(lambda: _converting(volume_id), 30, 'qemu-img running')
    path = _volume_file(rig, volume_id)
    state.wait_until(lambda: _allocated(path), 30, 'bytes written')
    rig.kill()
    assert rig.db.status(volume_id) == VolumeStatus.DOWNLOADING
    # qemu-img died with the worker: nothing writes behind the next one.
    state.wait_until(lambda: not _converting(volume_id), 10,
                     'qemu-img gone with its worker')
    rig.start()
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE, timeout=60)
    with open(raw, 'rb') as f, open(path, 'rb') as v:
        assert v.read(48 * MiB) == f.read()
    assert rig.db.journal() == {}


def test_kill_inside_an_upload_removes_the_partial_image(slow_rig,
                                                        tmp_path):
    rig = slow_rig
    image_id, _raw = _import(rig, tmp_path)
    volume_id = str(uuid.uuid4())
    _cast_from_image(rig, volume_id, image_id)
    _progress(rig, volume_id, timeout=60)
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)

    new_image = str(uuid.uuid4())
    rig.api.copy_volume_to_image(rig.ctx, rig.backend, volume_id,
                                 {'id': new_image, 'name': 'partial',
                                  'disk_format': 'raw'})
    staged = os.path.join(rig.store.staging, new_image + '.part')
    state.wait_until(lambda: _allocated(staged), 30, 'upload under way')
    assert rig.db.status(volume_id) == VolumeStatus.UPLOADING
    rig.kill()
    state.wait_until(lambda: not _converting(volume_id), 10,
                     'qemu-img gone with its worker')
    assert os.path.exists(staged)
    rig.start()
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE)
    assert not os.path.exists(staged)
    with pytest.raises(driver_exception.ImageNotFound):
        rig.store.show(None, new_image)
    state.wait_until(lambda: rig.db.journal() == {}, 30, 'journal emptied')


def _encrypted_type(rig):
    import datetime
    import sqlalchemy as sa
    from volume_worker.db import models
    type_id = str(uuid.uuid4())
    with rig.db.engine.begin() as conn:
        conn.execute(sa.insert(models.volume_types).values(
            id=type_id, name='luks-%s' % type_id[:8], is_public=True,
            extra_specs={}, encryption={'provider': 'luks',
                                        'cipher': 'aes-xts-plain64',
                                        'key_size': '256'},
            created_at=datetime.datetime.now(), deleted=False))
    return type_id


def test_image_onto_an_encrypted_volume_through_the_worker(rig, tmp_path):
    from volume_worker import keymgr
    from volume_worker import objects
    image_id, raw = _import(rig, tmp_path, size=8 * MiB)
    volume = objects.Volume(id=str(uuid.uuid4()), size=1, host=rig.backend,
                            metadata={}, display_name='enc',
                            image_id=image_id,
                            volume_type_id=_encrypted_type(rig))
    rig.api.create_volume(rig.ctx, rig.backend, volume)
    rig.wait_status(volume.id, VolumeStatus.AVAILABLE, timeout=60)
    assert rig.db.volume(volume.id)['encryption_key_id'] == \
        keymgr.FIXED_KEY_ID
    path = _volume_file(rig, volume.id)
    with open(path, 'rb') as f:
        assert f.read(6) == b'LUKS\xba\xbe'
        with open(raw, 'rb') as plain:
            assert plain.read(MiB) not in f.read()  # ciphertext only
    secret = tmp_path / 'key'
    secret.write_bytes(FIXED_KEY.encode())
    out = str(tmp_path / 'plain')
    subprocess.run(['qemu-img', 'dd', '--object',
                    'secret,id=s0,file=%s' % secret, '--image-opts',
                    '-O', 'raw', 'bs=1M', 'count=8',
                    'if=driver=luks,key-secret=s0,file.filename=%s' % path,
                    'of=%s' % out], check=True, capture_output=True)
    with open(out, 'rb') as f, open(raw, 'rb') as plain:
        assert f.read() == plain.read()
    # Its data cannot leave as a plain image.
    up = rig.client('copy-volume-to-image', volume.id, '--name', 'x',
                    '--wait')
    assert up.returncode != 0 and 'encrypted' in up.stderr


def test_an_in_use_volume_uploads_with_force_from_a_temporary_copy(
        slow_rig, tmp_path):
    """Refused without force; with it, read from a temporary volume made
    from a temporary snapshot (the file driver's
    ``backup_use_temp_snapshot``), which a kill -9 inside the upload does
    not leave behind."""
    from tests.functional.test_backups import _attach, _detach
    rig = slow_rig
    image_id, raw = _import(rig, tmp_path, size=32 * MiB)
    volume_id = str(uuid.uuid4())
    _cast_from_image(rig, volume_id, image_id)
    rig.wait_status(volume_id, VolumeStatus.AVAILABLE, timeout=60)
    attachment = _attach(rig, volume_id)
    rig.wait_status(volume_id, VolumeStatus.IN_USE)
    refused = rig.client('copy-volume-to-image', volume_id, '--name', 'no',
                         '--wait')
    assert refused.returncode != 0 and 'in-use' in refused.stderr
    # Killed inside the upload of the copy.
    before = rig.volume_files()
    killed_image = str(uuid.uuid4())
    rig.api.copy_volume_to_image(rig.ctx, rig.backend, volume_id,
                                 {'id': killed_image, 'name': 'killed',
                                  'disk_format': 'raw'}, force=True)
    staged = os.path.join(rig.store.staging, killed_image + '.part')
    state.wait_until(lambda: _allocated(staged), 60, 'upload under way')
    made = sorted(set(rig.volume_files()) - set(before))
    assert [f.split('-')[0] for f in made] == ['snapshot', 'volume']
    rig.kill()
    rig.start()
    rig.wait_status(volume_id, VolumeStatus.IN_USE)
    state.wait_until(lambda: rig.db.journal() == {}, 30, 'revert done')
    assert rig.volume_files() == before
    assert not os.path.exists(staged)
    with pytest.raises(driver_exception.ImageNotFound):
        rig.store.show(None, killed_image)
    # Through to the end, with the client.
    up = rig.client('copy-volume-to-image', volume_id, '--name', 'forced',
                    '--force', '--wait')
    assert up.returncode == 0, up.stderr
    result = _client_json(up)[-1]
    assert result['status'] == VolumeStatus.IN_USE
    image = rig.store.local_path(None, result['image_id'])
    assert _same_disk(_volume_file(rig, volume_id), 'raw', image, 'raw')
    assert rig.volume_files() == before
    _detach(rig, volume_id, attachment)
