"""Cloning, copying, growing and wiping sparse files, crash-safely.

Everything here works on paths the caller has already checked; it knows
nothing about volumes.  New files are always built under a temporary name in
the destination's directory, flushed, then renamed into place, so a crash or
an error never leaves a half-written file under the final name.
"""

import ctypes
import ctypes.util
import errno
import fcntl
import os
import secrets

# From <linux/fs.h>: _IOW(0x94, 9, int).
FICLONE = 0x40049409

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02

# errnos meaning "this filesystem (pair) cannot share extents", as opposed to
# a real I/O failure.
_NO_REFLINK_ERRNOS = frozenset(
    (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EXDEV,
     errno.ENOSYS, errno.EBADF))

CLONE_REFLINK = 'reflink'
CLONE_COPY = 'copy'

TEMP_PREFIX = '.tmp-'

_libc = None


def _fallocate():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                            use_errno=True)
        _libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int,
                                    ctypes.c_long, ctypes.c_long)
    return _libc.fallocate


def punch_hole(fd, offset, length):
    """Deallocate a byte range of a file; it reads back as zeros."""
    rc = _fallocate()(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE,
                      offset, length)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def fsync_dir(path):
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(final_path):
    """A fresh temporary name next to ``final_path`` (same filesystem)."""
    head, tail = os.path.split(final_path)
    return os.path.join(head, '%s%s-%s' % (TEMP_PREFIX, tail,
                                           secrets.token_hex(4)))


def remove_stale_temps(final_path):
    """Remove temporaries left by an earlier, interrupted build of a file."""
    head, tail = os.path.split(final_path)
    prefix = '%s%s-' % (TEMP_PREFIX, tail)
    for name in os.listdir(head):
        if name.startswith(prefix):
            try:
                os.unlink(os.path.join(head, name))
            except FileNotFoundError:
                pass


def reflink_fd(src_fd, dst_fd):
    """Make ``dst_fd`` share all of ``src_fd``'s extents (FICLONE)."""
    fcntl.ioctl(dst_fd, FICLONE, src_fd)


def probe_reflink(directory):
    """True when files in ``directory`` can be cloned by sharing extents."""
    src = temp_path_for(os.path.join(directory, 'reflink-probe-src'))
    dst = temp_path_for(os.path.join(directory, 'reflink-probe-dst'))
    try:
        with open(src, 'wb') as f:
            f.write(b'\xa5' * 65536)
            f.flush()
            os.fsync(f.fileno())
        with open(src, 'rb') as fs, open(dst, 'wb') as fd:
            try:
                reflink_fd(fs.fileno(), fd.fileno())
            except OSError as exc:
                if exc.errno in _NO_REFLINK_ERRNOS:
                    return False
                raise
        return True
    finally:
        for path in (src, dst):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def data_extents(fd, length):
    """Yield ``(offset, size)`` of the regions of ``fd`` that hold data.

    Holes are skipped with SEEK_DATA/SEEK_HOLE; a file (or device) that does
    not support them is reported as one data region.
    """
    offset = 0
    while offset < length:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:       # only a hole remains
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield offset, length - offset
                return
            raise
        if start >= length:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), length)
        yield start, end - start
        offset = end


def _copy_range(src_fd, dst_fd, offset, size, block_size, kernel_copy=True,
                throttle=None):
    """Copy ``size`` bytes at ``offset``; in-kernel when allowed and possible.

    ``copy_file_range`` on btrfs or XFS may share extents instead of copying
    them: callers that need independent blocks pass ``kernel_copy=False``.
    ``throttle.consume(n)`` paces the copy (``drivers.throttle``).
    """
    done = 0
    use_cfr = kernel_copy and hasattr(os, 'copy_file_range')
    while done < size:
        chunk = min(block_size, size - done)
        pos = offset + done
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(src_fd, dst_fd, chunk, pos, pos)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EOPNOTSUPP,
                                     errno.ENOSYS, errno.EINVAL):
                    raise
                use_cfr = False
                continue
            if n == 0:
                raise OSError(errno.EIO, 'source shorter than expected at '
                              'offset %d' % pos)
        else:
            buf = os.pread(src_fd, chunk, pos)
            if not buf:
                raise OSError(errno.EIO, 'source shorter than expected at '
                              'offset %d' % pos)
            n = os.pwrite(dst_fd, buf, pos)
        done += n
        if throttle is not None:
            throttle.consume(n)


def sparse_copy_fd(src_fd, dst_fd, length, block_size=4 << 20,
                   kernel_copy=True, throttle=None):
    """Copy the first ``length`` bytes, leaving the source's holes as holes.

    ``dst_fd`` must be a new, empty (or all-hole) regular file: ranges that
    are holes in the source are not written at all.
    """
    os.ftruncate(dst_fd, length)
    for offset, size in data_extents(src_fd, length):
        _copy_range(src_fd, dst_fd, offset, size, block_size, kernel_copy,
                    throttle)


_SHARING_DIRS = {}


def _may_share_extents(directory):
    """Whether an in-kernel copy into ``directory`` could share extents."""
    if directory not in _SHARING_DIRS:
        _SHARING_DIRS[directory] = probe_reflink(directory)
    return _SHARING_DIRS[directory]


def build_file(final_path, fill, size, mode=0o600):
    """Create ``final_path`` of ``size`` bytes atomically.

    ``fill(fd)`` writes the content into a temporary file (it may be None for
    an all-hole file); the file is then sized, flushed and renamed into place.
    On any error the temporary is removed and ``final_path`` is untouched.
    """
    tmp = temp_path_for(final_path)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                 mode)
    try:
        try:
            if fill is not None:
                fill(fd)
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(os.path.dirname(final_path))


def clone_file(src_path, dst_path, size, method, block_size=4 << 20,
               mode=0o600, throttle=None):
    """Build ``dst_path`` as a copy of ``src_path``, grown to ``size`` bytes.

    ``method`` is CLONE_REFLINK (share extents; instant, copy-on-write) or
    CLONE_COPY (sparse-aware byte copy, paced by ``throttle``).  The result
    never changes when the source is written afterwards, whichever method
    is used.
    """
    src_fd = os.open(src_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        src_size = os.fstat(src_fd).st_size
        if size < src_size:
            raise ValueError('cannot clone %d bytes into %d bytes'
                             % (src_size, size))

        def fill(dst_fd):
            if method == CLONE_REFLINK:
                reflink_fd(src_fd, dst_fd)
            else:
                # A copy means blocks of its own, even where reflinks exist.
                sparse_copy_fd(src_fd, dst_fd, src_size, block_size,
                               kernel_copy=not _may_share_extents(
                                   os.path.dirname(dst_path)),
                               throttle=throttle)

        build_file(dst_path, fill, size, mode=mode)
    finally:
        os.close(src_fd)


def grow_file(path, size):
    """Grow ``path`` to ``size`` bytes in place (the new tail is a hole)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        current = os.fstat(fd).st_size
        if size < current:
            raise ValueError('refusing to shrink %s from %d to %d bytes'
                             % (path, current, size))
        if size > current:
            os.ftruncate(fd, size)
            os.fsync(fd)
    finally:
        os.close(fd)


def zero_data(path, block_size=4 << 20):
    """Overwrite every allocated region of ``path`` with zeros and flush.

    Holes already read as zeros and are left alone.  On copy-on-write
    filesystems the zeros land in new blocks, so this scrubs nothing there.
    """
    zeros = bytes(block_size)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        length = os.fstat(fd).st_size
        for offset, size in list(data_extents(fd, length)):
            end = offset + size
            while offset < end:
                n = min(block_size, end - offset)
                offset += os.pwrite(fd, zeros[:n], offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def allocated_bytes(path):
    """Bytes the filesystem has allocated to ``path`` (not its length)."""
    return os.stat(path).st_blocks * 512
