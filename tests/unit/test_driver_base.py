"""Tests of the driver contract: defaults, generic implementations, iSCSI/FC
conventions, errors."""

import os
import types
import uuid

import pytest
from oslo_config import cfg

from drivers import base
from drivers import configuration
from drivers import datapath
from drivers import exception
from drivers import fileops

pytestmark = [
    pytest.mark.filterwarnings(r'ignore:\s*Eventlet is deprecated'),
    pytest.mark.filterwarnings('ignore::DeprecationWarning'),
]

GROUP = 'backend1'
IQN = 'iqn.2010-10.org.openstack:volume-1'


def make_driver(cls=base.ISCSIDriver, **overrides):
    conf = cfg.ConfigOpts()
    driver = cls(configuration=configuration.Configuration(
        config_group=GROUP, conf=conf))
    for name, value in overrides.items():
        conf.set_override(name, value, group=GROUP)
    return driver


def volume(**fields):
    fields.setdefault('id', 'vol-1')
    fields.setdefault('provider_auth', None)
    return types.SimpleNamespace(**fields)


class TestOptions:
    def test_list_opts_names_every_backend_option(self):
        [(section, opts)] = base.list_opts()
        names = {opt.name for opt in opts}
        assert section == base.SAMPLE_SECTION
        assert {'volume_backend_name', 'reserved_percentage',
                'max_over_subscription_ratio', 'filter_function',
                'goodness_function', 'target_ip_address', 'target_port',
                'target_prefix', 'target_protocol',
                'target_secondary_ip_addresses', 'use_chap_auth',
                'chap_username', 'chap_password', 'replication_device',
                'driver_ssl_cert_verify'} <= names
        assert all(opt.help for opt in opts)

    def test_constructor_registers_options_in_the_backend_section(self):
        driver = make_driver()
        assert driver.configuration.target_prefix == (
            'iqn.2010-10.org.openstack:')
        assert driver.configuration.target_port == 3260
        assert driver.configuration.chap_password == ''

    def test_chap_password_is_secret(self):
        opts = {opt.name: opt for opt in base.volume_opts}
        assert opts['chap_password'].secret

    def test_protocol_choices_are_enforced(self):
        driver = make_driver()
        with pytest.raises(ValueError):
            driver.configuration.conf.set_override(
                'target_protocol', 'nvme', group=GROUP)

    def test_without_configuration_uses_default_section(self):
        driver = base.BaseVD()
        assert driver.configuration.config_group is None
        assert driver.configuration.safe_get('reserved_percentage') == 0

    def test_replication_device_is_a_list_of_dicts(self):
        driver = make_driver(replication_device=[
            {'backend_id': 'b'}, {'san_ip': 'x'}])
        assert driver._replication_targets() == [{'backend_id': 'b'}]


class TestGenericBehaviour:
    def test_lifecycle_flags_and_version(self):
        driver = make_driver(base.VolumeDriver)
        assert not driver.initialized
        driver.set_initialized()
        assert driver.initialized
        assert driver.supported
        assert driver.get_version() == 'N/A'

    def test_constructor_keeps_identity(self):
        driver = base.BaseVD(host='h@b', active_backend_id='s',
                             cluster_name='c')
        assert (driver.host, driver._active_backend_id,
                driver.cluster_name) == ('h@b', 's', 'c')

    def test_generic_answers(self):
        driver = make_driver(base.VolumeDriver)
        assert driver.clone_image(None, volume(), 'loc', {}, None) == (
            None, False)
        assert driver.migrate_volume(None, volume(), {}) == (False, None)
        assert driver.retype(None, volume(), {}, {}, {}) == (False, None)
        assert driver.freeze_backend(None) is True
        assert driver.thaw_backend(None) is True
        assert driver.secure_file_operations_enabled() is False
        assert driver.backup_use_temp_snapshot() is False
        assert driver.snapshot_remote_attachable() is False
        assert driver.update_provider_info([], []) == (None, None)
        assert driver.get_replication_updates(None) == []

    @pytest.mark.parametrize('call', [
        lambda d: d.create_volume(volume()),
        lambda d: d.delete_volume(volume()),
        lambda d: d.create_snapshot(None),
        lambda d: d.extend_volume(volume(), 2),
        lambda d: d.manage_existing(volume(), {}),
        lambda d: d.create_group(None, None),
        lambda d: d.delete_group_snapshot(None, None, []),
        lambda d: d.failover_host(None, []),
        lambda d: d.local_path(volume()),
        lambda d: d.revert_to_snapshot(None, volume(), None),
        lambda d: d.initialize_connection(volume(), {}, extra=1),
        lambda d: d.check_for_setup_error(),
    ])
    def test_abstract_operations_raise_not_implemented(self, call):
        with pytest.raises(NotImplementedError):
            call(make_driver(base.VolumeDriver))

    @pytest.mark.parametrize('call', [
        lambda d: d.unmanage(volume()),
        lambda d: d.unmanage_snapshot(volume()),
        lambda d: d.accept_transfer(None, volume(), 'u', 'p'),
        lambda d: d.terminate_connection(volume(), {}, force=True),
        lambda d: d.terminate_connection(volume(), None),
        lambda d: d.terminate_connection_snapshot(volume(), {}),
        lambda d: d.clear_download(None, volume()),
    ])
    def test_nothing_to_do_defaults_return_none(self, call):
        assert call(make_driver(base.VolumeDriver)) is None

    def test_base_alone_has_manage_stubs(self):
        driver = base.BaseVD()
        for call in (lambda: driver.manage_existing(volume(), {}),
                     lambda: driver.unmanage(volume())):
            with pytest.raises(NotImplementedError):
                call()
        assert driver.terminate_connection(volume(), {}) is None
        assert driver.terminate_connection_snapshot(volume(), {}) is None
        driver.check_for_setup_error()     # nothing to check by default

    def test_mixin_declares_capability_abstract(self):
        class CloningDriver(base.CloneableImageVD, base.BaseVD):
            pass
        with pytest.raises(NotImplementedError):
            CloningDriver().clone_image(volume(), 'l', 'image-1', {}, None)

    def test_clone_image_forms(self):
        # The reference's VolumeDriver form and BaseVD's (later Cinder) form.
        driver = make_driver(base.VolumeDriver)
        assert driver.clone_image(volume(), 'loc', 'image-1', {}, None) == (
            None, False)
        assert base.BaseVD.clone_image(driver, None, volume(), 'loc', {},
                                       None) == (None, False)

    def test_volume_driver_resolves_names_like_the_reference(self):
        names = [cls.__name__ for cls in base.VolumeDriver.__mro__]
        assert names[-2:] == ['BaseVD', 'object']
        assert names.index('ManageableVD') < names.index('BaseVD')
        # check_for_setup_error is VolumeDriver's own: not BaseVD's no-op.
        assert 'check_for_setup_error' in vars(base.VolumeDriver)

    def test_supported_follows_declaration(self):
        class Deprecated(base.VolumeDriver):
            SUPPORTED = False
        assert make_driver(base.VolumeDriver).supported is True
        assert make_driver(Deprecated).supported is False

    def test_get_pool_reads_volume_host(self):
        driver = make_driver()
        assert driver.get_pool(volume(host='node@lvm#gold')) == 'gold'
        assert driver.get_pool(volume(host='node@lvm')) is None
        assert base.extract_pool(None) is None

    def test_filter_and_goodness_come_from_config_then_defaults(self):
        class Opinionated(base.BaseVD):
            def get_default_goodness_function(self):
                return '50'
        driver = make_driver(Opinionated, filter_function='size < 10')
        assert driver.get_filter_function() == 'size < 10'
        assert driver.get_goodness_function() == '50'
        assert make_driver().get_filter_function() is None

    def test_scheduler_functions_fall_back_on_the_global_section(self):
        class Opinionated(base.BaseVD):
            def get_default_filter_function(self):
                return 'default'

            def get_default_goodness_function(self):
                return '10'
        driver = make_driver(Opinionated)
        conf = driver.configuration.conf
        assert driver.get_filter_function() == 'default'
        conf.set_override('filter_function', 'size < 5')
        conf.set_override('goodness_function', '70')
        assert driver.get_filter_function() == 'size < 5'
        assert driver.get_goodness_function() == '70'
        conf.set_override('filter_function', 'size < 1', group=GROUP)
        assert driver.get_filter_function() == 'size < 1'
        assert driver.get_goodness_function() == '70'

    def test_stats_are_cached_until_refresh(self):
        driver = make_driver(volume_backend_name='gold')
        calls = []
        real_update = driver._update_volume_stats
        driver._update_volume_stats = lambda: (calls.append(1),
                                               real_update())
        first = driver.get_volume_stats()
        driver.get_volume_stats()
        assert len(calls) == 1
        driver.get_volume_stats(refresh=True)
        assert len(calls) == 2
        assert first['volume_backend_name'] == 'gold'
        assert first['storage_protocol'] == 'iSCSI'
        assert first['pools'][0]['pool_name'] == 'gold'

    def test_init_capabilities_adds_properties(self):
        driver = make_driver()
        caps = driver.init_capabilities()
        assert caps is driver.capabilities
        assert caps['properties']['thin_provisioning']['type'] == 'boolean'
        assert caps['vendor_name'] == 'Open Source'
        assert caps['total_capacity_gb'] == 'unknown'
        assert 'vendor_prefix' not in caps
        assert driver.get_prefixed_property('dedup') is None

    def test_init_capabilities_registers_vendor_properties(self):
        class Vendor(base.ISCSIDriver):
            def _init_vendor_properties(self):
                return {'acme:dedup': {'title': 'Dedup', 'type': 'boolean',
                                       'description': 'Deduplicate.'},
                        'other:thing': {'title': 'x', 'type': 'string',
                                        'description': 'y'}}, 'acme'
        driver = make_driver(Vendor)
        caps = driver.init_capabilities()
        assert caps['vendor_prefix'] == 'acme'
        assert caps['properties']['acme:dedup']['title'] == 'Dedup'
        assert 'other:thing' not in caps['properties']
        assert 'thin_provisioning' in caps['properties']
        assert driver.get_prefixed_property('dedup') == 'acme:dedup'

    def test_update_migrated_volume_keeps_the_copy(self):
        new = volume(id='new', provider_location='loc')
        assert base.BaseVD().update_migrated_volume(
            None, volume(), new, 'available') == {
                '_name_id': 'new', 'provider_location': 'loc'}


class TestISCSIProperties:
    def test_single_portal(self):
        driver = make_driver()
        props = driver._get_iscsi_properties(
            volume(provider_location='10.0.0.1:3260,1 %s 3' % IQN))
        assert props == {'target_discovered': False, 'target_iqn': IQN,
                         'target_portal': '10.0.0.1:3260', 'target_lun': 3,
                         'volume_id': 'vol-1', 'discard': False}

    def test_missing_lun_defaults_to_zero(self):
        props = make_driver()._get_iscsi_properties(
            volume(provider_location='10.0.0.1:3260,1 %s' % IQN))
        assert props['target_lun'] == 0

    def test_several_portals_give_multipath_lists(self):
        location = '10.0.0.1:3260;10.0.1.1:3261,1 %s 1' % IQN
        props = make_driver()._get_iscsi_properties(
            volume(provider_location=location))
        assert props['target_portal'] == '10.0.0.1:3260'
        assert props['target_portals'] == ['10.0.0.1:3260', '10.0.1.1:3261']
        assert props['target_iqns'] == [IQN, IQN]
        assert props['target_luns'] == [1, 1]

    def test_multipath_request_with_one_portal(self):
        props = make_driver()._get_iscsi_properties(
            volume(provider_location='10.0.0.1:3260,1 %s 1' % IQN), True)
        assert props['target_portals'] == ['10.0.0.1:3260']
        assert props['target_iqns'] == [IQN]

    def test_chap_credentials(self):
        props = make_driver()._get_iscsi_properties(volume(
            provider_location='10.0.0.1:3260,1 %s 1' % IQN,
            provider_auth='CHAP alice s3cret'))
        assert (props['auth_method'], props['auth_username'],
                props['auth_password']) == ('CHAP', 'alice', 's3cret')

    def test_discard_follows_config(self):
        driver = make_driver(report_discard_supported=True)
        props = driver._get_iscsi_properties(
            volume(provider_location='1.1.1.1:3260,1 %s 1' % IQN))
        assert props['discard'] is True

    @pytest.mark.parametrize('location', [None, '', 'garbage',
                                          '10.0.0.1:3260 iqn'])
    def test_unusable_location_is_rejected(self, location):
        with pytest.raises(exception.InvalidVolume):
            make_driver()._get_iscsi_properties(
                volume(provider_location=location))

    def test_malformed_auth_is_rejected(self):
        with pytest.raises(exception.InvalidVolume):
            make_driver()._get_iscsi_properties(volume(
                provider_location='1.1.1.1:3260,1 %s 1' % IQN,
                provider_auth='CHAP'))

    def test_location_round_trips_with_secondary_portals(self):
        driver = make_driver(target_ip_address='10.0.0.1',
                             target_secondary_ip_addresses=['fd00::2'])
        location = driver._iscsi_location(IQN, 2)
        assert location == '10.0.0.1:3260;[fd00::2]:3260,1 %s 2' % IQN
        props = driver._get_iscsi_properties(
            volume(provider_location=location))
        assert props['target_portals'] == ['10.0.0.1:3260', '[fd00::2]:3260']
        assert props['target_lun'] == 2

    def test_target_name_uses_prefix(self):
        driver = make_driver(target_prefix='iqn.x:')
        assert driver._iscsi_target_name(volume(name='volume-1')) == (
            'iqn.x:volume-1')


class TestConnections:
    def test_iscsi_connection_info(self):
        info = make_driver().initialize_connection(
            volume(provider_location='1.1.1.1:3260,1 %s 1' % IQN),
            {'initiator': 'iqn.host', 'multipath': True})
        assert info['driver_volume_type'] == 'iscsi'
        assert info['data']['target_portals'] == ['1.1.1.1:3260']

    def test_iser_connection_info(self):
        driver = make_driver(base.ISERDriver)
        info = driver.initialize_connection(
            volume(provider_location='1.1.1.1:3260,1 %s 1' % IQN), {})
        assert info['driver_volume_type'] == 'iser'
        assert driver.get_volume_stats()['storage_protocol'] == 'iSER'

    def test_iscsi_connector_needs_initiator(self):
        driver = make_driver()
        driver.validate_connector({'initiator': 'iqn.host'})
        with pytest.raises(exception.InvalidConnectorException) as error:
            driver.validate_connector({'host': 'h'})
        assert 'initiator' in str(error.value)
        assert error.value.code == 400

    @pytest.mark.parametrize('connector', [
        {'wwpns': ['a']}, {'wwnns': ['b']}, {'wwpns': [], 'wwnns': ['b']}])
    def test_fc_connector_needs_wwpns_and_wwnns(self, connector):
        with pytest.raises(exception.InvalidConnectorException):
            make_driver(base.FibreChannelDriver).validate_connector(connector)

    def test_fc_connector_accepted(self):
        make_driver(base.FibreChannelDriver).validate_connector(
            {'wwpns': ['a'], 'wwnns': ['b']})

    def test_fc_connection_info_maps_initiators_to_targets(self):
        info = base.FibreChannelDriver._build_fc_connection_info(
            ['t1', 't2'], 4, connector={'wwpns': ['i1', 'i2']})
        assert info == {'driver_volume_type': 'fibre_channel', 'data': {
            'target_discovered': False, 'target_lun': 4,
            'target_wwn': ['t1', 't2'], 'discard': False,
            'initiator_target_map': {'i1': ['t1', 't2'],
                                     'i2': ['t1', 't2']}}}

    def test_fc_connection_info_single_wwn_and_explicit_map(self):
        data = base.FibreChannelDriver._build_fc_connection_info(
            't1', 1, initiator_target_map={'i1': ['t1']})['data']
        assert data['target_wwn'] == ['t1']
        assert data['initiator_target_map'] == {'i1': ['t1']}


class TestPagination:
    entries = [{'reference': {'source-name': name}, 'size': size}
               for name, size in (('b', 1), ('a', 3), ('c', 2))]

    def names(self, entries):
        return [e['reference']['source-name'] for e in entries]

    def test_sorts_by_reference_by_default(self):
        assert self.names(base.paginate_manageable(
            self.entries, None, None, 0, None, None)) == ['a', 'b', 'c']

    def test_sorts_by_size_descending_with_limit_and_offset(self):
        page = base.paginate_manageable(self.entries, None, 1, 1, ['size'],
                                        ['desc'])
        assert self.names(page) == ['c']

    def test_marker_starts_after_entry(self):
        page = base.paginate_manageable(self.entries, {'source-name': 'a'},
                                        None, 0, ['identifier'], ['asc'])
        assert self.names(page) == ['b', 'c']

    def test_unknown_marker_or_key_is_rejected(self):
        with pytest.raises(exception.InvalidInput):
            base.paginate_manageable(self.entries, {'source-name': 'z'},
                                     None, 0, None, None)
        with pytest.raises(exception.InvalidInput):
            base.paginate_manageable(self.entries, None, None, 0, ['name'],
                                     None)


class TestExceptions:
    def test_template_is_filled(self):
        error = exception.VolumeNotFound(volume_id='v1')
        assert str(error) == 'Volume v1 could not be found on the backend.'
        assert error.code == 404
        assert error.kwargs['volume_id'] == 'v1'

    def test_explicit_message_wins(self):
        assert str(exception.InvalidInput('plain')) == 'plain'

    def test_missing_keyword_keeps_template_and_arguments(self):
        error = exception.VolumeIsBusy(volume_name='v')
        assert 'still in use' in str(error) and "volume_name='v'" in str(error)

    def test_codes(self):
        assert exception.VolumeBackendAPIException(data='x').code == 500
        assert exception.InvalidVolume(reason='x').code == 400
        assert exception.SnapshotNotFound(snapshot_id='s').code == 404
        assert issubclass(exception.ManageExistingInvalidReference,
                          exception.VolumeDriverException)


# -- generic implementations through os-brick ---------------------------------

GiB = 1 << 30
MiB = 1 << 20
PATTERN = bytes(range(256)) * 4096          # 1 MiB


@pytest.fixture(scope='module')
def os_brick_ready(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('os-brick without a privsep daemon needs root')
    datapath.init_os_brick(cfg.CONF,
                           lock_path=str(tmp_path_factory.mktemp('locks')),
                           in_process_privsep=True)


class FilesDriver(base.VolumeDriver):
    """Only the calls a driver must write: sparse files, local connections.

    Cloning, volumes from snapshots, images and backups are left to the
    generic implementations.  Exports hand out a token that
    ``initialize_connection`` insists on, as a real export would.
    """

    def __init__(self, directory, **kwargs):
        super().__init__(**kwargs)
        self.directory = directory
        self.exports = set()
        self.fail_connect = set()

    def check_for_setup_error(self):
        pass

    def _path(self, obj, kind='volume'):
        return os.path.join(self.directory, '%s-%s' % (kind, obj.id))

    def create_volume(self, volume):
        with open(self._path(volume), 'wb') as handle:
            handle.truncate(volume.size * GiB)
        return {'provider_location': self._path(volume)}

    def delete_volume(self, volume):
        if os.path.exists(self._path(volume)):
            os.unlink(self._path(volume))

    def create_snapshot(self, snapshot):
        src = os.path.join(self.directory, 'volume-%s' % snapshot.volume_id)
        fileops.clone_file(src, self._path(snapshot, 'snapshot'),
                           snapshot.volume_size * GiB, fileops.CLONE_COPY)

    def _export(self, obj):
        self.exports.add(obj.id)
        return {'provider_auth': 'token-%s' % obj.id}

    def _connect(self, obj, kind):
        if obj.id in self.fail_connect:
            raise exception.VolumeBackendAPIException(data='cannot connect')
        assert obj.provider_auth == 'token-%s' % obj.id
        assert obj['provider_auth'] == obj.provider_auth
        return {'driver_volume_type': 'local',
                'data': {'device_path': self._path(obj, kind)}}

    def create_export(self, context, volume, connector):
        return self._export(volume)

    def remove_export(self, context, volume):
        self.exports.discard(volume.id)

    def initialize_connection(self, volume, connector, **kwargs):
        return self._connect(volume, 'volume')

    def create_export_snapshot(self, context, snapshot, connector):
        return self._export(snapshot)

    def remove_export_snapshot(self, context, snapshot):
        self.exports.discard(snapshot.id)

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        return self._connect(snapshot, 'snapshot')

    def _local_connector(self):
        # os-brick's real probe of this host would touch /etc (NVMe host NQN).
        return {'host': 'test-host', 'initiator': None, 'multipath': False}


class Lookup:
    """The ``db`` collaborator: objects by id."""

    def __init__(self, *objects):
        self.objects = {obj.id: obj for obj in objects}

    def volume_get(self, context, volume_id):
        return self.objects[volume_id]

    def snapshot_get(self, context, snapshot_id):
        return self.objects[snapshot_id]


def sparse_chunks(handle):
    """({offset: non-zero 1 MiB chunk}, length) of a binary file object.

    Holes are skipped (SEEK_DATA), so a 1 GiB volume with a few MiB of data
    is read in a few milliseconds: the services below are sparse-aware.
    """
    length = handle.seek(0, os.SEEK_END)
    chunks = {}
    for start, size in fileops.data_extents(handle.fileno(), length):
        first = start - start % MiB
        for offset in range(first, start + size, MiB):
            handle.seek(offset)
            chunk = handle.read(MiB)
            if chunk.count(0) != len(chunk):
                chunks[offset] = chunk
    return chunks, length


def file_chunks(path):
    with open(path, 'rb') as handle:
        return sparse_chunks(handle)


class ChunkBackups:
    """A backup service keeping the non-zero 1 MiB chunks of each backup."""

    def __init__(self):
        self.backups = {}

    def backup(self, backup, volume_file):
        self.backups[backup.id] = sparse_chunks(volume_file)

    def restore(self, backup, volume_id, volume_file):
        chunks, length = self.backups[backup.id]
        for offset in range(0, length, MiB):
            volume_file.seek(offset)
            if offset in chunks:
                volume_file.write(chunks[offset])
            else:
                volume_file.flush()
                fileops.punch_hole(volume_file.fileno(), offset, MiB)


def new_volume(size=1):
    return types.SimpleNamespace(id=str(uuid.uuid4()), size=size,
                                 provider_location=None, provider_auth=None)


def new_snapshot(vol):
    return types.SimpleNamespace(id=str(uuid.uuid4()), volume_id=vol.id,
                                 volume_size=vol.size, provider_auth=None)


def write_at(path, offset, data):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        handle.write(data)


def read_at(path, offset, length):
    with open(path, 'rb') as handle:
        handle.seek(offset)
        return handle.read(length)


@pytest.fixture
def files(tmp_path, os_brick_ready):
    section = configuration.Configuration(config_group=GROUP,
                                          conf=cfg.ConfigOpts())
    return FilesDriver(str(tmp_path), configuration=section)


def source_with_data(files, size=1):
    src = new_volume(size)
    files.create_volume(src)
    write_at(files._path(src), 5 * MiB, PATTERN)
    write_at(files._path(src), size * GiB - MiB, PATTERN)
    return src


class TestGenericCopies:
    def test_clone_copies_the_data_and_cleans_up_exports(self, files):
        src = source_with_data(files)
        clone = new_volume(2)
        update = files.create_cloned_volume(clone, src)
        assert update == {'provider_location': files._path(clone)}
        assert read_at(files._path(clone), 5 * MiB, MiB) == PATTERN
        assert read_at(files._path(clone), GiB - MiB, MiB) == PATTERN
        assert os.path.getsize(files._path(clone)) == 2 * GiB
        assert files.exports == set()

    def test_failed_clone_deletes_the_new_volume(self, files):
        src = source_with_data(files)
        clone = new_volume(1)
        files.fail_connect.add(clone.id)
        with pytest.raises(exception.VolumeBackendAPIException):
            files.create_cloned_volume(clone, src)
        assert not os.path.exists(files._path(clone))
        assert files.exports == set()

    def test_clone_smaller_than_its_source_is_refused(self, files):
        src = source_with_data(files, 2)
        clone = new_volume(1)
        with pytest.raises(exception.InvalidInput):
            files.create_cloned_volume(clone, src)
        assert not os.path.exists(files._path(clone))

    def test_volume_from_snapshot_keeps_the_snapshot_data(self, files):
        src = source_with_data(files)
        snap = new_snapshot(src)
        files.create_snapshot(snap)
        write_at(files._path(src), 5 * MiB, bytes(MiB))
        vol = new_volume(1)
        files.create_volume_from_snapshot(vol, snap)
        assert read_at(files._path(vol), 5 * MiB, MiB) == PATTERN
        assert files.exports == set()


class TestGenericBackups:
    def test_backup_device_needs_the_db_collaborator(self, files):
        backup = types.SimpleNamespace(id='b', volume_id='v',
                                       snapshot_id=None)
        with pytest.raises(NotImplementedError):
            files.get_backup_device(None, backup)

    def test_backup_device_is_an_object(self, files):
        vol = new_volume()
        snap = new_snapshot(vol)
        files.db = Lookup(vol, snap)
        assert files.get_backup_device(None, types.SimpleNamespace(
            id='b', volume_id=vol.id, snapshot_id=None)) == (vol, False)
        assert files.get_backup_device(None, types.SimpleNamespace(
            id='b', volume_id=vol.id, snapshot_id=snap.id)) == (snap, True)

    def test_backup_and_restore_round_trip(self, files):
        src = source_with_data(files)
        snap = new_snapshot(src)
        files.create_snapshot(snap)
        write_at(files._path(src), 5 * MiB, b'\x01' * MiB)
        files.db = Lookup(src, snap)
        service = ChunkBackups()
        of_volume = types.SimpleNamespace(id='b1', volume_id=src.id,
                                          snapshot_id=None)
        of_snapshot = types.SimpleNamespace(id='b2', volume_id=src.id,
                                            snapshot_id=snap.id)
        files.backup_volume(None, of_volume, service)
        files.backup_volume(None, of_snapshot, service)
        assert sorted(service.backups['b1'][0]) == [5 * MiB, GiB - MiB]
        assert service.backups['b2'][0][5 * MiB] == PATTERN

        target = new_volume(1)
        files.create_volume(target)
        files.restore_backup(None, of_snapshot, target, service)
        assert file_chunks(files._path(target)) == file_chunks(
            files._path(snap, 'snapshot'))
        files.restore_backup(None, of_volume, target, service)
        assert file_chunks(files._path(target)) == file_chunks(
            files._path(src))
        assert files.exports == set()

    def test_restore_onto_a_smaller_volume_is_stopped(self, files):
        src = source_with_data(files, 2)
        files.db = Lookup(src)
        service = ChunkBackups()
        backup = types.SimpleNamespace(id='b', volume_id=src.id,
                                       snapshot_id=None)
        files.backup_volume(None, backup, service)
        small = new_volume(1)
        files.create_volume(small)
        with pytest.raises(exception.InvalidVolume):
            files.restore_backup(None, backup, small, service)
        assert os.path.getsize(files._path(small)) == GiB


def test_ensure_exports_defaults_to_ensure_export_per_volume():
    class Driver(base.VolumeDriver):
        def ensure_export(self, context, volume):
            if volume.id == 'broken':
                raise exception.VolumeBackendAPIException(data='no target')
            if volume.id == 'stale':
                return {'provider_location': 'new'}
            return None

    driver = Driver(configuration=configuration.Configuration(
        [], config_group='b', conf=cfg.ConfigOpts()))
    volumes = [types.SimpleNamespace(id=i) for i in ('ok', 'stale', 'broken')]
    updates, failures = driver.ensure_exports(None, volumes)
    assert updates == {'stale': {'provider_location': 'new'}}
    assert list(failures) == ['broken'] and 'no target' in failures['broken']
