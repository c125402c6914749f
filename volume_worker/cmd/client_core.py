"""The client's machinery: the RPC client with its retries and waits, and what a command is.

``client_commands.COMMANDS`` declares the commands; ``client`` parses argv.
"""

import sys
import time

from volume_worker.cmd import output
from volume_worker import timestamps

EXIT_ERROR = 1
EXIT_USAGE = 2


class ClientError(Exception):
    """One line for stderr, and a non-zero exit."""


def _object_json(obj):
    out = {}
    for name, field in obj.fields.items():
        if (name in ('provider_auth', 'volume_type') or
                not obj.obj_attr_is_set(name)):
            continue
        value = getattr(obj, name)
        out[name] = (timestamps.iso(value) if hasattr(value, 'strftime')
                     else value)
    return out


def _print(obj):
    output.emit(obj)


class Client:
    def __init__(self, conf):
        from volume_worker import rpc
        from volume_worker import rpcapi
        self.conf = conf
        self.ctx = rpc.admin_context()
        self.api = rpcapi.VolumeAPI(conf)
        # One connection attempt per try, so that retrying() bounds the
        # whole by the deadline: oslo.messaging's default (retry=None)
        # blocks forever while the broker is away.
        self.api.client = self.api.client.prepare(retry=0)
        self.deadline = conf.client.cast_retry_deadline
        self.stream = None
        self.reasons = {}  # resource id -> reason of its error notification
        self.ended = {}  # resource id -> its last <event>.end seen

    def listen(self):
        """Follow the worker's notifications from now on (for --wait)."""
        from volume_worker import events
        stream = events.EventStream(
            self.conf.transport_url,
            control_exchange=self.conf.control_exchange,
            capabilities=False)
        try:
            self.stream = stream.start()
        except Exception:
            stream.close()
            raise

    def _pause(self, seconds, resource_id):
        """Sleep, or read notifications meanwhile; raise on a refusal."""
        if self.stream is None:
            time.sleep(seconds)
            return
        for event in self.stream.poll(seconds):
            payload = event.get('payload') or {}
            event_type = event.get('event_type') or ''
            if resource_id not in (payload.get('volume_id'),
                                   payload.get('snapshot_id'),
                                   payload.get('group_id'),
                                   payload.get('group_snapshot_id'),
                                   payload.get('backup_id')):
                continue
            if event_type.endswith('.end'):
                self.ended[resource_id] = event_type
                continue
            if event_type.endswith('.progress'):
                self.show_progress(event_type, payload)
                continue
            if not event_type.endswith('.error'):
                continue
            if payload.get('refused'):
                raise ClientError('%s refused: %s' % (
                    event['event_type'].rsplit('.', 1)[0],
                    payload.get('reason')))
            self.reasons[resource_id] = payload.get('reason') or 'failed'


    def await_reason(self, resource_id, timeout=3.0):
        """The error notification of a resource seen failed by its status
        (it is published just after): read on a little for its reason."""
        if self.stream is None:
            return
        deadline = time.monotonic() + timeout
        while (resource_id not in self.reasons and
               time.monotonic() < deadline):
            self._pause(0.2, resource_id)

    BAR = 30

    def show_progress(self, event_type, payload):
        """A copy's progress: a bar on a terminal, else (--json) a JSON line."""
        percent = payload.get('percent') or 0
        if output.current() == output.TABLE:
            filled = self.BAR * percent // 100
            sys.stderr.write('\r%s [%s%s] %3d%%' % (
                event_type.rsplit('.', 1)[0], '#' * filled,
                '-' * (self.BAR - filled), percent))
            sys.stderr.flush()
            self._bar_shown = True
        else:
            _print({'event_type': event_type, 'percent': percent,
                    'bytes_done': payload.get('bytes_done'),
                    'total_bytes': payload.get('total_bytes')})

    def progress_done(self):
        if getattr(self, '_bar_shown', False):
            sys.stderr.write('\n')
            self._bar_shown = False

    def default_backend(self):
        """The first backend, by its cluster's name in a cluster (any
        member serves it; with workers = N the cluster is named by host)."""
        from volume_worker import cluster
        return cluster.backend_name(self.conf, self.conf.enabled_backends[0])

    def retrying(self, fn, *args, **kwargs):
        """Retry while the broker is unreachable, up to the deadline, then fail loudly.

        Until a request has gone through, each attempt first checks that a
        broker accepts connections (one bounded TCP connect): a call sets
        up its reply queue with oslo.messaging's own retries, which wait
        for the broker forever, so a read command would hang rather than
        fail at the deadline as a cast does.
        """
        import kombu.exceptions
        import oslo_messaging as messaging
        stop = time.monotonic() + self.deadline
        while True:
            try:
                if not getattr(self, '_broker_seen', False):
                    _check_broker(self.conf, max(0.5, min(
                        2.0, stop - time.monotonic())))
                result = fn(*args, **kwargs)
                self._broker_seen = True
                return result
            except (messaging.MessageDeliveryFailure,
                    messaging.MessagingTimeout, OSError,
                    kombu.exceptions.OperationalError) as exc:
                self._broker_seen = False
                if time.monotonic() >= stop:
                    raise ClientError('request not delivered within %ss: %s'
                                      % (self.deadline, exc))
                time.sleep(max(0.0, min(1.0, stop - time.monotonic())))

    def get(self, kind, backend, resource_id):
        """The resource, or None when the worker does not know it."""
        getter = getattr(self.api, 'get_' + kind)
        try:
            return self.retrying(getter, self.ctx, backend, resource_id)
        except Exception as exc:
            # NotOwned: it lives on another backend (migrated), not here.
            if 'NotFound' in type(exc).__name__ or \
                    'NotOwned' in type(exc).__name__:
                return None
            raise

    def wait_for(self, kind, backend, resource_id, done, timeout,
                 appear_within=None):
        """Poll until ``done(resource)``; ``resource`` is None while not found.

        With ``appear_within``, a resource still unknown after that many
        seconds means the worker rejected the request: fail, do not wait on.
        """
        start = time.monotonic()
        delay = 0.01
        while time.monotonic() < start + timeout:
            resource = self.get(kind, backend, resource_id)
            if done(resource):
                return resource
            if (resource is None and appear_within is not None and
                    time.monotonic() - start > appear_within):
                raise ClientError('%s %s never appeared on %s: the worker '
                                  'rejected the request (see its log)'
                                  % (kind, resource_id, backend))
            self._pause(delay, resource_id)
            delay = min(delay * 2, 0.5)
        raise ClientError('%s %s did not settle within %ss'
                          % (kind, resource_id, timeout))


def _check_broker(conf, timeout):
    """Raise OSError unless some broker of ``transport_url`` takes a connection.

    With TLS, a broker whose certificate the CA does not trust raises
    ``broker_tls.UntrustedBroker`` (not retried: waiting cannot fix it).
    """
    import socket
    import oslo_messaging as messaging
    from volume_worker import broker_tls
    url = messaging.TransportURL.parse(conf, conf.transport_url)
    errors = []
    for host in url.hosts or []:
        address = (host.hostname or '127.0.0.1', host.port or 5672)
        try:
            socket.create_connection(address, timeout=timeout).close()
            broker_tls.check(conf, timeout)
            return
        except OSError as exc:
            errors.append('%s:%s %s' % (address[0], address[1], exc))
    if errors:
        raise OSError('broker unreachable: %s' % '; '.join(errors))


# -- what each command sends -----------------------------------------------------

class Command:
    """One subcommand: the RPC method it calls and how to fill its arguments.

    ``subject``: (resource kind, argument name) of the resource the command
    acts on; ``new``: the command creates it (``build`` makes the object);
    ``operation``: the transition whose final status ``--wait`` waits for;
    ``moves_to``: the argument naming the backend the resource may live on
    once the operation ends (a migration), where ``--wait`` reads it then.
    """

    def __init__(self, method, help, subject=None, operation=None,
                 new=False, build=None, args=(), aliases=(), call=False,
                 echo=None, moves_to=None):
        self.method = method
        self.echo = echo  # kwargs -> what the output adds (ids chosen here)
        self.name = method.replace('_', '-')
        self.help = help
        self.subject = subject
        self.operation = operation
        self.new = new
        self.build = build
        self.args = args
        self.aliases = aliases
        self.call = call
        self.moves_to = moves_to

    def run(self, client, args):
        backend = args.backend or client.default_backend()
        kwargs = (self.build(client, args, backend) if self.build else {})
        if self.subject and not self.new:
            kind, arg = self.subject
            kwargs[arg] = getattr(args, arg)
        if self.subject and not self.new and not self.call:
            # An unknown id is refused here, with its reason.
            kind, arg = self.subject
            if client.get(kind, backend, kwargs[arg]) is None:
                raise ClientError('%s %s does not exist on %s'
                                  % (kind, kwargs[arg], backend))
        method = getattr(client.api, self.method)
        wait = getattr(args, 'wait', False)
        if wait:
            # Listening before the cast: a refusal has no reply, only its
            # error notification.
            client.retrying(client.listen)
        result = client.retrying(method, client.ctx, backend, **kwargs)
        if self.call:
            _print(_jsonable(result))
            return 0
        kind, arg = self.subject
        resource_id = (kwargs[kind].id if self.new else kwargs[arg])
        echo = self.echo(kwargs) if self.echo else {}
        if not wait:
            _print(dict(echo, id=resource_id, status='requested',
                        operation=self.method))
            return 0
        moved_to = (kwargs.get(self.moves_to) or '').partition('#')[0] \
            if self.moves_to else None
        return self._wait(client, backend, kind, resource_id, echo, moved_to)

    def _wait(self, client, backend, kind, resource_id, echo=None,
              moved_to=None):
        from volume_worker import flows
        from volume_worker import operations
        from volume_worker.objects import fields
        transition = operations.RESOURCE_TYPES[kind].transitions.of(
            self.operation, kind)
        end = flows.FAMILIES[self.operation].event + '.end'
        # An operation that ends in a status its resource may already have
        # (revert: available -> available) is known done by its .end only.
        by_status = (transition.to != fields.UNCHANGED and
                     transition.to not in (transition.allowed_from or ()))
        gone_is_done = transition.to.endswith('deleted')

        def done(resource):
            if client.ended.get(resource_id) == end:
                return True
            if resource_id in client.reasons:  # its .error arrived
                return True
            if resource is None:
                return gone_is_done
            return (resource.status == transition.error or
                    (by_status and resource.status == transition.to))
        got = client.wait_for(
            kind, backend, resource_id, done,
            client.conf.client.wait_timeout,
            appear_within=(client.conf.client.appear_timeout
                           if self.new else None))
        if got is None and moved_to:
            got = client.get(kind, moved_to, resource_id)
        client.progress_done()
        if (got is not None and got.status == transition.error and
                resource_id not in client.reasons):
            client.await_reason(resource_id)
        if got is None:
            _print(dict(echo or {}, id=resource_id, status=transition.to))
            return 0
        _print(dict(_object_json(got), **(echo or {})))
        if got.status == transition.error or (
                resource_id in client.reasons and
                client.ended.get(resource_id) != end):
            reason = client.reasons.get(resource_id) or 'see the worker log'
            print('error: %s %s ended %s: %s' % (kind, resource_id,
                                                 got.status, reason),
                  file=sys.stderr)
            return EXIT_ERROR
        return 0


def _jsonable(value):
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, 'obj_to_primitive'):
        return _object_json(value)
    return value
