"""``volume-worker-manage``: operator commands against the worker's database.

    volume-worker-manage --config-file FILE db sync|version
    volume-worker-manage --config-file FILE service list
    volume-worker-manage --config-file FILE journal list
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
            'disabled': svc.disabled, 'frozen': svc.frozen,
            'updated_at': seen.isoformat() if seen else None,
            'recovered_at': (svc.recovered_at.isoformat()
                             if svc.recovered_at else None)})
    print(json.dumps(rows, indent=2))
    return 0


def cmd_journal_list(conf, args):
    db = _db(conf)
    rows = [{'id': r['id'], 'host': r['host'], 'operation': r['operation'],
             'state': r['state'], 'created_at': r['created_at'],
             'resources': [{'role': role, 'type': rtype, 'id': rid}
                           for role, rtype, rid in r['resources']]}
            for r in db.journal_get_all()]
    print(json.dumps(rows, indent=2, default=str))
    return 0


COMMANDS = {
    ('db', 'sync'): cmd_db_sync,
    ('db', 'version'): cmd_db_version,
    ('service', 'list'): cmd_service_list,
    ('journal', 'list'): cmd_journal_list,
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog='volume-worker-manage')
    parser.add_argument('category', choices=sorted({c for c, _ in COMMANDS}))
    parser.add_argument('action')
    from volume_worker.cmd.client import _split_config_args
    oslo_args, rest = _split_config_args(argv)
    args, extra = parser.parse_known_args(rest)
    command = COMMANDS.get((args.category, args.action))
    if command is None:
        parser.error('unknown command: %s %s (known: %s)' % (
            args.category, args.action,
            ', '.join(' '.join(k) for k in sorted(COMMANDS))))
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
        # An operator command: the reason in one line (which database,
        # what failed), not a traceback through SQLAlchemy.
        return _fail('%s %s failed (database %s): %s: %s' % (
            args.category, args.action, _database(conf),
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
