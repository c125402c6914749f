"""Migrate a volume to another backend: by its driver, or by copying its data.

``migrate_volume`` runs on the source backend's worker. Unless
``force_host_copy``, the driver's ``migrate_volume(ctxt, volume, host)``
moves it (an in-use volume can only move so). Otherwise, the generic
migration, each step on the shared database and the destination's worker:

- ``CreateDestination``: the destination's worker creates the copy (its id
  chosen before the flow starts and journaled with the request; marked
  ``migration_status = target:<volume id>``);
- ``CopyData``: the copy exported to this host by its worker, the volume by
  this driver, both attached here through os-brick, the bytes copied
  between the driver's ``before_volume_copy`` / ``after_volume_copy``;
- ``CompleteMigration``: the destination's ``migrate_volume_completion``
  (its driver's ``update_migrated_volume``, then the swap of the two rows'
  identities in one transaction): the volume keeps its id and now lives on
  the destination, the copy's row names the old data here;
- ``DeleteSourceCopy``: the old data deleted here with that row.

The volume is ``maintenance`` meanwhile (``retyping`` in a retype) and its
``migration_status`` goes ``starting`` -> ``migrating`` -> ``completing``
-> ``success``; a failure before the swap reverts every step (the copy is
deleted on the destination) and leaves the volume where it was, untouched,
``migration_status = error``. The swap is the point of no return: after
it every run deletes the old data. Resume rule: resume, late (once every
backend of the process serves RPC: a migration needs its destination's
worker, which may be in the same process).
"""

import uuid

from oslo_log import log as logging

from drivers import generic
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner
from volume_worker import objects
from volume_worker.objects import MigrationStatus
from volume_worker.objects import VolumeStatus
from volume_worker import progress

LOG = logging.getLogger(__name__)

GiB = 1 << 30

# Fields that say where and as what a volume's data lives: the volume and
# its copy trade them when a migration completes.
IDENTITY_FIELDS = ('host', 'cluster_name', 'provider_location',
                   'provider_auth', 'provider_id', '_name_id',
                   'volume_type_id')


def _backend_of(host):
    return (host or '').partition('#')[0]


def _swapped(volume_id, dest_backend):
    """True once the volume's row names the destination (the swap is done)."""
    return _backend_of(objects.Volume.get_by_id(volume_id).host) == \
        _backend_of(dest_backend)


def _generic(migrate_needed, driver_moved):
    return bool(migrate_needed) and not driver_moved


def _set_migration_status(volume, status):
    volume.migration_status = status
    volume.save()


class TrackMigration(common.VolumeTask):
    """Nothing to do; revert: a migration that had started ends in ``error``.

    Begin's revert, which runs next, saves it with the volume's status.
    """

    idempotent = True

    def execute(self):
        pass

    def revert(self, volume, **kwargs):
        if volume.migration_status in MigrationStatus.IN_PROGRESS:
            volume.migration_status = MigrationStatus.ERROR


class DriverMigration(common.VolumeTask):
    """The driver's own ``migrate_volume``; its result is journaled.

    Returns the model update (with the new ``host``) when the driver moved
    the volume, None when it did not (or was not asked: host copy forced,
    or a retype, which Cinder also migrates generically).
    """

    checkpoint = True
    default_provides = 'driver_moved'

    def execute(self, context, driver, peers, volume, migrate_needed,
                dest_backend, force_host_copy, new_type_id, prior_status):
        if not migrate_needed:
            return None
        if not (force_host_copy or new_type_id):
            _set_migration_status(volume, MigrationStatus.MIGRATING)
            capabilities = peers.capabilities(context, dest_backend)
            host = {'host': destination_host(dest_backend, capabilities),
                    'capabilities': capabilities}
            moved, update = common.call_driver(driver.migrate_volume, context,
                                               volume, host)
            if moved:
                update = dict(update or {})
                update['host'] = host['host']
                return update
        if prior_status == VolumeStatus.IN_USE:
            raise exception.MigrationFailed(
                volume_id=volume.id, reason='it is in-use, and only its '
                'driver can move an attached volume (it did not)')
        return None


class CreateDestination(common.VolumeTask):
    """The destination's worker creates the copy; revert deletes it there."""

    checkpoint = True
    default_provides = 'copy_created'

    def execute(self, context, peers, volume, migrate_needed, driver_moved,
                dest_backend, new_volume_id, new_type_id):
        if not _generic(migrate_needed, driver_moved):
            return None
        _set_migration_status(volume, MigrationStatus.MIGRATING)
        copy = objects.Volume(
            id=new_volume_id, size=volume.size, host=dest_backend,
            display_name=volume.display_name,
            display_description='migration target of %s' % volume.id,
            volume_type_id=new_type_id or volume.volume_type_id,
            availability_zone=volume.availability_zone,
            project_id=volume.project_id, user_id=volume.user_id,
            multiattach=volume.multiattach, bootable=volume.bootable,
            metadata={},
            migration_status=MigrationStatus.target_of(volume.id))
        peers.create_volume(context, dest_backend, copy, volume.id)
        return True

    def revert(self, context, peers, volume, migrate_needed, dest_backend,
               new_volume_id, result=None, **kwargs):
        if not migrate_needed:
            return
        try:
            copy = objects.Volume.get_by_id(new_volume_id, read_deleted=True)
        except exception.VolumeNotFound:
            return  # never created
        if copy.deleted or _backend_of(copy.host) != _backend_of(
                dest_backend):
            return  # gone, or the swap made it the old data's row
        try:
            peers.delete_volume(context, dest_backend, new_volume_id)
        except Exception:
            LOG.exception('Could not delete the migration copy %s of volume '
                          '%s on %s', new_volume_id, volume.id, dest_backend)


class CopyData(common.VolumeTask):
    """Attach the volume and its copy here, copy every byte, detach.

    The copy goes under the driver's throttle (``volume_copy_bps_limit``)
    and publishes ``<event>.progress`` (``volume.migrate.progress``, or
    ``volume.retype.progress``) with its percent.

    Copying again gives the same copy: a resumed run does. No revert of its
    own: the copy is deleted by CreateDestination's.
    """

    idempotent = True

    def execute(self, context, driver, peers, notifier, op, volume,
                migrate_needed, driver_moved, dest_backend, new_volume_id):
        if not _generic(migrate_needed, driver_moved) or _swapped(
                volume.id, dest_backend):
            return
        copy = objects.Volume.get_by_id(new_volume_id)
        # Not in the native pool: os-brick's in-process privileged calls
        # take locks that are green under eventlet.
        connector = driver._local_connector()
        common.call_driver(driver.before_volume_copy, context, volume, copy,
                           remote='dest')
        info = peers.connect(context, dest_backend, new_volume_id, connector)
        try:
            with progress.ProgressReporter(
                    notifier, op.family.event,
                    volume.notification_payload(),
                    volume.size * GiB) as reporter:
                common.call_driver(generic.copy_volume_to, driver, context,
                                   volume, info, connector, reporter.advance)
        finally:
            try:
                peers.disconnect(context, dest_backend, new_volume_id,
                                 connector)
            except Exception:
                LOG.exception('Could not disconnect the migration copy %s',
                              new_volume_id)
        common.call_driver(driver.after_volume_copy, context, volume, copy,
                           remote='dest')


class CompleteMigration(common.VolumeTask):
    """The destination makes its copy the volume: the point of no return.

    Done already (a resumed run, or a reply lost while the destination
    finished) is read from the volume's row.
    """

    idempotent = True

    def execute(self, context, peers, volume, migrate_needed, driver_moved,
                dest_backend, new_volume_id, prior_status):
        if not _generic(migrate_needed, driver_moved):
            return
        if not _swapped(volume.id, dest_backend):
            _set_migration_status(volume, MigrationStatus.COMPLETING)
            try:
                peers.complete_migration(context, dest_backend, volume.id,
                                         new_volume_id, prior_status)
            except Exception:
                if not _swapped(volume.id, dest_backend):
                    raise
        volume.refresh()  # where it lives now, under what name


class DeleteSourceCopy(common.VolumeTask):
    """Delete the old data here, with the row that names it since the swap.

    Never fails the migration, which is done: a delete the backend refuses
    leaves that row ``error_deleting`` for an operator (and says so).
    """

    idempotent = True

    def execute(self, context, driver, op, migrate_needed, driver_moved,
                new_volume_id):
        if not _generic(migrate_needed, driver_moved):
            return
        try:
            old = objects.Volume.get_by_id(new_volume_id, read_deleted=True)
        except exception.VolumeNotFound:
            return
        if old.deleted:
            return
        if old.owner() != op.backend:
            LOG.error('Migration copy %s is on %s, not here: not deleted',
                      old.id, old.host)
            return
        try:
            if old.provider_location:
                common.call_driver(driver.remove_export, context, old)
            common.call_driver(driver.delete_volume, old)
            old.destroy()
        except Exception as exc:
            LOG.error('The old data of migrated volume %s (row %s) could not '
                      'be deleted: %s; left error_deleting',
                      op.subject.id, old.id, exc)
            old.status = VolumeStatus.ERROR_DELETING
            old.save()


class MarkMigrated(common.VolumeTask):
    """``migration_status = success``, saved by Finish with the status."""

    idempotent = True

    def execute(self, volume, migrate_needed):
        if migrate_needed:
            volume.migration_status = MigrationStatus.SUCCESS


def migration_tasks():
    """The steps of a migration, each a no-op when none is needed."""
    return (DriverMigration(), CreateDestination(), CopyData(),
            CompleteMigration(), DeleteSourceCopy(), MarkMigrated())


def build():
    return common.operation_flow('migrate_volume', TrackMigration(),
                                 *migration_tasks(), updates=('driver_moved',))


def destination_host(dest_backend, capabilities):
    """``host@backend#pool``: the pool named, or the destination's first."""
    if '#' in dest_backend:
        return dest_backend
    pools = capabilities.get('pools') or []
    pool = (pools[0].get('pool_name') if pools else None) or \
        capabilities.get('volume_backend_name') or 'default'
    return '%s#%s' % (dest_backend, pool)


def check_destination(op, dest_backend):
    """A known backend other than this one; refused before anything changes."""
    volume = op.subject
    dest = _backend_of(dest_backend)
    host, _, backend = dest.partition('@')
    if not host or not backend:
        raise exception.InvalidInput(
            reason='dest_backend must be host@backend[#pool], not %r'
            % dest_backend[:64])
    if dest == op.backend:
        raise exception.InvalidInput(
            reason='volume %s is on %s already' % (volume.id, dest))
    if not any(s.host == dest for s in objects.Service.get_all()):
        raise exception.InvalidInput(
            reason='no backend %s is known (volume-worker-manage service '
                   'list)' % dest)
    if db.volume_dependents(volume.id)[1]:
        raise exception.InvalidVolume(
            reason='volume %s has snapshots; they cannot move with it'
            % volume.id)
    if volume.group_id:
        raise exception.InvalidVolume(
            reason='volume %s is in group %s' % (volume.id, volume.group_id))


def plan(op, migrate_needed, dest_backend=None, new_type_id=None,
         force_host_copy=False):
    """What the migration steps read from the request (journaled with it).

    The copy's id is chosen here, once: a resumed run finds the same copy.
    ``migrate_needed`` None: a task of the flow decides (a retype).
    """
    if migrate_needed is not None:
        op.store.setdefault('migrate_needed', migrate_needed)
    for key, value in (('dest_backend', dest_backend),
                       ('new_type_id', new_type_id),
                       ('force_host_copy', force_host_copy),
                       ('new_volume_id', str(uuid.uuid4()))):
        op.store.setdefault(key, value)


def check(op):
    plan(op, True)
    check_destination(op, op.store['dest_backend'])
    volume = op.subject
    if op.store['force_host_copy'] and volume.status == VolumeStatus.IN_USE:
        raise exception.InvalidVolume(
            reason='volume %s is in-use: only its driver can move it, and '
                   'force_host_copy excludes the driver' % volume.id)
    # Saved by Begin, with the status and the journal row.
    volume.migration_status = MigrationStatus.STARTING


FAMILY = runner.FlowFamily(
    'migrate_volume', build, subject=runner.Role('volume'),
    event='volume.migrate', check=check, on_resume=runner.RESUME,
    resume_late=True)


# -- on the destination ----------------------------------------------------------

class SwapIdentities(common.VolumeTask):
    """The driver's ``update_migrated_volume``, then the two rows trade places.

    The volume (its id kept) takes the copy's host, names and type, with
    the driver's update applied (a key present is taken, ``_name_id = None``
    meaning the backend object now carries the volume's own id); the copy's
    row takes the volume's old ones and ``deleting``, for the source to
    delete. One transaction; done already is read from the volume's row.
    """

    idempotent = True

    def execute(self, context, driver, new_volume, volume_id,
                original_status, op):
        volume = objects.Volume.get_by_id(volume_id)
        if volume.owner() == op.backend:
            return
        update = common.call_driver(driver.update_migrated_volume, context,
                                    volume, new_volume, original_status) or {}
        moved = {name: getattr(new_volume, name) for name in IDENTITY_FIELDS}
        moved['_name_id'] = new_volume.name_id
        for name in ('_name_id', 'provider_location'):
            if name in update:
                moved[name] = update[name]
        old = {name: getattr(volume, name) for name in IDENTITY_FIELDS}
        old['_name_id'] = volume.name_id
        old.update(status=VolumeStatus.DELETING, migration_status=None)
        if not db.volume_swap_identities(volume.id, volume.host, moved,
                                         new_volume.id, old):
            raise exception.InvalidStatus(
                resource='volume', resource_id=volume.id,
                status='changed by another worker',
                operation=op.family.operation, expected=volume.host)


def check_completion(op):
    new_volume, volume_id = op.subject, op.store['volume_id']
    if new_volume.migration_status != MigrationStatus.target_of(volume_id):
        raise exception.InvalidInput(
            reason='volume %s is no migration copy of %s'
            % (new_volume.id, volume_id))
    volume = objects.Volume.get_by_id(volume_id)
    if volume.migration_status != MigrationStatus.COMPLETING:
        raise exception.InvalidStatus(
            resource='volume', resource_id=volume_id,
            status='migration %s' % volume.migration_status,
            operation=op.family.operation,
            expected=MigrationStatus.COMPLETING)


COMPLETION = runner.FlowFamily(
    'migrate_volume_completion',
    lambda: common.operation_flow('migrate_volume_completion',
                                  SwapIdentities()),
    subject=runner.Role('volume', name='new_volume'),
    event='volume.migrate_completion', check=check_completion,
    on_resume=runner.RESUME)
