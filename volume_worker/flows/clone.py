"""Create a volume from a snapshot or as a clone of another volume.

The new volume moves as any create does (``creating`` -> ``available`` /
``error``); the source (snapshot, or volume in the role ``source``) is held
for the whole copy. A volume larger than its source is grown after the
copy; a smaller one is refused. A copy of an encrypted source gets a copy
of its key (``keys``). Resume rule: resume (the backend copy is
checkpointed; growing and exporting are idempotent).
"""

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import create_volume
from volume_worker.flows import keys
from volume_worker.flows import runner


class CopySnapshotOnBackend(create_volume.CreateOnBackend):
    """Create the volume as a copy of the snapshot; revert deletes it."""

    def execute(self, driver, volume, snapshot):
        return common.call_driver(driver.create_volume_from_snapshot,
                                  volume, snapshot) or {}


class CopyVolumeOnBackend(create_volume.CreateOnBackend):
    """Create the volume as a clone of the source volume; revert deletes it."""

    def execute(self, driver, volume, source):
        return common.call_driver(driver.create_cloned_volume,
                                  volume, source) or {}


class GrowToSize(common.VolumeTask):
    """Extend the copy to the size asked for, when larger than its source.

    Extending to a size a volume already has changes nothing. No revert of
    its own: the copy's revert deletes the whole volume.
    """

    idempotent = True

    def execute(self, driver, volume, create_update, source_size):
        common.merge_model_update(volume, create_update)
        if volume.size > source_size:
            common.call_driver(driver.extend_volume, volume, volume.size)


def _build(name, copy_task):
    def build():
        return common.operation_flow(
            name, keys.CreateKey(), copy_task, GrowToSize(),
            create_volume.CreateExport(),
            updates=('key_update', 'create_update', 'export_update'))
    return build


def _check(source_role, source_size, source_field, source_volume):
    def check(op):
        create_volume.check(op)
        volume, source = op.subject, op.resources[source_role]
        requested = op.requested or volume
        if getattr(requested, source_field) != getattr(volume, source_field):
            raise exception.ResourceExists(
                resource='volume', resource_id=volume.id,
                reason='from %s %s' % (source_role,
                                       getattr(volume, source_field)))
        size = source_size(source)
        if volume.size < size:
            raise exception.InvalidInput(
                reason='volume %s of %d GiB cannot hold %s %s of %d GiB'
                % (volume.id, volume.size, source_role, source.id, size))
        op.store['source_size'] = size
        op.store['source_key_id'] = keys.check_copy(
            volume, source_volume(source),
            '%s %s' % (source_role, source.id))
    return check


FROM_SNAPSHOT = runner.FlowFamily(
    'create_volume_from_snapshot',
    _build('create_volume_from_snapshot', CopySnapshotOnBackend()),
    subject=runner.Role('volume', new=True),
    held=(runner.Role('snapshot', id_from='volume.snapshot_id'),),
    event='volume.create',
    check=_check('snapshot', lambda s: s.volume_size, 'snapshot_id',
                 keys.snapshot_volume),
    on_resume=runner.RESUME)

FROM_VOLUME = runner.FlowFamily(
    'create_cloned_volume',
    _build('create_cloned_volume', CopyVolumeOnBackend()),
    subject=runner.Role('volume', new=True),
    held=(runner.Role('volume', name='source', id_from='volume.source_volid'),),
    event='volume.create',
    check=_check('source', lambda v: v.size, 'source_volid',
                 lambda v: v),
    on_resume=runner.RESUME)
