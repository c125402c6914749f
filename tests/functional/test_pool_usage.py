"""The pools' usage counters through a real worker: after a mixed workload
with an injected failure and a kill -9 inside three operations, they equal
the sums over the rows before the restart, the restart finds nothing to
mend, and the capability report says the same."""

import uuid

from volume_worker import objects
from volume_worker.objects import VolumeStatus
from volume_worker.testing import drivers as faulty
from volume_worker.testing import state

from tests.functional.test_crash_recovery import CrashRig

REBUILT = 'pool usage counters rebuilt'


def _assert_counters_exact(rig):
    from volume_worker.db import pool_usage
    with rig.db.engine.connect() as conn:
        stored = pool_usage.stored(conn, rig.backend)
        counted = pool_usage.counted(conn, rig.backend)
    assert stored == counted
    return counted


def _snapshot(rig, volume_id):
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=volume_id,
                            display_name='usage')
    rig.api.create_snapshot(rig.ctx, rig.backend, snap)
    state.wait_until(lambda: rig.db.snapshot_status(snap.id) == 'available',
                     30, 'snapshot %s' % snap.id)
    return snap.id


def test_counters_stay_exact_through_failures_and_a_kill(tmp_path):
    rig = CrashRig(tmp_path)
    rig.clear_faults()
    try:
        rig.start()
        kept, grown, doomed, failing = (
            rig.cast_create(size=size) for size in (1, 2, 3, 4))
        for volume_id in (kept, grown, doomed, failing):
            rig.wait_status(volume_id, VolumeStatus.AVAILABLE)
        _snapshot(rig, kept)
        rig.api.extend_volume(rig.ctx, rig.backend, grown, 5)
        state.wait_until(lambda: rig.db.volume(grown)['size'] == 5, 30,
                         'extend of %s' % grown)

        # An injected failure: a create that ends in error, an extend
        # that does not grow.
        broken = str(uuid.uuid4())
        faulty.control(rig.control, {broken: {'create_volume': 'raise'},
                                     failing: {'extend_volume': 'raise'}})
        rig.cast_create(broken, size=6)
        rig.api.extend_volume(rig.ctx, rig.backend, failing, 8)
        rig.wait_status(broken, VolumeStatus.ERROR)
        rig.wait_status(failing, VolumeStatus.ERROR_EXTENDING)
        counted = _assert_counters_exact(rig)
        pool = rig.db.volume(kept)['host']
        assert counted[pool] == (1 + 5 + 3 + 4 + 6, 1, 5)

        # kill -9 inside a delete, an extend and a create.
        hung = str(uuid.uuid4())
        steps = {doomed: 'delete_volume', kept: 'extend_volume',
                 hung: 'create_volume'}
        rig.hang(steps)
        rig.cast_delete(doomed)
        rig.api.extend_volume(rig.ctx, rig.backend, kept, 9)
        rig.cast_create(hung, size=7)
        rig.wait_inside(steps)
        rig.kill()
        _assert_counters_exact(rig)

        rig.clear_faults()
        worker = rig.start()
        assert rig.db.journal() == {}
        assert rig.db.status(doomed) == VolumeStatus.DELETED
        assert rig.db.volume(kept)['size'] in (1, 9)
        assert REBUILT not in worker.log_text()
        counted = _assert_counters_exact(rig)

        # And the report says what the rows say.
        report = rig.api.get_capabilities(rig.ctx, rig.backend)
        assert report['total_volumes'] == sum(c[2] for c in counted.values())
        assert report['allocated_capacity_gb'] == sum(
            c[0] for c in counted.values())

        rig.cast_delete(broken)
        state.wait_until(lambda: rig.db.volume(broken)['deleted'], 30,
                         'delete of %s' % broken)
        _assert_counters_exact(rig)
    finally:
        rig.close()
