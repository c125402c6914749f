"""A new group whose volumes are copies of a group snapshot's snapshots, or of a group's volumes.

The new volumes are records with ids derived from the new group's and each
source's, so a resumed run finds the ones it made. The driver's
``create_group_from_src`` gets them with the sources and returns the
contract's per-volume updates; a driver without it gets one copy after
another. Every new volume is exported, as any new volume is. Resume rule:
resume (the copy is checkpointed; exports converge).
"""

import uuid

from oslo_log import log as logging

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import group as group_flows
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)


def new_volume_id(group_id, source_id):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, 'group-from:%s:%s'
                          % (group_id, source_id)))


def _of_snapshots(sources):
    return bool(sources) and isinstance(sources[0], objects.Snapshot)


class MakeNewVolumes(common.VolumeTask):
    """One new volume record per source, in the new group (found on resume)."""

    idempotent = True
    default_provides = 'new_volumes'

    def execute(self, group, sources):
        volumes = []
        for source in sorted(sources, key=lambda s: s.id):
            volume_id = new_volume_id(group.id, source.id)
            try:
                volume = objects.Volume.get_by_id(volume_id)
            except exception.NotFound:
                snapshot = isinstance(source, objects.Snapshot)
                volume = objects.Volume(
                    id=volume_id, status=VolumeStatus.CREATING,
                    size=source.volume_size if snapshot else source.size,
                    host=source.host, group_id=group.id,
                    snapshot_id=source.id if snapshot else None,
                    source_volid=None if snapshot else source.id,
                    display_name=group.name)
                volume.obj_fill_unset()
                volume.create()
            volumes.append(volume)
        return volumes


class CopyGroupOnBackend(common.VolumeTask):
    """The driver's ``create_group_from_src``, or each copy in turn.

    Revert deletes the copies and leaves their records ``error``.
    """

    checkpoint = True
    default_provides = 'group_update'

    def execute(self, context, driver, group, sources, new_volumes, op):
        by_source = {v.snapshot_id or v.source_volid: v for v in new_volumes}
        ordered = sorted(sources, key=lambda s: s.id)
        volumes = [by_source[s.id] for s in ordered]
        snapshots = _of_snapshots(ordered)
        try:
            if snapshots:
                source = op.resources.get('group_snapshot')
                result = group_flows.group_call(
                    group, driver.create_group_from_src,
                    (driver.create_consistencygroup_from_src,
                     {'cgsnapshot': source, 'snapshots': ordered}),
                    context, group, volumes, group_snapshot=source,
                    snapshots=ordered)
            else:
                source = op.resources.get('source_group')
                result = group_flows.group_call(
                    group, driver.create_group_from_src,
                    (driver.create_consistencygroup_from_src,
                     {'source_cg': source, 'source_vols': ordered}),
                    context, group, volumes, source_group=source,
                    source_vols=ordered)
            update, updates = result or (None, None)
        except NotImplementedError:
            update, updates = None, self._one_by_one(driver, volumes, ordered,
                                                     snapshots)
        if updates is None:
            updates = [{'id': v.id, 'status': VolumeStatus.AVAILABLE}
                       for v in volumes]
        group_flows.apply_member_updates(volumes, updates)
        if group_flows.failed(update) or any(
                u.get('status') in group_flows.FAILED for u in updates):
            raise exception.GroupFailed(group_id=group.id,
                                        reason='not every copy was made')
        return group_flows.without_status(update)

    @staticmethod
    def _one_by_one(driver, volumes, sources, snapshots):
        updates = []
        for volume, source in zip(volumes, sources):
            copy = (driver.create_volume_from_snapshot if snapshots
                    else driver.create_cloned_volume)
            try:
                common.merge_model_update(
                    volume, common.call_driver(copy, volume, source))
                updates.append({'id': volume.id,
                                'status': VolumeStatus.AVAILABLE})
            except Exception as exc:
                LOG.warning('Copy %s of %s failed: %s', volume.id, source.id,
                            exc)
                updates.append({'id': volume.id, 'status': VolumeStatus.ERROR})
        return updates

    def revert(self, driver, new_volumes, result=None, **kwargs):
        for volume in new_volumes:
            try:
                common.call_driver(driver.delete_volume, volume)
            except Exception:
                LOG.exception('Could not remove copy %s while reverting its '
                              'group', volume.id)
            if not volume.deleted:
                volume.status = VolumeStatus.ERROR
                volume.save()


class ExportNewVolumes(common.VolumeTask):
    """Export every copy, as any new volume is exported."""

    idempotent = True

    def execute(self, context, driver, new_volumes):
        for volume in new_volumes:
            common.merge_model_update(volume, common.call_driver(
                driver.create_export, context, volume, None))
            volume.save()


def _build(name):
    def build():
        return common.operation_flow(
            name, MakeNewVolumes(), CopyGroupOnBackend(), ExportNewVolumes(),
            updates=('group_update',))
    return build


def check(op):
    source = (op.resources.get('group_snapshot') or
              op.resources.get('source_group'))
    if not op.resources['sources']:
        raise exception.InvalidInput(reason='the source has no volumes')
    if op.is_new:
        op.subject.host = source.host
        op.subject.group_type_id = source.group_type_id


FROM_GROUP_SNAPSHOT = runner.FlowFamily(
    'create_group_from_group_snapshot',
    _build('create_group_from_group_snapshot'),
    subject=runner.Role('group', new=True),
    held=(runner.Role('group_snapshot', id_from='group.group_snapshot_id'),
          runner.Role('snapshot', name='sources', many=True)),
    event='group.create', check=check, on_resume=runner.RESUME)

FROM_GROUP = runner.FlowFamily(
    'create_group_from_group', _build('create_group_from_group'),
    subject=runner.Role('group', new=True),
    held=(runner.Role('group', name='source_group',
                      id_from='group.source_group_id'),
          runner.Role('volume', name='sources', many=True)),
    event='group.create', check=check, on_resume=runner.RESUME)
