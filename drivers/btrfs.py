"""btrfs subvolume snapshots through their ioctls: every file of a subvolume at one instant.

A snapshot of a subvolume captures all its files atomically (btrfs flushes
their dirty data first), so a write lands either before it in every file
or after it in none: what a consistent group snapshot needs, with no
writer fenced. The file driver takes one, reflinks the members out of it
and destroys it.
"""

import ctypes
import fcntl
import os

# Inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).
SUBVOLUME_ROOT_INO = 256

# _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2) and
# _IOW(0x94, 15, struct btrfs_ioctl_vol_args); both structs are 4096 bytes.
_SNAP_CREATE_V2 = 0x50009417
_SNAP_DESTROY = 0x5000940f
_NAME_MAX = 255


class _VolArgsV2(ctypes.Structure):
    _fields_ = [('fd', ctypes.c_int64), ('transid', ctypes.c_uint64),
                ('flags', ctypes.c_uint64), ('unused', ctypes.c_uint64 * 4),
                ('name', ctypes.c_char * 4040)]


class _VolArgs(ctypes.Structure):
    _fields_ = [('fd', ctypes.c_int64), ('name', ctypes.c_char * 4088)]


def subvolume_root(path):
    """The root of the btrfs subvolume holding ``path``, or None when
    ``path`` is on no btrfs subvolume (another filesystem).

    A subvolume is a device of its own to ``stat``; its root is the highest
    directory of that device, and has inode 256.
    """
    path = os.path.realpath(path)
    dev = os.stat(path).st_dev
    while True:
        parent = os.path.dirname(path)
        if parent == path or os.stat(parent).st_dev != dev:
            break
        path = parent
    return path if os.stat(path).st_ino == SUBVOLUME_ROOT_INO else None


def _check_name(name):
    if '/' in name or name in ('.', '..') or len(name) > _NAME_MAX:
        raise ValueError('not a snapshot name: %r' % name)
    return name.encode()


def snapshot(subvolume, name):
    """Snapshot ``subvolume`` as ``<subvolume>/<name>``; returns its path.

    Raises OSError (ENOTTY/EINVAL on other filesystems, EEXIST, EPERM).
    """
    args = _VolArgsV2()
    args.name = _check_name(name)
    src = os.open(subvolume, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        args.fd = src
        fcntl.ioctl(src, _SNAP_CREATE_V2, args)
    finally:
        os.close(src)
    return os.path.join(subvolume, name)


def destroy(path):
    """Delete the snapshot (subvolume) at ``path``; absent is fine."""
    parent, name = os.path.split(path.rstrip('/'))
    args = _VolArgs()
    args.name = _check_name(name)
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _SNAP_DESTROY, args)
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)
