"""Extend a volume: grow it on the backend, save its new size.

``extending`` -> back to ``available`` (or ``in-use``), failure ->
``error_extending``. A new size not larger than the current one is refused.
Resume rule: resume (extending to a size a volume already has changes
nothing).
"""

from volume_worker.db import api as db
from volume_worker import exception
from volume_worker.flows import common
from volume_worker.flows import runner


class ExtendOnBackend(common.VolumeTask):
    """Grow the backend volume. Cannot be undone (no backend shrinks): no revert."""

    idempotent = True
    default_provides = 'extend_update'

    def execute(self, driver, volume, new_size):
        common.call_driver(driver.extend_volume, volume, new_size)
        return {'size': new_size}


def build():
    return common.operation_flow('extend_volume', ExtendOnBackend(),
                                 updates=('extend_update',))


def check(op):
    volume, new_size = op.subject, op.store['new_size']
    if new_size <= volume.size:
        raise exception.InvalidInput(
            reason='volume %s is %d GiB; a new size must be larger, not %d'
            % (volume.id, volume.size, new_size))
    if (db.attachment_others(volume.id, None) and
            not op.backend_reports('online_extend_support')):
        raise exception.ResourceInUse(
            resource='volume', resource_id=volume.id,
            reason='it is attached and the backend cannot extend attached '
                   'volumes (no online_extend_support); detach it first')


FAMILY = runner.FlowFamily(
    'extend_volume', build, subject=runner.Role('volume'),
    event='volume.resize', check=check, on_resume=runner.RESUME)
