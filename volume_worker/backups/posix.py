"""Backups kept as files: one directory per backup, its chunks and a metadata file.

Layout under ``[backup] posix_path``::

    <volume id>/<backup id>/chunk-000000    compressed chunk 0 (absent: zeros,
                                            or kept by an ancestor)
    <volume id>/<backup id>/metadata.json   written last: a backup without it
                                            is incomplete

A volume is read in chunks of ``chunk_size`` bytes. Each chunk's sha256 is
recorded; a chunk of zeros (a hole, or zeros found by a memcmp before any
hashing) is stored as nothing; an incremental backup stores only the
chunks whose hash differs from its parent's and refers to the ancestor that
holds each of the others (``stored_in``). A restore checks every chunk's
hash before it writes it. The calling thread reads; native threads hash,
compress and write, several chunks at a time; chunks that stay raw are
written and read past the page cache, and a restore writes one chunk at a
time onto the volume (``chunkio``).
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
from volume_worker.backups import chunkio
from volume_worker.backups import codec
from volume_worker.backups import pipeline

LOG = logging.getLogger(__name__)

FORMAT_VERSION = 1
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
                 volume_is_new=False, direct_io=True):
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
        self.direct_io = direct_io
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
        target = _ChunkFiles(directory, backup.id, self.direct_io)
        fd = _fileno(volume_file)
        count = (length + chunk_size - 1) // chunk_size
        chunks = [None] * count
        with pipeline.throttled(self.throttle), pipeline.Workers(self.workers) as workers:
            buffers = pipeline.Buffers(workers.limit + 1, chunk_size)
            for index in range(count):
                offset = index * chunk_size
                size = min(chunk_size, length - offset)
                if fd is not None and chunkio.is_hole(fd, offset, size):
                    chunks[index] = _zero_entry(index, offset, size)
                    self.progress(size)
                    continue
                buffer = buffers.take()
                try:
                    data = chunkio.read_into(volume_file, fd, offset,
                                             memoryview(buffer)[:size])
                except BaseException:
                    buffers.give(buffer)
                    raise
                if self.throttle is not None:
                    self.throttle.consume(size)
                workers.submit(index, self._store_chunk, target, index,
                               offset, data, inherited.get(index), buffers,
                               buffer)
                for key, entry in workers.results():
                    chunks[key] = entry
                    self.progress(entry['length'])
            for key, entry in workers.results(wait_all=True):
                chunks[key] = entry
                self.progress(entry['length'])
        own = [c for c in chunks if c['stored_in'] == backup.id]
        target.sync()
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

    def _store_chunk(self, target, index, offset, data, parent, buffers,
                     buffer):
        try:
            return self._encode_chunk(target, index, offset, data, parent,
                                      buffer)
        finally:
            buffers.give(buffer)

    def _encode_chunk(self, target, index, offset, data, parent, buffer):
        if chunkio.is_zero(data):
            return _zero_entry(index, offset, len(data))
        digest = codec.sha256(data)
        if (parent is not None and parent['sha256'] == digest and
                parent['length'] == len(data)):
            return dict(parent)
        name, packed = codec.compress(self.compression, data)
        if name == codec.NONE:
            packed = chunkio.AlignedView(buffer, data)
        target.write(index, packed)
        return {'index': index, 'offset': offset, 'length': len(data),
                'sha256': digest, 'stored_in': target.backup_id,
                'codec': name, 'stored_length': len(data) if
                name == codec.NONE else len(packed)}

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
        target = chunkio.VolumeWriter(fd, direct=self.direct_io)
        try:
            with pipeline.throttled(self.throttle), \
                    pipeline.Workers(self.workers) as workers:
                buffers = pipeline.Buffers(workers.limit + 1,
                                           meta['chunk_size'])
                for chunk in meta['chunks']:
                    if chunk['stored_in'] is None and self.volume_is_new:
                        self.progress(chunk['length'])
                        continue
                    if self.throttle is not None:
                        self.throttle.consume(chunk['length'])
                    buffer = buffers.take()
                    workers.submit(chunk['index'], self._restore_chunk,
                                   target, meta['volume_id'], backup.id,
                                   chunk, punch, buffers, buffer)
                    for _key, size in workers.results():
                        self.progress(size)
                for _key, size in workers.results(wait_all=True):
                    self.progress(size)
        finally:
            target.close()
        os.fsync(fd)
        LOG.info('Backup %s restored onto volume %s (%d bytes)', backup.id,
                 volume_id, meta['size_bytes'])

    def _restore_chunk(self, target, volume_id, backup_id, chunk, punch,
                       buffers, buffer):
        try:
            return self._write_chunk(target, volume_id, backup_id, chunk,
                                     punch, buffer)
        finally:
            buffers.give(buffer)

    def _write_chunk(self, target, volume_id, backup_id, chunk, punch,
                     buffer):
        offset, size = chunk['offset'], chunk['length']
        if chunk['stored_in'] is None:
            chunkio.zero_range(target.fd, offset, size, punch)
            return size
        path = os.path.join(self._directory(volume_id, chunk['stored_in']),
                            CHUNK % chunk['index'])
        try:
            stored = chunkio.read_file(path, memoryview(buffer),
                                       direct=self.direct_io)
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
        target.write(offset, chunkio.AlignedView(buffer, data)
                     if data is stored else data,
                     zeros_there=self.volume_is_new, punch=punch)
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


class _ChunkFiles:
    """The chunk files of one backup being written.

    Chunks that can go straight to the device are flushed as they are
    written (little is left to flush: the file's allocation); the others
    go through the page cache and are flushed together by ``sync``.
    """

    def __init__(self, directory, backup_id, direct_io):
        self.directory = directory
        self.backup_id = backup_id
        self._writer = chunkio.ChunkWriter(direct=direct_io)
        self._unsynced = []

    def write(self, index, data):
        name = CHUNK % index
        direct = isinstance(data, chunkio.AlignedView) and self._writer.direct
        self._writer.write(os.path.join(self.directory, name), data,
                           sync=direct)
        if not direct:
            self._unsynced.append(name)  # list.append: one thread at a time

    def sync(self):
        chunkio.sync_files(self.directory, self._unsynced)


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


def _write_atomically(path, data):
    temp = path + '.tmp'
    chunkio.write_buffered(temp, data)
    os.replace(temp, path)
    fileops.fsync_dir(os.path.dirname(path))
