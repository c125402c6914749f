"""Versioned objects: the only things besides plain JSON that cross the wire."""

from volume_worker.objects.base import configure_names  # noqa
from volume_worker.objects.base import VolumeWorkerObjectSerializer  # noqa
from volume_worker.objects.fields import MigrationStatus  # noqa
from volume_worker.objects.fields import ReplicationStatus  # noqa
from volume_worker.objects.fields import SnapshotStatus  # noqa
from volume_worker.objects.fields import VolumeStatus  # noqa
from volume_worker.objects.service import Service  # noqa
from volume_worker.objects.fields import AttachStatus  # noqa
from volume_worker.objects.volume import Snapshot  # noqa
from volume_worker.objects.volume import VolumeAttachment  # noqa
from volume_worker.objects.volume import Volume  # noqa
from volume_worker.objects.volume import VolumeType  # noqa
from volume_worker.objects.fields import GroupStatus  # noqa
from volume_worker.objects.group import Group  # noqa
from volume_worker.objects.group import GroupType  # noqa
from volume_worker.objects.group import GroupSnapshot  # noqa
from volume_worker.objects.fields import BackupStatus  # noqa
from volume_worker.objects.backup import Backup  # noqa
