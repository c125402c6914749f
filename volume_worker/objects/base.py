"""Base class, registry and RPC serializer of the worker's versioned objects."""

from oslo_versionedobjects import base as ovo_base


class VolumeWorkerObjectRegistry(ovo_base.VersionedObjectRegistry):
    pass


register = VolumeWorkerObjectRegistry.register


class VolumeWorkerObject(ovo_base.VersionedObjectDictCompat,
                         ovo_base.VersionedObject):
    """Attributes and, as drivers of the Cinder contract expect, item access.

    ``volume['size']``, ``volume.get('provider_location')`` and
    ``volume['replication_status'] = 'copying'`` work alongside attributes.
    """

    OBJ_PROJECT_NAMESPACE = 'volume_worker'

    # Columns the database owns and save() never writes.
    READ_ONLY_FIELDS = ('id', 'created_at')
    # Fields that are no column of the object's table (loaded, not saved).
    NON_COLUMN_FIELDS = ()


# Backend object names, as Cinder names them ([DEFAULT] volume_name_template
# and snapshot_name_template; set by configure_names()).
NAME_TEMPLATES = {'volume': 'volume-%s', 'snapshot': 'snapshot-%s'}


def configure_names(volume_template, snapshot_template):
    NAME_TEMPLATES['volume'] = volume_template
    NAME_TEMPLATES['snapshot'] = snapshot_template


class VolumeWorkerObjectSerializer(ovo_base.VersionedObjectSerializer):
    OBJ_BASE_CLASS = VolumeWorkerObject
