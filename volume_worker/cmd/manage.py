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
"""

import argparse
import datetime
import json
import sys

from volume_worker import config


def _db(conf):
    from volume_worker.db import api as db
    db.configure(conf.database.connection)
    return db


def cmd_db_sync(conf, args):
    from volume_worker.db import migration
    _db(conf)
    changed = migration.db_sync()
    print('database at %s (%s)' % (migration.head_revision(),
                                   'migrated' if changed else 'unchanged'))
    return 0


def cmd_db_version(conf, args):
    from volume_worker.db import migration
    _db(conf)
    print(migration.current_revision() or 'empty')
    return 0


def cmd_service_list(conf, args):
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
            'replication_status': svc.replication_status,
            'active_backend_id': svc.active_backend_id,
            'disabled': svc.disabled, 'frozen': svc.frozen,
            'updated_at': seen.isoformat() if seen else None,
            'recovered_at': (svc.recovered_at.isoformat()
                             if svc.recovered_at else None)})
    print(json.dumps(rows, indent=2))
    return 0


def _field(obj, name):
    return (getattr(obj, name) if name in obj.fields and
            obj.obj_attr_is_set(name) else None)


def _backend(args):
    if not args.backend or '@' not in args.backend:
        raise ValueError('give --backend HOST@BACKEND (see service list)')
    return args.backend


def cmd_failover(conf, args):
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
    print(json.dumps(service or {'backend': args.backend,
                                 'status': 'requested'}, indent=2))
    return 0


def cmd_freeze(conf, args, frozen=True):
    from volume_worker.cmd import replication
    replication.freeze(conf, _backend(args), frozen)
    print(json.dumps({'backend': args.backend, 'frozen': frozen}))
    return 0


def cmd_thaw(conf, args):
    return cmd_freeze(conf, args, frozen=False)


def cmd_journal_list(conf, args):
    db = _db(conf)
    rows = [{'id': r['id'], 'host': r['host'], 'operation': r['operation'],
             'state': r['state'], 'created_at': r['created_at'],
             'resources': [{'role': role, 'type': rtype, 'id': rid}
                           for role, rtype, rid in r['resources']]}
            for r in db.journal_get_all()]
    print(json.dumps(rows, indent=2, default=str))
    return 0


def _images(conf):
    from volume_worker import image_store
    return image_store.from_conf(conf)


def cmd_image_import(conf, args):
    if not args.target or not args.name:
        raise ValueError('image import FILE --name NAME [--disk-format F]')
    meta = _images(conf).import_file(None, args.target, args.name,
                                     args.disk_format)
    print(json.dumps(meta, indent=2))
    return 0


def cmd_image_list(conf, args):
    print(json.dumps(_images(conf).list(None), indent=2))
    return 0


def cmd_image_delete(conf, args):
    if not args.target:
        raise ValueError('image delete ID')
    store = _images(conf)
    store.show(None, args.target)  # an unknown id is an error here
    store.delete(None, args.target)
    print(json.dumps({'id': args.target, 'status': 'deleted'}))
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
}
RPC_CATEGORIES = ('failover', 'freeze', 'thaw')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog='volume-worker-manage')
    parser.add_argument('category', choices=sorted({c for c, _ in COMMANDS}))
    parser.add_argument('action', nargs='?')
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
    from volume_worker.cmd.client import _split_config_args
    oslo_args, rest = _split_config_args(argv)
    args, extra = parser.parse_known_args(rest)
    command = COMMANDS.get((args.category, args.action))
    if command is None:
        parser.error('unknown command: %s %s (known: %s)' % (
            args.category, args.action or '', ', '.join(sorted(
                ' '.join(w for w in k if w) for k in COMMANDS))))
    from oslo_config import cfg
    try:
        conf = config.parse_args(oslo_args + extra)
    except cfg.Error as exc:  # a missing or malformed --config-file
        return _fail(exc, EXIT_USAGE)
    missing = config.missing_config(conf, 'volume-worker-manage')
    if missing:
        return _fail(missing, EXIT_USAGE)
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
