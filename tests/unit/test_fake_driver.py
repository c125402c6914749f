"""Tests of the in-memory fake driver: each operation, idempotency, faults, stats."""

import threading
import time
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import configuration
from drivers import exception
from drivers import fake

GROUP = 'fake1'
CONNECTOR = {'initiator': 'iqn.1994-05.com.redhat:host1', 'host': 'host1'}


def make_driver(**overrides):
    conf = cfg.ConfigOpts()
    driver = fake.FakeDriver(configuration=configuration.Configuration(
        config_group=GROUP, conf=conf), host='node@fake1')
    for name, value in overrides.items():
        conf.set_override(name, value, group=GROUP)
    return driver


@pytest.fixture
def driver():
    return make_driver()


def volume(size=1, pool='pool1', **fields):
    volume_id = fields.pop('id', None) or str(uuid.uuid4())
    fields.setdefault('provider_location', None)
    fields.setdefault('provider_auth', None)
    host = 'node@fake1#%s' % pool if pool else 'node@fake1'
    return types.SimpleNamespace(id=volume_id, size=size,
                                 name='volume-' + volume_id, host=host,
                                 status='creating', volume_type_id=None,
                                 metadata={}, **fields)


def snapshot(vol, **fields):
    snapshot_id = fields.pop('id', None) or str(uuid.uuid4())
    return types.SimpleNamespace(id=snapshot_id, volume_id=vol.id,
                                 volume_size=vol.size,
                                 name='snapshot-' + snapshot_id,
                                 status='creating', provider_location=None,
                                 **fields)


class Lookup:
    """The ``db`` collaborator drivers load objects through."""

    def __init__(self, *objects):
        self.objects = {obj.id: obj for obj in objects}

    def volume_get(self, context, volume_id):
        return self.objects[volume_id]

    def snapshot_get(self, context, snapshot_id):
        return self.objects[snapshot_id]


def created(driver, size=1, **fields):
    vol = volume(size, **fields)
    driver.create_volume(vol)
    return vol


def sizes(driver):
    return {vid: rec['size'] for vid, rec in driver._volumes.items()}


class TestVolumes:
    def test_create_and_delete(self, driver):
        vol = created(driver, 5)
        assert sizes(driver) == {vol.id: 5}
        driver.delete_volume(vol)
        assert sizes(driver) == {}

    def test_create_is_idempotent(self, driver):
        vol = created(driver, 5)
        assert driver.create_volume(vol) is None
        assert sizes(driver) == {vol.id: 5}

    def test_create_conflicting_size_is_refused(self, driver):
        vol = created(driver, 5)
        vol.size = 6
        with pytest.raises(exception.InvalidVolume):
            driver.create_volume(vol)

    def test_delete_of_absent_volume_succeeds(self, driver):
        driver.delete_volume(volume())

    def test_delete_with_snapshots_is_refused(self, driver):
        vol = created(driver)
        driver.create_snapshot(snapshot(vol))
        with pytest.raises(exception.VolumeIsBusy):
            driver.delete_volume(vol)

    def test_unknown_pool_is_refused_and_missing_pool_defaults(self, driver):
        with pytest.raises(exception.InvalidVolume):
            driver.create_volume(volume(pool='nope'))
        vol = created(driver, pool=None)
        assert driver._volumes[vol.id]['pool'] == 'pool1'

    def test_extend(self, driver):
        vol = created(driver, 2)
        driver.extend_volume(vol, 4)
        driver.extend_volume(vol, 4)
        assert sizes(driver)[vol.id] == 4

    def test_shrink_is_refused(self, driver):
        vol = created(driver, 2)
        with pytest.raises(exception.InvalidInput):
            driver.extend_volume(vol, 1)

    def test_extend_of_absent_volume(self, driver):
        with pytest.raises(exception.VolumeNotFound):
            driver.extend_volume(volume(), 3)

    def test_clone(self, driver):
        src = created(driver, 3)
        clone = volume(4)
        driver.create_cloned_volume(clone, src)
        driver.create_cloned_volume(clone, src)
        assert sizes(driver)[clone.id] == 4
        with pytest.raises(exception.InvalidInput):
            driver.create_cloned_volume(volume(2), src)
        with pytest.raises(exception.VolumeNotFound):
            driver.create_cloned_volume(volume(4), volume())
        test_volume = volume(3)
        driver.create_replica_test_volume(test_volume, src)
        assert test_volume.id in driver._volumes

    def test_thick_pool_refuses_what_does_not_fit(self):
        driver = make_driver(fake_thin_provisioning=False,
                             fake_total_capacity_gb=10)
        created(driver, 8)
        with pytest.raises(exception.VolumeBackendAPIException):
            driver.create_volume(volume(3))
        vol = created(driver, 2)
        with pytest.raises(exception.VolumeBackendAPIException):
            driver.extend_volume(vol, 3)

    def test_thin_pool_allows_over_subscription_up_to_ratio(self):
        driver = make_driver(fake_total_capacity_gb=10,
                             max_over_subscription_ratio='2.0')
        created(driver, 15)
        with pytest.raises(exception.VolumeBackendAPIException):
            driver.create_volume(volume(6))

    def test_retype_migrate_and_local_path(self, driver):
        vol = created(driver)
        assert driver.retype(None, vol, {}, {}, {}) == (True, None)
        assert driver.migrate_volume(None, vol, {'host': 'x'}) == (
            False, None)
        assert driver.local_path(vol) == 'fake://pool1/%s' % vol.name
        with pytest.raises(exception.VolumeNotFound):
            driver.retype(None, volume(), {}, {}, {})

    def test_update_migrated_volume_takes_the_original_id(self, driver):
        original = volume(2)
        copy = created(driver, 2)
        update = driver.update_migrated_volume(None, original, copy,
                                               'available')
        assert update == {'_name_id': None, 'provider_location': None}
        assert set(driver._volumes) == {original.id}
        assert driver._volumes[original.id]['name'] == original.name

    def test_update_migrated_volume_keeps_copy_when_id_taken(self, driver):
        original, copy = created(driver), created(driver)
        update = driver.update_migrated_volume(None, original, copy,
                                               'available')
        assert update['_name_id'] == copy.id


class TestSnapshots:
    def test_create_delete_idempotent(self, driver):
        vol = created(driver, 2)
        snap = snapshot(vol)
        driver.create_snapshot(snap)
        driver.create_snapshot(snap)
        assert driver._snapshots[snap.id]['size'] == 2
        driver.delete_snapshot(snap)
        driver.delete_snapshot(snap)
        assert driver._snapshots == {}

    def test_snapshot_of_absent_volume(self, driver):
        with pytest.raises(exception.VolumeNotFound):
            driver.create_snapshot(snapshot(volume()))

    def test_volume_from_snapshot(self, driver):
        vol = created(driver, 2)
        snap = snapshot(vol)
        driver.create_snapshot(snap)
        new = volume(3)
        driver.create_volume_from_snapshot(new, snap)
        driver.create_volume_from_snapshot(new, snap)
        assert sizes(driver)[new.id] == 3
        with pytest.raises(exception.InvalidInput):
            driver.create_volume_from_snapshot(volume(1), snap)
        with pytest.raises(exception.SnapshotNotFound):
            driver.create_volume_from_snapshot(volume(2), snapshot(vol))

    def test_revert_restores_snapshot_size(self, driver):
        vol = created(driver, 2)
        snap = snapshot(vol)
        driver.create_snapshot(snap)
        driver.extend_volume(vol, 5)
        driver.revert_to_snapshot(None, vol, snap)
        assert sizes(driver)[vol.id] == 2
        other = created(driver)
        with pytest.raises(exception.InvalidSnapshot):
            driver.revert_to_snapshot(None, other, snap)


class TestExportsAndConnections:
    def test_export_then_connect(self, driver):
        vol = created(driver)
        update = driver.create_export(None, vol, CONNECTOR)
        assert update == driver.create_export(None, vol, CONNECTOR)
        assert update['provider_auth'] is None
        assert update['provider_location'] == (
            '127.0.0.1:3260,1 iqn.2010-10.org.openstack:%s 0' % vol.name)
        info = driver.initialize_connection(vol, CONNECTOR)
        assert info['driver_volume_type'] == 'iscsi'
        assert info['data']['target_iqn'].endswith(vol.name)
        assert info['data']['target_portal'] == '127.0.0.1:3260'
        assert info['data']['volume_id'] == vol.id
        assert driver._volumes[vol.id]['connections'] == [
            CONNECTOR['initiator']]
        driver.terminate_connection(vol, CONNECTOR)
        assert driver._volumes[vol.id]['connections'] == []

    def test_chap_and_multipath(self):
        driver = make_driver(use_chap_auth=True, chap_username='alice',
                             target_secondary_ip_addresses=['10.0.0.2'])
        vol = created(driver)
        update = driver.create_export(None, vol, CONNECTOR)
        method, user, password = update['provider_auth'].split()
        assert (method, user) == ('CHAP', 'alice') and password
        data = driver.initialize_connection(
            vol, dict(CONNECTOR, multipath=True))['data']
        assert data['auth_password'] == password
        assert data['target_portals'] == ['127.0.0.1:3260', '10.0.0.2:3260']

    def test_iser_protocol(self):
        driver = make_driver(target_protocol='iser')
        vol = created(driver)
        driver.create_export(None, vol, CONNECTOR)
        info = driver.initialize_connection(vol, CONNECTOR)
        assert info['driver_volume_type'] == 'iser'
        assert driver.get_volume_stats(True)['storage_protocol'] == 'iSER'

    def test_connect_requires_export_and_initiator(self, driver):
        vol = created(driver)
        with pytest.raises(exception.InvalidVolume):
            driver.initialize_connection(vol, CONNECTOR)
        driver.create_export(None, vol, CONNECTOR)
        with pytest.raises(exception.InvalidConnectorException):
            driver.initialize_connection(vol, {'host': 'h'})
        with pytest.raises(exception.InvalidConnectorException):
            driver.validate_connector({})

    def test_remove_export_and_force_detach(self, driver):
        vol = created(driver)
        driver.create_export(None, vol, CONNECTOR)
        driver.initialize_connection(vol, CONNECTOR)
        driver.terminate_connection(vol, None)
        assert driver._volumes[vol.id]['connections'] == []
        driver.remove_export(None, vol)
        driver.remove_export(None, volume())
        driver.terminate_connection(volume(), CONNECTOR)
        assert not driver._volumes[vol.id]['exported']

    def test_ensure_export(self, driver):
        vol = created(driver)
        update = driver.ensure_export(None, vol)
        assert update['provider_location']
        vol.provider_location = update['provider_location']
        assert driver.ensure_export(None, vol) is None
        with pytest.raises(exception.VolumeNotFound):
            driver.ensure_export(None, volume())

    def test_snapshot_export_and_connection(self, driver):
        vol = created(driver)
        snap = snapshot(vol)
        driver.create_snapshot(snap)
        update = driver.create_export_snapshot(None, snap, CONNECTOR)
        assert snap.name in update['provider_location']
        info = driver.initialize_connection_snapshot(snap, CONNECTOR)
        assert info['data']['target_iqn'].endswith(snap.name)
        driver.terminate_connection_snapshot(snap, CONNECTOR)
        driver.remove_export_snapshot(None, snap)
        assert not driver._snapshots[snap.id]['exported']


class TestManage:
    def test_manage_volume(self, driver):
        driver.add_unmanaged_volume('legacy', 7)
        vol = volume(1)
        ref = {'source-name': 'legacy'}
        assert driver.manage_existing_get_size(vol, ref) == 7
        driver.manage_existing(vol, ref)
        driver.manage_existing(vol, ref)
        assert driver.manage_existing_get_size(vol, ref) == 7
        assert sizes(driver) == {vol.id: 7}
        assert driver._unmanaged_volumes == {}
        driver.unmanage(vol)
        driver.unmanage(vol)
        assert driver._unmanaged_volumes[vol.name]['size'] == 7

    @pytest.mark.parametrize('ref', [{}, {'source-name': 'missing'}])
    def test_manage_bad_reference(self, driver, ref):
        with pytest.raises(exception.ManageExistingInvalidReference):
            driver.manage_existing(volume(), ref)

    def test_manageable_volumes_listing(self, driver):
        driver.add_unmanaged_volume('b', 2)
        driver.add_unmanaged_volume('a', 5)
        managed = created(driver, 1)
        listing = driver.get_manageable_volumes([managed], None, None, 0,
                                                ['size'], ['desc'])
        assert [e['size'] for e in listing] == [5, 2, 1]
        assert listing[0]['safe_to_manage'] is True
        assert listing[2]['cinder_id'] == managed.id
        assert listing[2]['safe_to_manage'] is False
        page = driver.get_manageable_volumes([], {'source-name': 'a'}, 1, 0,
                                             ['identifier'], ['asc'])
        assert page[0]['reference'] == {'source-name': 'b'}

    def test_manage_snapshot(self, driver):
        vol = created(driver, 3)
        driver.add_unmanaged_snapshot('snap-old', 3, vol.name)
        listing = driver.get_manageable_snapshots([], None, None, 0, None,
                                                  None)
        assert listing[0]['source_reference'] == {'source-name': vol.name}
        snap = snapshot(vol)
        ref = {'source-name': 'snap-old'}
        assert driver.manage_existing_snapshot_get_size(snap, ref) == 3
        driver.manage_existing_snapshot(snap, ref)
        driver.manage_existing_snapshot(snap, ref)
        assert snap.id in driver._snapshots
        with pytest.raises(exception.VolumeIsBusy):
            driver.unmanage(vol)
        driver.unmanage_snapshot(snap)
        # Adoption renamed it; it is released under its adopted name.
        assert driver._unmanaged_snapshots[snap.name] == {
            'name': snap.name, 'size': 3, 'source_name': vol.name}


class TestGroups:
    def group(self):
        return types.SimpleNamespace(id=str(uuid.uuid4()))

    def test_group_lifecycle(self, driver):
        group = self.group()
        assert driver.create_group(None, group) == {'status': 'available'}
        vols = [created(driver), created(driver)]
        assert driver.update_group(None, group, vols) == (None, None, None)
        assert driver._volumes[vols[0].id]['group_id'] == group.id
        driver.update_group(None, group, remove_volumes=vols[1:])
        assert driver._volumes[vols[1].id]['group_id'] is None
        model, updates = driver.delete_group(None, group, vols)
        assert model == {'status': 'deleted'}
        assert updates == [{'id': v.id, 'status': 'deleted'} for v in vols]
        assert driver._volumes == {}

    def test_delete_group_reports_survivors(self, driver):
        group = self.group()
        vol = created(driver)
        driver.create_snapshot(snapshot(vol))
        model, updates = driver.delete_group(None, group, [vol])
        assert model == {'status': 'error_deleting'}
        assert updates == [{'id': vol.id, 'status': 'error_deleting'}]

    def test_group_snapshot_and_group_from_it(self, driver):
        vols = [created(driver, 1), created(driver, 2)]
        snaps = [snapshot(v) for v in vols]
        group_snapshot = self.group()
        model, updates = driver.create_group_snapshot(None, group_snapshot,
                                                      snaps)
        assert model == {'status': 'available'}
        assert [u['status'] for u in updates] == ['available'] * 2
        new_vols = [volume(2, snapshot_id=snaps[1].id),
                    volume(1, snapshot_id=snaps[0].id)]
        group = self.group()
        model, updates = driver.create_group_from_src(
            None, group, new_vols, group_snapshot, snaps)
        assert model == {'status': 'available'}
        assert all(driver._volumes[v.id]['group_id'] == group.id
                   for v in new_vols)
        model, updates = driver.delete_group_snapshot(None, group_snapshot,
                                                      snaps)
        assert updates == [{'id': s.id, 'status': 'deleted'} for s in snaps]
        assert driver._snapshots == {}

    def test_group_snapshot_marks_failures(self, driver):
        good = created(driver)
        snaps = [snapshot(good), snapshot(volume())]
        model, updates = driver.create_group_snapshot(None, self.group(),
                                                      snaps)
        assert model == {'status': 'error'}
        assert [u['status'] for u in updates] == ['available', 'error']

    def test_group_from_source_volumes_by_position(self, driver):
        sources = [created(driver, 1)]
        clones = [volume(1)]
        model, updates = driver.create_group_from_src(
            None, self.group(), clones, source_vols=sources)
        assert updates == [{'id': clones[0].id, 'status': 'available'}]

    def test_member_faults_fail_that_member_only(self):
        vols = [volume(1), volume(1), volume(1)]
        snaps = [snapshot(v) for v in vols]
        driver = make_driver(fake_member_faults={snaps[1].id: 'raise',
                                                 vols[2].id: 'raise'})
        for vol in vols[:2]:
            driver.create_volume(vol)
        with pytest.raises(exception.VolumeBackendAPIException):
            driver.create_volume(vols[2])  # its single calls too
        model, updates = driver.create_group_snapshot(None, self.group(),
                                                      snaps[:2])
        assert model == {'status': 'error'}
        assert [u['status'] for u in updates] == ['available', 'error']
        copies = [volume(1, snapshot_id=snaps[0].id),
                  volume(1, snapshot_id=snaps[0].id)]
        driver.configuration.conf.set_override(
            'fake_member_faults', {copies[1].id: 'raise'}, group=GROUP)
        model, updates = driver.create_group_from_src(
            None, self.group(), copies, snapshots=[snaps[0]])
        assert [u['status'] for u in updates] == ['available', 'error']
        assert model == {'status': 'error'}
        driver.configuration.conf.set_override(
            'fake_member_faults', {vols[1].id: 'raise'}, group=GROUP)
        model, updates = driver.delete_group(None, self.group(),
                                             [copies[0], vols[1]])
        assert [u['status'] for u in updates] == ['deleted',
                                                  'error_deleting']

    def test_member_faults_are_checked_at_set_up(self):
        driver = make_driver(fake_member_faults={'x': 'soon'})
        with pytest.raises(exception.InvalidInput, match='soon'):
            driver.check_for_setup_error()

    def test_legacy_consistency_group_calls(self, driver):
        group = self.group()
        assert driver.create_consistencygroup(None, group) == {
            'status': 'available'}
        vol = created(driver)
        model, _ = driver.create_cgsnapshot(None, group, [snapshot(vol)])
        assert model == {'status': 'available'}
        driver.delete_cgsnapshot(None, group, list(
            types.SimpleNamespace(id=i) for i in driver._snapshots))
        model, _ = driver.delete_consistencygroup(None, group, [vol])
        assert model == {'status': 'deleted'}


class TestReplication:
    def replicated(self):
        return make_driver(replication_device=[{'backend_id': 'east'},
                                               {'backend_id': 'west'}])

    def test_failover_and_failback(self):
        driver = self.replicated()
        vol = created(driver)
        group = types.SimpleNamespace(id='g1')
        active, vol_updates, group_updates = driver.failover_host(
            None, [vol, volume()], None, [group])
        assert active == 'east' and driver.active_backend_id == 'east'
        assert vol_updates[0] == {
            'volume_id': vol.id,
            'updates': {'replication_status': 'failed-over'}}
        assert vol_updates[1]['updates']['status'] == 'error'
        assert group_updates == [{'group_id': 'g1', 'updates': {
            'replication_status': 'failed-over'}}]
        assert driver.failover_host(None, [], 'west')[0] == 'west'
        assert driver.failover_host(None, [], 'west')[0] == 'west'
        active, vol_updates, _ = driver.failover_host(None, [vol], 'default')
        assert active == 'default' and driver.active_backend_id is None
        assert vol_updates[0]['updates'] == {'replication_status': 'enabled'}
        stats = driver.get_volume_stats(True)
        assert stats['replication_enabled'] is True
        assert stats['replication_targets'] == ['east', 'west']

    def test_failover_errors(self, driver):
        with pytest.raises(exception.UnableToFailOver):
            driver.failover_host(None, [])
        with pytest.raises(exception.InvalidReplicationTarget):
            self.replicated().failover_host(None, [], 'north')

    def test_freeze_thaw(self, driver):
        assert driver.freeze_backend(None) is True and driver.frozen
        assert driver.thaw_backend(None) is True and not driver.frozen

    def test_replica_calls(self):
        driver = self.replicated()
        vol = created(driver)
        assert driver.get_replication_status(None, vol)[
            'replication_status'] == 'active'
        assert driver.promote_replica(None, vol)[
            'replication_status'] == 'inactive'
        assert driver.reenable_replication(None, vol)[
            'replication_status'] == 'active'


class TestImagesBackupsTransfers:
    def test_image_calls(self, driver):
        vol = created(driver)
        assert driver.clone_image(None, vol, 'loc', {}, None) == (None, False)
        driver.copy_image_to_volume(None, vol, None, 'img-1')
        assert driver._volumes[vol.id]['image_id'] == 'img-1'
        driver.copy_image_to_encrypted_volume(None, vol, None, 'img-2')
        from volume_worker.testing import images
        service = images.MemoryImageService()
        image = service.create(None, {'name': 'up'})
        driver.copy_volume_to_image(None, vol, service, image)
        assert service.show(None, image['id'])['status'] == 'active'
        with pytest.raises(exception.VolumeNotFound):
            driver.copy_volume_to_image(None, volume(), service, {})

    def test_backup_and_restore(self, driver):
        vol = created(driver, 2)
        backup = types.SimpleNamespace(id='b1', volume_id=vol.id,
                                       snapshot_id=None)
        snap = snapshot(vol)
        driver.create_snapshot(snap)
        of_snapshot = types.SimpleNamespace(id='b0', volume_id=vol.id,
                                            snapshot_id=snap.id)
        with pytest.raises(NotImplementedError):    # no db collaborator
            driver.get_backup_device(None, backup)
        stray_volume, stray_snapshot = volume(), snapshot(vol)
        driver.db = Lookup(vol, snap, stray_volume, stray_snapshot)
        assert driver.get_backup_device(None, backup) == (vol, False)
        assert driver.get_backup_device(None, of_snapshot) == (snap, True)
        with pytest.raises(exception.VolumeNotFound):   # not on the backend
            driver.get_backup_device(None, types.SimpleNamespace(
                id='b', volume_id=stray_volume.id, snapshot_id=None))
        with pytest.raises(exception.SnapshotNotFound):
            driver.get_backup_device(None, types.SimpleNamespace(
                id='b', volume_id=vol.id, snapshot_id=stray_snapshot.id))
        driver.backup_volume(None, backup, None)
        driver.restore_backup(None, backup, created(driver, 2), None)
        with pytest.raises(exception.InvalidVolume):
            driver.restore_backup(None, backup, created(driver, 1), None)
        with pytest.raises(exception.NotFound):
            driver.restore_backup(None, types.SimpleNamespace(id='b2'), vol,
                                  None)

    def test_accept_transfer(self, driver):
        vol = created(driver)
        driver.accept_transfer(None, vol, 'user', 'project-2')
        assert driver._volumes[vol.id]['project_id'] == 'project-2'


class TestStats:
    def test_capacity_follows_content(self):
        driver = make_driver(fake_pools=['gold', 'silver'],
                             volume_backend_name='fake1')
        vol = created(driver, 10, pool='gold')
        driver.create_snapshot(snapshot(vol))
        created(driver, 5, pool='silver')
        stats = driver.get_volume_stats(refresh=True)
        for key in ('volume_backend_name', 'vendor_name', 'driver_version',
                    'storage_protocol', 'total_capacity_gb',
                    'free_capacity_gb', 'reserved_percentage',
                    'thin_provisioning_support', 'thick_provisioning_support',
                    'max_over_subscription_ratio', 'provisioned_capacity_gb',
                    'pools'):
            assert key in stats
        assert stats['volume_backend_name'] == 'fake1'
        assert stats['vendor_name'] == 'volume-worker'
        assert stats['total_capacity_gb'] == 2000
        assert stats['provisioned_capacity_gb'] == 15
        assert stats['free_capacity_gb'] == 2000 - 25
        gold, silver = stats['pools']
        assert gold['pool_name'] == 'gold'
        assert (gold['provisioned_capacity_gb'],
                gold['free_capacity_gb']) == (10, 980)
        assert silver['free_capacity_gb'] == 995

    def test_stats_are_cached(self, driver):
        driver.get_volume_stats(True)
        created(driver, 10)
        assert driver.get_volume_stats()['provisioned_capacity_gb'] == 0
        assert driver.get_volume_stats(True)['provisioned_capacity_gb'] == 10

    def test_capabilities_and_functions(self):
        driver = make_driver(goodness_function='100')
        assert driver.init_capabilities()['goodness_function'] == '100'

    def test_list_opts(self):
        [(_, opts)] = fake.list_opts()
        assert {o.name for o in opts} >= {
            'fake_total_capacity_gb', 'fake_pools', 'fake_fault_delay',
            'fake_fault_raise', 'fake_thin_provisioning', 'fake_state_path'}


class TestFaultInjection:
    def test_raise(self):
        driver = make_driver(fake_fault_raise=['create_volume'])
        vol = volume()
        with pytest.raises(exception.VolumeBackendAPIException) as error:
            driver.create_volume(vol)
        assert 'create_volume' in str(error.value)
        assert driver._volumes == {}
        driver.delete_volume(vol)

    def test_delay(self):
        driver = make_driver(fake_fault_delay={'create_volume': '0.2'})
        start = time.monotonic()
        created(driver)
        assert 0.2 <= time.monotonic() - start < 1.0

    def test_delay_does_not_hold_the_lock(self):
        driver = make_driver(fake_fault_delay={'create_volume': '0.3'})
        threads = [threading.Thread(target=created, args=(driver,))
                   for _ in range(4)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - start < 0.9
        assert len(driver._volumes) == 4

    def test_delay_then_raise(self):
        driver = make_driver(fake_fault_delay={'delete_volume': '0.1'},
                             fake_fault_raise=['delete_volume'])
        start = time.monotonic()
        with pytest.raises(exception.VolumeBackendAPIException):
            driver.delete_volume(volume())
        assert time.monotonic() - start >= 0.1

    @pytest.mark.parametrize('name, call', [
        ('get_volume_stats', lambda d: d.get_volume_stats(True)),
        ('failover_host', lambda d: d.failover_host(None, [])),
        ('initialize_connection',
         lambda d: d.initialize_connection(volume(), CONNECTOR)),
        ('create_group_snapshot',
         lambda d: d.create_group_snapshot(None, None, [])),
        ('manage_existing', lambda d: d.manage_existing(volume(), {})),
        ('clone_image', lambda d: d.clone_image(None, volume(), '', {}, None)),
        ('do_setup', lambda d: d.do_setup(None)),
    ])
    def test_contract_methods_are_injectable(self, name, call):
        with pytest.raises(exception.VolumeBackendAPIException):
            call(make_driver(fake_fault_raise=[name]))

    def test_subclass_methods_are_injectable(self):
        class Custom(fake.FakeDriver):
            def create_volume(self, volume):
                return {'provider_id': volume.id}
        conf = cfg.ConfigOpts()
        driver = Custom(configuration=configuration.Configuration(
            config_group=GROUP, conf=conf))
        conf.set_override('fake_fault_raise', ['create_volume'], GROUP)
        with pytest.raises(exception.VolumeBackendAPIException):
            driver.create_volume(volume())

    def test_setup_check_rejects_bad_fault_config(self):
        make_driver(fake_fault_delay={'create_volume': '1'}).\
            check_for_setup_error()
        with pytest.raises(exception.InvalidInput):
            make_driver(fake_fault_raise=['no_such']).check_for_setup_error()
        with pytest.raises(exception.InvalidInput):
            make_driver(fake_fault_delay={'create_volume': 'soon'}
                        ).check_for_setup_error()
        driver = make_driver(fake_fault_delay={'delete_volume': '-1'})
        with pytest.raises(exception.InvalidInput):
            driver.delete_volume(volume())

    def test_fault_count_limits_faults_to_the_first_calls(self):
        driver = make_driver(fake_fault_raise=['create_volume'],
                             fake_fault_count={'create_volume': '2'})
        driver.check_for_setup_error()
        for _ in range(2):
            with pytest.raises(exception.VolumeBackendAPIException):
                driver.create_volume(volume())
        driver.create_volume(volume())  # the third goes through
        for bad in ({'create_volume': '-1'}, {'create_volume': 'x'},
                    {'no_such_method': '1'}):
            with pytest.raises(exception.InvalidInput):
                make_driver(fake_fault_count=bad).check_for_setup_error()

    def test_bookkeeping_is_not_injectable(self):
        driver = make_driver(fake_fault_raise=['get_version'])
        assert driver.get_version() == fake.FakeDriver.VERSION


class TestConcurrencyAndPersistence:
    def test_parallel_creates_and_deletes(self, driver):
        vols = [volume(1) for _ in range(40)]

        def churn(vol):
            driver.create_volume(vol)
            driver.create_snapshot(snapshot(vol, id=vol.id))
            driver.delete_snapshot(snapshot(vol, id=vol.id))

        threads = [threading.Thread(target=churn, args=(v,)) for v in vols]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(driver._volumes) == 40 and driver._snapshots == {}
        assert driver.get_volume_stats(True)['provisioned_capacity_gb'] == 40

    def test_state_survives_restart(self, tmp_path):
        path = str(tmp_path / 'fake.json')
        first = make_driver(fake_state_path=path)
        vol = created(first, 3)
        first.create_export(None, vol, CONNECTOR)
        first.create_snapshot(snapshot(vol))
        second = make_driver(fake_state_path=path)
        second.do_setup(None)
        assert sizes(second) == {vol.id: 3}
        assert len(second._snapshots) == 1
        assert second.create_volume(vol) is None
        assert second.initialize_connection(vol, CONNECTOR)['data'][
            'target_iqn'].endswith(vol.name)
