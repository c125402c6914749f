"""The client API other tiers import to drive a volume worker over RabbitMQ.

Each backend listens on topic ``volume_topic`` as server ``host@backend``
(its own queue ``volume-worker.host@backend``), and, in a cluster, also as
``cluster@backend``. Casts return at once; calls wait for the reply.

Version history:

    1.0 - create_volume (cast), delete_volume (cast), get_capabilities
          (call), publish_service_capabilities (fanout cast), get_volume
          (call), list_volumes (call)
"""

import oslo_messaging as messaging
from oslo_config import cfg

from volume_worker import rpc

RPC_API_VERSION = '1.0'


class VolumeAPI:
    """RPC client of the volume worker."""

    RPC_API_VERSION = RPC_API_VERSION

    def __init__(self, conf=None, transport=None, timeout=None):
        conf = conf or cfg.CONF
        self.conf = conf
        self.transport = transport or rpc.get_transport(conf)
        target = messaging.Target(topic=conf.volume_topic,
                                  version=RPC_API_VERSION)
        self.client = messaging.get_rpc_client(
            self.transport, target, serializer=rpc.get_serializer(),
            version_cap=RPC_API_VERSION, timeout=timeout)

    def _prepare(self, backend, version='1.0', **kwargs):
        """A client bound to one backend (host@backend or cluster@backend)."""
        return self.client.prepare(server=backend, version=version, **kwargs)

    def can_send_version(self, version):
        return self.client.can_send_version(version)

    def create_volume(self, ctxt, backend, volume):
        """Cast: create ``volume`` (a Volume whose id the caller chose)."""
        self._prepare(backend).cast(ctxt, 'create_volume', volume=volume)

    def delete_volume(self, ctxt, backend, volume_id):
        """Cast: delete the volume with this id."""
        self._prepare(backend).cast(ctxt, 'delete_volume', volume_id=volume_id)

    def get_capabilities(self, ctxt, backend, discover=False):
        """Call: the backend's last capability report (fresh if discover)."""
        return self._prepare(backend).call(ctxt, 'get_capabilities',
                                           discover=discover)

    def publish_service_capabilities(self, ctxt):
        """Fanout cast: every worker publishes a capability report now."""
        self.client.prepare(fanout=True).cast(
            ctxt, 'publish_service_capabilities')

    def get_volume(self, ctxt, backend, volume_id):
        """Call: the Volume with this id (raises VolumeNotFound)."""
        return self._prepare(backend).call(ctxt, 'get_volume',
                                           volume_id=volume_id)

    def list_volumes(self, ctxt, backend, filters=None, marker=None,
                     limit=None):
        """Call: a page of the backend's volumes, oldest first."""
        return self._prepare(backend).call(ctxt, 'list_volumes',
                                           filters=filters, marker=marker,
                                           limit=limit)


class SchedulerReportAPI:
    """The one scheduler method the worker calls: capability reports."""

    def __init__(self, conf, transport):
        target = messaging.Target(topic=conf.scheduler_topic, version='1.0')
        self.client = messaging.get_rpc_client(
            transport, target, serializer=rpc.get_serializer())

    def update_service_capabilities(self, ctxt, service_name, host,
                                    capabilities, timestamp):
        # No retry: with no scheduler listening the fanout exchange does not
        # exist, and an endless retry would hold the connection pool.
        self.client.prepare(fanout=True, retry=0).cast(
            ctxt, 'update_service_capabilities', service_name=service_name,
            host=host, capabilities=capabilities, timestamp=timestamp)
