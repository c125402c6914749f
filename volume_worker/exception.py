"""Errors of the worker, each with a message template and an HTTP-like code.

These are the worker's own: a request refused, a resource missing from the
database, a status that does not allow an operation. Drivers raise theirs
(``drivers.exception``); the RPC layer returns both kinds to a caller as a
clear one-line error (``EXPECTED``). Anything else is a bug and keeps its
traceback.
"""

from drivers import exception as driver_exception


class WorkerException(Exception):
    """Root of the worker's errors.

    ``message`` is a %-format template filled from the keyword arguments;
    an explicit message overrides it.
    """

    message = 'An unknown error occurred in the volume worker.'
    code = 500

    def __init__(self, message=None, **kwargs):
        self.kwargs = dict(kwargs, code=self.code)
        if message is None:
            try:
                message = self.message % kwargs
            except (KeyError, TypeError, ValueError):
                # A missing keyword must not hide the error being raised.
                message = '%s (%s)' % (self.message, ', '.join(
                    '%s=%r' % item for item in sorted(kwargs.items())))
        self.msg = str(message)
        super().__init__(self.msg)

    def __str__(self):
        return self.msg


# What an endpoint reports to its caller as a one-line refusal.
EXPECTED = (WorkerException, driver_exception.VolumeDriverException)


class NotFound(WorkerException):
    message = 'Resource could not be found.'
    code = 404


class VolumeNotFound(NotFound):
    message = 'Volume %(volume_id)s does not exist.'


class SnapshotNotFound(NotFound):
    message = 'Snapshot %(snapshot_id)s does not exist.'


class AttachmentNotFound(NotFound):
    message = 'Attachment %(attachment_id)s does not exist.'


class GroupNotFound(NotFound):
    message = 'Group %(group_id)s does not exist.'


class GroupSnapshotNotFound(NotFound):
    message = 'Group snapshot %(group_snapshot_id)s does not exist.'


class BackupNotFound(NotFound):
    message = 'Backup %(backup_id)s does not exist.'


class GroupTypeNotFound(NotFound):
    message = 'Group type %(group_type_id)s does not exist.'


class VolumeTypeNotFound(NotFound):
    message = 'Volume type %(volume_type_id)s does not exist.'


class ServiceNotFound(NotFound):
    message = 'Service %(binary)s on %(host)s does not exist.'


class Invalid(WorkerException):
    message = 'Unacceptable parameters.'
    code = 400


class InvalidInput(Invalid):
    message = 'Invalid input received: %(reason)s'


class InvalidVolume(Invalid):
    message = 'Invalid volume: %(reason)s'


class InvalidSnapshot(Invalid):
    message = 'Invalid snapshot: %(reason)s'


class InvalidConnector(Invalid):
    message = 'Invalid connector: %(reason)s'


class NotOwned(Invalid):
    message = '%(resource)s %(resource_id)s belongs to %(owner)s, not %(backend)s.'


class ResourceExists(WorkerException):
    message = '%(resource)s %(resource_id)s already exists: %(reason)s'
    code = 409


class InvalidStatus(WorkerException):
    message = ('%(resource)s %(resource_id)s is %(status)s; '
               '%(operation)s needs one of: %(expected)s.')
    code = 409


class ResourceInUse(WorkerException):
    message = '%(resource)s %(resource_id)s is in use: %(reason)s'
    code = 409


class IncompatibleObjectVersion(WorkerException):
    message = ('%(objname)s version %(objver)s is newer than this worker '
               'supports (%(supported)s).')
    code = 400


class RPCVersionTooNew(WorkerException):
    message = ('%(method)s needs RPC API %(version)s, but this client is '
               'capped at %(cap)s ([upgrade_levels] volume).')
    code = 400


class GroupFailed(WorkerException):
    message = 'Group %(group_id)s: %(reason)s'


class BackupFailed(WorkerException):
    message = 'Backup %(backup_id)s: %(reason)s'


class RetypeNotPossible(WorkerException):
    message = 'Volume %(volume_id)s cannot be retyped: %(reason)s'
    code = 409


class MigrationFailed(WorkerException):
    message = 'Volume %(volume_id)s was not migrated: %(reason)s'
    code = 409


class DriverNotFound(WorkerException):
    message = ('[%(backend)s] volume_driver = %(path)s cannot be loaded: '
               '%(reason)s')


class DriverNotInitialized(WorkerException):
    message = 'Backend %(backend)s is not initialized: %(reason)s'
    code = 503


class ShuttingDown(WorkerException):
    message = 'The worker is shutting down; %(operation)s was not started.'
    code = 503


class BackendFrozen(WorkerException):
    message = ('Backend %(backend)s is frozen (freeze_host, or a failover '
               'in progress or failed): %(operation)s is refused; reads, '
               'attachments and thaw_host still work.')
    code = 409


class FailoverFailed(WorkerException):
    message = 'Failover of %(backend)s failed: %(reason)s'


class BackendNotResponding(WorkerException):
    message = ('Backend %(backend)s: %(call)s has not returned within '
               '%(seconds)s s.')
    code = 504


class ActiveActiveNotSupported(WorkerException):
    message = ('Backend %(backend)s cannot run clustered (%(why)s): its '
               'driver %(driver)s does not declare SUPPORTS_ACTIVE_ACTIVE = '
               'True. Unset [DEFAULT] cluster and workers, or use a driver '
               'that supports active-active.')


class OperationFenced(WorkerException):
    """A journal write of an operation another worker has taken over.

    Raised inside the operation's own write transaction, which it rolls
    back: a worker whose lease expired (stopped, cut off) writes nothing
    more for an operation a peer now runs.
    """
    message = ('Operation %(operation_id)s now belongs to another worker '
               '(its lease expired here); this worker stops it without '
               'writing or reverting anything.')
    code = 409


class CoordinationUnavailable(WorkerException):
    message = ('The lock backend (%(url)s) is unreachable: this worker takes '
               'no new work until it is back.')
    code = 503
