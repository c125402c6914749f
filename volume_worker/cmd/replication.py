"""Operator commands on a backend's replication, shared by the client and
``volume-worker-manage``: fail over (and follow it to its end), freeze, thaw.
"""

import time


class FailoverFollowError(Exception):
    """The failover was refused, failed, or did not end in time."""


def failover(conf, backend, target, wait=True, timeout=600):
    """Cast ``failover_host`` to ``backend``; with ``wait`` follow its
    notifications to the end. Returns the ``.end`` payload (the service)."""
    from volume_worker import events
    from volume_worker import rpc
    from volume_worker import rpcapi
    api = rpcapi.VolumeAPI(conf)
    stream = None
    if wait:
        # Listening before the cast: a refusal has no reply, only its
        # error notification.
        stream = events.EventStream(
            conf.transport_url, control_exchange=conf.control_exchange,
            capabilities=False).start()
    try:
        api.failover_host(rpc.admin_context(), backend,
                          secondary_backend_id=target)
        if stream is None:
            return None
        return follow(stream, backend, 'replication.failover', timeout)
    finally:
        if stream is not None:
            stream.close()


def follow(stream, backend, event, timeout):
    """The payload of ``backend``'s next ``<event>.end``; raises on
    ``.error``."""
    publisher = 'volume-worker.%s' % backend
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in stream.poll(0.5):
            if item.get('publisher_id') != publisher:
                continue
            kind = item.get('event_type') or ''
            payload = item.get('payload') or {}
            if kind == event + '.end':
                return payload
            if kind == event + '.error':
                raise FailoverFollowError('%s %s: %s' % (
                    event, 'refused' if payload.get('refused') else 'failed',
                    payload.get('reason') or 'see the worker log'))
    raise FailoverFollowError('%s of %s did not end within %ss'
                              % (event, backend, timeout))


def freeze(conf, backend, frozen):
    """Call ``freeze_host`` (or ``thaw_host``) on ``backend``."""
    from volume_worker import rpc
    from volume_worker import rpcapi
    api = rpcapi.VolumeAPI(conf)
    method = api.freeze_host if frozen else api.thaw_host
    return method(rpc.admin_context(), backend)
