"""Transport, serializer and notifier set-up shared by the worker and its clients."""

import re

import oslo_messaging as messaging
from oslo_context import context as oslo_context
from oslo_log import log as logging
from oslo_messaging.rpc import dispatcher as rpc_dispatcher
from oslo_messaging.rpc import server as rpc_server
from oslo_versionedobjects import exception as ovo_exception

from volume_worker import exception
from volume_worker import notify_publisher
from volume_worker import objects

LOG = logging.getLogger(__name__)

# Exceptions whose type a caller may see as-is (others arrive as RemoteError).
ALLOWED_EXMODS = ['volume_worker.exception', 'drivers.exception']

# The one log line of a request refused before any endpoint ran (the
# logging set-up in config.py bounds and rate-limits it).
REFUSED = '%s refused: %s'
MAX_DEPTH = 32  # nesting of any argument (objects are about 6 deep)
MAX_METHOD = 128


class RefusedArgument(Exception):
    """A request that cannot be dispatched: ``error`` says why, for its caller."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _bounded(value, limit=200):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def check_depth(entity, limit=MAX_DEPTH):
    """Refuse arguments nested deeper than ``limit``, without recursing.

    Deserializing (and validating) nested values recurses: a few hundred
    levels would end every such request in a RecursionError traceback.
    """
    stack = [(entity, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth > limit:
            raise RefusedArgument(exception.InvalidInput(
                reason='arguments nest deeper than %d levels' % limit))
        stack.extend((child, depth + 1) for child in children)


class RequestContextSerializer(messaging.Serializer):
    """Carries the request context and versioned objects across the bus."""

    def __init__(self, base=None):
        self._base = base or objects.VolumeWorkerObjectSerializer()

    def serialize_entity(self, context, entity):
        return self._base.serialize_entity(context, entity)

    def deserialize_entity(self, context, entity):
        return self._base.deserialize_entity(context, entity)

    def serialize_context(self, context):
        if context is None or isinstance(context, dict):
            return context or {}
        return context.to_dict()

    def deserialize_context(self, context):
        return oslo_context.RequestContext.from_dict(context or {})


class RequestSerializer(RequestContextSerializer):
    """The worker's side: what cannot be an argument is refused.

    An object of an unknown or newer version, a malformed primitive, a
    context that is no JSON object, nesting too deep: ``RefusedArgument``
    with the error its caller gets (see ``RefusingDispatcher``).
    """

    def deserialize_entity(self, context, entity):
        check_depth(entity)
        try:
            return self._base.deserialize_entity(context, entity)
        except exception.WorkerException as exc:
            raise RefusedArgument(exc)
        except ovo_exception.IncompatibleObjectVersion as exc:
            kwargs = getattr(exc, 'kwargs', {})
            raise RefusedArgument(exception.IncompatibleObjectVersion(
                objname=_bounded(kwargs.get('objname'), 64),
                objver=_bounded(kwargs.get('objver'), 32),
                supported=_bounded(kwargs.get('supported'), 32)))
        except (ovo_exception.VersionedObjectsException, ValueError,
                TypeError, KeyError, AttributeError) as exc:
            raise RefusedArgument(exception.InvalidInput(
                reason='not a valid object: %s: %s' % (
                    type(exc).__name__, _bounded(str(exc)))))

    def deserialize_context(self, context):
        if context is not None and not isinstance(context, dict):
            raise RefusedArgument(exception.InvalidInput(
                reason='the request context must be a JSON object'))
        check_depth(context)
        try:
            return super().deserialize_context(context)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RefusedArgument(exception.InvalidInput(
                reason='bad request context: %s' % _bounded(str(exc))))


_VERSION = re.compile(r'^\d{1,6}\.\d{1,6}(\.\d{1,6})?$')


class RefusingDispatcher(rpc_dispatcher.RPCDispatcher):
    """oslo.messaging's dispatcher, refusing what cannot be dispatched.

    A request whose envelope is malformed (method, arguments, version),
    whose arguments cannot be deserialized, or that names no method of the
    endpoint, is refused with one log line (method and reason) and its
    caller gets the error (``InvalidInput``, ``IncompatibleObjectVersion``,
    ``NoSuchMethod``...) rather than a traceback in the log. oslo.messaging
    logs only at debug level what is raised as ``ExpectedException``.
    """

    def dispatch(self, incoming):
        message = incoming.message
        method = message.get('method') if isinstance(message, dict) else None
        try:
            _check_envelope(message)
            return super().dispatch(incoming)
        except RefusedArgument as refused:
            error = refused.error
        except (rpc_dispatcher.NoSuchMethod,
                rpc_dispatcher.UnsupportedVersion) as exc:
            error = exc
        # Logged outside the except block: oslo.log would append the
        # active exception to the line.
        LOG.warning(REFUSED, _bounded(method, MAX_METHOD)
                    if isinstance(method, str) else '(no method)', error)
        try:
            raise error
        except Exception:
            raise messaging.ExpectedException()  # takes the error along


def _check_envelope(message):
    if not isinstance(message, dict):
        raise RefusedArgument(exception.InvalidInput(
            reason='the request is no JSON object'))
    method = message.get('method')
    if not isinstance(method, str) or not 0 < len(method) <= MAX_METHOD:
        raise RefusedArgument(exception.InvalidInput(
            reason='method must be a name of at most %d characters'
            % MAX_METHOD))
    if not isinstance(message.get('args', {}), dict):
        raise RefusedArgument(exception.InvalidInput(
            reason='args must be a JSON object'))
    version = message.get('version', '1.0')
    if not isinstance(version, str) or not _VERSION.match(version):
        raise RefusedArgument(exception.InvalidInput(
            reason='version must be MAJOR.MINOR, not %s' % _bounded(
                version, 32)))
    namespace = message.get('namespace')
    if namespace is not None and not isinstance(namespace, str):
        raise RefusedArgument(exception.InvalidInput(
            reason='namespace must be a string'))


def get_rpc_server(transport, target, endpoints):
    """An RPC server whose dispatcher refuses malformed requests (above)."""
    dispatcher = RefusingDispatcher(
        endpoints, RequestSerializer(),
        rpc_dispatcher.ExplicitRPCAccessPolicy)
    return rpc_server.RPCServer(transport, target, dispatcher)


def get_transport(conf):
    return messaging.get_rpc_transport(conf, allowed_remote_exmods=ALLOWED_EXMODS)


def get_notification_transport(conf):
    return messaging.get_notification_transport(
        conf, allowed_remote_exmods=ALLOWED_EXMODS)


class QueueConflict(RuntimeError):
    """A queue or exchange exists on the broker with other arguments."""


def declare_server_queues(transport, topic, servers):
    """Declare the queues RPC servers of ``servers`` will consume, now.

    The worker calls this before its drivers are set up, and starts its
    RPC servers only once they are ready: requests sent meanwhile wait in
    the (durable) queues on the broker, not in the worker's memory, so a
    worker that dies or is stopped during set-up loses none of them, and
    none is taken before its backend can serve it.

    Why not start the servers at once and hold requests until the driver
    is ready? oslo.messaging acknowledges a request before it dispatches
    it: every request held that way would already be gone from the broker,
    and a crash during a long ``do_setup`` would lose them all.

    The queues are declared through oslo.messaging's own rabbit connection
    and consumer declaration (``declare_topic_consumer``, what its RPC
    listener calls), so their arguments (durable, quorum, delivery limit,
    exchange) are exactly those the server declares again later; nothing
    consumes from this connection, which is closed at once. Returns the
    queue names, or None for a transport that is not RabbitMQ.
    """
    driver = getattr(transport, '_driver', None)
    get_connection = getattr(driver, '_get_connection', None)
    if get_connection is None or not hasattr(driver, '_get_exchange'):
        LOG.info('Transport %s declares its queues only when its RPC '
                 'servers start', type(driver).__name__)
        return None
    from oslo_messaging._drivers import common as driver_common
    exchange = driver._get_exchange(messaging.Target(topic=topic))
    # The shared topic queue, then one per server: as the listener does.
    names = [topic] + ['%s.%s' % (topic, server) for server in servers]
    with get_connection(driver_common.PURPOSE_LISTEN) as conn:
        declare = getattr(conn.connection, 'declare_topic_consumer', None)
        if declare is None:
            return None
        for name in names:
            try:
                declare(exchange_name=exchange, topic=name, callback=None)
            except Exception as exc:
                if 'PRECONDITION_FAILED' in str(exc) or \
                        type(exc).__name__ == 'PreconditionFailed':
                    raise QueueConflict(
                        'queue %s (exchange %s) exists on the broker with '
                        'other arguments than [oslo_messaging_rabbit] asks '
                        'for: %s. It was declared by an older volume-worker '
                        'or other settings; see "Moving to quorum queues" '
                        'in the README.' % (name, exchange, exc)) from exc
                raise
    return names


def get_serializer():
    return RequestContextSerializer()


def admin_context():
    return oslo_context.RequestContext(is_admin=True, overwrite=False)


class Notifier:
    """Publishes volume.* notifications; a failure to publish never fails an operation.

    On RabbitMQ with the ``messagingv2`` driver, notifications are queued to
    a ``NotificationPublisher`` (notify_publisher.py) and the operation goes
    on; otherwise oslo.messaging's ``Notifier`` sends each one in turn.
    """

    def __init__(self, transport, publisher_id):
        self._serializer = get_serializer()
        self._notifier = messaging.Notifier(
            transport, publisher_id=publisher_id,
            serializer=self._serializer)
        self.publisher = None
        reason = notify_publisher.fast_path_for(transport)
        if reason is None:
            self.publisher = notify_publisher.NotificationPublisher(
                transport, publisher_id,
                transport.conf.oslo_messaging_notifications.topics)
        else:
            LOG.debug('Notifications sent one by one: %s', reason)

    def info(self, event_type, volume, **extra):
        self._emit('info', event_type, volume, extra)

    def error(self, event_type, volume, **extra):
        self._emit('error', event_type, volume, extra)

    def refused(self, event_type, resource_type, resource_id, reason):
        """``<event>.error`` for a request refused before it changed anything.

        A cast has no reply: this is how its sender learns the reason.
        """
        self._send('error', event_type, {
            '%s_id' % resource_type: resource_id, 'status': None,
            'reason': reason, 'refused': True})

    def publish(self, event_type, payload, priority='info'):
        """A notification with a payload the caller built (progress)."""
        self._send(priority, event_type, dict(payload))

    def close(self, timeout=10.0):
        """Send what is queued, then release the publisher's connection."""
        if self.publisher is not None:
            self.publisher.close(timeout)

    def _emit(self, priority, event_type, volume, extra):
        payload = volume.notification_payload()
        payload.update(extra)
        self._send(priority, event_type, payload)

    def _send(self, priority, event_type, payload):
        try:
            if self.publisher is not None:
                self.publisher.submit(
                    priority, event_type,
                    self._serializer.serialize_entity({}, payload))
            else:
                getattr(self._notifier, priority)({}, event_type, payload)
        except Exception:
            LOG.exception('Could not publish %s for %s', event_type,
                          payload.get('volume_id') or
                          payload.get('snapshot_id'))
