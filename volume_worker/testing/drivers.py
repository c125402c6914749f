"""Drivers for crash tests: real drivers that can be told, while running, to hang.

``fault_control_file`` names a JSON file read at every backend call::

    {"<volume or snapshot id>": {"create_export": 30},
     "*": {"delete_volume": 0.5}}

A call about no one volume (``failover_host``) matches ``"*"`` only, and
its marker names the volume ``None``. A matching call first writes ``<file>.inside/<method>-<volume id>`` (so a
test knows the worker is inside that call and can kill it there), then
sleeps that many seconds, then runs for real; ``"raise"`` instead of a
number makes the call fail with a backend error, ``"cannot"`` makes
``retype`` answer that it cannot retype in place. No file, no fault.

Every such call is also recorded, once it returns, as a line of
``<file>.calls``: ``method resource_id start end`` (``time.time()``), so a
test can see which calls overlapped and which were made again.
"""

import json
import os
import time

from oslo_config import cfg

from drivers import exception
from drivers import fake
from drivers import file as file_driver

fault_opts = [
    cfg.StrOpt('fault_control_file',
               help='JSON file of per-volume delays for backend calls '
                    '(tests only).'),
    cfg.StrOpt('fault_call_log',
               help='File every faulty method call is appended to as '
                    '"<driver host> <method> <volume id>" (tests only: '
                    'which worker of a cluster made which call).'),
]

FAULTY_METHODS = ('create_volume', 'delete_volume', 'create_export',
                  'remove_export', 'ensure_export', 'ensure_exports',
                  'create_snapshot',
                  'delete_snapshot', 'create_volume_from_snapshot',
                  'create_cloned_volume', 'extend_volume',
                  'revert_to_snapshot', 'initialize_connection',
                  'terminate_connection', 'manage_existing', 'failover_host',
                  'copy_image_to_volume', 'copy_volume_to_image',
                  'clone_image',
                  'before_volume_copy', 'after_volume_copy',
                  'update_migrated_volume')
RAISE = 'raise'  # instead of seconds: the call fails
CANNOT = 'cannot'  # for retype: the driver cannot retype in place


def control(path, faults):
    """Write the control file atomically (the worker may be reading it)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(faults, f)
    os.replace(tmp, path)


def marker(path, method, volume_id):
    return os.path.join(path + '.inside', '%s-%s' % (method, volume_id))


def _resource_of(args):
    """The id of the volume or snapshot a call is about."""
    for arg in args:
        if hasattr(arg, 'obj_name') and hasattr(arg, 'id'):
            return arg.id
    return None


def calls(path):
    """The recorded calls: [(method, resource_id, start, end)]."""
    try:
        with open(path + '.calls') as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        method, resource_id, start, end = line.split()
        out.append((method, resource_id, float(start), float(end)))
    return out


def _with_fault(method):
    def wrapper(self, *args, **kwargs):
        resource_id = _resource_of(args)
        self._log_call(method, resource_id)
        started = time.time()
        self._maybe_hang(method, resource_id)
        try:
            return getattr(super(FaultyFileDriver, self), method)(
                *args, **kwargs)
        finally:
            self._record(method, resource_id, started)
    wrapper.__name__ = method
    return wrapper


class FaultyFileDriver(file_driver.FileVolumeDriver):
    """The file driver, with delays a test switches on and off at run time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(fault_opts)

    def _log_call(self, method, resource_id):
        path = self.configuration.safe_get('fault_call_log')
        if not path:
            return
        line = ('%s %s %s\n' % (self.host, method, resource_id)).encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # one write: whole lines, even from peers
        finally:
            os.close(fd)

    def _record(self, method, resource_id, started):
        path = self.configuration.safe_get('fault_control_file')
        if not path:
            return
        line = '%s %s %.6f %.6f\n' % (method, resource_id, started,
                                      time.time())
        # One write of an O_APPEND file: lines of calls made at once do not
        # mix.
        fd = os.open(path + '.calls', os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                     0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def _maybe_hang(self, method, resource_id):
        path = self.configuration.safe_get('fault_control_file')
        if not path or not os.path.exists(path):
            return
        with open(path) as f:
            faults = json.load(f)
        seconds = (faults.get(resource_id) or {}).get(method)
        if seconds is None:
            seconds = (faults.get('*') or {}).get(method)
        if not seconds:
            return
        if seconds == CANNOT:
            return CANNOT
        if seconds == RAISE:
            raise exception.VolumeBackendAPIException(
                data='fault injected into %s of %s' % (method, resource_id))
        os.makedirs(path + '.inside', exist_ok=True)
        with open(marker(path, method, resource_id), 'w'):
            pass
        time.sleep(float(seconds))

    def retype(self, context, volume, new_type, diff, host):
        if self._maybe_hang('retype', volume.id) == CANNOT:
            return False, None
        return super().retype(context, volume, new_type, diff, host)


def _copying_with_fault(method):
    """``method`` (backup_volume, restore_backup) whose service may hang mid-copy.

    ``"<method>_copy"`` in the control file hangs the copy after its
    first chunk is done (real chunks are then on disk).
    """
    def wrapper(self, context, backup, *args):
        service = args[-1]
        report = service.progress
        state = {'chunks': 0}

        def progress(nbytes):
            report(nbytes)
            state['chunks'] += 1
            if state['chunks'] == 2:
                self._maybe_hang(method + '_copy', backup.id)
        service.progress = progress
        self._maybe_hang(method, backup.id)
        return getattr(super(FaultyFileDriver, self), method)(
            context, backup, *args)
    wrapper.__name__ = method
    return wrapper


for _method in FAULTY_METHODS:
    setattr(FaultyFileDriver, _method, _with_fault(_method))
for _method in ('backup_volume', 'restore_backup'):
    setattr(FaultyFileDriver, _method, _copying_with_fault(_method))


class UnsupportedFakeDriver(fake.FakeDriver):
    """The fake driver, declaring itself unsupported (Cinder's SUPPORTED)."""

    SUPPORTED = False
