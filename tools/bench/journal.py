"""What the operation journal costs per operation, and where flow CPU goes.

In-process, against a fresh SQLite database, file locks and the fake driver:
each operation goes through lock-and-load and its flow, as an endpoint runs
it, with ``FlowRunner(journal=True)`` and ``(journal=False)``; CPU is this
thread's time, database writes are counted at the cursor. Volume create and
delete, snapshot create and delete (a two-resource operation).
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

    def publish(self, *args, **kwargs):
        pass

    def error(self, *args, **kwargs):
        pass

    def refused(self, *args, **kwargs):
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


def _ops(runner, deps, backend, coordinator):
    from volume_worker import operations

    class Reporter:
        def mark_dirty(self):
            pass
    return operations.Operations(backend, deps['driver'], coordinator, runner,
                                 deps['notifier'], Reporter())


def _run(ops, family, **given):
    with ops.acquire(family, None, **given) as op:
        op.run()


def _create(ops, backend):
    from volume_worker import objects
    from volume_worker.flows import create_volume
    volume = objects.Volume(id=str(uuid.uuid4()), size=1,
                            host=backend + '#pool1')
    volume.obj_fill_unset()
    _run(ops, create_volume.FAMILY, volume=volume)
    return volume.id


def _delete(ops, volume_id):
    from volume_worker.flows import delete_volume
    _run(ops, delete_volume.FAMILY, volume=volume_id)


def _snapshot_create(ops, volume_id):
    from volume_worker import objects
    from volume_worker.flows import snapshot
    snap = objects.Snapshot(id=str(uuid.uuid4()), volume_id=volume_id)
    snap.obj_fill_unset()
    _run(ops, snapshot.CREATE, snapshot=snap)
    return snap.id


def _snapshot_delete(ops, snapshot_id):
    from volume_worker.flows import snapshot
    _run(ops, snapshot.DELETE, snapshot=snapshot_id,
         store={'unmanage_only': False})


def _copy(ops, backend, snapshot_id):
    from volume_worker import objects
    from volume_worker.flows import clone
    volume = objects.Volume(id=str(uuid.uuid4()), size=1,
                            host=backend + '#pool1', snapshot_id=snapshot_id)
    volume.obj_fill_unset()
    _run(ops, clone.FROM_SNAPSHOT, volume=volume)
    return volume.id


def _extend(ops, volume_id, new_size):
    from volume_worker.flows import extend
    _run(ops, extend.FAMILY, volume=volume_id, store={'new_size': new_size})


def _revert(ops, volume_id, snapshot_id):
    from volume_worker.flows import revert
    _run(ops, revert.FAMILY, volume=volume_id, snapshot=snapshot_id)


CONNECTOR = {'host': 'bench', 'initiator': 'iqn.2026-11.bench:consumer'}


def _attach(ops, volume_id):
    from volume_worker import objects
    from volume_worker.flows import attachment
    att = objects.VolumeAttachment(id=str(uuid.uuid4()), volume_id=volume_id,
                                   connector=CONNECTOR, attach_mode='rw')
    att.obj_fill_unset()
    _run(ops, attachment.UPDATE, attachment=att, volume=volume_id)
    _run(ops, attachment.COMPLETE, attachment=att.id, volume=volume_id)
    return att.id


def _detach(ops, volume_id, attachment_id):
    from volume_worker.flows import attachment
    _run(ops, attachment.DELETE, attachment=attachment_id, volume=volume_id)


def _legacy(family_name, ops, volume_id):
    from volume_worker.flows import connection
    _run(ops, getattr(connection, family_name), volume=volume_id,
         store={'connector': CONNECTOR, 'force': False})


def _unmanage(ops, volume_id):
    from volume_worker.flows import delete_volume
    _run(ops, delete_volume.FAMILY, volume=volume_id,
         store={'unmanage_only': True})


def _manage(ops, backend, name):
    from volume_worker import objects
    from volume_worker.flows import manage
    volume = objects.Volume(id=str(uuid.uuid4()), size=0,
                            host=backend + '#pool1')
    volume.obj_fill_unset()
    _run(ops, manage.VOLUME, volume=volume,
         store={'existing_ref': {'source-name': name}})
    return volume.id


def _transfer(ops, volume_id):
    from volume_worker.flows import manage
    _run(ops, manage.TRANSFER, volume=volume_id,
         store={'new_user': 'u', 'new_project': 'p', 'no_snapshots': False})


def _retype(ops, volume_id, type_id):
    from volume_worker.flows import retype
    _run(ops, retype.FAMILY, volume=volume_id,
         store={'new_type_id': type_id, 'migration_policy': 'never'})


class _Peers:
    """The destination backend, in this process: only its capabilities are
    asked when the driver migrates a volume itself."""

    def __init__(self, driver):
        self.driver = driver

    def capabilities(self, context, backend):
        return self.driver.get_volume_stats()


def _migrate(ops, volume_id, dest):
    from volume_worker.flows import migrate
    _run(ops, migrate.FAMILY, volume=volume_id,
         store={'dest_backend': dest, 'force_host_copy': False})


def _new_type():
    from volume_worker import objects
    vtype = objects.VolumeType(id=str(uuid.uuid4()),
                               name='bench-%s' % uuid.uuid4().hex,
                               extra_specs={})
    vtype.create()
    return vtype.id


def _group_create(ops, backend):
    from volume_worker import objects
    from volume_worker.flows import group
    new = objects.Group(id=str(uuid.uuid4()), host=backend)
    new.obj_fill_unset()
    _run(ops, group.CREATE, group=new)
    return new.id


def _group_add(ops, group_id, members):
    from volume_worker.flows import group
    _run(ops, group.UPDATE, group=group_id, add=members, remove=[])


def _group_snapshot(ops, group_id, members):
    from volume_worker import objects
    from volume_worker.flows import group_snapshot
    new = objects.GroupSnapshot(id=str(uuid.uuid4()), group_id=group_id)
    new.obj_fill_unset()
    _run(ops, group_snapshot.CREATE, group_snapshot=new,
         members=sorted(members))
    return new.id


def _group_snapshot_delete(ops, group_snapshot_id):
    from volume_worker.flows import group_snapshot
    _run(ops, group_snapshot.DELETE, group_snapshot=group_snapshot_id,
         members=group_snapshot.member_ids(group_snapshot_id))


def _group_from_group(ops, backend, source_id, members):
    from volume_worker import objects
    from volume_worker.flows import group_from_src
    new = objects.Group(id=str(uuid.uuid4()), host=backend,
                        source_group_id=source_id)
    new.obj_fill_unset()
    _run(ops, group_from_src.FROM_GROUP, group=new, sources=sorted(members))
    return new.id


def _group_delete(ops, group_id, members):
    from volume_worker.flows import group
    _run(ops, group.DELETE, group=group_id, members=sorted(members),
         store={'delete_volumes': True})


def _replicated_service(backend, driver):
    from volume_worker import objects
    driver.configuration.conf.set_override(
        'replication_device', [{'backend_id': 'site2'}], group='fake1')
    driver.get_volume_stats(refresh=True)
    service = objects.Service.get_or_create(backend, 'volume-worker')
    service.replication_status = 'enabled'
    service.save()
    return service.id


def _freeze_thaw(ops, service_id):
    from volume_worker.flows import failover
    _run(ops, failover.FREEZE, service=service_id)
    _run(ops, failover.THAW, service=service_id)


def _failover(ops, service_id, target):
    from volume_worker.flows import failover
    _run(ops, failover.FAILOVER, service=service_id,
         store={'secondary_backend_id': target})


def _backup(ops, volume_id, parent_id=None):
    from volume_worker.flows import backup
    from volume_worker import objects
    new = objects.Backup(id=str(uuid.uuid4()), volume_id=volume_id,
                         parent_id=parent_id)
    new.obj_fill_unset()
    _run(ops, backup.CREATE_INCREMENTAL if parent_id else backup.CREATE,
         backup=new)
    return new.id


def _restore(ops, backend, backup_id):
    from volume_worker.flows import restore
    from volume_worker import objects
    volume = objects.Volume(id=str(uuid.uuid4()), size=0,
                            host=backend + '#pool1')
    volume.obj_fill_unset()
    _run(ops, restore.FAMILY, backup=backup_id, volume=volume)
    return volume.id


def _backup_delete(ops, backup_id):
    from volume_worker.flows import backup
    _run(ops, backup.DELETE, backup=backup_id)


def _one_volume(ops, backend):
    _delete(ops, _create(ops, backend))


OPERATIONS = ('create', 'delete', 'snapshot create', 'snapshot delete',
              'copy of snapshot', 'extend', 'revert',
              'attach (update + complete)', 'detach',
              'legacy initialize_connection', 'legacy terminate_connection',
              'accept_transfer', 'unmanage', 'manage_existing', 'retype',
              'migrate (by the driver)',
              'group create', 'group update (add 2 volumes)',
              'group snapshot (2 members)', 'group from group (2 copies)',
              'group snapshot delete',
              'group delete with 2 volumes', 'freeze + thaw',
              'failover (1 volume)', 'failback (1 volume)',
              'backup (fake driver)', 'incremental backup',
              'restore onto a new volume', 'backup delete')


def measure(state_dir, results, n):
    import cProfile
    from common import cprofile_breakdown
    from volume_worker import rpc
    from volume_worker.db import api as db
    from volume_worker.db import migration
    from volume_worker import coordination
    from volume_worker.flows.runner import FlowRunner

    backend = 'bench-%s@fake1' % uuid.uuid4().hex[:6]
    path = os.path.join(state_dir, 'journal-bench.sqlite')
    engine = db.configure('sqlite:///%s' % path)
    migration.db_sync()
    from oslo_config import cfg
    from volume_worker import opts
    opts.register_backup_opts(cfg.CONF)
    cfg.CONF.set_override('posix_path', os.path.join(state_dir, 'backups'),
                          group='backup')
    counter = StatementCounter(engine)
    coordinator = coordination.Coordinator(
        'file://%s' % os.path.join(state_dir, 'journal-bench-locks'))
    try:
        deps = {'context': rpc.admin_context(),
                'driver': make_fake_driver(backend),
                'notifier': NullNotifier()}
        service_id = _replicated_service(backend, deps['driver'])
        # A second backend to migrate to; the fake driver moves volumes
        # itself here (an array that migrates by its own means), so the
        # line measures the migration's machinery, not a data copy (the
        # data path section measures that).
        from volume_worker import objects
        dest = backend.replace('@fake1', '@fake2')
        objects.Service.get_or_create(dest, 'volume-worker')
        deps['driver'].migrate_volume = lambda *args: (True, None)
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
            ops = _ops(FlowRunner(backend, journal=journal), deps, backend,
                       coordinator)
            ops.peers = _Peers(deps['driver'])
            dest_ops = _ops(FlowRunner(dest, journal=journal), deps, dest,
                            coordinator)
            for _ in range(10):
                _one_volume(ops, backend)
            for _ in range(n):
                volume_id = timed((journal, 'create'), _create, ops, backend)
                snapshot_id = timed((journal, 'snapshot create'),
                                    _snapshot_create, ops, volume_id)
                copy_id = timed((journal, 'copy of snapshot'), _copy, ops,
                                backend, snapshot_id)
                timed((journal, 'extend'), _extend, ops, volume_id, 2)
                timed((journal, 'revert'), _revert, ops, volume_id,
                      snapshot_id)
                timed((journal, 'snapshot delete'), _snapshot_delete, ops,
                      snapshot_id)
                attachment_id = timed((journal, 'attach (update + complete)'),
                                      _attach, ops, volume_id)
                timed((journal, 'detach'), _detach, ops, volume_id,
                      attachment_id)
                timed((journal, 'legacy initialize_connection'), _legacy,
                      'INITIALIZE', ops, volume_id)
                timed((journal, 'legacy terminate_connection'), _legacy,
                      'TERMINATE', ops, volume_id)
                timed((journal, 'accept_transfer'), _transfer, ops,
                      volume_id)
                timed((journal, 'retype'), _retype, ops, volume_id,
                      _new_type())
                group_id = timed((journal, 'group create'), _group_create,
                                 ops, backend)
                members = [_create(ops, backend) for _ in range(2)]
                timed((journal, 'group update (add 2 volumes)'), _group_add,
                      ops, group_id, members)
                gs_id = timed((journal, 'group snapshot (2 members)'),
                              _group_snapshot, ops, group_id, members)
                group_copy = timed((journal, 'group from group (2 copies)'),
                                   _group_from_group, ops, backend, group_id,
                                   members)
                timed((journal, 'group snapshot delete'),
                      _group_snapshot_delete, ops, gs_id)
                from volume_worker.db import api as vw_db
                _group_delete(ops, group_copy,
                              vw_db.group_member_ids(group_copy))
                timed((journal, 'group delete with 2 volumes'), _group_delete,
                      ops, group_id, members)
                timed((journal, 'freeze + thaw'), _freeze_thaw, ops,
                      service_id)
                timed((journal, 'failover (1 volume)'), _failover, ops,
                      service_id, 'site2')
                timed((journal, 'failback (1 volume)'), _failover, ops,
                      service_id, 'default')
                full = timed((journal, 'backup (fake driver)'), _backup, ops,
                             volume_id)
                incremental = timed((journal, 'incremental backup'), _backup,
                                    ops, volume_id, full)
                restored = timed((journal, 'restore onto a new volume'),
                                 _restore, ops, backend, incremental)
                _delete(ops, restored)
                _backup_delete(ops, incremental)
                timed((journal, 'backup delete'), _backup_delete, ops, full)
                moving = _create(ops, backend)
                timed((journal, 'migrate (by the driver)'), _migrate, ops,
                      moving, dest)
                _delete(dest_ops, moving)
                spare = _create(ops, backend)
                timed((journal, 'unmanage'), _unmanage, ops, spare)
                adopted = timed((journal, 'manage_existing'), _manage, ops,
                                backend, 'volume-' + spare)
                _delete(ops, adopted)
                _delete(ops, copy_id)
                timed((journal, 'delete'), _delete, ops, volume_id)

        def per_op(journal, op, i):
            totals = acc[(journal, op)]
            return totals[i] / totals[4]

        for op in OPERATIONS:
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

        ops = _ops(FlowRunner(backend, journal=True), deps, backend,
                   coordinator)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(max(20, n // 2)):
            _one_volume(ops, backend)
        profile.disable()
        for name, share in cprofile_breakdown(profile).items():
            results.add(PROFILE_SECTION, name, share * 100, '% CPU')
    finally:
        counter.close()
        coordinator.stop()
        db.dispose()
