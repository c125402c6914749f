"""Chunk I/O of the POSIX backup store: reads, all-zero checks, durable writes.

Chunk files are written past the page cache (``O_DIRECT``) where the
filesystem allows it: a backup is written once and rarely read, and a
buffered write costs a copy into the page cache now and the whole writeback
at the final flush. ``O_DIRECT`` needs the buffer, the offset and the length
aligned to the device's block: chunk buffers are page-aligned anonymous
maps (``aligned_buffer``), a length is padded with zeros to ``ALIGN`` and the
file cut back to its size. Data that is not in such a buffer (a compressed
chunk), or a filesystem that refuses ``O_DIRECT`` (tmpfs, some FUSE), is
written through the page cache as before.
"""

import errno
import mmap
import os

from drivers import fileops
from volume_worker import exception

# Bytes per read or write system call through the page cache: large enough
# to cost few calls, small enough for the cache (one 32 MiB buffered write is
# several times slower here).
IO_BLOCK = 1 << 20
# Alignment of direct I/O: a page, a multiple of every logical block size.
ALIGN = mmap.PAGESIZE

_O_DIRECT = getattr(os, 'O_DIRECT', 0)


def aligned_buffer(size):
    """A zero-filled, page-aligned, writable buffer of ``size`` bytes."""
    return mmap.mmap(-1, size)


class AlignedView:
    """A chunk's bytes at the start of an ``aligned_buffer``: ``view`` is
    the data, ``buffer`` the whole (padding room for direct writes)."""

    __slots__ = ('buffer', 'view')

    def __init__(self, buffer, view):
        self.buffer = buffer
        self.view = view


_ZEROS = {}


def is_zero(view):
    """True when every byte of ``view`` is zero (a memcmp, no hashing)."""
    size = len(view)
    zeros = _ZEROS.get(size)
    if zeros is None:
        # bytearray on the left: its comparison is one memcmp of the two
        # buffers (a memoryview's compares item by item, 20 times slower).
        zeros = _ZEROS[size] = bytearray(size)
    return zeros == view


def is_hole(fd, offset, size):
    """True when the range holds no data (a sparse file's hole)."""
    try:
        start = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        # ENXIO: only a hole remains; others: no hole information.
        return exc.errno == errno.ENXIO
    return start >= offset + size


def read_into(handle, fd, offset, view):
    """Fill ``view`` (a memoryview) from the volume at ``offset``."""
    size, done = len(view), 0
    while done < size:
        if fd is None:
            handle.seek(offset + done)
            n = handle.readinto(view[done:])
        else:
            n = os.preadv(fd, [view[done:done + IO_BLOCK]], offset + done)
        if not n:
            raise exception.BackupFailed(
                backup_id='-', reason='the volume ended at byte %d, before '
                                      '%d' % (offset + done, offset + size))
        done += n
    return view


def read_file(path, view, direct=False):
    """The file's bytes, read into ``view``; a memoryview of them.

    ``direct``: past the page cache, when ``view`` is a whole
    ``aligned_buffer`` with room for the length rounded up to ``ALIGN``
    (falls back to a cached read where the filesystem refuses).
    """
    fd = None
    if direct and _O_DIRECT:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    if fd is not None:
        try:
            length = os.fstat(fd).st_size
            padded = -(-length // ALIGN) * ALIGN
            if padded <= len(view):
                return _read_direct(fd, path, view, length, padded)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        length = os.fstat(fd).st_size
        if length > len(view):
            raise ValueError('%s has %d bytes, more than a chunk'
                             % (path, length))
        done = 0
        while done < length:
            n = os.preadv(fd, [view[done:min(length, done + IO_BLOCK)]],
                          done)
            if not n:
                raise ValueError('%s ended at byte %d' % (path, done))
            done += n
        return view[:length]
    finally:
        os.close(fd)


def _read_direct(fd, path, view, length, padded):
    done = 0
    while done < length:
        n = os.preadv(fd, [view[done:padded]], done)
        if not n:
            raise ValueError('%s ended at byte %d' % (path, done))
        done += n
    return view[:length]


def _runs(view):
    """``(start, end, all zero)`` of the runs of ``view``, by ``IO_BLOCK``:
    one memcmp per block, no more for data (it differs at once)."""
    runs, size = [], len(view)
    for start in range(0, size, IO_BLOCK):
        end = min(start + IO_BLOCK, size)
        zero = is_zero(view[start:end])
        if runs and runs[-1][2] == zero:
            runs[-1][1] = end
        else:
            runs.append([start, end, zero])
    return runs


def zero_range(fd, offset, size, punch):
    """Make ``size`` bytes at ``offset`` read as zeros (a hole when
    ``punch``: the file is a regular one)."""
    if punch:
        try:
            fileops.punch_hole(fd, offset, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                raise
    zeros = bytes(min(size, 4 << 20))
    end = offset + size
    while offset < end:
        offset += os.pwrite(fd, zeros[:end - offset], offset)


class VolumeWriter:
    """Writes restored chunks onto a volume, one write at a time.

    Two threads writing one file contend for its inode lock (the kernel
    spins on it: twice the CPU, no gain). Chunks in an ``AlignedView`` at
    aligned offsets go past the page cache through a second, ``O_DIRECT``
    descriptor of the same file when the filesystem or device takes it;
    the rest through ``fd``.
    """

    def __init__(self, fd, direct=True):
        from drivers import common
        self.fd = fd
        self._lock = common.native_lock()
        self._direct_fd = None
        if direct and _O_DIRECT:
            try:
                self._direct_fd = os.open('/proc/self/fd/%d' % fd,
                                          os.O_WRONLY | os.O_CLOEXEC |
                                          _O_DIRECT)
            except OSError:
                self._direct_fd = None

    def write(self, offset, data, zeros_there=False, punch=False):
        """Write ``data`` (bytes-like or ``AlignedView``) at ``offset``.

        Blocks of zeros in it are not written: skipped where the volume
        reads zeros already (``zeros_there``: a new volume), else zeroed
        (a hole punched when ``punch``, the volume being a file).
        """
        aligned = isinstance(data, AlignedView)
        view = data.view if aligned else memoryview(data)
        with self._lock:
            for start, end, zero in _runs(view):
                if zero:
                    if not zeros_there:
                        zero_range(self.fd, offset + start, end - start,
                                   punch)
                    continue
                run = view[start:end]
                if not (aligned and self._write_direct(offset + start, run)):
                    self._write_cached(offset + start, run)

    def _write_cached(self, offset, view):
        while view:
            written = os.pwrite(self.fd, view[:IO_BLOCK], offset)
            view, offset = view[written:], offset + written

    def _write_direct(self, offset, view):
        if (self._direct_fd is None or offset % ALIGN or
                len(view) % ALIGN):
            return False
        done = 0
        try:
            while done < len(view):
                done += os.pwrite(self._direct_fd, view[done:],
                                  offset + done)
        except OSError as exc:
            if exc.errno != errno.EINVAL or done:
                raise
            self.close()
            return False
        return True

    def close(self):
        if self._direct_fd is not None:
            os.close(self._direct_fd)
            self._direct_fd = None


class ChunkWriter:
    """Writes whole files durably, directly to the device when it can.

    ``direct``: try ``O_DIRECT`` for data in an ``AlignedView``; it turns
    itself off for good at the first refusal (``EINVAL``), so a filesystem
    without direct I/O costs one failed attempt.
    """

    def __init__(self, direct=True):
        self.direct = bool(direct and _O_DIRECT)

    def write(self, path, data, sync=True):
        """Write ``data`` (bytes-like, or an ``AlignedView``) as ``path``.

        ``sync``: flushed (``fdatasync``) before returning.
        """
        if isinstance(data, AlignedView):
            if self.direct and self._write_direct(path, data, sync):
                return
            data = data.view
        write_buffered(path, data, sync)

    def _write_direct(self, path, data, sync):
        size = len(data.view)
        padded = -(-size // ALIGN) * ALIGN
        if padded > len(data.buffer):
            return False
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC |
                         os.O_CLOEXEC | _O_DIRECT, 0o600)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct = False
            return False
        try:
            whole = memoryview(data.buffer)
            if padded > size:
                whole[size:padded] = bytes(padded - size)
            view = whole[:padded]
            done = 0
            while done < padded:
                try:
                    n = os.pwrite(fd, view[done:], done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL or done:
                        raise
                    self.direct = False
                    return False
                if n % ALIGN and done + n < padded:
                    raise OSError(errno.EIO, 'short direct write to %s'
                                  % path)
                done += n
            if padded > size:
                os.ftruncate(fd, size)
            if sync:
                os.fdatasync(fd)
            return True
        finally:
            os.close(fd)


def write_buffered(path, data, sync=True):
    """Write ``data`` as the file ``path`` through the page cache."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[:IO_BLOCK]):]
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def sync_files(directory, names):
    """Flush files written without ``sync``, once they are all written.

    (Flushing each as it is written stalls the pipeline on the disk's cache
    flushes; by the end most are written back already.)
    """
    for name in names:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
