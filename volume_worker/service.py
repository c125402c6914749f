"""Start-up, RPC servers, periodic tasks and graceful drain of a worker process.

One ``BackendService`` per enabled backend: its driver (set up with retry and
back-off), manager, RPC server(s), heartbeat and capability reports.
"""

import json
import os
import threading
import time

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import importutils

from drivers import configuration as driver_configuration
from volume_worker import cluster as cluster_mod
from volume_worker import concurrency
from volume_worker import coordination
from volume_worker.db import api as db
from volume_worker import events
from volume_worker import exception
from volume_worker import image_store
from volume_worker import keymgr
from volume_worker.db import migration
from volume_worker.flows import failover as failover_flows
from volume_worker.flows import reschedule
from volume_worker.flows import runner as flow_runner
from volume_worker import health
from volume_worker import manager as volume_manager
from volume_worker import objects
from volume_worker import operations
from volume_worker import opts
from volume_worker import peers as peer_api
from volume_worker import reporting
from volume_worker import recovery
from volume_worker import rpc
from volume_worker import rpcapi
from volume_worker import systemd

LOG = logging.getLogger(__name__)

TICK = 0.5  # longest sleep of a periodic loop: how soon it sees a stop
EXPORT_BATCH = 500  # volumes per ensure_exports call at start-up
# Report intervals after which a heartbeat loop that has not turned holds
# back systemd's watchdog.
HEARTBEAT_STALL = 3
REPORT_DEBOUNCE = 1.0  # least seconds between two reports after changes


def load_driver(conf, backend_name, host, active_backend_id=None,
                cluster_name=None):
    opts.register_backend_opts(conf, backend_name)
    driver_path = conf[backend_name].volume_driver
    configuration = driver_configuration.Configuration(
        [], config_group=backend_name, conf=conf)
    try:
        driver_cls = importutils.import_class(driver_path)
    except (ImportError, ValueError) as exc:  # a configuration error
        raise exception.DriverNotFound(backend=backend_name,
                                       path=driver_path, reason=exc) from None
    from volume_worker.objects import lookup
    return driver_cls(configuration=configuration, host=host,
                      active_backend_id=active_backend_id,
                      cluster_name=cluster_name,
                      db=lookup.DriverLookup())


def extra_capabilities(conf, backend_name):
    """The backend's ``extra_capabilities`` option as a dict ({} if bad)."""
    text = conf[backend_name].extra_capabilities or '{}'
    try:
        value = json.loads(text)
    except ValueError as exc:
        value = exc
    if not isinstance(value, dict):
        LOG.error('[%s] extra_capabilities must be a JSON object, not %r '
                  '(%s); ignored', backend_name, text[:200], value)
        return {}
    return value


def server_names(conf, backend_name):
    """The RPC server names of a backend: host@backend (and cluster@backend)."""
    names = ['%s@%s' % (conf.host, backend_name)]
    if cluster_mod.cluster_name(conf):
        names.append(cluster_mod.backend_name(conf, backend_name))
    return names


def size_connection_pools(conf):
    """Give oslo.messaging's connection pools room for every request at once.

    Each RPC server runs up to ``executor_thread_pool_size`` requests at a
    time, and each request publishes notifications (or its reply) through a
    pooled connection of the transport. With fewer connections than that,
    senders queue for one (oslo.messaging logs "Connection pool limit
    exceeded" for every wait). Unless ``[oslo_messaging_rabbit]
    rpc_conn_pool_size`` is set in the configuration, it becomes the
    concurrency of all this worker's RPC servers plus a reserve for the
    periodic reports; connections are opened only as they are needed.
    """
    servers = sum(len(server_names(conf, name))
                  for name in conf.enabled_backends)
    needed = (conf.executor_thread_pool_size * servers +
              opts.CONNECTION_POOL_RESERVE)
    section = conf.oslo_messaging_rabbit
    if section.rpc_conn_pool_size >= needed:
        return
    if _set_by_operator(conf, 'rpc_conn_pool_size', 'oslo_messaging_rabbit'):
        LOG.warning('[oslo_messaging_rabbit] rpc_conn_pool_size = %d is below '
                    'this worker\'s concurrency (%d requests at a time, plus '
                    'reports): bursts will wait for connections',
                    section.rpc_conn_pool_size, needed)
        return
    conf.set_default('rpc_conn_pool_size', needed,
                     group='oslo_messaging_rabbit')
    LOG.debug('rpc_conn_pool_size sized to %d', needed)


def _set_by_operator(conf, name, group):
    try:
        location = conf.get_location(name, group).location
    except Exception:
        return True
    return location not in (cfg.Locations.opt_default,
                            cfg.Locations.set_default)


class BackendService:
    """One backend: its driver, manager, RPC servers and periodic tasks.

    Everything slow runs apart, per backend: set-up (retried forever with
    capped back-off), the heartbeat, the capability reports (whose stats
    call may hang). None of them waits for another, nor for another
    backend.
    """

    def __init__(self, conf, backend_name, transport, notification_transport,
                 coordinator):
        self.conf = conf
        self.backend_name = backend_name
        self.host = '%s@%s' % (conf.host, backend_name)
        self.transport = transport
        self.coordinator = coordinator
        self.clustered = bool(cluster_mod.cluster_name(conf))
        # The name the backend's resources and journal rows carry:
        # cluster@backend for a member of a cluster, else self.host.
        self.identity = cluster_mod.backend_name(conf, backend_name)
        cluster = self.identity if self.clustered else None
        self.service = objects.Service.get_or_create(
            self.host, conf.volume_topic, cluster_name=cluster)
        if self.service.cluster_name != cluster:
            self.service.cluster_name = cluster
            self.service.save()
        # After a failover the driver serves the replication target.
        self.driver = load_driver(conf, backend_name, self.host,
                                  self.service.active_backend_id,
                                  self.service.cluster_name)
        cluster_mod.check_driver(conf, self.host, self.driver)
        if not self.driver.supported:
            LOG.warning('Driver %s of backend %s is marked unsupported (its '
                        'SUPPORTED is False): it is kept for compatibility '
                        'only, without the support of its maintainers, and '
                        'may be removed', type(self.driver).__name__,
                        self.host)
        self.notifier = rpc.Notifier(notification_transport,
                                     'volume-worker.%s' % self.host)
        self.reporter = reporting.CapabilityReporter(
            self.host, self.driver,
            rpcapi.SchedulerReportAPI(conf, transport),
            probe=events.FanoutProbe(conf.transport_url, conf.scheduler_topic),
            extra_capabilities=extra_capabilities(conf, backend_name),
            stats_timeout=conf.backend_stats_timeout,
            service_facts=self._service_facts, cluster_name=cluster,
            backend_name=self.driver.configuration.safe_get(
                'volume_backend_name') or backend_name,
            usage_backend=self.identity)
        self.reporter.serving = False  # until _prepare starts serving
        self.lease_timeout = conf.lease_timeout if self.clustered else None
        self.manager = volume_manager.VolumeManager(
            conf, self.identity, self.driver, flow_runner.FlowRunner(
                self.identity, owner=self.host,
                lease_timeout=self.lease_timeout),
            coordinator, self.notifier, self.reporter, member=self.host)
        self.manager.operations.rescheduler = reschedule.Rescheduler(
            reschedule.SchedulerAPI(conf, transport),
            conf.scheduler_max_attempts)
        self.manager.operations.frozen = bool(self.service.frozen)
        self.manager.operations.peers = peer_api.Peers(
            rpcapi.VolumeAPI(conf, transport),
            create_timeout=conf.migration_create_volume_timeout_secs)
        self.manager.operations.image_service = image_store.from_conf(conf)
        _sweep_imports(self.manager.operations.image_service)
        self.driver.key_manager = keymgr.API(conf)
        self.servers = []
        self.ready = False
        self.setup_attempts = 0
        # Set once set-up has succeeded, or failed for the first time.
        self.first_attempt = concurrency.event()
        self._stopping = concurrency.event()  # no new servers, no set-up
        self._halted = concurrency.event()  # no heartbeats, no reports
        self._serve_lock = threading.Lock()
        self.on_ready = None  # called when it becomes ready after failing
        self.paused = None  # why it stopped consuming (locks unreachable)
        self._taking_over = False

    def _service_facts(self):
        # From the row: failover, freeze and thaw change it through objects
        # of their own.
        row = db.service_get(self.service.id)
        return {'replication_status': row['replication_status'],
                'active_backend_id': row['active_backend_id']}

    def start(self):
        """Heartbeat and reports at once; set-up and serving in the background."""
        self._threads = [concurrency.spawn(self._heartbeat_loop),
                         concurrency.spawn(self._report_loop),
                         concurrency.spawn(self._prepare)]
        if self.clustered:
            self._threads.append(concurrency.spawn(self._lease_loop))
            self._threads.append(concurrency.spawn(self._lock_backend_loop))

    # -- start-up ------------------------------------------------------------

    def _prepare(self):
        """Set the driver up (retried forever), recover, then serve."""
        delay = 1.0
        while not self._stopping.is_set():
            self.setup_attempts += 1
            try:
                self.init_host()
                break
            except Exception as exc:
                reason = 'driver set-up failed (attempt %d): %s' % (
                    self.setup_attempts, exc)
                self.reporter.setup_failing(reason[:250])
                self.reporter.mark_dirty()
                LOG.warning('Backend %s: %s; retrying in %.0f s; requests '
                            'wait in its queue', self.host, reason, delay)
                self.first_attempt.set()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.conf.driver_setup_max_interval)
        with self._serve_lock:  # against a stop_consuming meanwhile
            if self._stopping.is_set():
                return
            self.start_rpc()
        concurrency.spawn(self._ensure_exports)
        self.ready = True
        self.reporter.serving = True
        self.reporter.mark_dirty()
        self.first_attempt.set()
        if self.on_ready is not None:
            self.on_ready(self)
        self.recover_late()

    def init_host(self):
        """Set the driver up, recover unfinished work, learn the capabilities.

        Raises when set-up or recovery fails; both are safe to run again.
        """
        if not self.driver.initialized:
            self._setup_driver()
        if self.clustered:
            self._join_cluster()
        started = time.monotonic()
        # In a cluster the peers serve meanwhile: resources are reset only
        # under their locks (as do_cleanup does).
        summary = recovery.recover(self.manager.operations,
                                   rpc.admin_context(), late=False,
                                   running=self.clustered)
        self.service.recovered_at = db.utcnow()
        self.service.save()
        LOG.info('Backend %s recovered in %.2fs: %s', self.host,
                 time.monotonic() - started, summary)
        updated = recovery.sync_provider_info(self.identity, self.driver)
        if any(updated):
            LOG.info('Backend %s: provider ids of %d volumes and %d '
                     'snapshots updated by the driver', self.host, *updated)
        self._init_capabilities()
        settled = recovery.settle_pools(self.identity, self.driver,
                                        self.manager.default_pool)
        if settled:
            LOG.info('Backend %s: %d volumes without a pool placed in theirs',
                     self.host, settled)
        before, now = db.pool_usage_recompute(self.identity)
        if before:
            LOG.warning('Backend %s: pool usage counters rebuilt from the '
                        'volumes where they differed: %s, now %s', self.host,
                        before, now)

    def _join_cluster(self):
        """What this worker made alone (host@backend) becomes its cluster's
        (cluster@backend), as Cinder's start-up does, so every member
        serves it; its unfinished operations go along."""
        moved = db.move_to_backend(self.host, self.identity)
        if any(moved.values()):
            LOG.info('Backend %s joined cluster %s with its resources: %s',
                     self.host, self.identity, ', '.join(
                         '%d %s' % (n, table) for table, n in moved.items()
                         if n))

    def _setup_driver(self):
        ctxt = rpc.admin_context()
        concurrency.run_blocking(self.driver.do_setup, ctxt)
        concurrency.run_blocking(self.driver.check_for_setup_error)
        concurrency.run_blocking(self.driver.set_throttle)
        self.driver.set_initialized()
        LOG.info('Driver %s of backend %s is ready',
                 type(self.driver).__name__, self.host)

    def _init_capabilities(self):
        """The driver's capabilities, and the pool new volumes go to."""
        try:
            capabilities = self.reporter.capabilities(discover=True)
            failover_flows.settle_replication_status(self.service,
                                                     capabilities)
        except Exception as exc:
            LOG.warning('Capabilities of %s unknown for now (%s); volumes '
                        'without a pool go to its first reported one',
                        self.host, exc)
            capabilities = {}
        pools = capabilities.get('pools') or []
        if pools:
            self.manager.default_pool = pools[0].get('pool_name')
        else:
            self.manager.default_pool = (
                capabilities.get('volume_backend_name') or
                self.reporter.backend_name)

    def recover_late(self):
        """Resume what needs other backends' workers (a migration), once
        this one serves: a destination that does not serve yet finds the
        requests in its queue when it does."""
        try:
            summary = recovery.recover(self.manager.operations,
                                       rpc.admin_context(), running=True,
                                       late=True)
            if summary['resumed'] or summary['failed']:
                LOG.info('Backend %s resumed its migrations: %s', self.host,
                         summary)
        except Exception:
            LOG.exception('Late recovery of %s failed', self.host)

    def _ensure_exports(self):
        """Recreate the exports of this backend's settled volumes.

        A target (tgtd, ...) may not have outlived the worker or the host.
        It runs in the background once the backend serves requests: with
        thousands of volumes it takes long, and an operation on a volume
        (an attach, a delete) sets up or removes that volume's export
        itself. Volumes go to the driver's ``ensure_exports`` in batches,
        each with the volumes' locks that are free at that moment; a
        volume an operation holds is left to that operation, and one
        changed meanwhile is left alone. One volume failing is logged and
        does not hold the others back.
        """
        started = time.monotonic()
        ctxt = rpc.admin_context()
        settled = [objects.VolumeStatus.AVAILABLE,
                   objects.VolumeStatus.IN_USE]
        ids = db.volume_ids_exported(self.identity, settled)
        counts = {'ensured': 0, 'failed': 0, 'skipped': 0}
        for first in range(0, len(ids), EXPORT_BATCH):
            if self._stopping.is_set():
                return
            chunk = ids[first:first + EXPORT_BATCH]
            names = {operations.lock_name('volume', vid): vid
                     for vid in chunk}
            with self.coordinator.locks_free_now(names) as held:
                # Read again under the locks: only what is still settled.
                volumes = objects.Volume.get_all(filters={
                    'id': [names[name] for name in held],
                    'backend': self.identity, 'status': settled})
                volumes = [v for v in volumes if v.provider_location]
                counts['skipped'] += len(chunk) - len(volumes)
                self._ensure_batch(ctxt, volumes, counts)
        if any(counts.values()):
            LOG.info('Backend %s: %d exports ensured, %d failed, %d left to '
                     'the operations holding them, in %.2fs', self.host,
                     counts['ensured'], counts['failed'], counts['skipped'],
                     time.monotonic() - started)

    def _ensure_batch(self, ctxt, volumes, counts):
        if not volumes:
            return
        try:
            updates, failures = concurrency.run_blocking(
                self.driver.ensure_exports, ctxt, volumes)
        except Exception as exc:
            updates, failures = {}, {v.id: str(exc) for v in volumes}
        for volume in volumes:
            if volume.id in failures:
                counts['failed'] += 1
                LOG.error('Could not ensure the export of volume %s on %s: '
                          '%s', volume.id, self.host, failures[volume.id])
                continue
            counts['ensured'] += 1
            update = updates.get(volume.id)
            if update:
                for key, value in update.items():
                    setattr(volume, key, value)
                volume.save()

    def start_rpc(self):
        targets = server_names(self.conf, self.backend_name)
        for server_name in targets:
            target = messaging.Target(topic=self.conf.volume_topic,
                                      server=server_name)
            server = rpc.get_rpc_server(self.transport, target,
                                        [self.manager])
            server.start()
            self.servers.append(server)
        LOG.info('Backend %s listening on %s as %s', self.host,
                 self.conf.volume_topic, ', '.join(targets))

    # -- a member of a cluster: leases, takeover, its lock backend ----------

    def _lease_loop(self):
        """Every third of ``lease_timeout``: renew this member's leases
        (one UPDATE) and take over the operations of peers whose lease
        expired."""
        interval = self.lease_timeout / 3.0
        while not self._halted.wait(interval):
            self.renew_leases()
            if self.ready and not self.paused and not self._taking_over:
                self._taking_over = True
                concurrency.spawn(self._take_over)

    def renew_leases(self):
        try:
            db.journal_renew(self.host, self.lease_timeout)
        except Exception as exc:
            LOG.error('Leases of %s not renewed: %s (past %ss without a '
                      'renewal, peers take its operations over)', self.host,
                      exc, self.lease_timeout)

    def _take_over(self):
        try:
            summary = recovery.recover(self.manager.operations,
                                       rpc.admin_context(), running=True,
                                       peers_only=True)
            if summary['resumed'] or summary['failed']:
                LOG.warning('Backend %s took over operations of peers whose '
                            'lease expired: %s', self.host, summary)
        except Exception:
            LOG.exception('Takeover by %s failed; tried again at the next '
                          'renewal', self.host)
        finally:
            self._taking_over = False

    def _lock_backend_loop(self):
        """Check the lock backend as often as the leases are renewed (apart
        from them: a check may wait for a timeout)."""
        while not self._halted.wait(self.lease_timeout / 3.0):
            self._follow_lock_backend()

    def _follow_lock_backend(self):
        """Without its lock backend a member takes no new work.

        It stops consuming (cancels its consumers: requests stay in the
        queues, for the peers that still reach the locks, or for itself
        later) and starts again once the lock backend answers. Requests
        taken before are refused at their first lock, with the reason.
        """
        reason = self.coordinator.unreachable()
        if reason and not self.paused and self.ready:
            self._pause(reason)
        elif not reason and self.paused:
            self._unpause()

    def _pause(self, reason):
        with self._serve_lock:
            if self._stopping.is_set():
                return
            self.paused = reason
            servers, self.servers = self.servers, []
        LOG.error('Backend %s stops taking requests: its lock backend is '
                  'unreachable (%s)', self.host, reason)
        for server in servers:
            _cancel_consumers(server, self.host)
            server.stop()
        concurrency.spawn(lambda: [s.wait() for s in servers])

    def _unpause(self):
        with self._serve_lock:
            if self._stopping.is_set():
                return
            self.start_rpc()
            self.paused = None
        LOG.warning('Backend %s takes requests again: its lock backend '
                    'answers', self.host)

    # -- periodic tasks -------------------------------------------------------

    def _heartbeat_loop(self):
        while True:
            self.heartbeat_turned = time.monotonic()  # for the watchdog
            self._heartbeat()
            if self._halted.wait(self.conf.report_interval):
                return

    def _heartbeat(self):
        """The service row's updated_at, with the backend's state.

        Written straight to the row: the heartbeat shares no object with
        the other threads of the backend.
        """
        reporter = self.reporter
        try:
            db.service_update(self.service.id, {
                'updated_at': db.utcnow(),
                'backend_state': reporter.state,
                'backend_state_reason': (reporter.state_reason or '')[:255]
                or None})
            self.last_heartbeat = time.monotonic()  # for /healthz
        except Exception:
            LOG.exception('Heartbeat of %s failed', self.host)

    def _report_loop(self):
        """Reports every polling interval, and soon after each change.

        A change (``reporter.mark_dirty``) is reported at most
        ``REPORT_DEBOUNCE`` after the previous report, so a burst of
        operations sends a handful. The first report waits for the first
        set-up attempt (or one interval).
        """
        interval = self.conf.backend_stats_polling_interval
        self.first_attempt.wait(interval)
        next_due = time.monotonic()
        reporter = self.reporter
        while not self._halted.is_set():
            now = time.monotonic()
            due_at = next_due
            if reporter.dirty:
                due_at = min(due_at, reporter.last_published + REPORT_DEBOUNCE)
            if now >= due_at:
                if now >= next_due:
                    next_due = now + interval
                self._publish()
            elif reporter.dirty:  # debounced: wait out the rest
                self._halted.wait(min(due_at - now, TICK))
            else:
                reporter.wait_dirty(min(due_at - now, TICK))

    def _publish(self):
        try:
            self.reporter.publish()
        except Exception:
            LOG.exception('Capability report of %s failed', self.host)

    # -- shutdown ------------------------------------------------------------

    def stop_consuming(self):
        """Stop taking messages from the broker.

        Messages already taken (polled before the stop) still run: they
        may be acknowledged already, so refusing them would lose them.
        Messages the broker sends from now on are never acknowledged and
        go back to the queue when the connection closes. A backend still
        setting up stops trying and never starts serving.
        """
        with self._serve_lock:
            self._stopping.set()
            servers = list(self.servers)
        for server in servers:
            _cancel_consumers(server, self.host)
            server.stop()

    def halt(self):
        """End the heartbeat and the reports (after the drain)."""
        self._halted.set()

    def wait(self):
        """Wait for every message taken to be processed, then disconnect."""
        for server in self.servers:
            server.wait()
        self.servers = []
        self.manager.operations.accepting = False


def _cancel_consumers(server, name):
    """Tell the broker to stop delivering to this server, before stopping it.

    oslo.messaging's ``stop()`` only stops polling: the consumer stays
    subscribed, the connection's heartbeat keeps reading, and the RPC
    listener acknowledges each request as it is read, into a buffer nobody
    polls any more; a request sent during the drain would be lost. Cancelling
    the consumers first (as the driver's own ``reset()`` does, under the
    connection lock) leaves such requests in the queue for the next start.
    Requests read before the cancel are processed by ``stop()`` as usual.
    """
    try:
        connection = server.listener._poll_style_listener.conn.connection
        with connection._connection_lock:
            for consumer, tag in list(connection._consumers.items()):
                # No wait for the broker's reply: the poll loop reads it.
                consumer.queue.channel.basic_cancel(str(tag), nowait=True)
            # Nor subscribe again if the connection is re-established.
            connection._consumers.clear()
            connection._new_tags.clear()
    except Exception as exc:  # another driver, or the broker is away
        LOG.warning('Could not cancel the consumers of %s before stopping: '
                    '%s', name, exc)


class WorkerService:
    """The whole process: database, locks, every backend."""

    def __init__(self, conf=None):
        self.conf = conf or cfg.CONF
        self.backends = []
        self.started = False
        self._halted = False

    def start(self):
        """Queues first, then the database, locks and drivers, then serve.

        Each backend's queues are declared before anything slow (database
        migration, driver set-up, recovery): a request sent from then on
        waits on the broker for its backend. Each backend's RPC server
        starts as soon as that backend is set up and has recovered, so
        nothing is taken before it can be served (see
        ``rpc.declare_server_queues``).
        """
        conf = self.conf
        size_connection_pools(conf)
        transport = rpc.get_transport(conf)
        notification_transport = rpc.get_notification_transport(conf)
        for name in conf.enabled_backends:
            servers = server_names(conf, name)
            rpc.declare_server_queues(transport, conf.volume_topic, servers)
            LOG.info('Queues of %s declared: requests wait there until it is '
                     'ready', ', '.join(servers))
        db.configure(conf.database.connection)
        objects.configure_names(conf.volume_name_template,
                                conf.snapshot_name_template)
        if migration.db_sync():
            LOG.info('Database schema migrated to %s',
                     migration.head_revision())
        self.transport = transport
        self.listener = health.serve(conf, self)
        self.coordinator = coordination.Coordinator(
            cluster_mod.coordination_url(
                conf, lambda name, group: _set_by_operator(conf, name,
                                                           group)),
            member_id=conf.host)
        self.coordinator.start()
        _init_os_brick(conf)
        for name in conf.enabled_backends:
            self.backends.append(BackendService(
                conf, name, transport, notification_transport,
                self.coordinator))
        for backend in self.backends:
            backend.on_ready = self._ready_late
            backend.start()
        # Each backend serves as soon as it is ready, whatever the others
        # do; the line below (and systemd's READY) only waits to say how
        # each one started: for its first set-up attempt,
        # backend_start_wait at most (a do_setup hanging on one array must
        # not hold the others' readiness until systemd gives up on the
        # whole process).
        deadline = time.monotonic() + conf.backend_start_wait
        for backend in self.backends:
            backend.first_attempt.wait(max(0.0, deadline - time.monotonic()))
        LOG.info('volume-worker started on %s (%s executor): %s',
                 conf.host, concurrency.mode(), ', '.join(
                     b.host if b.ready else '%s (down: %s)' % (
                         b.host, b.reporter.state_reason)
                     for b in self.backends))
        self.started = True
        self._watchdog = concurrency.spawn(self._watchdog_loop)

    def _watchdog_loop(self):
        """systemd's watchdog, pinged while every heartbeat loop turns.

        A heartbeat that fails (the database away) still turns its loop; a
        loop stuck (a hung call, a blocked event loop) stops the pings, and
        systemd restarts the process after ``WatchdogSec``.
        """
        notifier = systemd.notifier()
        was_turning = True
        while not self._halted:
            turning = systemd.loops_turning(
                [getattr(b, 'heartbeat_turned', None) for b in self.backends],
                HEARTBEAT_STALL * self.conf.report_interval)
            if turning:
                notifier.watchdog()
            elif was_turning and notifier.interval is not None:
                LOG.error('A heartbeat loop is stuck: systemd\'s watchdog is '
                          'no longer pinged and will restart the worker')
            was_turning = turning
            concurrency.sleep(TICK)

    def status_line(self):
        """One line for ``systemctl status``: what is served, what is not."""
        up = [b.host for b in self.backends if b.ready]
        down = [b.host for b in self.backends if not b.ready]
        text = 'serving %s' % (', '.join(up) or 'no backend')
        if down:
            text += '; set-up failing, retried: %s' % ', '.join(down)
        return text

    def _ready_late(self, backend):
        """A backend ready after the started line: say so (and to systemd)."""
        if not self.started:
            return  # the started line says it
        LOG.info('Backend %s is ready after %d set-up attempts',
                 backend.host, backend.setup_attempts)
        systemd.notifier().status(self.status_line())

    def stop(self, graceful=True):
        """Stop taking messages, drain in-flight work, leave the rest journaled."""
        timeout = self.conf.graceful_shutdown_timeout if graceful else 0
        deadline = time.monotonic() + timeout
        # Neither server.stop() (it may sit in a reconnect loop while the
        # broker is away) nor server.wait() has a timeout: run them in the
        # background and give up at the deadline; what still runs then
        # stays journaled and resumes at the next start.
        finished = []

        def drain(backend):
            try:
                backend.stop_consuming()
                LOG.info('Backend %s takes no new requests; finishing those '
                         'in flight', backend.host)
                backend.wait()
            except Exception:
                LOG.exception('Draining backend %s failed', backend.host)
            finished.append(backend)

        for backend in self.backends:
            concurrency.spawn(drain, backend)
        while (len(finished) < len(self.backends)
               and time.monotonic() < deadline):
            concurrency.sleep(0.05)
        drained = len(finished) == len(self.backends)
        for backend in self.backends:
            if backend not in finished:
                LOG.warning('Backend %s still has operations in flight after '
                            '%ss; they stay journaled and resume at the next '
                            'start', backend.host, timeout)
        for backend in self.backends:
            backend.halt()
            backend.notifier.close(max(1.0, deadline - time.monotonic()))
        self._halted = True
        if drained:
            self.coordinator.stop()
        return drained


_os_brick_ready = False


def _init_os_brick(conf):
    """Prepare os-brick once per process (drivers attach volumes through it).

    Its locks go to [oslo_concurrency] lock_path, or $state_path/locks.
    Running as root with no privsep daemon, its privileged calls run in
    this process.
    """
    global _os_brick_ready
    if _os_brick_ready:
        return
    import oslo_concurrency.lockutils  # noqa: F401 (registers its options)

    from drivers import datapath
    section = getattr(conf, 'oslo_concurrency', None)
    lock_path = (getattr(section, 'lock_path', None)
                 or os.path.join(conf.state_path, 'locks'))
    try:
        os.makedirs(lock_path, exist_ok=True)
        datapath.init_os_brick(conf, lock_path=lock_path,
                               in_process_privsep=os.geteuid() == 0)
    except Exception:
        LOG.exception('os-brick set-up failed; attaching volumes will not '
                      'work')
        return
    _os_brick_ready = True


def _sweep_imports(images):
    """Remove what operator imports killed midway left in the image store."""
    try:
        swept = images.sweep_abandoned_imports()
    except OSError:
        LOG.exception('Could not sweep the image store for abandoned imports')
        return
    if swept:
        LOG.warning('Removed %d image(s) left by interrupted imports: %s',
                    len(swept), ', '.join(swept))
