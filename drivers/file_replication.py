"""Replication of the file driver: each replicated volume also lives in every target's directory.

``replication_device = backend_id:NAME,path:DIR`` (one option per target)
names the targets; ``default`` is the primary, ``file_volume_dir``. The
active site (the driver's ``active_backend_id``, else ``default``) serves
the volumes. A volume whose type has ``replication_enabled='<is> True'`` is
copied into every configured target but the active one after each write
path the worker controls (create, copies, extend, revert, manage), so the
copies are in sync when the operation ends; the primary takes no copies
while the backend is failed over (it may be the site that failed) and is
brought up to date by the failback. Data consumers write between two syncs
reaches the targets at the next sync or failover.

``failover_host`` first copies each replicated volume from the active site
to the target when the active site can still be read (a planned failover
loses nothing; an unplanned one serves the target's last copy), then makes
the target's directory the driver's. Volumes that are not replicated have
no copy there: they are reported ``error`` (usable again after a failback
to the primary, where their file stayed). Snapshots are not replicated.
"""

import functools
import inspect
import json
import os

from oslo_log import log as logging

from drivers import common
from drivers import exception
from drivers import file_layout
from drivers import fileops

LOG = logging.getLogger(__name__)

FAILBACK_ID = 'default'
_VOLUME_MODE = 0o600


def is_replicated(volume):
    """True when the volume's type asks for replication."""
    try:
        volume_type = common.field(volume, 'volume_type')
    except Exception:  # no type loadable: not replicated
        return False
    if not volume_type:
        return False
    specs = common.field(volume_type, 'extra_specs') or {}
    value = str(specs.get('replication_enabled') or '')
    return value.strip().lower() in ('<is> true', 'true')


def replicated_write(method):
    """After ``method`` changed a volume's data, bring its copies in sync.

    The copies' model update (``replication_status``) is merged into the
    method's own; ``clone_image``'s ``(model_update, cloned)`` syncs only
    what it cloned.
    """
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        update, cloned = (result if isinstance(result, tuple)
                          else (result, True))
        if cloned:
            volume = signature.bind(self, *args, **kwargs).arguments['volume']
            sync = self._sync_replicas(volume)
            update = dict(update or {}, **sync) if sync else update
        return (update, cloned) if isinstance(result, tuple) else update
    return wrapper


class ReplicationMixin:
    """Sites, copies, failover and the ``ReplicaVD`` calls of FileVolumeDriver.

    Works on the driver's ``configuration``, ``_active_backend_id``,
    ``layout`` (the active site's directory) and copy settings.
    """

    # -- sites ---------------------------------------------------------------

    def _sites(self):
        """{backend_id: directory}: the primary (``default``) and targets."""
        sites = {FAILBACK_ID: self.configuration.file_volume_dir}
        for device in self.configuration.safe_get('replication_device') or []:
            backend_id, path = device.get('backend_id'), device.get('path')
            if not backend_id or not path or not os.path.isabs(path):
                raise exception.InvalidInput(
                    reason='replication_device needs backend_id:NAME,path:'
                           '/ABSOLUTE/DIR, not %r' % (dict(device),))
            if backend_id in sites:
                raise exception.InvalidInput(
                    reason='replication_device backend_id %r is used twice '
                           '(or is "default", the primary)' % backend_id)
            sites[backend_id] = path
        paths = [os.path.realpath(p) for p in sites.values()]
        if len(set(paths)) != len(paths):
            raise exception.InvalidInput(
                reason='replication targets must be directories of their '
                       'own: %s' % sites)
        return sites

    @property
    def _active_site(self):
        return self._active_backend_id or FAILBACK_ID

    def _active_directory(self):
        """The directory the driver serves volumes from (do_setup)."""
        sites = self._sites()
        if self._active_site not in sites:
            raise exception.InvalidInput(
                reason='the active backend %r is not a configured '
                       'replication_device (targets: %s)'
                       % (self._active_site, ', '.join(sorted(sites))))
        return sites[self._active_site]

    def _replica_layouts(self):
        """Layouts of the sites that take copies (targets but the active)."""
        return [self._site_layout(path)
                for backend_id, path in self._sites().items()
                if backend_id not in (FAILBACK_ID, self._active_site)]

    @staticmethod
    def _site_layout(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return file_layout.Layout(directory)

    def _replication_stats(self):
        sites = self._sites()
        targets = [b for b in sites if b != FAILBACK_ID]
        return {'replication_enabled': bool(targets),
                'replication_targets': targets,
                'replication_count': len(targets),
                'replication_type': 'sync',
                'active_backend_id': self._active_backend_id}

    # -- copies --------------------------------------------------------------

    def _copy_volume_to(self, volume, layout):
        src = self.local_path(volume)
        dst = layout.volume_path(self._volume_id(volume))
        fileops.clone_file(src, dst, os.stat(src).st_size, fileops.CLONE_COPY,
                           self._block_size, mode=_VOLUME_MODE)

    def _sync_replicas(self, volume):
        """Copy a replicated volume to every replica site; its model update."""
        if not is_replicated(volume):
            return None
        return self._sync_replicas_of(volume)

    def _sync_replicas_of(self, volume):
        for layout in self._replica_layouts():
            try:
                self._copy_volume_to(volume, layout)
            except OSError as exc:
                raise exception.VolumeBackendAPIException(
                    data='replicating volume %s to %s failed: %s'
                         % (volume.id, layout.directory, exc)) from exc
        return {'replication_status': 'enabled'}

    def _retype_replication(self, volume, new_type):
        """Copies made or removed for a volume changing type; its update."""
        if is_replicated({'volume_type': new_type}):
            return self._sync_replicas_of(volume)
        if is_replicated(volume):
            self._drop_replicas(volume)
            return {'replication_status': 'disabled'}
        return None

    def _drop_replicas(self, volume):
        """Remove a deleted volume's copies; a site that fails is logged."""
        for backend_id, path in self._sites().items():
            if backend_id == self._active_site or not os.path.isdir(path):
                continue
            try:
                replica = file_layout.Layout(path).volume_path(
                    self._volume_id(volume))
                if os.path.lexists(replica):
                    os.unlink(replica)
                fileops.remove_stale_temps(replica)
            except OSError as exc:
                LOG.warning('Copy of deleted volume %s left on %s: %s',
                            volume.id, backend_id, exc)

    def _replica_state(self, volume):
        """{site: 'in-sync' | 'missing' | 'stale'} for the replica sites."""
        size = os.stat(self.local_path(volume)).st_size
        state = {}
        for backend_id, path in self._sites().items():
            if backend_id in (FAILBACK_ID, self._active_site):
                continue
            try:
                st = os.stat(file_layout.Layout(path).volume_path(
                    self._volume_id(volume)))
                state[backend_id] = ('in-sync' if st.st_size == size
                                     else 'stale')
            except OSError:
                state[backend_id] = 'missing'
        return state

    # -- failover ------------------------------------------------------------

    def failover_host(self, context, volumes, secondary_id=None, groups=None):
        """Serve the volumes from target ``secondary_id`` (``default``: the
        primary; None: the first target that is not active).

        Returns ``(active_backend_id, volume_updates, group_updates)``.
        """
        sites = self._sites()
        targets = [b for b in sites if b != FAILBACK_ID]
        if not targets:
            raise exception.UnableToFailOver(
                reason='no replication_device is configured')
        if secondary_id is None:
            spare = [b for b in targets if b != self._active_site]
            secondary_id = spare[0] if spare else FAILBACK_ID
        if secondary_id not in sites:
            raise exception.InvalidReplicationTarget(
                reason='%r is not one of %s' % (secondary_id,
                                                ', '.join(sorted(sites))))
        target = self._site_layout(sites[secondary_id])
        # (Failing over again to where it is, after an interrupted failover,
        # checks the copies there and copies nothing.)
        planned = (target.directory != self.layout.directory and
                   os.access(self.layout.directory, os.R_OK | os.X_OK))
        updates = []
        for volume in volumes:
            updates.append({'volume_id': volume.id, 'updates': self._fail_one(
                volume, target, planned, secondary_id == FAILBACK_ID)})
        self._active_backend_id = (None if secondary_id == FAILBACK_ID
                                   else secondary_id)
        self.layout = target
        self.manageable.layout = target
        LOG.info('File backend %s now serves from %s (%s)', self.host,
                 target.directory, secondary_id)
        return secondary_id, updates, []

    def _fail_one(self, volume, target, planned, failback):
        """Bring one volume's copy on the target up to date; its update.

        A volume that is not replicated has no copy on a target; back on
        the primary, where it never left, it is usable again.
        """
        path = target.volume_path(self._volume_id(volume))
        if not is_replicated(volume):
            if failback and target.check_file(path, 'volume') is not None:
                return {'replication_status': 'disabled'}
            return {'status': 'error', 'replication_status': 'not-capable'}
        if planned:
            try:
                self._copy_volume_to(volume, target)
            except OSError as exc:
                LOG.warning('Volume %s: the last copy on %s is used (the '
                            'active site could not be read: %s)', volume.id,
                            target.directory, exc)
        if target.check_file(path, 'volume') is None:
            return {'status': 'error', 'replication_status': 'failover-error'}
        return {'replication_status': 'failed-over'}

    def failover(self, context, volumes, secondary_id=None, groups=None):
        """Active-active form: the same, then ``failover_completed``."""
        return self.failover_host(context, volumes, secondary_id, groups)

    def failover_completed(self, context, active_backend_id=None):
        """Another worker of the cluster failed over: serve from there too."""
        directory = self._sites()[active_backend_id or FAILBACK_ID]
        self._active_backend_id = (None if active_backend_id in
                                   (None, FAILBACK_ID) else active_backend_id)
        self.layout = self._site_layout(directory)
        self.manageable.layout = self.layout

    # -- the reference's per-volume calls (ReplicaVD) ------------------------

    def get_replication_status(self, context, volume):
        """``active`` when every target has a copy of the volume's size,
        ``error`` otherwise (``inactive`` while failed over)."""
        state = self._replica_state(volume)
        if self._active_backend_id:
            status = 'inactive'
        elif state and all(s == 'in-sync' for s in state.values()):
            status = 'active'
        else:
            status = 'error'
        return {'replication_status': status,
                'replication_extended_status': json.dumps(state,
                                                          sort_keys=True),
                'replication_driver_data': json.dumps(
                    {'active': self._active_site})}

    def promote_replica(self, context, volume):
        """Make the first target's copy the volume's data (a per-volume
        failover); replication stays on hold until ``reenable_replication``.
        """
        layouts = self._replica_layouts()
        if not layouts:
            raise exception.InvalidReplicationTarget(
                reason='no replica of volume %s to promote' % volume.id)
        replica = layouts[0].volume_path(self._volume_id(volume))
        if layouts[0].check_file(replica, 'volume') is None:
            raise exception.VolumeNotFound(volume_id=volume.id)
        fileops.clone_file(replica, self.local_path(volume),
                           os.stat(replica).st_size, fileops.CLONE_COPY,
                           self._block_size, mode=_VOLUME_MODE)
        return {'replication_status': 'inactive',
                'replication_extended_status': 'promoted from %s'
                                               % layouts[0].directory,
                'replication_driver_data': None}

    def reenable_replication(self, context, volume):
        """Copy the volume to its targets again."""
        for layout in self._replica_layouts():
            self._copy_volume_to(volume, layout)
        return self.get_replication_status(context, volume)

    def create_replica_test_volume(self, volume, src_vref):
        """``volume`` as a copy of the first target's copy of ``src_vref``."""
        layouts = self._replica_layouts()
        if not layouts:
            raise exception.InvalidReplicationTarget(
                reason='volume %s has no replica' % src_vref.id)
        replica = layouts[0].volume_path(self._volume_id(src_vref))
        if layouts[0].check_file(replica, 'volume') is None:
            raise exception.VolumeNotFound(volume_id=src_vref.id)
        self._clone(replica, self.local_path(volume), volume.size)
        return None
