"""Issue 9: what the flow journal costs per operation, and where flow CPU goes.

In-process, against a fresh SQLite database and the fake driver: the same
create+delete flows run by ``FlowRunner(journal=True)`` and ``(journal=False)``;
CPU is this thread's time, database writes are counted at the cursor.
"""

import os
import time
import uuid

from sqlalchemy import event

SECTION = '7 flow journal (in-process)'
PROFILE_SECTION = '8 in-process flow CPU by component'


class NullNotifier:
    def info(self, *args, **kwargs):
        pass

    def error(self, *args, **kwargs):
        pass


def make_fake_driver(backend):
    from oslo_config import cfg
    from drivers import configuration, fake
    driver = fake.FakeDriver(configuration=configuration.Configuration(
        config_group='fake1', conf=cfg.ConfigOpts()), host=backend)
    driver.do_setup(None)
    driver.set_initialized()
    return driver


class StatementCounter:
    def __init__(self, engine):
        self.engine = engine
        self.reset()
        event.listen(engine, 'before_cursor_execute', self._on_execute)
        event.listen(engine, 'commit', self._on_commit)

    def reset(self):
        self.writes = 0
        self.reads = 0
        self.commits = 0

    def _on_execute(self, conn, cursor, statement, params, context, many):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ('INSERT', 'UPDATE', 'DELETE', 'REPLACE'):
            self.writes += 1
        else:
            self.reads += 1

    def _on_commit(self, conn):
        self.commits += 1

    def close(self):
        event.remove(self.engine, 'before_cursor_execute', self._on_execute)
        event.remove(self.engine, 'commit', self._on_commit)


def _create(runner, deps, backend):
    from volume_worker import objects
    from volume_worker.flows import create_volume
    from volume_worker.objects import VolumeStatus
    volume = objects.Volume(id=str(uuid.uuid4()), size=1,
                            host=backend + '#pool1')
    volume.obj_set_defaults('metadata', 'admin_metadata')
    volume.status = VolumeStatus.CREATING
    runner.run(create_volume.FAMILY, volume.id,
               create_volume.make_store(volume), dict(deps, volume=volume))
    return volume.id


def _delete(runner, deps, volume_id):
    from volume_worker import objects
    from volume_worker.flows import delete_volume
    volume = objects.Volume.get_by_id(volume_id)
    runner.run(delete_volume.FAMILY, volume.id,
               delete_volume.make_store(volume), dict(deps, volume=volume))


def _one_volume(runner, deps, backend):
    _delete(runner, deps, _create(runner, deps, backend))


def measure(state_dir, results, n):
    import cProfile
    from common import cprofile_breakdown
    from volume_worker import rpc
    from volume_worker.db import api as db
    from volume_worker.db import migration
    from volume_worker.flows.runner import FlowRunner

    backend = 'bench-%s@fake1' % uuid.uuid4().hex[:6]
    path = os.path.join(state_dir, 'journal-bench.sqlite')
    engine = db.configure('sqlite:///%s' % path)
    migration.db_sync()
    counter = StatementCounter(engine)
    try:
        deps = {'context': rpc.admin_context(),
                'driver': make_fake_driver(backend),
                'notifier': NullNotifier()}
        # (journal, op) -> [cpu s, writes, commits, reads, ops]
        acc = {}

        def timed(key, fn, *args):
            counter.reset()
            cpu0 = time.thread_time()
            out = fn(*args)
            totals = acc.setdefault(key, [0.0, 0, 0, 0, 0])
            totals[0] += time.thread_time() - cpu0
            totals[1] += counter.writes
            totals[2] += counter.commits
            totals[3] += counter.reads
            totals[4] += 1
            return out

        for journal in (False, True, False, True):  # interleaved: less drift
            runner = FlowRunner(backend, journal=journal)
            for _ in range(10):
                _one_volume(runner, deps, backend)
            for _ in range(n):
                volume_id = timed((journal, 'create'), _create, runner, deps,
                                  backend)
                timed((journal, 'delete'), _delete, runner, deps, volume_id)

        def per_op(journal, op, i):
            totals = acc[(journal, op)]
            return totals[i] / totals[4]

        for op in ('create', 'delete'):
            for journal, label in ((False, 'no journal'), (True, 'journal')):
                results.add(SECTION, '%s: CPU, %s' % (op, label),
                            per_op(journal, op, 0) * 1e3, 'ms')
                results.add(SECTION, '%s: DB writes, %s' % (op, label),
                            per_op(journal, op, 1), 'stmts')
                results.add(SECTION, '%s: DB commits, %s' % (op, label),
                            per_op(journal, op, 2), 'txns')
            results.add(SECTION, '%s: DB reads (same both ways)' % op,
                        per_op(True, op, 3), 'stmts')
            cost = (per_op(True, op, 0) - per_op(False, op, 0)) * 1e3
            results.add(SECTION, '%s: journal CPU cost' % op, cost, 'ms')
            extra = per_op(True, op, 1) - per_op(False, op, 1)
            results.add(SECTION, '%s: journal DB writes' % op, extra,
                        'stmts', 'a few (<= 4)', extra <= 4)
            extra = per_op(True, op, 2) - per_op(False, op, 2)
            results.add(SECTION, '%s: journal commits' % op, extra, 'txns')

        runner = FlowRunner(backend, journal=True)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(max(20, n // 2)):
            _one_volume(runner, deps, backend)
        profile.disable()
        for name, share in cprofile_breakdown(profile).items():
            results.add(PROFILE_SECTION, name, share * 100, '% CPU')
    finally:
        counter.close()
        db.dispose()
