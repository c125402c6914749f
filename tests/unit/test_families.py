"""Rules every operation family must keep, checked on every registered family.

A family that breaks one fails here, whoever wrote it: the journal row is
written in the same transaction as the subject's first status change, and
that happens before the first driver call; every family module's
declaration is registered for recovery.
"""

import importlib
import pkgutil
import uuid

import pytest
import sqlalchemy as sa

from volume_worker.db import api as db
from volume_worker import flows
from volume_worker.flows import runner as flow_runner
from volume_worker import operations

from tests.unit import test_runner as helpers
from tests.unit.test_runner import coordinator, driver, notifier  # noqa: F401

HOST = helpers.HOST


def _available_volume(ops):
    return helpers.available_volume(ops)


def _with_snapshot(ops):
    volume = _available_volume(ops)
    snap = helpers.new_snapshot(volume.id)
    helpers.run(ops, flows.FAMILIES['create_snapshot'], snapshot=snap)
    return snap


def _copy_of_snapshot(ops):
    volume = helpers.new_volume()
    volume.snapshot_id = _with_snapshot(ops).id
    return {'volume': volume}


def _clone_of_volume(ops):
    volume = helpers.new_volume(size=2)
    volume.source_volid = _available_volume(ops).id
    return {'volume': volume}


def _from_image(ops):
    volume = helpers.new_volume()
    volume.image_id = ops.image_service.add(b'\x01' * 4096)
    return {'volume': volume}


def _to_image(ops):
    return {'volume': _available_volume(ops).id,
            'store': {'image_meta': {'id': str(uuid.uuid4()), 'name': 'i',
                                     'disk_format': 'raw',
                                     'container_format': 'bare'}}}


def _revert(ops):
    snap = _with_snapshot(ops)
    return {'volume': snap.volume_id, 'snapshot': snap.id}


def _attachment(ops, complete):
    volume = _available_volume(ops)
    attachment = helpers.attach(ops, volume.id, complete=complete)
    return {'attachment': attachment.id, 'volume': volume.id}


def _connected(ops, store=None):
    volume = _available_volume(ops)
    return {'volume': volume.id, 'store': dict(
        store or {}, connector=dict(helpers.CONNECTOR))}


def _snapshot_connected(ops, store=None):
    return {'snapshot': _with_snapshot(ops).id, 'store': dict(
        store or {}, connector=dict(helpers.CONNECTOR))}


def _legacy_attached(ops):
    from volume_worker.flows import connection
    volume = _available_volume(ops)
    attachment = helpers.new_attachment(volume.id)
    helpers.run(ops, connection.ATTACH, attachment=attachment,
                volume=volume.id)
    return {'attachment': attachment.id, 'volume': volume.id}


def _unmanaged_volume_ref(ops):
    volume = _available_volume(ops)
    helpers.run(ops, flows.FAMILIES['delete_volume'], volume=volume.id,
                store={'unmanage_only': True})
    return {'source-name': volume.name}


def _manage_volume(ops):
    volume = helpers.new_volume()
    volume.size = 0
    return {'volume': volume,
            'store': {'existing_ref': _unmanaged_volume_ref(ops)}}


def _manage_snapshot(ops):
    snap = _with_snapshot(ops)
    helpers.run(ops, flows.FAMILIES['delete_snapshot'], snapshot=snap.id,
                store={'unmanage_only': True})
    adopted = helpers.new_snapshot(snap.volume_id)
    adopted.volume_size = 0
    return {'snapshot': adopted,
            'store': {'existing_ref': {'source-name': snap.name}}}


def _retype(ops):
    from volume_worker import objects
    new_type = objects.VolumeType(id=str(uuid.uuid4()), name='gold-%s'
                                  % uuid.uuid4().hex[:6], extra_specs={})
    new_type.create()
    return {'volume': _available_volume(ops).id,
            'store': {'new_type_id': new_type.id,
                      'migration_policy': 'never'}}


def _group(ops, members=0):
    from volume_worker import objects
    group = helpers.new_group()
    helpers.run(ops, flows.FAMILIES['create_group'], group=group)
    volumes = [_available_volume(ops).id for _ in range(members)]
    if volumes:
        helpers.run(ops, flows.FAMILIES['update_group'], group=group.id,
                    add=volumes, remove=[])
    assert objects.Group.get_by_id(group.id).status == 'available'
    return group, volumes


def _update_group(ops):
    group, _ = _group(ops)
    return {'group': group.id, 'add': [_available_volume(ops).id],
            'remove': []}


def _delete_group(ops):
    group, members = _group(ops, members=2)
    return {'group': group.id, 'members': members,
            'store': {'delete_volumes': True}}


def _group_snapshot(ops, taken=False):
    from volume_worker import objects
    group, members = _group(ops, members=2)
    group_snapshot = objects.GroupSnapshot(id=str(uuid.uuid4()),
                                           group_id=group.id)
    group_snapshot.obj_fill_unset()
    given = {'group_snapshot': group_snapshot, 'members': members}
    if not taken:
        return given
    helpers.run(ops, flows.FAMILIES['create_group_snapshot'], **given)
    from volume_worker.flows import group_snapshot as gs_flows
    return {'group_snapshot': group_snapshot.id,
            'members': gs_flows.member_ids(group_snapshot.id)}


def _from_group_snapshot(ops):
    given = _group_snapshot(ops, taken=True)
    group = helpers.new_group()
    group.group_snapshot_id = given['group_snapshot']
    return {'group': group, 'sources': given['members']}


def _from_group(ops):
    source, members = _group(ops, members=2)
    group = helpers.new_group()
    group.source_group_id = source.id
    return {'group': group, 'sources': members}


def _service(ops):
    from volume_worker import objects
    service = objects.Service.get_or_create(HOST, 'volume-worker')
    service.replication_status = 'enabled'
    service.save()
    return service


def _failover(ops):
    ops.driver.configuration.conf.set_override(
        'replication_device', [{'backend_id': 'site2'}], group='fake1')
    ops.driver.get_volume_stats(refresh=True)
    _available_volume(ops)
    return {'service': _service(ops),
            'store': {'secondary_backend_id': 'site2'}}


@pytest.fixture(autouse=True)
def backup_store(tmp_path):
    from oslo_config import cfg
    from volume_worker import opts
    opts.register_backup_opts(cfg.CONF)
    cfg.CONF.set_override('posix_path', str(tmp_path / 'backups'),
                          group='backup')
    yield
    cfg.CONF.clear_override('posix_path', group='backup')


def new_backup(volume_id, parent_id=None, snapshot_id=None):
    from volume_worker import objects
    backup = objects.Backup(id=str(uuid.uuid4()), volume_id=volume_id,
                            parent_id=parent_id, snapshot_id=snapshot_id)
    backup.obj_fill_unset()
    return backup


def _backup(ops):
    backup = new_backup(_available_volume(ops).id)
    helpers.run(ops, flows.FAMILIES['create_backup'], backup=backup)
    return backup


def _backup_of_snapshot(ops):
    snap = _with_snapshot(ops)
    return {'backup': new_backup(snap.volume_id, snapshot_id=snap.id)}


def _restore(ops):
    volume = helpers.new_volume()
    volume.size = 0
    return {'backup': _backup(ops).id, 'volume': volume}


# For each family: prepare what it needs, return acquire()'s arguments.
def _migrate(ops):
    from tests.unit import test_migration
    peers = test_migration.LocalPeers(ops.coordinator, ops.notifier)
    ops.driver.migrate_volume = lambda *a: (True, None)  # by the driver
    return {'volume': _available_volume(ops).id, 'peers': peers,
            'store': {'dest_backend': test_migration.DEST,
                      'force_host_copy': False}}


def _migrate_completion(ops):
    from tests.unit import test_migration
    from volume_worker import objects
    from volume_worker.flows import migrate
    volume = helpers.new_volume()
    volume.host = test_migration.DEST + '#pool1'
    volume.status = 'maintenance'
    volume.migration_status = objects.MigrationStatus.COMPLETING
    volume.create()
    copy = helpers.new_volume()
    copy.migration_status = objects.MigrationStatus.target_of(volume.id)
    helpers.run(ops, flows.FAMILIES['create_volume'], volume=copy)
    assert migrate.COMPLETION.operation == 'migrate_volume_completion'
    return {'new_volume': copy.id,
            'store': {'volume_id': volume.id,
                      'original_status': 'available'}}


SCENARIOS = {
    'failover_host': _failover,
    'freeze_host': lambda ops: {'service': _service(ops)},
    'thaw_host': lambda ops: {'service': _service(ops)},
    'create_backup': lambda ops: {
        'backup': new_backup(_available_volume(ops).id)},
    'create_incremental_backup': lambda ops: {
        'backup': (lambda full: new_backup(full.volume_id, full.id))(
            _backup(ops))},
    'delete_backup': lambda ops: {'backup': _backup(ops).id},
    'create_backup_from_snapshot': _backup_of_snapshot,
    'restore_backup': _restore,
    'create_volume_from_image': _from_image,
    'copy_volume_to_image': _to_image,
    'migrate_volume': _migrate,
    'migrate_volume_completion': _migrate_completion,
    'create_group_from_group_snapshot': _from_group_snapshot,
    'create_group_from_group': _from_group,
    'create_group_snapshot': _group_snapshot,
    'delete_group_snapshot': lambda ops: _group_snapshot(ops, taken=True),
    'create_group': lambda ops: {'group': helpers.new_group()},
    'update_group': _update_group,
    'delete_group': _delete_group,
    'retype': _retype,
    'manage_existing': _manage_volume,
    'manage_existing_snapshot': _manage_snapshot,
    'accept_transfer': lambda ops: {
        'volume': _available_volume(ops).id,
        'store': {'new_user': 'u2', 'new_project': 'p2',
                  'no_snapshots': False}},
    'initialize_connection': _connected,
    'terminate_connection': lambda ops: _connected(ops, {'force': False}),
    'remove_export': lambda ops: {'volume': _available_volume(ops).id},
    'attach_volume': lambda ops: {
        'attachment': helpers.new_attachment(_available_volume(ops).id)},
    'detach_volume': _legacy_attached,
    'initialize_connection_snapshot': _snapshot_connected,
    'terminate_connection_snapshot': lambda ops: _snapshot_connected(
        ops, {'force': False}),
    'remove_export_snapshot': lambda ops: {
        'snapshot': _with_snapshot(ops).id},
    'attachment_update': lambda ops: {
        'attachment': helpers.new_attachment(_available_volume(ops).id)},
    'attachment_complete': lambda ops: _attachment(ops, complete=False),
    'attachment_delete': lambda ops: _attachment(ops, complete=True),
    'create_volume_from_snapshot': _copy_of_snapshot,
    'create_cloned_volume': _clone_of_volume,
    'extend_volume': lambda ops: {'volume': _available_volume(ops).id,
                                  'store': {'new_size': 3}},
    'revert_to_snapshot': _revert,
    'create_volume': lambda ops: {'volume': helpers.new_volume()},
    'delete_volume': lambda ops: {'volume': _available_volume(ops).id},
    'create_snapshot': lambda ops: {
        'snapshot': helpers.new_snapshot(_available_volume(ops).id)},
    'delete_snapshot': lambda ops: {
        'snapshot': _with_snapshot(ops).id,
        'store': {'unmanage_only': False}},
}


def test_every_family_module_is_registered_for_recovery():
    declared = []
    for info in pkgutil.iter_modules(flows.__path__):
        module = importlib.import_module('volume_worker.flows.' + info.name)
        declared += [(info.name, value) for value in vars(module).values()
                     if isinstance(value, flow_runner.FlowFamily)]
    assert declared, 'no family found'
    registered = set(map(id, flows.FAMILIES.values()))
    missing = [(m, f.operation) for m, f in declared if id(f) not in registered]
    assert missing == [], 'families recovery would not resume: %s' % missing
    for operation, family in flows.FAMILIES.items():
        assert family.operation == operation
        assert family.event, operation
        if not family.shaped:  # (shaped flows are checked as they run)
            family.new_flow()  # every task declares checkpoint or idempotent


class _Transactions:
    """Statements grouped by the transaction they committed in."""

    def __init__(self, engine):
        self.engine = engine
        self.current = []
        self.committed = []
        sa.event.listen(engine, 'before_cursor_execute', self._statement)
        sa.event.listen(engine, 'commit', self._commit)
        sa.event.listen(engine, 'rollback', self._rollback)

    def _statement(self, conn, cursor, statement, *args):
        words = statement.split()
        if words and words[0].upper() in ('INSERT', 'UPDATE', 'DELETE'):
            self.current.append(' '.join(words[:3]).upper())

    def _commit(self, conn):
        if self.current:
            self.committed.append(self.current)
        self.current = []

    def _rollback(self, conn):
        self.current = []

    def close(self):
        sa.event.remove(self.engine, 'before_cursor_execute', self._statement)
        sa.event.remove(self.engine, 'commit', self._commit)
        sa.event.remove(self.engine, 'rollback', self._rollback)


class _FirstCallSpy:
    """A driver whose first method call records what the database says then."""

    def __init__(self, driver, look):
        self._driver = driver
        self._look = look
        self.seen = None

    def __getattr__(self, name):
        value = getattr(self._driver, name)
        if not callable(value) or name.startswith('_'):
            return value

        def call(*args, **kwargs):
            if self.seen is None:
                self.seen = (name, self._look())
            return value(*args, **kwargs)
        return call


@pytest.mark.parametrize('operation', sorted(flows.FAMILIES))
def test_journal_start_rides_with_the_first_status_change_before_the_backend(
        database, driver, notifier, coordinator, operation):
    assert operation in SCENARIOS, (
        'family %s has no scenario here: add one so its journal rule is '
        'checked' % operation)
    family = flows.FAMILIES[operation]
    setup_ops = helpers.make_ops(driver, notifier, coordinator)
    given = SCENARIOS[operation](setup_ops)
    store = given.pop('store', None)
    peers = given.pop('peers', None)
    subject = given[family.subject.name]
    subject_id = subject if isinstance(subject, str) else subject.id
    rtype = operations.RESOURCE_TYPES[family.subject.type]
    transition = rtype.transitions.of(operation, family.subject.name)

    def look():
        rows = [r for r in db.journal_get_all(HOST)
                if r['operation'] == operation]
        status = rtype.cls.get_by_id(subject_id, read_deleted=True).status
        return rows, status

    spy = _FirstCallSpy(driver, look)
    ops = helpers.make_ops(spy, notifier, coordinator)
    ops.peers = peers
    txns = _Transactions(db.get_engine())
    try:
        helpers.run(ops, family, store=store, **given)
    finally:
        txns.close()

    if spy.seen is not None:  # (a family may only change the database)
        method, (rows, status) = spy.seen
        assert len(rows) == 1, ('%s: no journal row before driver.%s'
                                % (operation, method))
        held = sorted(rid for _n, _t, rid in rows[0]['resources'])
        assert subject_id in held
        assert status == (transition.via or status), (
            '%s: subject %s, not %s, when driver.%s ran'
            % (operation, status, transition.via, method))
    if transition.changes_status:
        table = {'volume': 'volumes', 'snapshot': 'snapshots',
                 'attachment': 'volume_attachment',
                 'group': 'groups',
                 'group_snapshot': 'group_snapshots',
                 'service': 'services',
                 'backup': 'backups'}[family.subject.type]
        first = next(t for t in txns.committed
                     if any('INTO OPERATIONS' in s for s in t))
        assert any(table.upper() in s.split() for s in first), (
            '%s: the journal row committed without the status change: %s'
            % (operation, first))
    assert db.journal_get_all(HOST) == []
