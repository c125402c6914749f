"""The notification publisher against the real RabbitMQ.

What it sends must be what oslo.messaging's own notifier sends (listeners
read both alike), in order, each at least once, also across a connection
that dies under it.
"""

import json
import socket
import uuid

import kombu
import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from volume_worker import notify_publisher
from volume_worker import rpc

URL = 'rabbit://guest:guest@127.0.0.1:5672/'
AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//'


@pytest.fixture
def bus():
    """A transport on an exchange of its own, and a way to read its queue."""
    suffix = uuid.uuid4().hex[:10]
    exchange, topic = 'vw-np-%s' % suffix, 'notifications-%s' % suffix
    conf = cfg.ConfigOpts()
    conf([])
    transport = messaging.get_notification_transport(conf, url=URL)
    conf.set_override('control_exchange', exchange)
    # A notifier registers the notification options the publisher reads.
    oslo = messaging.Notifier(transport, publisher_id='oslo',
                              driver='messagingv2', topics=[topic])
    conf.set_override('driver', ['messagingv2'],
                      group='oslo_messaging_notifications')
    conf.set_override('topics', [topic],
                      group='oslo_messaging_notifications')
    bus = Bus(transport, oslo, exchange, topic)
    yield bus
    for publisher in bus.publishers:
        publisher.close(5)
    transport.cleanup()
    with kombu.Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for priority in ('info', 'error'):
            try:
                channel.queue_delete('%s.%s' % (topic, priority))
            except Exception:
                channel = conn.channel()
        try:
            channel.exchange_delete(exchange)
        except Exception:
            pass


class Bus:
    def __init__(self, transport, oslo, exchange, topic):
        self.transport, self.oslo = transport, oslo
        self.exchange, self.topic = exchange, topic
        self.publishers = []

    def publisher(self):
        assert notify_publisher.fast_path_for(self.transport) is None
        publisher = notify_publisher.NotificationPublisher(
            self.transport, 'fast', [self.topic])
        self.publishers.append(publisher)
        return publisher

    def take(self, count, priority='info'):
        """The next ``count`` raw messages of the default queue, in order."""
        out = []
        with kombu.Connection(AMQP_URL) as conn:
            channel = conn.channel()
            queue = '%s.%s' % (self.topic, priority)
            for _ in range(count):
                message = channel.basic_get(queue, no_ack=True)
                assert message is not None, 'only %d of %d messages' % (
                    len(out), count)
                out.append(message)
            assert channel.basic_get(queue, no_ack=True) is None
        return out


def _inner(message):
    return json.loads(json.loads(message.body)['oslo.message'])


def test_wire_format_is_oslo_messagings(bus):
    payload = {'volume_id': str(uuid.uuid4()), 'status': 'available',
               'size': 3}
    bus.oslo.info({}, 'volume.create.end', payload)
    publisher = bus.publisher()
    publisher.submit('info', 'volume.create.end', payload)
    assert publisher.flush(10)
    theirs, ours = bus.take(2)
    for key in ('content_type', 'content_encoding', 'application_headers',
                'delivery_mode', 'priority'):
        assert ours.properties.get(key) == theirs.properties.get(key), key
    assert set(json.loads(ours.body)) == set(json.loads(theirs.body))
    mine, oslo = _inner(ours), _inner(theirs)
    assert set(mine) == set(oslo)
    for key in ('event_type', 'priority', 'payload'):
        assert mine[key] == oslo[key]
    assert mine['publisher_id'] == 'fast'
    assert mine['message_id'] != oslo['message_id']


def test_an_oslo_listener_reads_them(bus):
    class Endpoint:
        def __init__(self):
            self.seen = []

        def info(self, ctxt, publisher_id, event_type, payload, metadata):
            self.seen.append((event_type, payload['n']))

    endpoint = Endpoint()
    listener = messaging.get_notification_listener(
        bus.transport, [messaging.Target(topic=bus.topic)], [endpoint],
        executor='threading')
    listener.start()
    try:
        publisher = bus.publisher()
        for n in range(20):
            publisher.submit('info', 'volume.delete.end', {'n': n})
        assert publisher.flush(10)
        import time
        deadline = time.monotonic() + 10
        while len(endpoint.seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.stop()
        listener.wait()
    assert endpoint.seen == [('volume.delete.end', n) for n in range(20)]


def test_many_arrive_once_and_in_order(bus):
    publisher = bus.publisher()
    for n in range(1000):
        publisher.submit('info' if n % 10 else 'error', 'volume.create.end',
                         {'n': n})
    assert publisher.flush(30)
    assert publisher.sent_total == 1000
    infos = [_inner(m)['payload']['n'] for m in bus.take(900)]
    errors = [_inner(m)['payload']['n'] for m in bus.take(100, 'error')]
    assert infos == [n for n in range(1000) if n % 10]
    assert errors == list(range(0, 1000, 10))


def test_a_dead_connection_loses_nothing(bus):
    publisher = bus.publisher()
    for n in range(10):
        publisher.submit('info', 'volume.create.end', {'n': n})
    assert publisher.flush(10)
    # The broker connection goes away under the publisher.
    before = publisher._channel
    publisher._conn.connection.connection.sock.shutdown(socket.SHUT_RDWR)
    for n in range(10, 30):
        publisher.submit('info', 'volume.create.end', {'n': n})
    assert publisher.flush(60)
    assert publisher._channel is not before     # it really reconnected
    seen = []
    with kombu.Connection(AMQP_URL) as conn:
        channel = conn.channel()
        while True:
            message = channel.basic_get('%s.info' % bus.topic, no_ack=True)
            if message is None:
                break
            seen.append(_inner(message)['payload']['n'])
    assert set(seen) == set(range(30))          # none lost
    assert seen[:10] == list(range(10))
    later = [n for n in seen[10:] if n >= 10]
    assert later == sorted(later)               # resent in order


def test_close_sends_what_is_queued(bus):
    publisher = bus.publisher()
    for n in range(200):
        publisher.submit('info', 'volume.create.end', {'n': n})
    publisher.close(30)
    assert [_inner(m)['payload']['n'] for m in bus.take(200)] == \
        list(range(200))
    with pytest.raises(RuntimeError):
        publisher.submit('info', 'volume.create.end', {'n': 200})


def test_the_worker_notifier_takes_the_fast_path_on_rabbit(bus):
    notifier = rpc.Notifier(bus.transport, 'volume-worker.test')
    assert notifier.publisher is not None
    bus.publishers.append(notifier.publisher)
    notifier.refused('volume.create', 'volume', 'v-1', 'no such thing')
    notifier.close(10)
    (message,) = bus.take(1, 'error')
    assert _inner(message)['payload'] == {
        'volume_id': 'v-1', 'status': None, 'reason': 'no such thing',
        'refused': True}


_LONE_UNDER_EVENTLET = r'''
import eventlet
eventlet.monkey_patch()
import sys
from oslo_config import cfg
import oslo_messaging as messaging
from volume_worker import concurrency, notify_publisher
concurrency.setup(concurrency.EVENTLET)
exchange, topic = sys.argv[1], sys.argv[2]
conf = cfg.ConfigOpts()
conf([])
transport = messaging.get_notification_transport(conf, url=%(url)r)
conf.set_override('control_exchange', exchange)
messaging.Notifier(transport, publisher_id='oslo', driver='messagingv2',
                   topics=[topic])
conf.set_override('driver', ['messagingv2'],
                  group='oslo_messaging_notifications')
publisher = notify_publisher.NotificationPublisher(transport, 'fast', [topic])
publisher.submit('info', 'volume.create.start', {'n': 0})  # declares
assert publisher.flush(30)
publisher.submit('info', 'volume.create.start', {'n': 0})  # opens its channel
assert publisher.flush(30)
published = []
for n in range(1, 4):
    publisher.submit('info', 'volume.create.end', {'n': n})
    # No green switch here: only what submit() let run has run.
    published.append(publisher._sent)  # published on its channel
    assert publisher.flush(30)  # confirmed: the next one finds it idle
publisher.close(10)
transport.cleanup()
print(published, publisher.sent_total)
''' % {'url': URL}


def test_a_lone_notification_leaves_before_the_operation_goes_on(bus):
    """Under eventlet the publisher runs only when the operation yields; an
    idle publisher is handed the processor at submit, so a lone operation's
    notification is on the wire before the rest of the operation runs."""
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, '-c', _LONE_UNDER_EVENTLET, bus.exchange,
         bus.topic], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    progress, total = out.stdout.split('\n')[-2].rsplit(' ', 1)
    # Each submit returned after its message was published on the
    # publisher's channel (the first went through oslo's declaring path,
    # the second opened the channel).
    assert json.loads(progress) == [2, 3, 4]
    assert int(total) == 5
    assert [_inner(m)['payload']['n'] for m in bus.take(5)] == [0, 0, 1, 2, 3]
