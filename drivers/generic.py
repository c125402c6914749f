"""Generic implementations of the driver contract's data-moving calls.

The reference promises that a driver which does not offer its own cloning,
image copy or backup "can fall back on a general solution" in the base
class.  These functions are that solution; ``BaseVD`` and ``SnapshotVD``
delegate to them.  They use nothing but the driver's own contract: export
the volume or snapshot to this host (``create_export`` and
``initialize_connection`` with the connector of ``BaseVD._local_connector``),
attach it with os-brick (``drivers.datapath``), move the bytes, detach, and
remove the export again.  os-brick must have been set up in the process
(``datapath.init_os_brick``).  The export is removed afterwards, so a volume
in use by a consumer must not be handed to these functions.

The collaborators that live outside ``drivers/`` are duck-typed and narrow:

``image_service``
    the interface of ``drivers.image_service``: ``show``, ``download``,
    ``update``, and when it has them ``local_path`` and ``staging_path``
    (a service without them is used as Glance would be), and
    ``progress(nbytes)``, a callable the copies report to.
``backup_service``
    ``backup(backup, volume_file)`` reads the volume from ``volume_file``;
    ``restore(backup, volume_id, volume_file)`` writes it into
    ``volume_file``.
``driver.db`` (the ``db`` constructor argument, as Cinder passes it)
    ``volume_get(context, volume_id)`` and ``snapshot_get(context,
    snapshot_id)`` return the objects drivers are handed.

Images are raw or qcow2, converted by ``qemu-img`` (``drivers.qemu_img``,
which also refuses hostile images); onto an encrypted volume, qemu-img
writes a LUKS container with the key of the driver's ``key_manager``.
"""

import contextlib
import os
import tempfile

from oslo_log import log as logging

from drivers import common
from drivers import datapath
from drivers import exception
from drivers import qemu_img
from drivers import throttle as throttling

LOG = logging.getLogger(__name__)

GiB = 1 << 30


def throttle_of(driver):
    """The driver's copy throttle (``BaseVD.set_throttle``), or none."""
    return getattr(driver, 'throttle', None) or throttling.UNLIMITED


def _undo(failing, step, *args):
    """Run a clean-up step; after a failure only log its own error."""
    if not failing:
        step(*args)
        return
    try:
        step(*args)
    except Exception:
        LOG.exception('Clean-up step %s failed after an earlier error',
                      getattr(step, '__name__', step))


@contextlib.contextmanager
def exported(driver, context, resource, connector, snapshot=False,
             keep_export=False):
    """Export ``resource`` to ``connector`` and yield its connection info.

    On exit the connection is terminated and the export removed (unless
    ``keep_export``: an export that was there before stays).
    """
    if snapshot:
        create, connect = (driver.create_export_snapshot,
                           driver.initialize_connection_snapshot)
        disconnect, remove = (driver.terminate_connection_snapshot,
                              driver.remove_export_snapshot)
    else:
        create, connect = driver.create_export, driver.initialize_connection
        disconnect, remove = (driver.terminate_connection,
                              driver.remove_export)
    view = common.with_updates(resource, create(context, resource, connector))
    failing = True
    try:
        info = connect(view, connector)
        if not info or 'driver_volume_type' not in info:
            raise exception.VolumeBackendAPIException(
                data='%s returned no connection info for %s'
                     % (connect.__name__, common.field(resource, 'id')))
        try:
            yield info
            failing = False
        finally:
            _undo(failing, disconnect, view, connector)
    finally:
        if not keep_export:
            _undo(failing, remove, context, view)


@contextlib.contextmanager
def attached(driver, context, resource, snapshot=False):
    """Export and attach ``resource`` here; yield its device path."""
    connector = driver._local_connector()
    with exported(driver, context, resource, connector, snapshot) as info:
        with datapath.Attachment(info) as path:
            yield path


def create_volume_by_copy(driver, volume, source, source_size_gb,
                          snapshot=False, context=None):
    """Create ``volume`` and copy into it the data of ``source``.

    ``source`` is a volume, or a snapshot when ``snapshot`` is set.  Returns
    the model update of ``create_volume``; on failure the new volume is
    deleted again.
    """
    size_gb = int(common.field(volume, 'size'))
    if size_gb < int(source_size_gb):
        raise exception.InvalidInput(
            reason='volume %s of %s GiB cannot hold the %s GiB of %s %s'
                   % (common.field(volume, 'id'), size_gb, source_size_gb,
                      'snapshot' if snapshot else 'volume',
                      common.field(source, 'id')))
    update = driver.create_volume(volume)
    created = common.with_updates(volume, update)
    try:
        connector = driver._local_connector()
        with exported(driver, context, source, connector, snapshot) as src, \
                exported(driver, context, created, connector) as dst:
            datapath.copy_volume_data(src, dst, source_size_gb,
                                      throttle=throttle_of(driver))
    except BaseException:
        _undo(True, driver.delete_volume, created)
        raise
    return update


def copy_volume_to(driver, context, volume, dest_conn_info, connector=None,
                   progress=None):
    """Copy the whole of ``volume`` onto a volume of another backend.

    ``dest_conn_info`` is the destination's connection info for
    ``connector`` (this host; its backend exported it); both are attached
    here with os-brick, the bytes copied under the driver's throttle and
    reported to ``progress(nbytes)``.  The source's export is removed
    afterwards only if this call made it.
    """
    size_gb = int(common.field(volume, 'size'))
    exported_before = bool(common.field(volume, 'provider_location'))
    connector = connector or driver._local_connector()
    with exported(driver, context, volume, connector,
                  keep_export=exported_before) as src:
        datapath.copy_volume_data(src, dest_conn_info, size_gb,
                                  throttle=throttle_of(driver),
                                  progress=progress)


class BoundedFile:
    """A binary file object that ends after its first ``limit`` bytes.

    Reads stop at the limit; a write crossing it raises ``overflow()``
    instead (a device file would otherwise just grow, or fail late).
    """

    def __init__(self, handle, limit, overflow):
        self._handle = handle
        self._limit = limit
        self._overflow = overflow

    def read(self, size=-1):
        left = self._limit - self._handle.tell()
        if left <= 0:
            return b''
        if size is None or size < 0 or size > left:
            size = left
        return self._handle.read(size)

    def write(self, data):
        if self._handle.tell() + memoryview(data).nbytes > self._limit:
            raise self._overflow()
        return self._handle.write(data)

    def tell(self):
        return self._handle.tell()

    def seek(self, offset, whence=os.SEEK_SET):
        if whence == os.SEEK_END:
            offset, whence = self._limit + offset, os.SEEK_SET
        return self._handle.seek(offset, whence)

    def flush(self):
        self._handle.flush()

    def fileno(self):
        return self._handle.fileno()


@contextlib.contextmanager
def _image_file(driver, image_service, context, image_id, meta):
    """A local file of the image and its pending checksum check.

    The store's own file when it keeps images on this host (checked by a
    parallel reader while the copy runs, unless the store knows the file
    unchanged since it computed the checksum), else a downloaded copy
    (checked by the service as it streams), removed afterwards.
    """
    local_path = getattr(image_service, 'local_path', None)
    path = local_path(context, image_id) if local_path else None
    if path:
        verified = getattr(image_service, 'is_verified', None)
        expected = (None if verified and verified(context, image_id)
                    else meta.get('checksum'))
        checksum = qemu_img.Checksum(path, expected, image_id)
        try:
            yield path, checksum
        finally:
            checksum.cancel()
        return
    directory = _conversion_dir(driver)
    fd, temp = tempfile.mkstemp(prefix='image-%s-' % image_id, dir=directory)
    try:
        with os.fdopen(fd, 'wb') as data:
            image_service.download(context, image_id, data)
            data.flush()
            os.fsync(data.fileno())
        yield temp, qemu_img.Checksum(temp, None, image_id)
    finally:
        os.unlink(temp)


def _conversion_dir(driver):
    configuration = getattr(driver, 'configuration', None)
    directory = (configuration.safe_get('image_conversion_dir')
                 if configuration is not None else None)
    if directory:
        os.makedirs(directory, exist_ok=True)
    return directory or None


def _image_format(image_id, meta):
    disk_format = (meta.get('disk_format') or 'raw').lower()
    container = (meta.get('container_format') or 'bare').lower()
    if container != 'bare':
        raise exception.ImageUnacceptable(
            image_id=image_id, reason='container format %r is not bare'
            % container)
    if disk_format not in qemu_img.FORMATS:
        raise exception.ImageUnacceptable(
            image_id=image_id, reason='disk format %r is not one of %s'
            % (disk_format, ', '.join(qemu_img.FORMATS)))
    return disk_format


def copy_image_to_volume(driver, context, volume, image_service, image_id):
    """Write image ``image_id`` onto ``volume`` with ``qemu-img convert``.

    The image is inspected in the format it claims (``drivers.qemu_img``)
    and refused before the volume is even attached when it is hostile or
    larger than the volume. Its bytes are converted onto the volume's
    device through the os-brick data path, under the driver's throttle;
    ``image_service.progress(nbytes)``, when the service has it, follows
    the copy. A checksum mismatch fails the copy after it (the caller
    discards the volume).
    """
    limit = int(common.field(volume, 'size')) * GiB
    with _checked_image(driver, context, volume, image_service, image_id,
                        limit) as (path, disk_format, found, checksum):
        with attached(driver, context, volume) as device:
            qemu_img.convert(path, disk_format, device, 'raw',
                             total_bytes=found['virtual-size'],
                             throttle=throttle_of(driver),
                             progress=getattr(image_service, 'progress',
                                              None),
                             target_exists=True, image_id=image_id)
        checksum.verify()


@contextlib.contextmanager
def _checked_image(driver, context, volume, image_service, image_id, limit):
    """The image as a local file, inspected, its checksum under way."""
    meta = image_service.show(context, image_id) or {}
    disk_format = _image_format(image_id, meta)
    declared = meta.get('virtual_size') or (
        meta.get('size') if disk_format == 'raw' else None)
    if declared and int(declared) > limit:
        raise exception.ImageUnacceptable(
            image_id=image_id, reason='its virtual size of %s bytes is '
            'larger than volume %s (%d bytes)'
            % (declared, common.field(volume, 'id'), limit))
    with _image_file(driver, image_service, context, image_id,
                     meta) as (path, checksum):
        found = qemu_img.inspect(path, disk_format, image_id, limit)
        checksum.start()
        yield path, disk_format, found, checksum


def _encryption_of(volume):
    volume_type = common.field(volume, 'volume_type')
    encryption = (common.field(volume_type, 'encryption')
                  if volume_type is not None else None)
    if not encryption:
        raise exception.InvalidVolume(
            reason='volume %s has no encrypted volume type'
            % common.field(volume, 'id'))
    return encryption


@contextlib.contextmanager
def _passphrase_file(driver, context, volume):
    """The volume's LUKS passphrase (its key, in hex, as Cinder and
    os-brick use it) in a file only this process reads, removed after."""
    import binascii
    key_manager = getattr(driver, 'key_manager', None)
    if key_manager is None:
        raise exception.VolumeDriverException(
            message='no key manager: encrypted volumes are not available')
    key_id = common.field(volume, 'encryption_key_id')
    if not key_id:
        raise exception.InvalidVolume(
            reason='volume %s has no encryption key'
            % common.field(volume, 'id'))
    key = key_manager.get(context, key_id)
    directory = tempfile.mkdtemp(prefix='luks-')
    path = os.path.join(directory, 'passphrase')
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(binascii.hexlify(key.get_encoded()))
        yield path
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(directory)


def _regrow(device, size):
    """A volume that is a file was cut to the container's size by qemu-img
    create: give it its size back (the tail past the container)."""
    import stat as stat_mod
    st = os.stat(device)
    if stat_mod.S_ISREG(st.st_mode) and st.st_size < size:
        os.truncate(device, size)


def copy_image_to_encrypted_volume(driver, context, volume, image_service,
                                   image_id):
    """Write image ``image_id`` onto ``volume`` inside a LUKS container.

    Cipher and key size from the volume type's encryption spec, the key
    from the driver's key manager (``driver.key_manager``, castellan's
    interface) by the volume's ``encryption_key_id``. ``qemu-img`` formats
    the volume and encrypts as it converts: no plaintext reaches the
    volume (or any file outside the image store).
    """
    options = qemu_img.luks_options(_encryption_of(volume))
    size = int(common.field(volume, 'size')) * GiB
    with _passphrase_file(driver, context, volume) as secret:
        payload = size - qemu_img.LUKS_HEADER_RESERVE
        with _checked_image(driver, context, volume, image_service, image_id,
                            payload) as (path, disk_format, found, checksum):
            with attached(driver, context, volume) as device:
                qemu_img.create_luks(device, payload, secret, options)
                _regrow(device, size)
                qemu_img.convert_to_luks(
                    path, disk_format, device, secret,
                    total_bytes=found['virtual-size'],
                    throttle=throttle_of(driver),
                    progress=getattr(image_service, 'progress', None),
                    image_id=image_id)
            checksum.verify()


def copy_volume_to_image(driver, context, volume, image_service, image_meta):
    """Upload the whole of ``volume`` as image ``image_meta['id']``.

    Converted by ``qemu-img`` into the requested ``disk_format`` (raw or
    qcow2) in the service's staging area, then handed to
    ``image_service.update``; a failed upload leaves no staged file.
    """
    image_id = image_meta['id']
    disk_format = _image_format(image_id, image_meta)
    size = int(common.field(volume, 'size')) * GiB
    staging_path = getattr(image_service, 'staging_path', None)
    staged = staging_path(context, image_id) if staging_path else None
    if not staged:
        fd, staged = tempfile.mkstemp(prefix='image-%s-' % image_id,
                                      dir=_conversion_dir(driver))
        os.close(fd)
    try:
        with attached(driver, context, volume) as device:
            qemu_img.convert(device, 'raw', staged, disk_format,
                             total_bytes=size, throttle=throttle_of(driver),
                             progress=getattr(image_service, 'progress',
                                              None),
                             image_id=image_id)
        image_service.update(context, image_id,
                             dict(image_meta, disk_format=disk_format,
                                  container_format='bare'), staged)
    except BaseException:
        try:
            os.unlink(staged)
        except FileNotFoundError:
            pass
        raise


def get_backup_device(driver, context, backup):
    """What to read for ``backup``: ``(volume_or_snapshot, is_snapshot)``.

    A temporary volume standing in for an in-use volume
    (``temp_volume_id``), else a (temporary or chosen) snapshot
    (``temp_snapshot_id``, ``snapshot_id``), else the volume itself; the
    objects are loaded through ``driver.db``.  Making the stand-ins needs
    database records: that is the caller's to arrange.
    """
    db = getattr(driver, 'db', None)
    if db is None:
        raise NotImplementedError(
            'the generic get_backup_device loads volumes and snapshots '
            'through the driver\'s db collaborator; this driver has none')
    temp_volume_id = common.field(backup, 'temp_volume_id')
    if temp_volume_id:
        return db.volume_get(context, temp_volume_id), False
    snapshot_id = (common.field(backup, 'temp_snapshot_id') or
                   common.field(backup, 'snapshot_id'))
    if snapshot_id:
        return db.snapshot_get(context, snapshot_id), True
    return db.volume_get(context, common.field(backup, 'volume_id')), False


def backup_volume(driver, context, backup, backup_service):
    """Hand the bytes of the backup's device to ``backup_service.backup``."""
    device, is_snapshot = driver.get_backup_device(context, backup)
    size = common.field(device, 'volume_size' if is_snapshot else 'size')
    limit = int(size) * GiB
    with attached(driver, context, device, snapshot=is_snapshot) as path, \
            open(path, 'rb') as source:
        backup_service.backup(backup, BoundedFile(source, limit, None))


def restore_backup(driver, context, backup, volume, backup_service):
    """Let ``backup_service.restore`` write the backup onto ``volume``."""
    volume_id = common.field(volume, 'id')
    limit = int(common.field(volume, 'size')) * GiB

    def too_big():
        return exception.InvalidVolume(
            reason='backup %s does not fit in volume %s of %d bytes'
                   % (common.field(backup, 'id'), volume_id, limit))

    with attached(driver, context, volume) as path, \
            open(path, 'r+b') as target:
        backup_service.restore(backup, volume_id,
                               BoundedFile(target, limit, too_big))
        target.flush()
        os.fsync(target.fileno())


def revert_by_copy(driver, context, volume, snapshot, temp_volume):
    """Revert ``volume`` to ``snapshot`` without a driver call for it.

    The snapshot is cloned into ``temp_volume`` (a scratch volume the caller
    names) with ``create_volume_from_snapshot``, copied over the volume
    through the data path, and the scratch volume is deleted again, on
    failure too.
    """
    size_gb = int(common.field(snapshot, 'volume_size'))
    update = driver.create_volume_from_snapshot(temp_volume, snapshot)
    temp = common.with_updates(temp_volume, update)
    failing = True
    try:
        connector = driver._local_connector()
        with exported(driver, context, temp, connector) as src, \
                exported(driver, context, volume, connector) as dst:
            datapath.copy_volume_data(src, dst, size_gb,
                                      throttle=throttle_of(driver))
        failing = False
    finally:
        _undo(failing, driver.delete_volume, temp)
