"""Groups: create one, add and remove its volumes, delete it (with its volumes).

The driver's group calls are used as the contract describes them, with its
per-member update lists applied to the members; a driver without them
(``NotImplementedError``) gets the generic behaviour: a group is a record
here, and its volumes are deleted one by one. The group and every member
volume are locked. Resume rule: resume (every step converges when run
again: deleting an absent volume succeeds).
"""

from oslo_log import log as logging

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

FAILED = ('error', 'error_deleting')

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
    NotImplementedError when it has neither."""
    try:
        return common.call_driver(method, *args, **kwargs)
    except NotImplementedError:
        if not is_legacy_cg(group):
            raise
    legacy_method, legacy_kwargs = legacy
    return common.call_driver(legacy_method, *args, **legacy_kwargs)


def without_status(update):
    return {k: v for k, v in (update or {}).items() if k != 'status'}


def failed(update):
    return (update or {}).get('status') in FAILED


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


def apply_member_updates(members, updates):
    """Merge the driver's per-member updates ({'id', 'status', ...})."""
    by_id = {m.id: m for m in members}
    for update in updates or ():
        member = by_id.get(update.get('id'))
        if member is None:
            LOG.warning('Driver returned an update for %s, not a member',
                        update.get('id'))
            continue
        fields = dict(update)
        fields.pop('id', None)
        status = fields.pop('status', None)
        common.merge_model_update(member, fields)
        if status == 'deleted':
            member.destroy()
            continue
        if status:
            member.status = status
        member.save()


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


def check_update(op):
    group = op.subject
    for volume in op.resources['add']:
        if volume.group_id not in (None, group.id):
            raise exception.InvalidInput(
                reason='volume %s is in group %s' % (volume.id,
                                                     volume.group_id))
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
    """The driver's ``delete_group``, or each member deleted in turn.

    Cannot be undone; a failure leaves the members the driver could not
    delete (all of them, if it raised) in ``error``.
    """

    idempotent = True
    default_provides = 'group_update'

    def execute(self, context, driver, group, members):
        live = [m for m in members if not m.deleted]
        try:
            update, updates = group_call(
                group, driver.delete_group,
                (driver.delete_consistencygroup, {}), context, group,
                live) or (None, None)
        except NotImplementedError:
            update, updates = None, self._one_by_one(context, driver, live)
        if updates is None:
            updates = [{'id': m.id, 'status': 'deleted'} for m in live]
        apply_member_updates(live, updates)
        if failed(update) or any(u.get('status') in FAILED
                                  for u in updates):
            raise exception.GroupFailed(
                group_id=group.id, reason='the driver could not delete '
                'every volume')
        return without_status(update)

    @staticmethod
    def _one_by_one(context, driver, members):
        updates = []
        for member in members:
            try:
                common.call_driver(driver.remove_export, context, member)
                common.call_driver(driver.delete_volume, member)
                updates.append({'id': member.id, 'status': 'deleted'})
            except Exception as exc:
                LOG.warning('Group member %s was not deleted: %s',
                            member.id, exc)
                updates.append({'id': member.id,
                                'status': VolumeStatus.ERROR_DELETING})
        return updates

    def revert(self, group, members, result=None, **kwargs):
        for member in members:
            if member.deleted or member.status in FAILED:
                continue
            member.status = VolumeStatus.ERROR
            member.save()


def build_delete():
    return common.operation_flow('delete_group', DeleteGroupOnBackend(),
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
    event='group.delete', check=check_delete, on_resume=runner.RESUME)
