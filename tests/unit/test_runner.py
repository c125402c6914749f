"""Lock and load, the operation journal, resumption and recovery, on real flows.

The flows run for real (TaskFlow serial engine, SQLite database, the in-memory
fake driver, file locks). A crash is simulated by a task raising ``_Crash``, a
BaseException TaskFlow does not catch, so the engine stops where it is
without reverting, as a killed process would; the test then resumes from what
the database holds, through the same path start-up takes.
"""

import collections
import uuid

import pytest
import sqlalchemy as sa
from oslo_config import cfg
from taskflow import exceptions as tf_exceptions

from drivers import configuration
from drivers import exception as driver_exception
from drivers import fake
from volume_worker import coordination
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker import flows
from volume_worker.flows import common
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.flows import runner as flow_runner
from volume_worker.flows import snapshot as snapshot_flows
from volume_worker import objects
from volume_worker.objects import fields
from volume_worker.objects import SnapshotStatus
from volume_worker.objects import VolumeStatus
from volume_worker import operations
from volume_worker import recovery
from volume_worker.testing import images

HOST = 'node@fake1'
DRIVER_METHODS = ('create_volume', 'delete_volume', 'create_export',
                  'remove_export', 'create_snapshot', 'delete_snapshot',
                  'copy_image_to_volume', 'copy_volume_to_image')


class _Crash(BaseException):
    """Stands for the process dying: TaskFlow neither catches nor reverts it."""


def _status(resource):
    if 'status' in resource.fields:
        return resource.get('status', None)
    return getattr(resource, 'status', None)  # a service's replication status


class RecordingNotifier:
    def __init__(self):
        self.events = []

    def info(self, event_type, resource, **extra):
        self.events.append((event_type, _status(resource)))

    def error(self, event_type, resource, **extra):
        self.events.append((event_type, _status(resource)))

    def refused(self, event_type, resource_type, resource_id, reason):
        self.events.append((event_type, 'refused', resource_id, reason))

    def publish(self, event_type, payload, priority='info'):
        self.events.append((event_type, payload.get('percent')))

    def types(self):
        return [e[0] for e in self.events]


class Reporter:
    dirty = 0

    def mark_dirty(self):
        self.dirty += 1


class RecordingCoordinator(coordination.Coordinator):
    """File locks that also record the order they were taken in."""

    def __init__(self, url):
        super().__init__(url)
        self.taken = []
        self.held = set()

    @coordination.contextlib.contextmanager
    def lock(self, name):
        with super().lock(name):
            self.taken.append(name)
            self.held.add(name)
            try:
                yield
            finally:
                self.held.discard(name)


def make_driver(**faults):
    conf = cfg.ConfigOpts()
    drv = fake.FakeDriver(configuration=configuration.Configuration(
        config_group='fake1', conf=conf), host=HOST)
    for name, value in faults.items():
        conf.set_override(name, value, group='fake1')
    drv.do_setup(None)
    drv.check_for_setup_error()
    drv.set_initialized()
    drv.calls = collections.Counter()
    for name in DRIVER_METHODS:
        original = getattr(drv, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            drv.calls[_name] += 1
            return _original(*args, **kwargs)
        setattr(drv, name, counted)
    return drv


@pytest.fixture
def driver():
    return make_driver()


@pytest.fixture
def notifier():
    return RecordingNotifier()


@pytest.fixture
def coordinator(tmp_path):
    coord = RecordingCoordinator('file://%s' % (tmp_path / 'locks'))
    yield coord
    coord.stop()


IMAGES = images.MemoryImageService()


def make_ops(driver, notifier, coordinator):
    ops = operations.Operations(HOST, driver, coordinator,
                                flow_runner.FlowRunner(HOST), notifier,
                                Reporter())
    ops.image_service = IMAGES
    return ops


@pytest.fixture
def ops(database, driver, notifier, coordinator):
    return make_ops(driver, notifier, coordinator)


@pytest.fixture
def writes(database):
    """Counts INSERT/UPDATE/DELETE statements per table, and commits."""
    counter = collections.Counter()

    def count(conn, cursor, statement, params, context, executemany):
        words = statement.split()
        verb = words[0].upper()
        if verb in ('INSERT', 'UPDATE', 'DELETE'):
            table = words[2] if verb in ('INSERT', 'DELETE') else words[1]
            counter[(verb, table.strip('"'))] += 1

    def commit(conn):
        counter['COMMIT'] += 1
    engine = db.get_engine()
    sa.event.listen(engine, 'before_cursor_execute', count)
    sa.event.listen(engine, 'commit', commit)
    yield counter
    sa.event.remove(engine, 'before_cursor_execute', count)
    sa.event.remove(engine, 'commit', commit)


def new_volume(size=1):
    volume = objects.Volume(id=str(uuid.uuid4()), size=size,
                            host=HOST + '#pool1', display_name='v')
    volume.obj_fill_unset()
    return volume


def new_snapshot(volume_id):
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=volume_id,
                            display_name='s')
    snap.obj_fill_unset()
    return snap


def new_group():
    group = objects.Group(id=str(uuid.uuid4()), name='g', host=HOST)
    group.obj_fill_unset()
    return group


CONNECTOR = {'host': 'consumer1', 'initiator': 'iqn.2026-11.test:consumer1',
             'ip': '127.0.0.1', 'multipath': False}


def new_attachment(volume_id, attachment_id=None, mode='rw'):
    attachment = objects.VolumeAttachment(
        id=attachment_id or str(uuid.uuid4()), volume_id=volume_id,
        connector=dict(CONNECTOR), attach_mode=mode)
    attachment.obj_fill_unset()
    return attachment


def attach(ops, volume_id, complete=True):
    """A new attachment of the volume, through update (and complete)."""
    from volume_worker.flows import attachment as attachment_flows
    attachment = new_attachment(volume_id)
    with ops.acquire(attachment_flows.UPDATE, None, attachment=attachment,
                     volume=volume_id) as op:
        op.run()
    if complete:
        run(ops, attachment_flows.COMPLETE, attachment=attachment.id,
            volume=volume_id)
    return attachment


def run(ops, family, store=None, force=False, **resources):
    with ops.acquire(family, None, store=store, force=force,
                     **resources) as op:
        return op.run()


def run_create(ops, volume):
    return run(ops, create_volume.FAMILY, volume=volume)


def run_delete(ops, volume_id):
    return run(ops, delete_volume.FAMILY, volume=volume_id)


def available_volume(ops):
    volume = new_volume()
    run_create(ops, volume)
    return volume


def journal_rows():
    return db.journal_get_all(HOST)


def crash_in(monkeypatch, task_cls, when='execute'):
    """Make ``task_cls`` kill the flow on ``when``; the journal survives."""
    def crash(self, *args, **kwargs):
        raise _Crash(task_cls.__name__)
    monkeypatch.setattr(task_cls, when, crash)
    # A dead process runs no ``finally``: the journal row must stay.
    monkeypatch.setattr(db.OperationJournal, 'finish', lambda self: None)


def resume_all(driver, notifier, coordinator):
    """What start-up does, in a "new process": each row resumed or reverted once."""
    new_ops = make_ops(driver, notifier, coordinator)
    outcomes = []
    for row in journal_rows():
        try:
            new_ops.resume(flows.FAMILIES[row['operation']], row, None)
            outcomes.append('done')
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def status_of(volume_id):
    return db.volume_get(volume_id, read_deleted=True)['status']


def snapshot_status(snapshot_id):
    return db.snapshot_get(snapshot_id, read_deleted=True)['status']


def _fail(task_cls):
    def fail(self, *args, **kwargs):
        raise RuntimeError('injected into %s' % task_cls.__name__)
    return fail


# -- the journal of a successful run ------------------------------------------

def test_journal_row_lifecycle_of_a_create(ops, driver, notifier,
                                           monkeypatch):
    seen = []
    original = create_volume.CreateExport.execute

    def spy(task, context, driver, volume, create_update):
        # Between the two backend steps: the row exists, CreateOnBackend is
        # checkpointed, CreateExport not yet.
        rows = journal_rows()
        seen.append((len(rows), rows[0]['state'], sorted(rows[0]['progress']),
                     rows[0]['operation'], rows[0]['resources']))
        return original(task, context, driver, volume, create_update)
    monkeypatch.setattr(create_volume.CreateExport, 'execute', spy)

    volume = new_volume()
    run_create(ops, volume)

    assert seen == [(1, 'running', ['CreateOnBackend'], 'create_volume',
                     [['volume', 'volume', volume.id]])]
    assert journal_rows() == []
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert driver._volumes[volume.id]['exported']
    assert notifier.types() == ['volume.create.start', 'volume.create.end']


def test_journal_rides_with_the_first_write(ops, monkeypatch):
    # Killed before its first write, an operation has done nothing: no row,
    # no volume, nothing to recover.
    monkeypatch.setattr(db.OperationJournal, 'finish', lambda self: None)
    with monkeypatch.context() as m:
        m.setattr(common.Begin, 'execute', lambda *a, **k: _raise(_Crash()))
        first = new_volume()
        with pytest.raises(_Crash):
            run_create(ops, first)
    assert journal_rows() == []
    with pytest.raises(exception.VolumeNotFound):
        db.volume_get(first.id)

    # Killed after it: the row was committed with the volume itself.
    seen = []

    def spy(task, *args, **kwargs):
        seen.append([(r['state'], r['progress']) for r in journal_rows()])
        raise _Crash('stop')
    monkeypatch.setattr(create_volume.CreateOnBackend, 'execute', spy)
    second = new_volume()
    with pytest.raises(_Crash):
        run_create(ops, second)
    assert seen == [[('running', {})]]
    assert status_of(second.id) == VolumeStatus.CREATING


def _raise(exc):
    raise exc


def test_one_operations_journal_never_rides_with_anothers_write(ops):
    # An operation that queued its start but has not written yet (waiting on
    # a backend, say) while another runs to its end on the same thread.
    waiting = db.OperationJournal.start(str(uuid.uuid4()), HOST,
                                        'create_volume', [], {})
    run_create(ops, new_volume())
    assert journal_rows() == []
    assert len(waiting.pending) == 1


def test_db_writes_and_commits_per_create_and_delete(ops, writes):
    volume = new_volume()
    run_create(ops, volume)
    create_writes = dict(writes)
    writes.clear()
    run_delete(ops, volume.id)
    delete_writes = dict(writes)

    # Journal: the insert rides with the first status write, one update
    # for the checkpointed backend create, the delete rides with the last
    # status write: three commits for a create, two for a delete. The
    # pool's usage counter rides with the row's insert and its delete.
    assert create_writes == {
        ('INSERT', 'operations'): 1, ('UPDATE', 'operations'): 1,
        ('DELETE', 'operations'): 1, ('INSERT', 'pool_usage'): 1,
        ('INSERT', 'volumes'): 1, ('UPDATE', 'volumes'): 1, 'COMMIT': 3}
    assert delete_writes == {
        ('INSERT', 'operations'): 1, ('DELETE', 'operations'): 1,
        ('UPDATE', 'pool_usage'): 1, ('UPDATE', 'volumes'): 2,
        'COMMIT': 2}


# -- failures revert ------------------------------------------------------------

@pytest.mark.parametrize('task_cls', [
    common.Begin, create_volume.CreateOnBackend,
    create_volume.CreateExport, common.Finish,
])
def test_create_failing_at_each_task_reverts(ops, driver, notifier,
                                             monkeypatch, task_cls):
    monkeypatch.setattr(task_cls, 'execute', _fail(task_cls))
    volume = new_volume()
    with pytest.raises(RuntimeError, match='injected'):
        run_create(ops, volume)

    assert journal_rows() == []
    assert volume.id not in driver._volumes
    if task_cls is common.Begin:
        # Failed before the row existed: nothing to mark.
        with pytest.raises(exception.VolumeNotFound):
            db.volume_get(volume.id)
    else:
        assert status_of(volume.id) == VolumeStatus.ERROR
    assert notifier.types()[-1] == 'volume.create.error'
    assert 'volume.create.end' not in notifier.types()


@pytest.mark.parametrize('method', ['create_volume', 'create_export'])
def test_create_failing_in_the_driver_reverts(database, notifier, coordinator,
                                              method):
    drv = make_driver(fake_fault_raise=[method])
    volume = new_volume()
    with pytest.raises(driver_exception.VolumeBackendAPIException,
                       match='fault injected'):
        run_create(make_ops(drv, notifier, coordinator), volume)
    assert status_of(volume.id) == VolumeStatus.ERROR
    assert drv._volumes == {}
    assert journal_rows() == []


def test_delete_failing_on_the_backend_leaves_error_deleting(
        ops, monkeypatch):
    volume = available_volume(ops)
    monkeypatch.setattr(delete_volume.DeleteOnBackend, 'execute',
                        _fail(delete_volume.DeleteOnBackend))
    with pytest.raises(RuntimeError):
        run_delete(ops, volume.id)
    assert status_of(volume.id) == VolumeStatus.ERROR_DELETING
    assert journal_rows() == []


# -- crash, then resume ------------------------------------------------------

@pytest.mark.parametrize('crash_task, redone', [
    # Crashed inside the backend create: nothing checkpointed, all redone.
    (create_volume.CreateOnBackend, {'create_volume': 1, 'create_export': 1}),
    # Crashed inside the export: the backend create is not redone.
    (create_volume.CreateExport, {'create_volume': 0, 'create_export': 1}),
    # Crashed after both backend steps: the export (idempotent, not
    # checkpointed) runs again.
    (common.Finish, {'create_volume': 0, 'create_export': 1}),
])
def test_resumed_create_skips_checkpointed_steps(ops, driver, notifier,
                                                 coordinator, monkeypatch,
                                                 crash_task, redone):
    volume = new_volume()
    with monkeypatch.context() as m:
        crash_in(m, crash_task)
        with pytest.raises(_Crash):
            run_create(ops, volume)
    assert status_of(volume.id) == VolumeStatus.CREATING
    assert len(journal_rows()) == 1
    before = dict(driver.calls)

    assert resume_all(driver, notifier, coordinator) == ['done']

    after = {m: driver.calls[m] - before.get(m, 0) for m in redone}
    assert after == redone
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert driver._volumes[volume.id]['exported']
    assert journal_rows() == []
    assert notifier.types()[-1] == 'volume.create.end'


def test_resume_after_the_status_was_saved_keeps_the_volume(
        ops, driver, notifier, coordinator, monkeypatch):
    """Killed after Finish committed: its commit took the row along."""
    volume = new_volume()

    def dying_info(event_type, resource, **extra):
        if event_type == 'volume.create.end':  # sent after the save
            raise _Crash(event_type)
    with monkeypatch.context() as m:
        m.setattr(db.OperationJournal, 'finish', lambda self: None)
        m.setattr(notifier, 'info', dying_info)
        with pytest.raises(_Crash):
            run_create(ops, volume)
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert journal_rows() == []  # nothing left to recover

    resume_all(driver, notifier, coordinator)

    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert volume.id in driver._volumes


@pytest.mark.parametrize('crash_task', [
    delete_volume.RemoveExport, delete_volume.DeleteOnBackend, common.Finish])
def test_resumed_delete_finishes(ops, driver, notifier, coordinator,
                                 monkeypatch, crash_task):
    volume = available_volume(ops)
    with monkeypatch.context() as m:
        crash_in(m, crash_task)
        with pytest.raises(_Crash):
            run_delete(ops, volume.id)
    assert status_of(volume.id) == VolumeStatus.DELETING
    before = driver.calls['delete_volume']

    assert resume_all(driver, notifier, coordinator) == ['done']

    assert driver.calls['delete_volume'] - before == 1  # idempotent: again
    assert volume.id not in driver._volumes
    row = db.volume_get(volume.id, read_deleted=True)
    assert row['deleted'] and row['status'] == VolumeStatus.DELETED
    assert journal_rows() == []


def test_crash_while_reverting_is_reverted_on_resume(ops, driver, notifier,
                                                     coordinator, monkeypatch):
    volume = new_volume()
    with monkeypatch.context() as m:
        # The export fails, and the process dies while the revert undoes
        # the backend create: the backend object is still there.
        m.setattr(create_volume.CreateExport, 'execute',
                  _fail(create_volume.CreateExport))
        crash_in(m, create_volume.CreateOnBackend, when='revert')
        with pytest.raises(_Crash):
            run_create(ops, volume)
    assert [r['state'] for r in journal_rows()] == [flow_runner.REVERTING]
    assert volume.id in driver._volumes
    before = dict(driver.calls)

    outcomes = resume_all(driver, notifier, coordinator)

    assert outcomes == ['TaskFlowException']
    # Reverted, not resumed: nothing created again, the object removed.
    assert driver.calls['create_volume'] == before['create_volume']
    assert driver.calls['create_export'] == before.get('create_export', 0)
    assert volume.id not in driver._volumes
    assert status_of(volume.id) == VolumeStatus.ERROR
    assert journal_rows() == []
    assert notifier.types()[-1] == 'volume.create.error'


def test_family_rule_revert_undoes_checkpointed_work(ops, driver, notifier,
                                                     coordinator, monkeypatch):
    volume = new_volume()
    with monkeypatch.context() as m:
        crash_in(m, common.Finish)
        with pytest.raises(_Crash):
            run_create(ops, volume)
    reverting_family = flow_runner.FlowFamily(
        'create_volume', create_volume.build,
        subject=flow_runner.Role('volume', new=True), event='volume.create',
        on_resume=flow_runner.REVERT)
    row = journal_rows()[0]
    with pytest.raises(tf_exceptions.TaskFlowException):
        make_ops(driver, notifier, coordinator).resume(reverting_family, row,
                                                       None)
    assert volume.id not in driver._volumes
    assert status_of(volume.id) == VolumeStatus.ERROR
    assert journal_rows() == []


# -- lock and load ---------------------------------------------------------------

def _locks_held_inside_the_backend_snapshot(coordinator, monkeypatch):
    held_inside = []
    original = snapshot_flows.CreateSnapshotOnBackend.execute

    def spy(task, driver, snapshot):
        held_inside.append(set(coordinator.held))
        return original(task, driver, snapshot)
    monkeypatch.setattr(snapshot_flows.CreateSnapshotOnBackend, 'execute',
                        spy)
    return held_inside


def test_snapshot_holds_its_volume_and_both_are_locked_in_one_order(
        ops, coordinator, monkeypatch):
    volume = available_volume(ops)
    snap = new_snapshot(volume.id)
    held_inside = _locks_held_inside_the_backend_snapshot(coordinator,
                                                          monkeypatch)
    coordinator.taken.clear()
    run(ops, snapshot_flows.CREATE, snapshot=snap)
    create_order = list(coordinator.taken)
    coordinator.taken.clear()
    run(ops, snapshot_flows.DELETE, snapshot=snap.id,
        store={'unmanage_only': False})
    delete_order = list(coordinator.taken)

    both = {operations.lock_name('volume', volume.id),
            operations.lock_name('snapshot', snap.id)}
    assert held_inside == [both]
    assert create_order == delete_order == sorted(both)
    assert snapshot_status(snap.id) == SnapshotStatus.DELETED


def test_statuses_are_checked_against_the_transition_tables(ops, notifier):
    volume = available_volume(ops)
    # A volume with a snapshot cannot be deleted.
    snap = new_snapshot(volume.id)
    run(ops, snapshot_flows.CREATE, snapshot=snap)
    with pytest.raises(exception.ResourceInUse, match='1 snapshot'):
        run_delete(ops, volume.id)
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    # A cast has no reply: the refusal is announced with its reason.
    event, status, subject, reason = notifier.events[-1]
    assert (event, status, subject) == ('volume.delete.error', 'refused',
                                        volume.id)
    assert 'delete them first' in reason

    # An in-use volume needs force; an errored one is refused outright.
    db.volume_update(volume.id, {'status': VolumeStatus.IN_USE})
    with pytest.raises(exception.InvalidStatus, match='available'):
        run(ops, snapshot_flows.CREATE, snapshot=new_snapshot(volume.id))
    forced = new_snapshot(volume.id)
    run(ops, snapshot_flows.CREATE, snapshot=forced, force=True)
    assert snapshot_status(forced.id) == SnapshotStatus.AVAILABLE
    db.volume_update(volume.id, {'status': VolumeStatus.ERROR})
    with pytest.raises(exception.InvalidStatus):
        run(ops, snapshot_flows.CREATE, snapshot=new_snapshot(volume.id),
            force=True)

    # Unknown or foreign resources are refused before anything changes.
    with pytest.raises(exception.VolumeNotFound):
        run(ops, snapshot_flows.CREATE, snapshot=new_snapshot(
            str(uuid.uuid4())))
    foreign = new_volume()
    foreign.host = 'other@fake1#pool1'
    foreign.status = VolumeStatus.AVAILABLE
    foreign.create()
    with pytest.raises(exception.NotOwned):
        run_delete(ops, foreign.id)
    assert status_of(foreign.id) == VolumeStatus.AVAILABLE


def test_repeated_requests_are_harmless(ops, driver, notifier):
    volume = available_volume(ops)
    run_create(ops, volume)  # same id again: already done
    assert driver.calls['create_volume'] == 1
    other_size = objects.Volume(id=volume.id, size=2, host=volume.host)
    other_size.obj_fill_unset()
    with pytest.raises(exception.ResourceExists):
        run_create(ops, other_size)
    run_delete(ops, volume.id)
    run_delete(ops, volume.id)  # already deleted
    assert driver.calls['delete_volume'] == 1
    with pytest.raises(exception.InvalidInput, match='cannot be reused'):
        run_create(ops, new_volume_with_id(volume.id))


def new_volume_with_id(volume_id):
    volume = new_volume()
    volume.id = volume_id
    return volume


# -- two resources, crash and resume ----------------------------------------------

def test_crashed_snapshot_resumes_under_both_locks(ops, driver, notifier,
                                                   coordinator, monkeypatch):
    volume = available_volume(ops)
    snap = new_snapshot(volume.id)
    with monkeypatch.context() as m:
        crash_in(m, snapshot_flows.CreateSnapshotOnBackend)
        with pytest.raises(_Crash):
            run(ops, snapshot_flows.CREATE, snapshot=snap)
    [row] = journal_rows()
    assert sorted(tuple(r) for r in row['resources']) == [
        ('snapshot', 'snapshot', snap.id), ('volume', 'volume', volume.id)]
    assert snapshot_status(snap.id) == SnapshotStatus.CREATING

    held_inside = _locks_held_inside_the_backend_snapshot(coordinator,
                                                          monkeypatch)
    assert resume_all(driver, notifier, coordinator) == ['done']

    assert held_inside == [{operations.lock_name('volume', volume.id),
                            operations.lock_name('snapshot', snap.id)}]
    assert snapshot_status(snap.id) == SnapshotStatus.AVAILABLE
    assert snap.id in driver._snapshots
    assert journal_rows() == []


# -- resumption by task, in a flow with an unordered part -------------------------

class _Member(common.VolumeTask):
    checkpoint = True

    def __init__(self, index):
        super().__init__(name='Member%d' % index,
                         provides='member%d' % index)
        self.index = index

    def execute(self, driver, volume):
        driver.calls['member%d' % self.index] += 1
        return self.index

    def revert(self, driver, volume, result=None, **kwargs):
        driver.calls['revert%d' % self.index] += 1


def _unordered_family(on_resume):
    from taskflow.patterns import unordered_flow

    def build():
        return common.operation_flow(
            'members', unordered_flow.Flow('members').add(
                *(_Member(i) for i in range(4))))
    return flow_runner.FlowFamily(
        'create_volume', build, subject=flow_runner.Role('volume', new=True),
        event='volume.create', on_resume=on_resume)


@pytest.mark.parametrize('on_resume', [flow_runner.RESUME,
                                       flow_runner.REVERT])
def test_unordered_flow_resumes_and_reverts_by_task(
        ops, driver, notifier, coordinator, monkeypatch, on_resume):
    family = _unordered_family(on_resume)
    original = _Member.execute

    def crash_at_member2(task, driver, volume):
        if task.index == 2:
            raise _Crash('member2')
        return original(task, driver, volume)
    volume = new_volume()
    with monkeypatch.context() as m:
        m.setattr(_Member, 'execute', crash_at_member2)
        m.setattr(db.OperationJournal, 'finish', lambda self: None)
        with pytest.raises(_Crash):
            run(ops, family, volume=volume)
    [row] = journal_rows()
    finished = set(row['progress'])
    assert 'Member2' not in finished
    before = collections.Counter(driver.calls)

    new_ops = make_ops(driver, notifier, coordinator)
    if on_resume == flow_runner.RESUME:
        new_ops.resume(family, row, None)
        # Only what had not finished runs: checkpointed members are skipped.
        for i in range(4):
            ran = driver.calls['member%d' % i] - before['member%d' % i]
            assert ran == (0 if 'Member%d' % i in finished else 1)
        assert status_of(volume.id) == VolumeStatus.AVAILABLE
    else:
        with pytest.raises(tf_exceptions.TaskFlowException):
            new_ops.resume(family, row, None)
        assert all(driver.calls['revert%d' % i] == 1 for i in range(4))
        assert status_of(volume.id) == VolumeStatus.ERROR
    assert journal_rows() == []


# -- start-up recovery -----------------------------------------------------------

def test_recovery_leaves_nothing_transitional(ops, driver, notifier,
                                              coordinator, monkeypatch):
    journaled = new_volume()
    with monkeypatch.context() as m:
        crash_in(m, create_volume.CreateExport)
        with pytest.raises(_Crash):
            run_create(ops, journaled)
    # Rows an older release left without a journal.
    orphans = {}
    for status in (VolumeStatus.CREATING, VolumeStatus.DELETING,
                   VolumeStatus.EXTENDING):
        volume = new_volume()
        volume.status = status
        volume.create()
        orphans[volume.id] = status
    parent = available_volume(ops)
    orphan_snap = new_snapshot(parent.id)
    orphan_snap.host, orphan_snap.volume_size = parent.host, 1
    orphan_snap.status = SnapshotStatus.CREATING
    orphan_snap.create()
    other_backend = new_volume()
    other_backend.host = 'other@fake1#pool1'
    other_backend.status = VolumeStatus.CREATING
    other_backend.create()

    summary = recovery.recover(make_ops(driver, notifier, coordinator), None)

    assert summary == {'resumed': 1, 'failed': 0, 'reset': 4, 'unknown': 0}
    assert status_of(journaled.id) == VolumeStatus.AVAILABLE
    on_restart = fields.VOLUME_TRANSITIONS.on_restart
    for volume_id, old in orphans.items():
        assert status_of(volume_id) == on_restart[old]
    assert snapshot_status(orphan_snap.id) == SnapshotStatus.ERROR
    # Another backend's volumes are not ours to touch.
    assert status_of(other_backend.id) == VolumeStatus.CREATING
    assert journal_rows() == []


# -- copies, extend, revert ---------------------------------------------------------

from volume_worker.flows import clone  # noqa: E402
from volume_worker.flows import extend  # noqa: E402
from volume_worker.flows import revert  # noqa: E402


def _snapshot_of(ops, volume):
    snap = new_snapshot(volume.id)
    run(ops, snapshot_flows.CREATE, snapshot=snap)
    return snap


def test_copies_of_snapshots_and_volumes_grow_to_the_size_asked(ops, driver):
    source = available_volume(ops)
    snap = _snapshot_of(ops, source)
    bigger = new_volume(size=3)
    bigger.snapshot_id = snap.id
    run(ops, clone.FROM_SNAPSHOT, volume=bigger)
    assert status_of(bigger.id) == VolumeStatus.AVAILABLE
    assert driver._volumes[bigger.id]['size'] == 3
    assert driver._volumes[bigger.id]['exported']
    copy = new_volume(size=1)
    copy.source_volid = source.id
    run(ops, clone.FROM_VOLUME, volume=copy)
    assert driver._volumes[copy.id]['size'] == 1
    assert driver.calls['create_volume'] == 1  # only the first, empty one

    smaller = new_volume(size=1)
    smaller.snapshot_id = _snapshot_of(ops, bigger).id
    with pytest.raises(exception.InvalidInput, match='cannot hold'):
        run(ops, clone.FROM_SNAPSHOT, volume=smaller)
    with pytest.raises(exception.VolumeNotFound):
        db.volume_get(smaller.id)


def test_a_failed_copy_leaves_error_and_nothing_on_the_backend(
        database, notifier, coordinator):
    drv = make_driver(fake_fault_raise=['create_export'])
    ops = make_ops(drv, notifier, coordinator)
    source = new_volume()
    source.status = VolumeStatus.AVAILABLE
    source.create()
    drv.create_volume(source)
    copy = new_volume()
    copy.source_volid = source.id
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        run(ops, clone.FROM_VOLUME, volume=copy)
    assert status_of(copy.id) == VolumeStatus.ERROR
    assert copy.id not in drv._volumes
    assert status_of(source.id) == VolumeStatus.AVAILABLE


@pytest.mark.parametrize('start', [VolumeStatus.AVAILABLE,
                                   VolumeStatus.IN_USE])
def test_extend_returns_to_the_status_it_left(ops, driver, notifier, start):
    volume = available_volume(ops)
    db.volume_update(volume.id, {'status': start})
    run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 4})
    row = db.volume_get(volume.id)
    assert (row['size'], row['status']) == (4, start)
    assert driver._volumes[volume.id]['size'] == 4
    assert notifier.types()[-2:] == ['volume.resize.start',
                                     'volume.resize.end']
    with pytest.raises(exception.InvalidInput, match='must be larger'):
        run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 4})


def test_a_failed_extend_is_error_extending(database, notifier, coordinator):
    drv = make_driver(fake_fault_raise=['extend_volume'])
    ops = make_ops(drv, notifier, coordinator)
    volume = available_volume(ops)
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 2})
    row = db.volume_get(volume.id)
    assert (row['size'], row['status']) == (1, VolumeStatus.ERROR_EXTENDING)
    assert notifier.types()[-1] == 'volume.resize.error'


def test_extend_in_use_resumed_after_a_crash_returns_to_in_use(
        ops, driver, notifier, coordinator, monkeypatch):
    volume = available_volume(ops)
    db.volume_update(volume.id, {'status': VolumeStatus.IN_USE})
    with monkeypatch.context() as m:
        crash_in(m, common.Finish)
        with pytest.raises(_Crash):
            run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 2})
    assert status_of(volume.id) == VolumeStatus.EXTENDING
    assert resume_all(driver, notifier, coordinator) == ['done']
    row = db.volume_get(volume.id)
    assert (row['size'], row['status']) == (2, VolumeStatus.IN_USE)


def test_revert_only_to_the_latest_snapshot_of_that_volume(ops, driver,
                                                           notifier):
    volume = available_volume(ops)
    older = _snapshot_of(ops, volume)
    latest = _snapshot_of(ops, volume)
    with pytest.raises(exception.InvalidSnapshot, match='most recent'):
        run(ops, revert.FAMILY, volume=volume.id, snapshot=older.id)
    other = available_volume(ops)
    with pytest.raises(exception.InvalidSnapshot, match='is of volume'):
        run(ops, revert.FAMILY, volume=other.id, snapshot=latest.id)
    # Extended after the snapshot: reverted, and still its size.
    run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 2})
    run(ops, revert.FAMILY, volume=volume.id, snapshot=latest.id)
    row = db.volume_get(volume.id)
    assert (row['size'], row['status']) == (2, VolumeStatus.AVAILABLE)
    assert driver._volumes[volume.id]['size'] == 2
    assert snapshot_status(latest.id) == SnapshotStatus.AVAILABLE
    assert notifier.types()[-1] == 'volume.revert.end'


# -- attachments ------------------------------------------------------------------

from volume_worker.flows import attachment as attachment_flows  # noqa: E402
from volume_worker.objects import AttachStatus  # noqa: E402


def attachment_status(attachment_id):
    return db.attachment_get(attachment_id, read_deleted=True)['status']


def test_attach_complete_detach(ops, driver, notifier):
    volume = available_volume(ops)
    attachment = new_attachment(volume.id)
    with ops.acquire(attachment_flows.UPDATE, None, attachment=attachment,
                     volume=volume.id) as op:
        op.run()
        returned = op.subject
    info = returned.connection_info
    assert info['driver_volume_type'] == 'iscsi'
    assert info['data']['attachment_id'] == attachment.id
    assert info['data']['access_mode'] == 'rw'
    assert attachment_status(attachment.id) == AttachStatus.ATTACHING
    assert info['data']['target_iqn'] not in repr(returned)
    assert 'connection_info=***' in repr(returned)
    assert status_of(volume.id) == VolumeStatus.AVAILABLE

    run(ops, attachment_flows.COMPLETE, attachment=attachment.id,
        volume=volume.id)
    assert attachment_status(attachment.id) == AttachStatus.ATTACHED
    assert status_of(volume.id) == VolumeStatus.IN_USE
    assert db.attachment_get(attachment.id)['attach_time'] is not None
    assert driver._volumes[volume.id]['connections'] == [
        CONNECTOR['initiator']]

    # Attached: no delete, no revert, no second consumer.
    with pytest.raises(exception.InvalidStatus):
        run_delete(ops, volume.id)
    with pytest.raises(exception.ResourceInUse, match='multiattach'):
        attach(ops, volume.id)

    run(ops, attachment_flows.DELETE, attachment=attachment.id,
        volume=volume.id)
    row = db.attachment_get(attachment.id, read_deleted=True)
    assert row['deleted'] and row['status'] == AttachStatus.DETACHED
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert driver._volumes[volume.id]['connections'] == []
    assert not driver._volumes[volume.id]['exported']
    assert db.volume_get(volume.id)['provider_location'] is None
    assert notifier.types()[-2:] == ['volume.detach.start',
                                     'volume.detach.end']


def test_multiattach_keeps_the_export_until_the_last_detach(ops, driver):
    volume = new_volume()
    volume.multiattach = True
    run_create(ops, volume)
    first = attach(ops, volume.id)
    second = attach(ops, volume.id)
    run(ops, attachment_flows.DELETE, attachment=first.id, volume=volume.id)
    assert status_of(volume.id) == VolumeStatus.IN_USE
    assert driver._volumes[volume.id]['exported']
    run(ops, attachment_flows.DELETE, attachment=second.id, volume=volume.id)
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert not driver._volumes[volume.id]['exported']


def test_an_attaching_volume_cannot_be_deleted_or_reverted(ops):
    volume = available_volume(ops)
    snap = _snapshot_of(ops, volume)
    attachment = attach(ops, volume.id, complete=False)
    with pytest.raises(exception.ResourceInUse, match='detach it first'):
        run_delete(ops, volume.id)
    with pytest.raises(exception.ResourceInUse, match='detach it before'):
        run(ops, revert.FAMILY, volume=volume.id, snapshot=snap.id)
    with pytest.raises(exception.InvalidInput, match='is of volume'):
        run(ops, attachment_flows.COMPLETE, attachment=attachment.id,
            volume=available_volume(ops).id)


def test_a_driver_refusing_the_connector_leaves_error_attaching(
        database, notifier, coordinator):
    drv = make_driver(target_protocol='iscsi')
    ops = make_ops(drv, notifier, coordinator)
    volume = available_volume(ops)
    attachment = new_attachment(volume.id)
    del attachment.connector['initiator']
    with pytest.raises(driver_exception.InvalidConnectorException):
        run(ops, attachment_flows.UPDATE, attachment=attachment,
            volume=volume.id)
    # Refused before any backend effect: recorded as a failed attach.
    assert attachment_status(attachment.id) == AttachStatus.ERROR_ATTACHING
    assert status_of(volume.id) == VolumeStatus.AVAILABLE


def test_detach_resumed_after_a_crash(ops, driver, notifier, coordinator,
                                      monkeypatch):
    volume = available_volume(ops)
    attachment = attach(ops, volume.id)
    with monkeypatch.context() as m:
        crash_in(m, attachment_flows.RemoveExportIfLast)
        with pytest.raises(_Crash):
            run(ops, attachment_flows.DELETE, attachment=attachment.id,
                volume=volume.id)
    assert attachment_status(attachment.id) == AttachStatus.DETACHING
    assert resume_all(driver, notifier, coordinator) == ['done']
    assert attachment_status(attachment.id) == AttachStatus.DETACHED
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert not driver._volumes[volume.id]['exported']


# -- the legacy connection path and snapshot connections ------------------------

from volume_worker.flows import connection  # noqa: E402


def test_legacy_connection_path(ops, driver, notifier):
    volume = available_volume(ops)
    store = {'connector': dict(CONNECTOR)}
    result = run(ops, connection.INITIALIZE, volume=volume.id, store=store)
    info = result['connection_info']
    assert info['driver_volume_type'] == 'iscsi'
    assert driver._volumes[volume.id]['connections'] == [
        CONNECTOR['initiator']]
    assert status_of(volume.id) == VolumeStatus.AVAILABLE  # unchanged

    attachment = new_attachment(volume.id)
    attachment.attached_host = 'consumer1'
    run(ops, connection.ATTACH, attachment=attachment, volume=volume.id)
    assert attachment_status(attachment.id) == AttachStatus.ATTACHED
    assert status_of(volume.id) == VolumeStatus.IN_USE
    run(ops, connection.DETACH, attachment=attachment.id, volume=volume.id)
    assert attachment_status(attachment.id) == AttachStatus.DETACHED
    assert status_of(volume.id) == VolumeStatus.AVAILABLE

    run(ops, connection.TERMINATE, volume=volume.id,
        store=dict(store, force=False))
    assert driver._volumes[volume.id]['connections'] == []
    run(ops, connection.REMOVE_EXPORT, volume=volume.id)
    assert not driver._volumes[volume.id]['exported']
    assert db.volume_get(volume.id)['provider_location'] is None
    assert journal_rows() == []
    assert 'volume.initialize_connection.end' in notifier.types()


def test_snapshot_connections(ops, driver):
    volume = available_volume(ops)
    snap = _snapshot_of(ops, volume)
    store = {'connector': dict(CONNECTOR)}
    info = run(ops, connection.INITIALIZE_SNAPSHOT, snapshot=snap.id,
               store=store)['connection_info']
    assert info['driver_volume_type'] == 'iscsi'
    assert driver._snapshots[snap.id]['exported']
    run(ops, connection.TERMINATE_SNAPSHOT, snapshot=snap.id,
        store=dict(store, force=False))
    run(ops, connection.REMOVE_EXPORT_SNAPSHOT, snapshot=snap.id)
    assert not driver._snapshots[snap.id]['exported']
    assert snapshot_status(snap.id) == SnapshotStatus.AVAILABLE


def test_a_failed_legacy_connection_changes_no_status(
        database, notifier, coordinator):
    drv = make_driver(fake_fault_raise=['initialize_connection'])
    ops = make_ops(drv, notifier, coordinator)
    volume = available_volume(ops)
    with pytest.raises(driver_exception.VolumeBackendAPIException):
        run(ops, connection.INITIALIZE, volume=volume.id,
            store={'connector': dict(CONNECTOR)})
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert journal_rows() == []
    assert notifier.types()[-1] == 'volume.initialize_connection.error'


# -- manage, unmanage, transfer ----------------------------------------------------

from volume_worker.flows import manage  # noqa: E402


def _unmanaged(ops, size=2):
    volume = new_volume(size=size)
    run_create(ops, volume)
    run(ops, delete_volume.FAMILY, volume=volume.id,
        store={'unmanage_only': True})
    return volume


def test_manage_adopts_with_the_backend_size_and_unmanage_lets_go(
        ops, driver, notifier):
    old = _unmanaged(ops, size=3)
    assert old.id not in driver._volumes
    assert old.name in driver._unmanaged_volumes
    adopted = new_volume()
    adopted.size = 0
    run(ops, manage.VOLUME, volume=adopted,
        store={'existing_ref': {'source-name': old.name}})
    row = db.volume_get(adopted.id)
    assert (row['status'], row['size']) == (VolumeStatus.AVAILABLE, 3)
    assert adopted.id in driver._volumes
    assert notifier.types()[-1] == 'volume.manage_existing.end'


def test_a_bad_reference_leaves_error_managing(ops, driver):
    adopted = new_volume()
    adopted.size = 0
    with pytest.raises(driver_exception.ManageExistingInvalidReference):
        run(ops, manage.VOLUME, volume=adopted,
            store={'existing_ref': {'source-name': 'no-such-object'}})
    assert status_of(adopted.id) == VolumeStatus.ERROR_MANAGING
    assert adopted.id not in driver._volumes


def test_accept_transfer_moves_the_volume_and_its_snapshots(ops, driver):
    volume = available_volume(ops)
    snap = _snapshot_of(ops, volume)
    run(ops, manage.TRANSFER, volume=volume.id,
        store={'new_user': 'u2', 'new_project': 'p2', 'no_snapshots': False})
    row = db.volume_get(volume.id)
    assert (row['user_id'], row['project_id']) == ('u2', 'p2')
    assert db.snapshot_get(snap.id)['project_id'] == 'p2'
    assert driver._volumes[volume.id]['project_id'] == 'p2'
    run(ops, manage.TRANSFER, volume=volume.id,
        store={'new_user': 'u3', 'new_project': 'p3', 'no_snapshots': True})
    assert db.volume_get(volume.id)['project_id'] == 'p3'
    assert db.snapshot_get(snap.id)['project_id'] == 'p2'


# -- retype ------------------------------------------------------------------

from volume_worker.flows import retype as retype_flows  # noqa: E402


def _volume_type(**extra_specs):
    vtype = objects.VolumeType(id=str(uuid.uuid4()),
                               name='t-%s' % uuid.uuid4().hex[:8],
                               extra_specs=extra_specs)
    vtype.create()
    return vtype


def test_retype_in_place_hands_the_driver_the_specs_diff(ops, driver,
                                                         monkeypatch):
    old, new = _volume_type(tier='silver', a='1'), _volume_type(tier='gold',
                                                               a='1')
    volume = new_volume()
    volume.volume_type_id = old.id
    run_create(ops, volume)
    seen = []

    def retype(context, volume, new_type, diff, host):
        seen.append((new_type.id, diff, host['host']))
        return True, {'provider_id': 'gold-lun'}
    monkeypatch.setattr(driver, 'retype', retype)
    run(ops, retype_flows.FAMILY, volume=volume.id,
        store={'new_type_id': new.id, 'migration_policy': 'never'})
    row = db.volume_get(volume.id)
    assert (row['volume_type_id'], row['provider_id'], row['status']) == (
        new.id, 'gold-lun', VolumeStatus.AVAILABLE)
    assert seen == [(new.id, {'extra_specs': {'tier': ('silver', 'gold')},
                              'qos_specs': {}, 'encryption': {}},
                     volume.host)]


def test_a_retype_the_driver_cannot_do_leaves_the_old_type(ops, driver,
                                                           notifier,
                                                           monkeypatch):
    old, new = _volume_type(), _volume_type(x='y')
    volume = new_volume()
    volume.volume_type_id = old.id
    run_create(ops, volume)
    db.volume_update(volume.id, {'status': VolumeStatus.IN_USE})
    monkeypatch.setattr(driver, 'retype', lambda *a: (False, None))
    with pytest.raises(exception.RetypeNotPossible, match='in place'):
        run(ops, retype_flows.FAMILY, volume=volume.id,
            store={'new_type_id': new.id, 'migration_policy': 'on-demand'})
    row = db.volume_get(volume.id)
    assert (row['volume_type_id'], row['status']) == (old.id,
                                                      VolumeStatus.IN_USE)
    assert notifier.types()[-1] == 'volume.retype.error'
    with pytest.raises(exception.VolumeTypeNotFound):
        run(ops, retype_flows.FAMILY, volume=volume.id,
            store={'new_type_id': str(uuid.uuid4()),
                   'migration_policy': 'never'})


def test_backend_capabilities_gate_multiattach_and_attached_extend(
        ops, driver, monkeypatch):
    volume = new_volume()
    volume.multiattach = True
    run_create(ops, volume)
    attach(ops, volume.id)
    with pytest.raises(exception.ResourceInUse, match='online_extend'):
        run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 2})
    stats = dict(driver.get_volume_stats(), multiattach=False)
    monkeypatch.setattr(driver, 'get_volume_stats', lambda *a, **k: stats)
    with pytest.raises(exception.ResourceInUse, match='does not report'):
        attach(ops, volume.id)
    stats['online_extend_support'] = True
    run(ops, extend.FAMILY, volume=volume.id, store={'new_size': 2})
    assert db.volume_get(volume.id)['size'] == 2


# -- a role of many resources (a group's members) ---------------------------------

class _TouchMembers(common.VolumeTask):
    idempotent = True

    def execute(self, driver, members):
        for member in members:
            driver.calls['touched ' + member.id] += 1


def _members_family(monkeypatch):
    monkeypatch.setitem(
        fields.VOLUME_TRANSITIONS.operations, 'touch_members', {
            'volume': fields.Transition(
                (VolumeStatus.AVAILABLE,), via=VolumeStatus.MAINTENANCE,
                to=fields.UNCHANGED, error=fields.UNCHANGED),
            'members': fields.hold((VolumeStatus.AVAILABLE,))})
    return flow_runner.FlowFamily(
        'touch_members',
        lambda: common.operation_flow('touch_members', _TouchMembers()),
        subject=flow_runner.Role('volume'),
        held=(flow_runner.Role('volume', name='members', many=True),),
        event='volume.touch', on_resume=flow_runner.RESUME)


def test_many_members_are_locked_journaled_and_resumed(
        ops, driver, notifier, coordinator, monkeypatch):
    family = _members_family(monkeypatch)
    leader = available_volume(ops)
    members = [available_volume(ops) for _ in range(3)]
    held = []

    def crash(task, driver, members):
        held.append(set(coordinator.held))
        raise _Crash('members')
    with monkeypatch.context() as m:
        m.setattr(_TouchMembers, 'execute', crash)
        m.setattr(db.OperationJournal, 'finish', lambda self: None)
        with pytest.raises(_Crash):
            run(ops, family, volume=leader.id,
                members=[v.id for v in members])
    expected = {operations.lock_name('volume', v.id)
                for v in [leader] + members}
    assert held == [expected]
    [row] = journal_rows()
    assert sorted(r[2] for r in row['resources'] if r[0] == 'members') == \
        sorted(v.id for v in members)
    assert status_of(leader.id) == VolumeStatus.MAINTENANCE

    new_ops = make_ops(driver, notifier, coordinator)
    new_ops.resume(family, row, None)
    assert all(driver.calls['touched ' + v.id] == 1 for v in members)
    assert status_of(leader.id) == VolumeStatus.AVAILABLE

    foreign = new_volume()
    foreign.host = 'other@fake1#pool1'
    foreign.status = VolumeStatus.AVAILABLE
    foreign.create()
    with pytest.raises(exception.NotOwned):
        run(ops, family, volume=leader.id,
            members=[members[0].id, foreign.id])
    with pytest.raises(TypeError, match='list of members'):
        run(ops, family, volume=leader.id, members=members[0].id)


# -- groups ---------------------------------------------------------------------

from volume_worker.flows import group as group_flows  # noqa: E402


def _group_with(ops, count):
    group = new_group()
    run(ops, group_flows.CREATE, group=group)
    volumes = [available_volume(ops) for _ in range(count)]
    run(ops, group_flows.UPDATE, group=group.id, add=[v.id for v in volumes],
        remove=[])
    return group, volumes


def test_group_membership_and_delete_through_the_driver(ops, driver,
                                                        notifier):
    group, volumes = _group_with(ops, 3)
    assert driver._groups[group.id]
    assert {db.volume_get(v.id)['group_id'] for v in volumes} == {group.id}
    assert all(driver._volumes[v.id]['group_id'] == group.id
               for v in volumes)
    run(ops, group_flows.UPDATE, group=group.id, add=[],
        remove=[volumes[0].id])
    assert db.volume_get(volumes[0].id)['group_id'] is None
    other = new_group()
    run(ops, group_flows.CREATE, group=other)
    with pytest.raises(exception.InvalidInput, match='is in group'):
        run(ops, group_flows.UPDATE, group=other.id, add=[volumes[1].id],
            remove=[])
    members = db.group_member_ids(group.id)
    with pytest.raises(exception.ResourceInUse, match='2 volume'):
        run(ops, group_flows.DELETE, group=group.id, members=members,
            store={'delete_volumes': False})
    run(ops, group_flows.DELETE, group=group.id, members=members,
        store={'delete_volumes': True})
    for volume in volumes[1:]:
        assert db.volume_get(volume.id, read_deleted=True)['deleted']
        assert volume.id not in driver._volumes
    assert status_of(volumes[0].id) == VolumeStatus.AVAILABLE
    assert db.group_get(group.id, read_deleted=True)['deleted']
    assert notifier.types()[-1] == 'group.delete.end'


def test_a_volume_of_a_type_the_group_does_not_take_is_refused(ops):
    taken, other = _volume_type().id, _volume_type().id
    group = new_group()
    group.volume_type_ids = [taken]
    run(ops, group_flows.CREATE, group=group)
    typed = new_volume()
    typed.volume_type_id = taken
    run_create(ops, typed)
    stranger = new_volume()
    stranger.volume_type_id = other
    run_create(ops, stranger)
    untyped = available_volume(ops)
    for volume in (stranger, untyped):
        with pytest.raises(exception.InvalidInput,
                           match='does not take'):
            run(ops, group_flows.UPDATE, group=group.id, add=[volume.id],
                remove=[])
        assert db.volume_get(volume.id)['group_id'] is None
    run(ops, group_flows.UPDATE, group=group.id, add=[typed.id], remove=[])
    assert db.volume_get(typed.id)['group_id'] == group.id


def test_a_member_the_driver_could_not_delete_fails_the_group(ops, driver):
    group, volumes = _group_with(ops, 2)
    driver.configuration.conf.set_override(
        'fake_member_faults', {volumes[1].id: 'raise'}, group='fake1')
    with pytest.raises(exception.GroupFailed):
        run(ops, group_flows.DELETE, group=group.id,
            members=db.group_member_ids(group.id),
            store={'delete_volumes': True})
    assert db.group_get(group.id)['status'] == 'error_deleting'
    assert db.volume_get(volumes[0].id, read_deleted=True)['deleted']
    assert status_of(volumes[1].id) == VolumeStatus.ERROR_DELETING


def test_generic_group_delete_resumes_the_members_left(
        ops, driver, notifier, coordinator, monkeypatch):
    group, volumes = _group_with(ops, 4)
    for name in ('create_group', 'delete_group', 'update_group'):
        monkeypatch.setattr(driver, name, _not_implemented)
    deleted = []
    original = driver.delete_volume

    def dying_delete(volume):
        if len(deleted) == 2:
            raise _Crash('halfway')
        deleted.append(volume.id)
        return original(volume)
    with monkeypatch.context() as m:
        m.setattr(driver, 'delete_volume', dying_delete)
        m.setattr(db.OperationJournal, 'finish', lambda self: None)
        with pytest.raises(_Crash):
            run(ops, group_flows.DELETE, group=group.id,
                members=db.group_member_ids(group.id),
                store={'delete_volumes': True})
    assert len([v for v in volumes if v.id in driver._volumes]) == 2
    assert resume_all(driver, notifier, coordinator) == ['done']
    assert all(v.id not in driver._volumes for v in volumes)
    assert all(db.volume_get(v.id, read_deleted=True)['deleted']
               for v in volumes)
    assert db.group_get(group.id, read_deleted=True)['deleted']
    assert journal_rows() == []


def _not_implemented(*args, **kwargs):
    raise NotImplementedError()


# -- group snapshots -------------------------------------------------------------

from volume_worker.flows import group_snapshot as gs_flows  # noqa: E402


def _take_group_snapshot(ops, group):
    group_snapshot = objects.GroupSnapshot(id=str(uuid.uuid4()),
                                           group_id=group.id, name='gs')
    group_snapshot.obj_fill_unset()
    run(ops, gs_flows.CREATE, group_snapshot=group_snapshot,
        members=db.group_member_ids(group.id))
    return group_snapshot


@pytest.mark.parametrize('generic', [False, True])
def test_group_snapshot_takes_one_snapshot_per_member(ops, driver,
                                                      monkeypatch, generic):
    if generic:
        monkeypatch.setattr(driver, 'create_group_snapshot',
                            _not_implemented)
        monkeypatch.setattr(driver, 'delete_group_snapshot',
                            _not_implemented)
    group, volumes = _group_with(ops, 3)
    group_snapshot = _take_group_snapshot(ops, group)
    assert db.group_snapshot_get(group_snapshot.id)['status'] == 'available'
    ids = gs_flows.member_ids(group_snapshot.id)
    assert sorted(db.snapshot_get(i)['volume_id'] for i in ids) == sorted(
        v.id for v in volumes)
    assert all(snapshot_status(i) == SnapshotStatus.AVAILABLE for i in ids)
    assert all(i in driver._snapshots for i in ids)
    run(ops, gs_flows.DELETE, group_snapshot=group_snapshot.id, members=ids)
    assert all(db.snapshot_get(i, read_deleted=True)['deleted'] for i in ids)
    assert not any(i in driver._snapshots for i in ids)
    assert db.group_snapshot_get(group_snapshot.id,
                                 read_deleted=True)['deleted']


def test_a_consistent_group_type_needs_the_driver(ops, driver, monkeypatch):
    monkeypatch.setattr(driver, 'create_group_snapshot', _not_implemented)
    gtype = objects.GroupType(
        id=str(uuid.uuid4()), name='cg',
        group_specs={'consistent_group_snapshot_enabled': '<is> True'})
    gtype.create()
    group = new_group()
    group.group_type_id = gtype.id
    run(ops, group_flows.CREATE, group=group)
    volume = available_volume(ops)
    run(ops, group_flows.UPDATE, group=group.id, add=[volume.id], remove=[])
    with pytest.raises(exception.GroupFailed, match='consistent'):
        _take_group_snapshot(ops, group)
    [gs_row] = [r for r in db.group_snapshot_get_all()
                if r['group_id'] == group.id]
    assert gs_row['status'] == 'error'
    assert all(s['status'] == SnapshotStatus.ERROR for s in
               db.snapshot_get_all(filters={'group_snapshot_id':
                                            gs_row['id']}))


from volume_worker.flows import group_from_src  # noqa: E402


@pytest.mark.parametrize('generic', [False, True])
def test_a_group_from_a_group_snapshot_or_a_group(ops, driver, monkeypatch,
                                                  generic):
    if generic:
        monkeypatch.setattr(driver, 'create_group_from_src',
                            _not_implemented)
    source, volumes = _group_with(ops, 2)
    group_snapshot = _take_group_snapshot(ops, source)
    copy = new_group()
    copy.group_snapshot_id = group_snapshot.id
    run(ops, group_from_src.FROM_GROUP_SNAPSHOT, group=copy,
        sources=gs_flows.member_ids(group_snapshot.id))
    new_ids = db.group_member_ids(copy.id)
    assert len(new_ids) == 2
    assert all(status_of(i) == VolumeStatus.AVAILABLE for i in new_ids)
    assert all(driver._volumes[i]['exported'] for i in new_ids)
    assert db.group_get(copy.id)['status'] == 'available'
    clone = new_group()
    clone.source_group_id = source.id
    run(ops, group_from_src.FROM_GROUP, group=clone,
        sources=db.group_member_ids(source.id))
    assert sorted(db.volume_get(i)['source_volid']
                  for i in db.group_member_ids(clone.id)) == sorted(
        v.id for v in volumes)


def test_a_driver_with_only_consistency_group_calls_serves_cg_groups(
        ops, driver, monkeypatch):
    for name in ('create_group', 'update_group', 'delete_group',
                 'create_group_snapshot', 'delete_group_snapshot'):
        monkeypatch.setattr(driver, name, _not_implemented)
    legacy = collections.Counter()
    for name in ('create_consistencygroup', 'update_consistencygroup',
                 'delete_consistencygroup', 'create_cgsnapshot',
                 'delete_cgsnapshot'):
        original = getattr(driver, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            legacy[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(driver, name, counted)
    cg_type = objects.GroupType(id=str(uuid.uuid4()),
                                name=group_flows.DEFAULT_CG_TYPE)
    cg_type.create()
    group = new_group()
    group.group_type_id = cg_type.id
    run(ops, group_flows.CREATE, group=group)
    volume = available_volume(ops)
    run(ops, group_flows.UPDATE, group=group.id, add=[volume.id], remove=[])
    group_snapshot = _take_group_snapshot(ops, group)
    run(ops, gs_flows.DELETE, group_snapshot=group_snapshot.id,
        members=gs_flows.member_ids(group_snapshot.id))
    run(ops, group_flows.DELETE, group=group.id, members=[volume.id],
        store={'delete_volumes': True})
    assert legacy == {'create_consistencygroup': 1,
                      'update_consistencygroup': 1, 'create_cgsnapshot': 1,
                      'delete_cgsnapshot': 1, 'delete_consistencygroup': 1}
    assert volume.id not in driver._volumes
    # A group of another type falls back on the generic behaviour instead.
    plain = new_group()
    run(ops, group_flows.CREATE, group=plain)
    assert legacy['create_consistencygroup'] == 1
