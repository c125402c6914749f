"""Tasks that move a resource the operation holds but is not about.

A backup is the subject of its operation, yet the volume it reads is
``backing-up`` meanwhile, and a restore's volume ``restoring-backup`` (or
created by the restore). The volume is locked and checked as any held
resource; its transition in the table gives ``via``, ``to`` and ``error``
as for a subject. Where it was when the request was loaded is journaled
with the request (``remember`` in the family's check), so a resumed or
reverted run knows where "back" is.
"""

from oslo_log import log as logging
from taskflow.types import failure as tf_failure

from volume_worker import exception
from volume_worker.flows import common
from volume_worker import operations
from volume_worker.objects import fields

LOG = logging.getLogger(__name__)

_KEY = 'held_prior'


def remember(op, *roles):
    """Journal the loaded status of each role (None: the resource is new)."""
    prior = op.store.setdefault(_KEY, {})
    for role in roles:
        resource = op.resources[role]
        prior[role] = (None if not resource.obj_attr_is_set('created_at')
                       or resource.created_at is None else resource.status)


def is_new(op, role):
    return op.store[_KEY][role] is None


def _transition(op, role):
    rtype = next(r.type for r in op.family.roles if r.name == role)
    return operations.RESOURCE_TYPES[rtype].transitions.of(
        op.family.operation, role)


def _resolve(op, role, status):
    return op.store[_KEY][role] if status == fields.UNCHANGED else status


class MoveHeld(common.VolumeTask):
    """Move the held resource into the operation's status (a new one is inserted).

    Revert: back where it was (``error`` of its transition), or, for a
    resource this operation inserted, its row soft-deleted.
    """

    idempotent = True

    def __init__(self, role):
        super().__init__(name='Move_' + role)
        self.role = role

    def execute(self, op):
        resource, transition = op.resources[self.role], _transition(
            op, self.role)
        if resource.obj_attr_is_set('status') and \
                resource.status == transition.via and op.resumed:
            return
        resource.status = transition.via
        if is_new(op, self.role):
            resource.create()
        elif not resource.save(expected_status=op.store[_KEY][self.role]):
            raise exception.InvalidStatus(
                resource=self.role, resource_id=resource.id,
                status='changed by another worker',
                operation=op.family.operation,
                expected=op.store[_KEY][self.role])

    def revert(self, op, result=None, **kwargs):
        if isinstance(result, tf_failure.Failure):
            return  # it moved nothing
        resource, transition = op.resources[self.role], _transition(
            op, self.role)
        if is_new(op, self.role):
            done = resource.destroy(expected_status=transition.via)
        else:
            resource.status = _resolve(op, self.role, transition.error)
            done = resource.save(expected_status=transition.via)
        if not done:
            LOG.info('%s %s was not %s while its %s reverted', self.role,
                     resource.id, transition.via, op.family.operation)


class SettleHeld(common.VolumeTask):
    """Move the held resource to the operation's success status for it."""

    idempotent = True

    def __init__(self, role):
        super().__init__(name='Settle_' + role)
        self.role = role

    def execute(self, op):
        resource, transition = op.resources[self.role], _transition(
            op, self.role)
        target = _resolve(op, self.role, transition.to)
        if resource.status == target and not resource.obj_what_changed():
            return
        resource.status = target
        if not resource.save(expected_status=[transition.via, target]):
            raise exception.InvalidStatus(
                resource=self.role, resource_id=resource.id,
                status='changed by another worker',
                operation=op.family.operation, expected=transition.via)
