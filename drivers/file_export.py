"""The file driver's exports: local paths, or one tgt iSCSI target per volume.

``FileVolumeDriver`` mixes this in; it needs the driver's ``tgt`` (a
``drivers.tgt.TgtAdm``, or None for local paths), ``local_path`` and
``_existing_volume_path`` / ``_existing_snapshot_path``.
"""

import os
import secrets
import string

_CHAP_USER_LENGTH = 20
_CHAP_SECRET_LENGTH = 16
_CHAP_ALPHABET = string.ascii_letters + string.digits
_ISCSI_LUN = 1          # tgt's LUN 0 is the target's controller


def _random_text(length):
    return ''.join(secrets.choice(_CHAP_ALPHABET) for _ in range(length))


class ExportMixin:
    """Exports and connections of volumes and snapshots."""

    def _target_iqn(self, volume):
        return '%s%s' % (self.configuration.target_prefix,
                         os.path.basename(self.local_path(volume)))

    @staticmethod
    def _chap_from(volume):
        auth = getattr(volume, 'provider_auth', None)
        if auth:
            fields = auth.split()
            if len(fields) == 3 and fields[0] == 'CHAP':
                return fields[1], fields[2]
        return None

    def create_export(self, context, volume, connector):
        if self.tgt is None:
            return None
        user = secret = None
        if self.configuration.safe_get('use_chap_auth'):
            # Reuse credentials already recorded, so a retry converges.
            user, secret = self._chap_from(volume) or (
                _random_text(_CHAP_USER_LENGTH),
                _random_text(_CHAP_SECRET_LENGTH))
        iqn = self._target_iqn(volume)
        self.tgt.ensure_target(iqn, self._existing_volume_path(volume),
                               user, secret)
        return {'provider_location': self._iscsi_location(iqn, _ISCSI_LUN),
                'provider_auth': (self._chap_auth(user, secret) if user
                                  else None)}

    def ensure_export(self, context, volume):
        if self.tgt is None:
            return None
        if not getattr(volume, 'provider_location', None):
            return None         # not exported: nothing to recreate
        self.tgt.ensure_target(self._target_iqn(volume),
                               self._existing_volume_path(volume),
                               *(self._chap_from(volume) or (None, None)))
        return None

    def ensure_exports(self, context, volumes):
        """Every export of a start-up with one read of tgtd's table."""
        if self.tgt is None:
            return {}, {}
        exports, volume_of, failures = [], {}, {}
        for volume in volumes:
            if not getattr(volume, 'provider_location', None):
                continue
            try:
                path = self._existing_volume_path(volume)
            except Exception as exc:
                failures[volume.id] = str(exc)
                continue
            iqn = self._target_iqn(volume)
            volume_of[iqn] = volume.id
            exports.append((iqn, path) +
                           tuple(self._chap_from(volume) or (None, None)))
        for iqn, reason in self.tgt.ensure_targets(exports).items():
            failures[volume_of[iqn]] = reason
        return {}, failures

    def remove_export(self, context, volume):
        if self.tgt is not None:
            self._remove_iscsi_export(volume)

    def _remove_iscsi_export(self, volume):
        chap = self._chap_from(volume)
        self.tgt.remove_target(self._target_iqn(volume),
                               user=chap[0] if chap else None)

    def initialize_connection(self, volume, connector):
        if self.tgt is None:
            return {'driver_volume_type': 'local',
                    'data': {'device_path': self._existing_volume_path(volume),
                             'volume_id': volume.id}}
        return super().initialize_connection(volume, connector)

    def terminate_connection(self, volume, connector, **kwargs):
        """Nothing to revoke: the export itself goes in remove_export."""

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        if self.tgt is not None:
            raise NotImplementedError()
        return {'driver_volume_type': 'local',
                'data': {'device_path': self._existing_snapshot_path(snapshot),
                         'snapshot_id': snapshot.id}}

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        """Local snapshot attachments need no teardown."""

    def create_export_snapshot(self, context, snapshot, connector):
        return None

    def remove_export_snapshot(self, context, snapshot):
        return None

    def validate_connector(self, connector):
        if self.tgt is not None:
            super().validate_connector(connector)
