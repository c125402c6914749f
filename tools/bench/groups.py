"""Group operations whose members the worker does itself: one at a time, or several at once.

One worker serves two file backends that differ only in
``group_member_parallelism`` (1 and 4). Both run the test driver that can
be made slow (``volume_worker.testing.drivers.FaultyFileDriver``): every
member call (a snapshot, a copy, a delete) takes ``DELAY`` seconds more, as
on an array answering in 100 ms. Each round runs the same group operations
on both, alternating which goes first: a group snapshot, a new group from
it, the group snapshot deleted, both groups deleted with their volumes.
Times run from the cast to the end state in the database.
"""

import os
import time
import uuid

SECTION = '5d groups: members one at a time vs at once (file driver)'
DELAY = 0.1  # seconds added to each member's driver call
BACKENDS = {'serial': 1, 'parallel': 4}


def _backends(state, control):
    out = {}
    for name, parallelism in BACKENDS.items():
        out[name] = {
            'volume_driver':
                'volume_worker.testing.drivers.FaultyFileDriver',
            'volume_backend_name': name,
            'file_volume_dir': os.path.join(state, 'volumes-' + name),
            'target_protocol': 'local',
            'fault_control_file': control,
            'group_member_parallelism': str(parallelism)}
    return out


class _Backend:
    def __init__(self, api, ctx, db, backend):
        self.api = api
        self.ctx = ctx
        self.db = db
        self.backend = backend

    def _row(self, table, row_id):
        import sqlalchemy as sa
        from volume_worker.db import models
        t = getattr(models, table)
        with self.db.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == row_id)).first()
        return dict(row._mapping) if row else {}

    def _wait(self, table, row_id, done, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self._row(table, row_id)
            if done(row):
                return
            if row.get('status') in ('error', 'error_deleting'):
                raise RuntimeError('%s %s: %s' % (table, row_id,
                                                  row['status']))
            time.sleep(0.01)
        raise TimeoutError('%s %s not done' % (table, row_id))

    def group_of(self, members):
        from volume_worker import objects
        group = objects.Group(id=str(uuid.uuid4()), name='bench')
        self.api.create_group(self.ctx, self.backend, group)
        self._wait('groups', group.id,
                   lambda r: r.get('status') == 'available')
        ids = []
        for _ in range(members):
            volume = objects.Volume(id=str(uuid.uuid4()), size=1,
                                    host=self.backend, metadata={})
            self.api.create_volume(self.ctx, self.backend, volume)
            ids.append(volume.id)
        for volume_id in ids:
            self._wait('volumes', volume_id,
                       lambda r: r.get('status') == 'available')
        self.api.update_group(self.ctx, self.backend, group.id,
                              add_volumes=ids)
        self._wait('volumes', ids[-1],
                   lambda r: r.get('group_id') == group.id)
        self._wait('groups', group.id,
                   lambda r: r.get('status') == 'available')
        return group.id

    def timed(self, send, table, row_id, done):
        started = time.monotonic()
        send()
        self._wait(table, row_id, done)
        return time.monotonic() - started

    def operations(self, group_id):
        """Seconds of each operation on one group."""
        from volume_worker import objects
        available = (lambda r: r.get('status') == 'available')
        deleted = (lambda r: bool(r.get('deleted')))
        gs = objects.GroupSnapshot(id=str(uuid.uuid4()), group_id=group_id,
                                   name='bench')
        copy = objects.Group(id=str(uuid.uuid4()), name='bench-copy')
        return {
            'group snapshot': self.timed(
                lambda: self.api.create_group_snapshot(self.ctx,
                                                       self.backend, gs),
                'group_snapshots', gs.id, available),
            'group from the snapshot': self.timed(
                lambda: self.api.create_group_from_src(
                    self.ctx, self.backend, copy, group_snapshot_id=gs.id),
                'groups', copy.id, available),
            'group snapshot delete': self.timed(
                lambda: self.api.delete_group_snapshot(self.ctx,
                                                       self.backend, gs.id),
                'group_snapshots', gs.id, deleted),
            'two groups deleted with their volumes': self.timed(
                lambda: (self.api.delete_group(self.ctx, self.backend,
                                               copy.id, delete_volumes=True),
                         self.api.delete_group(self.ctx, self.backend,
                                               group_id,
                                               delete_volumes=True)),
                'groups', group_id, deleted),
        }


def measure(bench, results, members, rounds):
    from volume_worker import rpc
    from volume_worker import rpcapi
    from volume_worker.testing import drivers as faulty
    from volume_worker.testing import state as worker_state
    state = os.path.join(bench.state, 'groups')
    control = os.path.join(state, 'faults.json')
    os.makedirs(state, exist_ok=True)
    faulty.control(control, {'*': {m: DELAY for m in (
        'create_snapshot', 'create_volume_from_snapshot', 'delete_volume',
        'delete_snapshot')}})
    worker, path, settings = bench.new_worker(
        'groups', 'eventlet', _backends(state, control))
    worker.start()
    api = rpcapi.VolumeAPI(bench.conf, timeout=60)
    db = worker_state.WorkerDB('sqlite:///%s/volume-worker.sqlite'
                               % os.path.dirname(path))
    backends = {name: _Backend(api, rpc.admin_context(), db, b)
                for name in BACKENDS for b in settings['backends']
                if b.endswith('@' + name)}
    times = {name: {} for name in BACKENDS}
    try:
        for round_no in range(rounds):
            order = list(BACKENDS)
            if round_no % 2:
                order.reverse()
            for name in order:
                backend = backends[name]
                for op, took in backend.operations(
                        backend.group_of(members)).items():
                    times[name].setdefault(op, []).append(took)
    finally:
        worker.stop()
        db.close()
    for op in times['serial']:
        serial = min(times['serial'][op])
        parallel = min(times['parallel'][op])
        results.add(SECTION, '%s, %d members, 1 at a time' % (op, members),
                    serial, 's')
        results.add(SECTION, '%s, %d members, 4 at a time' % (op, members),
                    parallel, 's')
        results.add(SECTION, 'ratio %s: 1 at a time / 4 at a time' % op,
                    serial / parallel, 'x')
    results.note('Groups: member calls slowed by %.1f s each (an array\'s '
                 'answer time); best of %d rounds, the two backends '
                 'alternating, in one worker.' % (DELAY, rounds))
