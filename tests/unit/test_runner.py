"""The flow runner's crash journal: what it writes, and how it resumes or reverts.

The flows run for real (TaskFlow serial engine, SQLite database, the in-memory
fake driver). A crash is simulated by a task raising ``_Crash``, a
BaseException TaskFlow does not catch, so the engine stops where it is
without reverting, as a killed process would; the test then drops the
runner's in-memory state and resumes from what the database holds.
"""

import collections
import uuid

import pytest
import sqlalchemy as sa
from oslo_config import cfg

from drivers import configuration
from drivers import fake
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.flows import runner as flow_runner
from volume_worker import objects
from volume_worker.objects import VolumeStatus
from volume_worker import recovery

HOST = 'node@fake1'
DRIVER_METHODS = ('create_volume', 'delete_volume', 'create_export',
                  'remove_export')


class _Crash(BaseException):
    """Stands for the process dying: TaskFlow neither catches nor reverts it."""


class RecordingNotifier:
    def __init__(self):
        self.events = []

    def info(self, event_type, volume, **extra):
        self.events.append((event_type, volume.status))

    def error(self, event_type, volume, **extra):
        self.events.append((event_type, volume.status))

    def types(self):
        return [e[0] for e in self.events]


@pytest.fixture
def driver():
    conf = cfg.ConfigOpts()
    drv = fake.FakeDriver(configuration=configuration.Configuration(
        config_group='fake1', conf=conf), host=HOST)
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
def notifier():
    return RecordingNotifier()


@pytest.fixture
def runner(database):
    return flow_runner.FlowRunner(HOST)


@pytest.fixture
def writes(database):
    """Counts INSERT/UPDATE/DELETE statements per table while a test runs."""
    counter = collections.Counter()

    def count(conn, cursor, statement, params, context, executemany):
        words = statement.split()
        verb = words[0].upper()
        if verb in ('INSERT', 'UPDATE', 'DELETE'):
            table = words[2] if verb in ('INSERT', 'DELETE') else words[1]
            counter[(verb, table.strip('"'))] += 1
    engine = db.get_engine()
    sa.event.listen(engine, 'before_cursor_execute', count)
    yield counter
    sa.event.remove(engine, 'before_cursor_execute', count)


def new_volume(size=1):
    volume = objects.Volume(id=str(uuid.uuid4()), size=size,
                            host=HOST + '#pool1', display_name='v')
    volume.obj_set_defaults('metadata', 'admin_metadata')
    volume.status = VolumeStatus.CREATING
    return volume


def deps(driver, notifier, **resources):
    return dict({'context': None, 'driver': driver, 'notifier': notifier},
                **resources)


def run_create(runner, driver, notifier, volume):
    return runner.run(create_volume.FAMILY, volume.id,
                      create_volume.make_store(volume),
                      deps(driver, notifier, volume=volume))


def run_delete(runner, driver, notifier, volume_id):
    volume = objects.Volume.get_by_id(volume_id)
    return runner.run(delete_volume.FAMILY, volume_id,
                      delete_volume.make_store(volume),
                      deps(driver, notifier, volume=volume))


def journal_rows():
    return db.journal_get_all(HOST)


def crash_in(monkeypatch, task_cls, when='execute'):
    """Make ``task_cls`` kill the flow on ``when``; the journal survives."""
    def crash(self, *args, **kwargs):
        raise _Crash(task_cls.__name__)
    monkeypatch.setattr(task_cls, when, crash)
    # A dead process runs no ``finally``: the journal row must stay.
    monkeypatch.setattr(db, 'journal_finish', lambda *key: None)


def resume_all(runner, driver, notifier):
    """What start-up does: each journal row resumed (or reverted) once."""
    from volume_worker import flows
    db.discard_deferred()  # a new process starts with no pending writes
    outcomes = []
    for row in journal_rows():
        family = flows.FAMILIES[row['operation']]
        try:
            runner.resume(family, row, deps(driver, notifier))
            outcomes.append('done')
        except Exception as exc:
            outcomes.append(type(exc).__name__)
    return outcomes


def status_of(volume_id):
    return db.volume_get(volume_id, read_deleted=True)['status']


# -- the journal of a successful run ------------------------------------------

def test_journal_row_lifecycle_of_a_create(runner, driver, notifier,
                                           monkeypatch):
    seen = []
    original = create_volume.CreateExport.execute

    def spy(task, context, driver, volume, create_update):
        # Between the two backend steps: the row exists, CreateOnBackend is
        # checkpointed, CreateExport not yet.
        rows = journal_rows()
        seen.append((len(rows), rows[0]['state'], sorted(rows[0]['progress']),
                     rows[0]['operation'], rows[0]['resource_id']))
        return original(task, context, driver, volume, create_update)
    monkeypatch.setattr(create_volume.CreateExport, 'execute', spy)

    volume = new_volume()
    run_create(runner, driver, notifier, volume)

    assert seen == [(1, 'running', ['CreateOnBackend'], 'create_volume',
                     volume.id)]
    assert journal_rows() == []
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert volume.id in driver._volumes
    assert driver._volumes[volume.id]['exported']
    assert notifier.types() == ['volume.create.start', 'volume.create.end']


def test_journal_rides_with_the_first_write(runner, driver, notifier,
                                            monkeypatch):
    # Killed before its first write, an operation has done nothing: no row,
    # no volume, nothing to recover.
    def crash(task, *args, **kwargs):
        raise _Crash('stop')
    monkeypatch.setattr(db, 'journal_finish', lambda *key: None)
    with monkeypatch.context() as m:
        m.setattr(create_volume.MarkCreating, 'execute', crash)
        first = new_volume()
        with pytest.raises(_Crash):
            run_create(runner, driver, notifier, first)
    db.discard_deferred()  # the dead "process" takes its pending writes along
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
        run_create(runner, driver, notifier, second)
    assert seen == [[('running', {})]]
    assert status_of(second.id) == VolumeStatus.CREATING


def test_db_writes_per_create_and_delete(runner, driver, notifier, writes):
    volume = new_volume()
    run_create(runner, driver, notifier, volume)
    create_writes = dict(writes)
    writes.clear()
    run_delete(runner, driver, notifier, volume.id)
    delete_writes = dict(writes)

    # Journal: start (delete of a stale row + insert) riding with the first
    # status write, one update for the checkpointed backend create, the
    # delete riding with the last status write.
    assert create_writes == {
        ('DELETE', 'flow_journal'): 2, ('INSERT', 'flow_journal'): 1,
        ('UPDATE', 'flow_journal'): 1,
        ('INSERT', 'volumes'): 1, ('UPDATE', 'volumes'): 1}
    assert delete_writes == {
        ('DELETE', 'flow_journal'): 2, ('INSERT', 'flow_journal'): 1,
        ('UPDATE', 'volumes'): 2}


# -- failures revert ------------------------------------------------------------

def _fail(task_cls):
    def fail(self, *args, **kwargs):
        raise RuntimeError('injected into %s' % task_cls.__name__)
    return fail


@pytest.mark.parametrize('task_cls', [
    create_volume.MarkCreating, create_volume.CreateOnBackend,
    create_volume.CreateExport, create_volume.MarkAvailable,
])
def test_create_failing_at_each_task_reverts(runner, driver, notifier,
                                             monkeypatch, task_cls):
    monkeypatch.setattr(task_cls, 'execute', _fail(task_cls))
    volume = new_volume()
    with pytest.raises(RuntimeError, match='injected'):
        run_create(runner, driver, notifier, volume)

    assert journal_rows() == []
    assert volume.id not in driver._volumes
    if task_cls is create_volume.MarkCreating:
        # Failed before the row existed: nothing to mark.
        with pytest.raises(Exception):
            db.volume_get(volume.id)
    else:
        assert status_of(volume.id) == VolumeStatus.ERROR
    assert notifier.types()[-1] == 'volume.create.error'
    assert 'volume.create.end' not in notifier.types()


@pytest.mark.parametrize('method', ['create_volume', 'create_export'])
def test_create_failing_in_the_driver_reverts(database, notifier, method):
    conf = cfg.ConfigOpts()
    drv = fake.FakeDriver(configuration=configuration.Configuration(
        config_group='fake1', conf=conf), host=HOST)
    conf.set_override('fake_fault_raise', [method], group='fake1')
    drv.set_initialized()
    volume = new_volume()
    with pytest.raises(Exception, match='fault injected'):
        run_create(flow_runner.FlowRunner(HOST), drv, notifier, volume)
    assert status_of(volume.id) == VolumeStatus.ERROR
    assert drv._volumes == {}
    assert journal_rows() == []


def test_delete_failing_on_the_backend_leaves_error_deleting(
        runner, driver, notifier, monkeypatch):
    volume = new_volume()
    run_create(runner, driver, notifier, volume)
    monkeypatch.setattr(delete_volume.DeleteOnBackend, 'execute',
                        _fail(delete_volume.DeleteOnBackend))
    with pytest.raises(RuntimeError):
        run_delete(runner, driver, notifier, volume.id)
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
    (create_volume.MarkAvailable, {'create_volume': 0, 'create_export': 1}),
])
def test_resumed_create_skips_checkpointed_steps(runner, driver, notifier,
                                                 monkeypatch, crash_task,
                                                 redone):
    volume = new_volume()
    with monkeypatch.context() as m:
        crash_in(m, crash_task)
        with pytest.raises(_Crash):
            run_create(runner, driver, notifier, volume)
    assert status_of(volume.id) == VolumeStatus.CREATING
    assert len(journal_rows()) == 1
    before = dict(driver.calls)

    assert resume_all(flow_runner.FlowRunner(HOST), driver, notifier) == [
        'done']

    after = {m: driver.calls[m] - before.get(m, 0) for m in redone}
    assert after == redone
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert driver._volumes[volume.id]['exported']
    assert journal_rows() == []
    assert notifier.types()[-1] == 'volume.create.end'


def test_resume_after_the_status_was_saved_keeps_the_volume(
        runner, driver, notifier, monkeypatch):
    """Killed after MarkAvailable committed: its commit took the row along."""
    volume = new_volume()

    class DyingNotifier(RecordingNotifier):
        def info(self, event_type, volume, **extra):
            if event_type == 'volume.create.end':  # sent after the save
                raise _Crash(event_type)
            super().info(event_type, volume, **extra)

    with monkeypatch.context() as m:
        m.setattr(db, 'journal_finish', lambda *key: None)
        with pytest.raises(_Crash):
            run_create(runner, driver, DyingNotifier(), volume)
    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert journal_rows() == []  # nothing left to recover

    resume_all(flow_runner.FlowRunner(HOST), driver, notifier)

    assert status_of(volume.id) == VolumeStatus.AVAILABLE
    assert volume.id in driver._volumes
    assert journal_rows() == []


@pytest.mark.parametrize('crash_task, redone_delete', [
    (delete_volume.RemoveExport, 1),
    (delete_volume.DeleteOnBackend, 1),
    (delete_volume.DestroyRecord, 1),  # not checkpointed: idempotent
])
def test_resumed_delete_finishes(runner, driver, notifier, monkeypatch,
                                 crash_task, redone_delete):
    volume = new_volume()
    run_create(runner, driver, notifier, volume)
    with monkeypatch.context() as m:
        crash_in(m, crash_task)
        with pytest.raises(_Crash):
            run_delete(runner, driver, notifier, volume.id)
    assert status_of(volume.id) == VolumeStatus.DELETING
    before = driver.calls['delete_volume']

    assert resume_all(flow_runner.FlowRunner(HOST), driver, notifier) == [
        'done']

    assert driver.calls['delete_volume'] - before == redone_delete
    assert volume.id not in driver._volumes
    row = db.volume_get(volume.id, read_deleted=True)
    assert row['deleted'] and row['status'] == VolumeStatus.DELETED
    assert journal_rows() == []


def test_crash_while_reverting_is_reverted_on_resume(runner, driver, notifier,
                                                     monkeypatch):
    volume = new_volume()
    with monkeypatch.context() as m:
        # The export fails, and the process dies while the revert undoes
        # the backend create: the backend object is still there.
        m.setattr(create_volume.CreateExport, 'execute',
                  _fail(create_volume.CreateExport))
        crash_in(m, create_volume.CreateOnBackend, when='revert')
        with pytest.raises(_Crash):
            run_create(runner, driver, notifier, volume)
    rows = journal_rows()
    assert [r['state'] for r in rows] == [flow_runner.REVERTING]
    assert volume.id in driver._volumes
    before = dict(driver.calls)

    outcomes = resume_all(flow_runner.FlowRunner(HOST), driver, notifier)

    assert outcomes == ['TaskFlowException']
    # Reverted, not resumed: nothing created again, the object removed.
    assert driver.calls['create_volume'] == before['create_volume']
    assert driver.calls['create_export'] == before.get('create_export', 0)
    assert volume.id not in driver._volumes
    assert status_of(volume.id) == VolumeStatus.ERROR
    assert journal_rows() == []
    assert notifier.types()[-1] == 'volume.create.error'


def test_family_rule_revert_undoes_checkpointed_work(runner, driver, notifier,
                                                     monkeypatch):
    volume = new_volume()
    with monkeypatch.context() as m:
        crash_in(m, create_volume.MarkAvailable)
        with pytest.raises(_Crash):
            run_create(runner, driver, notifier, volume)
    reverting_family = flow_runner.FlowFamily(
        'create_volume', 'volume', create_volume.build, create_volume.load,
        on_resume=flow_runner.REVERT)
    row = journal_rows()[0]
    with pytest.raises(Exception):
        flow_runner.FlowRunner(HOST).resume(reverting_family, row,
                                            deps(driver, notifier))
    assert volume.id not in driver._volumes
    assert status_of(volume.id) == VolumeStatus.ERROR
    assert journal_rows() == []


# -- start-up recovery -----------------------------------------------------------

class _Manager:
    """The parts of VolumeManager that recovery uses."""

    def __init__(self, driver, notifier, tmp_path):
        from volume_worker import coordination
        self.backend = HOST
        self.driver = driver
        self.notifier = notifier
        self.runner = flow_runner.FlowRunner(HOST)
        self.coordinator = coordination.Coordinator(
            'file://%s' % (tmp_path / 'locks'))

    def _deps(self, context):
        return deps(self.driver, self.notifier)


def test_recovery_leaves_nothing_transitional(runner, driver, notifier,
                                              monkeypatch, tmp_path):
    journaled = new_volume()
    with monkeypatch.context() as m:
        crash_in(m, create_volume.CreateExport)
        with pytest.raises(_Crash):
            run_create(runner, driver, notifier, journaled)
    # Rows an older release left without a journal.
    orphans = {}
    for status in (VolumeStatus.CREATING, VolumeStatus.DELETING,
                   VolumeStatus.EXTENDING):
        volume = new_volume()
        volume.status = status
        volume.create()
        orphans[volume.id] = status
    other_backend = new_volume()
    other_backend.host = 'other@fake1#pool1'
    other_backend.create()

    manager = _Manager(driver, notifier, tmp_path)
    try:
        summary = recovery.recover(manager, None)
    finally:
        manager.coordinator.stop()

    assert summary == {'resumed': 1, 'failed': 0, 'reset': 3}
    assert status_of(journaled.id) == VolumeStatus.AVAILABLE
    for volume_id, old in orphans.items():
        assert status_of(volume_id) == recovery.STUCK_TO[old]
    # Another backend's volumes are not ours to touch.
    assert status_of(other_backend.id) == VolumeStatus.CREATING
    assert journal_rows() == []
