"""Tests of the driver contract: generic behaviour, iSCSI/FC conventions, errors."""

import types

import pytest
from oslo_config import cfg

from drivers import base
from drivers import configuration
from drivers import exception

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
        lambda d: d.accept_transfer(None, volume(), 'u', 'p'),
    ])
    def test_abstract_operations_raise_not_implemented(self, call):
        with pytest.raises(NotImplementedError):
            call(make_driver(base.VolumeDriver))

    def test_mixin_declares_capability_abstract(self):
        class CloningDriver(base.CloneableImageVD, base.BaseVD):
            pass
        with pytest.raises(NotImplementedError):
            CloningDriver().clone_image(None, volume(), 'l', {}, None)

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
        driver.capabilities['vendor_prefix'] = 'acme'
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
