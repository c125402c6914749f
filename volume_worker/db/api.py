"""The database API the objects and flows use: plain functions over Core tables.

One engine per process, set by ``configure()``. Every write is its own short
transaction; compare-and-swap updates (``expected_status``) make status
changes safe across workers of one cluster.
"""

import contextlib
import datetime
import threading

import sqlalchemy as sa
from sqlalchemy import event

from volume_worker import exception
from volume_worker.db import models
from volume_worker.db import pool_usage

_ENGINE = None
_ENGINE_LOCK = threading.Lock()


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    # WAL + NORMAL: a commit is a write to the log, not an fsync of the
    # database; still durable across a process crash.
    cur.execute('PRAGMA journal_mode=WAL')
    cur.execute('PRAGMA synchronous=NORMAL')
    cur.execute('PRAGMA busy_timeout=30000')
    cur.close()


def configure(connection, **engine_kwargs):
    """Create the process's engine for ``connection`` (a SQLAlchemy URL)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is not None:
            _ENGINE.dispose()
        url = sa.engine.make_url(connection)
        if url.get_backend_name() == 'sqlite':
            engine = sa.create_engine(url, **engine_kwargs)
            event.listen(engine, 'connect', _sqlite_pragmas)
        else:
            engine_kwargs.setdefault('pool_pre_ping', True)
            engine = sa.create_engine(url, **engine_kwargs)
        _ENGINE = engine
    return engine


def get_engine():
    if _ENGINE is None:
        raise exception.WorkerException('database is not configured')
    return _ENGINE


def dispose():
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is not None:
            _ENGINE.dispose()
        _ENGINE = None


# -- write transactions, and the journal statements that ride along ---------

class _CasFailed(Exception):
    """Rolls back a write whose compare-and-swap matched no row."""


@contextlib.contextmanager
def _writing(journal=None):
    """A write transaction that also carries ``journal``'s pending statements.

    An operation's journal defers its own writes (its start, its finish) to
    the next write the operation makes anyway, so they commit atomically with
    a status change instead of costing transactions of their own. The
    journal is an explicit handle of one operation: nothing queued for one
    operation can ride with another's write.
    """
    riders = journal.pending if journal is not None else ()
    carried = len(riders)
    with get_engine().begin() as conn:
        for statement, params in riders[:carried]:
            if conn.execute(statement, params).rowcount == 0:
                # (An insert always makes its row.) The row is no longer this worker's (fenced): nothing
                # of this transaction may be written.
                raise exception.OperationFenced(operation_id=journal.id)
        yield conn
    if carried:
        del riders[:carried]


# -- generic helpers ---------------------------------------------------------

def _row_to_dict(row):
    return dict(row._mapping) if row is not None else None


_STATEMENTS = {}


def _statement(key, build):
    """A statement built once and reused with bound parameters.

    Building a SQLAlchemy statement (and its cache key) costs more than
    executing it; the hot path runs the same few shapes over and over.
    """
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = _STATEMENTS[key] = build()
    return statement


def _get(table, resource_id, read_deleted=False):
    live = not read_deleted and 'deleted' in table.c

    def build():
        query = sa.select(table).where(table.c.id == sa.bindparam('_id'))
        if live:
            query = query.where(table.c.deleted == sa.false())
        return query
    query = _statement(('get', table.name, live), build)
    with get_engine().connect() as conn:
        return _row_to_dict(conn.execute(query, {'_id': resource_id}).first())


def _create(table, values, journal=None):
    values = dict(values)
    values.setdefault('created_at', utcnow())
    if 'deleted' in table.c:
        values.setdefault('deleted', False)
    insert = _statement(('insert', table.name), table.insert)
    with _writing(journal) as conn:
        result = conn.execute(insert, values)
        if 'id' not in values and result.inserted_primary_key:
            values['id'] = result.inserted_primary_key[0]
        pool_usage.on_insert(conn, table, values)
    return values


def _update(table, resource_id, values, expected_status=None, journal=None,
            status_column='status'):
    """Update one live row; with ``expected_status`` only if it still has it.

    Returns True when a row changed. A compare-and-swap that matched nothing
    rolls back, journal statements included. ``status_column`` is the column
    the compare-and-swap reads (a service's is its replication status).
    """
    params = dict(values)
    params.setdefault('updated_at', utcnow())
    many = isinstance(expected_status, (list, tuple, set, frozenset))
    kind = None if expected_status is None else ('many' if many else 'one')

    def build():
        query = table.update().where(table.c.id == sa.bindparam('_id'))
        if 'deleted' in table.c:
            query = query.where(table.c.deleted == sa.false())
        if kind == 'many':
            query = query.where(table.c[status_column].in_(
                sa.bindparam('_expected', expanding=True)))
        elif kind == 'one':
            query = query.where(
                table.c[status_column] == sa.bindparam('_expected'))
        return query
    query = _statement(('update', table.name, kind), build)
    params['_id'] = resource_id
    if kind is not None:
        params['_expected'] = (list(expected_status) if many
                               else expected_status)
    tracked = pool_usage.tracks(table, values)
    removal = tracked and values.get('deleted') and set(values).isdisjoint(
        ('host', 'size', 'volume_size'))
    try:
        with _writing(journal) as conn:
            old = None
            if removal:
                pool_usage.before_removal(conn, table, resource_id)
            elif tracked:
                old = pool_usage.before_update(conn, table, resource_id,
                                               values)
            if conn.execute(query, params).rowcount == 0:
                raise _CasFailed()
            if tracked and not removal:
                pool_usage.after_update(conn, table, old, values)
    except _CasFailed:
        return False
    return True


def _list(table, filters=None, marker=None, limit=None, read_deleted=False,
          sort_key='created_at'):
    query = sa.select(table)
    if not read_deleted and 'deleted' in table.c:
        query = query.where(table.c.deleted == sa.false())
    for key, value in (filters or {}).items():
        if key == 'backend':
            query = query.where(_host_clause(table, value))
            continue
        if key not in table.c:
            raise exception.InvalidInput(reason='unknown filter %r' % key)
        column = table.c[key]
        if isinstance(value, (list, tuple, set, frozenset)):
            query = query.where(column.in_(list(value)))
        else:
            query = query.where(column == value)
    order = [table.c[sort_key], table.c.id]
    if marker is not None:
        marker_row = _get(table, marker, read_deleted=True)
        if marker_row is None:
            raise exception.InvalidInput(reason='marker %s not found' % marker)
        mk = marker_row[sort_key]
        query = query.where(sa.or_(
            table.c[sort_key] > mk,
            sa.and_(table.c[sort_key] == mk, table.c.id > marker)))
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    with get_engine().connect() as conn:
        return [_row_to_dict(r) for r in conn.execute(query)]


def _soft_delete(table, resource_id, status, expected_status=None,
                 journal=None):
    now = utcnow()
    return _update(table, resource_id, {
        'deleted': True, 'deleted_at': now, 'status': status,
        'updated_at': now}, expected_status, journal)


# -- volumes -------------------------------------------------------------------

def volume_get(volume_id, read_deleted=False):
    row = _get(models.volumes, volume_id, read_deleted=read_deleted)
    if row is None:
        raise exception.VolumeNotFound(volume_id=volume_id)
    return row


def _create_unique(table, resource, values, journal):
    try:
        return _create(table, values, journal)
    except sa.exc.IntegrityError:
        raise exception.ResourceExists(resource=resource,
                                       resource_id=values.get('id'),
                                       reason='its id is taken')


def volume_create(values, journal=None):
    return _create_unique(models.volumes, 'Volume', values, journal)


def volume_update(volume_id, values, expected_status=None, journal=None):
    return _update(models.volumes, volume_id, values, expected_status,
                   journal)


def volume_destroy(volume_id, status, expected_status=None, journal=None):
    return _soft_delete(models.volumes, volume_id, status, expected_status,
                        journal)


def volume_purge(volume_id, expected_status):
    """Remove a volume's row for good (a create sent back to the scheduler:
    it never existed here, and its id must stay usable elsewhere). False
    when the row was not in ``expected_status``."""
    t = models.volumes
    try:
        with _writing() as conn:
            pool_usage.before_removal(conn, t, volume_id)
            if conn.execute(sa.delete(t).where(
                    t.c.id == volume_id,
                    t.c.status == expected_status)).rowcount != 1:
                raise _CasFailed()
    except _CasFailed:
        return False
    return True


def volume_swap_identities(volume_id, volume_host, volume_values, other_id,
                           other_values):
    """Write a migrated volume and its copy in one transaction.

    The volume's row changes only while it still has ``volume_host`` (so a
    swap is done once); False, and nothing written, otherwise.
    """
    t = models.volumes
    now = utcnow()
    try:
        with _writing() as conn:
            for row_id, values, extra in (
                    (volume_id, volume_values, t.c.host == volume_host),
                    (other_id, other_values, sa.true())):
                query = t.update().where(
                    t.c.id == row_id, t.c.deleted == sa.false(), extra
                ).values(dict(values, updated_at=now))
                old = pool_usage.before_update(conn, t, row_id, values)
                if conn.execute(query).rowcount != 1:
                    raise _CasFailed()
                pool_usage.after_update(conn, t, old, values)
    except _CasFailed:
        return False
    return True


def volume_get_all(filters=None, marker=None, limit=None):
    return _list(models.volumes, filters, marker, limit)


def volume_ids_exported(host, statuses):
    """Ids of backend ``host``'s live volumes in ``statuses`` that have a
    ``provider_location`` (an export), without loading the volumes."""
    t = models.volumes
    query = (sa.select(t.c.id)
             .where(t.c.deleted == sa.false(), _host_clause(t, host),
                    t.c.status.in_(list(statuses)),
                    t.c.provider_location.is_not(None),
                    t.c.provider_location != '')
             .order_by(t.c.id))
    with get_engine().connect() as conn:
        return [r[0] for r in conn.execute(query)]


_host_clause = pool_usage.host_clause


# Tables whose ``host`` names the backend a resource lives on (an
# attachment's names its consumer's host: not one of them).
BACKEND_TABLES = ('volumes', 'snapshots', 'groups', 'group_snapshots',
                  'backups')


def move_to_backend(old, new):
    """Rename backend ``old`` (host@backend) to ``new`` (cluster@backend)
    in every resource of it, pools kept, and in its journal rows; one
    transaction. Returns {table: rows moved}."""
    moved = {}
    with get_engine().begin() as conn:
        for name in BACKEND_TABLES:
            t = models.metadata.tables[name]
            values = {'host': sa.literal(new) + sa.func.substr(
                t.c.host, len(old) + 1)}
            if 'cluster_name' in t.c:
                values['cluster_name'] = new
            moved[name] = conn.execute(t.update().where(
                _host_clause(t, old)).values(**values)).rowcount
        t = models.operations
        moved['operations'] = conn.execute(t.update().where(
            t.c.host == old).values(host=new)).rowcount
        for backend in (old, new):   # the rows moved behind the hooks
            pool_usage.rebuild(conn, backend)
    return moved


def volume_allocated_capacity_by_pool(host):
    """{pool_name: allocated GiB} of the live volumes of one backend."""
    return {pool: usage['allocated_capacity_gb']
            for pool, usage in backend_usage_by_pool(host).items()}


def backend_usage_by_pool(host):
    """What the database knows of one backend's pools.

    ``{pool_name: {'allocated_capacity_gb', 'provisioned_capacity_gb',
    'total_volumes'}}``: the GiB of live volumes, the GiB they and their
    live snapshots provision, and the count of live volumes (pool ``None``
    for hosts written without one). Read from the pools' counters (see
    ``db/pool_usage.py``): the cost does not grow with the volumes, and
    every worker sharing the database reports the same.
    """
    with get_engine().connect() as conn:
        return pool_usage.usage_by_pool(conn, host)


def pool_usage_recompute(host):
    """Rebuild backend ``host``'s usage counters from its rows; returns
    ({host: counters before}, {host: counters now}) where they differed."""
    return pool_usage.recompute(get_engine(), host)


def pool_usage_check(host):
    """(counters, sums from the rows) of backend ``host``, read one after
    the other: {host: (volume GiB, snapshot GiB, volumes)} each."""
    with get_engine().connect() as conn:
        return (pool_usage.stored(conn, host),
                pool_usage.counted(conn, host))


# -- snapshots -----------------------------------------------------------------

def snapshot_get(snapshot_id, read_deleted=False):
    row = _get(models.snapshots, snapshot_id, read_deleted=read_deleted)
    if row is None:
        raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
    return row


def snapshot_create(values, journal=None):
    return _create_unique(models.snapshots, 'Snapshot', values, journal)


def snapshot_update(snapshot_id, values, expected_status=None, journal=None):
    return _update(models.snapshots, snapshot_id, values, expected_status,
                   journal)


def snapshot_destroy(snapshot_id, status, expected_status=None, journal=None):
    return _soft_delete(models.snapshots, snapshot_id, status,
                        expected_status, journal)


def volume_dependents(volume_id):
    """(live attachments, live snapshots) of a volume, in one query."""
    a, s = models.volume_attachment, models.snapshots

    def build():
        vid = sa.bindparam('vid')
        attached = (sa.select(sa.func.count()).select_from(a)
                    .where(a.c.volume_id == vid, a.c.deleted == sa.false())
                    .scalar_subquery())
        snapshots = (sa.select(sa.func.count()).select_from(s)
                     .where(s.c.volume_id == vid, s.c.deleted == sa.false())
                     .scalar_subquery())
        return sa.select(attached, snapshots)
    query = _statement(('dependents', 'volumes'), build)
    with get_engine().connect() as conn:
        return tuple(conn.execute(query, {'vid': volume_id}).one())


def volume_key_users(key_id, except_volume_id):
    """How many other live volumes name encryption key ``key_id``."""
    v = models.volumes
    query = (sa.select(sa.func.count()).select_from(v)
             .where(v.c.encryption_key_id == key_id,
                    v.c.id != except_volume_id, v.c.deleted == sa.false()))
    with get_engine().connect() as conn:
        return conn.execute(query).scalar()


def snapshot_get_all(filters=None, marker=None, limit=None):
    return _list(models.snapshots, filters, marker, limit)


def snapshot_latest(volume_id):
    """The id of the volume's most recent live snapshot, or None."""
    t = models.snapshots

    def build():
        return (sa.select(t.c.id)
                .where(t.c.volume_id == sa.bindparam('vid'),
                       t.c.deleted == sa.false())
                .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(1))
    query = _statement(('latest', 'snapshots'), build)
    with get_engine().connect() as conn:
        return conn.execute(query, {'vid': volume_id}).scalar()


# -- attachments -----------------------------------------------------------------

def attachment_get(attachment_id, read_deleted=False):
    row = _get(models.volume_attachment, attachment_id,
               read_deleted=read_deleted)
    if row is None:
        raise exception.AttachmentNotFound(attachment_id=attachment_id)
    return row


def attachment_create(values, journal=None):
    return _create_unique(models.volume_attachment, 'Attachment', values,
                          journal)


def attachment_update(attachment_id, values, expected_status=None,
                      journal=None):
    return _update(models.volume_attachment, attachment_id, values,
                   expected_status, journal)


def attachment_destroy(attachment_id, status, expected_status=None,
                       journal=None):
    return _soft_delete(models.volume_attachment, attachment_id, status,
                        expected_status, journal)


def attachment_get_all(filters=None, marker=None, limit=None):
    return _list(models.volume_attachment, filters, marker, limit)


def attachment_others(volume_id, attachment_id):
    """Statuses of the volume's other live attachments."""
    t = models.volume_attachment

    def build():
        return sa.select(t.c.status).where(
            t.c.volume_id == sa.bindparam('vid'),
            t.c.id != sa.bindparam('aid'), t.c.deleted == sa.false())
    query = _statement(('others', 'volume_attachment'), build)
    with get_engine().connect() as conn:
        return [r[0] for r in conn.execute(
            query, {'vid': volume_id, 'aid': attachment_id or ''})]


# -- groups --------------------------------------------------------------------

def group_get(group_id, read_deleted=False):
    row = _get(models.groups, group_id, read_deleted=read_deleted)
    if row is None:
        raise exception.GroupNotFound(group_id=group_id)
    return row


def group_create(values, journal=None):
    return _create_unique(models.groups, 'Group', values, journal)


def group_update(group_id, values, expected_status=None, journal=None):
    return _update(models.groups, group_id, values, expected_status, journal)


def group_destroy(group_id, status, expected_status=None, journal=None):
    return _soft_delete(models.groups, group_id, status, expected_status,
                        journal)


def group_get_all(filters=None, marker=None, limit=None):
    return _list(models.groups, filters, marker, limit)


def group_member_ids(group_id):
    """Ids of the group's live volumes, in a stable order."""
    t = models.volumes
    query = (sa.select(t.c.id)
             .where(t.c.group_id == group_id, t.c.deleted == sa.false())
             .order_by(t.c.id))
    with get_engine().connect() as conn:
        return [r[0] for r in conn.execute(query)]


def group_snapshot_get(group_snapshot_id, read_deleted=False):
    row = _get(models.group_snapshots, group_snapshot_id,
               read_deleted=read_deleted)
    if row is None:
        raise exception.GroupSnapshotNotFound(
            group_snapshot_id=group_snapshot_id)
    return row


def group_snapshot_create(values, journal=None):
    return _create_unique(models.group_snapshots, 'Group snapshot', values,
                          journal)


def group_snapshot_update(group_snapshot_id, values, expected_status=None,
                          journal=None):
    return _update(models.group_snapshots, group_snapshot_id, values,
                   expected_status, journal)


def group_snapshot_destroy(group_snapshot_id, status, expected_status=None,
                           journal=None):
    return _soft_delete(models.group_snapshots, group_snapshot_id, status,
                        expected_status, journal)


def group_snapshot_get_all(filters=None, marker=None, limit=None):
    return _list(models.group_snapshots, filters, marker, limit)


def group_type_get(type_id):
    row = _get(models.group_types, type_id)
    if row is None:
        raise exception.GroupTypeNotFound(group_type_id=type_id)
    return row


def group_type_create(values, journal=None):
    return _create(models.group_types, values, journal)


def group_type_get_all():
    return _list(models.group_types)


# -- backups -------------------------------------------------------------------

def backup_get(backup_id, read_deleted=False):
    row = _get(models.backups, backup_id, read_deleted=read_deleted)
    if row is None:
        raise exception.BackupNotFound(backup_id=backup_id)
    return row


def backup_create(values, journal=None):
    return _create_unique(models.backups, 'Backup', values, journal)


def backup_update(backup_id, values, expected_status=None, journal=None):
    return _update(models.backups, backup_id, values, expected_status,
                   journal)


def backup_destroy(backup_id, status, expected_status=None, journal=None):
    return _soft_delete(models.backups, backup_id, status, expected_status,
                        journal)


def backup_get_all(filters=None, marker=None, limit=None):
    return _list(models.backups, filters, marker, limit)


def backup_latest(volume_id, status, exclude=None):
    """The id of the volume's most recent live backup in ``status`` (other
    than ``exclude``), or None."""
    t = models.backups
    query = (sa.select(t.c.id)
             .where(t.c.volume_id == volume_id, t.c.status == status,
                    t.c.id != (exclude or ''), t.c.deleted == sa.false())
             .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(1))
    with get_engine().connect() as conn:
        return conn.execute(query).scalar()


def backup_children(backup_id):
    """Ids of the live incremental backups made on top of this one."""
    t = models.backups
    query = sa.select(t.c.id).where(t.c.parent_id == backup_id,
                                    t.c.deleted == sa.false())
    with get_engine().connect() as conn:
        return [r[0] for r in conn.execute(query)]


# -- volume types ----------------------------------------------------------------

def volume_type_get(type_id):
    row = _get(models.volume_types, type_id)
    if row is None:
        raise exception.VolumeTypeNotFound(volume_type_id=type_id)
    return row


def volume_type_create(values, journal=None):
    try:
        return _create(models.volume_types, values, journal)
    except sa.exc.IntegrityError:
        raise exception.ResourceExists(resource='volume type',
                                       resource_id=values.get('name'),
                                       reason='its name or id is taken')


def volume_type_get_all():
    return _list(models.volume_types, sort_key='name')


# -- services --------------------------------------------------------------------

def service_get_by_host_binary(host, binary):
    t = models.services
    query = sa.select(t).where(t.c.host == host, t.c.binary == binary,
                               t.c.deleted == sa.false())
    with get_engine().connect() as conn:
        row = _row_to_dict(conn.execute(query).first())
    if row is None:
        raise exception.ServiceNotFound(host=host, binary=binary)
    return row


def service_create(values, journal=None):
    return _create(models.services, values, journal)


def service_get(service_id, read_deleted=False):
    row = _get(models.services, service_id, read_deleted=read_deleted)
    if row is None:
        raise exception.ServiceNotFound(host='id %s' % service_id,
                                        binary='any binary')
    return row


def service_update(service_id, values, expected_status=None, journal=None):
    """A service's "status" is its replication status (failover's subject)."""
    return _update(models.services, service_id, values, expected_status,
                   journal, status_column='replication_status')


def service_get_all(filters=None):
    filters = dict(filters or {})
    if 'status' in filters:
        filters['replication_status'] = filters.pop('status')
    return _list(models.services, filters, sort_key='id')


def service_cluster_frozen(cluster_name):
    """Whether any worker of ``cluster_name`` is frozen."""
    t = models.services
    query = sa.select(sa.func.count()).select_from(t).where(
        t.c.cluster_name == cluster_name, t.c.frozen == sa.true(),
        t.c.deleted == sa.false())
    with get_engine().connect() as conn:
        return bool(conn.execute(query).scalar())


def service_thaw_cluster(cluster_name):
    """Thaw every worker of ``cluster_name``."""
    t = models.services
    with _writing(None) as conn:
        conn.execute(t.update().where(t.c.cluster_name == cluster_name)
                     .values(frozen=False, updated_at=utcnow()))


def health_write(service_ids):
    """A write transaction that changes nothing (the health check's).

    It rewrites the services' rows with their own ``updated_at``, so it
    fails as the worker's writes would (a read-only replica, a locked or
    full SQLite file) without touching the heartbeat.
    """
    t = models.services
    with get_engine().begin() as conn:
        conn.execute(t.update().where(t.c.id.in_(list(service_ids) or [-1]))
                     .values(updated_at=t.c.updated_at))


# -- operation journal -------------------------------------------------------

class OperationJournal:
    """The journal row of one operation, and its writes still to be made.

    The start and the finish are queued (``pending``) and ride with the
    operation's next write; checkpoints and the switch to reverting are
    written at once. One handle per operation, passed through its run.

    Every write but the insert is fenced: it names the row's ``owner`` and
    ``lease_epoch`` as this handle knows them, and one that matches no row
    (a peer claimed the operation after this worker's lease expired)
    raises ``OperationFenced`` inside its transaction, rolling back the
    operation's own write that carried it. The check costs two more terms
    in a WHERE clause on the primary key: nothing measurable.
    """

    _t = models.operations
    _INSERT = _t.insert()
    _FENCE = sa.and_(_t.c.id == sa.bindparam('oid'),
                     _t.c.owner == sa.bindparam('b_owner'),
                     _t.c.lease_epoch == sa.bindparam('b_epoch'))
    _DELETE = _t.delete().where(_FENCE)
    _CHECKPOINT = _t.update().where(_FENCE).values(
        progress=sa.bindparam('progress'), state=sa.bindparam('state'),
        updated_at=sa.bindparam('now'))

    def __init__(self, operation_id, owner=None, epoch=0):
        self.id = operation_id
        self.owner = owner
        self.epoch = epoch
        self.pending = []

    @classmethod
    def start(cls, operation_id, host, operation, resources, store,
              owner=None, lease_timeout=None):
        """A new operation: its row is written with its first write.

        ``host`` is the backend the operation runs on (cluster@backend in
        a cluster), ``owner`` the worker running it (host@backend; default
        ``host``), whose lease runs ``lease_timeout`` seconds from now.
        """
        owner = owner or host
        journal = cls(operation_id, owner, 0)
        now = utcnow()
        journal.pending.append((cls._INSERT, {
            'id': operation_id, 'host': host, 'operation': operation,
            'state': 'running', 'resources': resources, 'store': store,
            'progress': {}, 'created_at': now, 'updated_at': now,
            'owner': owner, 'lease_epoch': 0,
            'expires_at': (now + datetime.timedelta(seconds=lease_timeout)
                           if lease_timeout else None)}))
        return journal

    @classmethod
    def of_row(cls, row):
        """The handle of a journaled operation, as its row names its owner."""
        return cls(row['id'], row['owner'], row['lease_epoch'])

    def _fence(self, **params):
        params.update(oid=self.id, b_owner=self.owner, b_epoch=self.epoch)
        return params

    def defer_finish(self):
        """Drop the row with the operation's next (last) write."""
        self.pending.append((self._DELETE, self._fence()))

    def discard_pending(self):
        del self.pending[:]

    def checkpoint(self, progress, state='running'):
        with _writing(self) as conn:
            if conn.execute(self._CHECKPOINT, self._fence(
                    progress=progress, state=state,
                    now=utcnow())).rowcount == 0:
                raise exception.OperationFenced(operation_id=self.id)

    def finish(self):
        """Drop the row now, with anything of it not yet written.

        Returns False when the row was not this worker's (any more).
        """
        self.discard_pending()
        with get_engine().begin() as conn:
            return conn.execute(self._DELETE, self._fence()).rowcount > 0

    def flush(self):
        """Commit pending statements now if no write has carried them."""
        if self.pending:
            with _writing(self):
                pass


def journal_renew(owner, lease_timeout):
    """Extend the lease of every operation of ``owner``: one UPDATE.

    Returns how many rows it renewed.
    """
    t = models.operations
    now = utcnow()
    with get_engine().begin() as conn:
        return conn.execute(t.update().where(t.c.owner == owner).values(
            expires_at=now + datetime.timedelta(seconds=lease_timeout))
        ).rowcount


def journal_claimable(host, owner):
    """Rows of backend ``host`` that ``owner`` may take: its own (left by
    its previous process) and those whose lease has expired (or that
    never had one), oldest first."""
    t = models.operations
    query = sa.select(t).where(
        t.c.host == host,
        sa.or_(t.c.owner == owner, t.c.owner.is_(None),
               t.c.expires_at.is_(None), t.c.expires_at < utcnow())
    ).order_by(t.c.created_at, t.c.id)
    with get_engine().connect() as conn:
        return [_row_to_dict(r) for r in conn.execute(query)]


def journal_claim(row, owner, lease_timeout):
    """Take ``row`` for ``owner`` by compare-and-swap on its owner and epoch.

    Only one of several claimants wins; the epoch goes up, so the previous
    owner's fenced writes match nothing from now on. Returns the row as
    claimed (new owner, epoch, lease), or None when another worker took it
    (or renewed it, or it finished) meanwhile.
    """
    t = models.operations
    now = utcnow()
    expires = (now + datetime.timedelta(seconds=lease_timeout)
               if lease_timeout else None)
    where = [t.c.id == row['id'], t.c.lease_epoch == row['lease_epoch']]
    where.append(t.c.owner.is_(None) if row['owner'] is None
                 else t.c.owner == row['owner'])
    if row['owner'] != owner:  # a peer's: only while its lease is expired
        where.append(sa.or_(t.c.expires_at.is_(None), t.c.expires_at < now))
    with get_engine().begin() as conn:
        changed = conn.execute(t.update().where(*where).values(
            owner=owner, lease_epoch=t.c.lease_epoch + 1,
            expires_at=expires)).rowcount
    if not changed:
        return None
    return dict(row, owner=owner, lease_epoch=row['lease_epoch'] + 1,
                expires_at=expires)


def journal_counts():
    """{host: operations journaled}, in one grouped query."""
    t = models.operations
    query = sa.select(t.c.host, sa.func.count()).group_by(t.c.host)
    with get_engine().connect() as conn:
        return {host: count for host, count in conn.execute(query)}


def journal_exists(operation_id):
    t = models.operations
    with get_engine().connect() as conn:
        return conn.execute(sa.select(t.c.id).where(
            t.c.id == operation_id)).first() is not None


def journal_get_all(host=None):
    t = models.operations
    query = sa.select(t).order_by(t.c.created_at, t.c.id)
    if host is not None:
        query = query.where(t.c.host == host)
    with get_engine().connect() as conn:
        return [_row_to_dict(r) for r in conn.execute(query)]
