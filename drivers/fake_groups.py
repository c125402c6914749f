"""Groups, group snapshots and replication of the in-memory fake driver.

A mixin of ``drivers.fake.FakeDriver``: it works on the driver's own state
(``_volumes``, ``_snapshots``, ``_groups``, ``_lock``) and helpers.
"""

from oslo_log import log as logging

from drivers import exception

LOG = logging.getLogger(__name__)

# After failover_host('x') replication to the old primary is on hold; after
# a failback it runs again.
_PER_VOLUME_STATUS = {'failed-over': 'inactive', 'enabled': 'active'}


class GroupsAndReplication:
    """Group and replication operations over FakeDriver's in-memory state."""

    # -- groups --------------------------------------------------------------

    def _create_group(self, group):
        with self._lock:
            self._groups.setdefault(group.id, {'id': group.id})
        return {'status': 'available'}

    def _delete_group(self, group, volumes):
        updates = []
        for volume in volumes:
            try:
                self._member_fault(volume.id)
                self._delete_volume(volume.id)
                updates.append({'id': volume.id, 'status': 'deleted'})
            except exception.VolumeDriverException as error:
                LOG.warning('Group %s: volume %s not deleted: %s',
                            group.id, volume.id, error)
                updates.append({'id': volume.id, 'status': 'error_deleting'})
        failed = any(u['status'] != 'deleted' for u in updates)
        if not failed:
            with self._lock:
                self._groups.pop(group.id, None)
        return {'status': 'error_deleting' if failed else 'deleted'}, updates

    def _update_group(self, group, add_volumes, remove_volumes):
        with self._lock:
            self._groups.setdefault(group.id, {'id': group.id})
            for volume in add_volumes or []:
                self._volume_record(volume.id)['group_id'] = group.id
            for volume in remove_volumes or []:
                record = self._volumes.get(volume.id)
                if record is not None and record['group_id'] == group.id:
                    record['group_id'] = None
        return None, None, None

    def _create_group_from_src(self, group, volumes, snapshots, source_vols):
        self._create_group(group)
        updates = []
        for index, volume in enumerate(volumes):
            if snapshots:
                source = _source_of(volume, snapshots, 'snapshot_id', index)
            else:
                source = _source_of(volume, source_vols, 'source_volid',
                                    index)
            try:
                self._member_fault(volume.id)
                if snapshots:
                    self._volume_from_snapshot(volume, source)
                else:
                    self._clone_volume(volume, source)
            except exception.VolumeDriverException as error:
                LOG.warning('Group %s: copy %s failed: %s', group.id,
                            volume.id, error)
                updates.append({'id': volume.id, 'status': 'error'})
                continue
            with self._lock:
                self._volumes[volume.id]['group_id'] = group.id
            updates.append({'id': volume.id, 'status': 'available'})
        failed = any(u['status'] == 'error' for u in updates)
        return {'status': 'error' if failed else 'available'}, updates

    def _create_group_snapshot(self, group_snapshot, snapshots):
        updates = []
        for snapshot in snapshots:
            try:
                self._member_fault(snapshot.id)
                self._create_snapshot(snapshot)
                updates.append({'id': snapshot.id, 'status': 'available'})
            except exception.VolumeDriverException as error:
                LOG.warning('Group snapshot %s: snapshot %s failed: %s',
                            group_snapshot.id, snapshot.id, error)
                updates.append({'id': snapshot.id, 'status': 'error'})
        failed = any(u['status'] == 'error' for u in updates)
        return {'status': 'error' if failed else 'available'}, updates

    def _delete_group_snapshot(self, snapshots):
        updates = []
        for snapshot in snapshots:
            try:
                self._member_fault(snapshot.id)
            except exception.VolumeDriverException:
                updates.append({'id': snapshot.id,
                                'status': 'error_deleting'})
                continue
            with self._lock:
                self._snapshots.pop(snapshot.id, None)
            updates.append({'id': snapshot.id, 'status': 'deleted'})
        failed = any(u['status'] != 'deleted' for u in updates)
        return {'status': 'error_deleting' if failed else 'deleted'}, updates

    def create_group(self, context, group):
        return self._create_group(group)

    def delete_group(self, context, group, volumes):
        return self._delete_group(group, volumes)

    def update_group(self, context, group, add_volumes=None,
                     remove_volumes=None):
        return self._update_group(group, add_volumes, remove_volumes)

    def create_group_from_src(self, context, group, volumes,
                              group_snapshot=None, snapshots=None,
                              source_group=None, source_vols=None):
        return self._create_group_from_src(group, volumes, snapshots,
                                           source_vols)

    def create_group_snapshot(self, context, group_snapshot, snapshots):
        return self._create_group_snapshot(group_snapshot, snapshots)

    def delete_group_snapshot(self, context, group_snapshot, snapshots):
        return self._delete_group_snapshot(snapshots)

    def create_consistencygroup(self, context, group):
        return self._create_group(group)

    def create_consistencygroup_from_src(self, context, group, volumes,
                                         cgsnapshot=None, snapshots=None,
                                         source_cg=None, source_vols=None):
        return self._create_group_from_src(group, volumes, snapshots,
                                           source_vols)

    def update_consistencygroup(self, context, group, add_volumes=None,
                                remove_volumes=None):
        return self._update_group(group, add_volumes, remove_volumes)

    def delete_consistencygroup(self, context, group, volumes):
        return self._delete_group(group, volumes)

    def create_cgsnapshot(self, context, cgsnapshot, snapshots):
        return self._create_group_snapshot(cgsnapshot, snapshots)

    def delete_cgsnapshot(self, context, cgsnapshot, snapshots):
        return self._delete_group_snapshot(snapshots)

    # -- replication ---------------------------------------------------------

    def failover_host(self, context, volumes, secondary_id=None, groups=None):
        """Switch the active backend among ``replication_device`` targets.

        'default' fails back to the primary and is returned as the active id.
        Volumes unknown to the backend are reported in 'error'.
        """
        targets = [t['backend_id'] for t in self._replication_targets()]
        if not targets:
            raise exception.UnableToFailOver(
                reason='no replication_device is configured')
        with self._lock:
            if secondary_id == 'default':
                self._active_backend_id = None
                new_active, status = 'default', 'enabled'
            else:
                if secondary_id is None:
                    spare = [t for t in targets if t != self._active_backend_id]
                    secondary_id = (spare or targets)[0]
                if secondary_id not in targets:
                    raise exception.InvalidReplicationTarget(
                        reason='%r is not one of %s' % (secondary_id, targets))
                self._active_backend_id = new_active = secondary_id
                status = 'failed-over'
            volume_updates = []
            for volume in volumes:
                record = self._volumes.get(volume.id)
                if record is None:
                    updates = {'status': 'error', 'replication_status': 'error'}
                else:
                    record['replication_status'] = status
                    updates = {'replication_status': status}
                volume_updates.append({'volume_id': volume.id,
                                       'updates': updates})
        group_updates = [{'group_id': g.id,
                          'updates': {'replication_status': status}}
                         for g in groups or []]
        return new_active, volume_updates, group_updates

    @property
    def active_backend_id(self):
        return self._active_backend_id

    @property
    def frozen(self):
        return self._frozen

    def freeze_backend(self, context):
        self._frozen = True
        return True

    def thaw_backend(self, context):
        self._frozen = False
        return True

    def _set_replication_status(self, volume, status):
        with self._lock:
            self._volume_record(volume.id)['replication_status'] = status
        return {'replication_status': status,
                'replication_extended_status': None,
                'replication_driver_data': self._active_backend_id}

    def get_replication_status(self, context, volume):
        """The status in the per-volume design's terms (see ReplicaVD)."""
        with self._lock:
            status = self._volume_record(volume.id)['replication_status']
        # failover_host records the backend-wide design's statuses.
        status = _PER_VOLUME_STATUS.get(status, status)
        if status is None:
            status = 'active' if self._replication_targets() else 'error'
        return {'replication_status': status,
                'replication_extended_status': None,
                'replication_driver_data': self._active_backend_id}

    def promote_replica(self, context, volume):
        return self._set_replication_status(volume, 'inactive')

    def reenable_replication(self, context, volume):
        return self._set_replication_status(volume, 'active')


def _source_of(volume, sources, attribute, index):
    """The source object of ``volume``: by its id attribute, else by position."""
    wanted = getattr(volume, attribute, None)
    for source in sources or []:
        if wanted and source.id == wanted:
            return source
    if wanted or not sources or index >= len(sources):
        raise exception.InvalidInput(
            reason='no source given for volume %s' % volume.id)
    return sources[index]
