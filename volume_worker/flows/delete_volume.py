"""Delete a volume: remove its export and its backend object.

Begin moves it to ``deleting``; its encryption key is deleted after its
data (``keys``); Finish soft-deletes the row. A volume with
snapshots is refused (delete them first). Resume rule: an interrupted delete
resumes (deleting on the backend is idempotent: an absent volume is already
deleted).
"""

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import keys
from volume_worker.flows import runner


class RemoveExport(common.VolumeTask):
    """Tear the volume's export down. Cannot be undone: no revert."""

    idempotent = True

    def execute(self, context, driver, volume):
        common.call_driver(driver.remove_export, context, volume)


class DeleteOnBackend(common.VolumeTask):
    """Delete the backend object, or with ``unmanage_only`` just let it go.

    Cannot be undone: no revert. No checkpoint: deleting an absent volume
    succeeds (and unmanaging one already let go), so a resumed delete
    simply runs this again.
    """

    idempotent = True

    def execute(self, driver, volume, unmanage_only=False):
        if unmanage_only:
            common.call_driver(driver.unmanage, volume)
        else:
            common.call_driver(driver.delete_volume, volume)


def build(keyed=False):
    """The flow of a delete; a volume with a key deletes it after its data."""
    tasks = (RemoveExport(), DeleteOnBackend())
    if keyed:
        tasks += (keys.DeleteKey(),)
    return common.operation_flow('delete_volume', *tasks)


def check(op):
    if op.done:
        return
    attached, snapshots = db.volume_dependents(op.subject.id)
    if attached:
        raise exception.ResourceInUse(
            resource='volume', resource_id=op.subject.id,
            reason='it has %d attachment(s); detach it first' % attached)
    if snapshots:
        raise exception.ResourceInUse(
            resource='volume', resource_id=op.subject.id,
            reason='it has %d snapshot(s); delete them first' % snapshots)


FAMILY = runner.FlowFamily(
    'delete_volume', build, subject=runner.Role('volume'),
    event='volume.delete', check=check, on_resume=runner.RESUME,
    variant=lambda op: bool(op.subject.encryption_key_id))
