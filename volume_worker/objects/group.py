"""Group and GroupType: volumes managed together (consistent snapshots, replication)."""

import types

from oslo_versionedobjects import fields

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.objects import base
from volume_worker.objects import fields as vw_fields
from volume_worker.objects.volume import _PersistentObject


@base.register
class GroupType(_PersistentObject):
    # Version 1.0: initial version
    VERSION = '1.0'

    fields = {
        'id': fields.UUIDField(),
        'name': fields.StringField(),
        'description': fields.StringField(nullable=True),
        'group_specs': fields.DictOfNullableStringsField(default={}),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(lambda i, read_deleted=False: db.group_type_get(i))
    _db_create = staticmethod(db.group_type_create)

    def is_consistent_snapshot_type(self):
        from drivers import common as driver_common
        return driver_common.is_consistent_snapshot_group(
            types.SimpleNamespace(group_type=self))


class _OfGroupType:
    """``group_type``: the GroupType with its group_specs, as Cinder's objects
    offer it to drivers (``group.group_type.group_specs``).

    Loaded on first use and kept (not a field: never sent over the wire).
    A flow touches it before handing the object to a driver, whose call
    runs in a native thread that must not reach the database.
    """

    @property
    def group_type(self):
        try:
            return self._group_type
        except AttributeError:
            type_id = (self.group_type_id
                       if self.obj_attr_is_set('group_type_id') else None)
            try:
                self._group_type = (GroupType.get_by_id(type_id)
                                    if type_id else None)
            except exception.NotFound:  # a type deleted since: no specs
                self._group_type = None
            return self._group_type


@base.register
class Group(_OfGroupType, _PersistentObject):
    # Version 1.0: initial version
    VERSION = '1.0'

    fields = {
        'id': fields.UUIDField(),
        'status': vw_fields.GroupStatusField(),
        'name': fields.StringField(nullable=True),
        'description': fields.StringField(nullable=True),
        'host': fields.StringField(nullable=True),
        'group_type_id': fields.UUIDField(nullable=True),
        'volume_type_ids': fields.ListOfStringsField(default=[]),
        'project_id': fields.StringField(nullable=True),
        'user_id': fields.StringField(nullable=True),
        'group_snapshot_id': fields.UUIDField(nullable=True),
        'source_group_id': fields.UUIDField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.group_get)
    _db_create = staticmethod(db.group_create)
    _db_update = staticmethod(db.group_update)
    _db_get_all = staticmethod(db.group_get_all)
    _db_destroy = staticmethod(db.group_destroy)

    DELETED = vw_fields.GroupStatus.DELETED
    PAYLOAD_ID = 'group_id'
    PAYLOAD_FIELDS = ('status', 'name', 'host', 'group_type_id')


@base.register
class GroupSnapshot(_OfGroupType, _PersistentObject):
    """A snapshot of every volume of a group, taken together."""

    # Version 1.0: initial version
    VERSION = '1.0'

    fields = {
        'id': fields.UUIDField(),
        'group_id': fields.UUIDField(),
        'status': vw_fields.GroupSnapshotStatusField(),
        'name': fields.StringField(nullable=True),
        'description': fields.StringField(nullable=True),
        'host': fields.StringField(nullable=True),
        'group_type_id': fields.UUIDField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.group_snapshot_get)
    _db_create = staticmethod(db.group_snapshot_create)
    _db_update = staticmethod(db.group_snapshot_update)
    _db_get_all = staticmethod(db.group_snapshot_get_all)
    _db_destroy = staticmethod(db.group_snapshot_destroy)

    DELETED = vw_fields.GroupSnapshotStatus.DELETED
    PAYLOAD_ID = 'group_snapshot_id'
    PAYLOAD_FIELDS = ('group_id', 'status', 'name', 'host')
