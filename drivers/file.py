"""A volume driver keeping each volume as a sparse file in a local directory.

Snapshots and clones share extents (reflink) where the filesystem can, and
are sparse copies otherwise.  Volumes reach their consumers as local paths
(os-brick LOCAL) or as iSCSI LUNs exported by a userspace tgtd.
"""

import os

from oslo_config import cfg
from oslo_log import log as logging

from drivers import base
from drivers import exception
from drivers import file_export
from drivers import file_groups
from drivers import file_images
from drivers import file_layout
from drivers import file_manage
from drivers import file_replication
from drivers import fileops
from drivers import tgt

LOG = logging.getLogger(__name__)

GiB = 1 << 30

file_opts = [
    cfg.StrOpt('file_volume_dir', default='/var/lib/volume-worker/volumes',
               help='Directory holding this backend\'s volume and snapshot '
                    'files. It is created (mode 0700) if missing; one '
                    'directory is one pool.'),
    cfg.StrOpt('file_volume_clear', default='none', choices=['none', 'zero'],
               help='What to do with a volume\'s data before its file is '
                    'deleted: "none" just unlinks it (the filesystem frees '
                    'the blocks), "zero" overwrites the allocated ranges with '
                    'zeros first. Zeroing is skipped on reflink-capable '
                    'filesystems, where it would only write new blocks.'),
    cfg.StrOpt('file_clone_method', default='auto',
               choices=['auto', 'reflink', 'copy'],
               help='How snapshots and clones are made: "reflink" shares '
                    'extents (instant, needs btrfs or XFS with reflink), '
                    '"copy" makes a sparse copy, "auto" probes the directory '
                    'at start-up and uses reflink when it works.'),
    cfg.IntOpt('file_copy_block_size_mb', default=8, min=1, max=1024,
               help='Size of each read/write when data is copied rather '
                    'than reflinked.'),
    cfg.StrOpt('file_tgtadm_path', default='tgtadm',
               deprecated_for_removal=True,
               deprecated_reason='The driver speaks tgtd\'s control protocol '
                                 'itself (no CHAP secret in a process\'s '
                                 'arguments); no tgtadm executable is run.',
               help='Unused.'),
    cfg.IntOpt('file_tgt_control_port', default=0, min=0,
               help='Control port of the tgtd instance holding the exports '
                    '(tgtd/tgtadm -C N); 0 is the default instance.'),
]

# tgt accounts are global to a tgtd: one generated account per volume keeps
# volumes from sharing credentials and lets an unexport delete its account.
_SNAPSHOT_MODE = file_layout.SNAPSHOT_MODE
_VOLUME_MODE = file_layout.VOLUME_MODE


def list_opts():
    """Options of a file backend's section, for oslo-config-generator."""
    return [(base.SAMPLE_SECTION, list(file_opts))]


_os_errors_as_backend_errors = exception.os_errors_as_backend_errors


_replicated = file_replication.replicated_write


class FileVolumeDriver(file_replication.ReplicationMixin,
                       file_manage.ManageMixin, file_export.ExportMixin,
                       file_groups.GroupSnapshotMixin, base.ISCSIDriver):
    """Volumes as sparse files under ``file_volume_dir``.

    ``target_protocol`` picks the transport: ``local`` hands out the file's
    path, ``iscsi`` exports each volume as its own tgt target. With
    ``use_chap_auth`` each target is behind a CHAP account generated for its
    volume (``chap_username``/``chap_password`` are not used: tgt accounts
    are global, so shared ones could not be removed with a volume's
    export). ``report_discard_supported`` is passed on to consumers (tgt
    runs the LUNs thin, so UNMAP punches holes in the file). Volumes of
    replicated types keep copies in the ``replication_device`` targets
    (``file_replication``); after a failover the target's directory is the
    one served. Group snapshots of consistent-snapshot group types are
    taken from one btrfs subvolume snapshot (``file_groups``).

    Clustered (several workers of one backend), every worker must see the
    same ``file_volume_dir``: a shared filesystem (NFS, CephFS, ...), or
    one host with ``workers = N``.
    """

    VERSION = '1.0.0'
    SUPPORTS_ACTIVE_ACTIVE = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(file_opts)
        self.layout = None
        self.manageable = None
        self.clone_method = None
        self.tgt = None
        self.group_subvolume = None

    # -- set-up ------------------------------------------------------------

    @property
    def _protocol(self):
        return self.configuration.target_protocol

    @property
    def _block_size(self):
        return self.configuration.file_copy_block_size_mb << 20

    @_os_errors_as_backend_errors
    def do_setup(self, context):
        directory = self._active_directory()
        if not os.path.isabs(directory):
            raise exception.InvalidInput(
                reason='file_volume_dir must be an absolute path, not %r'
                       % directory)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.layout = file_layout.Layout(directory)
        self.manageable = file_manage.ManageableFiles(self.layout)
        self.clone_method = self._choose_clone_method()
        self.group_subvolume = self._probe_group_snapshots()
        if self._protocol == 'iscsi':
            self.tgt = tgt.TgtAdm(self.configuration.file_tgt_control_port)
        elif self._protocol != 'local':
            raise exception.InvalidInput(
                reason='the file driver exports through iscsi or local, not '
                       '%s' % self._protocol)
        LOG.info('File backend in %s: clones by %s, exports by %s',
                 self.layout.directory, self.clone_method, self._protocol)

    def _choose_clone_method(self):
        wanted = self.configuration.file_clone_method
        if wanted == 'copy':
            return fileops.CLONE_COPY
        if fileops.probe_reflink(self.layout.directory):
            return fileops.CLONE_REFLINK
        if wanted == 'reflink':
            raise exception.VolumeBackendAPIException(
                data='file_clone_method is reflink but %s does not support '
                     'reflinks (needs btrfs, or XFS made with reflink=1)'
                     % self.layout.directory)
        return fileops.CLONE_COPY

    def check_for_setup_error(self):
        if self.layout is None:
            raise exception.VolumeBackendAPIException(
                data='do_setup has not run')
        if not os.access(self.layout.directory, os.W_OK | os.X_OK):
            raise exception.VolumeBackendAPIException(
                data='volume directory %s is not writable'
                     % self.layout.directory)
        if self.tgt is not None:
            self.tgt.check_reachable()

    # -- naming ------------------------------------------------------------

    @staticmethod
    def _volume_id(volume):
        # After a generic migration a volume keeps its copy's backend object.
        return getattr(volume, 'name_id', None) or volume.id

    def local_path(self, volume):
        return self.layout.volume_path(self._volume_id(volume))

    def _existing_volume_path(self, volume):
        path = self.local_path(volume)
        if self.layout.check_file(path, 'volume') is None:
            raise exception.VolumeNotFound(volume_id=volume.id)
        return path

    def _existing_snapshot_path(self, snapshot):
        path = self.layout.snapshot_path(snapshot.id)
        if self.layout.check_file(path, 'snapshot') is None:
            raise exception.SnapshotNotFound(snapshot_id=snapshot.id)
        return path

    def get_pool(self, volume):
        return self._pool_name()

    def _pool_name(self):
        return (self.configuration.safe_get('volume_backend_name')
                or self.__class__.__name__)

    # -- volumes -----------------------------------------------------------

    def _already_built(self, path, size_bytes, kind):
        """True if an earlier attempt already produced ``path`` whole.

        Files only ever appear under their final name complete (they are
        built under a temporary name), so existence with the right size
        means done; any other size is a conflict, not something to clobber.
        """
        st = self.layout.check_file(path, kind)
        if st is None:
            fileops.remove_stale_temps(path)
            return False
        if st.st_size != size_bytes:
            raise exception.InvalidVolume(
                reason='%s already exists with %d bytes, expected %d'
                       % (path, st.st_size, size_bytes))
        return True

    @_replicated
    @_os_errors_as_backend_errors
    def create_volume(self, volume):
        path = self.local_path(volume)
        size = int(volume.size) * GiB
        if not self._already_built(path, size, 'volume'):
            fileops.build_file(path, None, size, mode=_VOLUME_MODE)
        return None

    @_os_errors_as_backend_errors
    def delete_volume(self, volume):
        path = self.local_path(volume)
        if self.tgt is not None and getattr(volume, 'provider_location',
                                            None):
            self._remove_iscsi_export(volume)
        st = self.layout.check_file(path, 'volume')
        if st is not None:
            self._clear(path)
            os.unlink(path)
            fileops.fsync_dir(self.layout.directory)
        fileops.remove_stale_temps(path)
        self._drop_replicas(volume)

    def _clear(self, path):
        if self.configuration.file_volume_clear != 'zero':
            return
        if self.clone_method == fileops.CLONE_REFLINK:
            LOG.warning('Not zeroing %s: on a copy-on-write filesystem the '
                        'zeros would land in new blocks', path)
            return
        fileops.zero_data(path, self._block_size)

    def _clone(self, src_path, dst_path, size_gb, mode=_VOLUME_MODE):
        size = int(size_gb) * GiB
        if self._already_built(dst_path, size, 'volume'):
            return
        src_size = os.stat(src_path).st_size
        if size < src_size:
            raise exception.InvalidInput(
                reason='cannot make a %d GiB volume from %s (%d bytes)'
                       % (size_gb, src_path, src_size))
        try:
            with self.throttle.copy():
                fileops.clone_file(src_path, dst_path, size,
                                   self.clone_method, self._block_size,
                                   mode=mode, throttle=self.throttle)
        except OSError as exc:
            raise exception.VolumeBackendAPIException(
                data='copying %s to %s failed: %s' % (src_path, dst_path, exc))

    @_replicated
    @_os_errors_as_backend_errors
    def create_cloned_volume(self, volume, src_vref):
        src = self._existing_volume_path(src_vref)
        self._clone(src, self.local_path(volume), volume.size)
        return None

    @_replicated
    @_os_errors_as_backend_errors
    def clone_image(self, volume, image_location, image_id, image_meta,
                    image_service):
        """A raw image stored on this filesystem, by reflink (file_images)."""
        return file_images.clone_raw_image(
            self.clone_method, self.local_path(volume), volume.size,
            image_location, dict(image_meta, id=image_id), _VOLUME_MODE)

    @_replicated
    @_os_errors_as_backend_errors
    def extend_volume(self, volume, new_size):
        path = self._existing_volume_path(volume)
        current = os.stat(path).st_size
        if int(new_size) * GiB < current:
            raise exception.InvalidInput(
                reason='volume %s is %d GiB; shrinking it to %s GiB is not '
                       'supported' % (volume.id, file_manage.size_gib(current),
                                      new_size))
        fileops.grow_file(path, int(new_size) * GiB)

    # -- snapshots -----------------------------------------------------------

    def _snapshot_source_path(self, snapshot):
        volume = getattr(snapshot, 'volume', None)
        volume_id = (self._volume_id(volume) if volume is not None
                     else snapshot.volume_id)
        return self.layout.volume_path(volume_id)

    @_os_errors_as_backend_errors
    def create_snapshot(self, snapshot):
        src = self._snapshot_source_path(snapshot)
        if self.layout.check_file(src, 'volume') is None:
            raise exception.VolumeNotFound(volume_id=snapshot.volume_id)
        dst = self.layout.snapshot_path(snapshot.id)
        size = os.stat(src).st_size
        if self._already_built(dst, size, 'snapshot'):
            return None
        try:
            fileops.clone_file(src, dst, size, self.clone_method,
                               self._block_size, mode=_SNAPSHOT_MODE)
        except OSError as exc:
            raise exception.VolumeBackendAPIException(
                data='snapshotting %s failed: %s' % (src, exc))
        self.manageable.record_source(dst, snapshot.volume_id)
        return None

    @_os_errors_as_backend_errors
    def delete_snapshot(self, snapshot):
        path = self.layout.snapshot_path(snapshot.id)
        if self.layout.check_file(path, 'snapshot') is not None:
            os.unlink(path)
            fileops.fsync_dir(self.layout.directory)
        fileops.remove_stale_temps(path)

    @_replicated
    @_os_errors_as_backend_errors
    def create_volume_from_snapshot(self, volume, snapshot):
        src = self._existing_snapshot_path(snapshot)
        self._clone(src, self.local_path(volume), volume.size)
        return None

    @_replicated
    @_os_errors_as_backend_errors
    def revert_to_snapshot(self, context, volume, snapshot):
        """Replace the volume's file by a clone of the snapshot, atomically.

        The result has the snapshot's size.  A volume exported over iSCSI is
        refused: tgtd would keep serving the replaced file.
        """
        path = self._existing_volume_path(volume)
        src = self._existing_snapshot_path(snapshot)
        if self.tgt is not None and self.tgt.find_target(
                self._target_iqn(volume)) is not None:
            raise exception.VolumeIsBusy(
                volume_name=os.path.basename(path),
                reason='it is exported over iSCSI; detach it before '
                       'reverting')
        try:
            fileops.clone_file(src, path, os.stat(src).st_size,
                               self.clone_method, self._block_size,
                               mode=_VOLUME_MODE)
        except OSError as exc:
            raise exception.VolumeBackendAPIException(
                data='reverting %s to %s failed: %s' % (path, src, exc))

    manage_existing = _replicated(file_manage.ManageMixin.manage_existing)
    # The generic data paths write into the volume too: its copies follow.
    restore_backup = _replicated(base.ISCSIDriver.restore_backup)
    copy_image_to_volume = _replicated(base.ISCSIDriver.copy_image_to_volume)

    def retype(self, context, volume, new_type, diff, host):
        """In place: only the copies change (replicated or not)."""
        return True, self._retype_replication(volume, new_type)

    @_os_errors_as_backend_errors
    def update_provider_info(self, volumes, snapshots):
        """``provider_id``: the name of the file holding each volume and
        snapshot (a migration or manage gives a volume another file).

        Resources whose file is missing are left alone.
        """
        def changed(resources, path_of, kind):
            out = []
            for resource in resources:
                path = path_of(resource)
                if self.layout.check_file(path, kind) is None:
                    continue
                name = os.path.basename(path)
                if getattr(resource, 'provider_id', None) != name:
                    out.append({'id': resource.id, 'provider_id': name})
            return out
        return (changed(volumes, self.local_path, 'volume'),
                changed(snapshots,
                        lambda s: self.layout.snapshot_path(s.id),
                        'snapshot'))

    # -- stats -------------------------------------------------------------

    @_os_errors_as_backend_errors
    def _update_volume_stats(self):
        fs = os.statvfs(self.layout.directory)
        total = fs.f_blocks * fs.f_frsize / GiB
        free = fs.f_bavail * fs.f_frsize / GiB
        provisioned = sum(
            st.st_size for name, st in self.layout.entries()
            if file_layout.is_managed_name(name)) / GiB
        storage_protocol = 'iSCSI' if self.tgt is not None else 'local'
        stats = self._base_stats(storage_protocol)
        stats.update(self._replication_stats())
        ratio = self._over_subscription_ratio(total, free, provisioned)
        capacity = {
            'total_capacity_gb': round(total, 2),
            'free_capacity_gb': round(free, 2),
            'provisioned_capacity_gb': round(provisioned, 2),
            'max_over_subscription_ratio': ratio,
            'thin_provisioning_support': True,
            'thick_provisioning_support': False,
            'reserved_percentage': stats['reserved_percentage'],
            'QoS_support': False,
            'multiattach': False,
            'clone_method': self.clone_method,
            'consistent_group_snapshot_enabled':
                self.group_subvolume is not None,
        }
        stats.update(capacity)
        stats['pools'] = [dict(capacity, pool_name=self._pool_name(),
                               location_info='file:%s'
                                             % self.layout.directory)]
        self._stats = stats

    def _over_subscription_ratio(self, total, free, provisioned):
        configured = self.configuration.max_over_subscription_ratio
        if configured != 'auto':
            return float(configured)
        # "auto": allow as much over-subscription as is already in place
        # per GiB really used, plus one, and never less than 1.
        used = total - free
        if used <= 0 or provisioned <= 0:
            return 1.0
        return round(max(1.0, 1.0 + provisioned / used), 2)

    def secure_file_operations_enabled(self):
        return False

    def backup_use_temp_snapshot(self):
        """In-use volumes are backed up from a snapshot: as cheap as a clone
        (a reflink, or a sparse copy), and it leaves the consumer's export
        alone."""
        return True

    def snapshot_remote_attachable(self):
        """Snapshots are attachable as local paths; not exported over iSCSI."""
        return self.tgt is None

