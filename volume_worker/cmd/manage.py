"""``volume-worker-manage``: operator commands against the worker's database.

    volume-worker-manage --config-file FILE db sync|version
    volume-worker-manage --config-file FILE service list
    volume-worker-manage --config-file FILE journal list
    volume-worker-manage --config-file FILE failover --backend HOST@BACKEND \
        --to TARGET [--no-wait] [--timeout S]     (TARGET "default": failback)
    volume-worker-manage --config-file FILE freeze|thaw --backend HOST@BACKEND
    volume-worker-manage --config-file FILE image import FILE --name N
                                                [--disk-format raw|qcow2]
    volume-worker-manage --config-file FILE image list|delete [ID]
    volume-worker-manage --config-file FILE type create NAME [--spec K=V ...]
        [--qos K=V ...] [--description TEXT] [--private]
    volume-worker-manage --config-file FILE type list
    volume-worker-manage --config-file FILE group-type create NAME
        [--spec K=V ...] [--description TEXT]
    volume-worker-manage --config-file FILE group-type list
"""

import argparse
import datetime
import sys

from volume_worker.cmd import output
from volume_worker import config
from volume_worker import timestamps


def _db(conf):
    from volume_worker.db import api as db
    db.configure(conf.database.connection)
    return db


def cmd_db_sync(conf, args):
    """migrate the worker's database to this version's schema"""
    from volume_worker.db import migration
    _db(conf)
    changed = migration.db_sync()
    print('database at %s (%s)' % (migration.head_revision(),
                                   'migrated' if changed else 'unchanged'))
    return 0


def cmd_db_version(conf, args):
    """the database's schema revision"""
    from volume_worker.db import migration
    _db(conf)
    print(migration.current_revision() or 'empty')
    return 0


def cmd_service_list(conf, args):
    """every backend's service row: up/down by heartbeat, recovery, replication"""
    from volume_worker import objects
    db = _db(conf)
    now = db.utcnow()
    grace = datetime.timedelta(seconds=conf.report_interval * 3)
    rows = []
    for svc in objects.Service.get_all():
        seen = svc.updated_at.replace(tzinfo=None) if svc.updated_at else None
        rows.append({
            'host': svc.host, 'binary': svc.binary,
            'cluster': svc.cluster_name,
            'state': 'up' if seen and now - seen <= grace else 'down',
            'heartbeat_age_s': (round((now - seen).total_seconds(), 1)
                                if seen else None),
            # (the report's state, as the worker last recorded it)
            'backend_state': _field(svc, 'backend_state'),
            'backend_state_reason': _field(svc, 'backend_state_reason'),
            'replication_status': svc.replication_status,
            'active_backend_id': svc.active_backend_id,
            'disabled': svc.disabled, 'frozen': svc.frozen,
            'updated_at': timestamps.iso(seen),
            'recovered_at': timestamps.iso(svc.recovered_at)})
    output.emit(rows, indent=2)
    return 0


def _field(obj, name):
    return (getattr(obj, name) if name in obj.fields and
            obj.obj_attr_is_set(name) else None)


def _backend(args):
    if not args.backend or '@' not in args.backend:
        raise ValueError('give --backend HOST@BACKEND (see service list)')
    return args.backend


def cmd_failover(conf, args):
    """fail a backend over to a replication target (--backend, --to)"""
    from volume_worker.cmd import replication
    if not args.to:
        raise ValueError('give --to TARGET: a replication_device backend_id, '
                         'or default to fail back to the primary')
    try:
        service = replication.failover(conf, _backend(args), args.to,
                                       wait=not args.no_wait,
                                       timeout=args.timeout)
    except replication.FailoverFollowError as exc:
        return _fail(exc, EXIT_ERROR)
    output.emit(service or {'backend': args.backend, 'status': 'requested'},
                indent=2)
    return 0


def cmd_freeze(conf, args, frozen=True):
    """refuse changes on a backend (--backend) until thawed"""
    from volume_worker.cmd import replication
    replication.freeze(conf, _backend(args), frozen)
    output.emit({'backend': args.backend, 'frozen': frozen})
    return 0


def cmd_thaw(conf, args):
    """accept changes on a frozen backend again (--backend)"""
    return cmd_freeze(conf, args, frozen=False)


def cmd_journal_list(conf, args):
    """operations not finished yet, with the resources each holds"""
    db = _db(conf)
    rows = [{'id': r['id'], 'host': r['host'], 'operation': r['operation'],
             'state': r['state'], 'created_at': r['created_at'],
             'resources': [{'role': role, 'type': rtype, 'id': rid}
                           for role, rtype, rid in r['resources']]}
            for r in db.journal_get_all()]
    output.emit(rows, indent=2)
    return 0


def _images(conf):
    from volume_worker import image_store
    return image_store.from_conf(conf)


def cmd_image_import(conf, args):
    """import a file as an image (FILE --name NAME [--disk-format F])"""
    if not args.target or not args.name:
        raise ValueError('image import FILE --name NAME [--disk-format F]')
    meta = _images(conf).import_file(None, args.target, args.name,
                                     args.disk_format)
    output.emit(meta, indent=2)
    return 0


def cmd_image_list(conf, args):
    """the images of [image_store]"""
    output.emit(_images(conf).list(None), indent=2)
    return 0


def cmd_image_delete(conf, args):
    """delete an image (ID)"""
    if not args.target:
        raise ValueError('image delete ID')
    store = _images(conf)
    store.show(None, args.target)  # an unknown id is an error here
    store.delete(None, args.target)
    output.emit({'id': args.target, 'status': 'deleted'})
    return 0


def _specs(pairs, what):
    specs = {}
    for pair in pairs or ():
        key, sep, value = pair.partition('=')
        if not sep or not key:
            raise ValueError('%s %r is not KEY=VALUE' % (what, pair))
        specs[key] = value
    return specs


def _type_json(vtype):
    return {'id': vtype.id, 'name': vtype.name,
            'description': vtype.description, 'is_public': vtype.is_public,
            'extra_specs': vtype.extra_specs, 'qos_specs': vtype.qos_specs}


def _type_create_args(parser):
    # (Its NAME is the main parser's ``target``.)
    parser.add_argument('--spec', action='append', default=[],
                        help='an extra spec KEY=VALUE (repeatable)')
    parser.add_argument('--qos', action='append', default=[],
                        help='a QoS spec KEY=VALUE (repeatable)')
    parser.add_argument('--description')
    parser.add_argument('--private', action='store_true')


def cmd_type_create(conf, args):
    """a volume type NAME with its extra (--spec) and QoS (--qos) specs"""
    import uuid
    from volume_worker import objects
    name = args.target or args.name
    if not name:
        return _fail('type create NAME [--spec K=V ...]', EXIT_USAGE)
    _db(conf)
    try:
        extra_specs = _specs(args.spec, '--spec')
        qos_specs = _specs(args.qos, '--qos') or None
    except ValueError as exc:
        return _fail(exc, EXIT_USAGE)
    vtype = objects.VolumeType(
        id=str(uuid.uuid4()), name=name, description=args.description,
        is_public=not args.private, extra_specs=extra_specs,
        qos_specs=qos_specs)
    vtype.create()
    output.emit(_type_json(vtype), indent=2)
    return 0


def cmd_type_list(conf, args):
    """the volume types, with their specs"""
    from volume_worker import objects
    db = _db(conf)
    output.emit([_type_json(objects.VolumeType._from_db(row))
                 for row in db.volume_type_get_all()], indent=2)
    return 0


def _group_type_json(gtype):
    return {'id': gtype.id, 'name': gtype.name,
            'description': gtype.description,
            'group_specs': gtype.group_specs}


def _group_type_create_args(parser):
    parser.add_argument('--spec', action='append', default=[],
                        help='a group spec KEY=VALUE (repeatable), e.g. '
                             'consistent_group_snapshot_enabled="<is> True"')
    parser.add_argument('--description')


def cmd_group_type_create(conf, args):
    """a group type NAME with its group specs (--spec)"""
    import uuid
    from volume_worker import objects
    name = args.target or args.name
    if not name:
        return _fail('group-type create NAME [--spec K=V ...]', EXIT_USAGE)
    _db(conf)
    try:
        specs = _specs(args.spec, '--spec')
    except ValueError as exc:
        return _fail(exc, EXIT_USAGE)
    gtype = objects.GroupType(id=str(uuid.uuid4()), name=name,
                              description=args.description,
                              group_specs=specs)
    gtype.create()
    output.emit(_group_type_json(gtype), indent=2)
    return 0


def cmd_group_type_list(conf, args):
    """the group types, with their specs"""
    from volume_worker import objects
    db = _db(conf)
    output.emit([_group_type_json(objects.GroupType._from_db(row))
                 for row in db.group_type_get_all()], indent=2)
    return 0


COMMANDS = {
    ('db', 'sync'): cmd_db_sync,
    ('db', 'version'): cmd_db_version,
    ('service', 'list'): cmd_service_list,
    ('journal', 'list'): cmd_journal_list,
    ('failover', None): cmd_failover,
    ('freeze', None): cmd_freeze,
    ('thaw', None): cmd_thaw,
    ('image', 'import'): cmd_image_import,
    ('image', 'list'): cmd_image_list,
    ('image', 'delete'): cmd_image_delete,
    ('type', 'create'): cmd_type_create,
    ('type', 'list'): cmd_type_list,
    ('group-type', 'create'): cmd_group_type_create,
    ('group-type', 'list'): cmd_group_type_list,
}

# Commands with arguments of their own: how to read them.
ARGUMENTS = {
    ('type', 'create'): _type_create_args,
    ('group-type', 'create'): _group_type_create_args,
}
RPC_CATEGORIES = ('failover', 'freeze', 'thaw')


DESCRIPTION = """\
Operator commands of a volume worker: its database (schema migrations,
service rows, the journal of unfinished operations) and, over RPC, its
backends' replication state. Give it the worker's own configuration file.
Output: a table on a terminal; JSON with --json or when stdout is not a
terminal. Timestamps are ISO 8601 UTC (2026-11-25T13:05:27.123456Z)."""


def command_list():
    """Each command and what it does, one a line (for --help)."""
    lines = ['commands:']
    for (category, action), fn in COMMANDS.items():
        name = ' '.join(w for w in (category, action) if w)
        lines.append('  %-16s %s' % (name, (fn.__doc__ or '').strip()
                                      .splitlines()[0] if fn.__doc__ else ''))
    return '\n'.join(lines)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='volume-worker-manage', description=DESCRIPTION,
        epilog=command_list(),
        usage='%(prog)s [--config-file FILE] [--json] COMMAND [options]',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('category', metavar='COMMAND',
                        choices=sorted({c for c, _ in COMMANDS}),
                        help='one of the commands below')
    parser.add_argument('action', nargs='?', metavar='ACTION',
                        help='its action (db sync, service list, ...)')
    from volume_worker.cmd.client import _config_arguments
    _config_arguments(parser)
    output.add_argument(parser)
    parser.add_argument('--backend', help='HOST@BACKEND (failover, freeze, '
                        'thaw)')
    parser.add_argument('--to', help='failover: a replication_device '
                        'backend_id, or default')
    parser.add_argument('--no-wait', action='store_true', dest='no_wait',
                        help='failover: return once the request is sent')
    parser.add_argument('--timeout', type=float, default=600,
                        help='failover: seconds to wait for its end')
    parser.add_argument('target', nargs='?',
                        help='image import: the file; image delete: the id')
    parser.add_argument('--name', help='image import: the image name')
    parser.add_argument('--disk-format', dest='disk_format', default='raw',
                        choices=('raw', 'qcow2'),
                        help='image import: the file\'s format')
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    from volume_worker.cmd.client import _split_config_args
    oslo_args, rest = _split_config_args(argv)
    if not rest:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args, extra = parser.parse_known_args(rest)
    output.configure(args)
    command = COMMANDS.get((args.category, args.action))
    if command is None:
        parser.error('unknown command: %s %s (known: %s)' % (
            args.category, args.action or '', ', '.join(sorted(
                ' '.join(w for w in k if w) for k in COMMANDS))))
    own = ARGUMENTS.get((args.category, args.action))
    if own is not None:
        sub = argparse.ArgumentParser(
            prog='volume-worker-manage %s %s' % (args.category, args.action))
        own(sub)
        args = sub.parse_args(extra, namespace=args)
        extra = []
    from oslo_config import cfg
    try:
        conf = config.parse_args(oslo_args + extra)
    except cfg.Error as exc:  # a missing or malformed --config-file
        return _fail(exc, EXIT_USAGE)
    missing = config.missing_config(conf, 'volume-worker-manage')
    if missing:
        return _fail(missing, EXIT_USAGE)
    import os
    from volume_worker import privileges
    os.umask(privileges.PRIVATE_UMASK)  # db sync makes a private database
    try:
        return command(conf, args)
    except Exception as exc:
        if args.category == 'image':
            return _fail('image %s failed (store %s): %s: %s' % (
                args.action, conf.image_store.path, type(exc).__name__, exc),
                EXIT_ERROR)
        # An operator command: the reason in one line (which database,
        # what failed), not a traceback through SQLAlchemy.
        where = ('backend %s over RPC' % args.backend
                 if args.category in RPC_CATEGORIES
                 else 'database %s' % _database(conf))
        return _fail('%s %s failed (%s): %s: %s' % (
            args.category, args.action or '', where,
            type(exc).__name__, exc), EXIT_ERROR)


EXIT_ERROR = 1
EXIT_USAGE = 2


def _database(conf):
    """[database] connection, without its password."""
    try:
        import sqlalchemy
        return sqlalchemy.engine.make_url(
            conf.database.connection).render_as_string(hide_password=True)
    except Exception:  # unparsable: say which option to look at
        return '[database] connection'


def _fail(message, code):
    lines = str(message).strip().splitlines()
    print('error: %s' % (lines[0] if lines else message), file=sys.stderr)
    return code


if __name__ == '__main__':
    sys.exit(main())
