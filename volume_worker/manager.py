"""The RPC endpoint of one backend: validate, lock, run the operation's flow.

No storage logic lives here; flows orchestrate, drivers store.
"""

import contextlib
import threading

import oslo_messaging as messaging
from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker import coordination
from volume_worker import exception
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker import objects
from volume_worker.objects import VolumeStatus
from volume_worker import validation

LOG = logging.getLogger(__name__)

LIST_FILTERS = ('status', 'display_name', 'volume_type_id', 'id')
SETTLED_AFTER_CREATE = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE,
                        VolumeStatus.ATTACHING, VolumeStatus.DETACHING,
                        VolumeStatus.EXTENDING, VolumeStatus.DELETING,
                        VolumeStatus.ERROR_DELETING)


class VolumeManager:
    target = messaging.Target(version='1.0')

    def __init__(self, conf, backend, driver, runner, coordinator, notifier,
                 reporter):
        self.conf = conf
        self.backend = backend  # host@backend
        self.driver = driver
        self.runner = runner
        self.coordinator = coordinator
        self.notifier = notifier
        self.reporter = reporter
        self.default_pool = None
        self._inflight = 0
        self._inflight_cond = threading.Condition()
        self.accepting = True

    # -- plumbing --------------------------------------------------------

    def _deps(self, context):
        return {'context': context, 'driver': self.driver,
                'notifier': self.notifier}

    @contextlib.contextmanager
    def _operation(self, name, resource_id):
        """Hold the resource's lock and count the operation as in flight."""
        if not self.accepting:
            raise exception.ShuttingDown(operation=name)
        if not self.driver.initialized:
            raise exception.DriverNotInitialized(
                backend=self.backend, reason='set-up has not succeeded')
        with self._inflight_cond:
            self._inflight += 1
        try:
            with self.coordinator.lock(coordination.volume_lock_name(
                    resource_id)):
                yield
        finally:
            with self._inflight_cond:
                self._inflight -= 1
                self._inflight_cond.notify_all()
            self.reporter.mark_dirty()

    def wait_idle(self, timeout):
        """Wait until no operation is in flight; False on timeout."""
        with self._inflight_cond:
            return self._inflight_cond.wait_for(lambda: self._inflight == 0,
                                                timeout)

    def _run(self, family, resource_id, store, context, **resources):
        deps = self._deps(context)
        deps.update(resources)
        try:
            concurrency.run_isolated(self.runner.run, family, resource_id,
                                     store, deps)
        except exception.VolumeDriverException:
            raise
        except Exception as exc:
            raise exception.FlowFailed(operation=family.operation,
                                       resource_id=resource_id,
                                       reason='%s: %s' % (
                                           type(exc).__name__, exc))

    # -- volumes -----------------------------------------------------------

    @validation.endpoint
    def create_volume(self, context, volume):
        validation.check_object(volume, objects.Volume, 'volume')
        validation.check_uuid(volume.id, 'volume id')
        validation.check_size(volume.size, self.conf.max_volume_size_gb)
        if volume.obj_attr_is_set('metadata'):
            validation.check_metadata(volume.metadata,
                                      self.conf.max_metadata_bytes)
        volume.host = self._place(volume)
        volume.obj_fill_unset()
        volume.status = VolumeStatus.CREATING
        with self._operation('create_volume', volume.id):
            if self._already_created(volume):
                return
            self._run(create_volume.FAMILY, volume.id,
                      create_volume.make_store(volume), context, volume=volume)

    def _place(self, volume):
        host = volume.host if volume.obj_attr_is_set('host') else None
        if host:
            if host.partition('#')[0] != self.backend:
                raise exception.InvalidInput(
                    reason='volume host %s is not this backend (%s)'
                    % (host, self.backend))
            if '#' in host:
                return host
        return '%s#%s' % (self.backend, self.default_pool or 'default')

    def _already_created(self, volume):
        """A repeated create of a known id: harmless, never a second volume."""
        try:
            current = objects.Volume.get_by_id(volume.id, read_deleted=True)
        except exception.VolumeNotFound:
            return False
        if current.deleted:
            raise exception.InvalidVolume(
                reason='volume %s was deleted; its id cannot be reused'
                % volume.id)
        if current.size != volume.size:
            raise exception.VolumeExists(volume_id=volume.id)
        if current.status in SETTLED_AFTER_CREATE:
            LOG.info('Volume %s already exists (%s); repeated create ignored',
                     volume.id, current.status)
            return True
        return False  # creating or error: run (again), idempotently

    @validation.endpoint
    def delete_volume(self, context, volume_id):
        validation.check_uuid(volume_id, 'volume_id')
        with self._operation('delete_volume', volume_id):
            volume = objects.Volume.get_by_id(volume_id, read_deleted=True)
            if volume.deleted:
                LOG.info('Volume %s is already deleted', volume_id)
            else:
                self._check_owned(volume)
                self._run(delete_volume.FAMILY, volume_id,
                          delete_volume.make_store(volume), context,
                          volume=volume)
            # Deleted for good (ids are never reused): its lock is done too.
            self.coordinator.remove_lock_file(
                coordination.volume_lock_name(volume_id))

    def _check_owned(self, volume):
        if (volume.host or '').partition('#')[0] != self.backend:
            raise exception.InvalidVolume(
                reason='volume %s belongs to %s, not %s'
                % (volume.id, volume.host, self.backend))

    @validation.endpoint(read_only=True)
    def get_volume(self, context, volume_id):
        validation.check_uuid(volume_id, 'volume_id')
        volume = objects.Volume.get_by_id(volume_id)
        self._check_owned(volume)
        return volume

    @validation.endpoint(read_only=True)
    def list_volumes(self, context, filters=None, marker=None, limit=None):
        filters = dict(filters or {})
        unknown = set(filters) - set(LIST_FILTERS)
        if unknown:
            raise exception.InvalidInput(
                reason='unknown filters: %s (allowed: %s)'
                % (', '.join(sorted(map(str, unknown))),
                   ', '.join(LIST_FILTERS)))
        if marker is not None:
            validation.check_uuid(marker, 'marker')
        limit = validation.check_limit(limit)
        filters['backend'] = self.backend
        return objects.Volume.get_all(filters=filters, marker=marker,
                                      limit=limit)

    # -- reporting -----------------------------------------------------------

    @validation.endpoint(read_only=True)
    def get_capabilities(self, context, discover=False):
        if not isinstance(discover, bool):
            raise exception.InvalidInput(reason='discover must be a boolean')
        if discover or self.reporter.last_report is None:
            return self.reporter.build()
        return self.reporter.last_report

    @validation.endpoint
    def publish_service_capabilities(self, context):
        self.reporter.publish()

    # -- recovery --------------------------------------------------------------

    def recover(self, context):
        """Finish or revert every operation a previous process left unfinished."""
        from volume_worker import recovery
        return recovery.recover(self, context)
