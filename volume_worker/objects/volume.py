"""Volume, Snapshot and VolumeType: the resources a worker manages."""

from oslo_utils import versionutils
from oslo_versionedobjects import fields

from volume_worker.db import api as db
from volume_worker.objects import base
from volume_worker.objects import fields as vw_fields


class _PersistentObject(base.VolumeWorkerObject):
    """Load, create, save and delete through one table's db functions."""

    _db_get = None
    _db_create = None
    _db_update = None
    _db_get_all = None

    @classmethod
    def _from_db(cls, row):
        obj = cls()
        for name in cls.fields:
            if name in row:
                setattr(obj, name, row[name])
        obj.obj_reset_changes()
        return obj

    @classmethod
    def get_by_id(cls, resource_id, read_deleted=False):
        return cls._from_db(cls._db_get(resource_id, read_deleted=read_deleted))

    @classmethod
    def get_all(cls, filters=None, marker=None, limit=None):
        rows = cls._db_get_all(filters=filters, marker=marker, limit=limit)
        return [cls._from_db(r) for r in rows]

    def obj_fill_unset(self):
        """Give every unset field its default, or None where it may be None.

        An object from the wire carries only what its sender set; drivers
        read fields such as ``provider_auth`` and must find them.
        """
        for name, field in self.fields.items():
            if (self.obj_attr_is_set(name) or name in self.READ_ONLY_FIELDS
                    or name in self.NON_COLUMN_FIELDS):  # loaded when read
                continue
            if field.default != fields.UnspecifiedDefault:
                self.obj_set_defaults(name)
            elif field.nullable:
                setattr(self, name, None)

    def _column_changes(self):
        changes = self.obj_get_changes()
        for name in self.NON_COLUMN_FIELDS:
            changes.pop(name, None)
        return changes

    def create(self, journal=None):
        """Insert the row; ``journal`` statements ride in its transaction."""
        values = self._column_changes()
        row = self._db_create(values, journal=journal)
        for key in ('created_at', 'deleted'):
            if key in self.fields and key in row:
                setattr(self, key, row[key])
        self.obj_reset_changes()

    def save(self, expected_status=None, journal=None):
        """Write changed fields; False when ``expected_status`` did not hold."""
        changes = self._column_changes()
        for name in self.READ_ONLY_FIELDS:
            changes.pop(name, None)
        if not changes and journal is None:
            return True
        changes['updated_at'] = db.utcnow()
        ok = self._db_update(self.id, changes, expected_status=expected_status,
                             journal=journal)
        if ok:
            self.updated_at = changes['updated_at']
            self.obj_reset_changes()
        return ok

    def refresh(self):
        fresh = self.get_by_id(self.id, read_deleted=True)
        for name in self.fields:
            if fresh.obj_attr_is_set(name):
                setattr(self, name, getattr(fresh, name))
        self.obj_reset_changes()

    def destroy(self, expected_status=None, journal=None):
        """Soft-delete the row: the resource is gone for every reader.

        False when ``expected_status`` did not hold.
        """
        if not self._db_destroy(self.id, self.DELETED,
                                expected_status=expected_status,
                                journal=journal):
            return False
        self.status = self.DELETED
        self.deleted = True
        self.obj_reset_changes()
        return True

    PAYLOAD_ID = 'id'
    PAYLOAD_FIELDS = ()

    def notification_payload(self):
        """What notifications say of the resource: never its secrets."""
        payload = {self.PAYLOAD_ID: self.id}
        for name in self.PAYLOAD_FIELDS:
            payload[name] = (getattr(self, name)
                             if self.obj_attr_is_set(name) else None)
        for name in ('created_at', 'updated_at'):
            payload[name] = (_iso(getattr(self, name))
                             if self.obj_attr_is_set(name) else None)
        return payload

    def owner(self):
        """The backend (host@backend) this resource lives on."""
        return (self.host or '').partition('#')[0]


@base.register
class VolumeType(_PersistentObject):
    # Version 1.0: initial version
    # Version 1.1: qos_specs
    # Version 1.2: encryption
    VERSION = '1.2'

    fields = {
        'id': fields.UUIDField(),
        'name': fields.StringField(),
        'description': fields.StringField(nullable=True),
        'is_public': fields.BooleanField(default=True),
        'extra_specs': fields.DictOfNullableStringsField(default={}),
        'qos_specs': fields.DictOfNullableStringsField(nullable=True),
        'encryption': fields.DictOfNullableStringsField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    def obj_make_compatible(self, primitive, target_version):
        super().obj_make_compatible(primitive, target_version)
        version = versionutils.convert_version_to_tuple(target_version)
        if version < (1, 2):
            primitive.pop('encryption', None)
        if version < (1, 1):
            primitive.pop('qos_specs', None)

    _db_get = staticmethod(lambda i, read_deleted=False: db.volume_type_get(i))
    _db_create = staticmethod(db.volume_type_create)


@base.register
class Volume(_PersistentObject):
    # Version 1.0: initial version
    # Version 1.1: project_id, user_id, multiattach, bootable, group_id,
    #              _name_id, encryption_key_id, volume_type
    # Version 1.2: volume_attachment
    # Version 1.3: image_id, image_metadata; statuses downloading,
    #              uploading, backing-up, restoring-backup, error_restoring
    VERSION = '1.3'

    DELETED = vw_fields.VolumeStatus.DELETED
    NON_COLUMN_FIELDS = ('volume_type', 'volume_attachment')
    # What an older reader is told of a status it does not know.
    STATUSES_OF_1_3 = {
        vw_fields.VolumeStatus.DOWNLOADING: vw_fields.VolumeStatus.CREATING,
        vw_fields.VolumeStatus.UPLOADING: vw_fields.VolumeStatus.MAINTENANCE,
        vw_fields.VolumeStatus.BACKING_UP: vw_fields.VolumeStatus.MAINTENANCE,
        vw_fields.VolumeStatus.RESTORING_BACKUP:
            vw_fields.VolumeStatus.MAINTENANCE,
        vw_fields.VolumeStatus.ERROR_RESTORING: vw_fields.VolumeStatus.ERROR,
    }
    NEW_IN_1_1 = ('project_id', 'user_id', 'multiattach', 'bootable',
                  'group_id', '_name_id', 'encryption_key_id', 'volume_type')

    fields = {
        'id': fields.UUIDField(),
        'size': fields.IntegerField(),
        'status': vw_fields.VolumeStatusField(),
        'display_name': fields.StringField(nullable=True),
        'display_description': fields.StringField(nullable=True),
        'host': fields.StringField(nullable=True),
        'cluster_name': fields.StringField(nullable=True),
        'availability_zone': fields.StringField(nullable=True),
        'volume_type_id': fields.UUIDField(nullable=True),
        'provider_location': fields.StringField(nullable=True),
        'provider_auth': fields.SensitiveStringField(nullable=True),
        'provider_id': fields.StringField(nullable=True),
        'snapshot_id': fields.UUIDField(nullable=True),
        'source_volid': fields.UUIDField(nullable=True),
        'attach_status': fields.StringField(nullable=True),
        'migration_status': fields.StringField(nullable=True),
        'replication_status': fields.StringField(nullable=True),
        'metadata': fields.DictOfNullableStringsField(default={}),
        'admin_metadata': fields.DictOfNullableStringsField(default={}),
        'project_id': fields.StringField(nullable=True),
        'user_id': fields.StringField(nullable=True),
        'multiattach': fields.BooleanField(default=False),
        'bootable': fields.BooleanField(default=False),
        'group_id': fields.UUIDField(nullable=True),
        '_name_id': fields.UUIDField(nullable=True),
        'encryption_key_id': fields.UUIDField(nullable=True),
        'image_id': fields.UUIDField(nullable=True),
        'image_metadata': fields.DictOfNullableStringsField(nullable=True),
        'volume_type': fields.ObjectField('VolumeType', nullable=True),
        'volume_attachment': fields.ListOfObjectsField('VolumeAttachment',
                                                       nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.volume_get)
    _db_create = staticmethod(db.volume_create)
    _db_update = staticmethod(db.volume_update)
    _db_get_all = staticmethod(db.volume_get_all)
    _db_destroy = staticmethod(db.volume_destroy)

    def obj_make_compatible(self, primitive, target_version):
        """Drop what an older reader does not know.

        VolumeType 1.2 (encryption) came with Volume 1.3: an older reader
        gets VolumeType 1.1; VolumeAttachment 1.0 is the only version.
        """
        version = versionutils.convert_version_to_tuple(target_version)
        if version < (1, 3):
            primitive.pop('image_id', None)
            primitive.pop('image_metadata', None)
            status = primitive.get('status')
            if status in self.STATUSES_OF_1_3:
                primitive['status'] = self.STATUSES_OF_1_3[status]
            if primitive.get('volume_type') and self.obj_attr_is_set(
                    'volume_type') and self.volume_type is not None:
                primitive['volume_type'] = self.volume_type.obj_to_primitive(
                    target_version='1.1')
        if version < (1, 2):
            primitive.pop('volume_attachment', None)
        if version < (1, 1):
            for name in self.NEW_IN_1_1:
                primitive.pop(name, None)

    def obj_load_attr(self, attrname):
        """Load ``volume_type`` (with its extra and QoS specs) and
        ``volume_attachment`` (the live attachments) when first read."""
        if attrname == 'volume_type':
            type_id = (self.volume_type_id
                       if self.obj_attr_is_set('volume_type_id') else None)
            self.volume_type = (VolumeType.get_by_id(type_id)
                                if type_id else None)
        elif attrname == 'volume_attachment':
            self.volume_attachment = VolumeAttachment.get_all(
                filters={'volume_id': self.id})
        else:
            super().obj_load_attr(attrname)
        self.obj_reset_changes([attrname])

    @property
    def name_id(self):
        """The id the backend object is named after (differs after migration)."""
        name_id = self._name_id if self.obj_attr_is_set('_name_id') else None
        return name_id or self.id

    @property
    def name(self):
        return base.NAME_TEMPLATES['volume'] % self.name_id

    PAYLOAD_ID = 'volume_id'
    PAYLOAD_FIELDS = ('size', 'status', 'host', 'display_name',
                      'volume_type_id', 'availability_zone')


@base.register
class Snapshot(_PersistentObject):
    # Version 1.0: initial version
    # Version 1.1: project_id, user_id
    # Version 1.2: group_snapshot_id
    # Version 1.3: provider_id
    VERSION = '1.3'

    fields = {
        'id': fields.UUIDField(),
        'volume_id': fields.UUIDField(),
        'volume_size': fields.IntegerField(),
        'status': vw_fields.SnapshotStatusField(),
        'display_name': fields.StringField(nullable=True),
        'display_description': fields.StringField(nullable=True),
        'host': fields.StringField(nullable=True),
        'provider_location': fields.StringField(nullable=True),
        'provider_auth': fields.SensitiveStringField(nullable=True),
        'provider_id': fields.StringField(nullable=True),
        'progress': fields.StringField(nullable=True),
        'metadata': fields.DictOfNullableStringsField(default={}),
        'project_id': fields.StringField(nullable=True),
        'user_id': fields.StringField(nullable=True),
        'group_snapshot_id': fields.UUIDField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.snapshot_get)
    _db_create = staticmethod(db.snapshot_create)
    _db_update = staticmethod(db.snapshot_update)
    _db_get_all = staticmethod(db.snapshot_get_all)
    _db_destroy = staticmethod(db.snapshot_destroy)

    DELETED = vw_fields.SnapshotStatus.DELETED

    def obj_make_compatible(self, primitive, target_version):
        super().obj_make_compatible(primitive, target_version)
        version = versionutils.convert_version_to_tuple(target_version)
        if version < (1, 3):
            primitive.pop('provider_id', None)
        if version < (1, 2):
            primitive.pop('group_snapshot_id', None)
        if version < (1, 1):
            primitive.pop('project_id', None)
            primitive.pop('user_id', None)

    @property
    def name(self):
        return base.NAME_TEMPLATES['snapshot'] % self.id

    @property
    def volume(self):
        return Volume.get_by_id(self.volume_id)

    PAYLOAD_ID = 'snapshot_id'
    PAYLOAD_FIELDS = ('volume_id', 'volume_size', 'status', 'host',
                      'display_name')


def _iso(value):
    from volume_worker import timestamps
    return timestamps.iso(value)


@base.register
class VolumeAttachment(_PersistentObject):
    """One consumer's hold on a volume: its connector and connection info.

    ``status`` is Cinder's ``attach_status`` (both names work). The
    connection info may carry CHAP secrets: it goes to the consumer that
    asked for it, never into notifications or logs.
    """

    # Version 1.0: initial version
    VERSION = '1.0'

    fields = {
        'id': fields.UUIDField(),
        'volume_id': fields.UUIDField(),
        'host': fields.StringField(nullable=True),
        'status': vw_fields.AttachStatusField(),
        'instance_uuid': fields.UUIDField(nullable=True),
        'attached_host': fields.StringField(nullable=True),
        'mountpoint': fields.StringField(nullable=True),
        'attach_mode': fields.StringField(nullable=True),
        'connector': vw_fields.JSONField(nullable=True),
        'connection_info': vw_fields.SecretJSONField(nullable=True),
        'attach_time': fields.DateTimeField(nullable=True),
        'detach_time': fields.DateTimeField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.attachment_get)
    _db_create = staticmethod(db.attachment_create)
    _db_update = staticmethod(db.attachment_update)
    _db_get_all = staticmethod(db.attachment_get_all)
    _db_destroy = staticmethod(db.attachment_destroy)

    DELETED = vw_fields.AttachStatus.DETACHED
    PAYLOAD_ID = 'attachment_id'
    PAYLOAD_FIELDS = ('volume_id', 'status', 'instance_uuid',
                      'attached_host', 'mountpoint', 'attach_mode')

    @property
    def attach_status(self):
        return self.status
