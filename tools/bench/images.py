"""Section 5c: images onto volumes, against qemu-img on the same disk.

The file driver's image copy (the generic ``copy_image_to_volume``: the
image inspected, exported and attached through os-brick, ``qemu-img
convert`` onto the volume, its sha256 checked by a parallel reader) against
a bare ``qemu-img convert`` of the same image onto a volume-sized file in
the same directory; raw and qcow2. Then a raw image of an image store on
the volumes' btrfs becoming a volume by reflink (``clone_image``).
"""

import os
import shutil
import subprocess
import tempfile
import time

import datapath

SECTION = '5c images (file driver)'
GiB = 1 << 30
MiB = 1 << 20


def _timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def _init_os_brick(directory):
    from oslo_config import cfg
    from drivers import datapath as brick
    brick.init_os_brick(cfg.CONF, lock_path=os.path.join(directory, 'locks'),
                        in_process_privsep=os.geteuid() == 0)


def _make_image(store, directory, fmt, data_bytes, size_bytes):
    raw = os.path.join(directory, 'source.raw')
    with open(raw, 'wb') as f:
        f.truncate(size_bytes)
    datapath._fill(raw, data_bytes, size_bytes)
    source = raw
    if fmt == 'qcow2':
        source = raw + '.qcow2'
        subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                        raw, source], check=True)
    image = store.import_file(None, source, 'bench-' + fmt, fmt)
    for path in {raw, source}:
        os.unlink(path)
    return image


def compare_copy(results, directory, fmt, data_bytes, rounds):
    from volume_worker import image_store
    store = image_store.LocalImageStore(os.path.join(directory, 'images'))
    driver = datapath.make_driver(os.path.join(directory, 'volumes'), 'copy')
    image = _make_image(store, directory, fmt, data_bytes, GiB)
    path = store.local_path(None, image['id'])
    ours, bare = [], []
    for _ in range(rounds):
        target = os.path.join(directory, 'bare.raw')
        with open(target, 'wb') as f:
            f.truncate(GiB)
        bare.append(_timed(lambda: subprocess.run(
            ['qemu-img', 'convert', '-n', '-f', fmt, '-O', 'raw', path,
             target], check=True)))
        os.unlink(target)
        vol = datapath._volume(1)
        driver.create_volume(vol)
        ours.append(_timed(lambda: driver.copy_image_to_volume(
            None, vol, store, image['id'])))
        driver.delete_volume(vol)
    store.delete(None, image['id'])
    mib = data_bytes / MiB
    ours_rate, bare_rate = mib / min(ours), mib / min(bare)
    label = '%s image, 1 GiB, %d MiB data' % (fmt, data_bytes // MiB)
    results.add(SECTION, 'image -> volume (%s)' % label, ours_rate, 'MiB/s')
    results.add(SECTION, 'qemu-img convert (%s)' % label, bare_rate, 'MiB/s')
    ratio = ours_rate / bare_rate
    results.add(SECTION, 'ratio image -> volume / qemu-img (%s)' % fmt,
                ratio, 'x', '>= 0.9', ratio >= 0.9)


def reflink_clone(results, clone_gb, rounds):
    from volume_worker import image_store
    try:
        fs = datapath.LoopBtrfs(clone_gb * GiB + 4 * GiB)
        fs.__enter__()
    except OSError as exc:
        results.skip(SECTION + ' reflink', str(exc))
        return
    try:
        store = image_store.LocalImageStore(
            os.path.join(fs.mountpoint, 'images'))
        driver = datapath.make_driver(os.path.join(fs.mountpoint, 'volumes'),
                                      'reflink')
        image = _make_image(store, fs.mountpoint, 'raw', 256 * MiB,
                            clone_gb * GiB)
        location = store.get_location(None, image['id'])
        times = []
        for _ in range(rounds):
            vol = datapath._volume(clone_gb)
            times.append(_timed(lambda: driver.clone_image(
                vol, location, image['id'], image, store)))
            driver.delete_volume(vol)
        best = min(times)
        results.add(SECTION, 'raw image -> volume by reflink (%d GiB, btrfs)'
                    % clone_gb, best, 's', '< 1 s', best < 1.0)
    finally:
        fs.__exit__(None, None, None)


def measure(results, data_bytes, rounds=2, clone_gb=10):
    if shutil.which('qemu-img') is None:
        results.skip(SECTION, 'qemu-img missing (apt-get install qemu-utils)')
        return
    directory = tempfile.mkdtemp(
        prefix='vw-bench-images-',
        dir=os.environ.get('VW_BENCH_COPY_DIR', '/var/tmp'))
    try:
        _init_os_brick(directory)
        for fmt in ('raw', 'qcow2'):
            # Best of at least 5: one disk flush behind another job's
            # writes costs seconds here.
            compare_copy(results, directory, fmt, data_bytes,
                         max(rounds, 5))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    reflink_clone(results, clone_gb, rounds)
    results.note('Images: ext4 under /var/tmp (VW_BENCH_COPY_DIR), page '
                 'cache warm, copies best of %d (alternating), reflink best '
                 'of %d; image -> volume includes the '
                 'inspection (qemu-img info), the export and the os-brick '
                 'attach; the store knows its files unchanged since it '
                 'hashed them, so no second read for the sha256. Rates are '
                 'MiB of image data per second.' % (max(rounds, 5), rounds))
