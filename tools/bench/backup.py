"""Section 5b: a volume backed up into the POSIX store, against cp of the same data.

The file driver's volume is attached through os-brick (LOCAL) by the
generic ``backup_volume`` and handed to the backup service, which reads
it in 32 MiB chunks, hashes (sha256; zero chunks are found by a memcmp
first), compresses (zstd; chunks that do not shrink stay raw and are
written past the page cache) and flushes each chunk, then the metadata. The reference is ``cp`` of the
volume's file to the same disk, followed by an fsync of the copy (the
backup is durable when it reports success; without the fsync the copy
may still be in the page cache). Rounds alternate, page cache warm.
"""

import os
import resource
import shutil
import tempfile
import uuid

from datapath import MiB, GiB, _cp, _fill, _timed, make_driver

SECTION = '5b backup data path (file driver, POSIX store)'


def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _cpu_timed(fn, who=resource.RUSAGE_SELF):
    """(wall seconds, CPU seconds of this process or of its children)."""
    cpu0 = _cpu(who)
    wall = _timed(fn)
    return wall, _cpu(who) - cpu0


def _sha256_of(data_bytes):
    """sha256 of ``data_bytes`` in 32 MiB pieces: the backup's own floor."""
    import hashlib
    piece = os.urandom(32 * MiB)
    for _ in range(max(1, data_bytes // len(piece))):
        hashlib.sha256(piece).digest()


class _Lookup:
    def __init__(self, volume):
        self.volume = volume

    def volume_get(self, context, volume_id):
        return self.volume


def measure(results, volume_gb, data_bytes, rounds=5):
    from oslo_config import cfg
    from drivers import datapath
    from volume_worker import objects
    from volume_worker.backups import posix
    directory = tempfile.mkdtemp(
        prefix='vw-bench-backup-',
        dir=os.environ.get('VW_BENCH_COPY_DIR', '/var/tmp'))
    label = '%d GiB volume, %d MiB of random data' % (volume_gb,
                                                      data_bytes // MiB)
    try:
        datapath.init_os_brick(cfg.CONF, lock_path=directory,
                               in_process_privsep=os.geteuid() == 0)
        driver = make_driver(os.path.join(directory, 'volumes'), 'copy')
        volume = objects.Volume(id=str(uuid.uuid4()), size=volume_gb,
                                host='bench@file1#pool')
        volume.obj_fill_unset()
        driver.create_volume(volume)
        driver.db = _Lookup(volume)
        src = driver.local_path(volume)
        _fill(src, data_bytes, volume_gb * GiB)
        store = os.path.join(directory, 'store')
        cp_times, backup_times, restore_times = [], [], []
        for _ in range(rounds):
            dst = os.path.join(directory, 'cp-%s' % uuid.uuid4().hex)
            cp_times.append(_cpu_timed(_cp(src, dst, True),
                                       resource.RUSAGE_CHILDREN))
            os.unlink(dst)
            backup = objects.Backup(id=str(uuid.uuid4()),
                                    volume_id=volume.id, size=volume_gb)
            backup.obj_fill_unset()
            service = posix.PosixBackupService(store)
            backup_times.append(_cpu_timed(
                lambda: driver.backup_volume(None, backup, service)))
            target = objects.Volume(id=str(uuid.uuid4()), size=volume_gb,
                                    host='bench@file1#pool')
            target.obj_fill_unset()
            driver.create_volume(target)
            service = posix.PosixBackupService(store, volume_is_new=True)
            restore_times.append(_cpu_timed(
                lambda: driver.restore_backup(None, backup, target,
                                              service)))
            driver.delete_volume(target)
            shutil.rmtree(store)
        (cp, cp_cpu), (took, took_cpu), (back, back_cpu) = (
            min(cp_times), min(backup_times), min(restore_times))
        hashing = min(_cpu_timed(lambda: _sha256_of(data_bytes))[1]
                      for _ in range(rounds))
        rate = data_bytes / MiB
        results.add(SECTION, 'cp + fsync, %s' % label, cp, 's')
        results.add(SECTION, 'backup, %s' % label, took, 's')
        results.add(SECTION, 'backup rate', rate / took, 'MiB/s')
        results.add(SECTION, 'CPU of cp + fsync', cp_cpu, 's')
        results.add(SECTION, 'CPU of the backup (all its threads)',
                    took_cpu, 's')
        results.add(SECTION, 'CPU of the restore', back_cpu, 's')
        results.add(SECTION, 'CPU of sha256 of the data bytes alone, one thread',
                    hashing, 's')
        full = data_bytes >= volume_gb * GiB  # the target's case
        results.add(SECTION, 'ratio backup / (cp + fsync)', cp / took, 'x',
                    '>= 0.9' if full else None,
                    cp / took >= 0.9 if full else None)
        results.add(SECTION, 'restore onto a new volume, %s' % label, back,
                    's')
        results.add(SECTION, 'ratio restore / (cp + fsync)', cp / back, 'x')
        results.note('Backup: %s; best of %d alternating rounds; the store '
                     'on the same disk as the volume; chunks sha256-checked '
                     'on restore.' % (label, rounds))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == '__main__':
    import sys
    import warnings
    warnings.filterwarnings('ignore')
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))

    class _Print:
        def add(self, section, metric, value, unit='', target=None,
                met=None):
            print('%-50s %10.3f %s %s' % (metric, value, unit,
                                          '' if met is None else
                                          ('met' if met else 'NOT met')))

        def note(self, text):
            print(text)
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    measure(_Print(), 1, size * MiB, int(sys.argv[2]) if len(sys.argv) > 2
            else 3)
