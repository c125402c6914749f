"""Attachments: hand a volume to a consumer (connect, complete) and take it back.

``attachment_update`` validates the consumer's connector, exports the volume
to it and returns the connection info (the attachment stays ``attaching``
until ``attachment_complete`` makes it ``attached`` and the volume
``in-use``); ``attachment_delete`` terminates the connection, removes the
export when the last attachment goes, and makes the volume ``available``
again. Each holds its volume. Resume rule: resume (every step converges
when run again).
"""

from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker.objects import AttachStatus
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

MODES = ('rw', 'ro')


def _others(attachment):
    return db.attachment_others(attachment.volume_id, attachment.id)


class ValidateConnector(common.VolumeTask):
    """Ask the driver whether it can serve this connector (iSCSI needs an initiator)."""

    idempotent = True

    def execute(self, driver, attachment):
        common.call_driver(driver.validate_connector, attachment.connector)


class ExportToConnector(common.VolumeTask):
    """Export the volume for the connector; revert removes it unless others use it."""

    idempotent = True
    default_provides = 'initiator_updates'

    def execute(self, context, driver, volume, attachment):
        update = dict(common.call_driver(driver.create_export, context,
                                         volume, attachment.connector) or {})
        initiator_updates = update.pop('initiator_updates', None)
        common.merge_model_update(volume, update)
        volume.save()  # the export's location and secrets outlive this call
        return initiator_updates

    def revert(self, context, driver, volume, attachment, **kwargs):
        if _others(attachment):
            return
        try:
            common.call_driver(driver.remove_export, context, volume)
        except Exception:
            LOG.exception('Could not remove the export of volume %s while '
                          'reverting its attachment', volume.id)


class InitializeConnection(common.VolumeTask):
    """Get the connection info the consumer connects with."""

    idempotent = True
    default_provides = 'attach_update'

    def execute(self, driver, volume, attachment, initiator_updates):
        connector = dict(attachment.connector)
        info = common.call_driver(driver.initialize_connection, volume,
                                  connector)
        if not info or 'driver_volume_type' not in info:
            raise exception.InvalidConnector(
                reason='the driver returned no connection info')
        info.setdefault('data', {})
        info['data']['access_mode'] = attachment.attach_mode
        info['data']['attachment_id'] = attachment.id
        if initiator_updates:
            connector['initiator_data'] = initiator_updates
        return {'connection_info': info, 'connector': connector,
                'attached_host': connector.get('host')}


def build_update():
    return common.operation_flow(
        'attachment_update', ValidateConnector(), ExportToConnector(),
        InitializeConnection(), updates=('attach_update',))


def check_update(op):
    volume, attachment = op.resources['volume'], op.subject
    if op.is_new:
        attachment.host = volume.host
    elif op.requested.volume_id != attachment.volume_id:
        raise exception.ResourceExists(
            resource='attachment', resource_id=attachment.id,
            reason='of volume %s' % attachment.volume_id)
    if attachment.attach_mode not in MODES:
        raise exception.InvalidInput(reason='attach mode must be rw or ro')
    if _others(attachment):
        if not multiattach(volume):
            raise exception.ResourceInUse(
                resource='volume', resource_id=volume.id,
                reason='it is attached already and does not allow '
                       'multiattach')
        if not op.backend_reports('multiattach'):
            raise exception.ResourceInUse(
                resource='volume', resource_id=volume.id,
                reason='it is attached already and backend %s does not '
                       'report multiattach' % op.backend)


def multiattach(volume):
    """Several consumers at once: the volume, or its type, says so."""
    if volume.multiattach:
        return True
    vtype = volume.volume_type
    spec = (vtype.extra_specs or {}).get('multiattach') if vtype else None
    return (spec or '').strip().lower() in ('<is> true', 'true')


class MarkVolumeInUse(common.VolumeTask):
    """The volume is in use once one attachment completes."""

    idempotent = True

    def execute(self, volume):
        if volume.status != VolumeStatus.IN_USE:
            previous = volume.status
            volume.status = VolumeStatus.IN_USE
            if not volume.save(expected_status=previous):
                raise exception.InvalidStatus(
                    resource='volume', resource_id=volume.id,
                    status='changed', operation='attachment_complete',
                    expected=previous)


class StampTime(common.VolumeTask):
    """Record when the attachment completed (or was detached)."""

    idempotent = True
    default_provides = 'time_update'

    def __init__(self, field, **kwargs):
        super().__init__(name='Stamp_' + field, **kwargs)
        self.field = field

    def execute(self):
        return {self.field: db.utcnow()}


def build_complete():
    return common.operation_flow('attachment_complete', MarkVolumeInUse(),
                                 StampTime('attach_time'),
                                 updates=('time_update',))


def check_same_volume(op):
    volume, attachment = op.resources['volume'], op.subject
    if attachment.volume_id != volume.id:
        raise exception.InvalidInput(
            reason='attachment %s is of volume %s, not %s'
            % (attachment.id, attachment.volume_id, volume.id))


class TerminateConnection(common.VolumeTask):
    """Revoke the consumer's connection. Cannot be undone: no revert."""

    idempotent = True

    def execute(self, driver, volume, attachment):
        common.call_driver(driver.terminate_connection, volume,
                           attachment.connector or {}, force=False)


class RemoveExportIfLast(common.VolumeTask):
    """With no other attachment left, the volume is exported to no one."""

    idempotent = True

    def execute(self, context, driver, volume, attachment):
        if _others(attachment):
            return
        common.call_driver(driver.remove_export, context, volume)
        # Start-up re-creates the exports of volumes that have a location.
        volume.provider_location = None
        volume.save()


class MarkVolumeAvailableIfLast(common.VolumeTask):
    """The volume is available again once no attachment holds it."""

    idempotent = True

    def execute(self, volume, attachment):
        if volume.status != VolumeStatus.IN_USE:
            return
        if AttachStatus.ATTACHED in _others(attachment):
            return
        volume.status = VolumeStatus.AVAILABLE
        volume.save(expected_status=VolumeStatus.IN_USE)


def build_delete():
    return common.operation_flow(
        'attachment_delete', TerminateConnection(), RemoveExportIfLast(),
        MarkVolumeAvailableIfLast(), StampTime('detach_time'),
        updates=('time_update',))


_VOLUME = runner.Role('volume', id_from='attachment.volume_id')

UPDATE = runner.FlowFamily(
    'attachment_update', build_update,
    subject=runner.Role('attachment', new=True), held=(_VOLUME,),
    event='attachment.update', check=check_update, on_resume=runner.RESUME,
    while_frozen=True)

COMPLETE = runner.FlowFamily(
    'attachment_complete', build_complete,
    subject=runner.Role('attachment'), held=(_VOLUME,),
    event='volume.attach', check=check_same_volume,
    on_resume=runner.RESUME, while_frozen=True)

DELETE = runner.FlowFamily(
    'attachment_delete', build_delete,
    subject=runner.Role('attachment'), held=(_VOLUME,),
    event='volume.detach', check=check_same_volume,
    on_resume=runner.RESUME, while_frozen=True)
