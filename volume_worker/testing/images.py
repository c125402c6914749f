"""An image service in memory, for tests that need images but no files.

It implements ``drivers.image_service.ImageService`` over dicts: bytes of
raw images only (``virtual_size`` is the size), checksums verified on
download as the real store does.
"""

import hashlib
import io
import uuid

from drivers import exception
from drivers import image_service


class MemoryImageService(image_service.ImageService):

    def __init__(self):
        self.meta = {}
        self.data = {}

    def show(self, context, image_id):
        try:
            return dict(self.meta[image_id])
        except KeyError:
            raise exception.ImageNotFound(image_id=image_id) from None

    def list(self, context):
        return [dict(m) for m in self.meta.values()]

    def download(self, context, image_id, data):
        meta = self.show(context, image_id)
        body = self.data[image_id]
        if hashlib.sha256(body).hexdigest() != meta['checksum']:
            raise exception.ImageUnacceptable(image_id=image_id,
                                              reason='checksum mismatch')
        data.write(body)

    def create(self, context, image_meta):
        image_id = image_meta.get('id') or str(uuid.uuid4())
        if image_id not in self.meta:
            self.meta[image_id] = {
                'id': image_id, 'name': image_meta.get('name'),
                'status': 'queued',
                'disk_format': image_meta.get('disk_format') or 'raw',
                'container_format': 'bare', 'size': None,
                'virtual_size': None, 'checksum': None,
                'properties': dict(image_meta.get('properties') or {})}
        return self.show(context, image_id)

    def update(self, context, image_id, image_meta, data):
        if isinstance(data, str):
            with open(data, 'rb') as f:
                body = f.read()
        else:
            body = data.read()
        meta = self.meta[image_id]
        meta.update(status='active', size=len(body), virtual_size=len(body),
                    checksum=hashlib.sha256(body).hexdigest())
        self.data[image_id] = body
        return self.show(context, image_id)

    def delete(self, context, image_id):
        self.meta.pop(image_id, None)
        self.data.pop(image_id, None)

    def add(self, body, name='image', disk_format='raw'):
        """A new active image of ``body``; returns its id."""
        meta = self.create(None, {'name': name, 'disk_format': disk_format})
        self.update(None, meta['id'], {}, io.BytesIO(body))
        return meta['id']
