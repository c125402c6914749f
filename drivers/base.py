"""The driver contract: the classes of Cinder's ``cinder.volume.driver``.

They follow the reference documentation of that module (checked by
tests/unit/test_driver_contract.py): the same classes, bases and members,
with compatible signatures.

* ``BaseVD`` is what every backend must or may do (``drivers.base_vd``).
* ``SnapshotVD``, ``ExtendVD``, ``LocalVD``, ``ManageableVD``,
  ``ManageableSnapshotsVD``, ``MigrateVD``, ``CloneableImageVD``,
  ``ConsistencyGroupVD``, ``ReplicaVD``, ``TransferVD`` and ``ProxyVD`` name
  optional capabilities; ``VolumeDriver`` has them all, ``BaseVD`` last
  among its bases (``drivers.mixins``).
* ``ISCSIDriver``, ``ISERDriver`` and ``FibreChannelDriver`` add the
  connection-info conventions of their transport (``drivers.transports``).

Conventions:

* A *model update* is a dict of fields of the volume (or snapshot, group)
  the caller should persist, e.g. ``{'provider_location': ...}``; None
  means nothing to persist.
* ``NotImplementedError`` means the backend cannot do that call.  Calls the
  reference says most drivers need not act on (``terminate_connection``,
  ``unmanage``, ``unmanage_snapshot``, ``accept_transfer``...) do nothing
  by default; only ``BaseVD`` alone keeps the reference's raising stubs of
  ``manage_existing`` and ``unmanage``.
* Cloning, volumes from snapshots, raw image copies and backups have
  generic implementations built on the driver's own export and connection
  calls and on os-brick (``drivers.generic``, ``drivers.datapath``); they
  need os-brick set up in the process (``datapath.init_os_brick``).
* Other failures are ``drivers.exception.VolumeDriverException`` subclasses.
* A call may be repeated after a crash or a retry, so it must converge:
  create if absent, succeed if already there, delete if present.

The options every backend section takes (``volume_opts``) and helpers for
drivers (``native_lock``, ``extract_pool``, ``paginate_manageable``,
``is_consistent_snapshot_group``) live in
``drivers.common`` and are re-exported here.
"""

from drivers.base_vd import BaseVD
from drivers.common import (SAMPLE_SECTION, extract_pool, field,
                            is_consistent_snapshot_group, list_opts,
                            native_lock, paginate_manageable, scheduler_opts,
                            volume_opts, with_updates)
from drivers.mixins import (CloneableImageVD, ConsistencyGroupVD, ExtendVD,
                            LocalVD, ManageableSnapshotsVD, ManageableVD,
                            MigrateVD, ProxyVD, ReplicaVD, SnapshotVD,
                            TransferVD, VolumeDriver)
from drivers.transports import FibreChannelDriver, ISCSIDriver, ISERDriver

__all__ = [
    'BaseVD', 'CloneableImageVD', 'ConsistencyGroupVD', 'ExtendVD',
    'FibreChannelDriver', 'ISCSIDriver', 'ISERDriver', 'LocalVD',
    'ManageableSnapshotsVD', 'ManageableVD', 'MigrateVD', 'ProxyVD',
    'ReplicaVD', 'SAMPLE_SECTION', 'SnapshotVD', 'TransferVD',
    'VolumeDriver', 'extract_pool', 'field', 'is_consistent_snapshot_group',
    'list_opts', 'native_lock',
    'paginate_manageable', 'scheduler_opts', 'volume_opts', 'with_updates',
]
