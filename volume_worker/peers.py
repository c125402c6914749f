"""The other backends of the deployment, as a migration reaches them: over RPC.

Backends of one deployment share one database; each one's worker (the same
process or another) owns its volumes. A migration runs on the source's
worker and asks the destination's for what only it can do: create the copy,
export it to this host, make it the migrated volume, delete it again. The
database is shared, so waiting for a cast to take effect is reading its row.
"""

import time

from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker import exception
from volume_worker import objects
from volume_worker.objects import VolumeStatus

LOG = logging.getLogger(__name__)

POLL_INTERVAL = 0.2  # seconds between two reads of a row being changed


class Peers:
    """What a migration asks of another backend, through ``rpcapi.VolumeAPI``."""

    def __init__(self, api, create_timeout=300, delete_timeout=60):
        self.api = api
        self.create_timeout = create_timeout
        self.delete_timeout = delete_timeout

    def __getattr__(self, name):
        # Any other RPC method (failover_completed, ...) is the API's own.
        return getattr(self.api, name)

    def capabilities(self, context, backend):
        return self.api.get_capabilities(context, backend) or {}

    def create_volume(self, context, backend, volume, source_id):
        """Cast the create, wait for ``available``; the created Volume.

        A create of an id the destination already made is harmless (a
        resumed migration asks again).
        """
        self.api.create_volume(context, backend, volume)
        found = _wait_for(volume.id, self.create_timeout, _created)
        if found is None or found.status != VolumeStatus.AVAILABLE:
            raise exception.MigrationFailed(
                volume_id=source_id, reason=(
                    'backend %s did not create its copy %s within %ss (%s)'
                    % (backend, volume.id, self.create_timeout,
                       found.status if found else 'no such volume')))
        return found

    def delete_volume(self, context, backend, volume_id):
        """Cast the delete and wait a while for it; True when it is gone.

        A destination that is down deletes it when it is back (the request
        waits in its queue).
        """
        self.api.delete_volume(context, backend, volume_id)
        found = _wait_for(volume_id, self.delete_timeout, _gone)
        gone = found is None or found.deleted
        if not gone:
            LOG.warning('Volume %s is not deleted yet on %s (%s); the delete '
                        'waits in its queue', volume_id, backend,
                        found.status)
        return gone

    def connect(self, context, backend, volume_id, connector):
        """Export the volume to ``connector``: its connection info."""
        return self.api.initialize_connection(context, backend, volume_id,
                                              connector)

    def disconnect(self, context, backend, volume_id, connector):
        self.api.terminate_connection(context, backend, volume_id, connector)

    def complete_migration(self, context, backend, volume_id, new_volume_id,
                           original_status):
        return self.api.migrate_volume_completion(
            context, backend, volume_id, new_volume_id, original_status)


def _created(volume):
    return volume is not None and volume.status in (
        VolumeStatus.AVAILABLE, VolumeStatus.ERROR)


def _gone(volume):
    return volume is None or volume.deleted or volume.status in (
        VolumeStatus.ERROR_DELETING,)


def _wait_for(volume_id, timeout, done):
    """Read the volume's row until ``done(volume)``; the last read."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            volume = objects.Volume.get_by_id(volume_id, read_deleted=True)
        except exception.VolumeNotFound:
            volume = None
        if done(volume) or time.monotonic() >= deadline:
            return volume
        concurrency.sleep(POLL_INTERVAL)
