"""Read-only looks at a worker's database, and polling, for functional tests."""

import time

import sqlalchemy as sa

from volume_worker.db import models


def wait_until(predicate, timeout=30, what='condition', interval=0.05):
    """Poll ``predicate`` until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError('%s not reached within %ss' % (what, timeout))
        time.sleep(interval)


class WorkerDB:
    """What a worker's database says, read behind the worker's back."""

    def __init__(self, url):
        self.engine = sa.create_engine(url)

    def _rows(self, table, *where):
        query = sa.select(table)
        if where:
            query = query.where(*where)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def volume(self, volume_id):
        t = models.volumes
        rows = self._rows(t, t.c.id == volume_id)
        return rows[0] if rows else None

    def status(self, volume_id):
        row = self.volume(volume_id)
        return row['status'] if row else None

    def live_volumes(self):
        t = models.volumes
        return self._rows(t, t.c.deleted == sa.false())

    def journal(self):
        """{resource_id: journal row} of every resource an unfinished operation holds."""
        return {rid: r for r in self._rows(models.operations)
                for _role, _type, rid in r['resources']}

    def operations(self):
        return self._rows(models.operations)

    def snapshot(self, snapshot_id):
        t = models.snapshots
        rows = self._rows(t, t.c.id == snapshot_id)
        return rows[0] if rows else None

    def snapshot_status(self, snapshot_id):
        row = self.snapshot(snapshot_id)
        return row['status'] if row else None

    def live_snapshots(self):
        t = models.snapshots
        return self._rows(t, t.c.deleted == sa.false())

    def backup(self, backup_id):
        t = models.backups
        rows = self._rows(t, t.c.id == backup_id)
        return rows[0] if rows else None

    def backup_status(self, backup_id):
        row = self.backup(backup_id)
        return row['status'] if row else None

    def backups(self):
        t = models.backups
        return self._rows(t, t.c.deleted == sa.false())

    def services(self):
        return self._rows(models.services)

    def close(self):
        self.engine.dispose()
