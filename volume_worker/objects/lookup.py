"""What drivers are handed as ``db``: loading the volumes and snapshots they are told about.

The contract's generic ``get_backup_device`` loads the backup's volume or
snapshot through ``driver.db`` (as Cinder passes its db API to drivers);
this gives them the worker's objects (live ones: a missing one raises
the worker's NotFound).
"""

from volume_worker.objects.volume import Snapshot
from volume_worker.objects.volume import Volume


class DriverLookup:
    def volume_get(self, context, volume_id):
        return Volume.get_by_id(volume_id)

    def snapshot_get(self, context, snapshot_id):
        return Snapshot.get_by_id(snapshot_id)
