"""``BaseVD``: what every backend driver provides; see drivers.base."""

from oslo_concurrency import processutils
from oslo_log import log as logging

from drivers import common
from drivers import configuration as driver_configuration
from drivers import datapath
from drivers import exception
from drivers import generic
from drivers import throttle as throttling

LOG = logging.getLogger(__name__)


class BaseVD(object):
    """The control path of a backend's volumes, with generic fallbacks.

    A driver drives the storage (create, delete, extend, export...); moving
    data to a consumer is the job of a connector (os-brick) fed with the
    connection info ``initialize_connection`` returns.  Where a generic
    implementation can be built from the driver's own calls and os-brick
    (cloning, image copies, backups: see ``drivers.generic``), it is here;
    where the reference says there is nothing to do, the default does
    nothing; everything else raises ``NotImplementedError``.

    Built as ``Driver(execute, configuration=..., host='host@backend',
    active_backend_id=..., cluster_name=..., db=...)``; further keyword
    arguments are accepted and ignored.
    """

    VERSION = 'N/A'
    # False marks a driver kept only for compatibility (Cinder's SUPPORTED).
    SUPPORTED = True
    # True: several workers (a cluster, or ``workers = N``) may serve one
    # backend at once (Cinder's SUPPORTS_ACTIVE_ACTIVE). A driver says so
    # only when its state lives on the backend, not in one process.
    SUPPORTS_ACTIVE_ACTIVE = False

    def __init__(self, execute=processutils.execute, *args,
                 configuration=None, host=None, active_backend_id=None,
                 cluster_name=None, db=None, **kwargs):
        if configuration is None:
            configuration = driver_configuration.Configuration(
                common.volume_opts)
        else:
            configuration.append_config_values(common.volume_opts)
        configuration.append_global_config_values(common.scheduler_opts)
        self.configuration = configuration
        self._execute = execute or processutils.execute
        self.host = host
        self.cluster_name = cluster_name
        self.db = db
        self._active_backend_id = active_backend_id
        self._initialized = False
        self._stats = {}
        self.capabilities = {}
        self.throttle = throttling.UNLIMITED
        # Keys of encrypted volumes (castellan's KeyManager interface); the
        # worker sets it.
        self.key_manager = None

    # -- lifecycle ---------------------------------------------------------

    def do_setup(self, context):
        """Any initialization the driver needs at start (log in...)."""

    def check_for_setup_error(self):
        """Raise if the driver cannot work with its configuration."""

    def set_initialized(self):
        """Mark the driver ready, once setup and the check have passed."""
        self._initialized = True

    @property
    def initialized(self):
        return self._initialized

    @property
    def supported(self):
        """The driver's declared support: its ``SUPPORTED`` attribute."""
        return self.SUPPORTED

    def get_version(self):
        return self.VERSION

    def set_throttle(self):
        """Install the bandwidth limit of this backend's data copies.

        From ``volume_copy_bps_limit`` (0: none); every copy the generic
        implementations make goes through ``self.throttle``.
        """
        self.throttle = throttling.Throttle(
            self.configuration.safe_get('volume_copy_bps_limit') or 0)

    # -- stats and scheduling ----------------------------------------------

    def get_volume_stats(self, refresh=False):
        """Return the backend's capabilities and capacity as a dict.

        Keys are those Cinder's scheduler knows (``volume_backend_name``,
        ``vendor_name``, ``driver_version``, ``storage_protocol``,
        ``total_capacity_gb``, ``free_capacity_gb``, ``reserved_percentage``,
        ``pools``...).  With ``refresh`` the backend is asked again; otherwise
        the last answer is returned.
        """
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    def _update_volume_stats(self):
        """Ask the backend and store the answer in ``self._stats``."""
        raise NotImplementedError()

    def _base_stats(self, storage_protocol):
        """Stats keys that only depend on configuration."""
        targets = self._replication_targets()
        return {
            'volume_backend_name': (self.configuration.safe_get(
                'volume_backend_name') or self.__class__.__name__),
            'vendor_name': 'Open Source',
            'driver_version': self.get_version(),
            'storage_protocol': storage_protocol,
            'reserved_percentage': self.configuration.safe_get(
                'reserved_percentage') or 0,
            'filter_function': self.get_filter_function(),
            'goodness_function': self.get_goodness_function(),
            'replication_enabled': bool(targets),
            'replication_targets': [t['backend_id'] for t in targets],
        }

    def init_capabilities(self):
        """Store and return the static stats plus ``properties``.

        ``properties`` describes each extra-spec key the backend understands
        (title, description, type), standard ones first, then the vendor's,
        whose keys start with ``<vendor_prefix>:``; ``vendor_prefix`` is then
        part of the result too, so ``get_prefixed_property`` can build keys.
        """
        stats = self.get_volume_stats(True)
        capabilities = dict(stats) if stats else {}
        capabilities['properties'] = self._init_standard_capabilities()
        vendor_properties, prefix = self._init_vendor_properties()
        if prefix:
            if ':' in prefix:
                LOG.warning('Vendor prefix %r contains a colon; using %r',
                            prefix, prefix.replace(':', '_'))
                prefix = prefix.replace(':', '_')
            capabilities['vendor_prefix'] = prefix
            for key, value in (vendor_properties or {}).items():
                if not key.startswith(prefix + ':'):
                    LOG.warning('Vendor property %r does not start with '
                                '"%s:"; not registered', key, prefix)
                    continue
                capabilities['properties'][key] = value
        elif vendor_properties:
            LOG.warning('Vendor properties %s come without a vendor prefix; '
                        'not registered', sorted(vendor_properties))
        self.capabilities = capabilities
        return capabilities

    def _init_standard_capabilities(self):
        """Extra-spec keys every backend may honour."""
        return {
            'thin_provisioning': {
                'title': 'Thin provisioning',
                'description': 'Allocate space only when data is written.',
                'type': 'boolean'},
            'replication_enabled': {
                'title': 'Replication',
                'description': 'Replicate volumes to a secondary backend.',
                'type': 'boolean'},
            'multiattach': {
                'title': 'Multi-attach',
                'description': 'Attach one volume to several consumers.',
                'type': 'boolean'},
        }

    def _init_vendor_properties(self):
        """Return ``(properties, vendor_prefix)``; ``({}, None)`` for none."""
        return {}, None

    def get_prefixed_property(self, property):
        """Return ``<vendor_prefix>:<property>``, or None without a prefix."""
        prefix = self.capabilities.get('vendor_prefix')
        if property and prefix:
            return '%s:%s' % (prefix, property)
        return None

    def get_default_filter_function(self):
        """A driver's own filter expression; None by default."""
        return None

    def get_default_goodness_function(self):
        """A driver's own goodness expression; None by default."""
        return None

    def _scheduler_function(self, name, default):
        return (self.configuration.safe_get(name)
                or self.configuration.safe_get_global(name)
                or default())

    def get_filter_function(self):
        """``filter_function`` of the backend section, else of [DEFAULT],
        else ``get_default_filter_function()``.

        None lets the scheduler pass this backend unconditionally.
        """
        return self._scheduler_function('filter_function',
                                        self.get_default_filter_function)

    def get_goodness_function(self):
        """``goodness_function`` of the backend section, else of [DEFAULT],
        else ``get_default_goodness_function()``.

        None makes the scheduler give this backend the lowest score.
        """
        return self._scheduler_function('goodness_function',
                                        self.get_default_goodness_function)

    def get_pool(self, volume):
        """Name of the pool holding ``volume``, read from its ``host``."""
        return common.extract_pool(common.field(volume, 'host'))

    # -- volumes -------------------------------------------------------------

    def create_volume(self, volume):
        """Create ``volume`` on the backend; return a model update or None.

        When the volume type asks for replication the driver also creates
        and pairs the replica, returning ``replication_status`` ('copying'),
        ``replication_extended_status`` and ``replication_driver_data``.
        """
        raise NotImplementedError()

    def delete_volume(self, volume):
        """Delete ``volume`` (and its replica); succeed if already gone."""
        raise NotImplementedError()

    def create_cloned_volume(self, volume, src_vref):
        """Create ``volume`` as a copy of ``src_vref``; return a model update.

        Generic: ``create_volume``, then attach both volumes here and copy
        the source's bytes (``drivers.generic``).
        """
        return generic.create_volume_by_copy(
            self, volume, src_vref, common.field(src_vref, 'size'))

    def retype(self, context, volume, new_type, diff, host):
        """Change ``volume`` to ``new_type`` in place, if the backend can.

        Return ``(changed, model_update)``; ``(False, None)`` means it could
        not, and the volume has to be migrated instead.
        """
        return False, None

    def migrate_volume(self, context, volume, host):
        """Stub for drivers without backend-assisted migration.

        Returns ``(False, None)``: not moved, nothing to update.
        """
        return False, None

    def update_migrated_volume(self, ctxt, volume, new_volume,
                               original_volume_status):
        """Reconcile names after a generic migration onto this backend.

        ``new_volume`` is the copy created here; ``volume`` the original.
        Return ``{'_name_id': ..., 'provider_location': ...}``; a missing
        key or None leaves that column alone.  The default keeps pointing at
        the copy's backend object.
        """
        name_id = common.field(new_volume, '_name_id') or common.field(
            new_volume, 'id')
        return {'_name_id': name_id,
                'provider_location': common.field(new_volume,
                                                  'provider_location')}

    def before_volume_copy(self, context, src_vol, dest_vol, remote=None):
        """Hook run before volume data is copied during a migration."""

    def after_volume_copy(self, context, src_vol, dest_vol, remote=None):
        """Hook run after volume data was copied during a migration."""

    def update_provider_info(self, volumes, snapshots):
        """Report provider ids the backend changed since the last start.

        Return ``(volume_updates, snapshot_updates)``, lists of
        ``{'id': uuid, 'provider_id': value}``, or ``(None, None)``.
        """
        return None, None

    def manage_existing(self, volume, existing_ref):
        """Stub for drivers that cannot adopt existing storage objects."""
        raise NotImplementedError('manage_existing is not implemented')

    def unmanage(self, volume):
        """Stub for drivers that cannot adopt existing storage objects."""
        raise NotImplementedError('unmanage is not implemented')

    # -- exports and connections ------------------------------------------

    def create_export(self, context, volume, connector):
        """Export ``volume`` so ``connector`` can reach it.

        Return a model update (usually ``provider_location`` and
        ``provider_auth``) or None.
        """
        raise NotImplementedError()

    def ensure_export(self, context, volume):
        """Recreate an existing export after a restart; model update/None."""
        raise NotImplementedError()

    def ensure_exports(self, context, volumes):
        """``ensure_export`` for many volumes at once (the worker's start-up).

        Not part of Cinder's contract: the worker calls it with batches of
        its settled, exported volumes. This default calls ``ensure_export``
        for each; a driver that can check many exports at once (one
        listing of its target's table) overrides it. Returns ``(updates,
        failures)``: model updates and failure reasons, by volume id.
        """
        updates, failures = {}, {}
        for volume in volumes:
            try:
                update = self.ensure_export(context, volume)
            except Exception as exc:
                failures[volume.id] = str(exc) or type(exc).__name__
                continue
            if update:
                updates[volume.id] = update
        return updates, failures

    def remove_export(self, context, volume):
        """Remove the export of ``volume``; succeed if there is none."""
        raise NotImplementedError()

    def create_export_snapshot(self, context, snapshot, connector):
        """Export ``snapshot``; return a snapshot model update or None."""
        raise NotImplementedError()

    def remove_export_snapshot(self, context, snapshot):
        """Remove the export of ``snapshot``; succeed if there is none."""
        raise NotImplementedError()

    def initialize_connection(self, volume, connector, **kwargs):
        """Let ``connector`` reach ``volume``; return the connection info.

        ``connector`` is os-brick's description of the consumer
        (``initiator``, ``wwpns``, ``host``, ``multipath``...).  The result
        is ``{'driver_volume_type': <os-brick protocol>, 'data': {...}}``
        and is handed unchanged to os-brick on the consumer.
        """
        raise NotImplementedError()

    def terminate_connection(self, volume, connector, **kwargs):
        """Revoke ``connector``'s access (None: all); nothing by default."""

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        """Like ``initialize_connection`` for a snapshot.

        The info may carry ``initiator_updates``: ``{'set_values': {...},
        'remove_values': [...]}``, initiator data to store or drop.
        """
        raise NotImplementedError()

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        """Revoke access to ``snapshot``; nothing by default."""

    def validate_connector(self, connector):
        """Raise ``InvalidConnectorException`` if ``connector`` lacks data."""

    @staticmethod
    def validate_connector_has_setting(connector, setting):
        """Raise unless ``connector[setting]`` is present and not empty."""
        if not (connector or {}).get(setting):
            LOG.error('Connector %(connector)s lacks %(setting)s',
                      {'connector': connector, 'setting': setting})
            raise exception.InvalidConnectorException(missing=setting)

    def attach_volume(self, context, volume, instance_uuid, host_name,
                      mountpoint):
        """Callback after a consumer attached ``volume``."""

    def detach_volume(self, context, volume, attachment=None):
        """Callback after a consumer detached ``volume``."""

    def _local_connector(self):
        """The connector of this host, for the generic copies' attachments.

        Probed once (os-brick's probe runs a dozen privileged look-ups, a
        noticeable part of a small copy); the host does not change under a
        running driver.
        """
        connector = getattr(self, '_local_connector_props', None)
        if connector is None:
            connector = self._local_connector_props = (
                datapath.local_connector())
        return dict(connector)

    # -- images and backups (generic: drivers.generic) ------------------------

    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        """Create ``volume`` from an image without copying it, if possible.

        Return ``(model_update, cloned)``; ``(None, False)``: not cloned,
        the image has to be copied.
        """
        return None, False

    def copy_image_to_volume(self, context, volume, image_service, image_id):
        """Write image ``image_id`` onto ``volume`` (generic: qemu-img)."""
        generic.copy_image_to_volume(self, context, volume, image_service,
                                     image_id)

    def copy_image_to_encrypted_volume(self, context, volume, image_service,
                                       image_id):
        """Write image ``image_id`` onto ``volume`` encrypted (generic: a
        LUKS container by qemu-img, the key from ``self.key_manager``)."""
        generic.copy_image_to_encrypted_volume(self, context, volume,
                                               image_service, image_id)

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        """Upload ``volume`` as image ``image_meta['id']`` (generic: qemu-img)."""
        generic.copy_volume_to_image(self, context, volume, image_service,
                                     image_meta)

    def clear_download(self, context, volume):
        """Clean up after an interrupted image copy into ``volume``."""

    def backup_use_temp_snapshot(self):
        """Whether in-use volumes are backed up from a temporary snapshot."""
        return False

    def snapshot_remote_attachable(self):
        """Whether a snapshot can be attached from another host."""
        return False

    def get_backup_device(self, context, backup):
        """Return ``(volume_or_snapshot, is_snapshot)`` to back up.

        Generic: the backup's snapshot if it has one, else its volume, both
        loaded through the ``db`` collaborator.
        """
        return generic.get_backup_device(self, context, backup)

    def backup_volume(self, context, backup, backup_service):
        """Back the backup's device up through ``backup_service`` (generic)."""
        generic.backup_volume(self, context, backup, backup_service)

    def restore_backup(self, context, backup, volume, backup_service):
        """Restore ``backup`` onto ``volume`` through ``backup_service``."""
        generic.restore_backup(self, context, backup, volume, backup_service)

    def secure_file_operations_enabled(self):
        """Whether file operations run without root (file backends only)."""
        return False

    # -- groups ------------------------------------------------------------

    def create_group(self, context, group):
        """Create ``group``; return a model update such as ``{'status': ...}``.

        A status of 'error' fails the operation; None means 'available'.
        """
        raise NotImplementedError()

    def delete_group(self, context, group, volumes):
        """Delete ``group`` and its ``volumes``.

        Return ``(model_update, volumes_model_update)``: the group's update
        and a list of ``{'id': volume_id, 'status': ...}`` built by the
        driver (never the passed objects).  An 'error' or 'error_deleting'
        entry means that volume survived; ``(None, None)`` means all went.
        """
        raise NotImplementedError()

    def update_group(self, context, group, add_volumes=None,
                     remove_volumes=None):
        """Add and remove volumes of ``group``.

        Return ``(model_update, add_volumes_update, remove_volumes_update)``;
        each list entry needs an ``'id'``.  None leaves things unchanged.
        """
        raise NotImplementedError()

    def create_group_from_src(self, context, group, volumes,
                              group_snapshot=None, snapshots=None,
                              source_group=None, source_vols=None):
        """Create ``group`` and its ``volumes`` from a group snapshot or group.

        Return ``(model_update, volumes_model_update)`` as for
        ``delete_group``, or ``(None, None)`` when everything worked.
        """
        raise NotImplementedError()

    def create_group_snapshot(self, context, group_snapshot, snapshots):
        """Snapshot every volume of a group at one point in time.

        Return ``(model_update, snapshots_model_update)``: the group
        snapshot's update and ``{'id': snapshot_id, 'status': ...}`` per
        snapshot.  Any 'error' entry makes the whole group snapshot 'error'.
        """
        raise NotImplementedError()

    def delete_group_snapshot(self, context, group_snapshot, snapshots):
        """Delete a group snapshot; return as ``create_group_snapshot``."""
        raise NotImplementedError()

    # -- replication ---------------------------------------------------------

    def _replication_targets(self):
        """The ``replication_device`` entries as dicts with a backend_id."""
        targets = self.configuration.safe_get('replication_device') or []
        return [dict(target) for target in targets if target.get('backend_id')]

    def failover_host(self, context, volumes, secondary_id=None, groups=None):
        """Make a replication target the active backend.

        ``secondary_id`` names the target (None: the driver picks one;
        'default': fail back to the primary).  All volumes of the backend
        are passed so the driver can update the replicated ones.

        The reference returns ``(active_backend_id, volume_update_list)``;
        later Cinder adds ``groups`` and a third item, ``group_update_list``.
        List entries are ``{'volume_id': id, 'updates': {...}}`` (and
        ``{'group_id': id, 'updates': {...}}``); updates typically touch
        ``provider_location``, ``provider_auth``, ``provider_id`` and
        ``replication_status``.
        """
        raise NotImplementedError()

    def freeze_backend(self, context):
        """Note that the backend is frozen: no new resources, no changes.

        Drivers rarely need to act.  Return True on success.
        """
        return True

    def thaw_backend(self, context):
        """Undo ``freeze_backend``; return True on success."""
        return True

    def get_replication_updates(self, context):
        """Legacy replication polling; nothing to report."""
        return []
