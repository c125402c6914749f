"""Adopting and releasing files the file driver did not create.

Lists the directory's files for "manage existing", renames a foreign file
into the driver's naming (adopt) and out of it (release), and remembers
which volume a snapshot file came from in an extended attribute.
"""

import math
import os
import stat

from oslo_log import log as logging

from drivers import common
from drivers import exception
from drivers import file_layout
from drivers import fileops

LOG = logging.getLogger(__name__)

GiB = 1 << 30
SOURCE_XATTR = 'user.volume_worker.source_volume'

_SNAPSHOT_NAME_PREFIXES = (
    file_layout.SNAPSHOT_PREFIX,
    file_layout.UNMANAGED_PREFIX + file_layout.SNAPSHOT_PREFIX)


def size_gib(size_bytes):
    """Bytes to whole GiB, rounded up."""
    return int(math.ceil(size_bytes / GiB))


class ManageableFiles:
    """Manage/unmanage operations on the files of one Layout."""

    def __init__(self, layout):
        self.layout = layout

    # -- snapshot provenance ---------------------------------------------

    @staticmethod
    def record_source(path, volume_id):
        """Remember a snapshot's volume (best effort: xattrs may be off)."""
        try:
            if volume_id is None:
                os.removexattr(path, SOURCE_XATTR, follow_symlinks=False)
            else:
                os.setxattr(path, SOURCE_XATTR, str(volume_id).encode(),
                            follow_symlinks=False)
        except OSError as exc:
            LOG.debug('Source xattr of %s not updated: %s', path, exc)

    @staticmethod
    def source_of(path):
        try:
            return os.getxattr(path, SOURCE_XATTR,
                               follow_symlinks=False).decode()
        except OSError:
            return None

    def looks_like_snapshot(self, name):
        if name.startswith(file_layout.VOLUME_PREFIX):
            return False
        if name.startswith(_SNAPSHOT_NAME_PREFIXES):
            return True
        return self.source_of(
            os.path.join(self.layout.directory, name)) is not None

    # -- adopt / release -------------------------------------------------

    def size_of(self, existing_ref):
        return size_gib(
            os.stat(self.layout.reference_path(existing_ref)).st_size)

    def adopt(self, existing_ref, dst, mode, source_volume_id=None):
        """Rename the referenced file to ``dst``, rounded up to whole GiB.

        Run again after it succeeded (the reference gone, ``dst`` there),
        it is done: ``dst`` is named after the new volume or snapshot, so
        only an earlier run of this same call can have made it.
        """
        name = (existing_ref or {}).get('source-name') \
            if isinstance(existing_ref, dict) else None
        if (isinstance(name, str) and name and '/' not in name
                and self.layout.check_file(dst, 'target') is not None
                and not os.path.lexists(os.path.join(self.layout.directory,
                                                     name))):
            return
        src = self.layout.reference_path(existing_ref)
        if self.layout.check_file(dst, 'target') is not None:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason='%s already exists' % os.path.basename(dst))
        size = os.stat(src).st_size
        if size % GiB:
            # Consumers see whole GiB; the added tail is a hole.
            fileops.grow_file(src, size_gib(size) * GiB)
        os.chmod(src, mode)
        self.record_source(src, source_volume_id)
        os.rename(src, dst)
        fileops.fsync_dir(self.layout.directory)

    def release(self, path, kind):
        """Rename ``path`` to ``unmanaged-<name>``; done already is fine."""
        target = self.layout.unmanaged_path(path)
        if self.layout.check_file(path, kind) is None:
            if self.layout.check_file(target, kind) is not None:
                return
            raise exception.InvalidInput(
                reason='%s %s does not exist' % (kind, path))
        if os.path.lexists(target):
            raise exception.InvalidInput(
                reason='cannot unmanage %s: %s already exists'
                       % (path, target))
        os.rename(path, target)
        fileops.fsync_dir(self.layout.directory)

    # -- listings --------------------------------------------------------

    def volumes(self, managed_ids):
        """Entries for every non-snapshot file, managed ones included."""
        return self._entries(managed_ids, file_layout.VOLUME_PREFIX,
                             lambda name: not self.looks_like_snapshot(name))

    def snapshots(self, managed_ids):
        """Entries for snapshot files, with their ``source_reference``."""
        entries = self._entries(managed_ids, file_layout.SNAPSHOT_PREFIX,
                                self.looks_like_snapshot)
        for entry in entries:
            source = self.source_of(os.path.join(
                self.layout.directory, entry['reference']['source-name']))
            entry['source_reference'] = (
                {'source-name': file_layout.VOLUME_PREFIX + source}
                if source else None)
        return entries

    def _entries(self, managed_ids, own_prefix, wanted):
        entries = []
        for name, st in self.layout.entries():
            if not wanted(name):
                continue
            entry = self._describe(name, st)
            own_id = file_layout.id_from_name(name, own_prefix)
            if own_id is not None and own_id in managed_ids:
                entry.update(safe_to_manage=False,
                             reason_not_safe='already managed',
                             cinder_id=own_id)
            elif entry['safe_to_manage'] and file_layout.is_managed_name(name):
                entry.update(safe_to_manage=False,
                             reason_not_safe='named like a managed volume or '
                                             'snapshot; rename it to manage '
                                             'it')
            entries.append(entry)
        return entries

    @staticmethod
    def _describe(name, st):
        entry = {'reference': {'source-name': name},
                 'size': size_gib(st.st_size), 'safe_to_manage': True,
                 'reason_not_safe': None, 'cinder_id': None,
                 'extra_info': 'allocated %d MiB' % (st.st_blocks * 512 >> 20)}
        if stat.S_ISLNK(st.st_mode):
            entry.update(safe_to_manage=False, size=0,
                         reason_not_safe='symbolic link')
        elif not stat.S_ISREG(st.st_mode):
            entry.update(safe_to_manage=False, size=0,
                         reason_not_safe='not a regular file')
        return entry


class ManageMixin:
    """The file driver's manage/unmanage calls, over its ``manageable``
    (a ManageableFiles), ``layout`` and ``local_path``."""

    @exception.os_errors_as_backend_errors
    def manage_existing_get_size(self, volume, existing_ref):
        return self.manageable.size_of(existing_ref)

    @exception.os_errors_as_backend_errors
    def manage_existing(self, volume, existing_ref):
        """Rename the file to ``volume-<id>``, grown to whole GiB."""
        self.manageable.adopt(existing_ref, self.local_path(volume),
                              file_layout.VOLUME_MODE)
        return None

    @exception.os_errors_as_backend_errors
    def manage_existing_snapshot_get_size(self, snapshot, existing_ref):
        return self.manageable.size_of(existing_ref)

    @exception.os_errors_as_backend_errors
    def manage_existing_snapshot(self, snapshot, existing_ref):
        """Rename the file to ``snapshot-<id>``, read-only."""
        self.manageable.adopt(existing_ref,
                              self.layout.snapshot_path(snapshot.id),
                              file_layout.SNAPSHOT_MODE,
                              source_volume_id=snapshot.volume_id)
        return None

    @exception.os_errors_as_backend_errors
    def unmanage(self, volume):
        """Keep the file, renamed ``unmanaged-volume-<id>``."""
        self.manageable.release(self.local_path(volume), 'volume')

    @exception.os_errors_as_backend_errors
    def unmanage_snapshot(self, snapshot):
        """Keep the file, renamed ``unmanaged-snapshot-<id>``."""
        self.manageable.release(self.layout.snapshot_path(snapshot.id),
                                'snapshot')

    @exception.os_errors_as_backend_errors
    def get_manageable_volumes(self, cinder_volumes, marker, limit, offset,
                               sort_keys, sort_dirs):
        managed = {str(self._volume_id(v)) for v in cinder_volumes}
        return common.paginate_manageable(self.manageable.volumes(managed),
                                        marker, limit, offset, sort_keys,
                                        sort_dirs)

    @exception.os_errors_as_backend_errors
    def get_manageable_snapshots(self, cinder_snapshots, marker, limit,
                                 offset, sort_keys, sort_dirs):
        managed = {str(s.id) for s in cinder_snapshots}
        return common.paginate_manageable(self.manageable.snapshots(managed),
                                        marker, limit, offset, sort_keys,
                                        sort_dirs)
