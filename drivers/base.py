"""The contract between the volume worker and a storage backend driver.

``BaseVD`` holds what every backend must or may do; the ``*VD`` mixins name
optional capabilities; ``VolumeDriver`` bundles them all and the transport
classes (iSCSI, iSER, Fibre Channel) add the connection-info conventions.

Conventions used throughout:

* A *model update* is a dict of volume (or snapshot, group) fields the worker
  persists after the call, e.g. ``{'provider_location': ...}``; ``None`` means
  nothing to persist.
* Raising ``NotImplementedError`` means "this backend cannot do it"; for a few
  operations (groups, revert, migration) the worker then falls back to a
  generic implementation of its own.
* Every other failure is a ``drivers.exception.VolumeDriverException``.
* Calls must be idempotent: re-running one after a crash converges on the same
  backend state ("create if absent, succeed if already there").
"""

import functools

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_config import types
from oslo_log import log as logging

from drivers import configuration as driver_configuration
from drivers import exception

LOG = logging.getLogger(__name__)

# Placeholder section under which the sample config shows ``volume_opts``;
# in a real file they belong in each enabled backend's own section.
SAMPLE_SECTION = 'backend'

volume_opts = (
    cfg.StrOpt('volume_backend_name',
               help='Name the scheduler and volume types use for this '
                    'backend. Defaults to the driver class name.'),
    cfg.IntOpt('reserved_percentage', default=0, min=0, max=100,
               help='Percentage of capacity kept free: the scheduler never '
                    'places volumes in it.'),
    cfg.StrOpt('max_over_subscription_ratio', default='20.0',
               regex=r'^(auto|\d+(\.\d+)?)$',
               help='How far provisioned capacity may exceed real capacity on '
                    'thin-provisioned pools: a float >= 1.0, or "auto" to let '
                    'the driver compute it from current usage.'),
    cfg.StrOpt('filter_function',
               help='Scheduler filter expression for this backend; when unset '
                    'the driver may supply its own default.'),
    cfg.StrOpt('goodness_function',
               help='Scheduler goodness (0-100) expression for this backend; '
                    'when unset the driver may supply its own default.'),
    cfg.HostAddressOpt('target_ip_address', default='127.0.0.1',
                       help='Address on which volumes of this backend are '
                            'exported to initiators.'),
    cfg.PortOpt('target_port', default=3260,
                help='Port of the export portal.'),
    cfg.StrOpt('target_prefix', default='iqn.2010-10.org.openstack:',
               help='Prefix of the target names (IQNs) given to volumes; '
                    'the volume name is appended.'),
    cfg.StrOpt('target_protocol', default='iscsi',
               choices=['iscsi', 'iser', 'local'],
               help='Transport used to hand volumes to their consumers.'),
    cfg.ListOpt('target_secondary_ip_addresses', default=[],
                help='Further portal addresses exporting the same targets, '
                     'reported to multipath-capable initiators.'),
    cfg.BoolOpt('use_chap_auth', default=False,
                help='Require CHAP authentication on exports.'),
    cfg.StrOpt('chap_username', default='',
               help='CHAP user name; generated per volume when empty.'),
    cfg.StrOpt('chap_password', default='', secret=True,
               help='CHAP password; generated per volume when empty.'),
    cfg.BoolOpt('report_discard_supported', default=False,
                help='Tell consumers that the backend honours discard/unmap '
                     'requests.'),
    cfg.MultiOpt('replication_device', item_type=types.Dict(),
                 help='A replication target as key:value pairs, at least '
                      'backend_id:<id>. Repeat the option for several '
                      'targets.'),
    cfg.BoolOpt('driver_ssl_cert_verify', default=False,
                help='Verify the TLS certificate of the backend management '
                     'API.'),
    cfg.StrOpt('driver_ssl_cert_path',
               help='CA bundle used when driver_ssl_cert_verify is set; the '
                    'system store is used when unset.'),
)


def list_opts():
    """Options of every backend section, for oslo-config-generator."""
    return [(SAMPLE_SECTION, list(volume_opts))]


def native_lock(reentrant=False):
    """A lock for state shared by driver calls.

    The worker runs driver calls in a pool of native threads. Under eventlet
    the ``threading`` module's locks are green, and one native thread waking
    another through them fails ("Cannot switch to a different thread"), so
    drivers take their locks from here.
    """
    import threading
    module = threading
    try:
        from eventlet import patcher
    except ImportError:
        patcher = None
    if patcher is not None and patcher.is_monkey_patched('thread'):
        module = patcher.original('threading')
    return module.RLock() if reentrant else module.Lock()


def extract_pool(host):
    """Return the pool part of ``host@backend#pool``, or None."""
    if not host or '#' not in host:
        return None
    return host.split('#', 1)[1] or None


def _portal(address, port):
    """``ip:port``, bracketing IPv6 addresses."""
    if ':' in address and not address.startswith('['):
        address = '[%s]' % address
    return '%s:%s' % (address, port)


def paginate_manageable(entries, marker, limit, offset, sort_keys, sort_dirs):
    """Sort and page a list of manageable-object dicts.

    ``sort_keys`` may hold ``'size'`` and ``'reference'`` (``'identifier'``
    is accepted as its alias); ``marker`` is the ``reference`` dict of the
    last entry of the previous page.
    """
    keys = [('reference' if key == 'identifier' else key)
            for key in (sort_keys or ['reference'])]
    dirs = list(sort_dirs or [])
    dirs += ['asc'] * (len(keys) - len(dirs))
    for key in keys:
        if key not in ('size', 'reference'):
            raise exception.InvalidInput(
                reason='cannot sort manageable objects by %r' % key)

    def sortable(value):
        return sorted(value.items()) if isinstance(value, dict) else value

    def compare(left, right):
        for key, direction in zip(keys, dirs):
            a, b = sortable(left[key]), sortable(right[key])
            if a != b:
                result = -1 if a < b else 1
                return -result if direction == 'desc' else result
        return 0

    ordered = sorted(entries, key=functools.cmp_to_key(compare))
    start = 0
    if marker:
        positions = [i for i, entry in enumerate(ordered)
                     if entry['reference'] == marker]
        if not positions:
            raise exception.InvalidInput(
                reason='marker %r matches no manageable object' % (marker,))
        start = positions[0] + 1
    start += offset or 0
    end = start + limit if limit else None
    return ordered[start:end]


class BaseVD(object):
    """What every backend driver provides: the control path of volumes.

    A driver only drives the storage (create, delete, extend, export...).
    Moving data to a consumer is the job of a connector (os-brick) fed with
    the connection info the driver returns from ``initialize_connection``.

    Generic behaviour lives here when there is a sensible one; everything
    else raises ``NotImplementedError``.
    """

    VERSION = 'N/A'

    def __init__(self, execute=None, *args, configuration=None, host=None,
                 active_backend_id=None, cluster_name=None, **kwargs):
        if configuration is None:
            configuration = driver_configuration.Configuration(volume_opts)
        else:
            configuration.append_config_values(volume_opts)
        self.configuration = configuration
        self._execute = execute or processutils.execute
        self.host = host
        self.cluster_name = cluster_name
        self._active_backend_id = active_backend_id
        self._initialized = False
        self._stats = {}
        self.capabilities = {}

    # -- lifecycle ---------------------------------------------------------

    def do_setup(self, context):
        """Prepare the driver once at worker start (connect, log in...)."""

    def check_for_setup_error(self):
        """Raise if the driver cannot work with its configuration."""

    def set_initialized(self):
        """Mark the driver ready; the worker calls this after setup works."""
        self._initialized = True

    @property
    def initialized(self):
        return self._initialized

    @property
    def supported(self):
        """False for drivers kept only for compatibility."""
        return True

    def get_version(self):
        return self.VERSION

    def set_throttle(self):
        """Install an I/O throttle for data copies; none by default."""

    # -- stats and scheduling ----------------------------------------------

    def get_volume_stats(self, refresh=False):
        """Return the backend's capabilities and capacity as a dict.

        The keys are the ones Cinder's scheduler knows: ``volume_backend_name``,
        ``vendor_name``, ``driver_version``, ``storage_protocol``,
        ``total_capacity_gb``, ``free_capacity_gb``, ``reserved_percentage``,
        ``pools``... With ``refresh`` the driver asks the backend again;
        otherwise the last answer is returned.
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
        """Return, and keep in ``self.capabilities``, what an operator can tune.

        The result is the refreshed stats plus ``properties``: for each
        extra-spec key this backend understands, its title, description and
        type, so volume types can be written without reading driver code.
        """
        stats = dict(self.get_volume_stats(True))
        properties = {
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
        properties.update(self._init_vendor_properties())
        stats['properties'] = properties
        self.capabilities = stats
        return stats

    def _init_vendor_properties(self):
        """Vendor-specific extra-spec descriptions, keyed ``vendor:key``."""
        return {}

    def get_prefixed_property(self, property):
        """Return ``<vendor>:<property>`` for this backend, or None."""
        vendor = self.capabilities.get('vendor_prefix')
        if property and vendor:
            return '%s:%s' % (vendor, property)
        return None

    def get_default_filter_function(self):
        """A driver's own filter expression when the operator sets none."""
        return None

    def get_default_goodness_function(self):
        """A driver's own goodness expression when the operator sets none."""
        return None

    def get_filter_function(self):
        """The configured ``filter_function``, else the driver default.

        None lets the scheduler pass this backend unconditionally.
        """
        return (self.configuration.safe_get('filter_function')
                or self.get_default_filter_function())

    def get_goodness_function(self):
        """The configured ``goodness_function``, else the driver default.

        None makes the scheduler give this backend the lowest score.
        """
        return (self.configuration.safe_get('goodness_function')
                or self.get_default_goodness_function())

    def get_pool(self, volume):
        """Name of the pool holding ``volume``, read from ``volume.host``."""
        return extract_pool(getattr(volume, 'host', None))

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
        """Create ``volume`` as a copy of ``src_vref``; return a model update."""
        raise NotImplementedError()

    def retype(self, context, volume, new_type, diff, host):
        """Change ``volume`` to ``new_type`` in place, if the backend can.

        Return ``(changed, model_update)``.  ``(False, None)`` asks the
        worker to retype by migrating the volume instead.
        """
        return False, None

    def migrate_volume(self, context, volume, host):
        """Move ``volume`` to ``host`` with backend means.

        ``host`` is ``{'host': name, 'capabilities': stats}``.  Return
        ``(moved, model_update)``; ``(False, None)`` makes the worker copy
        the data itself (generic migration).
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
        name_id = getattr(new_volume, '_name_id', None) or new_volume.id
        return {'_name_id': name_id,
                'provider_location': new_volume.provider_location}

    def before_volume_copy(self, context, src_vol, dest_vol, remote=None):
        """Hook run before the worker copies data during a migration."""

    def after_volume_copy(self, context, src_vol, dest_vol, remote=None):
        """Hook run after the worker copied data during a migration."""

    def update_provider_info(self, volumes, snapshots):
        """Report provider ids the backend changed since the last start.

        Return ``(volume_updates, snapshot_updates)``, lists of
        ``{'id': uuid, 'provider_id': value}``, or ``(None, None)``.
        """
        return None, None

    # -- exports and connections ------------------------------------------

    def create_export(self, context, volume, connector):
        """Export ``volume`` so ``connector`` can reach it.

        Return a model update (usually ``provider_location`` and
        ``provider_auth``) or None.
        """
        raise NotImplementedError()

    def ensure_export(self, context, volume):
        """Recreate an existing export after a restart; model update or None."""
        raise NotImplementedError()

    def remove_export(self, context, volume):
        """Remove the export of ``volume``; succeed if there is none."""
        raise NotImplementedError()

    def create_export_snapshot(self, context, snapshot, connector):
        """Export ``snapshot``; return a snapshot model update or None."""
        raise NotImplementedError()

    def remove_export_snapshot(self, context, snapshot):
        """Remove the export of ``snapshot``; succeed if there is none."""
        raise NotImplementedError()

    def initialize_connection(self, volume, connector):
        """Let ``connector`` reach ``volume``; return the connection info.

        ``connector`` is os-brick's description of the consumer
        (``initiator``, ``wwpns``, ``host``, ``multipath``...).  The result
        is ``{'driver_volume_type': <os-brick protocol>, 'data': {...}}``
        and is handed unchanged to os-brick on the consumer.
        """
        raise NotImplementedError()

    def terminate_connection(self, volume, connector, **kwargs):
        """Revoke ``connector``'s access; None as connector means everyone."""
        raise NotImplementedError()

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        """Like ``initialize_connection`` for a snapshot.

        The info may carry ``initiator_updates``: ``{'set_values': {...},
        'remove_values': [...]}`` for the worker to persist.
        """
        raise NotImplementedError()

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        """Revoke ``connector``'s access to ``snapshot``."""
        raise NotImplementedError()

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

    # -- images and backups -------------------------------------------------

    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        """Create ``volume`` from an image without copying it, if possible.

        Return ``(model_update, cloned)``; ``(None, False)`` makes the
        worker download the image instead.
        """
        return None, False

    def copy_image_to_volume(self, context, volume, image_service, image_id):
        """Write image ``image_id`` into ``volume``."""
        raise NotImplementedError()

    def copy_image_to_encrypted_volume(self, context, volume, image_service,
                                       image_id):
        """Write image ``image_id`` into the encrypted ``volume``."""
        raise NotImplementedError()

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        """Upload the content of ``volume`` as image ``image_meta['id']``."""
        raise NotImplementedError()

    def clear_download(self, context, volume):
        """Clean up after an interrupted image download into ``volume``."""

    def backup_use_temp_snapshot(self):
        """Whether backups of in-use volumes go through a temporary snapshot."""
        return False

    def snapshot_remote_attachable(self):
        """Whether a snapshot can be attached from another host."""
        return False

    def get_backup_device(self, context, backup):
        """Return ``(device, is_snapshot)``: what the backup service attaches."""
        raise NotImplementedError()

    def backup_volume(self, context, backup, backup_service):
        """Back ``backup.volume_id`` up through ``backup_service``."""
        raise NotImplementedError()

    def restore_backup(self, context, backup, volume, backup_service):
        """Restore ``backup`` into ``volume``."""
        raise NotImplementedError()

    def secure_file_operations_enabled(self):
        """Whether file operations run without root (file backends only)."""
        return False

    # -- groups ------------------------------------------------------------
    # NotImplementedError from these makes the worker handle the group's
    # volumes one by one (generic groups).

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
        'default': fail back to the primary).  All volumes and groups of the
        backend are passed so the driver can update the replicated ones.

        Return ``(active_backend_id, volume_update_list, group_update_list)``
        where the lists hold ``{'volume_id': id, 'updates': {...}}`` and
        ``{'group_id': id, 'updates': {...}}``; updates typically touch
        ``provider_location``, ``provider_auth``, ``provider_id`` and
        ``replication_status``.
        """
        raise NotImplementedError()

    def freeze_backend(self, context):
        """Note that the backend is frozen: no new resources, no changes.

        The worker enforces the freeze; drivers rarely need to act.
        Return True on success.
        """
        return True

    def thaw_backend(self, context):
        """Undo ``freeze_backend``; return True on success."""
        return True

    def get_replication_updates(self, context):
        """Legacy replication polling; nothing to report."""
        return []


class SnapshotVD(object):
    """Backends that take snapshots."""

    def create_snapshot(self, snapshot):
        """Snapshot ``snapshot.volume_id``; return a model update or None."""
        raise NotImplementedError()

    def delete_snapshot(self, snapshot):
        """Delete ``snapshot``; succeed if already gone."""
        raise NotImplementedError()

    def create_volume_from_snapshot(self, volume, snapshot):
        """Create ``volume`` holding the data of ``snapshot``.

        ``volume.size`` may exceed the snapshot's; return a model update.
        """
        raise NotImplementedError()

    def revert_to_snapshot(self, context, volume, snapshot):
        """Roll ``volume`` back to ``snapshot`` in place.

        Afterwards the volume has the snapshot's size.  NotImplementedError
        makes the worker revert by copying the snapshot's data.
        """
        raise NotImplementedError()


class ExtendVD(object):
    """Backends that grow volumes."""

    def extend_volume(self, volume, new_size):
        """Grow ``volume`` to ``new_size`` GiB; shrinking is refused."""
        raise NotImplementedError()


class LocalVD(object):
    """Backends whose volumes are reachable as paths on the worker host."""

    def local_path(self, volume):
        """Path of ``volume`` on this host."""
        raise NotImplementedError()


class ManageableVD(object):
    """Backends that adopt and release existing storage objects."""

    def manage_existing(self, volume, existing_ref):
        """Adopt the backend object ``existing_ref`` as ``volume``.

        ``existing_ref`` comes from the user untouched (e.g.
        ``{'source-name': ...}``); the driver renames the object or records
        where it is.  Raise ``ManageExistingInvalidReference`` when it names
        nothing usable and ``ManageExistingVolumeTypeMismatch`` when it does
        not fit the volume type.  Return a model update or None.
        """
        raise NotImplementedError()

    def manage_existing_get_size(self, volume, existing_ref):
        """Size in GiB, rounded up, of the object ``existing_ref`` names."""
        raise NotImplementedError()

    def get_manageable_volumes(self, cinder_volumes, marker, limit, offset,
                               sort_keys, sort_dirs):
        """List backend volumes, managed or not, for adoption.

        Each entry: ``reference`` (dict to pass to ``manage_existing``),
        ``size`` (GiB), ``safe_to_manage``, ``reason_not_safe``,
        ``cinder_id`` (if already managed) and ``extra_info``.
        ``cinder_volumes`` are the volumes already managed on this host;
        the paging arguments behave as in ``paginate_manageable``.
        """
        raise NotImplementedError()

    def unmanage(self, volume):
        """Stop managing ``volume`` without deleting its backend object."""
        raise NotImplementedError()


class ManageableSnapshotsVD(object):
    """Backends that adopt and release existing snapshots."""

    def manage_existing_snapshot(self, snapshot, existing_ref):
        """Adopt the backend snapshot ``existing_ref`` as ``snapshot``.

        Same rules as ``ManageableVD.manage_existing``.
        """
        raise NotImplementedError()

    def manage_existing_snapshot_get_size(self, snapshot, existing_ref):
        """Size in GiB, rounded up, of the snapshot ``existing_ref`` names."""
        raise NotImplementedError()

    def get_manageable_snapshots(self, cinder_snapshots, marker, limit,
                                 offset, sort_keys, sort_dirs):
        """List backend snapshots for adoption.

        Entries as for ``get_manageable_volumes`` plus
        ``source_reference``, the reference of the snapshot's volume.
        """
        raise NotImplementedError()

    def unmanage_snapshot(self, snapshot):
        """Stop managing ``snapshot`` without deleting it."""
        raise NotImplementedError()


class MigrateVD(object):
    """Backends that move volumes between hosts themselves."""

    def migrate_volume(self, context, volume, host):
        """See ``BaseVD.migrate_volume``; returns ``(moved, model_update)``."""
        raise NotImplementedError()


class CloneableImageVD(object):
    """Backends that create volumes from images without copying them."""

    def clone_image(self, context, volume, image_location, image_meta,
                    image_service):
        """See ``BaseVD.clone_image``; returns ``(model_update, cloned)``.

        ``image_location`` is specific to the image store; ``image_meta``
        carries at least ``id`` and ``disk_format``.
        """
        raise NotImplementedError()


class ConsistencyGroupVD(object):
    """Legacy consistency groups; new code uses the group calls of BaseVD.

    Return conventions match the group equivalents.
    """

    def create_consistencygroup(self, context, group):
        raise NotImplementedError()

    def create_consistencygroup_from_src(self, context, group, volumes,
                                         cgsnapshot=None, snapshots=None,
                                         source_cg=None, source_vols=None):
        raise NotImplementedError()

    def update_consistencygroup(self, context, group, add_volumes=None,
                                remove_volumes=None):
        raise NotImplementedError()

    def delete_consistencygroup(self, context, group, volumes):
        raise NotImplementedError()

    def create_cgsnapshot(self, context, cgsnapshot, snapshots):
        raise NotImplementedError()

    def delete_cgsnapshot(self, context, cgsnapshot, snapshots):
        raise NotImplementedError()


class ReplicaVD(object):
    """Per-volume replication calls of the first replication design.

    Each returns a model update with ``replication_status`` (one of
    'error', 'copying', 'active', 'active-stopped', 'inactive'),
    ``replication_extended_status`` and ``replication_driver_data``.
    """

    def get_replication_status(self, context, volume):
        raise NotImplementedError()

    def promote_replica(self, context, volume):
        """Stop replicating and make the replica the primary ('inactive')."""
        raise NotImplementedError()

    def reenable_replication(self, context, volume):
        """Resume replication, e.g. to resynchronise after a failback."""
        raise NotImplementedError()

    def create_replica_test_volume(self, volume, src_vref):
        """Create ``volume`` as a clone of the replica of ``src_vref``."""
        raise NotImplementedError()


class TransferVD(object):
    """Backends that must act when a volume changes owner."""

    def accept_transfer(self, context, volume, new_user, new_project):
        """Hand ``volume`` to ``new_user``/``new_project``; model update."""
        raise NotImplementedError()


class ProxyVD(object):
    """Marker for drivers that forward calls to another driver object.

    Such a driver exposes the real one as ``_get_driver()`` so callers can
    inspect its class.
    """

    def _get_driver(self):
        return getattr(self, 'driver', self)


class VolumeDriver(BaseVD, ConsistencyGroupVD, TransferVD, ManageableVD,
                   ExtendVD, CloneableImageVD, ManageableSnapshotsVD,
                   SnapshotVD, ReplicaVD, LocalVD, MigrateVD):
    """A driver with every capability slot, for drivers that fill many.

    BaseVD comes first so its generic answers (``clone_image``,
    ``migrate_volume``) stand in for the mixins' abstract ones.
    """


class ISCSIDriver(VolumeDriver):
    """Base of drivers exporting volumes as iSCSI targets.

    Two model fields carry the export:

    * ``provider_location``: ``"<ip>:<port>,<portal tag> <target iqn> <lun>"``;
      several portals are joined with ``;`` before the comma, e.g.
      ``"10.0.0.1:3260;10.0.1.1:3260,1 iqn.2010-10.org.openstack:volume-x 0"``.
    * ``provider_auth``: ``"<auth method> <username> <password>"``, CHAP only.
    """

    PROTOCOL = 'iSCSI'
    DRIVER_VOLUME_TYPE = 'iscsi'
    DEFAULT_LUN = 0

    def validate_connector(self, connector):
        self.validate_connector_has_setting(connector, 'initiator')

    def initialize_connection(self, volume, connector):
        """Return ``{'driver_volume_type': 'iscsi', 'data': props}``.

        ``props`` comes from ``_get_iscsi_properties``, multipath when the
        connector asks for it.
        """
        multipath = bool((connector or {}).get('multipath'))
        return {'driver_volume_type': self.DRIVER_VOLUME_TYPE,
                'data': self._get_iscsi_properties(volume, multipath)}

    def terminate_connection(self, volume, connector, **kwargs):
        """Nothing to revoke for a target open to every initiator."""

    def _get_iscsi_properties(self, volume, multipath=False):
        """Turn the volume's export fields into os-brick iSCSI properties.

        Keys: ``target_discovered`` (always False: the location is known),
        ``target_iqn``, ``target_portal``, ``target_lun``, ``volume_id``,
        ``discard``; with ``provider_auth`` also ``auth_method``,
        ``auth_username``, ``auth_password``; with several portals or
        ``multipath`` also ``target_iqns``, ``target_portals`` and
        ``target_luns``, one entry per portal.
        """
        location = getattr(volume, 'provider_location', None)
        if not location:
            raise exception.InvalidVolume(
                reason='volume %s has no provider_location; it must be '
                       'exported first' % volume.id)
        fields = location.split()
        if len(fields) < 2 or ',' not in fields[0]:
            raise exception.InvalidVolume(
                reason='malformed provider_location %r of volume %s'
                       % (location, volume.id))
        portals = fields[0].split(',', 1)[0].split(';')
        target_iqn = fields[1]
        try:
            target_lun = int(fields[2])
        except (IndexError, ValueError):
            target_lun = self.DEFAULT_LUN

        props = {
            'target_discovered': False,
            'target_iqn': target_iqn,
            'target_portal': portals[0],
            'target_lun': target_lun,
            'volume_id': volume.id,
            'discard': bool(self.configuration.safe_get(
                'report_discard_supported')),
        }
        if multipath or len(portals) > 1:
            props['target_portals'] = portals
            props['target_iqns'] = [target_iqn] * len(portals)
            props['target_luns'] = [target_lun] * len(portals)

        auth = getattr(volume, 'provider_auth', None)
        if auth:
            try:
                method, username, password = auth.split(None, 2)
            except ValueError:
                raise exception.InvalidVolume(
                    reason='malformed provider_auth of volume %s' % volume.id)
            props.update(auth_method=method, auth_username=username,
                         auth_password=password)
        return props

    def _iscsi_target_name(self, volume):
        """IQN of the target exporting ``volume``."""
        return '%s%s' % (self.configuration.target_prefix, volume.name)

    def _iscsi_location(self, target_iqn, target_lun, portal_tag=1):
        """Build a ``provider_location`` from the configured portals."""
        port = self.configuration.target_port
        addresses = [self.configuration.target_ip_address]
        addresses += self.configuration.safe_get(
            'target_secondary_ip_addresses') or []
        portals = ';'.join(_portal(address, port) for address in addresses)
        return '%s,%s %s %s' % (portals, portal_tag, target_iqn, target_lun)

    @staticmethod
    def _chap_auth(username, password):
        """Build a ``provider_auth`` string."""
        return 'CHAP %s %s' % (username, password)

    def _update_volume_stats(self):
        """Stats of a backend that cannot report capacity."""
        stats = self._base_stats(self.PROTOCOL)
        stats.update(total_capacity_gb='unknown', free_capacity_gb='unknown',
                     QoS_support=False)
        stats['pools'] = [{
            'pool_name': stats['volume_backend_name'],
            'total_capacity_gb': 'unknown',
            'free_capacity_gb': 'unknown',
            'reserved_percentage': stats['reserved_percentage'],
            'QoS_support': False,
        }]
        self._stats = stats


class ISERDriver(ISCSIDriver):
    """iSCSI over RDMA: same export fields, ``driver_volume_type`` 'iser'."""

    PROTOCOL = 'iSER'
    DRIVER_VOLUME_TYPE = 'iser'


class FibreChannelDriver(VolumeDriver):
    """Base of drivers exporting volumes over Fibre Channel."""

    PROTOCOL = 'FC'

    def validate_connector(self, connector):
        for setting in ('wwpns', 'wwnns'):
            self.validate_connector_has_setting(connector, setting)

    @staticmethod
    def _build_fc_connection_info(target_wwns, target_lun, connector=None,
                                  initiator_target_map=None, discard=False):
        """Connection info for os-brick's Fibre Channel connector.

        ``target_wwns`` is one WWN or a list.  Without an explicit
        ``initiator_target_map`` every initiator port of ``connector``
        (``wwpns``) is mapped to every target port.  Returns::

            {'driver_volume_type': 'fibre_channel',
             'data': {'target_discovered': False, 'target_lun': 1,
                      'target_wwn': ['5000...'], 'discard': False,
                      'initiator_target_map': {'1000...': ['5000...']}}}
        """
        wwns = ([target_wwns] if isinstance(target_wwns, str)
                else list(target_wwns))
        if initiator_target_map is None and connector:
            initiator_target_map = {initiator: list(wwns)
                                    for initiator in connector.get('wwpns', [])}
        data = {'target_discovered': False,
                'target_lun': target_lun,
                'target_wwn': wwns,
                'discard': discard}
        if initiator_target_map:
            data['initiator_target_map'] = initiator_target_map
        return {'driver_volume_type': 'fibre_channel', 'data': data}

    def _update_volume_stats(self):
        stats = self._base_stats(self.PROTOCOL)
        stats.update(total_capacity_gb='unknown', free_capacity_gb='unknown',
                     QoS_support=False, pools=[])
        self._stats = stats

