"""One module per operation family; each declares its ``FlowFamily``.

``FAMILIES`` is what recovery resumes by: a family missing here would leave
its interrupted operations unrecovered (a unit test walks every module of
this package to catch that).
"""

from volume_worker.flows import attachment
from volume_worker.flows import backup
from volume_worker.flows import clone
from volume_worker.flows import connection
from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.flows import extend
from volume_worker.flows import failover
from volume_worker.flows import group
from volume_worker.flows import group_from_src
from volume_worker.flows import group_snapshot
from volume_worker.flows import image
from volume_worker.flows import manage
from volume_worker.flows import migrate
from volume_worker.flows import restore
from volume_worker.flows import retype
from volume_worker.flows import revert
from volume_worker.flows import snapshot

FAMILIES = {family.operation: family for family in (
    create_volume.FAMILY,
    delete_volume.FAMILY,
    snapshot.CREATE,
    snapshot.DELETE,
    clone.FROM_SNAPSHOT,
    clone.FROM_VOLUME,
    extend.FAMILY,
    revert.FAMILY,
    attachment.UPDATE,
    attachment.COMPLETE,
    attachment.DELETE,
    connection.INITIALIZE,
    connection.TERMINATE,
    connection.REMOVE_EXPORT,
    connection.ATTACH,
    connection.DETACH,
    connection.INITIALIZE_SNAPSHOT,
    connection.TERMINATE_SNAPSHOT,
    connection.REMOVE_EXPORT_SNAPSHOT,
    manage.VOLUME,
    manage.SNAPSHOT,
    manage.TRANSFER,
    retype.FAMILY,
    migrate.FAMILY,
    migrate.COMPLETION,
    group.CREATE,
    group.UPDATE,
    group.DELETE,
    group_snapshot.CREATE,
    group_snapshot.DELETE,
    group_from_src.FROM_GROUP_SNAPSHOT,
    group_from_src.FROM_GROUP,
    failover.FAILOVER,
    failover.FREEZE,
    failover.THAW,
    backup.CREATE,
    backup.CREATE_INCREMENTAL,
    backup.FROM_SNAPSHOT,
    backup.DELETE,
    restore.FAMILY,
    image.FROM_IMAGE,
    image.TO_IMAGE,
)}
