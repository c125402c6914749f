"""Backup chunk I/O: zero chunks skip the hash, direct writes and their fallback, one writer per volume."""

import errno
import os
import threading
import types
import uuid

from volume_worker.backups import chunkio
from volume_worker.backups import codec
from volume_worker.backups import posix

MiB = 1 << 20
CHUNK = MiB


def _backup(volume_id=None):
    return types.SimpleNamespace(id=str(uuid.uuid4()),
                                 volume_id=volume_id or str(uuid.uuid4()),
                                 parent_id=None)


def _volume(tmp_path, size, fill):
    path = str(tmp_path / ('v-' + uuid.uuid4().hex))
    with open(path, 'wb') as f:
        f.truncate(size)
        for offset, data in fill:
            f.seek(offset)
            f.write(data)
    return path


def _round_trip(tmp_path, service, source, size):
    backup = _backup()
    with open(source, 'rb') as f:
        service.backup(backup, f)
    target = str(tmp_path / ('t-' + uuid.uuid4().hex))
    with open(target, 'wb') as f:
        f.truncate(size)
    with open(target, 'r+b') as f:
        service.restore(backup, 'target', f)
    with open(source, 'rb') as a, open(target, 'rb') as b:
        assert a.read() == b.read()
    return backup


def test_is_zero_tells_zeros_from_any_other_byte():
    buffer = chunkio.aligned_buffer(CHUNK)
    view = memoryview(buffer)
    assert chunkio.is_zero(view) and chunkio.is_zero(view[:4097])
    for where in (0, 4096, CHUNK - 1):
        buffer[where] = 1
        assert not chunkio.is_zero(view)
        buffer[where] = 0


def test_written_zeros_are_stored_as_nothing_without_hashing(
        tmp_path, monkeypatch):
    # Zeros written (not a hole): chunks 0 and 2; data in chunk 1.
    source = _volume(tmp_path, 3 * CHUNK,
                     [(0, bytes(3 * CHUNK)), (CHUNK + 7, os.urandom(999))])
    posix._zero_digest(CHUNK)  # the zero entries' digest, computed once
    hashed = []
    real = codec.sha256
    monkeypatch.setattr(codec, 'sha256',
                        lambda data: hashed.append(len(data)) or real(data))
    service = posix.PosixBackupService(str(tmp_path / 'store'),
                                       chunk_size=CHUNK)
    backup = _round_trip(tmp_path, service, source, 3 * CHUNK)
    meta = service.metadata(backup)
    assert [c['stored_in'] for c in meta['chunks']] == [None, backup.id,
                                                        None]
    # One hash when stored, one when verified on restore: chunk 1 only.
    assert hashed == [CHUNK, CHUNK]


def _spy_direct_opens(monkeypatch, refuse=False):
    opened = []
    real_open = os.open

    def spying(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT and 'chunk-' in os.path.basename(path):
            opened.append((os.path.basename(path), flags & os.O_ACCMODE))
            if refuse:
                raise OSError(errno.EINVAL, 'Invalid argument')
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, 'open', spying)
    return opened


def test_raw_chunks_go_direct_with_an_unaligned_tail(tmp_path, monkeypatch):
    size = 2 * CHUNK + 1000  # the last chunk is not a multiple of a page
    source = _volume(tmp_path, size, [(0, os.urandom(size))])
    opened = _spy_direct_opens(monkeypatch)
    service = posix.PosixBackupService(str(tmp_path / 'store'),
                                       chunk_size=CHUNK,
                                       compression=codec.NONE)
    backup = _round_trip(tmp_path, service, source, size)
    writes = sorted(name for name, mode in opened if mode == os.O_WRONLY)
    reads = sorted(name for name, mode in opened if mode == os.O_RDONLY)
    assert writes == reads == ['chunk-000000', 'chunk-000001',
                               'chunk-000002']
    tail = os.path.join(service.path, backup.volume_id, backup.id,
                        'chunk-000002')
    assert os.path.getsize(tail) == 1000  # the padding was cut off


def test_a_filesystem_refusing_direct_io_gets_cached_writes(
        tmp_path, monkeypatch):
    size = 3 * CHUNK
    source = _volume(tmp_path, size, [(0, os.urandom(size))])
    opened = _spy_direct_opens(monkeypatch, refuse=True)
    service = posix.PosixBackupService(str(tmp_path / 'store'),
                                       chunk_size=CHUNK)
    _round_trip(tmp_path, service, source, size)
    # Refused once for writing, then not tried again in that backup.
    assert [m for _n, m in opened].count(os.O_WRONLY) == 1


def test_restore_writes_one_chunk_at_a_time(tmp_path, monkeypatch):
    size = 4 * CHUNK
    source = _volume(tmp_path, size, [(0, os.urandom(size))])
    service = posix.PosixBackupService(str(tmp_path / 'store'),
                                       chunk_size=CHUNK, workers=4)
    backup = _backup()
    with open(source, 'rb') as f:
        service.backup(backup, f)
    inside, overlapped = [0], []
    second = threading.Event()
    real = chunkio.VolumeWriter._write_direct

    def writing(self, offset, view):
        inside[0] += 1
        if inside[0] > 1:
            overlapped.append(offset)
            second.set()
        elif not second.is_set():
            # The first writer waits for a second one to come in: only the
            # writer's lock keeps it out.
            second.wait(1.0)
            second.set()
        try:
            return real(self, offset, view)
        finally:
            inside[0] -= 1
    monkeypatch.setattr(chunkio.VolumeWriter, '_write_direct', writing)
    target = str(tmp_path / 'target')
    with open(target, 'wb') as f:
        f.truncate(size)
    with open(target, 'r+b') as f:
        service.restore(backup, 'target', f)
    assert overlapped == []
    with open(source, 'rb') as a, open(target, 'rb') as b:
        assert a.read() == b.read()


def test_zero_blocks_inside_a_chunk_are_not_written(tmp_path):
    # A chunk of 4 MiB: 1 MiB of data, then zeros (written, not a hole).
    chunk, size = 4 * MiB, 8 * MiB
    source = _volume(tmp_path, size, [(0, bytes(size)),
                                      (MiB, os.urandom(MiB))])
    service = posix.PosixBackupService(str(tmp_path / 'store'),
                                       chunk_size=chunk)
    backup = _backup()
    with open(source, 'rb') as f:
        service.backup(backup, f)
    new = posix.PosixBackupService(service.path, chunk_size=chunk,
                                   volume_is_new=True)
    target = str(tmp_path / 'new')
    with open(target, 'wb') as f:
        f.truncate(size)
    with open(target, 'r+b') as f:
        new.restore(backup, 'new', f)
    with open(source, 'rb') as a, open(target, 'rb') as b:
        assert a.read() == b.read()
    assert os.stat(target).st_blocks * 512 <= MiB + 64 * 1024  # the data
    # Onto a volume full of other bytes, the zeros are put back too.
    used = str(tmp_path / 'used')
    with open(used, 'wb') as f:
        f.write(os.urandom(size))
    with open(used, 'r+b') as f:
        service.restore(backup, 'used', f)
    with open(source, 'rb') as a, open(used, 'rb') as b:
        assert a.read() == b.read()
