"""Volumes from images and images from volumes, on the fake driver.

The flows' rules: refusals before anything is created, ``downloading`` /
``uploading``, what is recorded on the volume, failures and crashes leaving
nothing behind (the byte-level copies are tested in test_generic_images and
through a real worker in tests/functional/test_images.py).
"""

import uuid

import pytest

from drivers import exception as driver_exception
from volume_worker import exception
from volume_worker.flows import image as image_flows
from volume_worker import objects
from volume_worker.objects import VolumeStatus

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, driver, notifier  # noqa: F401
from tests.unit.test_runner import ops  # noqa: F401


def from_image(ops, image_id, size=1):
    volume = helpers.new_volume(size)
    volume.image_id = image_id
    return helpers.run(ops, image_flows.FROM_IMAGE, volume=volume), volume


def an_image(ops, body=b'\x07' * 8192):
    return ops.image_service.add(body, name='img')


def to_image(ops, volume_id, image_id=None, disk_format='raw', force=False):
    meta = image_flows.check_image_meta({'id': image_id or str(uuid.uuid4()),
                                         'name': 'up',
                                         'disk_format': disk_format})
    meta['properties'] = {'volume_id': volume_id}
    helpers.run(ops, image_flows.TO_IMAGE, volume=volume_id, force=force,
                store={'image_meta': meta})
    return meta['id']


def test_volume_from_image_is_bootable_and_remembers_the_image(
        ops, driver, notifier):
    image_id = an_image(ops)
    _result, volume = from_image(ops, image_id)
    loaded = objects.Volume.get_by_id(volume.id)
    assert loaded.status == VolumeStatus.AVAILABLE
    assert loaded.bootable is True
    assert loaded.image_id == image_id
    assert loaded.image_metadata['id'] == image_id
    assert loaded.image_metadata['size'] == '8192'
    assert loaded.image_metadata['checksum']
    assert driver.calls['copy_image_to_volume'] == 1
    assert driver.calls['create_volume'] == 1
    # Begin moved it straight to downloading (a new volume: ABSENT ->).
    assert ('volume.create.start', None) in notifier.events or \
        notifier.types()[0] == 'volume.create.start'
    assert 'volume.create.end' in notifier.types()
    assert ('volume.create.progress', 100) in notifier.events


@pytest.mark.parametrize('case', ['missing', 'queued', 'too big', 'format'])
def test_unusable_images_are_refused_before_anything(ops, driver, notifier,
                                                     case):
    images = ops.image_service
    image_id = str(uuid.uuid4())
    if case != 'missing':
        image_id = an_image(ops)
    if case == 'queued':
        images.meta[image_id]['status'] = 'queued'
    if case == 'too big':
        images.meta[image_id]['virtual_size'] = (1 << 30) + 1
    if case == 'format':
        images.meta[image_id]['disk_format'] = 'vmdk'
    with pytest.raises((exception.InvalidInput,
                        driver_exception.ImageNotFound)):
        from_image(ops, image_id)
    assert driver.calls['create_volume'] == 0
    assert notifier.events[-1][1] == 'refused'
    assert objects.Volume.get_all() == []


def test_failed_copy_leaves_an_error_volume_and_nothing_on_the_backend(
        ops, driver, notifier, monkeypatch):
    cleared = []
    monkeypatch.setattr(driver, 'clear_download',
                        lambda context, volume: cleared.append(volume.id))

    def broken(*args, **kwargs):
        raise driver_exception.ImageUnacceptable(image_id='x',
                                                 reason='injected')
    monkeypatch.setattr(driver, 'copy_image_to_volume', broken)
    image_id = an_image(ops)
    volume = helpers.new_volume()
    volume.image_id = image_id
    with pytest.raises(driver_exception.ImageUnacceptable):
        helpers.run(ops, image_flows.FROM_IMAGE, volume=volume)
    assert helpers.status_of(volume.id) == VolumeStatus.ERROR
    assert cleared == [volume.id]
    assert driver.calls['delete_volume'] == 1
    assert volume.id not in driver._volumes
    assert helpers.journal_rows() == []
    assert notifier.types()[-1] == 'volume.create.error'


def test_a_driver_that_clones_the_image_is_not_asked_to_copy(
        ops, driver, monkeypatch):
    seen = []

    def clone_image(volume, image_location, image_id, image_meta,
                    image_service):  # the reference's form
        seen.append((volume.id, image_id))
        driver.create_volume(volume)
        return {'provider_id': 'cloned'}, True
    monkeypatch.setattr(driver, 'clone_image', clone_image)
    image_id = an_image(ops)
    _result, volume = from_image(ops, image_id)
    assert seen == [(volume.id, image_id)]
    assert driver.calls['copy_image_to_volume'] == 0
    loaded = objects.Volume.get_by_id(volume.id)
    assert loaded.provider_id == 'cloned'
    assert loaded.bootable


def test_clone_image_in_later_cinders_form(ops, driver, monkeypatch):
    seen = []

    def clone_image(context, volume, image_location, image_meta,
                    image_service):
        seen.append(image_meta['id'])
        return None, False
    monkeypatch.setattr(driver, 'clone_image', clone_image)
    image_id = an_image(ops)
    from_image(ops, image_id)
    assert seen == [image_id]
    assert driver.calls['copy_image_to_volume'] == 1


def test_crash_inside_the_copy_resumes_and_clears_first(
        ops, driver, notifier, coordinator, monkeypatch):
    image_id = an_image(ops)
    volume = helpers.new_volume()
    volume.image_id = image_id
    with monkeypatch.context() as m:
        helpers.crash_in(m, image_flows.CopyImage)
        with pytest.raises(helpers._Crash):
            helpers.run(ops, image_flows.FROM_IMAGE, volume=volume)
    assert helpers.status_of(volume.id) == VolumeStatus.DOWNLOADING
    cleared = []
    monkeypatch.setattr(driver, 'clear_download',
                        lambda context, vol: cleared.append(vol.id))
    assert helpers.resume_all(driver, notifier, coordinator) == ['done']
    assert cleared == [volume.id]
    assert helpers.status_of(volume.id) == VolumeStatus.AVAILABLE
    assert driver.calls['create_volume'] == 1  # checkpointed, not redone


def test_upload_goes_back_to_available_and_makes_an_active_image(
        ops, driver, notifier):
    volume = helpers.available_volume(ops)
    image_id = to_image(ops, volume.id)
    assert helpers.status_of(volume.id) == VolumeStatus.AVAILABLE
    image = ops.image_service.show(None, image_id)
    assert image['status'] == 'active'
    assert image['properties'] == {'volume_id': volume.id}
    assert 'volume.copy_to_image.end' in notifier.types()
    # The same request again is already done; another image id is fine.
    assert to_image(ops, volume.id, image_id) == image_id
    assert driver.calls['copy_volume_to_image'] == 1


def test_upload_onto_a_foreign_image_id_is_refused(ops, driver):
    volume = helpers.available_volume(ops)
    taken = an_image(ops)
    with pytest.raises(exception.ResourceExists):
        to_image(ops, volume.id, taken)
    assert driver.calls['copy_volume_to_image'] == 0


def test_failed_upload_deletes_the_image_and_restores_the_volume(
        ops, driver, notifier, monkeypatch):
    volume = helpers.available_volume(ops)

    def broken(*args, **kwargs):
        raise driver_exception.VolumeBackendAPIException(data='injected')
    monkeypatch.setattr(driver, 'copy_volume_to_image', broken)
    image_id = str(uuid.uuid4())
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        to_image(ops, volume.id, image_id)
    assert helpers.status_of(volume.id) == VolumeStatus.AVAILABLE
    with pytest.raises(driver_exception.ImageNotFound):
        ops.image_service.show(None, image_id)
    assert notifier.types()[-1] == 'volume.copy_to_image.error'


def test_crash_inside_an_upload_is_reverted(ops, driver, notifier,
                                            coordinator, monkeypatch):
    volume = helpers.available_volume(ops)
    image_id = str(uuid.uuid4())
    with monkeypatch.context() as m:
        helpers.crash_in(m, image_flows.UploadVolume)
        with pytest.raises(helpers._Crash):
            to_image(ops, volume.id, image_id)
    assert helpers.status_of(volume.id) == VolumeStatus.UPLOADING
    assert ops.image_service.show(None, image_id)['status'] == 'queued'
    helpers.resume_all(driver, notifier, coordinator)
    assert helpers.status_of(volume.id) == VolumeStatus.AVAILABLE
    with pytest.raises(driver_exception.ImageNotFound):
        ops.image_service.show(None, image_id)
    assert helpers.journal_rows() == []


def test_uploads_of_in_use_volumes_are_refused(ops):
    volume = helpers.available_volume(ops)
    helpers.attach(ops, volume.id)
    with pytest.raises(exception.InvalidStatus):
        to_image(ops, volume.id)


def _uploaded_from(driver, monkeypatch):
    read = []
    real = driver.copy_volume_to_image

    def recording(context, volume, image_service, image_meta):
        read.append(volume.id)
        return real(context, volume, image_service, image_meta)
    monkeypatch.setattr(driver, 'copy_volume_to_image', recording)
    return read


@pytest.mark.parametrize('temp_snapshot', [False, True])
def test_a_forced_upload_of_an_in_use_volume_reads_a_temporary_copy(
        ops, driver, monkeypatch, temp_snapshot):
    monkeypatch.setattr(driver, 'backup_use_temp_snapshot',
                        lambda: temp_snapshot)
    volume = helpers.available_volume(ops)
    helpers.attach(ops, volume.id)
    read = _uploaded_from(driver, monkeypatch)
    image_id = to_image(ops, volume.id, force=True)
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    assert ops.image_service.show(None, image_id)['status'] == 'active'
    # Not the volume itself: its temporary copy, gone again (backend and
    # database), with the temporary snapshot when there was one.
    assert read and read[0] != volume.id
    assert set(driver._volumes) == {volume.id}
    assert driver.calls['create_snapshot'] == int(temp_snapshot)
    assert driver.calls['delete_snapshot'] == int(temp_snapshot)
    assert [v.id for v in objects.Volume.get_all()] == [volume.id]
    # An available volume with force is read directly.
    other = helpers.available_volume(ops)
    to_image(ops, other.id, force=True)
    assert read[-1] == other.id


def test_a_failed_or_crashed_forced_upload_removes_its_temporary_copy(
        ops, driver, notifier, coordinator, monkeypatch):
    volume = helpers.available_volume(ops)
    helpers.attach(ops, volume.id)

    def broken(*args, **kwargs):
        raise driver_exception.VolumeBackendAPIException(data='injected')
    with monkeypatch.context() as m:
        m.setattr(driver, 'copy_volume_to_image', broken)
        with pytest.raises(driver_exception.VolumeBackendAPIException):
            to_image(ops, volume.id, force=True)
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    assert set(driver._volumes) == {volume.id}
    image_id = str(uuid.uuid4())
    with monkeypatch.context() as m:
        helpers.crash_in(m, image_flows.UploadVolume)
        with pytest.raises(helpers._Crash):
            to_image(ops, volume.id, image_id, force=True)
    assert len(driver._volumes) == 2  # the copy, left by the crash
    helpers.resume_all(driver, notifier, coordinator)
    assert helpers.status_of(volume.id) == VolumeStatus.IN_USE
    assert set(driver._volumes) == {volume.id}
    assert [v.id for v in objects.Volume.get_all()] == [volume.id]
    with pytest.raises(driver_exception.ImageNotFound):
        ops.image_service.show(None, image_id)
    assert helpers.journal_rows() == []


@pytest.mark.parametrize('meta', [
    'not a dict', {'id': 'nope'}, {'id': str(uuid.uuid4()),
                                   'disk_format': 'vmdk'},
    {'id': str(uuid.uuid4()), 'location': 'http://x'},
    {'id': str(uuid.uuid4()), 'container_format': 'ova'},
])
def test_bad_image_meta_is_refused(meta):
    with pytest.raises(exception.InvalidInput):
        image_flows.check_image_meta(meta)


def test_older_readers_see_known_statuses():
    volume = helpers.new_volume()
    volume.status = VolumeStatus.DOWNLOADING
    volume.image_id = str(uuid.uuid4())
    old = volume.obj_to_primitive(target_version='1.2')
    assert old['versioned_object.data']['status'] == 'creating'
    assert 'image_id' not in old['versioned_object.data']


def test_snapshots_backport_as_before():
    snapshot = helpers.new_snapshot(str(uuid.uuid4()))
    old = snapshot.obj_to_primitive(target_version='1.1')
    assert 'group_snapshot_id' not in old['versioned_object.data']


def _encrypted_type():
    from volume_worker import objects as objs
    volume_type = objs.VolumeType(
        id=str(uuid.uuid4()), name='luks-%s' % uuid.uuid4().hex[:6],
        extra_specs={}, encryption={'provider': 'luks',
                                    'cipher': 'aes-xts-plain64',
                                    'key_size': '256'})
    volume_type.create()
    return volume_type


def _key_manager():
    from oslo_config import cfg
    from volume_worker import keymgr
    conf = cfg.ConfigOpts()
    keymgr.register_opts(conf)
    conf.set_override('fixed_key', 'ab' * 32, group='key_manager')
    return keymgr.API(conf)


def test_encrypted_type_gets_a_key_and_the_encrypted_copy(
        ops, driver, monkeypatch):
    from volume_worker import keymgr
    driver.key_manager = _key_manager()
    calls = []
    monkeypatch.setattr(driver, 'clone_image',
                        lambda *a, **k: calls.append('clone') or (None,
                                                                  False))
    original = driver.copy_image_to_encrypted_volume

    def encrypted(context, volume, image_service, image_id):
        calls.append(('encrypted', volume.encryption_key_id))
        return original(context, volume, image_service, image_id)
    monkeypatch.setattr(driver, 'copy_image_to_encrypted_volume', encrypted)
    volume = helpers.new_volume()
    volume.volume_type_id = _encrypted_type().id
    volume.image_id = an_image(ops)
    helpers.run(ops, image_flows.FROM_IMAGE, volume=volume)
    loaded = objects.Volume.get_by_id(volume.id)
    assert loaded.status == VolumeStatus.AVAILABLE
    assert loaded.encryption_key_id == keymgr.FIXED_KEY_ID
    assert calls == [('encrypted', keymgr.FIXED_KEY_ID)]  # never cloned
    assert driver.calls['copy_image_to_volume'] == 0


def test_encrypted_type_without_a_key_manager_fails_cleanly(ops, driver):
    volume = helpers.new_volume()
    volume.volume_type_id = _encrypted_type().id
    volume.image_id = an_image(ops)
    with pytest.raises(exception.InvalidInput, match='key manager'):
        helpers.run(ops, image_flows.FROM_IMAGE, volume=volume)
    assert helpers.status_of(volume.id) == VolumeStatus.ERROR
    assert driver.calls['create_volume'] == 0


def test_client_shows_progress_as_a_bar_on_a_terminal_else_json(capsys):
    import io
    import json

    from volume_worker.cmd import client_core
    from volume_worker.cmd import output

    class Tty(io.StringIO):
        def isatty(self):
            return True

    client = client_core.Client.__new__(client_core.Client)
    payload = {'percent': 40, 'bytes_done': 40, 'total_bytes': 100}
    try:
        output.configure(None, stream=Tty())
        client.show_progress('volume.create.progress', payload)
        client.progress_done()
        captured = capsys.readouterr()
        assert captured.out == ''
        assert captured.err == ('\rvolume.create [' + '#' * 12 + '-' * 18 +
                                ']  40%\n')
        output.configure(None, stream=io.StringIO())
        client.show_progress('volume.create.progress', payload)
        client.progress_done()
        captured = capsys.readouterr()
        assert captured.err == ''
        assert json.loads(captured.out) == dict(
            payload, event_type='volume.create.progress')
    finally:
        output.configure(None, stream=io.StringIO())


def test_uploads_of_encrypted_volumes_are_refused(ops, driver):
    from volume_worker import keymgr
    volume = helpers.available_volume(ops)
    loaded = objects.Volume.get_by_id(volume.id)
    loaded.encryption_key_id = keymgr.FIXED_KEY_ID
    loaded.save()
    with pytest.raises(exception.InvalidInput, match='encrypted'):
        to_image(ops, volume.id)
    assert driver.calls['copy_volume_to_image'] == 0
