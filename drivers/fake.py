"""An in-memory, data-less backend implementing the whole driver contract.

It keeps volumes, snapshots, groups and backups as records in dicts, answers
like a real iSCSI backend, and can be told to be slow or to fail per method
through its config section (``fake_fault_delay``, ``fake_fault_raise``).
"""

import functools
import io
import inspect
import json
import os
import secrets
import threading
import time
import types

from oslo_config import cfg
from oslo_log import log as logging

from drivers import base
from drivers import fake_groups
from drivers import exception

LOG = logging.getLogger(__name__)

fake_opts = (
    cfg.IntOpt('fake_total_capacity_gb', default=1000, min=0,
               help='Capacity of each fake pool, in GiB.'),
    cfg.ListOpt('fake_pools', default=['pool1'],
                help='Names of the pools the fake backend reports and '
                     'accepts in volume hosts (host@backend#pool).'),
    cfg.BoolOpt('fake_thin_provisioning', default=True,
                help='Report thin pools: provisioning may exceed capacity up '
                     'to max_over_subscription_ratio. Thick pools refuse a '
                     'volume that does not fit in the free space.'),
    cfg.DictOpt('fake_fault_delay', default={},
                help='Make driver methods slow: method:seconds pairs, e.g. '
                     'create_volume:5,delete_volume:0.5. The call blocks the '
                     'calling native thread (a real sleep, even when the '
                     'worker runs on eventlet), as a hung array would.'),
    cfg.ListOpt('fake_fault_raise', default=[],
                help='Driver methods that fail with '
                     'VolumeBackendAPIException, e.g. create_snapshot.'),
    cfg.DictOpt('fake_fault_count', default={},
                help='Apply the faults of a method (delay and raise) to its '
                     'first N calls only: method:N pairs, e.g. do_setup:5 '
                     'with fake_fault_raise = do_setup fails set-up five '
                     'times, then lets it succeed. Unset: every call.'),
    cfg.DictOpt('fake_member_faults', default={},
                help='Faults of single volumes and snapshots, as id:fault '
                     'pairs, a fault being "raise" (VolumeBackendAPIException) '
                     'or seconds of delay: applied to every call about that '
                     'resource, and to its share of a group call (the '
                     'member is then reported in error and the others go '
                     'on), e.g. <snapshot id>:raise,<volume id>:2.'),
    cfg.StrOpt('fake_state_path',
               help='JSON file keeping the fake backend across worker '
                    'restarts; state is memory-only when unset. One process '
                    'per file.'),
)

# Public methods exempt from fault injection: bookkeeping, not backend calls.
_NOT_INJECTABLE = frozenset([
    'set_initialized', 'get_version', 'add_unmanaged_volume',
    'add_unmanaged_snapshot', 'validate_connector_has_setting',
])

_STATE_KEYS = ('volumes', 'snapshots', 'unmanaged_volumes',
               'unmanaged_snapshots', 'groups', 'backups')


def list_opts():
    """Options of a fake backend's section, for oslo-config-generator."""
    return [(base.SAMPLE_SECTION, list(fake_opts))]


def _injectable_methods(cls):
    for name in dir(cls):
        if name.startswith('_') or name in _NOT_INJECTABLE:
            continue
        attr = inspect.getattr_static(cls, name)
        if inspect.isfunction(attr) and not getattr(attr, '_faulty', False):
            yield name, attr


# Group calls apply member faults member by member (fake_groups).
_GROUP_CALLS = ('group', 'consistencygroup', 'cgsnapshot')


def _resource_of(name, args):
    """The id of the volume or snapshot a call is about (its first object)."""
    if any(word in name for word in _GROUP_CALLS):
        return None
    for arg in args:
        resource_id = getattr(arg, 'id', None)
        if isinstance(resource_id, str):
            return resource_id
    return None


def _with_faults(name, func):
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        self._inject_fault(name)
        self._member_fault(_resource_of(name, args))
        try:
            return func(self, *args, **kwargs)
        finally:
            self._save_state()
    wrapper._faulty = True
    return wrapper


class FakeDriver(fake_groups.GroupsAndReplication, base.ISCSIDriver):
    """A real driver whose storage is a few dicts guarded by one lock.

    Every public method first applies the configured faults (delay, then
    raise), then runs; ``__init_subclass__`` extends this to subclasses.
    """

    VERSION = '1.0.0'
    VENDOR = 'volume-worker'
    # Each process has its own dicts: clustered, every member sees only
    # what it created itself (enough for tests of the queue and leases).
    SUPPORTS_ACTIVE_ACTIVE = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(fake_opts)
        self._lock = base.native_lock(reentrant=True)
        self._frozen = False
        self._fault_calls = {}
        for key in _STATE_KEYS:
            setattr(self, '_' + key, {})

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _install_fault_injection(cls)

    # -- fault injection and persistence ---------------------------------

    def _inject_fault(self, method):
        if not self._fault_applies(method):
            return
        delays = self.configuration.safe_get('fake_fault_delay') or {}
        if method in delays:
            seconds = self._delay_seconds(method, delays[method])
            LOG.debug('Fake fault: delaying %s by %ss', method, seconds)
            _native_sleep(seconds)
        if method in (self.configuration.safe_get('fake_fault_raise') or []):
            raise exception.VolumeBackendAPIException(
                data='fault injected into %s by fake_fault_raise' % method)

    def _member_fault(self, resource_id):
        """The fault fake_member_faults sets for this volume or snapshot."""
        faults = self.configuration.safe_get('fake_member_faults') or {}
        fault = faults.get(resource_id) if resource_id else None
        if fault is None:
            return
        if fault == 'raise':
            raise exception.VolumeBackendAPIException(
                data='fault injected for %s by fake_member_faults'
                     % resource_id)
        _native_sleep(self._delay_seconds(resource_id, fault))

    def _fault_applies(self, method):
        """Counts the call; False once a method's fake_fault_count is used up."""
        counts = self.configuration.safe_get('fake_fault_count') or {}
        if method not in counts:
            return True
        with self._lock:
            calls = self._fault_calls.get(method, 0) + 1
            self._fault_calls[method] = calls
        return calls <= self._count(method, counts[method])

    @staticmethod
    def _count(method, value):
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = -1
        if count < 0:
            raise exception.InvalidInput(
                reason='fake_fault_count for %s must be a whole number >= '
                       '0, not %r' % (method, value))
        return count

    @staticmethod
    def _delay_seconds(method, value):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1
        if seconds < 0:
            raise exception.InvalidInput(
                reason='fake_fault_delay for %s must be a number of seconds '
                       '>= 0, not %r' % (method, value))
        return seconds

    def _state_path(self):
        return self.configuration.safe_get('fake_state_path')

    def _save_state(self):
        path = self._state_path()
        if not path:
            return
        with self._lock:
            state = {key: getattr(self, '_' + key) for key in _STATE_KEYS}
            state['frozen'] = self._frozen
            state['active_backend_id'] = self._active_backend_id
            tmp = '%s.%s.tmp' % (path, threading.get_ident())
            with open(tmp, 'w') as handle:
                json.dump(state, handle)
            os.replace(tmp, path)

    def _load_state(self):
        path = self._state_path()
        if not path or not os.path.exists(path):
            return
        with open(path) as handle:
            state = json.load(handle)
        with self._lock:
            for key in _STATE_KEYS:
                setattr(self, '_' + key, state.get(key, {}))
            self._frozen = state.get('frozen', False)
            if self._active_backend_id is None:
                self._active_backend_id = state.get('active_backend_id')

    # -- lifecycle -----------------------------------------------------------

    def do_setup(self, context):
        self._load_state()

    def check_for_setup_error(self):
        if not self.configuration.fake_pools:
            raise exception.InvalidInput(reason='fake_pools is empty')
        cls = type(self)
        known = {name for name in dir(cls) if getattr(
            inspect.getattr_static(cls, name), '_faulty', False)}
        delays = self.configuration.fake_fault_delay
        counts = self.configuration.fake_fault_count
        for method in (list(delays) + list(self.configuration.fake_fault_raise)
                       + list(counts)):
            if method not in known:
                raise exception.InvalidInput(
                    reason='fault configured for unknown driver method %r'
                           % method)
        for method, value in delays.items():
            self._delay_seconds(method, value)
        for method, value in counts.items():
            self._count(method, value)
        for resource_id, fault in (
                self.configuration.fake_member_faults or {}).items():
            if fault != 'raise':
                self._delay_seconds(resource_id, fault)

    # -- test helpers --------------------------------------------------------

    def add_unmanaged_volume(self, name, size, pool=None):
        """Place a volume on the backend that the worker does not manage."""
        with self._lock:
            self._unmanaged_volumes[name] = {
                'name': name, 'size': int(size),
                'pool': pool or self.configuration.fake_pools[0]}
            self._save_state()

    def add_unmanaged_snapshot(self, name, size, source_name):
        """Place an unmanaged snapshot of backend volume ``source_name``."""
        with self._lock:
            self._unmanaged_snapshots[name] = {
                'name': name, 'size': int(size), 'source_name': source_name}
            self._save_state()

    # -- stats ---------------------------------------------------------------

    def _update_volume_stats(self):
        protocol = {'iscsi': 'iSCSI', 'iser': 'iSER', 'local': 'local'}[
            self.configuration.target_protocol]
        stats = self._base_stats(protocol)
        thin = self.configuration.fake_thin_provisioning
        # 'auto' would need real usage data; the fake reports the default.
        ratio = self._over_subscription_ratio() or 20.0
        with self._lock:
            pools = [self._pool_stats(name, thin, ratio)
                     for name in self.configuration.fake_pools]
        stats.update(
            vendor_name=self.VENDOR,
            total_capacity_gb=sum(p['total_capacity_gb'] for p in pools),
            free_capacity_gb=sum(p['free_capacity_gb'] for p in pools),
            provisioned_capacity_gb=sum(
                p['provisioned_capacity_gb'] for p in pools),
            thin_provisioning_support=thin,
            thick_provisioning_support=not thin,
            max_over_subscription_ratio=ratio,
            QoS_support=False,
            multiattach=True,
            active_backend_id=self._active_backend_id,
            pools=pools)
        self._stats = stats

    def _pool_stats(self, pool, thin, ratio):
        total = self.configuration.fake_total_capacity_gb
        provisioned = self._provisioned_gb(pool)
        return {
            'pool_name': pool,
            'total_capacity_gb': total,
            'free_capacity_gb': max(0, total - provisioned
                                    - self._snapshot_gb(pool)),
            'provisioned_capacity_gb': provisioned,
            'reserved_percentage': self.configuration.reserved_percentage,
            'max_over_subscription_ratio': ratio,
            'thin_provisioning_support': thin,
            'thick_provisioning_support': not thin,
            'QoS_support': False,
            'multiattach': True,
            'consistent_group_snapshot_enabled': True,
        }

    def _over_subscription_ratio(self):
        """The configured ratio as a float; None for 'auto'."""
        value = self.configuration.max_over_subscription_ratio
        return None if value == 'auto' else float(value)

    def _provisioned_gb(self, pool):
        return sum(v['size'] for v in self._volumes.values()
                   if v['pool'] == pool)

    def _snapshot_gb(self, pool):
        return sum(s['size'] for s in self._snapshots.values()
                   if self._volumes.get(s['volume_id'], {}).get('pool') == pool)

    # -- volumes -------------------------------------------------------------

    def _pool_of(self, volume):
        pool = base.extract_pool(getattr(volume, 'host', None))
        pools = self.configuration.fake_pools
        if pool is None:
            return pools[0]
        if pool not in pools:
            raise exception.InvalidVolume(
                reason='pool %r of volume %s is not one of %s'
                       % (pool, volume.id, pools))
        return pool

    def _ensure_room(self, pool, size):
        total = self.configuration.fake_total_capacity_gb
        provisioned = self._provisioned_gb(pool)
        if self.configuration.fake_thin_provisioning:
            ratio = self._over_subscription_ratio()
            if ratio is None or provisioned + size <= total * ratio:
                return
        elif provisioned + self._snapshot_gb(pool) + size <= total:
            return
        raise exception.VolumeBackendAPIException(
            data='pool %s cannot hold %s GiB more (%s of %s GiB provisioned)'
                 % (pool, size, provisioned, total))

    def _volume_record(self, volume_id):
        try:
            return self._volumes[volume_id]
        except KeyError:
            raise exception.VolumeNotFound(volume_id=volume_id)

    def _snapshot_record(self, snapshot_id):
        try:
            return self._snapshots[snapshot_id]
        except KeyError:
            raise exception.SnapshotNotFound(snapshot_id=snapshot_id)

    def _add_volume(self, volume, source=None, min_size=0):
        """Create the record of ``volume`` unless an identical one exists."""
        with self._lock:
            existing = self._volumes.get(volume.id)
            if existing is not None:
                if existing['size'] != volume.size or (
                        existing['source'] != source):
                    raise exception.InvalidVolume(
                        reason='volume %s already exists on the backend with '
                               'size %s GiB from %s' % (
                                   volume.id, existing['size'],
                                   existing['source']))
                return None
            if volume.size < min_size:
                raise exception.InvalidInput(
                    reason='volume %s of %s GiB is smaller than its %s GiB '
                           'source' % (volume.id, volume.size, min_size))
            pool = self._pool_of(volume)
            self._ensure_room(pool, volume.size)
            self._volumes[volume.id] = _record(
                volume, volume.size, pool=pool, source=source, group_id=None,
                image_id=None, project_id=None, replication_status=None)
        return None

    def create_volume(self, volume):
        return self._add_volume(volume)

    def _clone_volume(self, volume, src_vref):
        with self._lock:
            source = self._volume_record(src_vref.id)
            return self._add_volume(volume, ['volume', src_vref.id],
                                    source['size'])

    def create_cloned_volume(self, volume, src_vref):
        return self._clone_volume(volume, src_vref)

    def create_replica_test_volume(self, volume, src_vref):
        return self._clone_volume(volume, src_vref)

    def _delete_volume(self, volume_id):
        with self._lock:
            record = self._volumes.get(volume_id)
            if record is None:
                return
            children = [s['id'] for s in self._snapshots.values()
                        if s['volume_id'] == volume_id]
            if children:
                raise exception.VolumeIsBusy(
                    volume_name=record['name'],
                    reason='it has snapshots %s' % ', '.join(sorted(children)))
            del self._volumes[volume_id]

    def delete_volume(self, volume):
        # After a migration the row of the old data names it by _name_id.
        self._delete_volume(getattr(volume, 'name_id', None) or volume.id)

    def extend_volume(self, volume, new_size):
        with self._lock:
            record = self._volume_record(volume.id)
            if new_size < record['size']:
                raise exception.InvalidInput(
                    reason='cannot shrink volume %s from %s to %s GiB'
                           % (volume.id, record['size'], new_size))
            self._ensure_room(record['pool'], new_size - record['size'])
            record['size'] = int(new_size)

    def local_path(self, volume):
        """A pseudo path: the fake holds no data and has no device."""
        with self._lock:
            record = self._volume_record(volume.id)
            return 'fake://%s/%s' % (record['pool'], record['name'])

    def retype(self, context, volume, new_type, diff, host):
        with self._lock:
            self._volume_record(volume.id)
        return True, None

    def update_migrated_volume(self, ctxt, volume, new_volume,
                               original_volume_status):
        """Re-key the copy under the original id when that id is free."""
        with self._lock:
            record = self._volume_record(new_volume.id)
            if volume.id in self._volumes:
                return super().update_migrated_volume(
                    ctxt, volume, new_volume, original_volume_status)
            del self._volumes[new_volume.id]
            record.update(id=volume.id, name=volume.name)
            self._volumes[volume.id] = record
            return {'_name_id': None,
                    'provider_location': record['provider_location']}

    # -- snapshots -------------------------------------------------------

    def _create_snapshot(self, snapshot):
        with self._lock:
            volume = self._volume_record(snapshot.volume_id)
            existing = self._snapshots.get(snapshot.id)
            if existing is not None:
                if existing['volume_id'] != snapshot.volume_id:
                    raise exception.InvalidSnapshot(
                        reason='snapshot %s already exists for volume %s'
                               % (snapshot.id, existing['volume_id']))
                return None
            self._snapshots[snapshot.id] = _record(
                snapshot, volume['size'], volume_id=snapshot.volume_id)
        return None

    def create_snapshot(self, snapshot):
        return self._create_snapshot(snapshot)

    def delete_snapshot(self, snapshot):
        with self._lock:
            self._snapshots.pop(snapshot.id, None)

    def create_volume_from_snapshot(self, volume, snapshot):
        return self._volume_from_snapshot(volume, snapshot)

    def _volume_from_snapshot(self, volume, snapshot):
        with self._lock:
            source = self._snapshot_record(snapshot.id)
            return self._add_volume(volume, ['snapshot', snapshot.id],
                                    source['size'])

    def revert_to_snapshot(self, context, volume, snapshot):
        with self._lock:
            record = self._volume_record(volume.id)
            snap = self._snapshot_record(snapshot.id)
            if snap['volume_id'] != volume.id:
                raise exception.InvalidSnapshot(
                    reason='snapshot %s belongs to volume %s, not %s'
                           % (snapshot.id, snap['volume_id'], volume.id))
            record['size'] = snap['size']

    # -- exports and connections -------------------------------------------

    def _export(self, record):
        """Give ``record`` a stable target; return its model update."""
        if record['provider_location'] is None:
            iqn = self.configuration.target_prefix + record['name']
            record['provider_location'] = self._iscsi_location(iqn, 0)
        if self.configuration.use_chap_auth and not record['provider_auth']:
            record['provider_auth'] = self._chap_auth(
                self.configuration.chap_username or secrets.token_hex(6),
                self.configuration.chap_password or secrets.token_hex(12))
        record['exported'] = True
        return {'provider_location': record['provider_location'],
                'provider_auth': record['provider_auth']}

    def _connect(self, record, connector):
        if self.configuration.target_protocol != 'local':
            self.validate_connector_has_setting(connector, 'initiator')
        if not record['exported']:
            raise exception.InvalidVolume(
                reason='%s is not exported' % record['name'])
        key = connector.get('initiator') or connector.get('host')
        if key not in record['connections']:
            record['connections'].append(key)
        if self.configuration.target_protocol == 'local':
            return {'driver_volume_type': 'local',
                    'data': {'device_path': 'fake://%s' % record['name']}}
        target = types.SimpleNamespace(
            id=record['id'], provider_location=record['provider_location'],
            provider_auth=record['provider_auth'])
        return {'driver_volume_type': self.configuration.target_protocol,
                'data': self._get_iscsi_properties(
                    target, bool(connector.get('multipath')))}

    @staticmethod
    def _disconnect(record, connector):
        if connector is None:
            record['connections'] = []
            return
        key = connector.get('initiator') or connector.get('host')
        if key in record['connections']:
            record['connections'].remove(key)

    def validate_connector(self, connector):
        if self.configuration.target_protocol != 'local':
            self.validate_connector_has_setting(connector, 'initiator')

    def create_export(self, context, volume, connector):
        with self._lock:
            return self._export(self._volume_record(volume.id))

    def ensure_export(self, context, volume):
        """Re-export; a model update only if the volume's fields are stale."""
        with self._lock:
            update = self._export(self._volume_record(volume.id))
        if all(getattr(volume, key, None) == value
               for key, value in update.items()):
            return None
        return update

    def remove_export(self, context, volume):
        with self._lock:
            record = self._volumes.get(volume.id)
            if record is not None:
                record['exported'] = False

    def initialize_connection(self, volume, connector):
        with self._lock:
            return self._connect(self._volume_record(volume.id), connector)

    def terminate_connection(self, volume, connector, **kwargs):
        with self._lock:
            record = self._volumes.get(volume.id)
            if record is not None:
                self._disconnect(record, connector)

    def create_export_snapshot(self, context, snapshot, connector):
        with self._lock:
            return self._export(self._snapshot_record(snapshot.id))

    def remove_export_snapshot(self, context, snapshot):
        with self._lock:
            record = self._snapshots.get(snapshot.id)
            if record is not None:
                record['exported'] = False

    def initialize_connection_snapshot(self, snapshot, connector, **kwargs):
        with self._lock:
            return self._connect(self._snapshot_record(snapshot.id),
                                 connector)

    def terminate_connection_snapshot(self, snapshot, connector, **kwargs):
        with self._lock:
            record = self._snapshots.get(snapshot.id)
            if record is not None:
                self._disconnect(record, connector)

    # -- images, backups, transfers ----------------------------------------

    def copy_image_to_volume(self, context, volume, image_service, image_id):
        with self._lock:
            self._volume_record(volume.id)['image_id'] = image_id

    def copy_image_to_encrypted_volume(self, context, volume, image_service,
                                       image_id):
        with self._lock:
            self._volume_record(volume.id)['image_id'] = image_id

    def copy_volume_to_image(self, context, volume, image_service,
                             image_meta):
        """The image gets no bytes: a fake volume holds none."""
        with self._lock:
            self._volume_record(volume.id)
        image_service.update(context, image_meta['id'],
                             dict(image_meta, disk_format='raw'),
                             io.BytesIO(b''))

    def get_backup_device(self, context, backup):
        """The backup's snapshot or volume, loaded through ``db`` and checked
        to exist on this backend: ``(object, is_snapshot)``."""
        device, is_snapshot = super().get_backup_device(context, backup)
        with self._lock:
            if is_snapshot:
                self._snapshot_record(base.field(device, 'id'))
            else:
                self._volume_record(base.field(device, 'id'))
        return device, is_snapshot

    def backup_volume(self, context, backup, backup_service):
        with self._lock:
            source = self._volume_record(backup.volume_id)
            self._backups[backup.id] = {'id': backup.id,
                                        'volume_id': backup.volume_id,
                                        'size': source['size']}

    def restore_backup(self, context, backup, volume, backup_service):
        with self._lock:
            saved = self._backups.get(backup.id)
            if saved is None:
                raise exception.NotFound(
                    'Backup %s was not taken on this backend.' % backup.id)
            record = self._volume_record(volume.id)
            if record['size'] < saved['size']:
                raise exception.InvalidVolume(
                    reason='volume %s of %s GiB cannot hold backup %s of %s '
                           'GiB' % (volume.id, record['size'], backup.id,
                                    saved['size']))

    def accept_transfer(self, context, volume, new_user, new_project):
        with self._lock:
            self._volume_record(volume.id)['project_id'] = new_project

    # -- manage / unmanage -------------------------------------------------

    @staticmethod
    def _reference_name(existing_ref):
        name = (existing_ref or {}).get('source-name') or (
            existing_ref or {}).get('source-id')
        if not name:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason='a source-name or source-id is required')
        return name

    def _find_unmanaged(self, table, existing_ref, adopted):
        name = self._reference_name(existing_ref)
        if name in table:
            return table[name]
        if adopted is not None and adopted.get('managed_from') == name:
            return adopted
        raise exception.ManageExistingInvalidReference(
            existing_ref=existing_ref, reason='no unmanaged object by that name')

    def manage_existing(self, volume, existing_ref):
        with self._lock:
            entry = self._find_unmanaged(self._unmanaged_volumes, existing_ref,
                                         self._volumes.get(volume.id))
            if entry.get('managed_from'):
                return None     # adopted by an earlier run of this call
            self._volumes[volume.id] = _record(
                volume, entry['size'], pool=entry['pool'], source=None,
                group_id=None, image_id=None, project_id=None,
                replication_status=None, managed_from=entry['name'])
            del self._unmanaged_volumes[entry['name']]

    def manage_existing_get_size(self, volume, existing_ref):
        with self._lock:
            return self._find_unmanaged(self._unmanaged_volumes, existing_ref,
                                        self._volumes.get(volume.id))['size']

    def unmanage(self, volume):
        with self._lock:
            record = self._volumes.get(volume.id)
            if record is None:
                return
            if any(s['volume_id'] == volume.id
                   for s in self._snapshots.values()):
                raise exception.VolumeIsBusy(
                    volume_name=record['name'], reason='it has snapshots')
            del self._volumes[volume.id]
            self._unmanaged_volumes[record['name']] = {
                'name': record['name'], 'size': record['size'],
                'pool': record['pool']}

    def get_manageable_volumes(self, cinder_volumes, marker, limit, offset,
                               sort_keys, sort_dirs):
        with self._lock:
            entries = [_manageable(v['name'], v['size'])
                       for v in self._unmanaged_volumes.values()]
            entries += [_manageable(v['name'], v['size'], v['id'])
                        for v in self._volumes.values()]
        return base.paginate_manageable(entries, marker, limit, offset,
                                        sort_keys, sort_dirs)

    def manage_existing_snapshot(self, snapshot, existing_ref):
        with self._lock:
            entry = self._find_unmanaged(self._unmanaged_snapshots,
                                         existing_ref,
                                         self._snapshots.get(snapshot.id))
            if entry.get('managed_from'):
                return None
            self._volume_record(snapshot.volume_id)
            self._snapshots[snapshot.id] = _record(
                snapshot, entry['size'], volume_id=snapshot.volume_id,
                managed_from=entry['name'])
            del self._unmanaged_snapshots[entry['name']]

    def manage_existing_snapshot_get_size(self, snapshot, existing_ref):
        with self._lock:
            return self._find_unmanaged(self._unmanaged_snapshots,
                                        existing_ref,
                                        self._snapshots.get(snapshot.id))[
                                            'size']

    def unmanage_snapshot(self, snapshot):
        with self._lock:
            record = self._snapshots.pop(snapshot.id, None)
            if record is not None:
                volume = self._volumes.get(record['volume_id'], {})
                self._unmanaged_snapshots[record['name']] = {
                    'name': record['name'], 'size': record['size'],
                    'source_name': volume.get('name')}

    def get_manageable_snapshots(self, cinder_snapshots, marker, limit,
                                 offset, sort_keys, sort_dirs):
        with self._lock:
            entries = [_manageable(s['name'], s['size'],
                                   source_name=s['source_name'])
                       for s in self._unmanaged_snapshots.values()]
            entries += [_manageable(
                s['name'], s['size'], s['id'],
                self._volumes.get(s['volume_id'], {}).get('name'))
                for s in self._snapshots.values()]
        return base.paginate_manageable(entries, marker, limit, offset,
                                        sort_keys, sort_dirs)


def _record(obj, size, **fields):
    """A backend record for a volume or snapshot object, not yet exported."""
    record = {'id': obj.id, 'name': obj.name, 'size': int(size),
              'provider_location': None, 'provider_auth': None,
              'exported': False, 'connections': [], 'managed_from': None}
    record.update(fields)
    return record


def _manageable(name, size, cinder_id=None, source_name=None):
    entry = {'reference': {'source-name': name}, 'size': size,
             'safe_to_manage': cinder_id is None,
             'reason_not_safe': 'already managed' if cinder_id else None,
             'cinder_id': cinder_id, 'extra_info': None}
    if source_name is not None:
        entry['source_reference'] = {'source-name': source_name}
    return entry




def _native_sleep(seconds):
    """Block the calling native thread, even in a monkey-patched process.

    A green sleep would yield to the other green threads: the fault would
    then hide the very stall (a natively blocking backend call) it is there
    to produce.
    """
    try:
        from eventlet import patcher
    except ImportError:
        patcher = None
    if patcher is not None and patcher.is_monkey_patched('time'):
        patcher.original('time').sleep(seconds)
    else:
        time.sleep(seconds)


def _install_fault_injection(cls):
    for name, func in _injectable_methods(cls):
        setattr(cls, name, _with_faults(name, func))


_install_fault_injection(FakeDriver)
