"""Status enums of every resource, defined once; no bare status strings elsewhere."""

from oslo_versionedobjects import fields


class _StatusEnum(fields.Enum):
    """An enum whose values are also class attributes (VolumeStatus.AVAILABLE)."""

    ALL = ()

    def __init__(self):
        super().__init__(valid_values=self.ALL)


class VolumeStatus(_StatusEnum):
    CREATING = 'creating'
    AVAILABLE = 'available'
    DELETING = 'deleting'
    DELETED = 'deleted'
    ERROR = 'error'
    ERROR_DELETING = 'error_deleting'
    EXTENDING = 'extending'
    ERROR_EXTENDING = 'error_extending'
    ATTACHING = 'attaching'
    DETACHING = 'detaching'
    IN_USE = 'in-use'
    MAINTENANCE = 'maintenance'
    ALL = (CREATING, AVAILABLE, DELETING, DELETED, ERROR, ERROR_DELETING,
           EXTENDING, ERROR_EXTENDING, ATTACHING, DETACHING, IN_USE,
           MAINTENANCE)


class VolumeStatusField(fields.BaseEnumField):
    AUTO_TYPE = VolumeStatus()


class SnapshotStatus(_StatusEnum):
    CREATING = 'creating'
    AVAILABLE = 'available'
    DELETING = 'deleting'
    DELETED = 'deleted'
    ERROR = 'error'
    ERROR_DELETING = 'error_deleting'
    RESTORING = 'restoring'
    ALL = (CREATING, AVAILABLE, DELETING, DELETED, ERROR, ERROR_DELETING,
           RESTORING)


class SnapshotStatusField(fields.BaseEnumField):
    AUTO_TYPE = SnapshotStatus()


class ReplicationStatus(_StatusEnum):
    DISABLED = 'disabled'
    ENABLED = 'enabled'
    FAILING_OVER = 'failing-over'
    FAILED_OVER = 'failed-over'
    FAILOVER_ERROR = 'failover-error'
    ALL = (DISABLED, ENABLED, FAILING_OVER, FAILED_OVER, FAILOVER_ERROR)


class ReplicationStatusField(fields.BaseEnumField):
    AUTO_TYPE = ReplicationStatus()


# -- transitions ----------------------------------------------------------------
#
# For every operation, what it asks of each resource it touches. A resource
# the operation acts on moves from one of ``allowed_from`` through ``via``
# to ``to`` (or to ``error`` if the operation fails); a resource it only
# holds (a snapshot's parent volume) keeps its status, which must be one of
# ``allowed_from``. ``ABSENT`` stands for "not in the database yet" (a
# create); ``settled`` are the statuses in which a repeated request is
# already done. ``on_restart`` says what start-up turns a status left by an
# operation that journaled nothing into.

ABSENT = None


class Transition:
    __slots__ = ('allowed_from', 'forced', 'via', 'to', 'error', 'settled')

    def __init__(self, allowed_from, via=None, to=None, error=None,
                 forced=(), settled=()):
        self.allowed_from = tuple(allowed_from) if allowed_from else None
        self.forced = tuple(forced)
        self.via = via
        self.to = to
        self.error = error
        self.settled = tuple(settled)

    @property
    def changes_status(self):
        return self.via is not None

    def allows(self, status, force=False):
        if self.allowed_from is None:  # any status
            return True
        return status in self.allowed_from or (force and status in self.forced)

    def expected(self, force=False):
        allowed = tuple(s for s in (self.allowed_from or ()) if s is not ABSENT)
        return allowed + (self.forced if force else ())


def hold(allowed_from=None, forced=()):
    """A resource the operation keeps still (locked, status checked, unchanged)."""
    return Transition(allowed_from, forced=forced)


class TransitionTable:
    def __init__(self, resource_type, operations, on_restart):
        self.resource_type = resource_type
        self.operations = operations
        self.on_restart = on_restart

    def __getitem__(self, operation):
        try:
            return self.operations[operation]
        except KeyError:
            raise KeyError('no transition of %s for operation %s'
                           % (self.resource_type, operation)) from None


_V = VolumeStatus
VOLUME_TRANSITIONS = TransitionTable('volume', {
    'create_volume': Transition(
        (ABSENT, _V.CREATING, _V.ERROR), via=_V.CREATING, to=_V.AVAILABLE,
        error=_V.ERROR,
        settled=(_V.AVAILABLE, _V.IN_USE, _V.ATTACHING, _V.DETACHING,
                 _V.EXTENDING, _V.DELETING, _V.ERROR_DELETING)),
    'delete_volume': Transition(
        (_V.AVAILABLE, _V.ERROR, _V.ERROR_DELETING, _V.ERROR_EXTENDING,
         _V.DELETING, _V.CREATING),
        via=_V.DELETING, to=_V.DELETED, error=_V.ERROR_DELETING,
        settled=(_V.DELETED,)),
    'create_snapshot': hold((_V.AVAILABLE,), forced=(_V.IN_USE,)),
    'delete_snapshot': hold(),
}, on_restart={
    _V.CREATING: _V.ERROR,
    _V.DELETING: _V.ERROR_DELETING,
    _V.EXTENDING: _V.ERROR_EXTENDING,
    _V.ATTACHING: _V.AVAILABLE,
    _V.DETACHING: _V.IN_USE,
    _V.MAINTENANCE: _V.ERROR,
})

_S = SnapshotStatus
SNAPSHOT_TRANSITIONS = TransitionTable('snapshot', {
    'create_snapshot': Transition(
        (ABSENT, _S.CREATING, _S.ERROR), via=_S.CREATING, to=_S.AVAILABLE,
        error=_S.ERROR, settled=(_S.AVAILABLE, _S.DELETING,
                                 _S.ERROR_DELETING)),
    'delete_snapshot': Transition(
        (_S.AVAILABLE, _S.ERROR, _S.ERROR_DELETING, _S.DELETING,
         _S.CREATING),
        via=_S.DELETING, to=_S.DELETED, error=_S.ERROR_DELETING,
        settled=(_S.DELETED,)),
}, on_restart={
    _S.CREATING: _S.ERROR,
    _S.DELETING: _S.ERROR_DELETING,
    _S.RESTORING: _S.AVAILABLE,
})
