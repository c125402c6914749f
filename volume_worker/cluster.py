"""What makes a worker a member of a cluster: its names, its lock backend,
its driver's consent, and its leases.

A backend served by several workers (``cluster = NAME`` on each, or
``workers = N`` on one host) is ``cluster@backend``: resources carry that
name, every member consumes its queue besides its own ``host@backend``, and
journal rows of the backend belong to the member running them for as long
as its lease (renewed by its heartbeat) lasts.
"""

from oslo_log import log as logging

from volume_worker import exception

LOG = logging.getLogger(__name__)

# The lock backend of a cluster when [coordination] backend_url is unset.
DEFAULT_CLUSTER_LOCKS = 'redis://127.0.0.1:6379'

# Set in each child of ``workers = N``: the host name the children share
# as their cluster's name (each child's own host is HOST-K).
_implicit_cluster = None


def set_implicit_cluster(name):
    global _implicit_cluster
    _implicit_cluster = name


def cluster_name(conf):
    """The cluster this worker belongs to (None: it serves alone)."""
    return conf.cluster or _implicit_cluster


def backend_name(conf, backend):
    """``cluster@backend`` in a cluster, else ``host@backend``."""
    return '%s@%s' % (cluster_name(conf) or conf.host, backend)


def check_driver(conf, host, driver):
    """Refuse, with the reason, to serve a clustered backend whose driver
    does not declare ``SUPPORTS_ACTIVE_ACTIVE``."""
    if not cluster_name(conf):
        return
    if getattr(driver, 'SUPPORTS_ACTIVE_ACTIVE', False):
        return
    why = ('cluster = %s' % conf.cluster if conf.cluster
           else 'workers = %d' % conf.workers)
    raise exception.ActiveActiveNotSupported(
        backend=host, driver=type(driver).__name__, why=why)


def coordination_url(conf, set_by_operator):
    """The tooz URL of this worker's locks.

    A named cluster spans hosts: its default is Redis on 127.0.0.1 (a file
    lock protects nothing across hosts), and a Redis lock's timeout
    defaults to ``lease_timeout``, so a dead member's locks expire when
    its leases do. ``workers = N`` alone stays on one host, where the file
    default serves.
    """
    url = conf.coordination.backend_url
    if not conf.cluster:
        return url
    if not set_by_operator('backend_url', 'coordination'):
        url = DEFAULT_CLUSTER_LOCKS
    if url.startswith('redis') and 'lock_timeout=' not in url:
        url += '%slock_timeout=%d' % ('&' if '?' in url else '?',
                                      conf.lease_timeout)
    if url.startswith('file://'):
        LOG.warning('Cluster %s uses file locks (%s): they hold only '
                    'between workers of one host', conf.cluster, url)
    return url
