"""The client API other tiers import to drive a volume worker over RabbitMQ.

Each backend listens on topic ``volume_topic`` as server ``host@backend``
(its own queue ``volume-worker.host@backend``), and, in a cluster, also as
``cluster@backend``. Casts return at once; calls wait for the reply.

Version history:

    1.0 - create_volume (cast), delete_volume (cast), get_capabilities
          (call), publish_service_capabilities (fanout cast), get_volume
          (call), list_volumes (call)
    1.1 - create_snapshot (cast), delete_snapshot (cast), get_snapshot
          (call), list_snapshots (call); Volume 1.1 objects
    1.2 - extend_volume (cast), revert_to_snapshot (cast); create_volume
          of a volume with snapshot_id or source_volid (a copy) sends 1.2
    1.3 - attachment_update (call), attachment_complete (call),
          attachment_delete (call), list_attachments (call)
    1.4 - legacy connection path: initialize_connection (call),
          terminate_connection (call), attach_volume (call), detach_volume
          (call), remove_export (cast); snapshot connections:
          initialize_connection_snapshot (call),
          terminate_connection_snapshot (call), remove_export_snapshot (cast)
    1.5 - manage_existing (cast), manage_existing_snapshot (cast),
          get_manageable_volumes (call), get_manageable_snapshots (call),
          accept_transfer (call); delete_volume with unmanage_only sends 1.5
    1.6 - retype (cast)
    1.7 - create_group (cast), update_group (cast), delete_group (cast),
          get_group (call), list_groups (call)
    1.8 - create_group_snapshot (cast), delete_group_snapshot (cast),
          get_group_snapshot (call)
    1.9 - create_group_from_src (cast)
    1.10 - failover_host (cast), freeze_host (call), thaw_host (call),
           failover_completed (fanout cast, between a cluster's workers)
    1.11 - backups: create_backup (cast), restore_backup (cast),
           delete_backup (cast), get_backup (call), list_backups (call),
           get_backup_device (call), secure_file_operations_enabled (call)
    1.12 - copy_volume_to_image (cast); create_volume of a volume with
           image_id sends 1.12
    1.13 - do_cleanup (cast), set_log_levels (cast), get_log_levels (call)
    1.14 - create_volume with request_spec and filter_properties (a
           scheduler's, for rescheduling) sends 1.14
    1.15 - migrate_volume (cast), migrate_volume_completion (call); retype
           with dest_backend (a migration allowed) sends 1.15
    1.16 - copy_volume_to_image with force (an in-use volume, read from a
           temporary copy) sends 1.16

Each method sends the version that introduced it, so an older worker
still serves what it knows. ``[upgrade_levels] volume`` caps what this
client sends during a rolling upgrade: a newer method is refused here with
``RPCVersionTooNew`` instead of failing on the worker.
"""

import oslo_messaging as messaging
from oslo_config import cfg

from volume_worker import exception
from volume_worker import rpc

RPC_API_VERSION = '1.16'


class _AttachmentsAPI:
    """The consumer's path: attach a volume, complete, detach (calls)."""

    def attachment_update(self, ctxt, backend, volume_id, connector,
                          attachment_id=None, instance_uuid=None,
                          mountpoint=None, mode='rw'):
        """Call: connect ``connector``; returns the VolumeAttachment with
        its connection info (a new attachment unless ``attachment_id``)."""
        return self._call(backend, '1.3', 'attachment_update', ctxt,
                          volume_id=volume_id, connector=connector,
                          attachment_id=attachment_id,
                          instance_uuid=instance_uuid, mountpoint=mountpoint,
                          mode=mode)

    def attachment_complete(self, ctxt, backend, volume_id, attachment_id):
        """Call: the consumer is attached; the volume is in-use."""
        return self._call(backend, '1.3', 'attachment_complete', ctxt,
                          volume_id=volume_id, attachment_id=attachment_id)

    def attachment_delete(self, ctxt, backend, volume_id, attachment_id):
        """Call: disconnect and forget the attachment."""
        return self._call(backend, '1.3', 'attachment_delete', ctxt,
                          volume_id=volume_id, attachment_id=attachment_id)

    def list_attachments(self, ctxt, backend, volume_id):
        """Call: the volume's live attachments."""
        return self._call(backend, '1.3', 'list_attachments', ctxt,
                          volume_id=volume_id)

    # Cinder's legacy path: connections without an attachment record.

    def initialize_connection(self, ctxt, backend, volume_id, connector):
        """Call: export the volume to ``connector``; its connection info."""
        return self._call(backend, '1.4', 'initialize_connection', ctxt,
                          volume_id=volume_id, connector=connector)

    def terminate_connection(self, ctxt, backend, volume_id, connector,
                             force=False):
        """Call: revoke ``connector``'s connection."""
        return self._call(backend, '1.4', 'terminate_connection', ctxt,
                          volume_id=volume_id, connector=connector,
                          force=force)

    def remove_export(self, ctxt, backend, volume_id):
        """Cast: stop exporting the volume."""
        self._cast(backend, '1.4', 'remove_export', ctxt, volume_id=volume_id)

    def attach_volume(self, ctxt, backend, volume_id, instance_uuid=None,
                      host_name=None, mountpoint=None, mode='rw'):
        """Call: record a consumer (and tell the driver); the attachment."""
        return self._call(backend, '1.4', 'attach_volume', ctxt,
                          volume_id=volume_id, instance_uuid=instance_uuid,
                          host_name=host_name, mountpoint=mountpoint,
                          mode=mode)

    def detach_volume(self, ctxt, backend, volume_id, attachment_id):
        """Call: the consumer is gone (the driver is told)."""
        return self._call(backend, '1.4', 'detach_volume', ctxt,
                          volume_id=volume_id, attachment_id=attachment_id)

    def initialize_connection_snapshot(self, ctxt, backend, snapshot_id,
                                       connector):
        """Call: export the snapshot to ``connector``; its connection info."""
        return self._call(backend, '1.4', 'initialize_connection_snapshot',
                          ctxt, snapshot_id=snapshot_id, connector=connector)

    def terminate_connection_snapshot(self, ctxt, backend, snapshot_id,
                                      connector, force=False):
        """Call: revoke ``connector``'s connection to the snapshot."""
        return self._call(backend, '1.4', 'terminate_connection_snapshot',
                          ctxt, snapshot_id=snapshot_id, connector=connector,
                          force=force)

    def remove_export_snapshot(self, ctxt, backend, snapshot_id):
        """Cast: stop exporting the snapshot."""
        self._cast(backend, '1.4', 'remove_export_snapshot', ctxt,
                   snapshot_id=snapshot_id)


class _ReplicationAPI:
    """The operator's path: fail a backend over (or back), freeze, thaw."""

    def failover_host(self, ctxt, backend, secondary_backend_id=None):
        """Cast: make replication target ``secondary_backend_id`` the
        active backend (``default``: the primary; None: the first target
        that is not active)."""
        self._cast(backend, '1.10', 'failover_host', ctxt,
                   secondary_backend_id=secondary_backend_id)

    def freeze_host(self, ctxt, backend):
        """Call: refuse every change on the backend until thawed."""
        return self._call(backend, '1.10', 'freeze_host', ctxt)

    def thaw_host(self, ctxt, backend):
        """Call: accept changes on the backend again."""
        return self._call(backend, '1.10', 'thaw_host', ctxt)

    def failover_completed(self, ctxt, cluster_name, active_backend_id,
                           replication_status, origin=None):
        """Fanout cast: the workers of ``cluster_name`` switch their drivers
        to ``active_backend_id`` (sent by the one that failed it over)."""
        self._prepare(None, 'failover_completed', '1.10',
                      fanout=True).cast(
            ctxt, 'failover_completed', cluster_name=cluster_name,
            active_backend_id=active_backend_id,
            replication_status=replication_status, origin=origin)


class _BackupsAPI:
    """Backups of volumes into the worker's backup store."""

    def create_backup(self, ctxt, backend, backup, incremental=False,
                      force=False):
        """Cast: back ``backup.volume_id`` up as ``backup`` (id chosen by
        the caller); ``incremental``: on top of its latest available
        backup; ``force``: even while the volume is in use."""
        self._cast(backend, '1.11', 'create_backup', ctxt, backup=backup,
                   incremental=incremental, force=force)

    def restore_backup(self, ctxt, backend, backup_id, volume_id):
        """Cast: write the backup onto volume ``volume_id`` (a new one of
        the backup's size when no volume has that id)."""
        self._cast(backend, '1.11', 'restore_backup', ctxt,
                   backup_id=backup_id, volume_id=volume_id)

    def delete_backup(self, ctxt, backend, backup_id):
        """Cast: delete the backup (refused while incrementals need it)."""
        self._cast(backend, '1.11', 'delete_backup', ctxt,
                   backup_id=backup_id)

    def get_backup(self, ctxt, backend, backup_id):
        """Call: the Backup with this id (raises BackupNotFound)."""
        return self._call(backend, '1.11', 'get_backup', ctxt,
                          backup_id=backup_id)

    def list_backups(self, ctxt, backend, filters=None, marker=None,
                     limit=None):
        """Call: a page of the backend's backups, oldest first."""
        return self._call(backend, '1.11', 'list_backups', ctxt,
                          filters=filters, marker=marker, limit=limit)

    def get_backup_device(self, ctxt, backend, backup_id):
        """Call: what the driver backs up for it, as objects:
        ``{'backup_device', 'is_snapshot', 'secure_enabled'}``."""
        return self._call(backend, '1.11', 'get_backup_device', ctxt,
                          backup_id=backup_id)

    def secure_file_operations_enabled(self, ctxt, backend):
        """Call: whether the driver runs file operations without root."""
        return self._call(backend, '1.11', 'secure_file_operations_enabled',
                          ctxt)


class VolumeAPI(_AttachmentsAPI, _ReplicationAPI, _BackupsAPI):
    """RPC client of the volume worker."""

    RPC_API_VERSION = RPC_API_VERSION

    def __init__(self, conf=None, transport=None, timeout=None):
        conf = conf or cfg.CONF
        self.conf = conf
        self.transport = transport or rpc.get_transport(conf)
        target = messaging.Target(topic=conf.volume_topic,
                                  version=RPC_API_VERSION)
        self.version_cap = _version_cap(conf)
        self.client = messaging.get_rpc_client(
            self.transport, target, serializer=rpc.get_serializer(),
            version_cap=self.version_cap, timeout=timeout)

    def _prepare(self, backend, method, version, **kwargs):
        """A client bound to one backend (host@backend or cluster@backend)."""
        if not self.client.can_send_version(version):
            raise exception.RPCVersionTooNew(method=method, version=version,
                                             cap=self.version_cap)
        return self.client.prepare(server=backend, version=version, **kwargs)

    def _cast(self, backend, version, method, ctxt, **kwargs):
        self._prepare(backend, method, version).cast(ctxt, method, **kwargs)

    def _call(self, backend, version, method, ctxt, **kwargs):
        return self._prepare(backend, method, version).call(ctxt, method,
                                                            **kwargs)

    def can_send_version(self, version):
        return self.client.can_send_version(version)

    def create_volume(self, ctxt, backend, volume, request_spec=None,
                      filter_properties=None):
        """Cast: create ``volume`` (a Volume whose id the caller chose).

        With ``snapshot_id`` or ``source_volid`` set it is a copy of that
        snapshot or volume, which only workers of 1.2 understand; with
        ``image_id``, the image written onto it (1.12). A scheduler passes
        its ``request_spec`` and ``filter_properties`` (1.14): with
        ``filter_properties['retry']`` a failed create comes back to it.
        """
        copy = any(volume.obj_attr_is_set(f) and getattr(volume, f)
                   for f in ('snapshot_id', 'source_volid'))
        kwargs = {}
        if request_spec is not None or filter_properties is not None:
            version = '1.14'
            kwargs = {'request_spec': request_spec,
                      'filter_properties': filter_properties}
        elif volume.obj_attr_is_set('image_id') and volume.image_id:
            version = '1.12'
        else:
            version = '1.2' if copy else '1.0'
        self._cast(backend, version, 'create_volume', ctxt, volume=volume,
                   **kwargs)

    def copy_volume_to_image(self, ctxt, backend, volume_id, image_meta,
                             force=False):
        """Cast: upload the volume as a new image (``image_meta``: ``id``
        chosen by the caller, ``name``, ``disk_format`` raw or qcow2;
        ``force``: also while it is in use)."""
        if force:
            self._cast(backend, '1.16', 'copy_volume_to_image', ctxt,
                       volume_id=volume_id, image_meta=image_meta,
                       force=True)
            return
        self._cast(backend, '1.12', 'copy_volume_to_image', ctxt,
                   volume_id=volume_id, image_meta=image_meta)

    def extend_volume(self, ctxt, backend, volume_id, new_size):
        """Cast: grow the volume to ``new_size`` GiB."""
        self._cast(backend, '1.2', 'extend_volume', ctxt,
                   volume_id=volume_id, new_size=new_size)

    def revert_to_snapshot(self, ctxt, backend, volume_id, snapshot_id):
        """Cast: put the data of the volume's most recent snapshot back."""
        self._cast(backend, '1.2', 'revert_to_snapshot', ctxt,
                   volume_id=volume_id, snapshot_id=snapshot_id)

    def delete_volume(self, ctxt, backend, volume_id, unmanage_only=False):
        """Cast: delete the volume (``unmanage_only``: leave the backend object)."""
        if unmanage_only:
            self._cast(backend, '1.5', 'delete_volume', ctxt,
                       volume_id=volume_id, unmanage_only=True)
        else:
            self._cast(backend, '1.0', 'delete_volume', ctxt,
                       volume_id=volume_id)

    def retype(self, ctxt, backend, volume_id, new_type_id,
               migration_policy='never', dest_backend=None):
        """Cast: give the volume another type, in place on this backend or
        (``migration_policy='on-demand'``) by migrating it to
        ``dest_backend``."""
        if dest_backend is None:
            self._cast(backend, '1.6', 'retype', ctxt, volume_id=volume_id,
                       new_type_id=new_type_id,
                       migration_policy=migration_policy)
            return
        self._cast(backend, '1.15', 'retype', ctxt, volume_id=volume_id,
                   new_type_id=new_type_id, migration_policy=migration_policy,
                   dest_backend=dest_backend)

    def migrate_volume(self, ctxt, backend, volume_id, dest_backend,
                       force_host_copy=False):
        """Cast: move the volume to ``dest_backend`` (host@backend[#pool]),
        by its driver or (``force_host_copy``, or the driver cannot) by
        copying its data; the volume keeps its id."""
        self._cast(backend, '1.15', 'migrate_volume', ctxt,
                   volume_id=volume_id, dest_backend=dest_backend,
                   force_host_copy=force_host_copy)

    def migrate_volume_completion(self, ctxt, backend, volume_id,
                                  new_volume_id, original_status):
        """Call, on the destination of a generic migration: its copy
        ``new_volume_id`` becomes volume ``volume_id``; the Volume."""
        return self._call(backend, '1.15', 'migrate_volume_completion', ctxt,
                          volume_id=volume_id, new_volume_id=new_volume_id,
                          original_status=original_status)

    def create_group(self, ctxt, backend, group):
        """Cast: create ``group`` (a Group whose id the caller chose)."""
        self._cast(backend, '1.7', 'create_group', ctxt, group=group)

    def update_group(self, ctxt, backend, group_id, add_volumes=None,
                     remove_volumes=None):
        """Cast: add and remove volumes (lists of ids)."""
        self._cast(backend, '1.7', 'update_group', ctxt, group_id=group_id,
                   add_volumes=add_volumes, remove_volumes=remove_volumes)

    def delete_group(self, ctxt, backend, group_id, delete_volumes=False):
        """Cast: delete the group (and, with ``delete_volumes``, its volumes)."""
        self._cast(backend, '1.7', 'delete_group', ctxt, group_id=group_id,
                   delete_volumes=delete_volumes)

    def get_group(self, ctxt, backend, group_id):
        """Call: the Group with this id (raises GroupNotFound)."""
        return self._call(backend, '1.7', 'get_group', ctxt,
                          group_id=group_id)

    def list_groups(self, ctxt, backend, filters=None, marker=None,
                    limit=None):
        """Call: a page of the backend's groups, oldest first."""
        return self._call(backend, '1.7', 'list_groups', ctxt,
                          filters=filters, marker=marker, limit=limit)

    def create_group_from_src(self, ctxt, backend, group,
                              group_snapshot_id=None, source_group_id=None):
        """Cast: a new group of copies of a group snapshot or a group."""
        self._cast(backend, '1.9', 'create_group_from_src', ctxt, group=group,
                   group_snapshot_id=group_snapshot_id,
                   source_group_id=source_group_id)

    def create_group_snapshot(self, ctxt, backend, group_snapshot):
        """Cast: snapshot every volume of ``group_snapshot.group_id``."""
        self._cast(backend, '1.8', 'create_group_snapshot', ctxt,
                   group_snapshot=group_snapshot)

    def delete_group_snapshot(self, ctxt, backend, group_snapshot_id):
        """Cast: delete the group snapshot and its member snapshots."""
        self._cast(backend, '1.8', 'delete_group_snapshot', ctxt,
                   group_snapshot_id=group_snapshot_id)

    def get_group_snapshot(self, ctxt, backend, group_snapshot_id):
        """Call: the GroupSnapshot with this id."""
        return self._call(backend, '1.8', 'get_group_snapshot', ctxt,
                          group_snapshot_id=group_snapshot_id)

    def manage_existing(self, ctxt, backend, volume, existing_ref):
        """Cast: adopt the backend object ``existing_ref`` as ``volume``."""
        self._cast(backend, '1.5', 'manage_existing', ctxt, volume=volume,
                   existing_ref=existing_ref)

    def manage_existing_snapshot(self, ctxt, backend, snapshot, existing_ref):
        """Cast: adopt the backend object ``existing_ref`` as ``snapshot``."""
        self._cast(backend, '1.5', 'manage_existing_snapshot', ctxt,
                   snapshot=snapshot, existing_ref=existing_ref)

    def get_manageable_volumes(self, ctxt, backend, marker=None, limit=None,
                               offset=0, sort_keys=None, sort_dirs=None):
        """Call: backend objects that could be managed as volumes."""
        return self._call(backend, '1.5', 'get_manageable_volumes', ctxt,
                          marker=marker, limit=limit, offset=offset,
                          sort_keys=sort_keys, sort_dirs=sort_dirs)

    def get_manageable_snapshots(self, ctxt, backend, marker=None,
                                 limit=None, offset=0, sort_keys=None,
                                 sort_dirs=None):
        """Call: backend objects that could be managed as snapshots."""
        return self._call(backend, '1.5', 'get_manageable_snapshots', ctxt,
                          marker=marker, limit=limit, offset=offset,
                          sort_keys=sort_keys, sort_dirs=sort_dirs)

    def accept_transfer(self, ctxt, backend, volume_id, new_user,
                        new_project, no_snapshots=False):
        """Call: the volume (and its snapshots) change owner."""
        return self._call(backend, '1.5', 'accept_transfer', ctxt,
                          volume_id=volume_id, new_user=new_user,
                          new_project=new_project, no_snapshots=no_snapshots)

    def get_capabilities(self, ctxt, backend, discover=False):
        """Call: the backend's last capability report (fresh if discover)."""
        return self._call(backend, '1.0', 'get_capabilities', ctxt,
                          discover=discover)

    def do_cleanup(self, ctxt, backend, cleanup_request=None):
        """Cast: run recovery again while serving (``cleanup_request``:
        ``{"resource_type", "resource_id"}`` to limit it to one resource);
        ``service.cleanup.end`` carries the summary."""
        self._cast(backend, '1.13', 'do_cleanup', ctxt,
                   cleanup_request=cleanup_request)

    def set_log_levels(self, ctxt, backend, log_request):
        """Cast: ``{"prefix", "level"}``, for the worker's whole process."""
        self._cast(backend, '1.13', 'set_log_levels', ctxt,
                   log_request=log_request)

    def get_log_levels(self, ctxt, backend, log_request=None):
        """Call: ``[{"prefix": logger, "level": name}]`` under a prefix."""
        return self._call(backend, '1.13', 'get_log_levels', ctxt,
                          log_request=log_request)

    def publish_service_capabilities(self, ctxt):
        """Fanout cast: every worker publishes a capability report now."""
        self.client.prepare(fanout=True).cast(
            ctxt, 'publish_service_capabilities')

    def get_volume(self, ctxt, backend, volume_id):
        """Call: the Volume with this id (raises VolumeNotFound)."""
        return self._call(backend, '1.0', 'get_volume', ctxt,
                          volume_id=volume_id)

    def list_volumes(self, ctxt, backend, filters=None, marker=None,
                     limit=None):
        """Call: a page of the backend's volumes, oldest first."""
        return self._call(backend, '1.0', 'list_volumes', ctxt,
                          filters=filters, marker=marker, limit=limit)

    def create_snapshot(self, ctxt, backend, snapshot, force=False):
        """Cast: snapshot ``snapshot.volume_id`` (``force``: even in-use)."""
        self._cast(backend, '1.1', 'create_snapshot', ctxt,
                   snapshot=snapshot, force=force)

    def delete_snapshot(self, ctxt, backend, snapshot_id,
                        unmanage_only=False):
        """Cast: delete the snapshot (``unmanage_only``: forget it only)."""
        self._cast(backend, '1.1', 'delete_snapshot', ctxt,
                   snapshot_id=snapshot_id, unmanage_only=unmanage_only)

    def get_snapshot(self, ctxt, backend, snapshot_id):
        """Call: the Snapshot with this id (raises SnapshotNotFound)."""
        return self._call(backend, '1.1', 'get_snapshot', ctxt,
                          snapshot_id=snapshot_id)

    def list_snapshots(self, ctxt, backend, filters=None, marker=None,
                       limit=None):
        """Call: a page of the backend's snapshots, oldest first."""
        return self._call(backend, '1.1', 'list_snapshots', ctxt,
                          filters=filters, marker=marker, limit=limit)


def _version_cap(conf):
    try:
        cap = conf.upgrade_levels.volume
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        cap = None
    return cap or RPC_API_VERSION


class SchedulerReportAPI:
    """The scheduler methods the worker calls: capability reports (fanout)."""

    def __init__(self, conf, transport):
        target = messaging.Target(topic=conf.scheduler_topic, version='1.0')
        self.client = messaging.get_rpc_client(
            transport, target, serializer=rpc.get_serializer())

    def update_service_capabilities(self, ctxt, service_name, host,
                                    capabilities, timestamp,
                                    cluster_name=None):
        # No retry: with no scheduler listening the fanout exchange does not
        # exist, and an endless retry would hold the connection pool (the
        # reporter skips such reports before they get here).
        self.client.prepare(fanout=True, retry=0).cast(
            ctxt, 'update_service_capabilities', service_name=service_name,
            host=host, capabilities=capabilities, cluster_name=cluster_name,
            timestamp=timestamp)
