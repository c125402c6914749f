"""Base class, registry and RPC serializer of the worker's versioned objects."""

from oslo_versionedobjects import base as ovo_base


class VolumeWorkerObjectRegistry(ovo_base.VersionedObjectRegistry):
    pass


register = VolumeWorkerObjectRegistry.register


class VolumeWorkerObject(ovo_base.VersionedObject):
    OBJ_PROJECT_NAMESPACE = 'volume_worker'

    # Columns the database owns and save() never writes.
    READ_ONLY_FIELDS = ('id', 'created_at')


class VolumeWorkerObjectSerializer(ovo_base.VersionedObjectSerializer):
    OBJ_BASE_CLASS = VolumeWorkerObject
