"""Retype a volume: give it another volume type, in place when the backend can.

The driver's ``retype(ctxt, volume, new_type, diff, host)`` gets the
difference of extra specs and QoS specs between the two types; ``retyping``
-> back to its status on the new type. When the driver cannot retype in
place the request fails and the volume stays as it was, on its old type
(migrating it to satisfy the new type is not available yet). Resume rule:
resume (retyping to the type it already has changes nothing).
"""

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects


def specs_diff(old_type, new_type):
    """{'extra_specs': {key: (old, new)}, 'qos_specs': {...}, 'encryption': {}}
    for every key whose value differs, as Cinder hands it to drivers."""
    diff = {}
    for name in ('extra_specs', 'qos_specs'):
        old = (getattr(old_type, name, None) or {}) if old_type else {}
        new = (getattr(new_type, name, None) or {}) if new_type else {}
        diff[name] = {key: (old.get(key), new.get(key))
                      for key in set(old) | set(new)
                      if old.get(key) != new.get(key)}
    diff['encryption'] = {}
    return diff


class RetypeOnBackend(common.VolumeTask):
    """Ask the driver to retype in place; fail if it cannot."""

    idempotent = True
    default_provides = 'retype_update'

    def execute(self, context, driver, volume, new_type_id, migration_policy,
                op):
        new_type = objects.VolumeType.get_by_id(new_type_id)
        diff = specs_diff(volume.volume_type, new_type)
        host = {'host': volume.host, 'capabilities': {}}
        retyped, update = common.call_driver(driver.retype, context, volume,
                                             new_type, diff, host)
        if not retyped:
            raise exception.RetypeNotPossible(
                volume_id=volume.id, reason=(
                    'the driver cannot retype it in place, and migration '
                    'is not available (policy %s)' % migration_policy))
        update = dict(update or {})
        update['volume_type_id'] = new_type_id
        return update


def build():
    return common.operation_flow('retype', RetypeOnBackend(),
                                 updates=('retype_update',))


def check(op):
    volume, new_type_id = op.subject, op.store['new_type_id']
    objects.VolumeType.get_by_id(new_type_id)  # exists, or refused
    if volume.volume_type_id == new_type_id:
        raise exception.InvalidInput(
            reason='volume %s is of type %s already' % (volume.id,
                                                        new_type_id))


FAMILY = runner.FlowFamily(
    'retype', build, subject=runner.Role('volume'), event='volume.retype',
    check=check, on_resume=runner.RESUME)
