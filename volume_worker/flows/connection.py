"""Cinder's legacy connection path, and connections to snapshots.

``initialize_connection`` / ``terminate_connection`` / ``remove_export`` act
on a volume without an attachment record (the consumer keeps its own), and
``attach_volume`` / ``detach_volume`` tell the driver about a consumer and
keep the record. The same calls for snapshots let a backup read a snapshot
of an in-use volume. The volume or snapshot is held (locked, status checked)
but changes no status; the journal row is written before the first backend
call. Resume rule: resume (every step converges when run again).
"""

from volume_worker.flows import attachment
from volume_worker.flows import common
from volume_worker.flows import runner


class ValidateConnector(common.VolumeTask):
    """Ask the driver whether it can serve this connector."""

    idempotent = True

    def execute(self, driver, connector):
        common.call_driver(driver.validate_connector, connector)


class CreateExport(common.VolumeTask):
    """Export the volume (or snapshot) to the connector; keep the driver's update."""

    idempotent = True

    def __init__(self, of_snapshot=False, **kwargs):
        super().__init__(**kwargs)
        self.of_snapshot = of_snapshot

    def execute(self, context, driver, op, connector):
        subject = op.subject
        create = (driver.create_export_snapshot if self.of_snapshot
                  else driver.create_export)
        update = dict(common.call_driver(create, context, subject,
                                         connector) or {})
        update.pop('initiator_updates', None)
        common.merge_model_update(subject, update)
        subject.save()


class InitializeConnection(common.VolumeTask):
    """The connection info the consumer connects with (the call's result)."""

    idempotent = True
    default_provides = 'connection_info'

    def __init__(self, of_snapshot=False, **kwargs):
        super().__init__(**kwargs)
        self.of_snapshot = of_snapshot

    def execute(self, driver, op, connector):
        connect = (driver.initialize_connection_snapshot if self.of_snapshot
                   else driver.initialize_connection)
        return common.call_driver(connect, op.subject, connector)


class TerminateConnection(common.VolumeTask):
    """Revoke a connector's connection. Cannot be undone: no revert."""

    idempotent = True

    def __init__(self, of_snapshot=False, **kwargs):
        super().__init__(**kwargs)
        self.of_snapshot = of_snapshot

    def execute(self, driver, op, connector, force):
        if self.of_snapshot:
            common.call_driver(driver.terminate_connection_snapshot,
                               op.subject, connector, force=force)
        else:
            common.call_driver(driver.terminate_connection, op.subject,
                               connector, force=force)


class RemoveExport(common.VolumeTask):
    """Stop exporting. Cannot be undone: no revert."""

    idempotent = True

    def __init__(self, of_snapshot=False, **kwargs):
        super().__init__(**kwargs)
        self.of_snapshot = of_snapshot

    def execute(self, context, driver, op):
        if self.of_snapshot:
            common.call_driver(driver.remove_export_snapshot, context,
                               op.subject)
            return
        common.call_driver(driver.remove_export, context, op.subject)
        # Start-up re-creates the exports of volumes that have a location.
        op.subject.provider_location = None


class NotifyDriverOfAttach(common.VolumeTask):
    """The driver's attach callback (legacy path)."""

    idempotent = True

    def execute(self, context, driver, volume, attachment):
        common.call_driver(driver.attach_volume, context, volume,
                           attachment.instance_uuid, attachment.attached_host,
                           attachment.mountpoint)


class NotifyDriverOfDetach(common.VolumeTask):
    """The driver's detach callback (legacy path)."""

    idempotent = True

    def execute(self, context, driver, volume, attachment):
        common.call_driver(driver.detach_volume, context, volume, attachment)


def _family(operation, build, resource='volume', held=(), check=None):
    return runner.FlowFamily(
        operation, build, subject=runner.Role(resource), held=held,
        event='%s.%s' % (resource, operation), check=check,
        on_resume=runner.RESUME, while_frozen=True)


INITIALIZE = _family('initialize_connection', lambda: common.operation_flow(
    'initialize_connection', ValidateConnector(), CreateExport(),
    InitializeConnection()))
TERMINATE = _family('terminate_connection', lambda: common.operation_flow(
    'terminate_connection', TerminateConnection()))
REMOVE_EXPORT = _family('remove_export', lambda: common.operation_flow(
    'remove_export', RemoveExport()))

INITIALIZE_SNAPSHOT = _family(
    'initialize_connection_snapshot', lambda: common.operation_flow(
        'initialize_connection_snapshot', ValidateConnector(),
        CreateExport(of_snapshot=True),
        InitializeConnection(of_snapshot=True)),
    resource='snapshot')
TERMINATE_SNAPSHOT = _family(
    'terminate_connection_snapshot', lambda: common.operation_flow(
        'terminate_connection_snapshot',
        TerminateConnection(of_snapshot=True)),
    resource='snapshot')
REMOVE_EXPORT_SNAPSHOT = _family(
    'remove_export_snapshot', lambda: common.operation_flow(
        'remove_export_snapshot', RemoveExport(of_snapshot=True)),
    resource='snapshot')

_VOLUME = runner.Role('volume', id_from='attachment.volume_id')

ATTACH = runner.FlowFamily(
    'attach_volume', lambda: common.operation_flow(
        'attach_volume', NotifyDriverOfAttach(), attachment.MarkVolumeInUse(),
        attachment.StampTime('attach_time'), updates=('time_update',)),
    subject=runner.Role('attachment', new=True), held=(_VOLUME,),
    event='volume.attach', check=attachment.check_update,
    on_resume=runner.RESUME, while_frozen=True)

DETACH = runner.FlowFamily(
    'detach_volume', lambda: common.operation_flow(
        'detach_volume', NotifyDriverOfDetach(),
        attachment.MarkVolumeAvailableIfLast(),
        attachment.StampTime('detach_time'), updates=('time_update',)),
    subject=runner.Role('attachment'), held=(_VOLUME,),
    event='volume.detach', check=attachment.check_same_volume,
    on_resume=runner.RESUME, while_frozen=True)
