"""Migration and retype with migration, on real flows between two in-process backends.

The destination is a second backend (its own fake driver and Operations)
reached by direct calls where the worker uses RPC (``LocalPeers``, the same
interface as ``volume_worker.peers.Peers``). The fake driver holds no data,
so the copy is recorded, not made (the functional tests copy real files
byte for byte). Crashes are simulated as in test_runner: a task raises a
BaseException, the journal row stays, and a "new process" resumes it.
"""

import uuid

import pytest

from drivers import generic
from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import connection
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.flows import migrate
from volume_worker.flows import retype as retype_flows
from volume_worker.flows import runner as flow_runner
from volume_worker import objects
from volume_worker.objects import MigrationStatus
from volume_worker.objects import VolumeStatus
from volume_worker import operations

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, driver, notifier  # noqa: F401

HOST = helpers.HOST
DEST = 'node@fake2'
CONNECTOR = dict(helpers.CONNECTOR)


class LocalPeers:
    """The destination backend in this process, called directly."""

    def __init__(self, coordinator, notifier):
        self.driver = helpers.make_driver()
        self.driver._local_connector = lambda: dict(CONNECTOR)
        self.ops = operations.Operations(
            DEST, self.driver, coordinator, flow_runner.FlowRunner(DEST),
            notifier, helpers.Reporter())
        objects.Service.get_or_create(DEST, 'volume-worker')
        self.fail_create = False

    def capabilities(self, context, backend):
        return self.driver.get_volume_stats(refresh=True)

    def create_volume(self, context, backend, volume, source_id):
        assert backend == DEST
        if self.fail_create:
            raise exception.MigrationFailed(volume_id=source_id,
                                            reason='injected')
        volume.host = DEST + '#pool1'
        volume.obj_fill_unset()
        helpers.run(self.ops, create_volume.FAMILY, volume=volume)
        return objects.Volume.get_by_id(volume.id)

    def delete_volume(self, context, backend, volume_id):
        helpers.run(self.ops, delete_volume.FAMILY, volume=volume_id,
                    store={'unmanage_only': False})
        return True

    def connect(self, context, backend, volume_id, connector):
        return helpers.run(self.ops, connection.INITIALIZE, volume=volume_id,
                           store={'connector': connector})['connection_info']

    def disconnect(self, context, backend, volume_id, connector):
        helpers.run(self.ops, connection.TERMINATE, volume=volume_id,
                    store={'connector': connector, 'force': False})

    def complete_migration(self, context, backend, volume_id, new_volume_id,
                           original_status):
        helpers.run(self.ops, migrate.COMPLETION, new_volume=new_volume_id,
                    store={'volume_id': volume_id,
                           'original_status': original_status})
        return objects.Volume.get_by_id(volume_id)


@pytest.fixture
def peers(database, coordinator, notifier):
    return LocalPeers(coordinator, notifier)


@pytest.fixture
def copies(monkeypatch):
    """The copies made: (source volume id, destination connection info)."""
    made = []

    def copy(driver, context, volume, info, connector=None, progress=None):
        made.append((volume.id, info))
        if progress is not None:
            progress(volume.size << 30)
    monkeypatch.setattr(generic, 'copy_volume_to', copy)
    return made


def source_ops(driver, notifier, coordinator, peers):
    driver._local_connector = lambda: dict(CONNECTOR)
    ops = helpers.make_ops(driver, notifier, coordinator)
    ops.peers = peers
    return ops


@pytest.fixture
def ops(database, driver, notifier, coordinator, peers):
    return source_ops(driver, notifier, coordinator, peers)


def migrate_to(ops, volume_id, dest=DEST, **store):
    store.update(dest_backend=dest)
    store.setdefault('force_host_copy', False)
    return helpers.run(ops, migrate.FAMILY, volume=volume_id, store=store)


def assert_migrated(volume_id, driver, peers, copy_id=None):
    """The volume (its id kept) lives on the destination; nothing is left here."""
    row = db.volume_get(volume_id)
    assert row['host'].partition('#')[0] == DEST
    assert row['status'] == VolumeStatus.AVAILABLE
    assert row['migration_status'] == MigrationStatus.SUCCESS
    assert volume_id in peers.driver._volumes  # re-keyed under its own id
    assert row['_name_id'] is None
    assert driver._volumes == {}  # the old data is gone from the source
    targets = [r for r in db.volume_get_all()
               if (r['migration_status'] or '').startswith('target:')]
    assert targets == []
    if copy_id is not None:
        assert db.volume_get(copy_id, read_deleted=True)['deleted']
    assert db.journal_get_all() == []


def test_generic_migration_moves_the_volume_and_keeps_its_id(
        ops, driver, peers, copies, notifier):
    volume = helpers.available_volume(ops)
    migrate_to(ops, volume.id)
    events = notifier.types()
    assert events.index('volume.migrate.start') < events.index(
        'volume.migrate.progress') < events.index('volume.migrate.end')
    assert [c[0] for c in copies] == [volume.id]
    # The destination exported its copy to this host's connector.
    assert copies[0][1]['driver_volume_type']
    assert_migrated(volume.id, driver, peers)


def test_force_host_copy_skips_the_driver(ops, driver, peers, copies,
                                          monkeypatch):
    asked = []
    monkeypatch.setattr(driver, 'migrate_volume',
                        lambda *a: asked.append(a) or (True, None))
    volume = helpers.available_volume(ops)
    migrate_to(ops, volume.id, force_host_copy=True)
    assert asked == [] and len(copies) == 1
    assert_migrated(volume.id, driver, peers)


def test_driver_assisted_migration_takes_the_drivers_update(
        ops, driver, peers, copies, monkeypatch):
    hosts = []

    def migrate_volume(context, volume, host):
        hosts.append(host)
        return True, {'provider_location': 'moved-by-the-array'}
    monkeypatch.setattr(driver, 'migrate_volume', migrate_volume)
    volume = helpers.available_volume(ops)
    migrate_to(ops, volume.id)
    assert copies == []
    assert hosts[0]['host'] == DEST + '#pool1'
    assert hosts[0]['capabilities']['pools']
    row = db.volume_get(volume.id)
    assert row['host'] == DEST + '#pool1'
    assert row['provider_location'] == 'moved-by-the-array'
    assert row['migration_status'] == MigrationStatus.SUCCESS
    assert row['status'] == VolumeStatus.AVAILABLE


def test_an_in_use_volume_moves_only_by_its_driver(ops, driver, peers,
                                                   copies):
    volume = helpers.available_volume(ops)
    helpers.attach(ops, volume.id)
    with pytest.raises(exception.InvalidVolume):
        migrate_to(ops, volume.id, force_host_copy=True)
    with pytest.raises(exception.MigrationFailed):
        migrate_to(ops, volume.id)
    row = db.volume_get(volume.id)
    assert (row['status'], row['host']) == (VolumeStatus.IN_USE,
                                            HOST + '#pool1')
    assert row['migration_status'] == MigrationStatus.ERROR
    assert copies == []


@pytest.mark.parametrize('dest, error', [
    (HOST, exception.InvalidInput),                  # where it is already
    ('node@nowhere', exception.InvalidInput),         # no such backend
])
def test_bad_destinations_are_refused(ops, dest, error):
    volume = helpers.available_volume(ops)
    with pytest.raises(error):
        migrate_to(ops, volume.id, dest=dest)
    row = db.volume_get(volume.id)
    assert row['migration_status'] is None
    assert row['status'] == VolumeStatus.AVAILABLE


def test_a_volume_with_snapshots_is_refused(ops):
    volume = helpers.available_volume(ops)
    helpers.run(ops, helpers.flows.FAMILIES['create_snapshot'],
                snapshot=helpers.new_snapshot(volume.id))
    with pytest.raises(exception.InvalidVolume):
        migrate_to(ops, volume.id)


def _assert_untouched(volume, driver, peers):
    row = db.volume_get(volume.id)
    assert row['host'] == HOST + '#pool1'
    assert row['status'] == VolumeStatus.AVAILABLE
    assert row['migration_status'] == MigrationStatus.ERROR
    assert row['_name_id'] is None
    assert set(driver._volumes) == {volume.id}
    assert peers.driver._volumes == {}  # the copy was deleted
    assert db.journal_get_all() == []


def test_a_failed_copy_deletes_the_copy_and_leaves_the_volume(
        ops, driver, peers, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('injected copy failure')
    monkeypatch.setattr(generic, 'copy_volume_to', broken)
    volume = helpers.available_volume(ops)
    with pytest.raises(RuntimeError):
        migrate_to(ops, volume.id)
    _assert_untouched(volume, driver, peers)


def test_a_failed_create_on_the_destination_leaves_the_volume(
        ops, driver, peers, copies):
    peers.fail_create = True
    volume = helpers.available_volume(ops)
    with pytest.raises(exception.MigrationFailed):
        migrate_to(ops, volume.id)
    _assert_untouched(volume, driver, peers)
    assert copies == []


STEPS = (migrate.DriverMigration, migrate.CreateDestination, migrate.CopyData,
         migrate.CompleteMigration, migrate.DeleteSourceCopy,
         migrate.MarkMigrated)


@pytest.mark.parametrize('step', STEPS, ids=lambda s: s.__name__)
@pytest.mark.parametrize('when', ['execute', 'after'])
def test_a_crash_at_every_step_resumes_to_one_copy(
        database, driver, notifier, coordinator, peers, copies, monkeypatch,
        step, when):
    ops = source_ops(driver, notifier, coordinator, peers)
    volume = helpers.available_volume(ops)
    with monkeypatch.context() as patch:
        if when == 'execute':
            helpers.crash_in(patch, step)
        else:  # the step did its work; the process died before the next
            original = step.execute

            def then_crash(self, *args, **kwargs):
                original(self, *args, **kwargs)
                raise helpers._Crash(step.__name__)
            patch.setattr(step, 'execute', then_crash)
            patch.setattr(db.OperationJournal, 'finish', lambda self: None)
        with pytest.raises(helpers._Crash):
            migrate_to(ops, volume.id)
    rows = db.journal_get_all(HOST)
    assert [r['operation'] for r in rows] == ['migrate_volume']
    assert db.volume_get(volume.id)['status'] == VolumeStatus.MAINTENANCE

    new_ops = source_ops(driver, notifier, coordinator, peers)
    new_ops.resume(migrate.FAMILY, rows[0], None)
    assert_migrated(volume.id, driver, peers)


# -- retype with migration -----------------------------------------------------

def _new_type(**specs):
    vtype = objects.VolumeType(id=str(uuid.uuid4()),
                               name='t-%s' % uuid.uuid4().hex[:8],
                               extra_specs=specs)
    vtype.create()
    return vtype


def retype(ops, volume_id, type_id, **store):
    store.update(new_type_id=type_id)
    return helpers.run(ops, retype_flows.FAMILY, volume=volume_id,
                       store=store)


def test_retype_the_driver_cannot_do_migrates_on_demand(
        ops, driver, peers, copies, monkeypatch):
    monkeypatch.setattr(driver, 'retype', lambda *a: (False, None))
    gold = _new_type(tier='gold')
    volume = helpers.available_volume(ops)
    retype(ops, volume.id, gold.id, migration_policy='on-demand',
           dest_backend=DEST)
    assert len(copies) == 1
    assert_migrated(volume.id, driver, peers)
    assert db.volume_get(volume.id)['volume_type_id'] == gold.id


def test_retype_in_place_does_not_migrate(ops, driver, peers, copies):
    gold = _new_type(tier='gold')
    volume = helpers.available_volume(ops)
    retype(ops, volume.id, gold.id, migration_policy='on-demand',
           dest_backend=DEST)
    row = db.volume_get(volume.id)
    assert (row['host'], row['volume_type_id']) == (HOST + '#pool1', gold.id)
    assert row['migration_status'] is None
    assert copies == []


@pytest.mark.parametrize('store', [
    {'migration_policy': 'never', 'dest_backend': DEST},
    {'migration_policy': 'on-demand'},
])
def test_retype_without_migration_allowed_leaves_the_old_type(
        ops, driver, monkeypatch, store):
    monkeypatch.setattr(driver, 'retype', lambda *a: (False, None))
    gold = _new_type(tier='gold')
    volume = helpers.available_volume(ops)
    with pytest.raises(exception.RetypeNotPossible):
        retype(ops, volume.id, gold.id, **store)
    row = db.volume_get(volume.id)
    assert row['volume_type_id'] is None
    assert row['status'] == VolumeStatus.AVAILABLE
    assert row['migration_status'] is None


def test_a_failed_retype_migration_leaves_the_old_type(
        ops, driver, peers, monkeypatch):
    monkeypatch.setattr(driver, 'retype', lambda *a: (False, None))

    def broken(*args, **kwargs):
        raise RuntimeError('injected copy failure')
    monkeypatch.setattr(generic, 'copy_volume_to', broken)
    gold = _new_type(tier='gold')
    volume = helpers.available_volume(ops)
    with pytest.raises(RuntimeError):
        retype(ops, volume.id, gold.id, migration_policy='on-demand',
               dest_backend=DEST)
    row = db.volume_get(volume.id)
    assert row['volume_type_id'] is None
    _assert_untouched(volume, driver, peers)


def test_completion_refuses_a_volume_that_is_no_migration_copy(
        ops, peers):
    volume = helpers.available_volume(ops)
    other = helpers.new_volume()
    other.host = DEST + '#pool1'
    helpers.run(peers.ops, create_volume.FAMILY, volume=other)
    with pytest.raises(exception.InvalidInput):
        peers.complete_migration(None, DEST, volume.id, other.id,
                                 'available')
    assert db.volume_get(volume.id)['host'] == HOST + '#pool1'


# -- update_provider_info at start-up ------------------------------------------

def test_start_up_saves_the_provider_ids_the_driver_reports(
        ops, driver, monkeypatch):
    from volume_worker import recovery
    volume = helpers.available_volume(ops)
    snap = helpers.new_snapshot(volume.id)
    helpers.run(ops, helpers.flows.FAMILIES['create_snapshot'], snapshot=snap)
    seen = []

    def update_provider_info(volumes, snapshots):
        seen.append(([v.id for v in volumes], [s.id for s in snapshots]))
        return ([{'id': volume.id, 'provider_id': 'lun-7'},
                 {'id': str(uuid.uuid4()), 'provider_id': 'not ours'}],
                [{'id': snap.id, 'provider_id': 'snap-7'}])
    monkeypatch.setattr(driver, 'update_provider_info', update_provider_info)
    assert recovery.sync_provider_info(HOST, driver) == (1, 1)
    assert seen == [([volume.id], [snap.id])]
    assert db.volume_get(volume.id)['provider_id'] == 'lun-7'
    assert db.snapshot_get(snap.id)['provider_id'] == 'snap-7'
    assert recovery.sync_provider_info(HOST, driver) == (0, 0)  # unchanged

    def broken(volumes, snapshots):
        raise RuntimeError('array unreachable')
    monkeypatch.setattr(driver, 'update_provider_info', broken)
    assert recovery.sync_provider_info(HOST, driver) == (0, 0)
    assert db.volume_get(volume.id)['provider_id'] == 'lun-7'


def test_start_up_loads_nothing_for_a_driver_that_reports_nothing(
        ops, driver, monkeypatch):
    from volume_worker import recovery
    helpers.available_volume(ops)
    assert 'update_provider_info' not in vars(type(driver)) or getattr(
        type(driver).update_provider_info, '_faulty', False)

    def loaded(*args, **kwargs):
        raise AssertionError('volumes loaded for a driver that reports '
                             'no provider ids')
    monkeypatch.setattr(objects.Volume, 'get_all', loaded)
    assert recovery.sync_provider_info(HOST, driver) == (0, 0)
    monkeypatch.setattr(driver, 'update_provider_info',
                        lambda volumes, snapshots: (None, None))
    with pytest.raises(AssertionError, match='volumes loaded'):
        recovery.sync_provider_info(HOST, driver)


# -- volumes without a pool, at start-up ----------------------------------------

def test_start_up_places_volumes_without_a_pool(ops, driver, monkeypatch):
    from volume_worker import recovery
    asked = helpers.available_volume(ops)
    unknown = helpers.available_volume(ops)
    placed = helpers.available_volume(ops)
    for volume in (asked, unknown):
        db.volume_update(volume.id, {'host': HOST})

    def get_pool(volume):
        return 'pool9' if volume.id == asked.id else None
    monkeypatch.setattr(driver, 'get_pool', get_pool)
    assert recovery.settle_pools(HOST, driver, 'pool1') == 2
    assert db.volume_get(asked.id)['host'] == HOST + '#pool9'
    assert db.volume_get(unknown.id)['host'] == HOST + '#pool1'
    assert db.volume_get(placed.id)['host'] == HOST + '#pool1'
    assert recovery.settle_pools(HOST, driver, 'pool1') == 0
