"""An operator's image import killed (-9) midway is swept by the next import or list; a running one is left alone."""

import os
import signal
import subprocess
import sys
import time

import pytest

from drivers import exception
from volume_worker import image_store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# An import that stops inside its copy (the copy's temporary file partly
# written) and says so, then waits to be killed.
IMPORTER = r'''
import os, sys, time
sys.path.insert(0, %(root)r)
from drivers import fileops
from volume_worker import image_store

def stuck(src, dst, size, method, **kwargs):
    with open(fileops.temp_path_for(dst), 'wb') as f:
        f.write(b'partial' * 1000)
    open(%(ready)r, 'w').close()
    time.sleep(600)

fileops.clone_file = stuck
image_store.LocalImageStore(%(store)r).import_file(
    None, %(source)r, 'stuck', image_id=%(image_id)r)
'''


def _start_import(tmp_path, store_path, image_id):
    source = tmp_path / 'disk.raw'
    source.write_bytes(os.urandom(65536))
    ready = str(tmp_path / ('ready-' + image_id))
    script = IMPORTER % {'root': ROOT, 'ready': ready, 'store': store_path,
                         'source': str(source), 'image_id': image_id}
    proc = subprocess.Popen([sys.executable, '-c', script])
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        assert proc.poll() is None, 'the importer ended early'
        assert time.monotonic() < deadline, 'the importer never got stuck'
        time.sleep(0.05)
    return proc


def _files(store_path):
    found = []
    for top, _dirs, names in os.walk(store_path):
        found.extend(os.path.relpath(os.path.join(top, n), store_path)
                     for n in names)
    return sorted(found)


def test_a_killed_import_is_swept_and_a_running_one_kept(tmp_path):
    store_path = str(tmp_path / 'images')
    store = image_store.LocalImageStore(store_path)
    killed_id = '11111111-1111-4111-8111-111111111111'
    running_id = '22222222-2222-4222-8222-222222222222'
    killed = _start_import(tmp_path, store_path, killed_id)
    running = _start_import(tmp_path, store_path, running_id)
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert any(killed_id in f and '.tmp-' in f for f in _files(store_path))
        assert store.show(None, killed_id)['status'] == image_store.QUEUED
        listed = [m['id'] for m in store.list(None)]  # sweeps first
        assert listed == [running_id]
        with pytest.raises(exception.ImageNotFound):
            store.show(None, killed_id)
        assert not [f for f in _files(store_path) if killed_id in f]
        # The live import keeps its lock, metadata and partial file.
        assert store.sweep_abandoned_imports() == []
        assert any(running_id in f and '.tmp-' in f
                   for f in _files(store_path))
    finally:
        running.kill()
        running.wait()
        killed.kill() if killed.poll() is None else None
    # Once dead, the next import sweeps it, and imports normally.
    source = tmp_path / 'other.raw'
    source.write_bytes(b'\1' * 4096)
    meta = store.import_file(None, str(source), 'other')
    assert meta['status'] == image_store.ACTIVE
    assert [m['id'] for m in store.list(None)] == [meta['id']]
    assert _files(store_path) == sorted(['%s.img' % meta['id'],
                                         '%s.json' % meta['id']])


def test_a_finished_import_whose_lock_file_was_left_is_kept(tmp_path):
    store = image_store.LocalImageStore(str(tmp_path / 'images'))
    source = tmp_path / 'disk.raw'
    source.write_bytes(b'\2' * 4096)
    meta = store.import_file(None, str(source), 'done')
    # As if killed between its last write and removing its lock file.
    open(os.path.join(store.staging, meta['id'] + image_store.IMPORT_LOCK),
         'w').close()
    assert store.sweep_abandoned_imports() == []
    assert store.show(None, meta['id'])['status'] == image_store.ACTIVE
    assert os.listdir(store.staging) == []
