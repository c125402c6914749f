"""Every configuration option of the worker, grouped by section.

``list_opts()`` feeds ``oslo-config-generator``; ``set_defaults()`` gives the
library options (transport, database) the defaults this project wants.
"""

import copy
import socket

from oslo_config import cfg

DEFAULT_TRANSPORT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
DEFAULT_DB_CONNECTION = 'sqlite:///$state_path/volume-worker.sqlite'

service_opts = [
    cfg.StrOpt('host', default=socket.gethostname(), sample_default='<hostname>',
               help='Name of this worker host. Each backend is addressed on '
                    'the bus as host@backend.'),
    cfg.StrOpt('cluster',
               help='Name of the cluster this worker belongs to. Workers '
                    'of one cluster share its queue (cluster@backend), its '
                    'database and a shared coordination backend (unless '
                    '[coordination] backend_url is set, '
                    'redis://127.0.0.1:6379). Only drivers that declare '
                    'SUPPORTS_ACTIVE_ACTIVE run clustered.'),
    cfg.IntOpt('workers', default=1, min=1, max=64,
               help='Worker processes serving the enabled backends on this '
                    'host, under one parent that restarts a child that '
                    'dies. Above 1 they form a cluster (named by cluster, '
                    'else by host) and each child is a member of its own, '
                    'host-N.'),
    cfg.IntOpt('lease_timeout', default=30, min=3,
               help='Seconds a clustered worker\'s operations stay its own '
                    'without a renewal of their lease (renewed every third '
                    'of it). Past it, another member of the cluster claims '
                    'them and resumes or reverts them. With Redis locks, '
                    'tooz\'s lock_timeout defaults to the same.'),
    cfg.ListOpt('enabled_backends', default=['backend1'],
                help='Names of the config sections of the backends this '
                     'worker serves. Each section names a volume_driver.'),
    cfg.StrOpt('state_path', default='/var/lib/volume-worker',
               help='Top directory for the worker\'s own state: the default '
                    'SQLite database, lock files, file-backed volumes.'),
    cfg.StrOpt('user',
               help='Unprivileged user (name or uid) the worker runs as. '
                    'Started as root, it starts its privsep daemons (tgtd '
                    'requests in [privsep_tgt], os-brick\'s in '
                    '[privsep_osbrick]) and then becomes this user; a '
                    'state_path owned by root is handed to it. Unset: the '
                    'worker keeps the identity it was started with.'),
    cfg.StrOpt('group',
               help='Group (name or gid) the worker runs as with user. '
                    'Unset: the user\'s primary group.'),
    cfg.StrOpt('volume_topic', default='volume-worker',
               help='RPC topic the worker listens on.'),
    cfg.StrOpt('scheduler_topic', default='volume-scheduler',
               help='RPC topic capability reports are fanned out to.'),
    cfg.IntOpt('report_interval', default=10, min=1,
               help='Seconds between heartbeats (service row updated_at).'),
    cfg.IntOpt('backend_stats_polling_interval', default=60, min=1,
               help='Seconds between capability reports to the scheduler.'),
    cfg.StrOpt('executor', default='eventlet',
               choices=[('eventlet', 'green threads (monkey-patched)'),
                        ('threading', 'native threads')],
               help='Concurrency model of the worker process.'),
    cfg.IntOpt('driver_thread_pool_size', default=64, min=1,
               help='Native threads that run blocking driver calls, so the '
                    'heartbeat and reports never wait behind a slow backend.'),
    cfg.IntOpt('graceful_shutdown_timeout', default=60, min=0,
               help='Seconds to let in-flight operations finish after '
                    'SIGTERM before the worker journals them and exits.'),
    cfg.IntOpt('backend_stats_timeout', default=30, min=1,
               help='Seconds a capability report waits for the driver\'s '
                    'get_volume_stats. Past that the report goes out with '
                    'the last stats known and backend_state down (the call '
                    'goes on in its own native thread; the next report '
                    'after it returns is up again). get_capabilities waits '
                    'as long for init_capabilities.'),
    cfg.IntOpt('driver_setup_max_interval', default=60, min=1,
               help='Longest pause, in seconds, between two attempts to set '
                    'up a backend\'s driver (do_setup and '
                    'check_for_setup_error). Set-up is retried forever, '
                    'first after 1 s, doubling up to this; meanwhile the '
                    'backend heartbeats and reports backend_state down, and '
                    'requests wait in its queue.'),
    cfg.IntOpt('backend_start_wait', default=60, min=0,
               help='Longest wait, in seconds, at start-up for the first '
                    'set-up attempt of every backend before the worker says '
                    'it started (and tells systemd it is ready). A backend '
                    'still setting up then goes on in the background and '
                    'serves once ready. Keep it below systemd\'s '
                    'TimeoutStartSec.'),
    cfg.IntOpt('scheduler_max_attempts', default=3, min=1,
               help='Attempts a scheduler makes to place a volume (Cinder\'s '
                    'option of the same name). A create that fails on the '
                    'backend in a way another backend may not, sent with '
                    'retry information, is cast back to the scheduler '
                    'while fewer attempts were made; after that, or without '
                    'retry information, the volume goes to error.'),
    cfg.IntOpt('max_volume_size_gb', default=16384, min=1,
               help='Largest volume size, in GiB, the worker accepts.'),
    cfg.IntOpt('max_metadata_bytes', default=65536, min=0,
               help='Largest JSON size of a volume\'s metadata.'),
    cfg.IntOpt('migration_create_volume_timeout_secs', default=300, min=1,
               help='Seconds a generic migration waits for the destination '
                    'backend to create the copy before it gives up (and '
                    'deletes the copy again).'),
]

naming_opts = [
    cfg.StrOpt('volume_name_template', default='volume-%s',
               help='How backend objects of volumes are named (%s: the '
                    'volume\'s name id).'),
    cfg.StrOpt('snapshot_name_template', default='snapshot-%s',
               help='How backend objects of snapshots are named (%s: the '
                    'snapshot id).'),
]

upgrade_levels_opts = [
    cfg.StrOpt('volume',
               help='Highest RPC API version a client sends to volume '
                    'workers (for example 1.0 while some workers are older '
                    'during a rolling upgrade). A method newer than the cap '
                    'is refused with a clear error. Unset: no cap.'),
]

backend_opts = [
    cfg.StrOpt('volume_driver', default='drivers.fake.FakeDriver',
               help='Import path of the driver class of this backend.'),
    cfg.StrOpt('extra_capabilities', default='{}',
               help='Capabilities of the operator\'s own, a JSON object '
                    '(e.g. {"site": "north"}), merged into every capability '
                    'report and into each of its pools, for volume types to '
                    'select backends by.'),
]

coordination_opts = [
    cfg.StrOpt('backend_url', default='file://$state_path/locks',
               help='tooz URL of the lock backend: file:// on one host, '
                    'redis:// (or etcd3+http://, zookeeper://) for a cluster.'),
]

client_opts = [
    cfg.IntOpt('cast_retry_deadline', default=30, min=0,
               help='Seconds the client keeps retrying a request while the '
                    'broker is unreachable before failing loudly.'),
    cfg.IntOpt('wait_timeout', default=300, min=1,
               help='Seconds "--wait" waits for a volume to settle.'),
    cfg.IntOpt('appear_timeout', default=15, min=1,
               help='Seconds "create --wait" waits for the worker to record '
                    'a new volume before it concludes the request was '
                    'rejected.'),
]

health_opts = [
    cfg.StrOpt('bind',
               help='Where the worker serves /healthz and /metrics over '
                    'HTTP: HOST:PORT, or a bare PORT for 127.0.0.1:PORT. '
                    'Unset: no listener. The pages need no credentials: '
                    'keep the listener on loopback (or a management '
                    'network) and let a local agent scrape it.'),
    cfg.FloatOpt('check_timeout', default=3.0, min=0.1,
                 help='Seconds a /healthz check (the database write, the '
                      'round trip through the worker\'s own queue) may '
                      'take before it counts as failed.'),
]

backup_opts = [
    cfg.StrOpt('posix_path', default='$state_path/backups',
               help='Directory of the backup store (an NFS mount in '
                    'production): one directory per volume, one per backup '
                    'in it, holding its chunks and metadata.'),
    cfg.IntOpt('chunk_size_mb', default=32, min=1, max=1024,
               help='Size of the chunks a volume is backed up in. An '
                    'incremental backup stores the chunks whose sha256 '
                    'changed since its parent.'),
    cfg.StrOpt('compression', default='auto',
               choices=[('auto', 'zstd when the zstandard package is '
                                 'installed, else zlib'),
                        ('zstd', 'zstandard, level 1'),
                        ('zlib', 'zlib, level 1'),
                        ('none', 'stored as read')],
               help='How chunks are compressed. A chunk that does not '
                    'shrink is stored as it is.'),
    cfg.IntOpt('workers', default=2, min=1, max=64,
               help='Native threads hashing, compressing and writing chunks '
                    'of one backup or restore at a time.'),
]

CONF = cfg.CONF


image_store_opts = [
    cfg.StrOpt('path', default='$state_path/images',
               help='Directory of the embedded image store: each image is '
                    'a file <id>.img beside its metadata <id>.json; '
                    'uploads in progress live in staging/. On the same '
                    'btrfs/XFS filesystem as a file backend, raw images '
                    'become volumes by reflink.'),
]


def register_opts(conf=CONF):
    conf.register_opts(service_opts)
    conf.register_opts(naming_opts)
    conf.register_opts(upgrade_levels_opts, group='upgrade_levels')
    conf.register_opts(coordination_opts, group='coordination')
    conf.register_opts(client_opts, group='client')
    conf.register_opts(health_opts, group='health')
    register_backup_opts(conf)


def register_backup_opts(conf):
    conf.register_opts(backup_opts, group='backup')
    conf.register_opts(image_store_opts, group='image_store')


def register_backend_opts(conf, backend):
    conf.register_opts(backend_opts, group=backend)


def set_defaults(conf=CONF):
    """Give library options this project's defaults."""
    import oslo_messaging
    from oslo_db import options as db_options
    from oslo_messaging import transport as messaging_transport

    oslo_messaging.set_transport_defaults('volume-worker')
    # oslo.messaging offers no public setter for the transport URL's
    # default; its option objects are the ones every copy is made from.
    cfg.set_defaults(messaging_transport._transport_opts,
                     transport_url=DEFAULT_TRANSPORT_URL)
    conf.register_opts(messaging_transport._transport_opts)
    from oslo_messaging.notify import notifier as messaging_notifier
    cfg.set_defaults(messaging_notifier._notifier_opts, driver=['messagingv2'])
    set_rabbit_defaults(conf)
    cfg.set_defaults(db_options.database_opts,
                     connection=DEFAULT_DB_CONNECTION)
    db_options.set_defaults(conf, connection=DEFAULT_DB_CONNECTION)


# [oslo_messaging_rabbit] defaults of this project (oslo.messaging's own in
# brackets). See the README's "Failure behaviour" for what each one buys.
RABBIT_DEFAULTS = {
    # A request queued for a worker survives a broker restart, and so does
    # the queue's binding (the control exchange is durable with it), so a
    # cast sent while the worker is down or still starting waits for it.
    # Quorum queues are durable and keep every message on disk. [false]
    'rabbit_quorum_queue': True,
    # A message handed to a worker and returned unacknowledged this many
    # times (the worker died each time before taking it) is dropped
    # instead of crash-looping every worker of the queue. [0: no limit]
    'rabbit_quorum_delivery_limit': 20,
    # Reply and fanout queues stay classic and transient: they belong to
    # one process and die with it; a call whose reply is lost times out
    # at its caller. [false]
    'rabbit_transient_quorum_queue': False,
}

# What the worker sizes [oslo_messaging_rabbit] rpc_conn_pool_size to, on
# top of executor_thread_pool_size per RPC server (service.py), unless set.
CONNECTION_POOL_RESERVE = 8


def rabbit_opt_groups():
    """oslo.messaging's option lists read by its rabbit driver.

    Registered here so that defaults can be set before a transport exists;
    the driver registers the very same option objects again (harmless).
    """
    from oslo_messaging._drivers import amqp as messaging_amqp
    from oslo_messaging._drivers import impl_rabbit
    from oslo_messaging import server as messaging_server
    return [('oslo_messaging_rabbit', messaging_amqp.amqp_opts),
            ('oslo_messaging_rabbit', impl_rabbit.rabbit_opts),
            (None, messaging_server._pool_opts)]


def set_rabbit_defaults(conf=CONF):
    groups = rabbit_opt_groups()
    for _group, opts in groups:
        cfg.set_defaults(opts, **{key: value for key, value in
                                  RABBIT_DEFAULTS.items()
                                  if key in {o.dest for o in opts}})
    for group, opts in groups:
        conf.register_opts(opts, group=group)


def exchange_durable(conf=CONF):
    """Whether oslo.messaging declares the control exchange durable."""
    section = conf.oslo_messaging_rabbit
    return bool(section.rabbit_quorum_queue or section.amqp_durable_queues)


def list_opts():
    return [
        ('DEFAULT', service_opts + naming_opts),
        ('upgrade_levels', upgrade_levels_opts),
        ('coordination', coordination_opts),
        ('client', client_opts),
        ('health', health_opts),
        ('backup', backup_opts),
        ('image_store', image_store_opts),
        ('key_manager', _key_manager_opts()),
        ('backend', backend_opts + _driver_opts()),
        ('privsep_tgt', _privsep_opts()),
    ]


def _privsep_opts():
    """oslo.privsep's options, as the [privsep_tgt] context reads them
    (os-brick's [privsep_osbrick] takes the same)."""
    from oslo_privsep import priv_context
    return copy.deepcopy(priv_context.OPTS)


BUNDLED_DRIVER_MODULES = ('drivers.base', 'drivers.fake', 'drivers.file')


def _driver_opts():
    """Options of the bundled drivers, for the sample's [backend] section."""
    import importlib
    opts, seen = [], set()
    for module in BUNDLED_DRIVER_MODULES:
        for _group, group_opts in importlib.import_module(module).list_opts():
            for opt in group_opts:
                if opt.dest not in seen:
                    seen.add(opt.dest)
                    opts.append(opt)
    return opts


def _key_manager_opts():
    """castellan's backend choice (defaulting to the config key manager)
    and the config key manager's own option."""
    from castellan.key_manager import key_manager_opts
    from volume_worker import keymgr
    backend = [o for o in key_manager_opts if o.dest == 'backend'][0]
    backend = copy.deepcopy(backend)
    backend.default = keymgr.CONF_KEY_MANAGER
    backend.help = ('Key manager of encrypted volumes: "barbican" or "vault" '
                    '(castellan\'s backends, configured in their own '
                    'sections), or a class path; by default the config key '
                    'manager (one fixed_key for every volume).')
    return [backend] + keymgr.opts
