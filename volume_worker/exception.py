"""Errors of the worker, each with a message template.

Driver errors (``drivers.exception``) share the same base class, so the RPC
layer treats both alike: an expected error goes back to a caller as a clear
message, never as a traceback in the worker's log.
"""

from drivers.exception import *  # noqa: F401,F403 - one vocabulary
from drivers.exception import VolumeDriverException as _Base


class WorkerException(_Base):
    message = 'An unknown error occurred in the volume worker.'


class VolumeExists(WorkerException):
    message = 'Volume %(volume_id)s already exists.'
    code = 409


class VolumeTypeNotFound(WorkerException):
    message = 'Volume type %(volume_type_id)s could not be found.'
    code = 404


class ServiceNotFound(WorkerException):
    message = 'Service %(binary)s on %(host)s could not be found.'
    code = 404


class InvalidStatus(WorkerException):
    message = ('%(resource)s %(resource_id)s is %(status)s; '
               '%(operation)s needs one of: %(expected)s.')
    code = 409


class IncompatibleObjectVersion(WorkerException):
    message = ('%(objname)s version %(objver)s is newer than this worker '
               'supports (%(supported)s).')
    code = 400


class DriverNotInitialized(WorkerException):
    message = 'Backend %(backend)s is not initialized: %(reason)s'
    code = 503


class BackendFrozen(WorkerException):
    message = 'Backend %(backend)s is frozen; %(operation)s is not allowed.'
    code = 409


class FlowFailed(WorkerException):
    message = '%(operation)s of %(resource_id)s failed: %(reason)s'


class ShuttingDown(WorkerException):
    message = 'The worker is shutting down; %(operation)s was not started.'
    code = 503
