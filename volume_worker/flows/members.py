"""The members of a group operation: the driver's group call, or one task per member.

A group family's flow (``member_flow``) first asks the driver for its group
call (checkpointed, so a resumed run does not call it twice). A driver
without one (``NotImplementedError``) gets the generic behaviour: one task
per member (a snapshot, a copy, a delete), in an unordered part of the flow
that the runner's parallel engine runs ``group_member_parallelism`` at a
time. Each member task is checkpointed under the member's id, so a resumed
run redoes only the members that had not finished. A member task never
fails the flow: it returns the member's outcome (``{'id', 'status', ...}``,
the contract's per-member update), and ``ApplyOutcomes`` applies the
driver's lists or the members' outcomes alike, then fails the operation if
any member failed.
"""

import copy

from oslo_log import log as logging
from taskflow.patterns import linear_flow
from taskflow.patterns import unordered_flow

from volume_worker import exception
from volume_worker.flows import common
from volume_worker import log_context

LOG = logging.getLogger(__name__)

GENERIC = 'generic'  # the group call's result when the driver has none

FAILED = ('error', 'error_deleting')


def outcome_name(member_id):
    return 'member:%s' % member_id


def group_result(update, updates):
    """A group call's result as journaled: the contract's two parts."""
    return {'update': update, 'updates': updates}


def parallelism(op):
    """The backend's ``group_member_parallelism``."""
    return op.backend_option('group_member_parallelism') or 1


class MemberTask(common.VolumeTask):
    """One member's part of a group operation the driver left to the worker.

    Subclasses implement ``act(context, driver, member, op)`` (the driver
    calls, returning a model update) and name the statuses of success and
    failure. ``members`` is rebound to the store name of the family's
    member list. Returns None when the driver did the group itself (not
    journaled: a resumed run returns None again).
    """

    checkpoint = True
    checkpoint_none = False
    ok_status = None
    failed_status = None

    def __init__(self, member_id, members='members'):
        super().__init__(name='%s:%s' % (type(self).__name__, member_id),
                         provides=outcome_name(member_id),
                         rebind={'members': members})
        self.member_id = member_id

    def execute(self, context, driver, group_call, members, op):
        if group_call != GENERIC:
            return None
        member = next(m for m in members if m.id == self.member_id)
        if getattr(member, 'deleted', False):
            return {'id': member.id, 'status': self.ok_status}
        # A context of its own: members run at once, and log lines carry
        # the member's id.
        with log_context.operation(copy.copy(context), member.id):
            try:
                update = self.act(context, driver, member, op)
            except Exception as exc:
                LOG.warning('%s of group member %s failed: %s',
                            type(self).__name__, member.id, exc)
                return {'id': member.id, 'status': self.failed_status}
        outcome = dict(update or {})
        outcome.update(id=member.id, status=self.ok_status)
        return outcome

    def act(self, context, driver, member, op):
        raise NotImplementedError()


def apply_member_updates(members, updates):
    """Merge per-member updates ({'id', 'status', ...}) into the members."""
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
        if member.deleted:
            continue
        common.merge_model_update(member, fields)
        if status == 'deleted':
            member.destroy()
            continue
        if status:
            member.status = status
        member.save()


def without_status(update):
    return {k: v for k, v in (update or {}).items() if k != 'status'}


def failed(update):
    return (update or {}).get('status') in FAILED


class ApplyOutcomes(common.VolumeTask):
    """Apply the driver's per-member lists, or the member tasks' outcomes.

    ``None`` lists mean every member succeeded (``ok_status``). Any member
    (or the group's own update) in ``error``/``error_deleting`` fails the
    operation, after every member got the status reported for it.
    Returns the group's update without its status.
    """

    idempotent = True

    def __init__(self, member_ids, members, provides, ok_status, reason):
        self.outcomes = [outcome_name(i) for i in member_ids]
        self.members_name = members
        self.ok_status = ok_status
        self.reason = reason
        super().__init__(provides=provides,
                         requires=['group_call', 'op', members] +
                         self.outcomes)

    def execute(self, group_call, op, **kwargs):
        members = kwargs[self.members_name]
        if group_call == GENERIC:
            update = None
            updates = [kwargs[n] for n in self.outcomes
                       if kwargs[n] is not None]
        else:
            update, updates = group_call['update'], group_call['updates']
        if updates is None:
            updates = [{'id': m.id, 'status': self.ok_status}
                       for m in members if not m.deleted]
        apply_member_updates(members, updates)
        if failed(update) or any(u.get('status') in FAILED
                                  for u in updates):
            raise exception.GroupFailed(
                group_id=getattr(op.subject, 'group_id', None) or
                op.subject.id, reason=self.reason)
        return without_status(update)


def member_flow(name, group_call, member_task, member_ids, members,
                provides, ok_status, reason):
    """The group call, a task per member (run at once), and their outcome."""
    flow = linear_flow.Flow(name + '-group').add(group_call)
    if member_ids:
        flow.add(unordered_flow.Flow(name + '-members').add(
            *(member_task(member_id, members=members)
              for member_id in sorted(member_ids))))
    return flow.add(ApplyOutcomes(sorted(member_ids), members, provides,
                                  ok_status, reason))
