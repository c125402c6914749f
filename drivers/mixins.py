"""The optional capabilities (``*VD`` classes) and ``VolumeDriver``.

Import them from ``drivers.base``.  A capability class declares a group of
calls; what a backend cannot do raises ``NotImplementedError``, and calls the
reference says most drivers need not act on do nothing.
"""

from drivers import base_vd
from drivers import common
from drivers import generic


class SnapshotVD(object):
    """Backends that take snapshots."""

    def create_snapshot(self, snapshot):
        """Snapshot ``snapshot.volume_id``; return a model update or None."""
        raise NotImplementedError()

    def delete_snapshot(self, snapshot):
        """Delete ``snapshot``; succeed if already gone."""
        raise NotImplementedError()

    def create_volume_from_snapshot(self, volume, snapshot):
        """Create ``volume`` holding the data of ``snapshot``; model update.

        ``volume.size`` may exceed the snapshot's.  Generic: create the
        volume, attach the snapshot (``initialize_connection_snapshot``) and
        the volume here, copy (``drivers.generic``).
        """
        return generic.create_volume_by_copy(
            self, volume, snapshot, common.field(snapshot, 'volume_size'),
            snapshot=True)

    def revert_to_snapshot(self, context, volume, snapshot):
        """Roll ``volume`` back to ``snapshot`` in place.

        Afterwards the volume has the snapshot's size.  NotImplementedError:
        the backend cannot; the data has to be copied instead.
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
        ``{'source-name': ...}``); the driver renames the object after
        ``volume['name']`` or records where it is.  Raise
        ``ManageExistingInvalidReference`` when it names nothing usable and
        ``ManageExistingVolumeTypeMismatch`` when it does not fit the volume
        type.  Return a model update or None.
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
        """Release ``volume`` without deleting its backend object.

        Most drivers have nothing to do; some drop configuration of their
        own attached to the object.
        """


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
        """Release ``snapshot`` without deleting it; usually nothing to do."""


class MigrateVD(object):
    """Backends that move volumes between hosts themselves."""

    def migrate_volume(self, context, volume, host):
        """Move ``volume`` to ``host`` with backend means.

        ``host`` is ``{'host': name, 'capabilities': stats}``.  Return
        ``(moved, model_update)``; ``(False, None)``: not moved, the data
        has to be copied instead.
        """
        raise NotImplementedError()


class CloneableImageVD(object):
    """Backends that create volumes from images without copying them."""

    def clone_image(self, volume, image_location, image_id, image_meta,
                    image_service):
        """Create ``volume`` efficiently from an existing image.

        ``image_location`` is specific to the image store, ``image_id`` the
        image's id, ``image_meta`` its attributes (``disk_format``...).
        Return ``(model_update, cloned)``.  (``BaseVD.clone_image`` takes
        ``context`` first and no ``image_id``, as later Cinder does.)
        """
        raise NotImplementedError()


class ConsistencyGroupVD(object):
    """Legacy consistency groups; the group calls of BaseVD replace them.

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
        """Hand ``volume`` to ``new_user``/``new_project``; nothing by default.

        May return a model update.
        """


class ProxyVD(object):
    """Marker for drivers that forward calls to another driver object.

    Such a driver exposes the real one as ``_get_driver()`` so callers can
    inspect its class.
    """

    def _get_driver(self):
        return getattr(self, 'driver', self)


class VolumeDriver(ConsistencyGroupVD, TransferVD, ManageableVD, ExtendVD,
                   CloneableImageVD, ManageableSnapshotsVD, SnapshotVD,
                   ReplicaVD, LocalVD, MigrateVD, base_vd.BaseVD):
    """Every capability in one class, bases in the reference's order.

    The capability classes come before ``BaseVD``, and the calls below are
    this class's own, as in the reference: a name both define resolves to
    the definition here, else to the first capability class.  Unless noted,
    each raises ``NotImplementedError``.
    """

    def check_for_setup_error(self):
        """Raise if the driver cannot work; each driver says what to check."""
        raise NotImplementedError()

    def clear_download(self, context, volume):
        """Nothing to clean up by default."""

    def clone_image(self, volume, image_location, image_id, image_meta,
                    image_service):
        """``(None, False)``: not cloned, the image has to be copied."""
        return None, False

    def create_cgsnapshot(self, context, cgsnapshot, snapshots):
        raise NotImplementedError()

    def create_consistencygroup(self, context, group):
        raise NotImplementedError()

    def create_consistencygroup_from_src(self, context, group, volumes,
                                         cgsnapshot=None, snapshots=None,
                                         source_cg=None, source_vols=None):
        raise NotImplementedError()

    def create_export(self, context, volume, connector):
        raise NotImplementedError()

    def create_export_snapshot(self, context, snapshot, connector):
        raise NotImplementedError()

    def create_replica_test_volume(self, volume, src_vref):
        raise NotImplementedError()

    def create_snapshot(self, snapshot):
        raise NotImplementedError()

    def create_volume(self, volume):
        raise NotImplementedError()

    def create_volume_from_snapshot(self, volume, snapshot):
        """Generic, as ``SnapshotVD.create_volume_from_snapshot``."""
        return SnapshotVD.create_volume_from_snapshot(self, volume, snapshot)

    def delete_cgsnapshot(self, context, cgsnapshot, snapshots):
        raise NotImplementedError()

    def delete_consistencygroup(self, context, group, volumes):
        raise NotImplementedError()

    def delete_snapshot(self, snapshot):
        raise NotImplementedError()

    def delete_volume(self, volume):
        raise NotImplementedError()

    def ensure_export(self, context, volume):
        raise NotImplementedError()

    def extend_volume(self, volume, new_size):
        raise NotImplementedError()

    def get_manageable_snapshots(self, cinder_snapshots, marker, limit,
                                 offset, sort_keys, sort_dirs):
        raise NotImplementedError()

    def get_manageable_volumes(self, cinder_volumes, marker, limit, offset,
                               sort_keys, sort_dirs):
        raise NotImplementedError()

    def get_pool(self, volume):
        """As ``BaseVD.get_pool``: the pool part of the volume's host."""
        return base_vd.BaseVD.get_pool(self, volume)

    def initialize_connection(self, volume, connector, **kwargs):
        raise NotImplementedError()

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        raise NotImplementedError()

    def local_path(self, volume):
        raise NotImplementedError()

    def manage_existing(self, volume, existing_ref):
        raise NotImplementedError()

    def manage_existing_get_size(self, volume, existing_ref):
        raise NotImplementedError()

    def manage_existing_snapshot(self, snapshot, existing_ref):
        raise NotImplementedError()

    def manage_existing_snapshot_get_size(self, snapshot, existing_ref):
        raise NotImplementedError()

    def migrate_volume(self, context, volume, host):
        """``(False, None)``: not moved, the data has to be copied."""
        return False, None

    def promote_replica(self, context, volume):
        raise NotImplementedError()

    def reenable_replication(self, context, volume):
        raise NotImplementedError()

    def remove_export(self, context, volume):
        raise NotImplementedError()

    def remove_export_snapshot(self, context, snapshot):
        raise NotImplementedError()

    def retype(self, context, volume, new_type, diff, host):
        """``(False, None)``: not retyped in place; migrate instead."""
        return False, None

    def terminate_connection(self, volume, connector, **kwargs):
        """Nothing to revoke by default."""

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        """Nothing to revoke by default."""

    def unmanage(self, volume):
        """Nothing to do by default."""

    def unmanage_snapshot(self, snapshot):
        """Nothing to do by default."""

    def update_consistencygroup(self, context, group, add_volumes=None,
                                remove_volumes=None):
        raise NotImplementedError()
