"""A new group whose volumes are copies of a group snapshot's snapshots, or of a group's volumes.

The new volumes are records with ids derived from the new group's and each
source's, so a resumed run finds the ones it made. The driver's
``create_group_from_src`` gets them with the sources and returns the
contract's per-volume updates; a driver without it gets a copy task per
new volume, a few at a time, each journaled (``flows.members``). Every new
volume is exported, as any new volume is. Resume rule: resume (the driver's
call and each copy are checkpointed; exports converge).
"""

import uuid

from oslo_log import log as logging
from taskflow.types import failure as tf_failure

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import group as group_flows
from volume_worker.flows import members as members_flows
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
    """The driver's ``create_group_from_src`` (journaled).

    A driver without it gets one copy task per new volume. When the call
    raises, the copies are removed and their records left ``error``.
    """

    checkpoint = True
    default_provides = 'group_call'

    def execute(self, context, driver, group, sources, new_volumes, op):
        ordered = sorted(sources, key=lambda s: s.id)
        volumes = _in_source_order(new_volumes, ordered)
        try:
            if _of_snapshots(ordered):
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
        except NotImplementedError:
            return members_flows.GENERIC
        update, updates = result or (None, None)
        return members_flows.group_result(update, updates)

    def revert(self, driver, new_volumes, result=None, **kwargs):
        driver_failed = isinstance(result, tf_failure.Failure)
        for volume in new_volumes:
            if volume.deleted:
                continue
            if not driver_failed:
                # Copies with an outcome keep it, as it was reported.
                if volume.status == VolumeStatus.CREATING:
                    volume.status = VolumeStatus.ERROR
                    volume.save()
                continue
            try:
                common.call_driver(driver.delete_volume, volume)
            except Exception:
                LOG.exception('Could not remove copy %s while reverting its '
                              'group', volume.id)
            volume.status = VolumeStatus.ERROR
            volume.save()


def _in_source_order(volumes, sources):
    by_source = {v.snapshot_id or v.source_volid: v for v in volumes}
    return [by_source[s.id] for s in sources]


class CopyMember(members_flows.MemberTask):
    """One new volume made from its source snapshot or volume (an existing
    whole copy is kept)."""

    ok_status = VolumeStatus.AVAILABLE
    failed_status = VolumeStatus.ERROR

    def act(self, context, driver, member, op):
        source_id = member.snapshot_id or member.source_volid
        source = next(s for s in op.resources['sources']
                      if s.id == source_id)
        if member.snapshot_id:
            return common.call_driver(driver.create_volume_from_snapshot,
                                      member, source)
        return common.call_driver(driver.create_cloned_volume, member,
                                  source)


class ExportNewVolumes(common.VolumeTask):
    """Export every copy, as any new volume is exported."""

    idempotent = True

    def execute(self, context, driver, new_volumes):
        for volume in new_volumes:
            common.merge_model_update(volume, common.call_driver(
                driver.create_export, context, volume, None))
            volume.save()


def _build(name):
    def build(op):
        ids = [new_volume_id(op.subject.id, s.id)
               for s in op.resources['sources']]
        return common.operation_flow(
            name, MakeNewVolumes(), members_flows.member_flow(
                name, CopyGroupOnBackend(), CopyMember, ids, 'new_volumes',
                provides='group_update', ok_status=VolumeStatus.AVAILABLE,
                reason='not every copy was made'),
            ExportNewVolumes(), updates=('group_update',))
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
    event='group.create', check=check, on_resume=runner.RESUME,
    shaped=True, workers=members_flows.parallelism)

FROM_GROUP = runner.FlowFamily(
    'create_group_from_group', _build('create_group_from_group'),
    subject=runner.Role('group', new=True),
    held=(runner.Role('group', name='source_group',
                      id_from='group.source_group_id'),
          runner.Role('volume', name='sources', many=True)),
    event='group.create', check=check, on_resume=runner.RESUME,
    shaped=True, workers=members_flows.parallelism)
