"""Revert a volume to its most recent snapshot; the snapshot stays.

``reverting`` -> ``available``, failure -> ``error`` (its data is then
neither the old nor the snapshot's). The driver's own ``revert_to_snapshot``
is used when it has one; otherwise the snapshot is cloned into a temporary
volume and copied back through the data path. A volume extended after the
snapshot keeps its size. Resume rule: resume (reverting again from the same
snapshot gives the same data).
"""

import uuid

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects


class RevertOnBackend(common.VolumeTask):
    """Put the snapshot's data back into the volume. No revert: the old data is gone."""

    idempotent = True

    def execute(self, context, driver, volume, snapshot, op):
        try:
            common.call_driver(driver.revert_to_snapshot, context, volume,
                               snapshot)
        except NotImplementedError:
            common.call_driver(_generic_revert, driver, context, volume,
                               snapshot, _temporary_volume(op, volume,
                                                           snapshot))
        if volume.size > snapshot.volume_size:
            common.call_driver(driver.extend_volume, volume, volume.size)


def _temporary_volume(op, volume, snapshot):
    """The copy's scratch volume: its id derives from the operation's, so a
    resumed revert finds (and replaces) what an interrupted one left."""
    temp = objects.Volume(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, 'revert-temp:' + op.id)),
        size=snapshot.volume_size, host=volume.host,
        display_name='revert of %s' % volume.id)
    temp.obj_fill_unset()
    return temp


def _generic_revert(driver, context, volume, snapshot, temp):
    from drivers import generic
    driver.delete_volume(temp)  # left by an interrupted run, if any
    generic.revert_by_copy(driver, context, volume, snapshot, temp)


def build():
    return common.operation_flow('revert_to_snapshot', RevertOnBackend())


def check(op):
    volume, snapshot = op.subject, op.resources['snapshot']
    if snapshot.volume_id != volume.id:
        raise exception.InvalidSnapshot(
            reason='snapshot %s is of volume %s, not %s'
            % (snapshot.id, snapshot.volume_id, volume.id))
    if db.attachment_others(volume.id, None):
        raise exception.ResourceInUse(
            resource='volume', resource_id=volume.id,
            reason='it is attached; detach it before reverting')
    latest = db.snapshot_latest(volume.id)
    if latest != snapshot.id:
        raise exception.InvalidSnapshot(
            reason='only the most recent snapshot of volume %s (%s) can be '
                   'reverted to' % (volume.id, latest))


FAMILY = runner.FlowFamily(
    'revert_to_snapshot', build, subject=runner.Role('volume'),
    held=(runner.Role('snapshot'),), event='volume.revert', check=check,
    on_resume=runner.RESUME)
