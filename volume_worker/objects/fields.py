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
    REVERTING = 'reverting'
    MANAGING = 'managing'
    ERROR_MANAGING = 'error_managing'
    RETYPING = 'retyping'
    BACKING_UP = 'backing-up'
    RESTORING_BACKUP = 'restoring-backup'
    ERROR_RESTORING = 'error_restoring'
    DOWNLOADING = 'downloading'
    UPLOADING = 'uploading'
    ALL = (CREATING, AVAILABLE, DELETING, DELETED, ERROR, ERROR_DELETING,
           EXTENDING, ERROR_EXTENDING, ATTACHING, DETACHING, IN_USE,
           MAINTENANCE, REVERTING, MANAGING, ERROR_MANAGING, RETYPING,
           BACKING_UP, RESTORING_BACKUP, ERROR_RESTORING, DOWNLOADING,
           UPLOADING)


class VolumeStatusField(fields.BaseEnumField):
    AUTO_TYPE = VolumeStatus()


class MigrationStatus(_StatusEnum):
    """A volume's ``migration_status``, as Cinder's.

    ``starting`` (accepted) -> ``migrating`` (the driver moves it, or the
    data is copied) -> ``completing`` (identities swapped) -> ``success``;
    ``error`` with the volume back where it was. The copy a migration
    creates on the destination is marked ``target:<volume id>``.
    """

    STARTING = 'starting'
    MIGRATING = 'migrating'
    COMPLETING = 'completing'
    SUCCESS = 'success'
    ERROR = 'error'
    ALL = (STARTING, MIGRATING, COMPLETING, SUCCESS, ERROR)
    # Statuses of a migration under way; ``success`` / ``error`` are final.
    IN_PROGRESS = (STARTING, MIGRATING, COMPLETING)
    TARGET_PREFIX = 'target:'

    @classmethod
    def target_of(cls, volume_id):
        return cls.TARGET_PREFIX + volume_id


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


class AttachStatus(_StatusEnum):
    RESERVED = 'reserved'
    ATTACHING = 'attaching'
    ATTACHED = 'attached'
    DETACHING = 'detaching'
    DETACHED = 'detached'
    ERROR_ATTACHING = 'error_attaching'
    ERROR_DETACHING = 'error_detaching'
    ALL = (RESERVED, ATTACHING, ATTACHED, DETACHING, DETACHED,
           ERROR_ATTACHING, ERROR_DETACHING)


class AttachStatusField(fields.BaseEnumField):
    AUTO_TYPE = AttachStatus()


class GroupStatus(_StatusEnum):
    CREATING = 'creating'
    AVAILABLE = 'available'
    UPDATING = 'updating'
    DELETING = 'deleting'
    DELETED = 'deleted'
    ERROR = 'error'
    ERROR_DELETING = 'error_deleting'
    ALL = (CREATING, AVAILABLE, UPDATING, DELETING, DELETED, ERROR,
           ERROR_DELETING)


class GroupStatusField(fields.BaseEnumField):
    AUTO_TYPE = GroupStatus()


class GroupSnapshotStatus(_StatusEnum):
    CREATING = 'creating'
    AVAILABLE = 'available'
    DELETING = 'deleting'
    DELETED = 'deleted'
    ERROR = 'error'
    ERROR_DELETING = 'error_deleting'
    ALL = (CREATING, AVAILABLE, DELETING, DELETED, ERROR, ERROR_DELETING)


class GroupSnapshotStatusField(fields.BaseEnumField):
    AUTO_TYPE = GroupSnapshotStatus()


class BackupStatus(_StatusEnum):
    CREATING = 'creating'
    AVAILABLE = 'available'
    RESTORING = 'restoring'
    DELETING = 'deleting'
    DELETED = 'deleted'
    ERROR = 'error'
    ERROR_DELETING = 'error_deleting'
    ERROR_RESTORING = 'error_restoring'
    ALL = (CREATING, AVAILABLE, RESTORING, DELETING, DELETED, ERROR,
           ERROR_DELETING, ERROR_RESTORING)


class BackupStatusField(fields.BaseEnumField):
    AUTO_TYPE = BackupStatus()


class _SecretJSON(fields.FieldType):
    """Any JSON value, shown as *** in an object's repr (it may hold secrets)."""

    def stringify(self, value):
        return '***' if value else repr(value)


class SecretJSONField(fields.AutoTypedField):
    AUTO_TYPE = _SecretJSON()


class JSONField(fields.AutoTypedField):
    AUTO_TYPE = fields.FieldType()


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
# create); ``UNCHANGED`` as ``to`` means "back to the status it had" (an
# extend of an in-use volume leaves it in-use); ``settled`` are the statuses
# in which a repeated request is already done. An operation touching two
# resources of one type (a clone and its source) gives a transition per
# role. ``on_restart`` says what start-up turns a status left by an
# operation that journaled nothing into. ``to`` may also be a function of
# the operation's store (a failover ends failed-over, a failback enabled).

ABSENT = None
UNCHANGED = '<unchanged>'


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

    def of(self, operation, role):
        """The transition of the resource playing ``role`` in ``operation``."""
        try:
            entry = self.operations[operation]
            return entry[role] if isinstance(entry, dict) else entry
        except KeyError:
            raise KeyError('no transition of %s (%s) for operation %s'
                           % (self.resource_type, role, operation)) from None

    def all(self):
        """Every (operation, transition), per role where roles differ."""
        for operation, entry in self.operations.items():
            if isinstance(entry, dict):
                for role, transition in entry.items():
                    yield '%s/%s' % (operation, role), transition
            else:
                yield operation, entry


_V = VolumeStatus
_NEW_VOLUME = Transition(
    (ABSENT, _V.CREATING, _V.ERROR), via=_V.CREATING, to=_V.AVAILABLE,
    error=_V.ERROR,
    settled=(_V.AVAILABLE, _V.IN_USE, _V.ATTACHING, _V.DETACHING,
             _V.EXTENDING, _V.DELETING, _V.ERROR_DELETING, _V.REVERTING))
VOLUME_TRANSITIONS = TransitionTable('volume', {
    'create_volume': _NEW_VOLUME,
    'create_volume_from_snapshot': _NEW_VOLUME,
    'create_cloned_volume': {
        'volume': _NEW_VOLUME,
        'source': hold((_V.AVAILABLE, _V.IN_USE)),
    },
    'extend_volume': Transition(
        (_V.AVAILABLE, _V.IN_USE), via=_V.EXTENDING, to=UNCHANGED,
        error=_V.ERROR_EXTENDING),
    'revert_to_snapshot': Transition(
        (_V.AVAILABLE,), via=_V.REVERTING, to=_V.AVAILABLE, error=_V.ERROR),
    'delete_volume': Transition(
        (_V.AVAILABLE, _V.ERROR, _V.ERROR_DELETING, _V.ERROR_EXTENDING,
         _V.ERROR_MANAGING, _V.ERROR_RESTORING, _V.DELETING, _V.CREATING),
        via=_V.DELETING, to=_V.DELETED, error=_V.ERROR_DELETING,
        settled=(_V.DELETED,)),
    'create_snapshot': hold((_V.AVAILABLE,), forced=(_V.IN_USE,)),
    'delete_snapshot': hold(),
    'attachment_update': hold((_V.AVAILABLE, _V.IN_USE)),
    'attachment_complete': hold((_V.AVAILABLE, _V.IN_USE)),
    'attachment_delete': hold(),
    # The legacy connection path changes no volume status of its own.
    'initialize_connection': hold((_V.AVAILABLE, _V.IN_USE)),
    'terminate_connection': hold(),
    'remove_export': hold(),
    'attach_volume': hold((_V.AVAILABLE, _V.IN_USE)),
    'detach_volume': hold(),
    'manage_existing': Transition(
        (ABSENT,), via=_V.MANAGING, to=_V.AVAILABLE, error=_V.ERROR_MANAGING,
        settled=(_V.AVAILABLE, _V.IN_USE, _V.ERROR_MANAGING)),
    'manage_existing_snapshot': hold((_V.AVAILABLE, _V.IN_USE)),
    'accept_transfer': hold((_V.AVAILABLE,)),
    'update_group': {'add': hold((_V.AVAILABLE, _V.IN_USE)),
                     'remove': hold()},
    'delete_group': {'members': hold((_V.AVAILABLE, _V.ERROR,
                                      _V.ERROR_DELETING,
                                      _V.ERROR_EXTENDING))},
    'create_group_snapshot': {'members': hold((_V.AVAILABLE, _V.IN_USE))},
    'create_group_from_group': {'sources': hold((_V.AVAILABLE, _V.IN_USE))},
    # An image is written onto the new volume while it is "downloading".
    'create_volume_from_image': Transition(
        (ABSENT, _V.CREATING, _V.DOWNLOADING, _V.ERROR), via=_V.DOWNLOADING,
        to=_V.AVAILABLE, error=_V.ERROR, settled=_NEW_VOLUME.settled),
    # Uploading to an image, the volume goes back to where it was.
    'copy_volume_to_image': Transition(
        (_V.AVAILABLE,), via=_V.UPLOADING, to=UNCHANGED, error=UNCHANGED,
        forced=(_V.IN_USE,)),
    # A failed retype leaves the volume as it was, on its old type.
    'retype': Transition(
        (_V.AVAILABLE, _V.IN_USE), via=_V.RETYPING, to=UNCHANGED,
        error=UNCHANGED),
    # Backups move the volume they read or write although the backup is
    # the subject (flows/held.py): a backup leaves its volume as it was,
    # an in-use one only with force; a restore writes onto an available
    # volume, or onto a new one it creates (ABSENT).
    'create_backup': Transition(
        (_V.AVAILABLE,), via=_V.BACKING_UP, to=UNCHANGED, error=UNCHANGED,
        forced=(_V.IN_USE,)),
    'create_incremental_backup': Transition(
        (_V.AVAILABLE,), via=_V.BACKING_UP, to=UNCHANGED, error=UNCHANGED,
        forced=(_V.IN_USE,)),
    # Reading one of its snapshots leaves the volume alone.
    'create_backup_from_snapshot': hold((_V.AVAILABLE, _V.IN_USE)),
    'restore_backup': Transition(
        (ABSENT, _V.AVAILABLE, _V.ERROR_RESTORING),
        via=_V.RESTORING_BACKUP, to=_V.AVAILABLE, error=_V.ERROR_RESTORING),
    # Cinder's "no action allowed" status while a migration moves the
    # volume; its ``migration_status`` (MigrationStatus) tells the steps.
    # A failed migration leaves it where it was, untouched.
    'migrate_volume': Transition(
        (_V.AVAILABLE, _V.IN_USE), via=_V.MAINTENANCE, to=UNCHANGED,
        error=UNCHANGED),
    # On the destination: the copy it holds becomes the migrated volume.
    'migrate_volume_completion': {'new_volume': hold((_V.AVAILABLE,))},
}, on_restart={
    _V.CREATING: _V.ERROR,
    _V.DELETING: _V.ERROR_DELETING,
    _V.EXTENDING: _V.ERROR_EXTENDING,
    _V.ATTACHING: _V.AVAILABLE,
    _V.DETACHING: _V.IN_USE,
    _V.MAINTENANCE: _V.ERROR,
    _V.REVERTING: _V.ERROR,  # its data is neither the old nor the snapshot's
    _V.MANAGING: _V.ERROR_MANAGING,
    _V.RETYPING: _V.AVAILABLE,  # the database still has the old type
    _V.BACKING_UP: _V.AVAILABLE,  # a backup only read it
    _V.RESTORING_BACKUP: _V.ERROR_RESTORING,  # half written
    _V.DOWNLOADING: _V.ERROR,  # a partial image: clear_download, then gone
    _V.UPLOADING: _V.AVAILABLE,  # the volume's data never changed
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
    'create_volume_from_snapshot': hold((_S.AVAILABLE,)),
    'revert_to_snapshot': hold((_S.AVAILABLE,)),
    'initialize_connection_snapshot': hold((_S.AVAILABLE,)),
    'terminate_connection_snapshot': hold(),
    'remove_export_snapshot': hold(),
    'manage_existing_snapshot': Transition(
        (ABSENT,), via=_S.CREATING, to=_S.AVAILABLE, error=_S.ERROR,
        settled=(_S.AVAILABLE, _S.ERROR)),
    'delete_group_snapshot': {'members': hold()},
    'create_group_from_group_snapshot': {'sources': hold((_S.AVAILABLE,))},
    'create_backup_from_snapshot': hold((_S.AVAILABLE,)),
}, on_restart={
    _S.CREATING: _S.ERROR,
    _S.DELETING: _S.ERROR_DELETING,
    _S.RESTORING: _S.AVAILABLE,
})

_A = AttachStatus
_DETACH = Transition(
    (_A.RESERVED, _A.ATTACHING, _A.ATTACHED, _A.DETACHING,
     _A.ERROR_ATTACHING, _A.ERROR_DETACHING),
    via=_A.DETACHING, to=_A.DETACHED, error=_A.ERROR_DETACHING,
    settled=(_A.DETACHED,))
ATTACHMENT_TRANSITIONS = TransitionTable('attachment', {
    # Connected, waiting for attachment_complete: "attaching" is where it
    # stays, so the transitional status is also the result.
    'attachment_update': Transition(
        (ABSENT, _A.RESERVED, _A.ATTACHING, _A.ERROR_ATTACHING),
        via=_A.ATTACHING, to=_A.ATTACHING, error=_A.ERROR_ATTACHING),
    'attachment_complete': Transition(
        (_A.ATTACHING,), via=_A.ATTACHED, to=_A.ATTACHED,
        error=_A.ERROR_ATTACHING, settled=(_A.ATTACHED,)),
    'attachment_delete': _DETACH,
    # Legacy path: the attachment record is made and completed at once.
    'attach_volume': Transition(
        (ABSENT,), via=_A.ATTACHED, to=_A.ATTACHED, error=_A.ERROR_ATTACHING,
        settled=(_A.ATTACHED,)),
    'detach_volume': _DETACH,
}, on_restart={
    _A.DETACHING: _A.ERROR_DETACHING,
})

_G = GroupStatus
_NEW_GROUP = Transition(
    (ABSENT, _G.CREATING, _G.ERROR), via=_G.CREATING, to=_G.AVAILABLE,
    error=_G.ERROR, settled=(_G.AVAILABLE, _G.UPDATING, _G.DELETING))
GROUP_TRANSITIONS = TransitionTable('group', {
    'create_group': _NEW_GROUP,
    'update_group': Transition(
        (_G.AVAILABLE,), via=_G.UPDATING, to=_G.AVAILABLE, error=_G.ERROR),
    'create_group_snapshot': hold((_G.AVAILABLE,)),
    'create_group_from_group_snapshot': _NEW_GROUP,
    'create_group_from_group': {'group': _NEW_GROUP,
                                'source_group': hold((_G.AVAILABLE,))},
    'delete_group': Transition(
        (_G.AVAILABLE, _G.ERROR, _G.ERROR_DELETING, _G.DELETING),
        via=_G.DELETING, to=_G.DELETED, error=_G.ERROR_DELETING,
        settled=(_G.DELETED,)),
}, on_restart={
    _G.CREATING: _G.ERROR,
    _G.UPDATING: _G.ERROR,
    _G.DELETING: _G.ERROR_DELETING,
})

_GS = GroupSnapshotStatus
GROUP_SNAPSHOT_TRANSITIONS = TransitionTable('group_snapshot', {
    'create_group_snapshot': Transition(
        (ABSENT, _GS.CREATING, _GS.ERROR), via=_GS.CREATING,
        to=_GS.AVAILABLE, error=_GS.ERROR,
        settled=(_GS.AVAILABLE, _GS.DELETING, _GS.ERROR_DELETING)),
    'create_group_from_group_snapshot': hold((_GS.AVAILABLE,)),
    'delete_group_snapshot': Transition(
        (_GS.AVAILABLE, _GS.ERROR, _GS.ERROR_DELETING, _GS.DELETING,
         _GS.CREATING),
        via=_GS.DELETING, to=_GS.DELETED, error=_GS.ERROR_DELETING,
        settled=(_GS.DELETED,)),
}, on_restart={
    _GS.CREATING: _GS.ERROR,
    _GS.DELETING: _GS.ERROR_DELETING,
})

# A service's status is its replication status. Every failover freezes the
# backend first; a failover ends ``failed-over``, a failback to the primary
# (``default``) ``enabled``; a failed one ``failover-error`` (the backend
# stays frozen for the operator). Freeze and thaw change no status.
_R = ReplicationStatus
FAILBACK_ID = 'default'


def failover_outcome(store):
    """The replication status a successful failover ends in."""
    if store.get('secondary_backend_id') == FAILBACK_ID:
        return _R.ENABLED
    return _R.FAILED_OVER


SERVICE_TRANSITIONS = TransitionTable('service', {
    'failover_host': Transition(
        (_R.ENABLED, _R.FAILED_OVER, _R.FAILOVER_ERROR), via=_R.FAILING_OVER,
        to=failover_outcome, error=_R.FAILOVER_ERROR),
    'freeze_host': hold(),
    'thaw_host': hold(),
}, on_restart={
    _R.FAILING_OVER: _R.FAILOVER_ERROR,
})

_B = BackupStatus
_NEW_BACKUP = Transition(
    (ABSENT, _B.CREATING, _B.ERROR), via=_B.CREATING, to=_B.AVAILABLE,
    error=_B.ERROR, settled=(_B.AVAILABLE, _B.RESTORING, _B.DELETING,
                             _B.ERROR_DELETING, _B.ERROR_RESTORING))
BACKUP_TRANSITIONS = TransitionTable('backup', {
    'create_backup': _NEW_BACKUP,
    'create_backup_from_snapshot': _NEW_BACKUP,
    'create_incremental_backup': {
        'backup': _NEW_BACKUP,
        # The parent's chunks are shared: it must stay while it is read.
        'parent': hold((_B.AVAILABLE,)),
    },
    # A failed restore marks the backup (its reason says whether its data
    # or the target failed); it can be restored again.
    'restore_backup': Transition(
        (_B.AVAILABLE, _B.ERROR_RESTORING), via=_B.RESTORING,
        to=_B.AVAILABLE, error=_B.ERROR_RESTORING),
    'delete_backup': Transition(
        (_B.AVAILABLE, _B.ERROR, _B.ERROR_DELETING, _B.ERROR_RESTORING,
         _B.DELETING, _B.CREATING),
        via=_B.DELETING, to=_B.DELETED, error=_B.ERROR_DELETING,
        settled=(_B.DELETED,)),
}, on_restart={
    _B.CREATING: _B.ERROR,
    _B.RESTORING: _B.AVAILABLE,  # a restore only read it
    _B.DELETING: _B.ERROR_DELETING,
})
