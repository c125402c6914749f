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
    # Statuses an operation leaves behind only while it runs; none survives
    # start-up recovery.
    TRANSITIONAL = (CREATING, DELETING, EXTENDING, ATTACHING, DETACHING,
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
    TRANSITIONAL = (CREATING, DELETING, RESTORING)


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
