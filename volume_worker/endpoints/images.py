"""RPC endpoints of images: a volume's data uploaded as an image.

(A volume made from an image is a ``create_volume`` of a volume with
``image_id``: the manager picks ``flows.image.FROM_IMAGE`` for it.)
"""

from volume_worker.flows import image as image_flows
from volume_worker import validation


class ImageEndpoints:
    """Mixed into ``VolumeManager``; uses its ``operations``."""

    @validation.endpoint
    def copy_volume_to_image(self, context, volume_id, image_meta,
                             force=False):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_bool(force, 'force')
        image_meta = image_flows.check_image_meta(image_meta)
        image_meta['properties'] = {'volume_id': volume_id}
        with self.operations.acquire(
                image_flows.TO_IMAGE, context, volume=volume_id, force=force,
                store={'image_meta': image_meta}) as op:
            op.run()
