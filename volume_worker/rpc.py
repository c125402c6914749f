"""Transport, serializer and notifier set-up shared by the worker and its clients."""

import oslo_messaging as messaging
from oslo_context import context as oslo_context
from oslo_log import log as logging

from volume_worker import objects

LOG = logging.getLogger(__name__)

# Exceptions whose type a caller may see as-is (others arrive as RemoteError).
ALLOWED_EXMODS = ['volume_worker.exception', 'drivers.exception']


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


def get_transport(conf):
    return messaging.get_rpc_transport(conf, allowed_remote_exmods=ALLOWED_EXMODS)


def get_notification_transport(conf):
    return messaging.get_notification_transport(
        conf, allowed_remote_exmods=ALLOWED_EXMODS)


def get_serializer():
    return RequestContextSerializer()


def admin_context():
    return oslo_context.RequestContext(is_admin=True, overwrite=False)


class Notifier:
    """Publishes volume.* notifications; a failure to publish never fails an operation."""

    def __init__(self, transport, publisher_id):
        self._notifier = messaging.Notifier(
            transport, publisher_id=publisher_id,
            serializer=get_serializer())

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

    def _emit(self, priority, event_type, volume, extra):
        payload = volume.notification_payload()
        payload.update(extra)
        self._send(priority, event_type, payload)

    def _send(self, priority, event_type, payload):
        try:
            getattr(self._notifier, priority)({}, event_type, payload)
        except Exception:
            LOG.exception('Could not publish %s for %s', event_type,
                          payload.get('volume_id') or
                          payload.get('snapshot_id'))


