"""A driver written only from the reference text is served end to end.

``minimal_driver.MinimalDriver`` subclasses ``VolumeDriver`` and reads its
objects as Cinder-contract drivers do (item access, ``name``); the worker,
through the real broker, creates, snapshots, clones, attaches, extends and
deletes with it, and the data written through the attachment comes back in
the clone.
"""

import os
import uuid

import pytest

from tests.functional.conftest import start_harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONNECTOR = {'host': 'consumer', 'initiator': 'iqn.2026-11.test:minimal'}


@pytest.fixture
def harness(tmp_path, monkeypatch):
    # The worker process imports the fixture driver from the checkout.
    monkeypatch.setenv('PYTHONPATH', ROOT)
    h = start_harness(tmp_path, backends={'minimal': {
        'volume_driver': 'tests.functional.minimal_driver.MinimalDriver',
        'volume_backend_name': 'minimal'}})
    yield h
    h.close()
    h.worker.stop()


def test_minimal_reference_driver_end_to_end(harness):
    from volume_worker import objects
    h = harness
    backend = h.backend()
    volume = h.new_volume(size=1)
    h.api.create_volume(h.ctx, backend, volume)
    h.wait_status(volume.id, ['available'])

    attachment = h.api.attachment_update(h.ctx, backend, volume.id,
                                         CONNECTOR)
    path = attachment.connection_info['data']['device_path']
    with open(path, 'r+b') as f:
        f.write(b'written by a consumer')
    h.api.attachment_complete(h.ctx, backend, volume.id, attachment.id)
    assert h.api.get_volume(h.ctx, backend, volume.id).status == 'in-use'
    h.api.attachment_delete(h.ctx, backend, volume.id, attachment.id)

    snapshot = objects.Snapshot(id=str(uuid.uuid4()), volume_id=volume.id)
    h.api.create_snapshot(h.ctx, backend, snapshot)
    h.wait_notification_of('snapshot.create.end', snapshot.id)
    clone = h.new_volume(size=2, snapshot_id=snapshot.id)
    h.api.create_volume(h.ctx, backend, clone)
    got = h.wait_status(clone.id, ['available', 'error'])
    assert got.status == 'available' and got.size == 2
    copy = h.api.attachment_update(h.ctx, backend, clone.id, CONNECTOR)
    with open(copy.connection_info['data']['device_path'], 'rb') as f:
        assert f.read(21) == b'written by a consumer'
    h.api.attachment_delete(h.ctx, backend, clone.id, copy.id)

    h.api.extend_volume(h.ctx, backend, volume.id, 3)
    h.wait_notification('volume.resize.end', volume.id)
    assert h.api.get_volume(h.ctx, backend, volume.id).size == 3
    assert os.path.getsize(path) == 3 << 30

    h.api.delete_snapshot(h.ctx, backend, snapshot.id)
    h.wait_notification_of('snapshot.delete.end', snapshot.id)
    for vid in (volume.id, clone.id):
        h.api.delete_volume(h.ctx, backend, vid)
        h.wait_notification('volume.delete.end', vid)
    assert not os.path.exists(path)
    assert 'Traceback' not in h.worker.log_text()
