"""Encryption keys on the fake driver: an empty encrypted volume gets one, copies get their own copy, deletes delete it."""

import uuid

import pytest
from oslo_config import cfg

from volume_worker.flows import clone
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.flows import snapshot as snapshot_flows
from volume_worker import exception
from volume_worker import keymgr
from volume_worker import objects
from volume_worker.objects import VolumeStatus

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, driver, notifier  # noqa: F401
from tests.unit.test_runner import ops  # noqa: F401


def _type(encrypted=True, cipher='aes-xts-plain64'):
    volume_type = objects.VolumeType(
        id=str(uuid.uuid4()), name='t-%s' % uuid.uuid4().hex[:6],
        extra_specs={},
        encryption={'provider': 'luks', 'cipher': cipher, 'key_size': '256'}
        if encrypted else None)
    volume_type.create()
    return volume_type.id


@pytest.fixture
def keys(tmp_path, driver):
    conf = cfg.ConfigOpts()
    keymgr.register_opts(conf)
    conf([])
    conf.set_override('backend', keymgr.DIRECTORY_KEY_MANAGER,
                      group='key_manager')
    conf.set_override('key_directory', str(tmp_path / 'keys'),
                      group='key_manager')
    driver.key_manager = keymgr.API(conf)
    return driver.key_manager


def _create(ops, type_id, **fields):
    volume = helpers.new_volume()
    volume.volume_type_id = type_id
    for name, value in fields.items():
        setattr(volume, name, value)
    family = (clone.FROM_VOLUME if fields.get('source_volid') else
              clone.FROM_SNAPSHOT if fields.get('snapshot_id') else
              create_volume.FAMILY)
    helpers.run(ops, family, volume=volume)
    return objects.Volume.get_by_id(volume.id)


def _key(keys, key_id):
    return keys.get(None, key_id).get_encoded()


def test_an_empty_encrypted_volume_gets_a_key_of_its_own(ops, keys):
    type_id = _type()
    first, second = _create(ops, type_id), _create(ops, type_id)
    assert first.status == VolumeStatus.AVAILABLE
    assert first.encryption_key_id and second.encryption_key_id
    assert first.encryption_key_id != second.encryption_key_id
    assert len(_key(keys, first.encryption_key_id)) == 32
    assert _create(ops, _type(encrypted=False)).encryption_key_id is None


def test_copies_get_a_copy_of_the_key_and_deletes_delete_each(ops, keys):
    source = _create(ops, _type())
    cloned = _create(ops, source.volume_type_id, source_volid=source.id)
    snap = helpers.new_snapshot(source.id)
    helpers.run(ops, snapshot_flows.CREATE, snapshot=snap)
    from_snap = _create(ops, source.volume_type_id, snapshot_id=snap.id)
    ids = {source.encryption_key_id, cloned.encryption_key_id,
           from_snap.encryption_key_id}
    assert len(ids) == 3  # three ids ...
    assert {_key(keys, i) for i in ids} == {_key(keys, source.encryption_key_id)}
    # ... so deleting one volume leaves the others' keys.
    helpers.run(ops, delete_volume.FAMILY, volume=cloned.id)
    assert len(keys.list(None)) == 2
    with pytest.raises(Exception):
        keys.get(None, cloned.encryption_key_id)
    helpers.run(ops, delete_volume.FAMILY, volume=from_snap.id)
    helpers.run(ops, snapshot_flows.DELETE, snapshot=snap.id,
                store={'unmanage_only': False})
    helpers.run(ops, delete_volume.FAMILY, volume=source.id)
    assert keys.list(None) == []


def test_a_failed_create_deletes_the_key_it_made(ops, keys, notifier,
                                                coordinator):
    failing = helpers.make_driver(fake_fault_raise=['create_volume'])
    failing.key_manager = keys
    volume = helpers.new_volume()
    volume.volume_type_id = _type()
    with pytest.raises(Exception, match='fault injected'):
        helpers.run(helpers.make_ops(failing, notifier, coordinator),
                    create_volume.FAMILY, volume=volume)
    assert helpers.status_of(volume.id) == VolumeStatus.ERROR
    assert keys.list(None) == []


@pytest.mark.parametrize('source_encrypted', [True, False])
def test_a_copy_changing_encryption_is_refused(ops, keys, driver,
                                               source_encrypted):
    source = _create(ops, _type(encrypted=source_encrypted))
    other = _type(encrypted=not source_encrypted)
    with pytest.raises(exception.InvalidInput, match='differ in encryption'):
        _create(ops, other, source_volid=source.id)
    with pytest.raises(exception.InvalidInput, match='differ in encryption'):
        _create(ops, _type(cipher='aes-cbc-essiv'), source_volid=source.id)
    assert driver.calls['create_cloned_volume'] == 0
    assert len(keys.list(None)) == (1 if source_encrypted else 0)


def test_unmanaging_keeps_the_key_and_the_fixed_key_is_never_deleted(
        ops, keys, driver):
    volume = _create(ops, _type())
    helpers.run(ops, delete_volume.FAMILY, volume=volume.id,
                store={'unmanage_only': True})
    assert len(keys.list(None)) == 1
    conf = cfg.ConfigOpts()
    keymgr.register_opts(conf)
    conf([])
    conf.set_override('fixed_key', 'ab' * 32, group='key_manager')
    driver.key_manager = keymgr.API(conf)
    type_id = _type()
    a, b = _create(ops, type_id), _create(ops, type_id)
    assert a.encryption_key_id == b.encryption_key_id == keymgr.FIXED_KEY_ID
    helpers.run(ops, delete_volume.FAMILY, volume=a.id)
    assert _key(driver.key_manager, b.encryption_key_id)
