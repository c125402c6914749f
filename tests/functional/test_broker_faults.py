"""A running worker rides out a short RabbitMQ outage (``rabbitmqctl stop_app``).

The broker is always started again in a ``finally`` and awaited; outages
last a few seconds.
"""

import json
import os
import subprocess
import time
import uuid

import pytest

from tests.functional.conftest import fake_backend
from volume_worker.objects import VolumeStatus
from volume_worker.testing import process
from volume_worker.testing import state

OUTAGE_SECONDS = 3
# Reconnect quickly: oslo.messaging's default back-off grows to 30 s.
RABBIT = {'rabbit_retry_interval': '1', 'rabbit_retry_backoff': '1',
          'rabbit_interval_max': '2', 'heartbeat_timeout_threshold': '10'}

pytestmark = pytest.mark.skipif(
    subprocess.run(['which', 'rabbitmqctl'], capture_output=True).returncode,
    reason='rabbitmqctl is not installed')


Outage = process.BrokerOutage
_broker_answers = process.broker_answers


@pytest.fixture
def worker(tmp_path):
    from volume_worker import rpc
    from volume_worker import rpcapi
    state_dir = str(tmp_path / 'state')
    os.makedirs(state_dir)
    conf_path, settings = process.write_config(
        state_dir, backends={'fake1': fake_backend('fake1', state_dir)},
        # A call lost in the outage fails in 10 s, not oslo's 60.
        extra_default={'rpc_response_timeout': '10'},
        sections={'oslo_messaging_rabbit': RABBIT,
                  'client': {'cast_retry_deadline': '30',
                             'wait_timeout': '60'}})
    proc = process.WorkerProcess(conf_path).start()
    conf = process.client_config(conf_path)
    w = type('Worker', (), {})()
    w.proc, w.conf_path, w.backend = proc, conf_path, settings['backends'][0]
    w.host = settings['host']
    w.db = state.WorkerDB('sqlite:///%s/volume-worker.sqlite' % state_dir)
    w.conf = conf
    w.api = rpcapi.VolumeAPI(conf, timeout=30)
    w.ctx = rpc.admin_context()
    try:
        yield w
    finally:
        if not _broker_answers():
            Outage().restore()
        proc.stop()
        w.db.close()


def _subscribed(w):
    """True once the worker consumes from its queue again."""
    import kombu
    try:
        with kombu.Connection(w.conf.transport_url.replace(
                'rabbit://', 'amqp://'), connect_timeout=2) as conn:
            ok = conn.default_channel.queue_declare(
                queue='%s.%s' % (w.conf.volume_topic, w.backend),
                passive=True)
            return ok.consumer_count > 0
    except Exception:
        return False


def _create(w):
    from volume_worker import objects
    volume = objects.Volume(id=str(uuid.uuid4()), size=1, host=w.backend,
                            metadata={})
    w.api.create_volume(w.ctx, w.backend, volume)
    return volume.id


def _wait_available(w, volume_id, timeout=30):
    state.wait_until(
        lambda: w.db.status(volume_id) == VolumeStatus.AVAILABLE, timeout,
        'volume %s available' % volume_id)


def _capability_report(w, timeout):
    from volume_worker import events
    stream = events.EventStream(w.conf.transport_url,
                                scheduler_topic=w.conf.scheduler_topic)
    stream.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in stream.poll(0.5):
                if event['kind'] == 'capabilities' and event['host'] == \
                        w.backend:
                    return event
    finally:
        stream.close()
    raise AssertionError('no capability report within %ss' % timeout)


def test_worker_rides_out_a_broker_outage(worker):
    w = worker
    before = _create(w)
    _wait_available(w, before)

    client = None
    with Outage() as outage:
        # A client asking during the outage: it must not lose the request.
        client = subprocess.Popen(
            [os.path.join(process.VENV_BIN, 'volume-worker-client'),
             '--config-file', w.conf_path, 'create', '--size', '1',
             '--wait'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONWARNINGS='ignore'))
        time.sleep(OUTAGE_SECONDS)
        assert client.poll() is None, 'client gave up during a short outage'
    restored = time.monotonic()
    assert restored - outage.started < OUTAGE_SECONDS + 30

    out, err = client.communicate(timeout=90)
    # Served: the worker's queue is durable (a quorum queue), bound to the
    # durable control exchange, so the request the client sends once the
    # broker is back waits there, even before the worker has reconnected.
    assert client.returncode == 0, err
    created = json.loads(out.strip().splitlines()[-1])
    assert created['status'] == VolumeStatus.AVAILABLE
    assert w.db.status(created['id']) == VolumeStatus.AVAILABLE

    # The same worker process serves again, without a restart.
    state.wait_until(lambda: _subscribed(w), 30, 'worker subscribed again')
    after = _create(w)
    _wait_available(w, after)
    assert w.proc.proc.poll() is None
    # Heartbeats and capability reports resume.
    beat = w.db.services()[0]['updated_at']
    state.wait_until(lambda: w.db.services()[0]['updated_at'] > beat, 10,
                     'heartbeat')
    report = _capability_report(w, 15)
    assert report['capabilities']['volume_backend_name'] == 'fake1'


def test_client_fails_loudly_when_the_broker_stays_away(worker, tmp_path):
    w = worker
    impatient = tmp_path / 'impatient.conf'
    impatient.write_text('[client]\ncast_retry_deadline = 2\n')
    volume_id = str(uuid.uuid4())
    commands = {'create': ['create', '--size', '1', '--id', volume_id,
                           '--wait'],
                # Reads honour the same deadline (they waited for minutes).
                'list': ['list'], 'show': ['show', volume_id],
                'capabilities': ['capabilities']}
    with Outage():
        started = time.monotonic()
        clients = {name: subprocess.Popen(
            [os.path.join(process.VENV_BIN, 'volume-worker-client'),
             '--config-file', w.conf_path, '--config-file', str(impatient),
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=dict(os.environ, PYTHONWARNINGS='ignore'))
            for name, args in commands.items()}
        results = {name: client.communicate(timeout=30)
                   for name, client in clients.items()}
        took = time.monotonic() - started
    for name, client in clients.items():
        assert client.returncode == 1, (name, results[name])
        assert results[name][1].startswith(
            'error: request not delivered within 2s'), (name, results[name])
    assert took < 20, took
    # Nothing was queued behind the client's back: the worker, reconnected,
    # serves other requests and never hears of this volume.
    state.wait_until(lambda: _subscribed(w), 30, 'worker subscribed again')
    other = _create(w)
    _wait_available(w, other)
    assert w.db.volume(volume_id) is None
