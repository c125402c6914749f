"""Backup: a copy of a volume's data in the backup store, full or incremental."""

from oslo_versionedobjects import fields

from volume_worker.db import api as db
from volume_worker.objects import fields as vw_fields
from volume_worker.objects import base
from volume_worker.objects.volume import _PersistentObject


@base.register
class Backup(_PersistentObject):
    """One backup of a volume; it outlives the volume.

    ``size`` is the volume's size in GiB when it was backed up (a restore
    needs a volume at least that large); ``container`` where the backup
    store keeps it; ``object_count`` how many chunks this backup stored
    itself (an incremental one stores only the chunks that changed since
    ``parent_id``); ``temp_snapshot_id`` / ``temp_volume_id`` the stand-ins
    an in-use volume was read from while the backup ran (gone after it);
    ``stored_bytes`` what its chunks take in the store; ``fail_reason`` why
    it ended in error.
    """

    # Version 1.0: initial version
    VERSION = '1.0'

    fields = {
        'id': fields.UUIDField(),
        'volume_id': fields.UUIDField(),
        'status': vw_fields.BackupStatusField(),
        'host': fields.StringField(nullable=True),
        'display_name': fields.StringField(nullable=True),
        'display_description': fields.StringField(nullable=True),
        'size': fields.IntegerField(nullable=True),
        'container': fields.StringField(nullable=True),
        'object_count': fields.IntegerField(default=0),
        'stored_bytes': fields.IntegerField(default=0),
        'parent_id': fields.UUIDField(nullable=True),
        'snapshot_id': fields.UUIDField(nullable=True),
        'temp_snapshot_id': fields.UUIDField(nullable=True),
        'temp_volume_id': fields.UUIDField(nullable=True),
        'fail_reason': fields.StringField(nullable=True),
        'project_id': fields.StringField(nullable=True),
        'user_id': fields.StringField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.backup_get)
    _db_create = staticmethod(db.backup_create)
    _db_update = staticmethod(db.backup_update)
    _db_get_all = staticmethod(db.backup_get_all)
    _db_destroy = staticmethod(db.backup_destroy)

    DELETED = vw_fields.BackupStatus.DELETED
    PAYLOAD_ID = 'backup_id'
    PAYLOAD_FIELDS = ('volume_id', 'status', 'size', 'host', 'parent_id',
                      'object_count', 'fail_reason')

    @property
    def is_incremental(self):
        return bool(self.parent_id)

    @property
    def name(self):
        return 'backup-%s' % self.id
