"""RPC endpoints of migration and retype (a mixin of ``VolumeManager``)."""

from volume_worker import exception
from volume_worker.flows import migrate
from volume_worker.flows import retype as retype_flows
from volume_worker import objects
from volume_worker import validation

MIGRATION_POLICIES = ('never', 'on-demand')


class MigrationEndpoints:
    """Uses the manager's ``operations``."""

    @validation.endpoint
    def migrate_volume(self, context, volume_id, dest_backend,
                       force_host_copy=False):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_text(dest_backend, 'dest_backend', 255)
        validation.check_bool(force_host_copy, 'force_host_copy')
        with self.operations.acquire(
                migrate.FAMILY, context, volume=volume_id,
                store={'dest_backend': dest_backend,
                       'force_host_copy': force_host_copy}) as op:
            op.run()

    @validation.endpoint
    def migrate_volume_completion(self, context, volume_id, new_volume_id,
                                  original_status):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_uuid(new_volume_id, 'new_volume_id')
        validation.check_text(original_status, 'original_status', 32)
        with self.operations.acquire(
                migrate.COMPLETION, context, new_volume=new_volume_id,
                store={'volume_id': volume_id,
                       'original_status': original_status}) as op:
            op.run()
        return objects.Volume.get_by_id(volume_id)

    @validation.endpoint
    def retype(self, context, volume_id, new_type_id,
               migration_policy='never', dest_backend=None):
        validation.check_uuid(volume_id, 'volume_id')
        validation.check_uuid(new_type_id, 'new_type_id')
        if migration_policy not in MIGRATION_POLICIES:
            raise exception.InvalidInput(reason='migration_policy must be '
                                         'never or on-demand')
        if dest_backend is not None:
            validation.check_text(dest_backend, 'dest_backend', 255)
        with self.operations.acquire(
                retype_flows.FAMILY, context, volume=volume_id,
                store={'new_type_id': new_type_id,
                       'migration_policy': migration_policy,
                       'dest_backend': dest_backend}) as op:
            op.run()
