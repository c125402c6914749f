"""Naming of the file driver's files, and paths confined to its directory.

Volume and snapshot files are named from ids only (``volume-<id>``,
``snapshot-<id>``), never from user-supplied names; every path handed out is
checked to stay inside the directory, and symbolic links are never followed.
"""

import os
import re
import stat

from drivers import exception

VOLUME_PREFIX = 'volume-'
SNAPSHOT_PREFIX = 'snapshot-'
UNMANAGED_PREFIX = 'unmanaged-'
VOLUME_MODE = 0o600
SNAPSHOT_MODE = 0o400  # read-only, and private like the volumes

# Ids are UUIDs in practice; anything that could climb out of a directory or
# hide as a dotfile is refused outright.
_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$')
_MANAGED_NAME_RE = re.compile(r'^(%s|%s)' % (VOLUME_PREFIX, SNAPSHOT_PREFIX))


def check_id(kind, value):
    """Return ``value`` as a string if it is safe to build a file name from."""
    text = value if isinstance(value, str) else str(value)
    if not _ID_RE.match(text):
        raise exception.InvalidInput(
            reason='%s id %r is not usable as a file name (letters, digits, '
                   '"-" and "_" only)' % (kind, value))
    return text


def is_managed_name(name):
    """True for names the driver gives its own volumes and snapshots."""
    return bool(_MANAGED_NAME_RE.match(name))


def id_from_name(name, prefix):
    """The id in ``<prefix><id>``, or None if ``name`` is not of that form."""
    if name.startswith(prefix) and _ID_RE.match(name[len(prefix):]):
        return name[len(prefix):]
    return None


class Layout:
    """Confined paths inside one (already resolved) volume directory."""

    def __init__(self, directory):
        self.directory = os.path.realpath(directory)

    def volume_path(self, volume_id):
        return self._own(VOLUME_PREFIX + check_id('volume', volume_id))

    def snapshot_path(self, snapshot_id):
        return self._own(SNAPSHOT_PREFIX + check_id('snapshot', snapshot_id))

    def unmanaged_path(self, path):
        return self._own(UNMANAGED_PREFIX + os.path.basename(path))

    def _own(self, name):
        path = os.path.join(self.directory, name)
        self.confine(path)
        return path

    def confine(self, path):
        """Raise unless ``path`` resolves to an entry of the directory."""
        resolved = os.path.realpath(path)
        if os.path.dirname(resolved) != self.directory:
            raise exception.InvalidInput(
                reason='%s resolves to %s, outside the volume directory %s'
                       % (path, resolved, self.directory))
        return resolved

    def check_file(self, path, kind):
        """lstat ``path``; None if absent, else refuse anything but a file."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise exception.InvalidVolume(
                reason='%s %s is a symbolic link; refusing to follow it'
                       % (kind, path))
        if not stat.S_ISREG(st.st_mode):
            raise exception.InvalidVolume(
                reason='%s %s is not a regular file' % (kind, path))
        return st

    def entries(self):
        """(name, lstat) of the directory's entries but dotfiles and dirs."""
        with os.scandir(self.directory) as listing:
            for entry in listing:
                if entry.name.startswith('.') or entry.is_dir(
                        follow_symlinks=False):
                    continue
                yield entry.name, entry.stat(follow_symlinks=False)

    def reference_path(self, existing_ref):
        """Path of the file a manage request's ``{'source-name': ...}`` names.

        The name must be a plain entry of the directory: no ``/``, no
        ``..``, not absolute, no NUL, not a dotfile, not a symbolic link,
        not named like a volume or snapshot the driver already manages.
        """
        def invalid(reason):
            return exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=reason)

        if not isinstance(existing_ref, dict) or 'source-name' not in \
                existing_ref:
            raise invalid('the reference must be {"source-name": <file '
                          'name in %s>}' % self.directory)
        name = existing_ref['source-name']
        if not isinstance(name, str) or not name:
            raise invalid('source-name must be a non-empty string')
        if '\0' in name:
            raise invalid('source-name contains a NUL byte')
        if '/' in name or name in ('.', '..'):
            raise invalid('source-name must be a file name inside %s, not a '
                          'path' % self.directory)
        if name.startswith('.'):
            raise invalid('hidden and temporary files cannot be managed')
        if is_managed_name(name):
            raise invalid('%s is named like a volume or snapshot this '
                          'backend already manages; rename it first' % name)
        path = os.path.join(self.directory, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise invalid('no file %s in %s' % (name, self.directory))
        if stat.S_ISLNK(st.st_mode):
            raise invalid('%s is a symbolic link; only regular files can be '
                          'managed' % name)
        if not stat.S_ISREG(st.st_mode):
            raise invalid('%s is not a regular file' % name)
        try:
            self.confine(path)
        except exception.InvalidInput as exc:
            raise invalid(str(exc))
        return path
