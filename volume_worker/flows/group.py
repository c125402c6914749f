"""Groups: create one, add and remove its volumes, delete it (with its volumes).

The driver's group calls are used as the contract describes them, with its
per-member update lists applied to the members; a driver without them
(``NotImplementedError``) gets the generic behaviour: a group is a record
here, and its volumes are deleted a few at a time, each journaled
(``flows.members``). The group and every member volume are locked. Resume
rule: resume (the members not yet deleted are deleted; deleting an absent
volume succeeds).
"""

from oslo_log import log as logging
from taskflow.types import failure as tf_failure

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import members as members_flows
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import MigrationStatus
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

FAILED = members_flows.FAILED

# The group type Cinder gives groups made by the consistency-group API: a
# driver that only has the legacy ConsistencyGroupVD calls serves them.
DEFAULT_CG_TYPE = 'default_cgsnapshot_type'


def is_legacy_cg(group):
    if group is None or not group.group_type_id:
        return False
    try:
        return objects.GroupType.get_by_id(
            group.group_type_id).name == DEFAULT_CG_TYPE
    except exception.NotFound:
        return False


def group_call(group, method, legacy, *args, **kwargs):
    """The driver's group call, or for a group of the default consistency-group
    type its legacy ConsistencyGroupVD call (``legacy``: (method, kwargs));
    NotImplementedError when it has neither.

    The groups and group snapshots passed get their ``group_type`` loaded
    here: drivers read its specs from their native thread.
    """
    for arg in args + tuple(kwargs.values()):
        if isinstance(arg, (objects.Group, objects.GroupSnapshot)):
            arg.group_type  # noqa: B018 (loads and keeps it)
    try:
        return common.call_driver(method, *args, **kwargs)
    except NotImplementedError:
        if not is_legacy_cg(group):
            raise
    legacy_method, legacy_kwargs = legacy
    return common.call_driver(legacy_method, *args, **legacy_kwargs)


class CreateGroupOnBackend(common.VolumeTask):
    """The driver's ``create_group``; revert deletes the empty group again."""

    checkpoint = True
    default_provides = 'group_update'

    def execute(self, context, driver, group):
        try:
            update = group_call(
                group, driver.create_group,
                (driver.create_consistencygroup, {}), context, group)
        except NotImplementedError:
            return {}  # a group is a record here
        if failed(update):
            raise exception.GroupFailed(group_id=group.id,
                                        reason='the driver reported error')
        return without_status(update)

    def revert(self, context, driver, group, result=None, **kwargs):
        try:
            common.call_driver(driver.delete_group, context, group, [])
        except NotImplementedError:
            pass
        except Exception:
            LOG.exception('Could not remove group %s from the backend while '
                          'reverting its create', group.id)


def build_create():
    return common.operation_flow('create_group', CreateGroupOnBackend(),
                                 updates=('group_update',))


apply_member_updates = members_flows.apply_member_updates
without_status = members_flows.without_status
failed = members_flows.failed


class UpdateGroupOnBackend(common.VolumeTask):
    """The driver's ``update_group`` with the volumes to add and remove."""

    idempotent = True
    default_provides = 'group_update'

    def execute(self, context, driver, group, add, remove):
        try:
            update, added, removed = group_call(
                group, driver.update_group,
                (driver.update_consistencygroup,
                 {'add_volumes': add, 'remove_volumes': remove}),
                context, group, add_volumes=add,
                remove_volumes=remove) or (None, None, None)
        except NotImplementedError:
            update = added = removed = None
        if failed(update):
            raise exception.GroupFailed(group_id=group.id,
                                        reason='the driver reported error')
        apply_member_updates(add, added)
        apply_member_updates(remove, removed)
        return without_status(update)


class SetMembership(common.VolumeTask):
    """Record which volumes are the group's."""

    idempotent = True

    def execute(self, group, add, remove):
        for volume in add:
            volume.group_id = group.id
            volume.save()
        for volume in remove:
            volume.group_id = None
            volume.save()


def build_update():
    return common.operation_flow('update_group', UpdateGroupOnBackend(),
                                 SetMembership(), updates=('group_update',))


def _in_migration(volume):
    status = volume.migration_status or ''
    return (status in MigrationStatus.IN_PROGRESS or
            status.startswith(MigrationStatus.TARGET_PREFIX))


def check_update(op):
    """Volumes join from this backend (checked as they are loaded), from no
    other group, of one of the group's volume types (when it names any), and
    not while a migration moves them or is their copy."""
    group = op.subject
    allowed_types = set(group.volume_type_ids or ())
    for volume in op.resources['add']:
        if volume.group_id not in (None, group.id):
            raise exception.InvalidInput(
                reason='volume %s is in group %s' % (volume.id,
                                                     volume.group_id))
        if allowed_types and volume.volume_type_id not in allowed_types:
            raise exception.InvalidInput(
                reason='volume %s is of type %s, which group %s does not '
                       'take (its types: %s)' % (
                           volume.id, volume.volume_type_id, group.id,
                           ', '.join(sorted(allowed_types))))
        if _in_migration(volume):
            raise exception.InvalidInput(
                reason='volume %s is in a migration (%s)'
                % (volume.id, volume.migration_status))
    for volume in op.resources['remove']:
        if volume.group_id != group.id:
            raise exception.InvalidInput(
                reason='volume %s is not in group %s' % (volume.id,
                                                         group.id))
    overlap = ({v.id for v in op.resources['add']} &
               {v.id for v in op.resources['remove']})
    if overlap:
        raise exception.InvalidInput(reason='volumes both added and removed: '
                                     '%s' % ', '.join(sorted(overlap)))


class DeleteGroupOnBackend(common.VolumeTask):
    """The driver's ``delete_group`` with the live members (journaled).

    Cannot be undone. When it raises, every member it was given is left
    in ``error`` (the contract: a driver exception fails them all).
    """

    checkpoint = True
    default_provides = 'group_call'

    def execute(self, context, driver, group, members):
        live = [m for m in members if not m.deleted]
        try:
            update, updates = group_call(
                group, driver.delete_group,
                (driver.delete_consistencygroup, {}), context, group,
                live) or (None, None)
        except NotImplementedError:
            return members_flows.GENERIC
        return members_flows.group_result(update, updates)

    def revert(self, members, result=None, **kwargs):
        if not isinstance(result, tf_failure.Failure):
            return  # the members got their outcomes
        for member in members:
            if member.deleted or member.status in FAILED:
                continue
            member.status = VolumeStatus.ERROR
            member.save()


class DeleteMember(members_flows.MemberTask):
    """One member volume's export and data removed (deleting an absent one
    succeeds). Cannot be undone."""

    ok_status = 'deleted'
    failed_status = VolumeStatus.ERROR_DELETING

    def act(self, context, driver, member, op):
        common.call_driver(driver.remove_export, context, member)
        common.call_driver(driver.delete_volume, member)


def build_delete(op):
    return common.operation_flow('delete_group', members_flows.member_flow(
        'delete_group', DeleteGroupOnBackend(), DeleteMember,
        [m.id for m in op.resources['members']], 'members',
        provides='group_update', ok_status='deleted',
        reason='the driver could not delete every volume'),
        updates=('group_update',))


def check_delete(op):
    group = op.subject
    locked = sorted(m.id for m in op.resources['members'])
    if not op.resumed and locked != db.group_member_ids(group.id):
        raise exception.InvalidInput(
            reason='the volumes of group %s changed; ask again' % group.id)
    if locked and not op.store.get('delete_volumes'):
        raise exception.ResourceInUse(
            resource='group', resource_id=group.id,
            reason='it has %d volume(s); delete them with it or remove '
                   'them first' % len(locked))
    snapshots = objects.Snapshot.get_all(filters={'volume_id': locked}) \
        if locked and not op.resumed else []
    if snapshots:
        raise exception.ResourceInUse(
            resource='group', resource_id=group.id,
            reason='its volumes have %d snapshot(s); delete them (or their '
                   'group snapshots) first' % len(snapshots))


CREATE = runner.FlowFamily(
    'create_group', build_create, subject=runner.Role('group', new=True),
    event='group.create', on_resume=runner.RESUME)

UPDATE = runner.FlowFamily(
    'update_group', build_update, subject=runner.Role('group'),
    held=(runner.Role('volume', name='add', many=True),
          runner.Role('volume', name='remove', many=True)),
    event='group.update', check=check_update, on_resume=runner.RESUME)

DELETE = runner.FlowFamily(
    'delete_group', build_delete, subject=runner.Role('group'),
    held=(runner.Role('volume', name='members', many=True),),
    event='group.delete', check=check_delete, on_resume=runner.RESUME,
    shaped=True, workers=members_flows.parallelism)
