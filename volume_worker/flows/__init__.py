"""One module per operation family; each declares its ``FlowFamily``.

``FAMILIES`` is what recovery resumes by: a family missing here would leave
its interrupted operations unrecovered (a unit test walks every module of
this package to catch that).
"""

from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume
from volume_worker.flows import snapshot

FAMILIES = {family.operation: family for family in (
    create_volume.FAMILY,
    delete_volume.FAMILY,
    snapshot.CREATE,
    snapshot.DELETE,
)}
