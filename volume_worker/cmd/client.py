"""``volume-worker-client``: drive a worker over RabbitMQ from a shell.

It speaks only RPC and notifications: it never opens the worker's database
and never loads a driver.
"""

import argparse
import json
import sys
import time
import uuid

from volume_worker import config

EXIT_ERROR = 1
EXIT_USAGE = 2


def _volume_json(volume):
    out = {}
    for name in volume.fields:
        if name == 'provider_auth' or not volume.obj_attr_is_set(name):
            continue
        value = getattr(volume, name)
        out[name] = value.isoformat() if hasattr(value, 'isoformat') else value
    return out


def _print(obj):
    print(json.dumps(obj, indent=None, sort_keys=True, default=str),
          flush=True)


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

    def default_backend(self):
        return '%s@%s' % (self.conf.host, self.conf.enabled_backends[0])

    def retrying(self, fn, *args, **kwargs):
        """Retry while the broker is unreachable, up to the deadline, then fail loudly."""
        import kombu.exceptions
        import oslo_messaging as messaging
        stop = time.monotonic() + self.deadline
        while True:
            try:
                return fn(*args, **kwargs)
            except (messaging.MessageDeliveryFailure,
                    messaging.MessagingTimeout, OSError,
                    kombu.exceptions.OperationalError) as exc:
                if time.monotonic() >= stop:
                    raise SystemExit('error: request not delivered within '
                                     '%ss: %s' % (self.deadline, exc))
                time.sleep(1)

    def wait_for(self, backend, volume_id, done, timeout, appear_within=None):
        """Poll until ``done(volume)``; ``volume`` is None while not found.

        With ``appear_within``, a volume still unknown after that many
        seconds means the worker rejected the request: fail, do not wait on.
        """
        from volume_worker import exception
        start = time.monotonic()
        stop = start + timeout
        delay = 0.01
        while time.monotonic() < stop:
            try:
                volume = self.api.get_volume(self.ctx, backend, volume_id)
            except Exception as exc:
                if not _is_not_found(exc, exception):
                    raise
                volume = None
            if done(volume):
                return volume
            if (volume is None and appear_within is not None and
                    time.monotonic() - start > appear_within):
                raise SystemExit('error: volume %s never appeared on %s: the '
                                 'worker rejected the request (see its log)'
                                 % (volume_id, backend))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise SystemExit('error: volume %s did not settle within %ss'
                         % (volume_id, timeout))


def _is_not_found(exc, exception):
    return isinstance(exc, exception.NotFound) or 'NotFound' in type(exc).__name__


def cmd_create(client, args):
    from volume_worker import objects
    if args.size < 1:
        raise SystemExit('error: --size must be a whole number of GiB >= 1')
    backend = args.backend or client.default_backend()
    volume = objects.Volume(id=args.id or str(uuid.uuid4()), size=args.size,
                            display_name=args.name, metadata={},
                            host=backend)
    client.retrying(client.api.create_volume, client.ctx, backend, volume)
    if not args.wait:
        volume.status = objects.VolumeStatus.CREATING
        _print(_volume_json(volume))
        return 0
    settled = (objects.VolumeStatus.AVAILABLE, objects.VolumeStatus.ERROR)
    got = client.wait_for(backend, volume.id,
                          lambda v: v is not None and v.status in settled,
                          client.conf.client.wait_timeout,
                          appear_within=client.conf.client.appear_timeout)
    _print(_volume_json(got))
    return 0 if got.status == objects.VolumeStatus.AVAILABLE else EXIT_ERROR


def cmd_delete(client, args):
    from volume_worker import objects
    backend = args.backend or client.default_backend()
    client.retrying(client.api.delete_volume, client.ctx, backend, args.id)
    if not args.wait:
        _print({'id': args.id, 'status': objects.VolumeStatus.DELETING})
        return 0
    got = client.wait_for(
        backend, args.id,
        lambda v: v is None or v.status == objects.VolumeStatus.ERROR_DELETING,
        client.conf.client.wait_timeout)
    if got is None:
        _print({'id': args.id, 'status': objects.VolumeStatus.DELETED})
        return 0
    _print(_volume_json(got))
    return EXIT_ERROR


def cmd_show(client, args):
    backend = args.backend or client.default_backend()
    _print(_volume_json(client.retrying(client.api.get_volume, client.ctx,
                                        backend, args.id)))
    return 0


def cmd_list(client, args):
    backend = args.backend or client.default_backend()
    filters = {'status': args.status} if args.status else None
    volumes = client.retrying(client.api.list_volumes, client.ctx, backend,
                              filters=filters, marker=args.marker,
                              limit=args.limit)
    _print([_volume_json(v) for v in volumes])
    return 0


def cmd_capabilities(client, args):
    backend = args.backend or client.default_backend()
    _print(client.retrying(client.api.get_capabilities, client.ctx, backend,
                           discover=args.refresh))
    return 0


def cmd_watch(client, args):
    from volume_worker import events
    stream = events.EventStream(
        client.conf.transport_url,
        control_exchange=client.conf.control_exchange,
        scheduler_topic=client.conf.scheduler_topic).start()
    stop = time.monotonic() + args.seconds if args.seconds else None
    try:
        while stop is None or time.monotonic() < stop:
            for event in stream.poll(0.5):
                _print(event)
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog='volume-worker-client',
        description='Create, delete and inspect volumes through a worker.')
    sub = parser.add_subparsers(dest='command', required=True)

    def with_backend(p):
        p.add_argument('--backend', help='host@backend (default: this '
                       'config\'s host and first enabled backend)')
        return p

    p = with_backend(sub.add_parser('create', help='create a volume'))
    p.add_argument('--size', type=int, required=True, help='size in GiB')
    p.add_argument('--name', help='display name')
    p.add_argument('--id', help='volume id to use (default: a new UUID)')
    p.add_argument('--wait', action='store_true',
                   help='wait until available or error; non-zero on error')
    p.set_defaults(func=cmd_create)

    p = with_backend(sub.add_parser('delete', help='delete a volume'))
    p.add_argument('id')
    p.add_argument('--wait', action='store_true', help='wait until gone')
    p.set_defaults(func=cmd_delete)

    p = with_backend(sub.add_parser('show', help='show one volume'))
    p.add_argument('id')
    p.set_defaults(func=cmd_show)

    p = with_backend(sub.add_parser('list', help='list volumes'))
    p.add_argument('--status')
    p.add_argument('--marker')
    p.add_argument('--limit', type=int)
    p.set_defaults(func=cmd_list)

    p = with_backend(sub.add_parser('capabilities',
                                    help='the last capability report'))
    p.add_argument('--refresh', action='store_true',
                   help='ask the driver for fresh figures')
    p.set_defaults(func=cmd_capabilities)

    p = sub.add_parser('watch', help='print notifications and capability '
                       'reports as they arrive, one JSON object a line')
    p.add_argument('--seconds', type=float,
                   help='stop after this long (default: until Ctrl-C)')
    p.set_defaults(func=cmd_watch)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    oslo_args, argv = _split_config_args(argv)
    args, rest = build_parser().parse_known_args(argv)
    conf = config.parse_args(oslo_args + rest)
    config.setup_logging(conf, 'volume-worker-client')
    client = Client(conf)
    try:
        return args.func(client, args)
    except SystemExit:
        raise
    except Exception as exc:
        print('error: %s' % _first_line(exc), file=sys.stderr)
        return EXIT_ERROR


def _split_config_args(argv):
    """Take oslo.config's file options out, wherever they stand."""
    oslo_args, others = [], []
    args = iter(argv)
    for arg in args:
        if arg in ('--config-file', '--config-dir'):
            oslo_args += [arg, next(args, '')]
        elif arg.startswith(('--config-file=', '--config-dir=')):
            oslo_args.append(arg)
        else:
            others.append(arg)
    return oslo_args, others


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == '__main__':
    sys.exit(main())
