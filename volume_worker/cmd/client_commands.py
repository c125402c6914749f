"""One ``Command`` per RPC method: what each subcommand sends and how its arguments read."""

import json
import uuid

from volume_worker.cmd.client_core import ClientError
from volume_worker.cmd.client_core import Command
from volume_worker.cmd import client_core

def _new_volume(client, args, backend):
    from volume_worker import objects
    if args.size < 1:
        raise ClientError('--size must be a whole number of GiB >= 1')
    volume = objects.Volume(id=args.id or str(uuid.uuid4()), size=args.size,
                            display_name=args.name, metadata={}, host=backend,
                            snapshot_id=args.snapshot,
                            source_volid=args.source_volume,
                            image_id=args.image)
    return {'volume': volume}


def _image_meta(client, args, backend):
    kwargs = {'image_meta': {'id': args.image_id or str(uuid.uuid4()),
                             'name': args.name,
                             'disk_format': args.disk_format}}
    if args.force:
        kwargs['force'] = True
    return kwargs


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


def _retype(client, args, backend):
    kwargs = {'new_type_id': args.new_type_id,
              'migration_policy': args.migration_policy}
    if args.dest_backend:
        kwargs['dest_backend'] = args.dest_backend
    return kwargs


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


def _new_group_snapshot(args):
    from volume_worker import objects
    return objects.GroupSnapshot(id=args.id or str(uuid.uuid4()),
                                 group_id=args.group_id, name=args.name)


def _new_backup(client, args, backend):
    from volume_worker import objects
    backup = objects.Backup(id=args.id or str(uuid.uuid4()),
                            volume_id=args.volume_id, display_name=args.name,
                            snapshot_id=args.snapshot)
    return {'backup': backup, 'incremental': args.incremental,
            'force': args.force}


def _restore_target(client, args, backend):
    import sys
    volume_id = args.volume or str(uuid.uuid4())
    if not args.volume:
        print('restoring onto a new volume %s' % volume_id, file=sys.stderr)
    return {'volume_id': volume_id}


def _ids(text):
    return [i for i in (text or '').split(',') if i]


def _listing(client, args, backend):
    filters = {key: getattr(args, key) for key in ('status', 'volume_id')
               if getattr(args, key, None)}
    return {'filters': filters or None, 'marker': args.marker,
            'limit': args.limit}


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


def _cleanup_request(client, args, backend):
    request = {key: getattr(args, key) for key in ('resource_type',
                                                   'resource_id')
               if getattr(args, key)}
    return {'cleanup_request': request or None}


def _unmanage_only(client, args, backend):
    return {'unmanage_only': True} if args.unmanage_only else {}

class BackendCommand(Command):
    """A command on the backend itself (its service), not on one resource;
    ``--wait`` follows ``operation``'s notifications to its end."""

    def run(self, client, args):
        import sys
        from volume_worker.cmd import replication
        from volume_worker import flows
        backend = args.backend or client.default_backend()
        kwargs = self.build(client, args, backend) if self.build else {}
        wait = getattr(args, 'wait', False)
        if wait:
            client.retrying(client.listen)
        result = client.retrying(getattr(client.api, self.method),
                                 client.ctx, backend, **kwargs)
        if self.call:
            client_core._print(result)
            return 0
        if not wait:
            client_core._print({'backend': backend, 'status': 'requested',
                                'operation': self.method})
            return 0
        try:
            payload = replication.follow(
                client.stream, backend, flows.FAMILIES[self.operation].event,
                client.conf.client.wait_timeout)
        except replication.FailoverFollowError as exc:
            print('error: %s' % exc, file=sys.stderr)
            return client_core.EXIT_ERROR
        client_core._print(payload)
        return 0


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
                  (('--image',), {'help': 'the image (id) written onto it'}),
                  _WAIT)),
    Command('copy_volume_to_image', 'upload a volume as a new image',
            subject=('volume', 'volume_id'),
            operation='copy_volume_to_image', build=_image_meta,
            echo=lambda kwargs: {'image_id': kwargs['image_meta']['id']},
            args=((('--name',), {'required': True, 'help': 'image name'}),
                  (('--disk-format',), {'dest': 'disk_format',
                                        'choices': ('raw', 'qcow2'),
                                        'default': 'raw'}),
                  (('--image-id',), {'dest': 'image_id',
                                     'help': 'id to use (default: a new '
                                             'UUID)'}),
                  (('--force',), {'action': 'store_true',
                                  'help': 'even of an in-use volume (read '
                                          'from a temporary copy)'}),
                  _WAIT)),
    Command('extend_volume', 'grow a volume',
            subject=('volume', 'volume_id'), operation='extend_volume',
            build=lambda client, args, backend: {'new_size': args.new_size},
            args=((('new_size',), {'type': int, 'help': 'new size in GiB'}),
                  _WAIT)),
    Command('retype', 'give a volume another volume type',
            subject=('volume', 'volume_id'), operation='retype',
            build=_retype, moves_to='dest_backend',
            args=((('new_type_id',), {'help': 'the new volume type\'s id'}),
                  (('--migration-policy',), {
                      'dest': 'migration_policy', 'default': 'never',
                      'choices': ('never', 'on-demand')}),
                  (('--dest-backend',), {
                      'dest': 'dest_backend',
                      'help': 'host@backend[#pool] to migrate it to when '
                              'the driver cannot retype it in place'}),
                  _WAIT)),
    Command('migrate_volume', 'move a volume to another backend (it keeps '
            'its id)', subject=('volume', 'volume_id'),
            operation='migrate_volume', moves_to='dest_backend',
            build=lambda client, args, backend: {
                'dest_backend': args.dest_backend,
                'force_host_copy': args.force_host_copy},
            args=((('dest_backend',), {'help': 'host@backend[#pool]'}),
                  (('--force-host-copy',), {
                      'dest': 'force_host_copy', 'action': 'store_true',
                      'help': 'copy the data through this host even if the '
                              'driver could move it'}),
                  _WAIT)),
    Command('migrate_volume_completion', 'on the destination backend of a '
            'migration: its copy becomes the volume (the migration calls '
            'it)', subject=('volume', 'volume_id'), call=True,
            build=lambda client, args, backend: {
                'new_volume_id': args.new_volume_id,
                'original_status': args.original_status},
            args=((('new_volume_id',), {'help': 'the migration copy'}),
                  (('--original-status',), {
                      'dest': 'original_status', 'default': 'available'}))),
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
    Command('create_group_from_src', 'a new group of copies of a group '
            'snapshot or a group', subject=('group', 'id'),
            operation='create_group_from_group_snapshot', new=True,
            build=lambda client, args, backend: dict(
                _new_group(client, args, backend),
                group_snapshot_id=args.group_snapshot,
                source_group_id=args.source_group),
            args=((('--group-snapshot',), {'dest': 'group_snapshot'}),
                  (('--source-group',), {'dest': 'source_group'}),
                  (('--type',), {}), (('--volume-types',), {
                      'dest': 'volume_types', 'type': _ids}),
                  (('--name',), {}), (('--id',), {}), _WAIT)),
    Command('create_group_snapshot', 'snapshot every volume of a group',
            subject=('group_snapshot', 'id'),
            operation='create_group_snapshot', new=True,
            build=lambda client, args, backend: {
                'group_snapshot': _new_group_snapshot(args)},
            args=((('group_id',), {}), (('--name',), {}), (('--id',), {}),
                  _WAIT)),
    Command('delete_group_snapshot', 'delete a group snapshot',
            subject=('group_snapshot', 'group_snapshot_id'),
            operation='delete_group_snapshot', args=(_WAIT,)),
    Command('get_group_snapshot', 'show one group snapshot',
            subject=('group_snapshot', 'group_snapshot_id'), call=True),
    Command('get_group', 'show one group', subject=('group', 'group_id'),
            aliases=('show-group',), call=True),
    Command('list_groups', 'list groups', build=_listing, call=True,
            args=((('--status',), {}),) + _LIST),
    Command('create_backup', 'back a volume up into the backup store',
            subject=('backup', 'id'), operation='create_backup', new=True,
            build=_new_backup,
            args=((('volume_id',), {'help': 'the volume to back up'}),
                  (('--incremental',), {'action': 'store_true',
                                        'help': 'store only what changed '
                                                'since its latest backup'}),
                  (('--force',), {'action': 'store_true',
                                  'help': 'even of an in-use volume'}),
                  (('--snapshot',), {'help': 'back up this snapshot of the '
                                             'volume instead'}),
                  (('--name',), {'help': 'display name'}),
                  (('--id',), {'help': 'id to use (default: a new UUID)'}),
                  _WAIT)),
    Command('restore_backup', 'write a backup onto a volume (a new one '
            'unless --volume)', subject=('backup', 'backup_id'),
            operation='restore_backup', build=_restore_target,
            args=((('--volume',), {'help': 'an existing volume at least as '
                                           'large, or the id for a new one'}),
                  _WAIT)),
    Command('delete_backup', 'delete a backup',
            subject=('backup', 'backup_id'), operation='delete_backup',
            args=(_WAIT,)),
    Command('get_backup', 'show one backup', subject=('backup', 'backup_id'),
            aliases=('show-backup',), call=True),
    Command('list_backups', 'list backups', build=_listing, call=True,
            args=((('--status',), {}), (('--volume-id',),
                                        {'dest': 'volume_id'})) + _LIST),
    Command('get_backup_device', 'what the driver would back up for a '
            'backup', subject=('backup', 'backup_id'), call=True),
    Command('secure_file_operations_enabled', 'whether the driver runs file '
            'operations without root', call=True),
    Command('get_capabilities', 'the driver\'s capabilities (properties '
            'included) with the report\'s state and usage',
            aliases=('capabilities',), call=True,
            build=lambda client, args, backend: {'discover': args.refresh},
            args=((('--refresh',), {'action': 'store_true',
                                    'help': 'ask the driver for fresh '
                                            'figures'}),)),
    BackendCommand(
        'failover_host', 'fail the backend over to a replication target '
        '("default": back to the primary)', operation='failover_host',
        build=lambda client, args, backend: {
            'secondary_backend_id': args.target},
        args=((('target',), {'nargs': '?', 'help': 'a replication_device '
                             'backend_id, or default (none: the first '
                             'target not active)'}), _WAIT)),
    BackendCommand('freeze_host', 'refuse every change on the backend '
                   '(reads and attachments still work)', call=True),
    BackendCommand('thaw_host', 'accept changes on the backend again',
                   call=True),
    BackendCommand(
        'do_cleanup', 'run recovery again while serving: resume journaled '
        'operations left behind, reset resources stuck in a transitional '
        'status', build=_cleanup_request,
        args=((('--resource-type',), {'dest': 'resource_type'}),
              (('--resource-id',), {'dest': 'resource_id',
                                    'help': 'only what touches it'}))),
    BackendCommand(
        'set_log_levels', 'set the log level of the worker\'s loggers',
        build=lambda client, args, backend: {'log_request': {
            'prefix': args.prefix, 'level': args.level}},
        args=((('level',), {'help': 'DEBUG, INFO, WARNING, ERROR or '
                                    'CRITICAL'}),
              (('--prefix',), {'default': '',
                               'help': 'loggers whose name starts with it '
                                       '(default: all)'}))),
    BackendCommand(
        'get_log_levels', 'the log levels of the worker\'s loggers',
        call=True, build=lambda client, args, backend: {'log_request': {
            'prefix': args.prefix}},
        args=((('--prefix',), {'default': 'volume_worker',
                               'help': 'loggers whose name starts with it'}),
              )),
]
