"""Fixtures that run real worker processes against the local RabbitMQ."""

import json
import os
import time
import uuid

import pytest

from tests.conftest import make_postgres_database
from volume_worker.testing import process


def fake_backend(name, state_dir, **extra):
    options = {'volume_driver': 'drivers.fake.FakeDriver',
               'volume_backend_name': name,
               'fake_state_path': os.path.join(state_dir, '%s.json' % name)}
    options.update(extra)
    return options


def fake_backend_volumes(state_dir, name):
    """Volume ids the fake backend ``name`` holds (from its state file)."""
    path = os.path.join(state_dir, '%s.json' % name)
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return set(json.load(f).get('volumes', {}))


class Harness:
    """A running worker plus an in-process RPC client and event stream."""

    def __init__(self, state_dir, conf_path, settings, worker):
        from volume_worker import events
        from volume_worker import rpc
        from volume_worker import rpcapi
        self.state_dir = state_dir
        self.settings = settings
        self.worker = worker
        self.conf = process.client_config(conf_path)
        self.api = rpcapi.VolumeAPI(self.conf, timeout=30)
        self.ctx = rpc.admin_context()
        self.events = events.EventStream(
            self.conf.transport_url, scheduler_topic=self.conf.scheduler_topic)
        self.events.start()
        self.seen = []

    def backend(self, index=0):
        return self.settings['backends'][index]

    def new_volume(self, size=1, backend=None, **kw):
        from volume_worker import objects
        return objects.Volume(id=str(uuid.uuid4()), size=size,
                              host=backend or self.backend(), **kw)

    def wait_event(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self.seen):
                if predicate(event):
                    return self.seen.pop(i)
            self.seen.extend(self.events.poll(0.2))
        raise AssertionError('no matching event within %ss; seen: %s' % (
            timeout, [e.get('event_type') or e['kind'] for e in self.seen]))

    def wait_notification(self, event_type, volume_id, timeout=20):
        return self.wait_event(
            lambda e: e.get('event_type') == event_type and
            e['payload'].get('volume_id') == volume_id, timeout)

    def wait_notification_of(self, event_type, snapshot_id, timeout=20):
        return self.wait_event(
            lambda e: e.get('event_type') == event_type and
            e['payload'].get('snapshot_id') == snapshot_id, timeout)

    def wait_status(self, volume_id, statuses, backend=None, timeout=20):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.api.get_volume(self.ctx, backend or self.backend(),
                                           volume_id)
                if last.status in statuses:
                    return last
            except Exception as exc:  # NotFound until the cast is consumed
                if 'NotFound' not in type(exc).__name__:
                    raise
            time.sleep(0.05)
        raise AssertionError('volume %s not in %s within %ss (last: %s)' % (
            volume_id, statuses, timeout, last and last.status))

    def close(self):
        self.events.close()


def start_harness(tmp_path, executor='eventlet', database=None, backends=None,
                  **kw):
    state_dir = str(tmp_path / 'state')
    os.makedirs(state_dir, exist_ok=True)
    backends = backends or {'fake1': fake_backend('fake1', state_dir)}
    conf_path, settings = process.write_config(
        state_dir, executor=executor, database=database, backends=backends,
        **kw)
    worker = process.WorkerProcess(conf_path).start()
    try:
        return Harness(state_dir, conf_path, settings, worker)
    except Exception:
        worker.stop()
        raise


@pytest.fixture(scope='module', params=['eventlet', 'threading'])
def executor(request):
    return request.param


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def database_url(request):
    if request.param == 'sqlite':
        yield None
        return
    url, drop = make_postgres_database()
    yield url
    drop()
