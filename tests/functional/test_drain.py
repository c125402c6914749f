"""SIGTERM drains a worker: work already taken finishes, nothing new is taken.

Run in both executor modes against a real worker process and the broker.
"""

import os
import time
import uuid

import kombu
import pytest

from tests.functional.conftest import fake_backend
from tests.functional.conftest import fake_backend_volumes
from volume_worker.objects import VolumeStatus
from volume_worker.testing import process
from volume_worker.testing import state

CREATE_SECONDS = 2.0


class DrainRig:
    def __init__(self, tmp_path, executor, **defaults):
        from volume_worker import rpc
        from volume_worker import rpcapi
        self.state_dir = str(tmp_path / 'state')
        os.makedirs(self.state_dir, exist_ok=True)
        self.conf_path, settings = process.write_config(
            self.state_dir, executor=executor, extra_default=defaults,
            backends={'fake1': fake_backend(
                'fake1', self.state_dir,
                fake_fault_delay='create_volume:%s' % CREATE_SECONDS)})
        self.backend = settings['backends'][0]
        self.db = state.WorkerDB(
            'sqlite:///%s/volume-worker.sqlite' % self.state_dir)
        self.conf = process.client_config(self.conf_path)
        self.api = rpcapi.VolumeAPI(self.conf, timeout=30)
        self.ctx = rpc.admin_context()
        self.runs = 0
        self.worker = None

    def start(self):
        self.runs += 1
        self.worker = process.WorkerProcess(
            self.conf_path, '%s.%d.log' % (self.conf_path, self.runs))
        return self.worker.start()

    def cast_create(self):
        from volume_worker import objects
        volume = objects.Volume(id=str(uuid.uuid4()), size=1,
                                host=self.backend, metadata={})
        self.api.create_volume(self.ctx, self.backend, volume)
        return volume.id

    def queued(self):
        """Messages waiting in this backend's own queue on the broker."""
        with kombu.Connection(
                self.conf.transport_url.replace('rabbit://', 'amqp://')) as c:
            declared = c.default_channel.queue_declare(
                queue='%s.%s' % (self.conf.volume_topic, self.backend),
                passive=True)
            return declared.message_count

    def close(self):
        if self.worker is not None:
            self.worker.stop()
        self.db.close()


@pytest.fixture(params=['eventlet', 'threading'])
def rig(request, tmp_path):
    r = DrainRig(tmp_path, request.param)
    try:
        yield r
    finally:
        r.close()


def test_sigterm_finishes_the_running_create_and_takes_nothing_new(rig):
    rig.start()
    running = rig.cast_create()
    state.wait_until(lambda: running in rig.db.journal(), 10,
                     'create journaled')
    signalled = time.monotonic()
    rig.worker.proc.send_signal(15)
    rig.worker.wait_for_log('takes no new requests', 10)
    late = rig.cast_create()

    assert rig.worker.proc.wait(30) == 0
    took = time.monotonic() - signalled
    # It waited for the create, no longer than the create itself.
    assert 0.5 < took < CREATE_SECONDS + 3, took
    assert rig.db.status(running) == VolumeStatus.AVAILABLE
    assert rig.db.journal() == {}
    assert running in fake_backend_volumes(rig.state_dir, 'fake1')
    assert 'drained' in rig.worker.log_text()
    # The create sent after SIGTERM was never taken: it waits on the broker.
    assert rig.db.volume(late) is None
    # (Delivered to the stopped consumer unacknowledged, it is back in the
    # queue once the broker has seen the connection close.)
    state.wait_until(lambda: rig.queued() == 1, 10, 'late create queued')

    # The next start re-exports the volume it finished, then takes the
    # create that waited.
    rig.start()
    rig.worker.wait_for_log('1 exports ensured, 0 failed', 30)
    state.wait_until(lambda: rig.db.status(late) == VolumeStatus.AVAILABLE,
                     30, 'late create done after restart')
    assert rig.queued() == 0
    assert rig.worker.terminate(30) == 0


@pytest.mark.parametrize('executor', ['threading'])
def test_drain_deadline_leaves_the_create_journaled(tmp_path, executor):
    r = DrainRig(tmp_path, executor, graceful_shutdown_timeout=0)
    try:
        r.start()
        running = r.cast_create()
        state.wait_until(lambda: running in r.db.journal(), 10,
                         'create journaled')
        started = time.monotonic()
        assert r.worker.terminate(30) == 0
        # No grace: it exits without waiting for the backend call.
        assert time.monotonic() - started < CREATE_SECONDS
        assert 'unfinished work journaled' in r.worker.log_text()
        assert running in r.db.journal()
        assert r.db.status(running) == VolumeStatus.CREATING

        r.start()
        assert r.db.status(running) == VolumeStatus.AVAILABLE
        assert r.db.journal() == {}
        assert running in fake_backend_volumes(r.state_dir, 'fake1')
    finally:
        r.close()


ENSURE_SECONDS = 15


def test_exports_are_ensured_in_the_background_after_listening(tmp_path):
    """A start-up with exported volumes serves requests before it has
    checked every export (thousands take long); here the check hangs."""
    from volume_worker import objects
    from volume_worker import rpc
    from volume_worker import rpcapi
    state_dir = str(tmp_path / 'state')
    conf_path, settings = process.write_config(
        state_dir, backends={'fake1': fake_backend(
            'fake1', state_dir, fake_fault_delay='ensure_exports:%d' % ENSURE_SECONDS)})
    backend = settings['backends'][0]
    db = state.WorkerDB('sqlite:///%s/volume-worker.sqlite' % state_dir)
    api = rpcapi.VolumeAPI(process.client_config(conf_path), timeout=30)
    ctx = rpc.admin_context()

    def create():
        volume = objects.Volume(id=str(uuid.uuid4()), size=1, host=backend,
                                metadata={})
        api.create_volume(ctx, backend, volume)
        state.wait_until(
            lambda: db.status(volume.id) == VolumeStatus.AVAILABLE, 30,
            'create of %s' % volume.id)
        return volume.id

    worker = process.WorkerProcess(conf_path, conf_path + '.1.log')
    try:
        worker.start()
        exported = create()
        assert db.volume(exported)['provider_location']
        worker.terminate(30)
        worker = process.WorkerProcess(conf_path, conf_path + '.2.log')
        worker.start()
        # Listening, while the driver's ensure_exports is still inside.
        create()
        assert 'exports ensured' not in worker.log_text()
        # The check goes on in the background and ends.
        worker.wait_for_log('1 exports ensured, 0 failed', ENSURE_SECONDS + 30)
    finally:
        worker.kill()
        db.close()
