"""Objects: wire round-trips, status enums, persistence with compare-and-swap."""

import uuid

import pytest
from oslo_versionedobjects import exception as ovo_exception

from volume_worker import exception
from volume_worker import objects
from volume_worker.objects import fields
from volume_worker import rpc


def _volume(**kw):
    values = dict(id=str(uuid.uuid4()), size=3, status='creating',
                  host='h@b#p', display_name='vol', metadata={'k': 'v'})
    values.update(kw)
    return objects.Volume(**values)


def test_volume_round_trips_through_the_rpc_serializer():
    ser = rpc.get_serializer()
    volume = _volume(provider_auth='CHAP u s3cret')
    wire = ser.serialize_entity(None, volume)
    assert wire['versioned_object.name'] == 'Volume'
    assert wire['versioned_object.namespace'] == 'volume_worker'
    back = ser.deserialize_entity(None, wire)
    assert isinstance(back, objects.Volume)
    assert (back.id, back.size, back.status, back.metadata,
            back.provider_auth) == (volume.id, 3, 'creating', {'k': 'v'},
                                    'CHAP u s3cret')


def test_snapshot_and_service_round_trip():
    ser = rpc.get_serializer()
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=str(uuid.uuid4()),
                            volume_size=2, status='available')
    back = ser.deserialize_entity(None, ser.serialize_entity(None, snap))
    assert (back.volume_size, back.status, back.name) == (
        2, 'available', 'snapshot-%s' % snap.id)
    svc = objects.Service(id=1, host='h@b', binary='volume-worker', topic='t')
    assert ser.deserialize_entity(
        None, ser.serialize_entity(None, svc)).host == 'h@b'


def test_status_is_an_enum():
    with pytest.raises(ValueError):
        _volume(status='bogus')
    assert objects.VolumeStatus.AVAILABLE == 'available'


@pytest.mark.parametrize('table, enum', [
    (fields.VOLUME_TRANSITIONS, objects.VolumeStatus),
    (fields.SNAPSHOT_TRANSITIONS, objects.SnapshotStatus),
    (fields.ATTACHMENT_TRANSITIONS, fields.AttachStatus),
    (fields.BACKUP_TRANSITIONS, fields.BackupStatus),
])
def test_transition_tables_name_only_real_statuses(table, enum):
    for name, transition in table.all():
        named = set(transition.allowed_from or ()) | set(transition.forced)
        named |= set(transition.settled)
        named |= {transition.via, transition.to, transition.error}
        named -= {None, fields.UNCHANGED}
        assert named <= set(enum.ALL), (name, named - set(enum.ALL))
        if transition.changes_status:
            assert transition.to and transition.error, name
            # Every transitional status says where a restart leaves it
            # (unless the operation also ends in it: then it is settled).
            if transition.via != transition.to:
                assert transition.via in table.on_restart, name
    for stuck, after in table.on_restart.items():
        assert stuck in enum.ALL and after in enum.ALL
        assert after not in table.on_restart  # one step settles it


def test_drivers_can_use_objects_as_dicts():
    volume = _volume(provider_location='/v/1')
    assert volume['size'] == 3 and volume['id'] == volume.id
    assert volume['name'] == 'volume-%s' % volume.id
    assert volume.get('provider_location') == '/v/1'
    volume['replication_status'] = 'copying'
    assert volume.replication_status == 'copying'
    assert 'replication_status' in volume.obj_what_changed()
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=volume.id,
                            volume_size=3)
    assert (snap['volume_id'], snap['volume_size']) == (volume.id, 3)


def test_backend_names_follow_the_templates_and_name_id():
    volume = _volume()
    try:
        objects.configure_names('vol_%s', 'snap_%s')
        assert volume.name == 'vol_%s' % volume.id
        volume._name_id = str(uuid.uuid4())
        assert volume.name == 'vol_%s' % volume._name_id
        assert volume.name_id == volume._name_id
    finally:
        objects.configure_names('volume-%s', 'snapshot-%s')


def test_volume_type_loads_with_its_specs_when_read(database):
    type_id = str(uuid.uuid4())
    objects.VolumeType(id=type_id, name='gold', extra_specs={'k': 'v'},
                       qos_specs={'total_iops_sec': '500'}).create()
    volume = _volume(volume_type_id=type_id)
    volume.obj_fill_unset()
    volume.create()
    loaded = objects.Volume.get_by_id(volume.id)
    assert loaded.volume_type.extra_specs == {'k': 'v'}
    assert loaded['volume_type']['qos_specs'] == {'total_iops_sec': '500'}
    untyped = _volume()
    untyped.obj_fill_unset()
    assert untyped.volume_type is None


def test_volume_backports_to_an_older_reader():
    volume = _volume(project_id='p', multiattach=True, _name_id=None)
    primitive = volume.obj_to_primitive(target_version='1.0')
    data = primitive['versioned_object.data']
    assert primitive['versioned_object.version'] == '1.0'
    assert 'project_id' not in data and 'multiattach' not in data
    assert data['size'] == 3


def test_newer_object_version_is_refused_clearly():
    ser = rpc.get_serializer()
    wire = ser.serialize_entity(None, _volume())
    wire['versioned_object.version'] = '9.0'
    with pytest.raises(ovo_exception.IncompatibleObjectVersion):
        ser.deserialize_entity(None, wire)


def test_notification_payload_never_carries_secrets():
    payload = _volume(provider_auth='CHAP u s3cret').notification_payload()
    assert 's3cret' not in repr(payload)
    assert payload['size'] == 3 and payload['status'] == 'creating'


def test_persistence_and_compare_and_swap(database):
    volume = _volume()
    volume.create()
    loaded = objects.Volume.get_by_id(volume.id)
    assert loaded.metadata == {'k': 'v'} and loaded.created_at is not None
    loaded.status = objects.VolumeStatus.AVAILABLE
    assert loaded.save(expected_status=objects.VolumeStatus.CREATING)
    stale = objects.Volume.get_by_id(volume.id)
    stale.status = objects.VolumeStatus.ERROR
    assert not stale.save(expected_status=objects.VolumeStatus.CREATING)
    assert objects.Volume.get_by_id(volume.id).status == 'available'
    loaded.destroy()
    with pytest.raises(exception.VolumeNotFound):
        objects.Volume.get_by_id(volume.id)
    assert objects.Volume.get_by_id(volume.id, read_deleted=True).deleted


def test_allocated_capacity_grouped_by_pool(database):
    from volume_worker.db import api as db
    for size, host in ((1, 'h@b#p1'), (2, 'h@b#p1'), (5, 'h@b#p2'),
                       (7, 'other@b#p1'), (11, 'h@b2#p1'), (13, 'h@b'),
                       (17, 'h@bb#p1')):
        _volume(size=size, host=host).create()
    assert db.volume_allocated_capacity_by_pool('h@b') == {
        'p1': 3, 'p2': 5, None: 13}


def test_a_volume_lists_its_live_attachments_when_read(database):
    volume = _volume()
    volume.obj_fill_unset()
    volume.create()
    loaded = objects.Volume.get_by_id(volume.id)
    assert loaded.volume_attachment == []
    attachment = objects.VolumeAttachment(
        id=str(uuid.uuid4()), volume_id=volume.id, status='attached',
        host='h@b#p', attached_host='consumer')
    attachment.obj_fill_unset()
    attachment.create()
    again = objects.Volume.get_by_id(volume.id)
    assert [a['attached_host'] for a in again['volume_attachment']] == [
        'consumer']
    older = again.obj_to_primitive(target_version='1.1')
    assert 'volume_attachment' not in older['versioned_object.data']


def test_exported_volume_ids_of_a_backend(database):
    from volume_worker.db import api as db
    made = {}
    for name, host, status, location in (
            ('yes', 'h@b#p1', 'available', 'tgt 1'),
            ('in-use', 'h@b', 'in-use', 'tgt 2'),
            ('no-export', 'h@b#p1', 'available', None),
            ('empty', 'h@b#p1', 'available', ''),
            ('creating', 'h@b#p1', 'creating', 'tgt 3'),
            ('other', 'h@bb#p1', 'available', 'tgt 4')):
        volume = _volume(host=host, status=status)
        volume.provider_location = location
        volume.create()
        made[name] = volume.id
    gone = _volume(host='h@b#p1', status='available')
    gone.provider_location = 'tgt 5'
    gone.create()
    gone.destroy()
    assert db.volume_ids_exported('h@b', ['available', 'in-use']) == \
        sorted([made['yes'], made['in-use']])
