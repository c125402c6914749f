"""Usage counters per pool, kept in step with the rows they count.

A capability report gives every pool its allocated and provisioned GiB and
its number of volumes. Summing the volumes table for that costs time in
proportion to the volumes; ``pool_usage`` holds the sums instead, one row
per ``host`` value (``host@backend#pool``): the GiB of its live volumes,
the GiB its live snapshots provision, and the count of its live volumes.

Every write of a volume or snapshot row goes through ``db/api.py``, which
calls the hooks here inside that write's own transaction: a counter moves
with the row it counts or not at all (a rolled back compare-and-swap takes
its counter change with it). A write that leaves host, size and the deleted
flag alone (most status changes) costs nothing; a create costs one upsert,
a delete one update, a move or a resize a read of the row and an upsert per
pool it touches, in host order (two transactions that move volumes between
the same pools in opposite directions then lock the counters in the same
order instead of deadlocking). Counters change as ``n = n + d``, so
concurrent writers of one pool in a shared database do not lose updates.

``recompute`` rebuilds one backend's rows from the tables themselves; the
worker runs it at start-up, so a row written behind the API's back (a tool
inserting volumes straight into the database) is counted from then on and
drift cannot outlive a restart.
"""

import sqlalchemy as sa

from volume_worker.db import models

# table name -> the column whose value a live row adds to its pool
_SIZE_COLUMN = {'volumes': 'size', 'snapshots': 'volume_size'}
# table name -> the counters (volume_gb, snapshot_gb, volumes) one GiB and
# one row of it add
_WEIGHTS = {'volumes': (1, 0, 1), 'snapshots': (0, 1, 0)}
COUNTERS = ('volume_gb', 'snapshot_gb', 'volumes')

_STATEMENTS = {}


def host_clause(table, host):
    """Rows of backend ``host`` (host@backend), whatever their pool.

    ``host#pool`` values sort between ``host#`` and ``host$`` ('$' follows
    '#'): a range an index on host serves, where ``LIKE 'host#%'`` cannot.
    """
    return sa.or_(table.c.host == host,
                  sa.and_(table.c.host >= host + '#', table.c.host < host + '$'))


def tracks(table, values):
    """Whether writing ``values`` to a row of ``table`` can move a counter."""
    size = _SIZE_COLUMN.get(table.name)
    return size is not None and (
        'host' in values or size in values or 'deleted' in values)


def _contribution(table_name, row):
    """{host: (volume_gb, snapshot_gb, volumes)} a row adds; {} if none."""
    if row is None or row.get('deleted') or not row.get('host'):
        return {}
    size = int(row.get(_SIZE_COLUMN[table_name]) or 0)
    gib, snap, count = _WEIGHTS[table_name]
    return {row['host']: (gib * size, snap * size, count)}


def _apply(conn, deltas):
    """Add ``deltas`` ({host: (volume_gb, snapshot_gb, volumes)}) in host order."""
    rows = [{'host': host, 'volume_gb': d[0], 'snapshot_gb': d[1],
             'volumes': d[2]}
            for host, d in sorted(deltas.items()) if any(d)]
    if rows:
        statement = _upsert(conn.dialect.name)
        for row in rows:
            conn.execute(statement, row)


def _upsert(dialect):
    """INSERT a host's row, or add to the one there (``n = n + d``)."""
    statement = _STATEMENTS.get(('upsert', dialect))
    if statement is not None:
        return statement
    t = models.pool_usage
    values = {'host': sa.bindparam('host')}
    values.update((name, sa.bindparam(name)) for name in COUNTERS)
    if dialect == 'postgresql':
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == 'sqlite':
        from sqlalchemy.dialects.sqlite import insert
    elif dialect in ('mysql', 'mariadb'):
        from sqlalchemy.dialects.mysql import insert
        statement = insert(t).values(values)
        statement = statement.on_duplicate_key_update({
            name: t.c[name] + statement.inserted[name] for name in COUNTERS})
    else:
        raise NotImplementedError('pool usage counters on %s' % dialect)
    if statement is None:
        statement = insert(t).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.host], set_={
                name: t.c[name] + statement.excluded[name]
                for name in COUNTERS})
    _STATEMENTS[('upsert', dialect)] = statement
    return statement


def _remove_statement(table):
    """Subtract a live row's share from its pool, reading the row itself."""
    key = ('remove', table.name)
    statement = _STATEMENTS.get(key)
    if statement is None:
        t = models.pool_usage
        rid = sa.bindparam('rid')
        live = sa.and_(table.c.id == rid, table.c.deleted == sa.false())
        size = (sa.select(table.c[_SIZE_COLUMN[table.name]]).where(live)
                .scalar_subquery())
        gib, snap, count = _WEIGHTS[table.name]
        statement = t.update().where(
            t.c.host == sa.select(table.c.host).where(live).scalar_subquery())
        statement = statement.values(
            {'volume_gb': t.c.volume_gb - gib * size,
             'snapshot_gb': t.c.snapshot_gb - snap * size,
             'volumes': t.c.volumes - count})
        _STATEMENTS[key] = statement
    return statement


# -- the hooks db/api.py calls inside its write transactions ---------------

def on_insert(conn, table, values):
    """A row of ``table`` was inserted with ``values``."""
    if table.name in _SIZE_COLUMN:
        _apply(conn, _contribution(table.name, values))


def before_removal(conn, table, resource_id):
    """The live row ``resource_id`` is about to be deleted or purged: one
    statement, whether or not the removal then happens (a compare-and-swap
    that fails rolls the transaction back)."""
    conn.execute(_remove_statement(table), {'rid': resource_id})


def before_update(conn, table, resource_id, values):
    """Read the live row that ``values`` will change; returns what
    ``after_update`` needs (None when the row is not there)."""
    query = _STATEMENTS.get(('old', table.name))
    if query is None:
        query = _STATEMENTS[('old', table.name)] = sa.select(
            table.c.host, table.c[_SIZE_COLUMN[table.name]],
            table.c.deleted).where(table.c.id == sa.bindparam('rid'),
                                   table.c.deleted == sa.false())
    if conn.dialect.name != 'sqlite':
        query = query.with_for_update()
    row = conn.execute(query, {'rid': resource_id}).first()
    return dict(row._mapping) if row is not None else None


def after_update(conn, table, old, values):
    """The row read by ``before_update`` now holds ``values`` too."""
    if old is None:
        return
    new = dict(old)
    new.update((k, v) for k, v in values.items() if k in old)
    deltas = {}
    for sign, row in ((-1, old), (1, new)):
        for host, share in _contribution(table.name, row).items():
            now = deltas.get(host, (0, 0, 0))
            deltas[host] = tuple(a + sign * b for a, b in zip(now, share))
    _apply(conn, deltas)


# -- reading and rebuilding -----------------------------------------------

def _pool(host):
    return host.partition('#')[2] or None


def _empty():
    return {'allocated_capacity_gb': 0, 'provisioned_capacity_gb': 0,
            'total_volumes': 0}


def usage_by_pool(conn, backend):
    """{pool: {allocated_capacity_gb, provisioned_capacity_gb,
    total_volumes}} of one backend from its counters (a row per pool)."""
    out = {}
    for host, (volume_gb, snapshot_gb, volumes) in stored(
            conn, backend).items():
        usage = out.setdefault(_pool(host), _empty())
        usage['allocated_capacity_gb'] += volume_gb
        usage['provisioned_capacity_gb'] += volume_gb + snapshot_gb
        usage['total_volumes'] += volumes
    return out


def counted(conn, backend):
    """{host: (volume_gb, snapshot_gb, volumes)} summed from the tables
    themselves (what the counters must equal); hosts with nothing live are
    left out."""
    v, s = models.volumes, models.snapshots
    volumes = (sa.select(v.c.host, sa.func.sum(v.c.size), sa.func.count())
               .where(v.c.deleted == sa.false(), host_clause(v, backend))
               .group_by(v.c.host))
    snapshots = (sa.select(s.c.host, sa.func.sum(s.c.volume_size))
                 .where(s.c.deleted == sa.false(), host_clause(s, backend))
                 .group_by(s.c.host))
    out = {}
    for host, total, count in conn.execute(volumes):
        out[host] = (int(total or 0), 0, int(count or 0))
    for host, total in conn.execute(snapshots):
        gib, _snap, count = out.get(host, (0, 0, 0))
        out[host] = (gib, int(total or 0), count)
    return out


def stored(conn, backend):
    """{host: (volume_gb, snapshot_gb, volumes)} as the counters say, rows
    that count nothing left out."""
    t = models.pool_usage
    query = sa.select(t.c.host, t.c.volume_gb, t.c.snapshot_gb,
                      t.c.volumes).where(host_clause(t, backend))
    return {host: (a, b, c) for host, a, b, c in conn.execute(query)
            if (a, b, c) != (0, 0, 0)}


def rebuild(conn, backend):
    """Replace ``backend``'s counters with the sums over its rows, in the
    caller's transaction (a bulk write that bypassed the hooks, such as
    moving a backend's rows to another host name, calls it for both names).
    Returns (counters before, counters now), {host: counters} each."""
    t = models.pool_usage
    before = stored(conn, backend)
    conn.execute(t.delete().where(host_clause(t, backend)))
    now = counted(conn, backend)
    if now:
        conn.execute(t.insert(), [
            {'host': host, 'volume_gb': a, 'snapshot_gb': b, 'volumes': c}
            for host, (a, b, c) in now.items()])
    return before, now


def recompute(engine, backend):
    """Rebuild the counters of ``backend`` from its rows, in one transaction.

    Returns ({host: counters before}, {host: counters now}) for the hosts
    where they differed. Writers of other workers sharing the database wait
    for it (PostgreSQL: a lock on the counters; SQLite: its one writer).
    """
    with engine.begin() as conn:
        if conn.dialect.name == 'postgresql':
            conn.execute(sa.text(
                'LOCK TABLE pool_usage IN SHARE ROW EXCLUSIVE MODE'))
        before, now = rebuild(conn, backend)
    drift = {h for h in set(before) | set(now) if before.get(h) != now.get(h)}
    return ({h: before.get(h) for h in drift}, {h: now.get(h) for h in drift})
