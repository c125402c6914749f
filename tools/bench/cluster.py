"""Section 11: creates/s of one backend served by ``workers = 1, 2, 4``.

Each run is a fresh worker (a parent and N children, each a member of the
cluster named by its host) on the fake driver and a fresh PostgreSQL
database, sent a burst of creates on ``host@fake1`` (the cluster's queue);
the rate is the burst over the wall time until the last volume is
``available`` in the database, and CPU per create is the children's CPU
over the burst. The broker's raw cast rate (section 1, same run) is the
ceiling beside them.
"""

import os
import time
import uuid

import sqlalchemy as sa

from common import cpu_seconds

SECTION = '11 active-active (workers = N)'
ADMIN_URL = os.environ.get(
    'VW_TEST_POSTGRES', 'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres')


class _Database:
    def __init__(self):
        self.name = 'vw_bench_%s' % uuid.uuid4().hex[:10]
        self.admin = sa.create_engine(ADMIN_URL, isolation_level='AUTOCOMMIT')
        with self.admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE %s' % self.name))
        self.url = ADMIN_URL.rsplit('/', 1)[0] + '/' + self.name
        self.engine = sa.create_engine(self.url)

    def available(self):
        from volume_worker.db import models
        t = models.volumes
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.status == 'available')).scalar()

    def drop(self):
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(sa.text(
                'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                'WHERE datname = :n'), {'n': self.name})
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' % self.name))
        self.admin.dispose()


def _children(pid):
    path = '/proc/%d/task/%d/children' % (pid, pid)
    with open(path) as f:
        return [int(p) for p in f.read().split()]


def _cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def measure_one(state_dir, workers, creates, timeout=300):
    """(creates/s, CPU ms per create) of a fresh worker with ``workers``."""
    from volume_worker import objects
    from volume_worker import rpc
    from volume_worker import rpcapi
    from volume_worker.testing import process
    database = _Database()
    path, settings = process.write_config(
        os.path.join(state_dir, 'cluster-%d-%s' % (workers, database.name)),
        database=database.url,
        extra_default={'workers': workers},
        backends={'fake1': {'volume_driver': 'drivers.fake.FakeDriver',
                            'volume_backend_name': 'fake1'}})
    worker = process.WorkerProcess(path)
    try:
        worker.start(wait_ready=False)
        deadline = time.monotonic() + 120
        while worker.log_text().count('volume-worker started on') < workers:
            if time.monotonic() > deadline:
                raise TimeoutError('%d workers did not start' % workers)
            time.sleep(0.1)
        backend = settings['backends'][0]  # host@fake1: the cluster's queue
        api = rpcapi.VolumeAPI(process.client_config(path))
        ctxt = rpc.admin_context()
        children = _children(worker.pid) if workers > 1 else [worker.pid]
        cpu0 = _cpu(children)
        started = time.monotonic()
        for _ in range(creates):
            api.create_volume(ctxt, backend, objects.Volume(
                id=str(uuid.uuid4()), size=1, host=backend))
        end = time.monotonic() + timeout
        while database.available() < creates:
            if time.monotonic() > end:
                raise TimeoutError('creates not done within %ss' % timeout)
            time.sleep(0.05)
        wall = time.monotonic() - started
        cpu = _cpu(children) - cpu0
        return creates / wall, cpu * 1000.0 / creates
    finally:
        worker.stop()
        database.drop()


def measure(state_dir, results, creates, raw_cast_rate=None, rounds=2):
    """``rounds`` alternating rounds of workers = 1, 2, 4; the best rate of
    each (with its CPU) is reported, the spread in a note."""
    try:
        _Database().drop()
    except sa.exc.OperationalError as exc:  # no server: say so, no failure
        results.skip(SECTION, 'PostgreSQL not reachable at %s: %s' % (
            ADMIN_URL, str(exc).splitlines()[0][:120]))
        return
    runs = {workers: [] for workers in (1, 2, 4)}
    for _round in range(rounds):
        for workers in runs:
            runs[workers].append(measure_one(state_dir, workers, creates))
    best = {workers: max(found) for workers, found in runs.items()}
    for workers, (rate, cpu_ms) in best.items():
        results.add(SECTION, 'workers=%d creates' % workers, rate,
                    'creates/s')
        results.add(SECTION, 'workers=%d CPU per create' % workers, cpu_ms,
                    'ms')
    for workers in (2, 4):
        results.add(SECTION, 'workers=%d / workers=1' % workers,
                    best[workers][0] / best[1][0], 'x')
    if raw_cast_rate:
        results.add(SECTION, 'broker raw casts consumed (section 1)',
                    raw_cast_rate, 'casts/s')
        results.add(SECTION, 'workers=4 / broker raw limit',
                    best[4][0] / raw_cast_rate, 'x')
    results.note('Section 11: %d creates per run, fake driver, PostgreSQL, '
                 'best of %d alternating rounds (creates/s per round: %s); '
                 '%d CPU(s) shared by the client, RabbitMQ, PostgreSQL and '
                 'every worker process.' % (
                     creates, rounds, '; '.join(
                         'workers=%d %s' % (w, ', '.join(
                             '%.0f' % rate for rate, _cpu in found))
                         for w, found in runs.items()), os.cpu_count()))


def measure_fence(state_dir, results, writes=500, rounds=5):
    """CPU of a journal checkpoint with its fence (owner and epoch in the
    WHERE clause, the row count checked) beside the same UPDATE keyed on
    the id only, in-process on SQLite: best of ``rounds`` alternating."""
    import time
    from volume_worker.db import api as db
    from volume_worker.db import migration
    from volume_worker.db import models
    db.configure('sqlite:///%s/fence-%s.sqlite' % (state_dir,
                                                    uuid.uuid4().hex[:8]))
    try:
        migration.db_sync()
        t = models.operations
        plain = t.update().where(t.c.id == sa.bindparam('oid')).values(
            progress=sa.bindparam('progress'), state=sa.bindparam('state'),
            updated_at=sa.bindparam('now'))
        journal = db.OperationJournal.start(
            str(uuid.uuid4()), 'h@b', 'create_volume', [], {}, owner='h@b',
            lease_timeout=30)
        journal.flush()

        def fenced(i):
            journal.checkpoint({'step': i})

        def unfenced(i):
            with db.get_engine().begin() as conn:
                conn.execute(plain, {'oid': journal.id, 'progress': {
                    'step': i}, 'state': 'running', 'now': db.utcnow()})
        best = {}
        for _round in range(rounds):
            for name, write in (('fenced', fenced), ('unfenced', unfenced)):
                cpu0 = time.process_time()
                for i in range(writes):
                    write(i)
                cost = (time.process_time() - cpu0) * 1000.0 / writes
                best[name] = min(best.get(name, cost), cost)
    finally:
        db.dispose()
    results.add(SECTION, 'journal checkpoint, fenced', best['fenced'], 'ms')
    results.add(SECTION, 'journal checkpoint, unfenced', best['unfenced'],
                'ms')
    results.add(SECTION, 'ratio fenced / unfenced checkpoint',
                best['fenced'] / best['unfenced'], 'x')
