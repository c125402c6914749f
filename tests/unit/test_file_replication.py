"""The file driver's replication: copies in the targets, failover, failback."""

import os
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import configuration
from drivers import exception
from drivers import file as file_driver

from tests.unit.test_file_driver import GiB, PATTERN, read_at, write_at

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]

REPLICATED = types.SimpleNamespace(
    extra_specs={'replication_enabled': '<is> True'})


@pytest.fixture
def sites(tmp_path):
    return {name: tmp_path / name for name in ('primary', 'site2', 'site3')}


def make_driver(sites, active=None, devices=('site2', 'site3')):
    conf = cfg.ConfigOpts()
    section = configuration.Configuration([], config_group='file1', conf=conf)
    driver = file_driver.FileVolumeDriver(configuration=section,
                                          host='node@file1',
                                          active_backend_id=active)
    for name, value in {
            'file_volume_dir': str(sites['primary']),
            'target_protocol': 'local', 'volume_backend_name': 'file1',
            'replication_device': [{'backend_id': d, 'path': str(sites[d])}
                                   for d in devices]}.items():
        conf.set_override(name, value, group='file1')
    driver.do_setup(None)
    driver.check_for_setup_error()
    return driver


def volume(replicated=True, size=1):
    return types.SimpleNamespace(
        id=str(uuid.uuid4()), size=size, provider_location=None,
        provider_auth=None, volume_type=REPLICATED if replicated else None)


def copy_path(sites, site, vol):
    return os.path.join(str(sites[site]), 'volume-%s' % vol.id)


def test_replicated_volumes_are_copied_on_every_write_path(sites):
    driver = make_driver(sites)
    vol = volume()
    assert driver.create_volume(vol) == {'replication_status': 'enabled'}
    write_at(driver.local_path(vol), 5 * (1 << 20), PATTERN)
    driver.extend_volume(vol, 2)
    for site in ('site2', 'site3'):
        path = copy_path(sites, site, vol)
        assert os.path.getsize(path) == 2 * GiB
        assert read_at(path, 5 * (1 << 20), len(PATTERN)) == PATTERN
    clone = volume(size=2)
    assert driver.create_cloned_volume(clone, vol)['replication_status'] \
        == 'enabled'
    assert read_at(copy_path(sites, 'site3', clone), 5 * (1 << 20),
                   16) == PATTERN[:16]
    status = driver.get_replication_status(None, clone)
    assert status['replication_status'] == 'active'
    driver.delete_volume(clone)
    assert not os.path.exists(copy_path(sites, 'site2', clone))


def test_volumes_of_other_types_have_no_copies(sites):
    driver = make_driver(sites)
    vol = volume(replicated=False)
    assert driver.create_volume(vol) is None
    assert not os.path.exists(copy_path(sites, 'site2', vol))
    assert driver.get_replication_status(None, vol)['replication_status'] \
        == 'error'


def test_planned_failover_carries_data_written_since_the_last_sync(sites):
    driver = make_driver(sites)
    vol, plain = volume(), volume(replicated=False)
    driver.create_volume(vol)
    driver.create_volume(plain)
    write_at(driver.local_path(vol), 0, PATTERN)  # a consumer's write
    active, updates, groups = driver.failover_host(None, [vol, plain],
                                                   'site2')
    assert (active, groups) == ('site2', [])
    by_id = {u['volume_id']: u['updates'] for u in updates}
    assert by_id[vol.id] == {'replication_status': 'failed-over'}
    assert by_id[plain.id]['status'] == 'error'
    assert driver.local_path(vol) == copy_path(sites, 'site2', vol)
    assert read_at(driver.local_path(vol), 0, 64) == PATTERN[:64]
    stats = driver.get_volume_stats(refresh=True)
    assert stats['active_backend_id'] == 'site2'
    assert stats['pools'][0]['location_info'].endswith('site2')


def test_unplanned_failover_serves_the_last_copy(sites):
    driver = make_driver(sites)
    vol = volume()
    driver.create_volume(vol)
    write_at(driver.local_path(vol), 0, b'after the last sync')
    os.rename(str(sites['primary']), str(sites['primary']) + '.gone')
    active, updates, _ = driver.failover_host(None, [vol], 'site3')
    assert updates[0]['updates'] == {'replication_status': 'failed-over'}
    assert read_at(driver.local_path(vol), 0, 5) == b'\0' * 5


def test_failed_over_writes_go_to_the_other_targets_and_failback_resyncs(
        sites):
    driver = make_driver(sites)
    vol = volume()
    driver.create_volume(vol)
    driver.failover_host(None, [vol], 'site2')
    driver.extend_volume(vol, 2)
    # site3 follows; the primary takes no copies while failed over.
    assert os.path.getsize(copy_path(sites, 'site3', vol)) == 2 * GiB
    assert os.path.getsize(copy_path(sites, 'primary', vol)) == GiB
    # A restarted worker builds its driver with the recorded active id.
    restarted = make_driver(sites, active='site2')
    assert restarted.local_path(vol) == copy_path(sites, 'site2', vol)
    active, updates, _ = restarted.failover_host(None, [vol], 'default')
    assert active == 'default'
    assert os.path.getsize(copy_path(sites, 'primary', vol)) == 2 * GiB
    assert restarted.local_path(vol) == copy_path(sites, 'primary', vol)


def test_volumes_that_are_not_replicated_are_usable_again_after_failback(
        sites):
    driver = make_driver(sites)
    plain = volume(replicated=False)
    driver.create_volume(plain)
    _, updates, _ = driver.failover_host(None, [plain], 'site2')
    assert updates[0]['updates'] == {'status': 'error',
                                     'replication_status': 'not-capable'}
    _, updates, _ = driver.failover_host(None, [plain], 'default')
    assert updates[0]['updates'] == {'replication_status': 'disabled'}


def test_bad_replication_devices_and_targets_are_refused(sites, tmp_path):
    with pytest.raises(exception.InvalidInput, match='backend_id:NAME'):
        conf = cfg.ConfigOpts()
        section = configuration.Configuration([], config_group='f',
                                              conf=conf)
        driver = file_driver.FileVolumeDriver(configuration=section)
        conf.set_override('file_volume_dir', str(tmp_path / 'p'), group='f')
        conf.set_override('replication_device', [{'backend_id': 'x'}],
                          group='f')
        driver.do_setup(None)
    with pytest.raises(exception.InvalidInput, match='not a configured'):
        make_driver(sites, active='gone')
    driver = make_driver(sites)
    with pytest.raises(exception.InvalidReplicationTarget):
        driver.failover_host(None, [], 'nowhere')


def test_reference_per_volume_calls(sites):
    driver = make_driver(sites)
    vol = volume()
    driver.create_volume(vol)
    write_at(copy_path(sites, 'site2', vol), 0, b'replica data')
    update = driver.promote_replica(None, vol)
    assert update['replication_status'] == 'inactive'
    assert read_at(driver.local_path(vol), 0, 12) == b'replica data'
    test_copy = volume()
    driver.create_replica_test_volume(test_copy, vol)
    assert read_at(driver.local_path(test_copy), 0, 12) == b'replica data'
    write_at(driver.local_path(vol), 0, b'primary data')
    assert driver.reenable_replication(None, vol)['replication_status'] == \
        'active'
    assert read_at(copy_path(sites, 'site3', vol), 0, 12) == b'primary data'


def test_generic_data_paths_bring_the_copies_in_sync(sites, monkeypatch):
    from drivers import generic
    driver = make_driver(sites)
    vol = volume()
    driver.create_volume(vol)

    def restore(drv, context, backup, target, service):
        write_at(drv.local_path(target), 0, b'restored')
    monkeypatch.setattr(generic, 'restore_backup', restore)
    driver.restore_backup(None, object(), vol, None)
    assert read_at(copy_path(sites, 'site2', vol), 0, 8) == b'restored'


def test_a_cloned_image_is_copied_and_an_uncloned_one_is_not(
        sites, monkeypatch):
    from drivers import file_images

    def clone(method, path, size, location, meta, mode):
        if location != 'here':
            return None, False
        with open(path, 'wb') as f:
            f.truncate(size * GiB)
            f.write(b'image')
        return {'bootable': True}, True
    monkeypatch.setattr(file_images, 'clone_raw_image', clone)
    driver = make_driver(sites)
    vol = volume()
    assert driver.clone_image(vol, 'elsewhere', 'img', {}, None) == (
        None, False)
    assert not os.path.exists(copy_path(sites, 'site2', vol))
    assert driver.clone_image(vol, 'here', 'img', {}, None) == (
        {'bootable': True, 'replication_status': 'enabled'}, True)
    assert read_at(copy_path(sites, 'site3', vol), 0, 5) == b'image'


def test_retype_makes_or_removes_the_copies(sites):
    driver = make_driver(sites)
    vol = volume(replicated=False)
    driver.create_volume(vol)
    write_at(driver.local_path(vol), 0, b'before retype')
    assert driver.retype(None, vol, REPLICATED, {}, None) == (
        True, {'replication_status': 'enabled'})
    assert read_at(copy_path(sites, 'site2', vol), 0, 13) == b'before retype'
    vol.volume_type = REPLICATED
    plain_type = types.SimpleNamespace(extra_specs={})
    assert driver.retype(None, vol, plain_type, {}, None) == (
        True, {'replication_status': 'disabled'})
    assert not os.path.exists(copy_path(sites, 'site3', vol))
    vol.volume_type = plain_type
    assert driver.retype(None, vol, plain_type, {}, None) == (True, None)
