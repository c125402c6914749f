"""Errors a storage driver raises, each with a message template and an HTTP-like code.

The worker maps these onto RPC errors, so the message must say what failed and why.
"""

import functools


class VolumeDriverException(Exception):
    """Root of every driver error.

    Subclasses set ``message``, a %-format template filled from the keyword
    arguments, and ``code``.  An explicit message overrides the template.
    """

    message = "An unknown storage driver error occurred."
    code = 500

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        self.kwargs.setdefault('code', self.code)
        if message is None:
            message = self._fill_template(kwargs)
        self.msg = str(message)
        super().__init__(self.msg)

    def _fill_template(self, kwargs):
        try:
            return self.message % kwargs
        except (KeyError, TypeError, ValueError):
            # A missing keyword must not hide the original failure: keep the
            # template and show what we were given.
            given = ', '.join('%s=%r' % item for item in sorted(kwargs.items())
                              if item[0] != 'code')
            return '%s (%s)' % (self.message, given)

    def __str__(self):
        return self.msg


class VolumeBackendAPIException(VolumeDriverException):
    message = "Bad or unexpected response from the storage backend: %(data)s"


def os_errors_as_backend_errors(method):
    """Report a failing system call of ``method`` as a
    VolumeBackendAPIException naming the method."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except OSError as exc:
            raise VolumeBackendAPIException(
                data='%s failed: %s' % (method.__name__, exc)) from exc
    return wrapper


class NotFound(VolumeDriverException):
    message = "Resource could not be found."
    code = 404


class VolumeNotFound(NotFound):
    message = "Volume %(volume_id)s could not be found on the backend."


class SnapshotNotFound(NotFound):
    message = "Snapshot %(snapshot_id)s could not be found on the backend."


class Invalid(VolumeDriverException):
    message = "Unacceptable parameters."
    code = 400


class InvalidInput(Invalid):
    message = "Invalid input received: %(reason)s"


class InvalidVolume(Invalid):
    message = "Invalid volume: %(reason)s"


class InvalidSnapshot(Invalid):
    message = "Invalid snapshot: %(reason)s"


class InvalidConnectorException(Invalid):
    message = "Connector does not have the required information: %(missing)s"


class InvalidReplicationTarget(Invalid):
    message = "Invalid replication target: %(reason)s"


class ManageExistingInvalidReference(Invalid):
    message = ("Cannot manage the existing object %(existing_ref)s: "
               "%(reason)s")


class ManageExistingVolumeTypeMismatch(Invalid):
    message = ("The existing object does not match the requested volume "
               "type: %(reason)s")


class VolumeIsBusy(VolumeDriverException):
    message = "Volume %(volume_name)s is still in use: %(reason)s"
    code = 409


class SnapshotIsBusy(VolumeDriverException):
    message = "Snapshot %(snapshot_name)s is still in use: %(reason)s"
    code = 409


class UnableToFailOver(VolumeDriverException):
    message = "Unable to fail over to a replication target: %(reason)s"


class ImageUnacceptable(Invalid):
    message = "Image %(image_id)s is unacceptable: %(reason)s"


class ImageNotFound(NotFound):
    message = "Image %(image_id)s could not be found."


class ImageCopyFailure(VolumeDriverException):
    message = "Copying image %(image_id)s failed: %(reason)s"
