"""Group members: run a few at a time, journaled one by one, outcomes as reported.

The flows run for real (parallel engine on native threads, SQLite, the
fake driver); a crash is a ``BaseException`` raised inside a member's
driver call, which stops the engine without reverting, as a killed
process would.
"""

import threading
import uuid

import pytest

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import group as group_flows
from volume_worker.flows import group_from_src
from volume_worker.flows import group_snapshot as gs_flows
from volume_worker.objects import SnapshotStatus
from volume_worker.objects import VolumeStatus
from volume_worker.testing import state

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, notifier  # noqa: F401

GROUP_CALLS = ('create_group_snapshot', 'delete_group_snapshot',
               'create_group_from_src', 'delete_group')


@pytest.fixture
def driver():
    return helpers.make_driver(group_member_parallelism=3)


@pytest.fixture
def ops(database, driver, notifier, coordinator):  # noqa: F811
    return helpers.make_ops(driver, notifier, coordinator)


def _generic(monkeypatch, driver):
    """The driver without group calls: the worker does the members."""
    for name in GROUP_CALLS:
        monkeypatch.setattr(driver, name, helpers._not_implemented)


def _group_snapshot(ops, group, gs_id=None):
    from volume_worker import objects
    group_snapshot = objects.GroupSnapshot(id=gs_id or str(uuid.uuid4()),
                                           group_id=group.id, name='gs')
    group_snapshot.obj_fill_unset()
    helpers.run(ops, gs_flows.CREATE, group_snapshot=group_snapshot,
                members=db.group_member_ids(group.id))
    return group_snapshot.id


class _Overlap:
    """Wraps a driver method: counts calls running at once, holding each
    until ``want`` run together (or no more will start)."""

    def __init__(self, method, want, total):
        self.method = method
        self.want = want
        self.total = total
        self.running = self.started = self.peak = 0
        self.cond = threading.Condition()

    def __call__(self, *args, **kwargs):
        with self.cond:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.running >= self.want or
                               self.started >= self.total, timeout=10)
        try:
            return self.method(*args, **kwargs)
        finally:
            with self.cond:
                self.running -= 1
                self.cond.notify_all()


def test_member_snapshots_overlap_up_to_the_parallelism(ops, driver, notifier,
                                                        monkeypatch):  # noqa
    _generic(monkeypatch, driver)
    group, volumes = helpers._group_with(ops, 7)
    overlap = _Overlap(driver.create_snapshot, want=3, total=7)
    monkeypatch.setattr(driver, 'create_snapshot', overlap)
    gs_id = _group_snapshot(ops, group)
    assert overlap.started == 7
    assert overlap.peak == 3  # group_member_parallelism, and no more
    assert db.group_snapshot_get(gs_id)['status'] == 'available'
    assert all(helpers.snapshot_status(i) == SnapshotStatus.AVAILABLE
               for i in gs_flows.member_ids(gs_id))
    assert notifier.types()[-2:] == ['group_snapshot.create.start',
                                     'group_snapshot.create.end']


def test_member_deletes_and_copies_overlap_too(ops, driver, monkeypatch):
    _generic(monkeypatch, driver)
    group, volumes = helpers._group_with(ops, 4)
    gs_id = _group_snapshot(ops, group)
    copies = _Overlap(driver.create_volume_from_snapshot, want=3, total=4)
    monkeypatch.setattr(driver, 'create_volume_from_snapshot', copies)
    copy = helpers.new_group()
    copy.group_snapshot_id = gs_id
    helpers.run(ops, group_from_src.FROM_GROUP_SNAPSHOT, group=copy,
                sources=gs_flows.member_ids(gs_id))
    assert copies.peak == 3
    deletes = _Overlap(driver.delete_volume, want=3, total=4)
    monkeypatch.setattr(driver, 'delete_volume', deletes)
    helpers.run(ops, group_flows.DELETE, group=copy.id,
                members=db.group_member_ids(copy.id),
                store={'delete_volumes': True})
    assert deletes.peak == 3
    assert db.group_get(copy.id, read_deleted=True)['deleted']


def test_a_crash_resumes_only_the_members_not_journaled(
        ops, driver, notifier, coordinator, monkeypatch):  # noqa: F811
    _generic(monkeypatch, driver)
    group, volumes = helpers._group_with(ops, 6)
    original = driver.create_snapshot
    calls, killed, resumed = [], [], []
    dead = threading.Event()
    resuming = threading.Event()

    def journaled_any():
        return any(name.startswith('SnapshotMember:')
                   for row in helpers.journal_rows()
                   for name in row['progress'] or {})

    def driver_call(snapshot):
        if resuming.is_set():
            resumed.append(snapshot.id)
            return original(snapshot)
        # The fourth call kills the "process" once a member is journaled;
        # nothing runs after that. (Tasks the dead run had queued still
        # reach here in this process, and die too.)
        if dead.is_set() or len(calls) == 3:
            if not dead.is_set():
                state.wait_until(journaled_any, 10, 'a member journaled')
            dead.set()
            killed.append(snapshot.id)
            raise helpers._Crash('killed')
        calls.append(snapshot.id)
        return original(snapshot)
    monkeypatch.setattr(driver, 'create_snapshot', driver_call)
    gs_id = str(uuid.uuid4())
    with monkeypatch.context() as m:
        m.setattr(db.OperationJournal, 'finish', lambda self: None)
        with pytest.raises(helpers._Crash):
            _group_snapshot(ops, group, gs_id)
    # Every member task of the dead run has run or died.
    state.wait_until(lambda: len(calls) + len(killed) == 6, 10,
                     'the dead run\'s queued tasks')
    [row] = helpers.journal_rows()
    journaled = {name.split(':', 1)[1] for name in row['progress']
                 if name.startswith('SnapshotMember:')}
    assert journaled and journaled <= set(calls)
    assert 'SnapshotGroupOnBackend' in row['progress']

    resuming.set()
    assert helpers.resume_all(driver, notifier, coordinator) == ['done']
    members = set(gs_flows.member_ids(gs_id))
    assert sorted(resumed) == sorted(members - journaled)
    assert db.group_snapshot_get(gs_id)['status'] == 'available'
    assert all(i in driver._snapshots for i in members)
    assert helpers.journal_rows() == []


@pytest.mark.parametrize('generic', [True, False])
def test_one_failed_member_fails_it_and_the_group_others_as_reported(
        ops, driver, monkeypatch, notifier, generic):  # noqa: F811
    if generic:
        _generic(monkeypatch, driver)
    group, volumes = helpers._group_with(ops, 4)
    gs_id = str(uuid.uuid4())
    failing = gs_flows.member_snapshot_id(gs_id, volumes[1].id)
    driver.configuration.conf.set_override(
        'fake_member_faults', {failing: 'raise'}, group='fake1')
    with pytest.raises(exception.GroupFailed):
        _group_snapshot(ops, group, gs_id)
    assert db.group_snapshot_get(gs_id)['status'] == 'error'
    statuses = {i: helpers.snapshot_status(i)
                for i in gs_flows.member_ids(gs_id)}
    assert statuses.pop(failing) == SnapshotStatus.ERROR
    assert set(statuses.values()) == {SnapshotStatus.AVAILABLE}
    assert all(i in driver._snapshots for i in statuses)
    assert 'group_snapshot.create.error' in notifier.types()
    assert helpers.journal_rows() == []


def test_a_raising_group_call_fails_every_member(ops, driver, monkeypatch):
    group, volumes = helpers._group_with(ops, 3)

    def broken(*args, **kwargs):
        from drivers import exception as driver_exception
        raise driver_exception.VolumeBackendAPIException(data='array down')
    monkeypatch.setattr(driver, 'create_group_snapshot', broken)
    gs_id = str(uuid.uuid4())
    with pytest.raises(Exception, match='array down'):
        _group_snapshot(ops, group, gs_id)
    assert db.group_snapshot_get(gs_id)['status'] == 'error'
    assert {helpers.snapshot_status(i) for i in gs_flows.member_ids(gs_id)
            } == {SnapshotStatus.ERROR}


def test_a_failed_copy_leaves_the_others_available(ops, driver, monkeypatch):
    _generic(monkeypatch, driver)
    source, volumes = helpers._group_with(ops, 3)
    copy = helpers.new_group()
    copy.source_group_id = source.id
    failing = group_from_src.new_volume_id(copy.id, volumes[0].id)
    driver.configuration.conf.set_override(
        'fake_member_faults', {failing: 'raise'}, group='fake1')
    with pytest.raises(exception.GroupFailed):
        helpers.run(ops, group_from_src.FROM_GROUP, group=copy,
                    sources=db.group_member_ids(source.id))
    assert db.group_get(copy.id)['status'] == 'error'
    new = db.group_member_ids(copy.id)
    assert {i: helpers.status_of(i) for i in new} == {
        i: VolumeStatus.ERROR if i == failing else VolumeStatus.AVAILABLE
        for i in new}
    assert failing not in driver._volumes


def test_adding_a_volume_in_a_migration_or_elsewhere_is_refused(ops):
    group, _ = helpers._group_with(ops, 0)
    migrating = helpers.available_volume(ops)
    db.volume_update(migrating.id, {'migration_status': 'target:%s'
                                    % uuid.uuid4()})
    with pytest.raises(exception.InvalidInput, match='migration'):
        helpers.run(ops, group_flows.UPDATE, group=group.id,
                    add=[migrating.id], remove=[])
    elsewhere = helpers.available_volume(ops)
    db.volume_update(elsewhere.id, {'host': 'node2@fake1#pool1'})
    with pytest.raises(exception.NotOwned):
        helpers.run(ops, group_flows.UPDATE, group=group.id,
                    add=[elsewhere.id], remove=[])
    assert db.group_member_ids(group.id) == []


def test_a_group_whose_volumes_have_snapshots_is_not_deleted(ops):
    group, volumes = helpers._group_with(ops, 2)
    snapshot = helpers._snapshot_of(ops, volumes[1])
    with pytest.raises(exception.ResourceInUse, match='1 snapshot'):
        helpers.run(ops, group_flows.DELETE, group=group.id,
                    members=db.group_member_ids(group.id),
                    store={'delete_volumes': True})
    assert all(helpers.status_of(v.id) == VolumeStatus.AVAILABLE
               for v in volumes)
    helpers.run(ops, helpers.snapshot_flows.DELETE, snapshot=snapshot.id,
                store={'unmanage_only': False})
    helpers.run(ops, group_flows.DELETE, group=group.id,
                members=db.group_member_ids(group.id),
                store={'delete_volumes': True})
    assert db.group_get(group.id, read_deleted=True)['deleted']


def test_a_group_call_the_driver_made_is_journaled_its_members_not(
        ops, driver, notifier, coordinator, monkeypatch):  # noqa: F811
    from volume_worker.flows import members as members_flows
    group, volumes = helpers._group_with(ops, 3)
    gs_id = str(uuid.uuid4())
    with monkeypatch.context() as m:
        helpers.crash_in(m, members_flows.ApplyOutcomes)
        with pytest.raises(helpers._Crash):
            _group_snapshot(ops, group, gs_id)
    [row] = helpers.journal_rows()
    # The driver's result is journaled; the members' tasks had nothing to
    # do and wrote nothing.
    assert sorted(row['progress']) == ['SnapshotGroupOnBackend']
    calls = []
    monkeypatch.setattr(driver, 'create_group_snapshot',
                        lambda *a, **k: calls.append(a))
    assert helpers.resume_all(driver, notifier, coordinator) == ['done']
    assert calls == []  # not called again
    assert db.group_snapshot_get(gs_id)['status'] == 'available'


def test_groups_offer_their_type_to_drivers(database):
    from drivers import base as driver_base
    from volume_worker import objects
    gtype = objects.GroupType(id=str(uuid.uuid4()), name='cg-%s' % uuid.uuid4(),
                              group_specs=dict(
                                  consistent_group_snapshot_enabled='<is> True'))
    gtype.create()
    group = helpers.new_group()
    group.group_type_id = gtype.id
    snapshot = objects.GroupSnapshot(id=str(uuid.uuid4()), group_id=group.id,
                                     group_type_id=gtype.id)
    plain = helpers.new_group()
    gone = helpers.new_group()
    gone.group_type_id = str(uuid.uuid4())
    assert driver_base.is_consistent_snapshot_group(group)
    assert driver_base.is_consistent_snapshot_group(snapshot)
    assert not driver_base.is_consistent_snapshot_group(plain)
    assert gone.group_type is None
    assert not driver_base.is_consistent_snapshot_group(gone)
