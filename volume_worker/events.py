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
    """Iterate over events as they arrive: ``for event in stream.events(): ...``.

    The stream survives a broker restart: it connects again and declares
    its queue again (events published while it was away are not seen;
    ``gaps`` counts such interruptions).
    """

    def __init__(self, transport_url, control_exchange='volume-worker',
                 notification_topic='notifications',
                 scheduler_topic='volume-scheduler', capabilities=True,
                 exchange_durable=None, ssl=None):
        self.url = transport_url.replace('rabbit://', 'amqp://', 1)
        if ssl is None:
            ssl = _configured_ssl()
        self.connection = kombu.Connection(self.url, ssl=ssl)
        name = 'volume-worker-watch-%s' % uuid.uuid4().hex[:12]
        if exchange_durable is None:
            exchange_durable = _configured_durability()
        topic_exchange = kombu.Exchange(control_exchange, type='topic',
                                        durable=exchange_durable)
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
        self.gaps = 0

    def start(self):
        self.connection.ensure_connection(max_retries=3)
        self._subscribe()
        return self

    def _subscribe(self):
        for binding in self.queue.bindings:
            _ensure_exchange(self.connection, binding.exchange)
        channel = self.connection.channel()
        self._consumer = kombu.Consumer(channel, queues=[self.queue],
                                        callbacks=[self._on_message],
                                        accept=['json', 'text/plain',
                                                'application/data'],
                                        no_ack=True)
        self._consumer.consume()

    def _on_message(self, body, message):
        try:
            self._buffer.append(to_event(message.body))
        except (ValueError, TypeError, KeyError):
            self._buffer.append({'kind': 'malformed',
                                 'body': repr(message.body)[:200]})

    # Most events one poll() returns: a busy bus cannot hold a caller forever.
    POLL_BATCH = 1000

    def poll(self, timeout):
        """Events that arrived within ``timeout`` seconds (maybe none).

        It waits up to ``timeout`` for the first, then takes every event
        already delivered (one ``drain_events`` handles one message: a
        poll that took only that would fall behind a busy bus).
        """
        import socket
        try:
            self.connection.drain_events(timeout=timeout)
            for _ in range(self.POLL_BATCH - 1):
                self.connection.drain_events(timeout=0.001)
        except socket.timeout:
            pass
        except (OSError,) + tuple(self.connection.connection_errors) + tuple(
                self.connection.channel_errors):
            self._reconnect(timeout)
        out, self._buffer = self._buffer, []
        return out

    def _reconnect(self, timeout):
        """Connect and subscribe again; on failure, try at the next poll."""
        import time
        self.gaps += 1
        try:
            self.connection.close()
        except Exception:  # the old connection is dead already
            pass
        self.connection = kombu.Connection(self.url, connect_timeout=2)
        try:
            self.connection.ensure_connection(max_retries=1)
            self._subscribe()
        except Exception:
            time.sleep(min(timeout, 1.0))

    def events(self, timeout=1.0):
        while True:
            yield from self.poll(timeout)

    def close(self):
        try:
            self.connection.release()
        except Exception:  # closing a dead connection must not mask anything
            pass


def _configured_durability():
    """Durability of the control exchange per the process's configuration."""
    from oslo_config import cfg
    try:
        from volume_worker import opts
        return opts.exchange_durable(cfg.CONF)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        return False


def _configured_ssl():
    """kombu's ``ssl`` per [oslo_messaging_rabbit] of the process's
    configuration, as oslo.messaging's transport connects."""
    from oslo_config import cfg
    try:
        from volume_worker import broker_tls
        return broker_tls.kombu_ssl(cfg.CONF)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
        return False


def _ensure_exchange(connection, exchange):
    """Use ``exchange`` as it exists, or declare it when it does not.

    A declaration that differs from the existing exchange (durable or not)
    is refused by the broker; a passive one never is.
    """
    channel = connection.channel()
    try:
        channel.exchange_declare(exchange.name, exchange.type, passive=True)
        return
    except connection.channel_errors:
        pass  # absent (404): the channel is closed; declare it anew
    finally:
        try:
            channel.close()
        except Exception:  # already closed by the broker
            pass
    exchange(connection.channel()).declare()


class FanoutProbe:
    """Tells whether ``<topic>_fanout`` exists, i.e. whether anyone listens.

    The exchange is auto-deleted with its last consumer; a publish to it
    then fails with 404, which oslo.messaging logs as errors and answers
    with a reconnect. A passive declaration on a connection of our own
    costs one round trip and never disturbs the transport's pool. Used
    from one thread at a time (a backend's report loop).
    """

    def __init__(self, transport_url, topic, connect_timeout=5):
        self.url = transport_url.replace('rabbit://', 'amqp://', 1)
        self.name = '%s_fanout' % topic
        self.connect_timeout = connect_timeout
        self._connection = None
        self._channel = None
        self.broker_error = None  # why the last probe could not ask

    def __call__(self):
        """True when the exchange exists; False when absent or unreachable."""
        try:
            channel = self._ensure_channel()
            channel.exchange_declare(self.name, 'fanout', passive=True)
            self.broker_error = None
            return True
        except Exception as exc:
            if _is_not_found(exc):
                self._channel = None  # the broker closed it
                self.broker_error = None
                return False
            self.broker_error = str(exc) or type(exc).__name__
            self.close()
            return False

    def _ensure_channel(self):
        if self._connection is None:
            self._connection = kombu.Connection(
                self.url, connect_timeout=self.connect_timeout)
            self._connection.ensure_connection(max_retries=1)
        if self._channel is None:
            self._channel = self._connection.channel()
        return self._channel

    def close(self):
        connection, self._connection, self._channel = (
            self._connection, None, None)
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken
                pass


def _is_not_found(exc):
    return getattr(exc, 'code', None) == 404 or 'NOT_FOUND' in str(exc)


def declare_fanout_exchange(transport_url, topic, durable=False):
    """Declare ``<topic>_fanout`` as oslo.messaging's consumers would.

    For tools that stand in for a scheduler; the worker itself never
    declares it (a report for nobody is skipped, see ``FanoutProbe``).
    ``durable``: ``[oslo_messaging_rabbit] rabbit_transient_quorum_queue``,
    as oslo.messaging declares it.
    """
    url = transport_url.replace('rabbit://', 'amqp://', 1)
    with kombu.Connection(url, connect_timeout=5) as connection:
        exchange = kombu.Exchange('%s_fanout' % topic, type='fanout',
                                  durable=durable, auto_delete=True)
        _ensure_exchange(connection, exchange)
