"""Options and helpers shared by the driver contract and the bundled drivers.

``drivers.base`` re-exports every name defined here.
"""

import functools

from oslo_config import cfg
from oslo_config import types

from drivers import exception

# Placeholder section under which the sample config shows ``volume_opts``;
# in a real file they belong in each enabled backend's own section.
SAMPLE_SECTION = 'backend'

volume_opts = (
    cfg.StrOpt('volume_backend_name',
               help='Name the scheduler and volume types use for this '
                    'backend. Defaults to the driver class name.'),
    cfg.IntOpt('reserved_percentage', default=0, min=0, max=100,
               help='Percentage of capacity kept free: the scheduler never '
                    'places volumes in it.'),
    cfg.StrOpt('max_over_subscription_ratio', default='20.0',
               regex=r'^(auto|\d+(\.\d+)?)$',
               help='How far provisioned capacity may exceed real capacity on '
                    'thin-provisioned pools: a float >= 1.0, or "auto" to let '
                    'the driver compute it from current usage.'),
    cfg.StrOpt('filter_function',
               help='Scheduler filter expression for this backend; when unset '
                    'the driver may supply its own default.'),
    cfg.StrOpt('goodness_function',
               help='Scheduler goodness (0-100) expression for this backend; '
                    'when unset the driver may supply its own default.'),
    cfg.HostAddressOpt('target_ip_address', default='127.0.0.1',
                       help='Address on which volumes of this backend are '
                            'exported to initiators.'),
    cfg.PortOpt('target_port', default=3260,
                help='Port of the export portal.'),
    cfg.StrOpt('target_prefix', default='iqn.2010-10.org.openstack:',
               help='Prefix of the target names (IQNs) given to volumes; '
                    'the volume name is appended.'),
    cfg.StrOpt('target_protocol', default='iscsi',
               choices=['iscsi', 'iser', 'local'],
               help='Transport used to hand volumes to their consumers.'),
    cfg.ListOpt('target_secondary_ip_addresses', default=[],
                help='Further portal addresses exporting the same targets, '
                     'reported to multipath-capable initiators.'),
    cfg.BoolOpt('use_chap_auth', default=False,
                help='Require CHAP authentication on exports.'),
    cfg.StrOpt('chap_username', default='',
               help='CHAP user name; generated per volume when empty.'),
    cfg.StrOpt('chap_password', default='', secret=True,
               help='CHAP password; generated per volume when empty.'),
    cfg.BoolOpt('report_discard_supported', default=False,
                help='Tell consumers that the backend honours discard/unmap '
                     'requests.'),
    cfg.MultiOpt('replication_device', item_type=types.Dict(),
                 help='A replication target as key:value pairs, at least '
                      'backend_id:<id>. Repeat the option for several '
                      'targets.'),
    cfg.IntOpt('volume_copy_bps_limit', default=0, min=0,
               help='Upper limit, in bytes per second, of the bandwidth of '
                    'the data copies of this backend (image copies, '
                    'generic clones, backups) all together: concurrent '
                    'copies share it. 0: unlimited.'),
    cfg.IntOpt('group_member_parallelism', default=4, min=1, max=64,
               help='Member operations of one group operation that the '
                    'worker runs at once when the driver has no group call '
                    'of its own (member snapshots, copies and deletes, each '
                    'a driver call of its own). 1: one after another.'),
    cfg.StrOpt('image_conversion_dir',
               help='Directory for images downloaded from an image service '
                    'that keeps none on this host, while they are converted '
                    'onto a volume. The system temporary directory when '
                    'unset.'),
    cfg.BoolOpt('driver_ssl_cert_verify', default=False,
                help='Verify the TLS certificate of the backend management '
                     'API.'),
    cfg.StrOpt('driver_ssl_cert_path',
               help='CA bundle used when driver_ssl_cert_verify is set; the '
                    'system store is used when unset.'),
)


# The scheduler expressions may also be set once for every backend in
# [DEFAULT]; BaseVD registers these two there as well (see
# BaseVD.get_filter_function).  The help texts above feed the generated
# sample config, which a test keeps in sync: change them with it.
scheduler_opts = tuple(opt for opt in volume_opts
                       if opt.name in ('filter_function', 'goodness_function'))


def list_opts():
    """Options of every backend section, for oslo-config-generator."""
    return [(SAMPLE_SECTION, list(volume_opts))]


def is_consistent_snapshot_group(group):
    """Whether a group or group snapshot is of a type asking for consistent
    snapshots (group spec ``consistent_group_snapshot_enabled`` "<is> True",
    read from ``group.group_type.group_specs`` as Cinder's drivers do)."""
    group_type = getattr(group, 'group_type', None)
    specs = getattr(group_type, 'group_specs', None) or {}
    spec = specs.get('consistent_group_snapshot_enabled') or ''
    return spec.strip().lower() in ('<is> true', 'true')


def native_lock(reentrant=False):
    """A lock for state shared by driver calls.

    The worker runs driver calls in a pool of native threads. Under eventlet
    the ``threading`` module's locks are green, and one native thread waking
    another through them fails ("Cannot switch to a different thread"), so
    drivers take their locks from here.
    """
    import threading
    module = threading
    try:
        from eventlet import patcher
    except ImportError:
        patcher = None
    if patcher is not None and patcher.is_monkey_patched('thread'):
        module = patcher.original('threading')
    return module.RLock() if reentrant else module.Lock()


def extract_pool(host):
    """Return the pool part of ``host@backend#pool``, or None."""
    if not host or '#' not in host:
        return None
    return host.split('#', 1)[1] or None


def portal(address, port):
    """``ip:port``, bracketing IPv6 addresses."""
    if ':' in address and not address.startswith('['):
        address = '[%s]' % address
    return '%s:%s' % (address, port)


def paginate_manageable(entries, marker, limit, offset, sort_keys, sort_dirs):
    """Sort and page a list of manageable-object dicts.

    ``sort_keys`` may hold ``'size'`` and ``'reference'`` (``'identifier'``
    is accepted as its alias); ``marker`` is the ``reference`` dict of the
    last entry of the previous page.
    """
    keys = [('reference' if key == 'identifier' else key)
            for key in (sort_keys or ['reference'])]
    dirs = list(sort_dirs or [])
    dirs += ['asc'] * (len(keys) - len(dirs))
    for key in keys:
        if key not in ('size', 'reference'):
            raise exception.InvalidInput(
                reason='cannot sort manageable objects by %r' % key)

    def sortable(value):
        return sorted(value.items()) if isinstance(value, dict) else value

    def compare(left, right):
        for key, direction in zip(keys, dirs):
            a, b = sortable(left[key]), sortable(right[key])
            if a != b:
                result = -1 if a < b else 1
                return -result if direction == 'desc' else result
        return 0

    ordered = sorted(entries, key=functools.cmp_to_key(compare))
    start = 0
    if marker:
        positions = [i for i, entry in enumerate(ordered)
                     if entry['reference'] == marker]
        if not positions:
            raise exception.InvalidInput(
                reason='marker %r matches no manageable object' % (marker,))
        start = positions[0] + 1
    start += offset or 0
    end = start + limit if limit else None
    return ordered[start:end]


def field(obj, name, default=None):
    """``obj.name``, or ``obj[name]`` for dict-like objects, else ``default``.

    Drivers receive the worker's objects; drivers written for Cinder may be
    handed plain dicts as well.
    """
    try:
        return getattr(obj, name)
    except AttributeError:
        pass
    try:
        return obj[name]
    except (KeyError, TypeError, IndexError):
        return default


class Updated:
    """An object seen with a model update applied, without changing it.

    Generic code exports a volume, gets ``{'provider_location': ...}`` back
    and must hand the updated volume to ``initialize_connection`` without
    persisting anything: this view answers the updated fields by attribute
    and by key, and everything else from the wrapped object.
    """

    def __init__(self, obj, changes):
        self._obj = obj
        self._changes = dict(changes or {})

    def __getattr__(self, name):
        state = self.__dict__
        if '_obj' not in state:
            raise AttributeError(name)
        if name in state['_changes']:
            return state['_changes'][name]
        try:
            return getattr(state['_obj'], name)
        except AttributeError:
            try:
                return state['_obj'][name]
            except (KeyError, TypeError, IndexError):
                raise AttributeError(name) from None

    def __getitem__(self, key):
        if key in self._changes:
            return self._changes[key]
        try:
            return self._obj[key]
        except TypeError:
            try:
                return getattr(self._obj, key)
            except AttributeError:
                raise KeyError(key)

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __repr__(self):
        return '<%r updated with %r>' % (self._obj, sorted(self._changes))


def with_updates(obj, changes):
    """``obj`` itself when ``changes`` is empty, else an ``Updated`` view."""
    return Updated(obj, changes) if changes else obj
