"""The POSIX backup store on plain files: chunks, hashes, compression, incrementals, restores."""

import json
import os
import types
import uuid

import pytest

from drivers import throttle as throttling
from volume_worker import exception
from volume_worker.backups import chunkio
from volume_worker.backups import codec
from volume_worker.backups import posix

MiB = 1 << 20
CHUNK = MiB
SIZE = 8 * MiB


def _backup(volume_id=None, parent=None):
    return types.SimpleNamespace(
        id=str(uuid.uuid4()), volume_id=volume_id or str(uuid.uuid4()),
        parent_id=parent.id if parent else None)


@pytest.fixture
def volume(tmp_path):
    path = str(tmp_path / 'volume')
    with open(path, 'wb') as f:
        f.truncate(SIZE)
    return path


def _write(path, offset, data):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def _read(path):
    with open(path, 'rb') as f:
        return f.read()


def _service(tmp_path, **kwargs):
    kwargs.setdefault('chunk_size', CHUNK)
    return posix.PosixBackupService(str(tmp_path / 'store'), **kwargs)


def _take(service, backup, path):
    with open(path, 'rb') as f:
        return service.backup(backup, f)


def _put_back(service, backup, path):
    with open(path, 'r+b') as f:
        service.restore(backup, 'target', f)


def test_round_trip_onto_a_volume_full_of_other_data(tmp_path, volume):
    _write(volume, 0, os.urandom(CHUNK + 5))             # random: raw
    _write(volume, 3 * CHUNK, b'compressible ' * 50000)  # shrinks
    service = _service(tmp_path)
    backup = _backup()
    done = []
    service.progress = done.append
    summary = _take(service, backup, volume)
    assert sum(done) == SIZE
    assert summary['object_count'] == 3  # chunks 0, 1 and 3; holes: none
    meta = service.metadata(backup)
    codecs = {c['index']: c['codec'] for c in meta['chunks']
              if c['stored_in']}
    assert codecs[0] == codec.NONE and codecs[3] == codec.best_available()
    target = str(tmp_path / 'target')
    with open(target, 'wb') as f:
        f.write(os.urandom(SIZE))  # every zero chunk must be written back
    _put_back(service, backup, target)
    assert _read(target) == _read(volume)


def test_a_new_volume_gets_no_writes_for_zero_chunks(tmp_path, volume):
    _write(volume, 2 * CHUNK, b'x' * 100)
    service = _service(tmp_path)
    backup = _backup()
    _take(service, backup, volume)
    target = str(tmp_path / 'target')
    with open(target, 'wb') as f:
        f.truncate(SIZE)
    restorer = _service(tmp_path, volume_is_new=True)
    _put_back(restorer, backup, target)
    assert _read(target) == _read(volume)
    # Only the chunk holding data was written: the rest stays a hole.
    assert os.stat(target).st_blocks * 512 <= CHUNK


@pytest.mark.parametrize('compression', [codec.ZLIB, codec.NONE,
                                         codec.best_available()])
def test_incrementals_store_changed_chunks_and_restore_each_generation(
        tmp_path, volume, compression):
    service = _service(tmp_path, compression=compression)
    _write(volume, 0, b'a' * (4 * CHUNK))
    full = _backup()
    _take(service, full, volume)
    first = _read(volume)
    _write(volume, CHUNK + 10, b'b' * MiB)  # touches chunks 1 and 2
    second_backup = _backup(full.volume_id, full)
    summary = _take(service, second_backup, volume)
    assert summary['object_count'] == 2
    second = _read(volume)
    _write(volume, 6 * CHUNK, b'c')
    third_backup = _backup(full.volume_id, second_backup)
    assert _take(service, third_backup, volume)['object_count'] == 1
    stored = sorted(os.listdir(os.path.join(
        service.path, full.volume_id, third_backup.id)))
    assert stored == ['chunk-000006', 'metadata.json']
    for backup, expected in ((full, first), (second_backup, second),
                             (third_backup, _read(volume))):
        target = str(tmp_path / ('t-' + backup.id))
        with open(target, 'wb') as f:
            f.truncate(SIZE)
        _put_back(service, backup, target)
        assert _read(target) == expected


def test_a_corrupt_chunk_is_refused_before_it_is_written(tmp_path, volume):
    _write(volume, 0, os.urandom(3 * CHUNK))
    service = _service(tmp_path)
    backup = _backup()
    _take(service, backup, volume)
    chunk = os.path.join(service.path, backup.volume_id, backup.id,
                         'chunk-000001')
    with open(chunk, 'r+b') as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    target = str(tmp_path / 'target')
    with open(target, 'wb') as f:
        f.truncate(SIZE)
    with pytest.raises(exception.BackupFailed) as err:
        _put_back(service, backup, target)
    assert 'chunk 1' in str(err.value) and 'corrupt' in str(err.value)
    with open(target, 'rb') as f:
        f.seek(CHUNK)
        assert f.read(CHUNK) == bytes(CHUNK)


def test_incomplete_or_foreign_backups_and_small_targets_are_refused(
        tmp_path, volume):
    service = _service(tmp_path)
    with pytest.raises(exception.BackupFailed) as err:
        _put_back(service, _backup(), volume)
    assert 'no complete copy' in str(err.value)
    backup = _backup()
    _take(service, backup, volume)
    small = str(tmp_path / 'small')
    with open(small, 'wb') as f:
        f.truncate(SIZE - CHUNK)
    with pytest.raises(exception.InvalidVolume):
        _put_back(service, backup, small)
    meta_path = os.path.join(service.path, backup.volume_id, backup.id,
                             posix.METADATA)
    with open(meta_path) as f:
        meta = json.load(f)
    meta['version'] = 99
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    with pytest.raises(exception.BackupFailed) as err:
        _put_back(service, backup, volume)
    assert 'format' in str(err.value)


def test_delete_removes_the_backup_and_tolerates_repeats(tmp_path, volume):
    _write(volume, 0, b'data')
    service = _service(tmp_path)
    backup = _backup()
    _take(service, backup, volume)
    service.delete(backup)
    service.delete(backup)
    assert not os.path.exists(os.path.join(service.path, backup.volume_id))


def test_a_failing_chunk_fails_the_backup_and_stops_its_threads(
        tmp_path, volume, monkeypatch):
    import threading
    _write(volume, 0, os.urandom(SIZE))
    service = _service(tmp_path, workers=3)
    calls = []

    def failing(self, path, data, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, 'No space left on device')
        return real(self, path, data, **kwargs)
    real = chunkio.ChunkWriter.write
    monkeypatch.setattr(chunkio.ChunkWriter, 'write', failing)
    before = threading.active_count()
    with pytest.raises(OSError):
        _take(service, _backup(), volume)
    assert threading.active_count() == before


def test_the_throttle_paces_every_byte_read(tmp_path, volume):
    _write(volume, 0, os.urandom(2 * CHUNK))
    slept = []
    now = [0.0]
    throttle = throttling.Throttle(MiB, clock=lambda: now[0],
                                   sleep=slept.append)
    service = _service(tmp_path, throttle=throttle)
    _take(service, _backup(), volume)
    # Two chunks of data (holes are not read, so not paced) at 1 MiB/s on a
    # clock that never moves: each waits for the whole debt, 1 s then 2 s.
    assert slept == [pytest.approx(1.0), pytest.approx(2.0)]
    assert throttle.process_rate() == MiB  # no copy counted any more


def test_the_generic_backup_device_prefers_stand_ins():
    from drivers import generic
    seen = []
    db = types.SimpleNamespace(
        volume_get=lambda ctx, i: seen.append(('volume', i)) or i,
        snapshot_get=lambda ctx, i: seen.append(('snapshot', i)) or i)
    driver = types.SimpleNamespace(db=db)
    backup = types.SimpleNamespace(volume_id='v', snapshot_id=None,
                                   temp_snapshot_id=None, temp_volume_id=None)
    assert generic.get_backup_device(driver, None, backup) == ('v', False)
    backup.temp_snapshot_id = 's'
    assert generic.get_backup_device(driver, None, backup) == ('s', True)
    backup.temp_volume_id = 't'
    assert generic.get_backup_device(driver, None, backup) == ('t', False)
