"""``volume-worker-client``: drive a worker over RabbitMQ from a shell.

One subcommand per RPC method (``create_snapshot`` -> ``create-snapshot``),
declared in ``COMMANDS``: the resource id first, JSON on stdout, and with
``--wait`` a wait for the operation's final status (from the transition
tables), exiting non-zero with the reason on an error status. It speaks
only RPC and notifications: it never opens the worker's database and never
loads a driver.
"""

import argparse
import json
import sys
import time
import uuid

from volume_worker import config

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
                                   payload.get('group_id')):
                continue
            if event_type.endswith('.end'):
                self.ended[resource_id] = event_type
                continue
            if not event_type.endswith('.error'):
                continue
            if payload.get('refused'):
                raise ClientError('%s refused: %s' % (
                    event['event_type'].rsplit('.', 1)[0],
                    payload.get('reason')))
            self.reasons[resource_id] = payload.get('reason') or 'failed'


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
                    raise ClientError('request not delivered within %ss: %s'
                                      % (self.deadline, exc))
                time.sleep(1)

    def get(self, kind, backend, resource_id):
        """The resource, or None when the worker does not know it."""
        getter = getattr(self.api, 'get_' + kind)
        try:
            return self.retrying(getter, self.ctx, backend, resource_id)
        except Exception as exc:
            if 'NotFound' in type(exc).__name__:
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


# -- what each command sends -----------------------------------------------------

def _new_volume(client, args, backend):
    from volume_worker import objects
    if args.size < 1:
        raise ClientError('--size must be a whole number of GiB >= 1')
    volume = objects.Volume(id=args.id or str(uuid.uuid4()), size=args.size,
                            display_name=args.name, metadata={}, host=backend,
                            snapshot_id=args.snapshot,
                            source_volid=args.source_volume)
    return {'volume': volume}


def _new_snapshot(client, args, backend):
    from volume_worker import objects
    snapshot = objects.Snapshot(id=args.id or str(uuid.uuid4()),
                                volume_id=args.volume_id,
                                display_name=args.name, metadata={})
    return {'snapshot': snapshot, 'force': args.force}


def _connector(args):
    if args.connector_local:
        import os
        import tempfile
        from oslo_config import cfg
        from drivers import datapath
        datapath.init_os_brick(cfg.CONF, lock_path=tempfile.gettempdir(),
                               in_process_privsep=os.geteuid() == 0)
        return datapath.local_connector()
    if not args.connector:
        raise ClientError('give --connector JSON or --connector-local')
    try:
        connector = json.loads(args.connector)
    except ValueError as exc:
        raise ClientError('--connector is not JSON: %s' % exc)
    return connector


def _attachment_update(client, args, backend):
    return {'connector': _connector(args), 'attachment_id': args.attachment,
            'instance_uuid': args.instance, 'mountpoint': args.mountpoint,
            'mode': args.mode}


def _connection(client, args, backend):
    kwargs = {'connector': _connector(args)}
    if getattr(args, 'force', False):
        kwargs['force'] = True
    return kwargs


def _legacy_attach(client, args, backend):
    return {'instance_uuid': args.instance, 'host_name': args.host_name,
            'mountpoint': args.mountpoint, 'mode': args.mode}


def _attachment_id(client, args, backend):
    return {'attachment_id': args.attachment_id}


def _reference(args):
    try:
        ref = json.loads(args.ref)
    except ValueError as exc:
        raise ClientError('--ref is not JSON: %s' % exc)
    return ref


def _manage_volume(client, args, backend):
    from volume_worker import objects
    volume = objects.Volume(id=args.id or str(uuid.uuid4()), host=backend,
                            display_name=args.name, metadata={})
    return {'volume': volume, 'existing_ref': _reference(args)}


def _manage_snapshot(client, args, backend):
    from volume_worker import objects
    snapshot = objects.Snapshot(id=args.id or str(uuid.uuid4()),
                                volume_id=args.volume_id,
                                display_name=args.name, metadata={})
    return {'snapshot': snapshot, 'existing_ref': _reference(args)}


def _manageable(client, args, backend):
    keys, dirs = [], []
    for item in args.sort or ():
        key, _, direction = item.partition(':')
        keys.append(key)
        dirs.append(direction or 'asc')
    return {'marker': args.marker, 'limit': args.limit,
            'offset': args.offset, 'sort_keys': keys or None,
            'sort_dirs': dirs or None}


def _new_group(client, args, backend):
    from volume_worker import objects
    group = objects.Group(id=args.id or str(uuid.uuid4()), name=args.name,
                          group_type_id=args.type,
                          volume_type_ids=args.volume_types or [])
    return {'group': group}


def _ids(text):
    return [i for i in (text or '').split(',') if i]


def _listing(client, args, backend):
    filters = {key: getattr(args, key) for key in ('status', 'volume_id')
               if getattr(args, key, None)}
    return {'filters': filters or None, 'marker': args.marker,
            'limit': args.limit}


class Command:
    """One subcommand: the RPC method it calls and how to fill its arguments.

    ``subject``: (resource kind, argument name) of the resource the command
    acts on; ``new``: the command creates it (``build`` makes the object);
    ``operation``: the transition whose final status ``--wait`` waits for.
    """

    def __init__(self, method, help, subject=None, operation=None,
                 new=False, build=None, args=(), aliases=(), call=False):
        self.method = method
        self.name = method.replace('_', '-')
        self.help = help
        self.subject = subject
        self.operation = operation
        self.new = new
        self.build = build
        self.args = args
        self.aliases = aliases
        self.call = call

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
        if not wait:
            _print({'id': resource_id, 'status': 'requested',
                    'operation': self.method})
            return 0
        return self._wait(client, backend, kind, resource_id)

    def _wait(self, client, backend, kind, resource_id):
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
        if got is None:
            _print({'id': resource_id, 'status': transition.to})
            return 0
        _print(_object_json(got))
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
    if hasattr(value, 'obj_to_primitive'):
        return _object_json(value)
    return value


_WAIT = (('--wait',), {'action': 'store_true',
                       'help': 'wait for the final status; non-zero on error'})
_LIST = ((('--marker',), {}), (('--limit',), {'type': int}))
_CONNECTOR = (
    (('--connector',), {'help': 'the consumer\'s connector (JSON object)'}),
    (('--connector-local',), {'action': 'store_true',
                              'dest': 'connector_local',
                              'help': 'this host\'s connector (os-brick)'}))
_FORCE = ((('--force',), {'action': 'store_true'}),)
_UNMANAGE_ONLY = (('--unmanage-only',), {
    'action': 'store_true', 'dest': 'unmanage_only',
    'help': 'stop managing it; the backend object stays'})
_MANAGEABLE = _LIST + (
    (('--offset',), {'type': int, 'default': 0}),
    (('--sort',), {'action': 'append',
                   'help': 'KEY[:asc|desc], KEY identifier or size; '
                           'repeatable'}))


def _unmanage_only(client, args, backend):
    return {'unmanage_only': True} if args.unmanage_only else {}

COMMANDS = [
    Command('create_volume', 'create a volume', subject=('volume', 'id'),
            operation='create_volume', new=True, build=_new_volume,
            aliases=('create',),
            args=((('--size',), {'type': int, 'required': True,
                                 'help': 'size in GiB'}),
                  (('--name',), {'help': 'display name'}),
                  (('--id',), {'help': 'id to use (default: a new UUID)'}),
                  (('--snapshot',), {'help': 'a copy of this snapshot'}),
                  (('--source-volume',), {'dest': 'source_volume',
                                          'help': 'a clone of this volume'}),
                  _WAIT)),
    Command('extend_volume', 'grow a volume',
            subject=('volume', 'volume_id'), operation='extend_volume',
            build=lambda client, args, backend: {'new_size': args.new_size},
            args=((('new_size',), {'type': int, 'help': 'new size in GiB'}),
                  _WAIT)),
    Command('retype', 'give a volume another volume type',
            subject=('volume', 'volume_id'), operation='retype',
            build=lambda client, args, backend: {
                'new_type_id': args.new_type_id,
                'migration_policy': args.migration_policy},
            args=((('new_type_id',), {'help': 'the new volume type\'s id'}),
                  (('--migration-policy',), {
                      'dest': 'migration_policy', 'default': 'never',
                      'choices': ('never', 'on-demand')}),
                  _WAIT)),
    Command('revert_to_snapshot', 'put a volume\'s latest snapshot back',
            subject=('volume', 'volume_id'), operation='revert_to_snapshot',
            build=lambda client, args, backend: {
                'snapshot_id': args.snapshot_id},
            args=((('snapshot_id',), {'help': 'its most recent snapshot'}),
                  _WAIT)),
    Command('delete_volume', 'delete a volume',
            subject=('volume', 'volume_id'), operation='delete_volume',
            aliases=('delete',), build=_unmanage_only,
            args=(_WAIT, _UNMANAGE_ONLY)),
    Command('manage_existing', 'adopt a backend object as a new volume',
            subject=('volume', 'id'), operation='manage_existing', new=True,
            build=_manage_volume,
            args=((('--ref',), {'required': True,
                                'help': 'the backend object (JSON), e.g. '
                                        '{"source-name": "FILE"}'}),
                  (('--name',), {'help': 'display name'}),
                  (('--id',), {'help': 'id to use (default: a new UUID)'}),
                  _WAIT)),
    Command('manage_existing_snapshot', 'adopt a backend object as a new '
            'snapshot of a volume', subject=('snapshot', 'id'),
            operation='manage_existing_snapshot', new=True,
            build=_manage_snapshot,
            args=((('volume_id',), {'help': 'the snapshot\'s volume'}),
                  (('--ref',), {'required': True,
                                'help': 'the backend object (JSON)'}),
                  (('--name',), {'help': 'display name'}),
                  (('--id',), {'help': 'id to use (default: a new UUID)'}),
                  _WAIT)),
    Command('get_manageable_volumes', 'backend objects that could be '
            'managed as volumes', call=True, build=_manageable,
            args=_MANAGEABLE),
    Command('get_manageable_snapshots', 'backend objects that could be '
            'managed as snapshots', call=True, build=_manageable,
            args=_MANAGEABLE),
    Command('accept_transfer', 'give a volume (and its snapshots) to another '
            'owner', subject=('volume', 'volume_id'), call=True,
            build=lambda client, args, backend: {
                'new_user': args.user, 'new_project': args.project,
                'no_snapshots': args.no_snapshots},
            args=((('--user',), {'required': True}),
                  (('--project',), {'required': True}),
                  (('--no-snapshots',), {'action': 'store_true',
                                         'dest': 'no_snapshots'}))),
    Command('get_volume', 'show one volume', subject=('volume', 'volume_id'),
            aliases=('show',), call=True),
    Command('list_volumes', 'list volumes', build=_listing, aliases=('list',),
            call=True, args=((('--status',), {}),) + _LIST),
    Command('create_snapshot', 'snapshot a volume',
            subject=('snapshot', 'id'), operation='create_snapshot',
            new=True, build=_new_snapshot,
            args=((('volume_id',), {'help': 'the volume to snapshot'}),
                  (('--name',), {'help': 'display name'}),
                  (('--id',), {'help': 'id to use (default: a new UUID)'}),
                  (('--force',), {'action': 'store_true',
                                  'help': 'even of an in-use volume'}),
                  _WAIT)),
    Command('delete_snapshot', 'delete a snapshot',
            subject=('snapshot', 'snapshot_id'), operation='delete_snapshot',
            build=_unmanage_only, args=(_WAIT, _UNMANAGE_ONLY)),
    Command('get_snapshot', 'show one snapshot',
            subject=('snapshot', 'snapshot_id'), aliases=('show-snapshot',),
            call=True),
    Command('list_snapshots', 'list snapshots', build=_listing, call=True,
            args=((('--status',), {}), (('--volume-id',),
                                        {'dest': 'volume_id'})) + _LIST),
    Command('attachment_update', 'connect a consumer; prints the '
            'attachment with its connection info',
            subject=('volume', 'volume_id'), call=True,
            build=_attachment_update,
            args=_CONNECTOR + (
                   (('--attachment',), {'help': 'update this attachment'}),
                   (('--instance',), {'help': 'the consumer\'s UUID'}),
                   (('--mountpoint',), {}),
                   (('--mode',), {'choices': ('rw', 'ro'),
                                  'default': 'rw'}))),
    Command('attachment_complete', 'the consumer is attached',
            subject=('volume', 'volume_id'), call=True, build=_attachment_id,
            args=((('attachment_id',), {}),)),
    Command('attachment_delete', 'disconnect a consumer',
            subject=('volume', 'volume_id'), call=True, build=_attachment_id,
            args=((('attachment_id',), {}),)),
    Command('list_attachments', 'the volume\'s attachments',
            subject=('volume', 'volume_id'), call=True),
    Command('initialize_connection', 'legacy path: export to a connector; '
            'prints the connection info', subject=('volume', 'volume_id'),
            call=True, build=_connection, args=_CONNECTOR),
    Command('terminate_connection', 'legacy path: revoke a connector',
            subject=('volume', 'volume_id'), call=True, build=_connection,
            args=_CONNECTOR + _FORCE),
    Command('attach_volume', 'legacy path: record a consumer',
            subject=('volume', 'volume_id'), call=True, build=_legacy_attach,
            args=((('--instance',), {'help': 'the consumer\'s UUID'}),
                  (('--host-name',), {'dest': 'host_name'}),
                  (('--mountpoint',), {}),
                  (('--mode',), {'choices': ('rw', 'ro'), 'default': 'rw'}))),
    Command('detach_volume', 'legacy path: the consumer is gone',
            subject=('volume', 'volume_id'), call=True, build=_attachment_id,
            args=((('attachment_id',), {}),)),
    Command('remove_export', 'legacy path: stop exporting a volume',
            subject=('volume', 'volume_id')),
    Command('initialize_connection_snapshot', 'export a snapshot to a '
            'connector; prints the connection info',
            subject=('snapshot', 'snapshot_id'), call=True,
            build=_connection, args=_CONNECTOR),
    Command('terminate_connection_snapshot', 'revoke a connector\'s '
            'connection to a snapshot', subject=('snapshot', 'snapshot_id'),
            call=True, build=_connection, args=_CONNECTOR + _FORCE),
    Command('remove_export_snapshot', 'stop exporting a snapshot',
            subject=('snapshot', 'snapshot_id')),
    Command('create_group', 'create a group of volumes',
            subject=('group', 'id'), operation='create_group', new=True,
            build=_new_group,
            args=((('--type',), {'help': 'group type id'}),
                  (('--volume-types',), {'dest': 'volume_types',
                                         'type': _ids,
                                         'help': 'volume type ids, '
                                                 'comma-separated'}),
                  (('--name',), {}), (('--id',), {}), _WAIT)),
    Command('update_group', 'add and remove volumes of a group',
            subject=('group', 'group_id'), operation='update_group',
            build=lambda client, args, backend: {
                'add_volumes': _ids(args.add),
                'remove_volumes': _ids(args.remove)},
            args=((('--add',), {'help': 'volume ids, comma-separated'}),
                  (('--remove',), {'help': 'volume ids, comma-separated'}),
                  _WAIT)),
    Command('delete_group', 'delete a group',
            subject=('group', 'group_id'), operation='delete_group',
            build=lambda client, args, backend: {
                'delete_volumes': args.delete_volumes},
            args=((('--delete-volumes',), {'action': 'store_true',
                                           'dest': 'delete_volumes'}),
                  _WAIT)),
    Command('get_group', 'show one group', subject=('group', 'group_id'),
            aliases=('show-group',), call=True),
    Command('list_groups', 'list groups', build=_listing, call=True,
            args=((('--status',), {}),) + _LIST),
    Command('get_capabilities', 'the last capability report',
            aliases=('capabilities',), call=True,
            build=lambda client, args, backend: {'discover': args.refresh},
            args=((('--refresh',), {'action': 'store_true',
                                    'help': 'ask the driver for fresh '
                                            'figures'}),)),
]


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
        description='Drive a volume worker over RabbitMQ: one subcommand '
                    'per RPC method.')
    sub = parser.add_subparsers(dest='command', required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.name, aliases=list(command.aliases),
                           help=command.help)
        if command.subject and not command.new:
            p.add_argument(command.subject[1], metavar=command.subject[1].upper())
        for flags, options in command.args:
            p.add_argument(*flags, **options)
        p.add_argument('--backend', help='host@backend (default: this '
                       'config\'s host and first enabled backend)')
        p.set_defaults(func=command.run)

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
    conf.set_default('use_stderr', True)  # stdout carries only the JSON
    config.setup_logging(conf, 'volume-worker-client')
    client = None
    try:
        client = Client(conf)
        return args.func(client, args)
    except ClientError as exc:
        print('error: %s' % exc, file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        print('error: %s' % _first_line(exc), file=sys.stderr)
        return EXIT_ERROR
    finally:
        if client is not None and client.stream is not None:
            client.stream.close()


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
