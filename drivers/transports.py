"""Transport conventions: iSCSI, iSER and Fibre Channel drivers.

Import them from ``drivers.base``.
"""

from drivers import common
from drivers import exception
from drivers.mixins import VolumeDriver


class ISCSIDriver(VolumeDriver):
    """Base of drivers exporting volumes as iSCSI targets.

    Two model fields carry the export:

    * ``provider_location``: ``"<ip>:<port>,<portal tag> <target iqn> <lun>"``;
      several portals are joined with ``;`` before the comma, e.g.
      ``"10.0.0.1:3260;10.0.1.1:3260,1 iqn.2010-10.org.openstack:volume-x 0"``.
    * ``provider_auth``: ``"<auth method> <username> <password>"``, CHAP only.
    """

    PROTOCOL = 'iSCSI'
    DRIVER_VOLUME_TYPE = 'iscsi'
    DEFAULT_LUN = 0

    def get_volume_stats(self, refresh=False):
        """The stats, asked again from the backend first with ``refresh``."""
        return super().get_volume_stats(refresh)

    def validate_connector(self, connector):
        """An iSCSI connector needs its ``initiator`` name."""
        self.validate_connector_has_setting(connector, 'initiator')

    def initialize_connection(self, volume, connector):
        """Return ``{'driver_volume_type': 'iscsi', 'data': props}``.

        ``props`` comes from ``_get_iscsi_properties``, multipath when the
        connector asks for it.
        """
        multipath = bool((connector or {}).get('multipath'))
        return {'driver_volume_type': self.DRIVER_VOLUME_TYPE,
                'data': self._get_iscsi_properties(volume, multipath)}

    def terminate_connection(self, volume, connector, **kwargs):
        """Nothing to revoke for a target open to every initiator."""

    def _get_iscsi_properties(self, volume, multipath=False):
        """Turn the volume's export fields into os-brick iSCSI properties.

        Keys: ``target_discovered`` (always False: the location is known),
        ``target_iqn``, ``target_portal``, ``target_lun``, ``volume_id``,
        ``discard``; with ``provider_auth`` also ``auth_method``,
        ``auth_username``, ``auth_password``; with several portals or
        ``multipath`` also ``target_iqns``, ``target_portals`` and
        ``target_luns``, one entry per portal.
        """
        volume_id = common.field(volume, 'id')
        location = common.field(volume, 'provider_location')
        if not location:
            raise exception.InvalidVolume(
                reason='volume %s has no provider_location; it must be '
                       'exported first' % volume_id)
        fields = location.split()
        if len(fields) < 2 or ',' not in fields[0]:
            raise exception.InvalidVolume(
                reason='malformed provider_location %r of volume %s'
                       % (location, volume_id))
        portals = fields[0].split(',', 1)[0].split(';')
        target_iqn = fields[1]
        try:
            target_lun = int(fields[2])
        except (IndexError, ValueError):
            target_lun = self.DEFAULT_LUN

        props = {
            'target_discovered': False,
            'target_iqn': target_iqn,
            'target_portal': portals[0],
            'target_lun': target_lun,
            'volume_id': volume_id,
            'discard': bool(self.configuration.safe_get(
                'report_discard_supported')),
        }
        if multipath or len(portals) > 1:
            props['target_portals'] = portals
            props['target_iqns'] = [target_iqn] * len(portals)
            props['target_luns'] = [target_lun] * len(portals)

        auth = common.field(volume, 'provider_auth')
        if auth:
            try:
                method, username, password = auth.split(None, 2)
            except ValueError:
                raise exception.InvalidVolume(
                    reason='malformed provider_auth of volume %s' % volume_id)
            props.update(auth_method=method, auth_username=username,
                         auth_password=password)
        return props

    def _iscsi_target_name(self, volume):
        """IQN of the target exporting ``volume``."""
        return '%s%s' % (self.configuration.target_prefix,
                         common.field(volume, 'name'))

    def _iscsi_location(self, target_iqn, target_lun, portal_tag=1):
        """Build a ``provider_location`` from the configured portals."""
        port = self.configuration.target_port
        addresses = [self.configuration.target_ip_address]
        addresses += self.configuration.safe_get(
            'target_secondary_ip_addresses') or []
        portals = ';'.join(common.portal(address, port)
                           for address in addresses)
        return '%s,%s %s %s' % (portals, portal_tag, target_iqn, target_lun)

    @staticmethod
    def _chap_auth(username, password):
        """Build a ``provider_auth`` string."""
        return 'CHAP %s %s' % (username, password)

    def _update_volume_stats(self):
        """Stats of a backend that cannot report capacity."""
        stats = self._base_stats(self.PROTOCOL)
        stats.update(total_capacity_gb='unknown', free_capacity_gb='unknown',
                     QoS_support=False)
        stats['pools'] = [{
            'pool_name': stats['volume_backend_name'],
            'total_capacity_gb': 'unknown',
            'free_capacity_gb': 'unknown',
            'reserved_percentage': stats['reserved_percentage'],
            'QoS_support': False,
        }]
        self._stats = stats


class ISERDriver(ISCSIDriver):
    """iSCSI over RDMA: same export fields, ``driver_volume_type`` 'iser'."""

    PROTOCOL = 'iSER'
    DRIVER_VOLUME_TYPE = 'iser'

    def initialize_connection(self, volume, connector):
        """Return ``{'driver_volume_type': 'iser', 'data': props}``."""
        return super().initialize_connection(volume, connector)


class FibreChannelDriver(VolumeDriver):
    """Base of drivers exporting volumes over Fibre Channel."""

    PROTOCOL = 'FC'

    def get_volume_stats(self, refresh=False):
        """The stats, asked again from the backend first with ``refresh``."""
        return super().get_volume_stats(refresh)

    def initialize_connection(self, volume, connector):
        """Return ``{'driver_volume_type': 'fibre_channel', 'data': ...}``.

        Each FC driver maps the volume to the connector's ports itself;
        ``_build_fc_connection_info`` builds the answer.
        """
        raise NotImplementedError()

    def validate_connector(self, connector):
        """An FC connector needs its ``wwpns`` and ``wwnns``."""
        for setting in ('wwpns', 'wwnns'):
            self.validate_connector_has_setting(connector, setting)

    @staticmethod
    def validate_connector_has_setting(connector, setting):
        """Raise unless ``connector[setting]`` is present and not empty."""
        VolumeDriver.validate_connector_has_setting(connector, setting)

    @staticmethod
    def _build_fc_connection_info(target_wwns, target_lun, connector=None,
                                  initiator_target_map=None, discard=False):
        """Connection info for os-brick's Fibre Channel connector.

        ``target_wwns`` is one WWN or a list.  Without an explicit
        ``initiator_target_map`` every initiator port of ``connector``
        (``wwpns``) is mapped to every target port.  Returns::

            {'driver_volume_type': 'fibre_channel',
             'data': {'target_discovered': False, 'target_lun': 1,
                      'target_wwn': ['5000...'], 'discard': False,
                      'initiator_target_map': {'1000...': ['5000...']}}}
        """
        wwns = ([target_wwns] if isinstance(target_wwns, str)
                else list(target_wwns))
        if initiator_target_map is None and connector:
            initiator_target_map = {
                initiator: list(wwns)
                for initiator in connector.get('wwpns', [])}
        data = {'target_discovered': False,
                'target_lun': target_lun,
                'target_wwn': wwns,
                'discard': discard}
        if initiator_target_map:
            data['initiator_target_map'] = initiator_target_map
        return {'driver_volume_type': 'fibre_channel', 'data': data}

    def _update_volume_stats(self):
        stats = self._base_stats(self.PROTOCOL)
        stats.update(total_capacity_gb='unknown', free_capacity_gb='unknown',
                     QoS_support=False, pools=[])
        self._stats = stats

