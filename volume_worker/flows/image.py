"""Volumes from images, and images from volumes.

``create_volume_from_image``: a new volume with ``image_id``, ``downloading``
while it is made: the driver's ``clone_image`` first (the file driver
shares a raw image's extents by reflink), else ``create_volume`` and
``copy_image_to_volume`` (generic: ``qemu-img convert`` through the os-brick
data path, hostile images refused before a byte is written). A volume of an
encrypted type gets a key from the key manager first, is never cloned, and
is written by ``copy_image_to_encrypted_volume`` (LUKS); then
``bootable`` and the image's metadata are recorded and the volume exported.
Resume rule: resume (the clone and the create are checkpointed; an
interrupted copy is cleared with ``clear_download`` and made again).

``copy_volume_to_image``: the volume ``uploading`` and back to where it was;
the image is registered in the image service, the driver's
``copy_volume_to_image`` fills it (raw or qcow2). A volume in use
(``force``) is read from a temporary volume made from it, as a backup's
stand-in is, and removed after. Resume rule: revert (the image, any partial
file of it and any temporary volume or snapshot are deleted; the volume's
data never changed).

Copies publish ``<event>.progress`` with their percent.
"""

import inspect
import uuid

from oslo_log import log as logging

from drivers import exception as driver_exception
from drivers import qemu_img
from volume_worker import exception
from volume_worker.flows import backup_source
from volume_worker.flows import common
from volume_worker.flows import create_volume
from volume_worker.flows import keys
from volume_worker.flows import runner
from volume_worker import progress
from volume_worker import validation
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

GiB = 1 << 30


class _Following:
    """The image service as a driver sees it during one copy: with the
    copy's ``progress(nbytes)``."""

    def __init__(self, service, reporter):
        self._service = service
        self.progress = reporter.advance

    def __getattr__(self, name):
        return getattr(self._service, name)


def call_clone_image(driver, context, volume, location, meta, service):
    """``clone_image`` in whichever form the driver defines.

    The reference's ``clone_image(volume, image_location, image_id,
    image_meta, image_service)`` and later Cinder's ``clone_image(context,
    volume, image_location, image_meta, image_service)``: arguments go by
    the names the driver's signature has.
    """
    given = {'context': context, 'volume': volume,
             'image_location': location, 'image_id': meta['id'],
             'image_meta': meta, 'image_service': service}
    params = inspect.signature(driver.clone_image).parameters
    names = [n for n, p in params.items()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if names and all(n in given for n in names):
        return common.call_driver(driver.clone_image,
                                  *(given[n] for n in names))
    # Other names, or a wrapper hiding them: the form by whether it starts
    # with a context, else the reference's.
    if names and names[0] in ('context', 'ctxt'):
        args = (context, volume, location, meta, service)
    else:
        args = (volume, location, meta['id'], meta, service)
    return common.call_driver(driver.clone_image, *args)


class CloneImage(common.VolumeTask):
    """Let the driver make the volume from the image without a copy.

    Revert deletes a volume it made.
    """

    checkpoint = True
    default_provides = ('clone_update', 'cloned')

    def execute(self, context, driver, volume, images, image_meta,
                key_update):
        common.merge_model_update(volume, key_update)
        if keys.encryption_of(volume):
            return {}, False  # shared plaintext extents would defeat it
        try:
            location = images.get_location(context, image_meta['id'])
        except Exception:
            LOG.exception('No location of image %s; copying it',
                          image_meta['id'])
            return {}, False
        update, cloned = call_clone_image(driver, context, volume, location,
                                          image_meta, images) or (None, False)
        return (update or {}) if cloned else {}, bool(cloned)

    def revert(self, driver, volume, result=None, **kwargs):
        if isinstance(result, (list, tuple)) and result[1]:
            try:
                common.call_driver(driver.delete_volume, volume)
            except Exception:
                LOG.exception('Could not remove cloned volume %s', volume.id)


class CreateUnlessCloned(create_volume.CreateOnBackend):
    """Create the (empty) volume on the backend, unless it was cloned."""

    def execute(self, driver, volume, cloned, clone_update):
        if cloned:
            return {}
        common.merge_model_update(volume, clone_update)
        return super().execute(driver, volume)


class CopyImage(common.VolumeTask):
    """Write the image onto the volume (``copy_image_to_volume``).

    Run again after a crash, it first clears what the interrupted copy
    left (``clear_download``). Revert clears it too; the create's revert
    then deletes the volume.
    """

    idempotent = True

    def execute(self, op, context, driver, notifier, volume, images,
                image_meta, cloned, create_update, key_update):
        if cloned:
            return
        common.merge_model_update(volume, key_update, create_update)
        if op.resumed:
            common.call_driver(driver.clear_download, context, volume)
        size = int(image_meta.get('virtual_size') or 0) or volume.size * GiB
        copy = (driver.copy_image_to_encrypted_volume
                if keys.encryption_of(volume) else driver.copy_image_to_volume)
        with progress.ProgressReporter(
                notifier, op.family.event, volume.notification_payload(),
                size) as reporter:
            common.call_driver(copy, context, volume,
                               _Following(images, reporter),
                               image_meta['id'])

    def revert(self, context, driver, volume, result=None, **kwargs):
        try:
            common.call_driver(driver.clear_download, context, volume)
        except Exception:
            LOG.exception('clear_download of volume %s failed', volume.id)


class RecordImage(common.VolumeTask):
    """The volume is bootable and remembers the image it came from."""

    idempotent = True
    default_provides = 'image_update'

    def execute(self, image_meta):
        keep = ('id', 'name', 'disk_format', 'container_format', 'size',
                'virtual_size', 'checksum')
        return {'bootable': True,
                'image_metadata': {k: (None if image_meta.get(k) is None
                                       else str(image_meta[k]))
                                   for k in keep}}


def _build_from_image():
    return common.operation_flow(
        'create_volume_from_image', keys.CreateKey(), CloneImage(),
        CreateUnlessCloned(), CopyImage(), RecordImage(),
        create_volume.CreateExport(),
        updates=('key_update', 'clone_update', 'create_update',
                 'image_update', 'export_update'))


def _check_from_image(op):
    """The image exists, is active, and fits the volume; its metadata is
    journaled with the operation."""
    create_volume.check(op)
    volume = op.subject
    requested = op.requested or volume
    if requested.image_id != volume.image_id:
        raise exception.ResourceExists(
            resource='volume', resource_id=volume.id,
            reason='from image %s' % volume.image_id)
    service = op.image_service
    if service is None:
        raise exception.InvalidInput(reason='this worker has no image '
                                     'service')
    meta = common.call_driver(service.show, op.context, volume.image_id)
    if meta.get('status', 'active') != 'active':
        raise exception.InvalidInput(
            reason='image %s is %s, not active' % (volume.image_id,
                                                   meta.get('status')))
    if meta.get('disk_format') not in qemu_img.FORMATS:
        raise exception.InvalidInput(
            reason='image %s has disk format %r; volumes are made from %s'
            % (volume.image_id, meta.get('disk_format'),
               ', '.join(qemu_img.FORMATS)))
    virtual_size = int(meta.get('virtual_size') or meta.get('size') or 0)
    if virtual_size > volume.size * GiB:
        raise exception.InvalidInput(
            reason='image %s of %d bytes does not fit in volume %s of %d GiB'
            % (volume.image_id, virtual_size, volume.id, volume.size))
    op.store['image_meta'] = meta


FROM_IMAGE = runner.FlowFamily(
    'create_volume_from_image', _build_from_image,
    subject=runner.Role('volume', new=True), event='volume.create',
    check=_check_from_image, on_resume=runner.RESUME)


# -- volume to image ------------------------------------------------------------

class RegisterImage(common.VolumeTask):
    """Register the image (``queued``); revert deletes it with any partial
    file of it."""

    idempotent = True

    def execute(self, context, images, image_meta):
        common.call_driver(images.create, context, image_meta)

    def revert(self, context, images, image_meta, result=None, **kwargs):
        try:
            common.call_driver(images.delete, context, image_meta['id'])
        except Exception:
            LOG.exception('Could not delete image %s after a failed upload',
                          image_meta['id'])


def _stand_in_ids(image_meta):
    key = image_meta['id']
    return (str(uuid.uuid5(uuid.NAMESPACE_URL, 'image-volume:' + key)),
            str(uuid.uuid5(uuid.NAMESPACE_URL, 'image-snapshot:' + key)))


class TakeUploadSource(common.VolumeTask):
    """What the upload reads: the volume, or for one in use (``force``) a
    temporary volume holding its data.

    As a backup does (flows/backup_source.py): through a temporary
    snapshot when the driver's ``backup_use_temp_snapshot()`` says so, else
    a clone of the volume; an in-use volume's export and data belong to its
    consumer. Their ids derive from the image's: a revert (after a failure
    or a crash) removes whatever of them exists.
    """

    idempotent = True
    default_provides = 'upload_source'

    def execute(self, op, driver, volume, image_meta):
        if op.loaded_status != VolumeStatus.IN_USE:
            return volume
        volume_id, snapshot_id = _stand_in_ids(image_meta)
        purpose = 'image %s' % image_meta['id']
        clone_from = volume
        if common.call_driver(driver.backup_use_temp_snapshot):
            clone_from = backup_source.make_snapshot(driver, volume,
                                                     snapshot_id, purpose)
        return backup_source.make_volume(driver, volume, clone_from,
                                         volume_id, purpose)

    def revert(self, driver, image_meta, **kwargs):
        try:
            backup_source.drop_ids(driver, *_stand_in_ids(image_meta))
        except Exception:
            LOG.exception('Could not remove the temporary resources of the '
                          'upload to image %s', image_meta['id'])


class DropUploadSource(common.VolumeTask):
    """Remove the temporary volume and snapshot, if any. Nothing to undo."""

    idempotent = True

    def execute(self, driver, image_meta):
        backup_source.drop_ids(driver, *_stand_in_ids(image_meta))


class UploadVolume(common.VolumeTask):
    """Fill the image with the volume's data (``copy_volume_to_image``).

    No revert of its own: deleting the image removes what it wrote.
    """

    idempotent = True

    def execute(self, op, context, driver, notifier, volume, images,
                image_meta, upload_source):
        with progress.ProgressReporter(
                notifier, op.family.event,
                dict(volume.notification_payload(),
                     image_id=image_meta['id']),
                volume.size * GiB) as reporter:
            common.call_driver(driver.copy_volume_to_image, context,
                               upload_source, _Following(images, reporter),
                               image_meta)


def _build_to_image():
    return common.operation_flow('copy_volume_to_image', RegisterImage(),
                                 TakeUploadSource(), UploadVolume(),
                                 DropUploadSource())


def check_image_meta(image_meta):
    """The caller's image metadata, checked: ``id``, ``name``,
    ``disk_format``."""
    if not isinstance(image_meta, dict):
        raise exception.InvalidInput(reason='image_meta must be an object')
    unknown = set(image_meta) - {'id', 'name', 'disk_format',
                                 'container_format'}
    if unknown:
        raise exception.InvalidInput(reason='image_meta takes no %s'
                                     % ', '.join(sorted(unknown)))
    validation.check_uuid(image_meta.get('id'), 'image id')
    name = image_meta.get('name')
    if name is not None:
        validation.check_text(name, 'image name', 255)
    disk_format = image_meta.get('disk_format') or 'raw'
    if disk_format not in qemu_img.FORMATS:
        raise exception.InvalidInput(
            reason='disk_format must be one of %s, not %r'
            % (', '.join(qemu_img.FORMATS), disk_format))
    if image_meta.get('container_format', 'bare') != 'bare':
        raise exception.InvalidInput(reason='container_format must be bare')
    return {'id': image_meta['id'], 'name': name, 'disk_format': disk_format,
            'container_format': 'bare'}


def _check_to_image(op):
    """A new image id; an image already made from this request is done.

    An encrypted volume is refused: its image would be ciphertext labelled
    raw, its key not shared with the image (Cinder's
    ``cinder_encryption_key_id`` is not carried over yet).
    """
    if op.subject.encryption_key_id:
        raise exception.InvalidInput(
            reason='volume %s is encrypted; uploading encrypted volumes to '
                   'images is not supported' % op.subject.id)
    service = op.image_service
    if service is None:
        raise exception.InvalidInput(reason='this worker has no image '
                                     'service')
    image_id = op.store['image_meta']['id']
    try:
        existing = common.call_driver(service.show, op.context, image_id)
    except driver_exception.ImageNotFound:
        return
    if (existing.get('status') == 'active' and
            (existing.get('properties') or {}).get('volume_id') ==
            op.subject.id):
        op.done = True
        return
    raise exception.ResourceExists(resource='image', resource_id=image_id,
                                   reason='choose a new image id')


TO_IMAGE = runner.FlowFamily(
    'copy_volume_to_image', _build_to_image, subject=runner.Role('volume'),
    event='volume.copy_to_image', check=_check_to_image,
    on_resume=runner.REVERT)
