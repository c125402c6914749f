"""Attaching volumes to this host through os-brick, and copying their bytes.

A volume is attached with the os-brick connector its connection info names,
so the same code serves every driver (local files, iSCSI, ...).  The generic
implementations of the driver contract (``drivers.generic``) build on this.
os-brick's calls run in the eventlet hub when there is one
(``drivers.event_loop``): driver calls come from native threads.
"""

import errno
import os
import stat

from oslo_log import log as logging

from drivers import event_loop
from drivers import exception
from drivers import fileops
from drivers import throttle as throttling

LOG = logging.getLogger(__name__)

GiB = 1 << 30


def init_os_brick(conf, lock_path=None, in_process_privsep=False):
    """Prepare os-brick once per process, before any volume is attached.

    ``conf`` must be the global ``cfg.CONF``: os-brick registers its options
    there only.
    ``lock_path`` sets oslo.concurrency's lock directory (os-brick takes
    external locks).  ``in_process_privsep`` runs os-brick's privileged calls
    inside this process; only for a worker already running as root without
    a privsep daemon (tests, containers).
    """
    import os_brick
    from oslo_concurrency import lockutils

    if lock_path:
        lockutils.set_defaults(lock_path)
    if in_process_privsep:
        from os_brick.privileged import default as brick_privsep
        brick_privsep.set_client_mode(False)
    os_brick.setup(conf)


def _connector_for(conn_info, root_helper, use_multipath):
    from os_brick.initiator import connector

    protocol = conn_info['driver_volume_type'].upper()
    return connector.InitiatorConnector.factory(
        protocol, root_helper, use_multipath=use_multipath)


def local_connector(root_helper=None, my_ip=None, multipath=False,
                    enforce_multipath=False):
    """os-brick's description of this host as an initiator (a connector dict).

    It is what ``initialize_connection`` receives when the worker itself
    attaches a volume (generic copies, images, backups).
    """
    from os_brick.initiator import connector

    return event_loop.call(
        connector.get_connector_properties, root_helper,
        my_ip or '127.0.0.1', multipath, enforce_multipath)


class Attachment:
    """A volume attached to this host: connects on enter, disconnects on exit.

    ``with Attachment(conn_info) as path:`` gives the device path to read
    or write; leaving the block detaches (forcibly when it raised).
    """

    def __init__(self, conn_info, root_helper=None, use_multipath=False):
        self.conn_info = conn_info
        self.connector = _connector_for(conn_info, root_helper, use_multipath)
        self.device_info = None

    def __enter__(self):
        self.device_info = event_loop.call(self.connector.connect_volume,
                                           self.conn_info['data'])
        return self.device_info['path']

    def __exit__(self, *exc):
        try:
            event_loop.call(self.connector.disconnect_volume,
                            self.conn_info['data'], self.device_info,
                            force=exc[0] is not None,
                            ignore_errors=exc[0] is not None)
        except Exception:
            if exc[0] is None:
                raise
            LOG.exception('Disconnecting %s after a failed copy',
                          self.conn_info['driver_volume_type'])


def _zero_range(fd, offset, size, can_punch, zeros):
    if can_punch:
        try:
            fileops.punch_hole(fd, offset, size)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                raise
    end = offset + size
    while offset < end:
        offset += os.pwrite(fd, zeros[:min(len(zeros), end - offset)], offset)
    return False


def copy_between_paths(src_path, dst_path, length, block_size=4 << 20,
                       dst_is_zeroed=False, throttle=None, progress=None):
    """Copy ``length`` bytes from ``src_path`` onto ``dst_path`` and flush.

    Holes in the source are skipped when the destination is known to read
    zeros (``dst_is_zeroed``), punched in a destination file, and written as
    zeros on anything else.  ``throttle`` (``drivers.throttle.Throttle``)
    limits the bandwidth of the bytes copied; ``progress(nbytes)`` is called
    as the copy advances (holes count as done).
    """
    throttle = throttle or throttling.UNLIMITED
    progress = progress or _ignore
    src_fd = os.open(src_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dst_fd = os.open(dst_path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            can_punch = stat.S_ISREG(os.fstat(dst_fd).st_mode)
            zeros = bytes(block_size)
            offset = 0
            with throttle.copy():
                for start, size in fileops.data_extents(src_fd, length):
                    if start > offset and not dst_is_zeroed:
                        can_punch = _zero_range(dst_fd, offset,
                                                start - offset, can_punch,
                                                zeros)
                    progress(start - offset)
                    _copy_plain(src_fd, dst_fd, start, size, block_size,
                                throttle, progress)
                    offset = start + size
                if offset < length and not dst_is_zeroed:
                    _zero_range(dst_fd, offset, length - offset, can_punch,
                                zeros)
                progress(length - offset)
            os.fsync(dst_fd)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _ignore(nbytes):
    pass


def _copy_plain(src_fd, dst_fd, offset, size, block_size, throttle,
                progress):
    end = offset + size
    while offset < end:
        buf = os.pread(src_fd, min(block_size, end - offset), offset)
        if not buf:
            raise OSError(errno.EIO, 'source ended at offset %d' % offset)
        view = memoryview(buf)
        while view:
            n = os.pwrite(dst_fd, view, offset)
            view = view[n:]
            offset += n
        throttle.consume(len(buf))
        progress(len(buf))


def copy_volume_data(src_conn_info, dst_conn_info, size_gb,
                     block_size_mb=4, root_helper=None, use_multipath=False,
                     dst_is_zeroed=False, throttle=None, progress=None):
    """Attach both volumes with os-brick, copy ``size_gb`` GiB, detach.

    The destination is flushed before it is detached.  Raises
    VolumeBackendAPIException naming the failing step.  ``throttle`` and
    ``progress`` as for ``copy_between_paths``.
    """
    length = int(size_gb) * GiB
    try:
        with Attachment(src_conn_info, root_helper, use_multipath) as src, \
                Attachment(dst_conn_info, root_helper, use_multipath) as dst:
            LOG.debug('Copying %d GiB from %s to %s', size_gb, src, dst)
            copy_between_paths(src, dst, length, block_size_mb << 20,
                               dst_is_zeroed=dst_is_zeroed,
                               throttle=throttle, progress=progress)
    except exception.VolumeDriverException:
        raise
    except Exception as exc:
        raise exception.VolumeBackendAPIException(
            data='copying volume data failed: %s' % exc) from exc
