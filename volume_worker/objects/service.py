"""Service: one row per backend a worker serves; its heartbeat, recovery and replication state.

A failover's subject is the service: its ``status`` (for the transition
table and the compare-and-swap saves) is its ``replication_status``.
"""

from oslo_utils import versionutils
from oslo_versionedobjects import fields

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.objects import base
from volume_worker.objects.volume import _PersistentObject

BINARY = 'volume-worker'


@base.register
class Service(_PersistentObject):
    # Version 1.0: initial version
    # Version 1.1: backend_state, backend_state_reason
    VERSION = '1.1'

    fields = {
        'id': fields.IntegerField(),
        'host': fields.StringField(),
        'binary': fields.StringField(),
        'topic': fields.StringField(),
        'cluster_name': fields.StringField(nullable=True),
        'disabled': fields.BooleanField(default=False),
        'disabled_reason': fields.StringField(nullable=True),
        'frozen': fields.BooleanField(default=False),
        'active_backend_id': fields.StringField(nullable=True),
        'replication_status': fields.StringField(nullable=True),
        'recovered_at': fields.DateTimeField(nullable=True),
        'rpc_version': fields.StringField(nullable=True),
        'backend_state': fields.StringField(nullable=True),
        'backend_state_reason': fields.StringField(nullable=True),
        'created_at': fields.DateTimeField(nullable=True),
        'updated_at': fields.DateTimeField(nullable=True),
        'deleted': fields.BooleanField(default=False),
    }

    _db_get = staticmethod(db.service_get)
    _db_update = staticmethod(db.service_update)

    DELETED = 'deleted'  # (never a replication status: services stay)
    PAYLOAD_ID = 'service_id'
    PAYLOAD_FIELDS = ('host', 'cluster_name', 'replication_status',
                      'active_backend_id', 'frozen')

    @property
    def status(self):
        return (self.replication_status
                if self.obj_attr_is_set('replication_status') else None)

    @status.setter
    def status(self, value):
        self.replication_status = value

    def obj_make_compatible(self, primitive, target_version):
        super().obj_make_compatible(primitive, target_version)
        if versionutils.convert_version_to_tuple(target_version) < (1, 1):
            primitive.pop('backend_state', None)
            primitive.pop('backend_state_reason', None)

    @classmethod
    def get_all(cls, filters=None, marker=None, limit=None):
        return [cls._from_db(r) for r in db.service_get_all(filters)]

    @classmethod
    def get_by_host(cls, host):
        return cls._from_db(db.service_get_by_host_binary(host, BINARY))

    @classmethod
    def get_or_create(cls, host, topic, cluster_name=None):
        try:
            return cls._from_db(db.service_get_by_host_binary(host, BINARY))
        except exception.ServiceNotFound:
            row = db.service_create({'host': host, 'binary': BINARY,
                                     'topic': topic,
                                     'cluster_name': cluster_name,
                                     'updated_at': db.utcnow()})
            return cls._from_db(db.service_get_by_host_binary(row['host'],
                                                              BINARY))
