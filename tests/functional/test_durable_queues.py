"""No request lost: casts wait on the broker for a worker that is down,
still setting up its driver, or cut off by a RabbitMQ restart; each is
served once. And a long burst: every completion accounted for.

Real broker, real worker processes. The worker's queues are quorum queues
(the project's default), declared before driver set-up.
"""

import collections
import json
import os
import subprocess
import uuid

import kombu
import pytest

from tests.functional.conftest import fake_backend
from tests.functional.conftest import fake_backend_volumes
from volume_worker.objects import VolumeStatus
from volume_worker.testing import process
from volume_worker.testing import state

SETUP_SECONDS = 4
READY = 'Driver FakeDriver of backend'  # ... is ready
# Reconnect quickly after the outage (oslo.messaging's back-off grows to 30 s).
RABBIT = {'rabbit_retry_interval': '1', 'rabbit_retry_backoff': '1',
          'rabbit_interval_max': '2'}


class Rig:
    """One worker's config, database and broker view; started as needed."""

    def __init__(self, tmp_path, executor='eventlet', **backend_options):
        from volume_worker import events
        from volume_worker import rpc
        from volume_worker import rpcapi
        self.state_dir = str(tmp_path / 'state')
        os.makedirs(self.state_dir, exist_ok=True)
        self.conf_path, settings = process.write_config(
            self.state_dir, executor=executor,
            sections={'oslo_messaging_rabbit': RABBIT},
            backends={'fake1': fake_backend('fake1', self.state_dir,
                                            **backend_options)})
        self.backend = settings['backends'][0]
        self.db = state.WorkerDB(
            'sqlite:///%s/volume-worker.sqlite' % self.state_dir)
        self.conf = process.client_config(self.conf_path)
        self.api = rpcapi.VolumeAPI(self.conf, timeout=30)
        self.ctx = rpc.admin_context()
        self.events = events.EventStream(
            self.conf.transport_url, capabilities=False).start()
        self.counts = collections.Counter()
        self.runs = 0
        self.worker = None

    def start(self, wait_ready=True):
        self.runs += 1
        self.worker = process.WorkerProcess(
            self.conf_path, '%s.%d.log' % (self.conf_path, self.runs))
        return self.worker.start(wait_ready=wait_ready)

    def cast_create(self, volume_id=None):
        from volume_worker import objects
        volume = objects.Volume(id=volume_id or str(uuid.uuid4()), size=1,
                                host=self.backend, metadata={})
        self.api.create_volume(self.ctx, self.backend, volume)
        return volume.id

    def queue(self):
        """(messages waiting, consumers) of this backend's own queue."""
        with kombu.Connection(self.conf.transport_url.replace(
                'rabbit://', 'amqp://'), connect_timeout=5) as conn:
            ok = conn.default_channel.queue_declare(
                queue='%s.%s' % (self.conf.volume_topic, self.backend),
                passive=True)
            return ok.message_count, ok.consumer_count

    def wait_events_flowing(self, timeout=30):
        """Poll the event stream until a probe published now comes back.

        After a broker restart the stream subscribes again only when polled;
        what the worker publishes before that is not seen.
        """
        probe = 'probe-%s' % uuid.uuid4().hex

        def arrived():
            with kombu.Connection(self.conf.transport_url.replace(
                    'rabbit://', 'amqp://'), connect_timeout=5) as conn:
                conn.Producer().publish(
                    {'probe': probe}, exchange=self.conf.control_exchange,
                    routing_key='notifications.info', declare=[])
            return any(probe in json.dumps(event)
                       for event in self.events.poll(1.0))
        state.wait_until(arrived, timeout, 'event stream subscribed again')

    def collect(self, timeout=0.2):
        for event in self.events.poll(timeout):
            if event.get('kind') == 'notification':
                self.counts[(event['event_type'],
                             event['payload'].get('volume_id'))] += 1

    def wait_served(self, volume_ids, timeout=30):
        """Every volume available, its create.end seen; none started twice."""
        def done():
            self.collect()
            return all(self.counts[('volume.create.end', v)]
                       for v in volume_ids)
        state.wait_until(done, timeout, 'creates served')
        self.collect(0.5)  # a duplicate would show up by now
        for volume_id in volume_ids:
            assert self.db.status(volume_id) == VolumeStatus.AVAILABLE
            # Served once: never two starts or two ends. (A start published
            # while this test's event stream reconnects after a broker
            # restart can be missed; the end, published later, is not.)
            assert self.counts[('volume.create.start', volume_id)] <= 1
            assert self.counts[('volume.create.end', volume_id)] == 1
        assert set(volume_ids) <= fake_backend_volumes(self.state_dir,
                                                       'fake1')

    def close(self):
        if self.worker is not None:
            self.worker.stop()
        self.events.close()
        self.db.close()


@pytest.fixture
def slow_setup_rig(tmp_path):
    r = Rig(tmp_path, fake_fault_delay='do_setup:%d' % SETUP_SECONDS)
    try:
        yield r
    finally:
        r.close()


def test_casts_wait_for_a_stopped_and_for_a_starting_worker(slow_setup_rig):
    rig = slow_setup_rig
    rig.start()
    assert rig.worker.terminate(30) == 0

    # (a) The worker is stopped: the cast waits in its queue.
    while_stopped = rig.cast_create()
    state.wait_until(lambda: rig.queue() == (1, 0), 10, 'cast queued')

    # (b) The worker starts: its queue is declared (again) first, then the
    # driver sets up for SETUP_SECONDS; a cast sent now waits too, and
    # nothing is taken before the driver is ready.
    rig.start(wait_ready=False)
    rig.worker.wait_for_log('Queues of %s declared' % rig.backend, 30)
    during_setup = rig.cast_create()
    state.wait_until(lambda: rig.queue()[0] == 2, 10, 'both casts queued')
    assert READY not in rig.worker.log_text()
    assert rig.db.volume(while_stopped) is None

    rig.worker.wait_for_log('volume-worker started on', 30)
    log = rig.worker.log_text()
    assert log.index(READY) < log.index('listening on')
    rig.wait_served([while_stopped, during_setup])
    assert rig.queue() == (0, 1)


def test_a_classic_queue_in_the_way_is_a_clear_start_up_error(tmp_path):
    """An older worker's classic queue cannot become a quorum queue."""
    rig = Rig(tmp_path)
    try:
        with kombu.Connection(rig.conf.transport_url.replace(
                'rabbit://', 'amqp://'), connect_timeout=5) as conn:
            conn.default_channel.queue_declare(
                queue='%s.%s' % (rig.conf.volume_topic, rig.backend),
                durable=False, auto_delete=False)
        worker = rig.start(wait_ready=False)
        assert worker.proc.wait(60) == 1
        log = worker.log_text()
        assert 'exists on the broker with other arguments' in log
        assert 'Moving to quorum queues' in log
        assert READY not in log
    finally:
        rig.close()


@pytest.mark.skipif(
    subprocess.run(['which', 'rabbitmqctl'],
                   capture_output=True).returncode != 0,
    reason='rabbitmqctl is not installed')
def test_casts_survive_a_broker_restart(tmp_path):
    """(c) Queued before ``stop_app`` or sent during the outage: served once.

    The worker is down throughout, so the broker alone keeps them: the
    queued message on disk, the durable exchange's binding for the cast the
    client sends when the broker is back (before any worker re-declared
    anything).
    """
    rig = Rig(tmp_path)
    client = None
    try:
        rig.start()
        assert rig.worker.terminate(30) == 0
        queued = rig.cast_create()
        state.wait_until(lambda: rig.queue() == (1, 0), 10, 'cast queued')
        late = str(uuid.uuid4())
        with process.BrokerOutage():
            # A client sending during the outage retries until it is back.
            client = subprocess.Popen(
                [os.path.join(process.VENV_BIN, 'volume-worker-client'),
                 '--config-file', rig.conf_path, 'create', '--size', '1',
                 '--id', late],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, PYTHONWARNINGS='ignore'))
            try:
                client.wait(2)
                pytest.fail('the client gave up during the outage: %s'
                            % (client.communicate(),))
            except subprocess.TimeoutExpired:
                pass
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        assert '"requested"' in out
        state.wait_until(lambda: rig.queue() == (2, 0), 10, 'both queued')

        rig.wait_events_flowing()
        rig.start()
        rig.wait_served([queued, late])
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        rig.close()


BURST = 400


def test_a_long_burst_is_served_completely(tmp_path):
    """Every create and delete of a burst ends once; no pool starvation.

    The worker runs up to executor_thread_pool_size requests at a time,
    each publishing notifications through oslo.messaging's connection
    pool; with a pool smaller than that, senders queue for connections
    (the log's "Connection pool limit exceeded").
    """
    rig = Rig(tmp_path)
    try:
        rig.start()
        ids = [rig.cast_create() for _ in range(BURST)]
        rig.wait_served(ids, timeout=60)
        for volume_id in ids:
            rig.api.delete_volume(rig.ctx, rig.backend, volume_id)

        def deleted():
            rig.collect()
            return all(rig.counts[('volume.delete.end', v)] for v in ids)
        state.wait_until(deleted, 60, 'deletes served')
        rig.collect(0.5)
        assert all(rig.counts[('volume.delete.end', v)] == 1 for v in ids)
        # (The stream sees every worker's notifications: count ours.)
        mine = set(ids)
        assert not [e for e in rig.counts
                    if e[0].endswith('.error') and e[1] in mine]
        assert rig.db.live_volumes() == []
        assert fake_backend_volumes(rig.state_dir, 'fake1') == set()
        log = rig.worker.log_text()
        assert 'Connection pool limit exceeded' not in log
        assert ' ERROR ' not in log
    finally:
        rig.close()
