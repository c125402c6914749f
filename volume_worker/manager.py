"""The RPC endpoint of one backend: validate the request, then lock, load and run.

Each operation is a few lines: check the arguments, name the family and the
resources (``operations.acquire`` does the rest). No storage logic lives
here; flows orchestrate, drivers store. Only methods marked
``validation.endpoint`` can be called over the wire.
"""

import uuid

import oslo_messaging as messaging
from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker.endpoints import backups as backup_endpoints
from volume_worker.endpoints import service as service_endpoints
from volume_worker.endpoints import migration as migration_endpoints
from volume_worker import exception
from volume_worker.flows import attachment as attachment_flows
from volume_worker.flows import clone
from volume_worker.flows import connection as connection_flows
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.db import api as db
from volume_worker.endpoints import images
from volume_worker.flows import extend
from volume_worker.flows import group as group_flows
from volume_worker.flows import group_from_src as group_from_src_flows
from volume_worker.flows import group_snapshot as group_snapshot_flows
from volume_worker.flows import image as image_flows
from volume_worker.flows import manage
from volume_worker.flows import reschedule
from volume_worker.flows import revert
from volume_worker.flows import snapshot as snapshot_flows
from volume_worker import objects
from volume_worker import operations
from volume_worker import rpcapi
from volume_worker import validation
from volume_worker.endpoints import replication as replication_endpoints

LOG = logging.getLogger(__name__)

VOLUME_FILTERS = ('status', 'display_name', 'volume_type_id', 'id')
SNAPSHOT_FILTERS = ('status', 'volume_id', 'display_name', 'id')
GROUP_FILTERS = ('status', 'name', 'group_type_id', 'id')


class VolumeManager(replication_endpoints.ReplicationEndpoints,
                    backup_endpoints.BackupEndpoints,
                    images.ImageEndpoints,
                    service_endpoints.ServiceEndpoints,
                    migration_endpoints.MigrationEndpoints):
    target = messaging.Target(version=rpcapi.RPC_API_VERSION)

    def __init__(self, conf, backend, driver, runner, coordinator, notifier,
                 reporter, member=None):
        self.conf = conf
        # host@backend, or cluster@backend: the name resources carry.
        self.backend = backend
        # This worker's own host@backend (its service row and queue).
        self.member = member or backend
        self.driver = driver
        self.reporter = reporter
        self.operations = operations.Operations(
            backend, driver, coordinator, runner, notifier, reporter,
            member=self.member)
        self.default_pool = None

    # -- volumes -----------------------------------------------------------

    @validation.endpoint
    def create_volume(self, context, volume, request_spec=None,
                      filter_properties=None):
        store = reschedule.request_store(request_spec, filter_properties)
        validation.check_object(volume, objects.Volume, 'volume')
        validation.check_uuid(volume.id, 'volume id')
        validation.check_size(volume.size, self.conf.max_volume_size_gb)
        validation.check_names(volume)
        if volume.obj_attr_is_set('metadata'):
            validation.check_metadata(volume.metadata,
                                      self.conf.max_metadata_bytes)
        volume.host = self._place(volume)
        volume.obj_fill_unset()
        family = self._create_family(volume)
        with self.operations.acquire(family, context, volume=volume,
                                     store=store) as op:
            op.run()

    @staticmethod
    def _create_family(volume):
        """An empty volume, or a copy of a snapshot or of another volume."""
        if sum(1 for source in (volume.snapshot_id, volume.source_volid,
                                volume.image_id) if source) > 1:
            raise exception.InvalidInput(
                reason='a volume comes from one snapshot, volume or image')
        if volume.image_id:
            validation.check_uuid(volume.image_id, 'image_id')
            return image_flows.FROM_IMAGE
        if volume.snapshot_id:
            validation.check_uuid(volume.snapshot_id, 'snapshot_id')
            return clone.FROM_SNAPSHOT
        if volume.source_volid:
            validation.check_uuid(volume.source_volid, 'source_volid')
            return clone.FROM_VOLUME
        return create_volume.FAMILY

    def _place(self, volume):
        host = volume.host if volume.obj_attr_is_set('host') else None
        if host:
            backend, _sep, pool = host.partition('#')
            if backend not in (self.backend, self.member):
                raise exception.InvalidInput(
                    reason='volume host %s is not this backend (%s)'
                    % (host, self.backend))
            if pool:  # (a member's name stands for its cluster's)
                return '%s#%s' % (self.backend, pool)
        return '%s#%s' % (self.backend, self.default_pool or 'default')

    @validation.endpoint
    def delete_volume(self, context, volume_id, unmanage_only=False):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_bool(unmanage_only, 'unmanage_only')
        with self.operations.acquire(
                delete_volume.FAMILY, context, volume=volume_id,
                store={'unmanage_only': unmanage_only}) as op:
            op.run()

    @validation.endpoint
    def extend_volume(self, context, volume_id, new_size):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_size(new_size, self.conf.max_volume_size_gb)
        with self.operations.acquire(extend.FAMILY, context, volume=volume_id,
                                     store={'new_size': new_size}) as op:
            op.run()

    @validation.endpoint
    def revert_to_snapshot(self, context, volume_id, snapshot_id):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_uuid(snapshot_id, 'snapshot_id')
        with self.operations.acquire(revert.FAMILY, context, volume=volume_id,
                                     snapshot=snapshot_id) as op:
            op.run()

    @validation.endpoint(read_only=True)
    def get_volume(self, context, volume_id):
        return self._get(objects.Volume, volume_id, 'volume_id')

    @validation.endpoint(read_only=True)
    def list_volumes(self, context, filters=None, marker=None, limit=None):
        return self._list(objects.Volume, VOLUME_FILTERS, filters, marker,
                          limit)

    # -- snapshots -----------------------------------------------------------

    @validation.endpoint
    def create_snapshot(self, context, snapshot, force=False):
        validation.check_object(snapshot, objects.Snapshot, 'snapshot')
        validation.check_uuid(snapshot.id, 'snapshot id')
        validation.check_uuid(snapshot.volume_id, 'volume_id')
        validation.check_bool(force, 'force')
        validation.check_names(snapshot)
        if snapshot.obj_attr_is_set('metadata'):
            validation.check_metadata(snapshot.metadata,
                                      self.conf.max_metadata_bytes)
        snapshot.obj_fill_unset()
        with self.operations.acquire(snapshot_flows.CREATE, context,
                                     force=force, snapshot=snapshot) as op:
            op.run()

    @validation.endpoint
    def delete_snapshot(self, context, snapshot_id, unmanage_only=False):
        validation.check_uuid(snapshot_id, 'snapshot_id')
        validation.check_bool(unmanage_only, 'unmanage_only')
        with self.operations.acquire(
                snapshot_flows.DELETE, context, snapshot=snapshot_id,
                store={'unmanage_only': unmanage_only}) as op:
            op.run()

    @validation.endpoint(read_only=True)
    def get_snapshot(self, context, snapshot_id):
        return self._get(objects.Snapshot, snapshot_id, 'snapshot_id')

    @validation.endpoint(read_only=True)
    def list_snapshots(self, context, filters=None, marker=None, limit=None):
        return self._list(objects.Snapshot, SNAPSHOT_FILTERS, filters, marker,
                          limit)

    # -- manage, unmanage, transfer ------------------------------------------

    @validation.endpoint
    def manage_existing(self, context, volume, existing_ref):
        validation.check_object(volume, objects.Volume, 'volume')
        validation.check_uuid(volume.id, 'volume id')
        validation.check_names(volume)
        validation.check_reference(existing_ref)
        if not volume.obj_attr_is_set('size'):
            volume.size = 0  # the backend object's, once measured
        volume.host = self._place(volume)
        volume.obj_fill_unset()
        with self.operations.acquire(
                manage.VOLUME, context, volume=volume,
                store={'existing_ref': existing_ref}) as op:
            op.run()

    @validation.endpoint
    def manage_existing_snapshot(self, context, snapshot, existing_ref):
        validation.check_object(snapshot, objects.Snapshot, 'snapshot')
        validation.check_uuid(snapshot.id, 'snapshot id')
        validation.check_uuid(snapshot.volume_id, 'volume_id')
        validation.check_names(snapshot)
        validation.check_reference(existing_ref)
        if not snapshot.obj_attr_is_set('volume_size'):
            snapshot.volume_size = 0  # the backend object's, once measured
        snapshot.obj_fill_unset()
        with self.operations.acquire(
                manage.SNAPSHOT, context, snapshot=snapshot,
                store={'existing_ref': existing_ref}) as op:
            op.run()

    @validation.endpoint(read_only=True)
    def get_manageable_volumes(self, context, marker=None, limit=None,
                               offset=0, sort_keys=None, sort_dirs=None):
        return self._manageable(self.driver.get_manageable_volumes,
                                objects.Volume, marker, limit, offset,
                                sort_keys, sort_dirs)

    @validation.endpoint(read_only=True)
    def get_manageable_snapshots(self, context, marker=None, limit=None,
                                 offset=0, sort_keys=None, sort_dirs=None):
        return self._manageable(self.driver.get_manageable_snapshots,
                                objects.Snapshot, marker, limit, offset,
                                sort_keys, sort_dirs)

    def _manageable(self, listing, cls, marker, limit, offset, sort_keys,
                    sort_dirs):
        if marker is not None:
            validation.check_text(marker, 'marker', 255)
        limit = validation.check_limit(limit)
        sort_keys, sort_dirs = validation.check_sort(sort_keys, sort_dirs,
                                                     ('identifier', 'size'))
        if isinstance(offset, bool) or not isinstance(offset, int) or \
                offset < 0:
            raise exception.InvalidInput(reason='offset must be an integer '
                                         '>= 0')
        if not self.driver.initialized:
            raise exception.DriverNotInitialized(
                backend=self.backend, reason='set-up has not succeeded')
        managed = cls.get_all(filters={'backend': self.backend},
                              limit=validation.MAX_MANAGED_LIST)
        return concurrency.run_blocking(listing, managed, marker, limit,
                                        offset, sort_keys, sort_dirs)

    @validation.endpoint
    def accept_transfer(self, context, volume_id, new_user, new_project,
                        no_snapshots=False):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_text(new_user, 'new_user', 255)
        validation.check_text(new_project, 'new_project', 255)
        validation.check_bool(no_snapshots, 'no_snapshots')
        with self.operations.acquire(
                manage.TRANSFER, context, volume=volume_id,
                store={'new_user': new_user, 'new_project': new_project,
                       'no_snapshots': no_snapshots}) as op:
            op.run()
            return op.subject

    # -- groups -----------------------------------------------------------------

    @validation.endpoint
    def create_group(self, context, group):
        validation.check_object(group, objects.Group, 'group')
        validation.check_uuid(group.id, 'group id')
        if group.obj_attr_is_set('group_type_id') and group.group_type_id:
            validation.check_uuid(group.group_type_id, 'group_type_id')
            objects.GroupType.get_by_id(group.group_type_id)
        group.host = self.backend
        group.obj_fill_unset()
        with self.operations.acquire(group_flows.CREATE, context,
                                     group=group) as op:
            op.run()

    @validation.endpoint
    def update_group(self, context, group_id, add_volumes=None,
                     remove_volumes=None):
        validation.check_uuid(group_id, 'group_id')
        add = validation.check_uuid_list(add_volumes, 'add_volumes')
        remove = validation.check_uuid_list(remove_volumes, 'remove_volumes')
        with self.operations.acquire(group_flows.UPDATE, context,
                                     group=group_id, add=add,
                                     remove=remove) as op:
            op.run()

    @validation.endpoint
    def delete_group(self, context, group_id, delete_volumes=False):
        validation.check_uuid(group_id, 'group_id')
        validation.check_bool(delete_volumes, 'delete_volumes')
        with self.operations.acquire(
                group_flows.DELETE, context, group=group_id,
                members=db.group_member_ids(group_id),
                store={'delete_volumes': delete_volumes}) as op:
            op.run()

    @validation.endpoint
    def create_group_from_src(self, context, group, group_snapshot_id=None,
                              source_group_id=None):
        validation.check_object(group, objects.Group, 'group')
        validation.check_uuid(group.id, 'group id')
        if bool(group_snapshot_id) == bool(source_group_id):
            raise exception.InvalidInput(reason='give a group_snapshot_id or '
                                         'a source_group_id')
        group.obj_fill_unset()
        if group_snapshot_id:
            validation.check_uuid(group_snapshot_id, 'group_snapshot_id')
            group.group_snapshot_id = group_snapshot_id
            family = group_from_src_flows.FROM_GROUP_SNAPSHOT
            sources = group_snapshot_flows.member_ids(group_snapshot_id)
        else:
            validation.check_uuid(source_group_id, 'source_group_id')
            group.source_group_id = source_group_id
            family = group_from_src_flows.FROM_GROUP
            sources = db.group_member_ids(source_group_id)
        with self.operations.acquire(family, context, group=group,
                                     sources=sources) as op:
            op.run()

    @validation.endpoint
    def create_group_snapshot(self, context, group_snapshot):
        validation.check_object(group_snapshot, objects.GroupSnapshot,
                                'group_snapshot')
        validation.check_uuid(group_snapshot.id, 'group snapshot id')
        validation.check_uuid(group_snapshot.group_id, 'group_id')
        group_snapshot.obj_fill_unset()
        with self.operations.acquire(
                group_snapshot_flows.CREATE, context,
                group_snapshot=group_snapshot,
                members=db.group_member_ids(group_snapshot.group_id)) as op:
            op.run()

    @validation.endpoint
    def delete_group_snapshot(self, context, group_snapshot_id):
        validation.check_uuid(group_snapshot_id, 'group_snapshot_id')
        with self.operations.acquire(
                group_snapshot_flows.DELETE, context,
                group_snapshot=group_snapshot_id,
                members=group_snapshot_flows.member_ids(
                    group_snapshot_id)) as op:
            op.run()

    @validation.endpoint(read_only=True)
    def get_group_snapshot(self, context, group_snapshot_id):
        return self._get(objects.GroupSnapshot, group_snapshot_id,
                         'group_snapshot_id')

    @validation.endpoint(read_only=True)
    def get_group(self, context, group_id):
        return self._get(objects.Group, group_id, 'group_id')

    @validation.endpoint(read_only=True)
    def list_groups(self, context, filters=None, marker=None, limit=None):
        return self._list(objects.Group, GROUP_FILTERS, filters, marker,
                          limit)

    # -- attachments ----------------------------------------------------------

    @validation.endpoint
    def attachment_update(self, context, volume_id, connector,
                          attachment_id=None, instance_uuid=None,
                          mountpoint=None, mode='rw'):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_connector(connector)
        for value, what in ((attachment_id, 'attachment_id'),
                            (instance_uuid, 'instance_uuid')):
            if value is not None:
                validation.check_uuid(value, what)
        if mountpoint is not None:
            validation.check_text(mountpoint, 'mountpoint', 255)
        attachment = objects.VolumeAttachment(
            id=attachment_id or str(uuid.uuid4()), volume_id=volume_id,
            connector=connector, instance_uuid=instance_uuid,
            mountpoint=mountpoint, attach_mode=mode)
        attachment.obj_fill_unset()
        with self.operations.acquire(attachment_flows.UPDATE, context,
                                     attachment=attachment,
                                     volume=volume_id) as op:
            op.run()
            return op.subject

    @validation.endpoint
    def attachment_complete(self, context, volume_id, attachment_id):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_uuid(attachment_id, 'attachment_id')
        with self.operations.acquire(attachment_flows.COMPLETE, context,
                                     attachment=attachment_id,
                                     volume=volume_id) as op:
            op.run()
            return op.subject

    @validation.endpoint
    def attachment_delete(self, context, volume_id, attachment_id):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_uuid(attachment_id, 'attachment_id')
        with self.operations.acquire(attachment_flows.DELETE, context,
                                     attachment=attachment_id,
                                     volume=volume_id) as op:
            op.run()

    # -- the legacy connection path, and snapshot connections -----------------

    def _connect(self, family, context, connector, **resource):
        validation.check_connector(connector)
        with self.operations.acquire(family, context,
                                     store={'connector': connector},
                                     **resource) as op:
            return (op.run() or {}).get('connection_info')

    def _disconnect(self, family, context, connector, force, **resource):
        validation.check_connector(connector)
        validation.check_bool(force, 'force')
        with self.operations.acquire(
                family, context, store={'connector': connector,
                                        'force': force}, **resource) as op:
            op.run()

    def _run_on(self, family, context, **resource):
        with self.operations.acquire(family, context, **resource) as op:
            op.run()

    @validation.endpoint
    def initialize_connection(self, context, volume_id, connector):
        validation.check_uuid(volume_id, 'volume_id')
        return self._connect(connection_flows.INITIALIZE, context, connector,
                             volume=volume_id)

    @validation.endpoint
    def terminate_connection(self, context, volume_id, connector,
                             force=False):
        validation.check_uuid(volume_id, 'volume_id')
        self._disconnect(connection_flows.TERMINATE, context, connector,
                         force, volume=volume_id)

    @validation.endpoint
    def remove_export(self, context, volume_id):
        validation.check_uuid(volume_id, 'volume_id')
        self._run_on(connection_flows.REMOVE_EXPORT, context,
                     volume=volume_id)

    @validation.endpoint
    def attach_volume(self, context, volume_id, instance_uuid=None,
                      host_name=None, mountpoint=None, mode='rw'):
        validation.check_uuid(volume_id, 'volume_id')
        if instance_uuid is not None:
            validation.check_uuid(instance_uuid, 'instance_uuid')
        for value, what in ((host_name, 'host_name'),
                            (mountpoint, 'mountpoint')):
            if value is not None:
                validation.check_text(value, what, 255)
        attachment = objects.VolumeAttachment(
            id=str(uuid.uuid4()), volume_id=volume_id,
            instance_uuid=instance_uuid, attached_host=host_name,
            mountpoint=mountpoint, attach_mode=mode)
        attachment.obj_fill_unset()
        with self.operations.acquire(connection_flows.ATTACH, context,
                                     attachment=attachment,
                                     volume=volume_id) as op:
            op.run()
            return op.subject

    @validation.endpoint
    def detach_volume(self, context, volume_id, attachment_id):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_uuid(attachment_id, 'attachment_id')
        self._run_on(connection_flows.DETACH, context,
                     attachment=attachment_id, volume=volume_id)

    @validation.endpoint
    def initialize_connection_snapshot(self, context, snapshot_id,
                                       connector):
        validation.check_uuid(snapshot_id, 'snapshot_id')
        return self._connect(connection_flows.INITIALIZE_SNAPSHOT, context,
                             connector, snapshot=snapshot_id)

    @validation.endpoint
    def terminate_connection_snapshot(self, context, snapshot_id, connector,
                                      force=False):
        validation.check_uuid(snapshot_id, 'snapshot_id')
        self._disconnect(connection_flows.TERMINATE_SNAPSHOT, context,
                         connector, force, snapshot=snapshot_id)

    @validation.endpoint
    def remove_export_snapshot(self, context, snapshot_id):
        validation.check_uuid(snapshot_id, 'snapshot_id')
        self._run_on(connection_flows.REMOVE_EXPORT_SNAPSHOT, context,
                     snapshot=snapshot_id)

    @validation.endpoint(read_only=True)
    def list_attachments(self, context, volume_id):
        self._get(objects.Volume, volume_id, 'volume_id')
        return objects.VolumeAttachment.get_all(
            filters={'volume_id': volume_id})

    # -- reads -------------------------------------------------------------------

    def _get(self, cls, resource_id, what):
        validation.check_uuid(resource_id, what)
        resource = cls.get_by_id(resource_id)
        if not self.operations.owns(resource):
            raise exception.NotOwned(
                resource=cls.obj_name(), resource_id=resource_id,
                owner=resource.host, backend=self.backend)
        return resource

    def _list(self, cls, allowed, filters, marker, limit):
        filters = validation.check_filters(filters, allowed)
        if marker is not None:
            validation.check_uuid(marker, 'marker')
        limit = validation.check_limit(limit)
        filters['backend'] = self.backend
        return cls.get_all(filters=filters, marker=marker, limit=limit)
