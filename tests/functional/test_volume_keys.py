"""Encryption keys through a real worker: keys of their own per volume (the directory key manager), copies, deletes."""

import os
import uuid

import pytest

from tests.functional.test_crash_recovery import CrashRig
from tests.functional.test_images import _encrypted_type
from volume_worker import keymgr
from volume_worker.objects import VolumeStatus
from volume_worker.testing import state


@pytest.fixture(scope='module')
def rig(tmp_path_factory):
    base = tmp_path_factory.mktemp('keys')
    r = CrashRig(base, sections={'key_manager': {
        'backend': keymgr.DIRECTORY_KEY_MANAGER,
        'key_directory': str(base / 'keys')}})
    from volume_worker import events
    r.keys = str(base / 'keys')
    r.clear_faults()
    r.start()
    r.events = events.EventStream(r.conf.transport_url,
                                  scheduler_topic=r.conf.scheduler_topic,
                                  capabilities=False)
    r.events.start()
    try:
        yield r
    finally:
        r.events.close()
        r.close()


def _create(rig, type_id, **fields):
    from volume_worker import objects
    volume = objects.Volume(id=str(uuid.uuid4()), size=1, host=rig.backend,
                            metadata={}, display_name='k',
                            volume_type_id=type_id, **fields)
    rig.api.create_volume(rig.ctx, rig.backend, volume)
    rig.wait_status(volume.id, VolumeStatus.AVAILABLE)
    return rig.db.volume(volume.id)['encryption_key_id']


def _key_bytes(rig, key_id):
    with open(os.path.join(rig.keys, key_id)) as f:
        return f.read()


def test_keys_are_made_copied_and_deleted_with_their_volumes(rig):
    type_id = _encrypted_type(rig)
    source = str(uuid.uuid4())
    from volume_worker import objects
    volume = objects.Volume(id=source, size=1, host=rig.backend, metadata={},
                            display_name='k', volume_type_id=type_id)
    rig.api.create_volume(rig.ctx, rig.backend, volume)
    rig.wait_status(source, VolumeStatus.AVAILABLE)
    source_key = rig.db.volume(source)['encryption_key_id']
    assert source_key and os.listdir(rig.keys) == [source_key]
    clone_key = _create(rig, type_id, source_volid=source)
    assert clone_key != source_key
    assert _key_bytes(rig, clone_key) == _key_bytes(rig, source_key)
    rig.cast_delete(source)
    rig.wait_status(source, VolumeStatus.DELETED)
    assert os.listdir(rig.keys) == [clone_key]
    # A plain volume cannot be copied into an encrypted type.
    from volume_worker import objects as objs
    plain = objs.Volume(id=str(uuid.uuid4()), size=1, host=rig.backend,
                        metadata={}, display_name='p')
    rig.api.create_volume(rig.ctx, rig.backend, plain)
    rig.wait_status(plain.id, VolumeStatus.AVAILABLE)
    refused = objs.Volume(id=str(uuid.uuid4()), size=1, host=rig.backend,
                          metadata={}, display_name='r',
                          volume_type_id=type_id, source_volid=plain.id)
    rig.api.create_volume(rig.ctx, rig.backend, refused)
    errors = []

    def refusal():
        errors.extend(e['payload'] for e in rig.events.poll(0.2)
                      if e.get('event_type') == 'volume.create.error')
        return any(p.get('volume_id') == refused.id for p in errors)
    state.wait_until(refusal, 30, 'the refusal of %s' % refused.id)
    reason = [p for p in errors if p.get('volume_id') == refused.id][0]
    assert 'differ in encryption' in str(reason)
    assert rig.db.volume(refused.id) is None
    assert os.listdir(rig.keys) == [clone_key]
