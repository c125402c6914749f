"""What a driver's ``image_service`` argument offers: the image-service interface.

The driver contract hands ``copy_image_to_volume``, ``copy_volume_to_image``
and ``clone_image`` an image service; this is all a driver (and the generic
implementations in ``drivers.generic``) may call on it.  The worker's own
embedded store (``volume_worker.image_store.LocalImageStore``) implements it;
a Glance-backed service would implement the same methods over Glance's API
(``local_path`` and ``staging_path`` then return None: bytes go through
``download`` and ``update``).

Image metadata is a dict: ``id``, ``name``, ``status`` (``queued`` ->
``saving`` -> ``active``), ``disk_format`` (``raw``/``qcow2``),
``container_format`` (``bare``), ``size`` (bytes of the file),
``virtual_size`` (bytes of the disk it holds), ``checksum`` (sha256, hex).
"""

import abc


class ImageService(abc.ABC):

    @abc.abstractmethod
    def show(self, context, image_id):
        """The image's metadata; raises ``ImageNotFound``."""

    @abc.abstractmethod
    def list(self, context):
        """Metadata of every image."""

    @abc.abstractmethod
    def download(self, context, image_id, data):
        """Write the image's bytes into the binary file object ``data``.

        The checksum is verified as the bytes go: a mismatch raises
        ``ImageUnacceptable`` (after the bytes were written).
        """

    def local_path(self, context, image_id):
        """A file on this host holding the image's bytes, or None.

        Unverified: the caller checks the bytes against ``checksum``.
        """
        return None

    def is_verified(self, context, image_id):
        """Whether ``local_path``'s file is known unchanged since its
        checksum was computed (then a copy need not read it twice)."""
        return False

    def get_location(self, context, image_id):
        """``(url, locations)`` as Cinder's Glance service gives them."""
        return None, []

    @abc.abstractmethod
    def create(self, context, image_meta):
        """Register a new image (``queued``, no bytes yet); its metadata.

        An ``id`` in ``image_meta`` is kept (a repeated create with the
        same id returns the image as it is).
        """

    def staging_path(self, context, image_id):
        """Where a converter may write the image's bytes before ``update``,
        on the store's own filesystem (None: anywhere)."""
        return None

    @abc.abstractmethod
    def update(self, context, image_id, image_meta, data):
        """Store the image's bytes and metadata; it becomes ``active``.

        ``data`` is a binary file object to read, or the path of a finished
        file the service takes over (moved into place when it can).
        """

    @abc.abstractmethod
    def delete(self, context, image_id):
        """Remove the image with its bytes and any partial upload; no error
        when it does not exist."""
