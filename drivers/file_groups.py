"""Consistent group snapshots of the file driver, from one btrfs subvolume snapshot.

Writes reach a file volume from its consumers without passing through the
driver (tgtd writes the file itself; a local attachment is the file), so no
lock of the driver keeps them from landing between two members' reflinks.
A btrfs snapshot of the subvolume holding the volumes does: it captures
every member at the same instant, and the members' snapshot files are
reflinked out of it. Nothing is fenced and no consumer waits. On other
filesystems the driver has no consistent group snapshot (the worker then
refuses group types that ask for one) and leaves every other group call
to the worker's generic behaviour.
"""

import os

from oslo_log import log as logging

from drivers import btrfs
from drivers import common
from drivers import file_layout
from drivers import fileops

LOG = logging.getLogger(__name__)

SNAPSHOT_DIR_PREFIX = fileops.TEMP_PREFIX + 'group-snapshot-'


class GroupSnapshotMixin:
    """``create_group_snapshot`` for consistent-snapshot group types on btrfs."""

    def _probe_group_snapshots(self):
        """The subvolume whose snapshots serve consistent group snapshots,
        or None (not btrfs, or snapshots refused)."""
        try:
            root = btrfs.subvolume_root(self.layout.directory)
            if root is None:
                return None
            name = SNAPSHOT_DIR_PREFIX + 'probe-%d' % os.getpid()
            btrfs.destroy(os.path.join(root, name))
            btrfs.destroy(btrfs.snapshot(root, name))
        except OSError as exc:
            LOG.info('No consistent group snapshots in %s: %s',
                     self.layout.directory, exc)
            return None
        return root

    def create_group_snapshot(self, context, group_snapshot, snapshots):
        """Every member's snapshot as of one instant (btrfs only).

        Other group types are left to the worker (NotImplementedError), as
        is every group type off btrfs. A member whose file cannot be
        reflinked is reported ``error``, the others ``available``. Run
        again after a crash, every member is taken again from a new
        instant, so the set stays consistent.
        """
        if (not common.is_consistent_snapshot_group(group_snapshot) or
                self.group_subvolume is None):
            raise NotImplementedError()
        root = self.group_subvolume
        frozen = os.path.join(
            root, SNAPSHOT_DIR_PREFIX +
            file_layout.check_id('group snapshot', group_snapshot.id))
        btrfs.destroy(frozen)  # left by an interrupted run
        btrfs.snapshot(root, os.path.basename(frozen))
        updates = []
        try:
            for snapshot in snapshots:
                updates.append(self._member_from(frozen, root, snapshot))
        finally:
            btrfs.destroy(frozen)
        failed = any(u['status'] == 'error' for u in updates)
        return {'status': 'error' if failed else 'available'}, updates

    def _member_from(self, frozen, root, snapshot):
        live = self._snapshot_source_path(snapshot)
        source = os.path.join(frozen, os.path.relpath(live, root))
        dst = self.layout.snapshot_path(snapshot.id)
        try:
            if self.layout.check_file(dst, 'snapshot') is not None:
                os.unlink(dst)  # an earlier instant's
            size = os.stat(source).st_size
            fileops.clone_file(source, dst, size, fileops.CLONE_REFLINK,
                               self._block_size,
                               mode=file_layout.SNAPSHOT_MODE)
        except OSError as exc:
            LOG.warning('Group snapshot %s: member %s of volume %s not '
                        'taken: %s', snapshot.group_snapshot_id, snapshot.id,
                        snapshot.volume_id, exc)
            return {'id': snapshot.id, 'status': 'error'}
        self.manageable.record_source(dst, snapshot.volume_id)
        return {'id': snapshot.id, 'status': 'available'}
