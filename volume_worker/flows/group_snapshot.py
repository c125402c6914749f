"""Group snapshots: a snapshot of every volume of a group, taken together; and their deletion.

The driver's ``create_group_snapshot`` / ``delete_group_snapshot`` get the
member snapshots and return the contract's per-member updates; a driver
without them gets the generic behaviour (a task per member snapshot, a few
at a time, each journaled: ``flows.members``), except for a group type that
asks for consistent snapshots, which only a driver can promise. The member
snapshots are records with ids derived from the group snapshot's and each
volume's, so a resumed run finds the ones it made. Resume rule: resume
(the members not finished are taken or deleted; taking an existing
snapshot, deleting an absent one, succeed).
"""

import uuid

from oslo_log import log as logging
from taskflow.types import failure as tf_failure

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import group as group_flows
from volume_worker.flows import members as members_flows
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import SnapshotStatus

LOG = logging.getLogger(__name__)


def member_snapshot_id(group_snapshot_id, volume_id):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, 'group-snapshot:%s:%s'
                          % (group_snapshot_id, volume_id)))


class MakeMemberSnapshots(common.VolumeTask):
    """One snapshot record per member volume (found again on resume)."""

    idempotent = True
    default_provides = 'member_snapshots'

    def execute(self, group_snapshot, members):
        snapshots = []
        for volume in members:
            snapshot_id = member_snapshot_id(group_snapshot.id, volume.id)
            try:
                snapshot = objects.Snapshot.get_by_id(snapshot_id)
            except exception.NotFound:
                snapshot = objects.Snapshot(
                    id=snapshot_id, volume_id=volume.id,
                    volume_size=volume.size, host=volume.host,
                    status=SnapshotStatus.CREATING,
                    group_snapshot_id=group_snapshot.id,
                    display_name=group_snapshot.name)
                snapshot.obj_fill_unset()
                snapshot.create()
            snapshots.append(snapshot)
        return snapshots


def _consistent(group):
    if not group.group_type_id:
        return False
    return objects.GroupType.get_by_id(
        group.group_type_id).is_consistent_snapshot_type()


class SnapshotGroupOnBackend(common.VolumeTask):
    """The driver's ``create_group_snapshot`` (journaled).

    A driver without it gets one snapshot task per member, except for a
    group type that asks for consistent snapshots, which only a driver can
    promise. When the call raises, what it may have taken is removed and
    every member snapshot is left ``error``.
    """

    checkpoint = True
    default_provides = 'group_call'

    def execute(self, context, driver, group_snapshot, group,
                member_snapshots):
        try:
            update, updates = group_flows.group_call(
                group, driver.create_group_snapshot,
                (driver.create_cgsnapshot, {}), context, group_snapshot,
                member_snapshots) or (None, None)
        except NotImplementedError:
            if _consistent(group):
                raise exception.GroupFailed(
                    group_id=group.id, reason='its type asks for consistent '
                    'snapshots, which this driver does not take')
            return members_flows.GENERIC
        return members_flows.group_result(update, updates)

    def revert(self, driver, member_snapshots, result=None, **kwargs):
        driver_failed = isinstance(result, tf_failure.Failure)
        for snapshot in member_snapshots:
            if snapshot.deleted:
                continue
            if not driver_failed:
                # Those with an outcome keep it, as the driver reported it.
                if snapshot.status == SnapshotStatus.CREATING:
                    snapshot.status = SnapshotStatus.ERROR
                    snapshot.save()
                continue
            try:
                common.call_driver(driver.delete_snapshot, snapshot)
            except Exception:
                LOG.exception('Could not remove member snapshot %s while '
                              'reverting its group snapshot', snapshot.id)
            snapshot.status = SnapshotStatus.ERROR
            snapshot.save()


class SnapshotMember(members_flows.MemberTask):
    """One member snapshot taken (taking an existing one succeeds)."""

    ok_status = SnapshotStatus.AVAILABLE
    failed_status = SnapshotStatus.ERROR

    def act(self, context, driver, member, op):
        return common.call_driver(driver.create_snapshot, member)


def build_create(op):
    ids = [member_snapshot_id(op.subject.id, v.id)
           for v in op.resources['members']]
    return common.operation_flow(
        'create_group_snapshot', MakeMemberSnapshots(),
        members_flows.member_flow(
            'create_group_snapshot', SnapshotGroupOnBackend(),
            SnapshotMember, ids, 'member_snapshots',
            provides='group_snapshot_update',
            ok_status=SnapshotStatus.AVAILABLE,
            reason='not every member snapshot was taken'),
        updates=('group_snapshot_update',))


def check_create(op):
    group, group_snapshot = op.resources['group'], op.subject
    locked = sorted(m.id for m in op.resources['members'])
    if locked != db.group_member_ids(group.id):
        raise exception.InvalidInput(
            reason='the volumes of group %s changed; ask again' % group.id)
    if not locked:
        raise exception.InvalidInput(reason='group %s has no volumes to '
                                     'snapshot' % group.id)
    if op.is_new:
        group_snapshot.host = group.host
        group_snapshot.group_type_id = group.group_type_id


class DeleteGroupSnapshotOnBackend(common.VolumeTask):
    """The driver's ``delete_group_snapshot`` (journaled); when it raises,
    the member snapshots are left ``error_deleting``."""

    checkpoint = True
    default_provides = 'group_call'

    def execute(self, context, driver, group_snapshot, members):
        live = [s for s in members if not s.deleted]
        group = objects.Group.get_by_id(group_snapshot.group_id,
                                        read_deleted=True)
        try:
            update, updates = group_flows.group_call(
                group, driver.delete_group_snapshot,
                (driver.delete_cgsnapshot, {}), context, group_snapshot,
                live) or (None, None)
        except NotImplementedError:
            return members_flows.GENERIC
        return members_flows.group_result(update, updates)

    def revert(self, members, result=None, **kwargs):
        if not isinstance(result, tf_failure.Failure):
            return
        for snapshot in members:
            if not snapshot.deleted:
                snapshot.status = SnapshotStatus.ERROR_DELETING
                snapshot.save()


class DeleteSnapshotMember(members_flows.MemberTask):
    """One member snapshot deleted (deleting an absent one succeeds)."""

    ok_status = 'deleted'
    failed_status = SnapshotStatus.ERROR_DELETING

    def act(self, context, driver, member, op):
        common.call_driver(driver.delete_snapshot, member)


def build_delete(op):
    return common.operation_flow(
        'delete_group_snapshot', members_flows.member_flow(
            'delete_group_snapshot', DeleteGroupSnapshotOnBackend(),
            DeleteSnapshotMember, [s.id for s in op.resources['members']],
            'members', provides='group_snapshot_update', ok_status='deleted',
            reason='not every member snapshot was deleted'),
        updates=('group_snapshot_update',))


def member_ids(group_snapshot_id):
    return sorted(s.id for s in objects.Snapshot.get_all(
        filters={'group_snapshot_id': group_snapshot_id}))


def check_delete(op):
    locked = sorted(s.id for s in op.resources['members'])
    if locked != member_ids(op.subject.id):
        raise exception.InvalidInput(
            reason='the snapshots of group snapshot %s changed; ask again'
            % op.subject.id)


CREATE = runner.FlowFamily(
    'create_group_snapshot', build_create,
    subject=runner.Role('group_snapshot', new=True),
    held=(runner.Role('group', id_from='group_snapshot.group_id'),
          runner.Role('volume', name='members', many=True)),
    event='group_snapshot.create', check=check_create,
    on_resume=runner.RESUME, shaped=True, workers=members_flows.parallelism)

DELETE = runner.FlowFamily(
    'delete_group_snapshot', build_delete,
    subject=runner.Role('group_snapshot'),
    held=(runner.Role('snapshot', name='members', many=True),),
    event='group_snapshot.delete', check=check_delete,
    on_resume=runner.RESUME, shaped=True, workers=members_flows.parallelism)
