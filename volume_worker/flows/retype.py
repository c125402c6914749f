"""Retype a volume: give it another volume type, in place or by migrating it.

The driver's ``retype(ctxt, volume, new_type, diff, host)`` gets the
difference of extra specs and QoS specs between the two types; ``retyping``
-> back to its status on the new type. When the driver cannot retype in
place and ``migration_policy`` is ``on-demand``, the volume is migrated to
``dest_backend`` as a new volume of the new type (``flows.migrate``'s
generic steps); otherwise, or when the migration fails, the request fails
and the volume stays as it was, on its old type. Resume rule: resume, late
(a migration needs its destination's worker); whether to migrate is
journaled.
"""

from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import migrate
from volume_worker.flows import runner
from volume_worker.objects import MigrationStatus
from volume_worker.objects import VolumeStatus
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
    """Ask the driver to retype in place; else decide to migrate, or fail.

    Checkpointed: a resumed run keeps the decision (the driver is not
    asked again once the volume may have moved).
    """

    checkpoint = True
    default_provides = ('retype_update', 'migrate_needed')

    def execute(self, context, driver, volume, new_type_id, migration_policy,
                dest_backend, prior_status):
        new_type = objects.VolumeType.get_by_id(new_type_id)
        diff = specs_diff(volume.volume_type, new_type)
        host = {'host': volume.host, 'capabilities': {}}
        retyped, update = common.call_driver(driver.retype, context, volume,
                                             new_type, diff, host)
        if retyped:
            update = dict(update or {})
            update['volume_type_id'] = new_type_id
            return update, False
        reason = None
        if migration_policy != 'on-demand':
            reason = 'migration policy %s' % migration_policy
        elif not dest_backend:
            reason = 'no dest_backend to migrate it to'
        elif prior_status == VolumeStatus.IN_USE:
            reason = 'it is in-use, and an attached volume is not copied'
        if reason:
            raise exception.RetypeNotPossible(
                volume_id=volume.id, reason='the driver cannot retype it in '
                'place, and it is not migrated (%s)' % reason)
        volume.migration_status = MigrationStatus.STARTING
        volume.save()
        return {'volume_type_id': new_type_id}, True


def build():
    return common.operation_flow(
        'retype', migrate.TrackMigration(), RetypeOnBackend(),
        *migrate.migration_tasks(),
        updates=('retype_update', 'driver_moved'))


def check(op):
    volume, new_type_id = op.subject, op.store['new_type_id']
    op.store.setdefault('migration_policy', 'never')
    migrate.plan(op, None, new_type_id=new_type_id)
    objects.VolumeType.get_by_id(new_type_id)  # exists, or refused
    if volume.volume_type_id == new_type_id:
        raise exception.InvalidInput(
            reason='volume %s is of type %s already' % (volume.id,
                                                        new_type_id))
    if op.store.get('dest_backend'):
        migrate.check_destination(op, op.store['dest_backend'])


FAMILY = runner.FlowFamily(
    'retype', build, subject=runner.Role('volume'), event='volume.retype',
    check=check, on_resume=runner.RESUME, resume_late=True)
