"""Base class, registry and RPC serializer of the worker's versioned objects."""

import types

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
    """Objects from the wire, as their sender meant them.

    - Every field present in the primitive's data counts as set by the
      sender, whether or not ``versioned_object.changes`` lists it (the
      list is optional in oslo.versionedobjects): a new object's row is
      inserted from its changes, and a sender that omitted the list must
      not get a row without its id.
    - Reading a field the sender did not set (and that the class cannot
      load itself) is the request's fault: ``InvalidInput`` naming the
      field, not a ``NotImplementedError`` from oslo.versionedobjects.
    """

    OBJ_BASE_CLASS = VolumeWorkerObject

    def _process_object(self, context, objprim):
        obj = super()._process_object(context, objprim)
        if isinstance(obj, VolumeWorkerObject):
            data = objprim.get('%s.data' % obj.OBJ_SERIAL_NAMESPACE) or {}
            for name in obj.fields:
                if name in data and obj.obj_attr_is_set(name):
                    setattr(obj, name, getattr(obj, name))  # marks it changed
            obj.obj_load_attr = types.MethodType(_load_or_refuse, obj)
        return obj


def _load_or_refuse(obj, attrname):
    """``obj_load_attr`` of an object from the wire (bound per instance)."""
    try:
        return type(obj).obj_load_attr(obj, attrname)
    except NotImplementedError:
        from volume_worker import exception
        raise exception.InvalidInput(reason='%s has no %s' % (
            obj.obj_name(), attrname)) from None
