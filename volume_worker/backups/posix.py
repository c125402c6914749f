"""Backups kept as files: one directory per backup, its chunks and a metadata file.

Layout under ``[backup] posix_path``::

    <volume id>/<backup id>/chunk-000000    compressed chunk 0 (absent: zeros,
                                            or kept by an ancestor)
    <volume id>/<backup id>/metadata.json   written last: a backup without it
                                            is incomplete

A volume is read in chunks of ``chunk_size`` bytes. Each chunk's sha256 is
recorded; a chunk of zeros is stored as nothing; an incremental backup
stores only the chunks whose hash differs from its parent's and refers to
the ancestor that holds each of the others (``stored_in``). A restore
checks every chunk's hash before it writes it. Hashing, compression and
the chunk files' I/O run in native threads, several chunks at a time.
"""

import datetime
import errno
import json
import os
import shutil
import stat

from oslo_log import log as logging

from drivers import fileops
from volume_worker import exception
from volume_worker.backups import codec
from volume_worker.backups import pipeline

LOG = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Bytes per read or write system call: large enough to cost few calls, small
# enough for the page cache (one 32 MiB write is several times slower here).
IO_BLOCK = 1 << 20
METADATA = 'metadata.json'
CHUNK = 'chunk-%06d'
GiB = 1 << 30


class PosixBackupService:
    """The backup service drivers are handed, for one operation.

    ``throttle`` (``drivers.throttle.Throttle``) paces the reads and
    writes; ``progress`` is called with the bytes of each chunk done;
    ``volume_is_new``: the restore target reads as zeros already, so
    zero chunks need no writing.
    """

    def __init__(self, path, chunk_size=32 << 20, compression=None,
                 workers=2, throttle=None, progress=None,
                 volume_is_new=False):
        if chunk_size <= 0 or chunk_size % 4096:
            raise ValueError('chunk size must be a positive multiple of '
                             '4096, not %r' % chunk_size)
        self.path = path
        self.chunk_size = chunk_size
        self.compression = compression or codec.best_available()
        codec.check_available(self.compression)
        self.workers = max(1, workers)
        self.throttle = throttle
        self.progress = progress or (lambda nbytes: None)
        self.volume_is_new = volume_is_new
        self.result = None  # summary of the last backup() call

    # -- where things are ------------------------------------------------------

    @staticmethod
    def container_of(backup):
        return '%s/%s' % (backup.volume_id, backup.id)

    def _directory(self, volume_id, backup_id):
        return os.path.join(self.path, volume_id, backup_id)

    def metadata(self, backup):
        """The metadata of a complete backup; BackupFailed if there is none."""
        path = os.path.join(self._directory(backup.volume_id, backup.id),
                            METADATA)
        try:
            with open(path) as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise exception.BackupFailed(
                backup_id=backup.id,
                reason='the backup store has no complete copy of it (%s '
                       'missing)' % path) from None
        except ValueError as exc:
            raise exception.BackupFailed(
                backup_id=backup.id,
                reason='its metadata is unreadable: %s' % exc) from None
        if meta.get('version') != FORMAT_VERSION:
            raise exception.BackupFailed(
                backup_id=backup.id,
                reason='metadata format %r is not %d'
                       % (meta.get('version'), FORMAT_VERSION))
        return meta

    # -- backup ------------------------------------------------------------------

    def backup(self, backup, volume_file, parent=None):
        """Store the bytes of ``volume_file`` as ``backup``; returns a summary.

        ``parent`` (or ``backup.parent_id``'s backup): store only the chunks
        that differ from it.
        """
        length = _length_of(volume_file)
        inherited = {}
        chunk_size = self.chunk_size
        if parent is None and getattr(backup, 'parent_id', None):
            parent = _Ref(backup.volume_id, backup.parent_id)
        if parent is not None:
            parent_meta = self.metadata(parent)
            inherited = {c['index']: c for c in parent_meta['chunks']}
            # Chunks are compared by index: the parent's size rules.
            chunk_size = parent_meta['chunk_size']
        directory = self._directory(backup.volume_id, backup.id)
        os.makedirs(directory, exist_ok=True)
        fd = _fileno(volume_file)
        count = (length + chunk_size - 1) // chunk_size
        chunks = [None] * count
        with pipeline.throttled(self.throttle), pipeline.Workers(self.workers) as workers:
            buffers = pipeline.Buffers(workers.limit + 1, chunk_size)
            for index in range(count):
                offset = index * chunk_size
                size = min(chunk_size, length - offset)
                if fd is not None and _is_hole(fd, offset, size):
                    chunks[index] = _zero_entry(index, offset, size)
                    self.progress(size)
                    continue
                buffer = buffers.take()
                try:
                    data = _read(volume_file, fd, offset,
                                 memoryview(buffer)[:size])
                except BaseException:
                    buffers.give(buffer)
                    raise
                if self.throttle is not None:
                    self.throttle.consume(size)
                workers.submit(index, self._store_chunk, directory,
                               backup.id, index, offset, data,
                               inherited.get(index), buffers, buffer)
                for key, entry in workers.results():
                    chunks[key] = entry
                    self.progress(entry['length'])
            for key, entry in workers.results(wait_all=True):
                chunks[key] = entry
                self.progress(entry['length'])
        own = [c for c in chunks if c['stored_in'] == backup.id]
        _sync_files(directory, [CHUNK % c['index'] for c in own])
        meta = {
            'version': FORMAT_VERSION, 'backup_id': backup.id,
            'volume_id': backup.volume_id,
            'parent_id': parent.id if parent is not None else None,
            'size_bytes': length, 'chunk_size': chunk_size,
            'created_at': datetime.datetime.now(
                datetime.timezone.utc).isoformat(),
            'chunks': chunks,
        }
        _write_atomically(os.path.join(directory, METADATA),
                          json.dumps(meta, sort_keys=True).encode())
        self.result = {
            'container': self.container_of(backup),
            'object_count': len(own),
            'stored_bytes': sum(c['stored_length'] for c in own),
        }
        LOG.info('Backup %s of volume %s: %d chunks, %d stored (%d bytes)',
                 backup.id, backup.volume_id, count, len(own),
                 self.result['stored_bytes'])
        return self.result

    def _store_chunk(self, directory, backup_id, index, offset, data, parent,
                     buffers, buffer):
        try:
            return self._encode_chunk(directory, backup_id, index, offset,
                                      data, parent)
        finally:
            buffers.give(buffer)

    def _encode_chunk(self, directory, backup_id, index, offset, data,
                      parent):
        digest = codec.sha256(data)
        if digest == _zero_digest(len(data)):
            return _zero_entry(index, offset, len(data))
        if (parent is not None and parent['sha256'] == digest and
                parent['length'] == len(data)):
            return dict(parent)
        name, packed = codec.compress(self.compression, data)
        _write_file(os.path.join(directory, CHUNK % index), packed,
                    sync=False)
        return {'index': index, 'offset': offset, 'length': len(data),
                'sha256': digest, 'stored_in': backup_id, 'codec': name,
                'stored_length': len(packed)}

    # -- restore -------------------------------------------------------------------

    def restore(self, backup, volume_id, volume_file):
        """Write the backup onto ``volume_file``, each chunk verified first."""
        meta = self.metadata(backup)
        length = _length_of(volume_file)
        if meta['size_bytes'] > length:
            raise exception.InvalidVolume(
                reason='backup %s holds %d bytes; volume %s has only %d'
                       % (backup.id, meta['size_bytes'], volume_id, length))
        fd = _fileno(volume_file)
        if fd is None:
            raise exception.BackupFailed(
                backup_id=backup.id, reason='the restore target has no file '
                                            'descriptor')
        punch = stat.S_ISREG(os.fstat(fd).st_mode)
        with pipeline.throttled(self.throttle), pipeline.Workers(self.workers) as workers:
            buffers = pipeline.Buffers(workers.limit + 1, meta['chunk_size'])
            for chunk in meta['chunks']:
                if chunk['stored_in'] is None and self.volume_is_new:
                    self.progress(chunk['length'])
                    continue
                if self.throttle is not None:
                    self.throttle.consume(chunk['length'])
                buffer = buffers.take()
                workers.submit(chunk['index'], self._restore_chunk, fd,
                               meta['volume_id'], backup.id, chunk, punch,
                               buffers, buffer)
                for _key, size in workers.results():
                    self.progress(size)
            for _key, size in workers.results(wait_all=True):
                self.progress(size)
        os.fsync(fd)
        LOG.info('Backup %s restored onto volume %s (%d bytes)', backup.id,
                 volume_id, meta['size_bytes'])

    def _restore_chunk(self, fd, volume_id, backup_id, chunk, punch,
                       buffers, buffer):
        try:
            return self._write_chunk(fd, volume_id, backup_id, chunk, punch,
                                     buffer)
        finally:
            buffers.give(buffer)

    def _write_chunk(self, fd, volume_id, backup_id, chunk, punch, buffer):
        offset, size = chunk['offset'], chunk['length']
        if chunk['stored_in'] is None:
            _zero(fd, offset, size, punch)
            return size
        path = os.path.join(self._directory(volume_id, chunk['stored_in']),
                            CHUNK % chunk['index'])
        try:
            stored = _read_file(path, memoryview(buffer))
            data = codec.decompress(chunk['codec'], stored, size)
        except Exception as exc:
            raise exception.BackupFailed(
                backup_id=backup_id, reason='chunk %d (in backup %s) cannot '
                'be read: %s' % (chunk['index'], chunk['stored_in'], exc))
        if len(data) != size or codec.sha256(data) != chunk['sha256']:
            raise exception.BackupFailed(
                backup_id=backup_id, reason='chunk %d (in backup %s) is '
                'corrupt: its sha256 does not match'
                % (chunk['index'], chunk['stored_in']))
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view[:IO_BLOCK], offset)
            view, offset = view[written:], offset + written
        return size

    # -- delete --------------------------------------------------------------------

    def delete(self, backup):
        """Remove the backup's own files; removing an absent backup succeeds."""
        directory = self._directory(backup.volume_id, backup.id)
        shutil.rmtree(directory, ignore_errors=False,
                      onerror=_ignore_missing)
        try:
            os.rmdir(os.path.dirname(directory))  # the volume's, when empty
        except OSError:
            pass


class _Ref:
    def __init__(self, volume_id, backup_id):
        self.volume_id = volume_id
        self.id = backup_id


def _ignore_missing(function, path, excinfo):
    if not (isinstance(excinfo[1], OSError) and
            excinfo[1].errno == errno.ENOENT):
        raise excinfo[1]


_ZERO_DIGESTS = {}


def _zero_digest(size):
    digest = _ZERO_DIGESTS.get(size)
    if digest is None:
        digest = _ZERO_DIGESTS[size] = codec.sha256(bytes(size))
    return digest


def _zero_entry(index, offset, size):
    return {'index': index, 'offset': offset, 'length': size,
            'sha256': _zero_digest(size), 'stored_in': None, 'codec': None,
            'stored_length': 0}


def _fileno(handle):
    try:
        return handle.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _length_of(handle):
    """Bytes in a volume file (a BoundedFile ends at its limit)."""
    here = handle.tell()
    try:
        return handle.seek(0, os.SEEK_END)
    finally:
        handle.seek(here)


def _is_hole(fd, offset, size):
    """True when the range holds no data (a sparse file's hole)."""
    try:
        start = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as exc:
        # ENXIO: only a hole remains; others: no hole information.
        return exc.errno == errno.ENXIO
    return start >= offset + size


def _read(handle, fd, offset, view):
    """Fill ``view`` (a memoryview) from the volume at ``offset``."""
    size, done = len(view), 0
    while done < size:
        if fd is None:
            handle.seek(offset + done)
            n = handle.readinto(view[done:])
        else:
            n = os.preadv(fd, [view[done:done + IO_BLOCK]], offset + done)
        if not n:
            view.release()
            raise exception.BackupFailed(
                backup_id='-', reason='the volume ended at byte %d, before '
                                      '%d' % (offset + done, offset + size))
        done += n
    return view


def _read_file(path, view):
    """The file's bytes, read into ``view``; a memoryview of them."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        length = os.fstat(fd).st_size
        if length > len(view):
            raise ValueError('%s has %d bytes, more than a chunk' % (path,
                                                                     length))
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


def _zero(fd, offset, size, punch):
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


def _write_file(path, data, sync=True):
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


def _sync_files(directory, names):
    """Make the chunks durable: one flush each, once they are all written.

    (Flushing each as it is written stalls the pipeline on the disk's
    cache flushes; by the end most are written back already.)
    """
    for name in names:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


def _write_atomically(path, data):
    temp = path + '.tmp'
    _write_file(temp, data)
    os.replace(temp, path)
    fileops.fsync_dir(os.path.dirname(path))
