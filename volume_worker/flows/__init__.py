"""One module per operation family; each exposes ``build``, ``make_store`` and ``FAMILY``."""

from volume_worker.flows import create_volume
from volume_worker.flows import delete_volume

FAMILIES = {family.operation: family for family in (
    create_volume.FAMILY,
    delete_volume.FAMILY,
)}
