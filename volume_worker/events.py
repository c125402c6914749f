"""Follows what workers publish: notifications and capability reports.

An exclusive, auto-deleted queue bound to the notification topics and to the
scheduler's fanout exchange, so a watcher sees every event and leaves nothing
behind on the broker when it goes.
"""

import json
import uuid

import kombu

NOTIFICATION_PRIORITIES = ('info', 'error', 'warn')


def _unwrap(body):
    """The payload of an oslo.messaging envelope (or the body as it is)."""
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    if isinstance(body, dict) and 'oslo.message' in body:
        body = json.loads(body['oslo.message'])
    return body


def to_event(body):
    """One JSON-friendly event from a raw message body."""
    msg = _unwrap(body)
    if 'event_type' in msg:
        return {'kind': 'notification', 'event_type': msg['event_type'],
                'priority': msg.get('priority'),
                'publisher_id': msg.get('publisher_id'),
                'timestamp': msg.get('timestamp'),
                'payload': msg.get('payload')}
    if msg.get('method') == 'update_service_capabilities':
        args = msg.get('args', {})
        return {'kind': 'capabilities', 'host': args.get('host'),
                'timestamp': args.get('timestamp'),
                'capabilities': args.get('capabilities')}
    return {'kind': 'other', 'message': msg}


class EventStream:
    """Iterate over events as they arrive: ``for event in stream.events(): ...``."""

    def __init__(self, transport_url, control_exchange='volume-worker',
                 notification_topic='notifications',
                 scheduler_topic='volume-scheduler', capabilities=True):
        self.url = transport_url.replace('rabbit://', 'amqp://', 1)
        self.connection = kombu.Connection(self.url)
        name = 'volume-worker-watch-%s' % uuid.uuid4().hex[:12]
        topic_exchange = kombu.Exchange(control_exchange, type='topic',
                                        durable=False)
        fanout = kombu.Exchange('%s_fanout' % scheduler_topic, type='fanout',
                                durable=False, auto_delete=True)
        bindings = [kombu.binding(topic_exchange, routing_key='%s.%s' % (
            notification_topic, p)) for p in NOTIFICATION_PRIORITIES]
        if capabilities:
            # Binding to the auto-deleted fanout exchange means it goes
            # when we do: watchers that need no reports leave it alone.
            bindings.append(kombu.binding(fanout))
        self.queue = kombu.Queue(name, bindings=bindings, exclusive=True,
                                 auto_delete=True, durable=False)
        self._buffer = []
        self._consumer = None

    def start(self):
        self.connection.ensure_connection(max_retries=3)
        channel = self.connection.channel()
        for binding in self.queue.bindings:
            binding.exchange(channel).declare()
        self._consumer = kombu.Consumer(channel, queues=[self.queue],
                                        callbacks=[self._on_message],
                                        accept=['json', 'text/plain',
                                                'application/data'],
                                        no_ack=True)
        self._consumer.consume()
        return self

    def _on_message(self, body, message):
        try:
            self._buffer.append(to_event(message.body))
        except (ValueError, TypeError, KeyError):
            self._buffer.append({'kind': 'malformed',
                                 'body': repr(message.body)[:200]})

    def poll(self, timeout):
        """Events that arrived within ``timeout`` seconds (maybe none)."""
        import socket
        try:
            self.connection.drain_events(timeout=timeout)
        except socket.timeout:
            pass
        out, self._buffer = self._buffer, []
        return out

    def events(self, timeout=1.0):
        while True:
            yield from self.poll(timeout)

    def close(self):
        try:
            self.connection.release()
        except Exception:  # closing a dead connection must not mask anything
            pass


def declare_fanout_exchange(transport_url, topic):
    """Declare ``<topic>_fanout`` as oslo.messaging's consumers would.

    oslo.messaging publishes a fanout cast to an exchange that only its
    consumers declare; with no scheduler up yet, every report would fail and
    log an error. Declaring it ourselves makes such a report a quiet no-op.
    """
    url = transport_url.replace('rabbit://', 'amqp://', 1)
    with kombu.Connection(url, connect_timeout=5) as connection:
        exchange = kombu.Exchange('%s_fanout' % topic, type='fanout',
                                  durable=False, auto_delete=True)
        exchange(connection.channel()).declare()
