"""Base class, registry and RPC serializer of the worker's versioned objects."""

from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import fields


class VolumeWorkerObjectRegistry(ovo_base.VersionedObjectRegistry):
    pass


register = VolumeWorkerObjectRegistry.register


class VolumeWorkerObject(ovo_base.VersionedObject):
    OBJ_PROJECT_NAMESPACE = 'volume_worker'

    # Columns the database owns and save() never writes.
    READ_ONLY_FIELDS = ('id', 'created_at')

    def obj_as_dict(self):
        """The set fields as plain values (JSON-friendly), for payloads."""
        out = {}
        for name, field in self.fields.items():
            if not self.obj_attr_is_set(name):
                continue
            out[name] = field.to_primitive(self, name, getattr(self, name))
        return out


class TimestampedObject:
    fields = {
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
    }


class VolumeWorkerObjectSerializer(ovo_base.VersionedObjectSerializer):
    OBJ_BASE_CLASS = VolumeWorkerObject
