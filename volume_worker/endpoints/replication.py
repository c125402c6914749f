"""RPC endpoints of replication: failover (and failback), freeze, thaw.

A mixin of ``VolumeManager``; the families live in ``flows.failover``.
"""

from oslo_log import log as logging

from volume_worker import concurrency
from volume_worker.flows import failover
from volume_worker import objects
from volume_worker import validation

LOG = logging.getLogger(__name__)


class ReplicationEndpoints:

    def _own_service(self):
        # This worker's row (host@backend), also when it serves a cluster.
        return objects.Service.get_by_host(self.member)

    @validation.endpoint
    def failover_host(self, context, secondary_backend_id=None):
        """Fail over to replication target ``secondary_backend_id`` (None:
        the first that is not active; ``default``: back to the primary)."""
        if secondary_backend_id is not None:
            validation.check_text(secondary_backend_id,
                                  'secondary_backend_id', 255)
        with self.operations.acquire(
                failover.FAILOVER, context, service=self._own_service(),
                store={'secondary_backend_id': secondary_backend_id}) as op:
            op.run()

    @validation.endpoint
    def freeze_host(self, context):
        """Refuse every change on this backend until ``thaw_host``."""
        with self.operations.acquire(failover.FREEZE, context,
                                     service=self._own_service()) as op:
            op.run()
        return True

    @validation.endpoint
    def thaw_host(self, context):
        """Accept changes on this backend again."""
        with self.operations.acquire(failover.THAW, context,
                                     service=self._own_service()) as op:
            op.run()
        return True

    @validation.endpoint
    def failover_completed(self, context, cluster_name, active_backend_id,
                           replication_status, origin=None):
        """Fanout from the worker of a cluster that failed it over: the
        other workers of that cluster switch their drivers too."""
        validation.check_text(cluster_name, 'cluster_name', 255)
        service = self._own_service()
        if service.cluster_name != cluster_name or origin == self.member:
            return
        concurrency.run_blocking(self.driver.failover_completed, context,
                                 active_backend_id)
        service.active_backend_id = active_backend_id
        service.replication_status = replication_status
        service.save()
        LOG.info('Backend %s follows its cluster %s to %s', self.member,
                 cluster_name, active_backend_id or failover.FAILBACK_ID)
