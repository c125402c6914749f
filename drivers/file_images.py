"""The file driver's ``clone_image``: a raw image becomes a volume by reflink.

When the image store keeps the image as a file on the same btrfs/XFS
filesystem as the volumes, the volume shares the image's extents: no byte
is copied, whatever the size. Anything else (qcow2, another filesystem, a
store without files, a filesystem without reflinks) is declined, and the
image is copied instead (``copy_image_to_volume``).
"""

import errno
import os

from oslo_log import log as logging

from drivers import fileops
from drivers import qemu_img

LOG = logging.getLogger(__name__)

GiB = 1 << 30

NOT_CLONED = (None, False)


def _local_file(image_location):
    url = image_location[0] if isinstance(image_location,
                                          (list, tuple)) else image_location
    if isinstance(url, str) and url.startswith('file://'):
        return url[len('file://'):]
    return None


def clone_raw_image(clone_method, volume_path, size_gb, image_location,
                    image_meta, mode):
    """``(model_update, cloned)`` as ``clone_image`` returns it.

    The image is inspected as the copy would (a raw image hiding another
    format's header, or larger than the volume, is refused); its checksum
    is not read: the clone is meant to cost nothing, and the store verified
    it when the image was written.
    """
    if clone_method != fileops.CLONE_REFLINK:
        return NOT_CLONED
    if (image_meta.get('disk_format') != 'raw' or
            (image_meta.get('container_format') or 'bare') != 'bare'):
        return NOT_CLONED
    path = _local_file(image_location)
    if not path or not os.path.isfile(path):
        return NOT_CLONED
    if os.stat(path).st_dev != os.stat(os.path.dirname(volume_path)).st_dev:
        return NOT_CLONED
    size = int(size_gb) * GiB
    qemu_img.inspect(path, 'raw', image_meta.get('id'), size)
    try:
        fileops.clone_file(path, volume_path, size, fileops.CLONE_REFLINK,
                           mode=mode)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        LOG.info('Image %s not cloned by reflink (%s); copying it',
                 image_meta.get('id'), exc)
        return NOT_CLONED
    return None, True
