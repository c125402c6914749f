"""Table definitions (SQLAlchemy Core: the hot path needs no ORM)."""

import sqlalchemy as sa

metadata = sa.MetaData()


def _timestamps():
    return [
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('updated_at', sa.DateTime),
        sa.Column('deleted_at', sa.DateTime),
        sa.Column('deleted', sa.Boolean, nullable=False, default=False),
    ]


volumes = sa.Table(
    'volumes', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('size', sa.Integer, nullable=False),
    sa.Column('status', sa.String(32), nullable=False),
    sa.Column('display_name', sa.String(255)),
    sa.Column('display_description', sa.Text),
    sa.Column('host', sa.String(255), index=True),
    sa.Column('cluster_name', sa.String(255)),
    sa.Column('availability_zone', sa.String(255)),
    sa.Column('volume_type_id', sa.String(36)),
    sa.Column('provider_location', sa.Text),
    sa.Column('provider_auth', sa.Text),
    sa.Column('provider_id', sa.String(255)),
    sa.Column('snapshot_id', sa.String(36)),
    sa.Column('source_volid', sa.String(36)),
    sa.Column('attach_status', sa.String(32)),
    # Cinder's values, and 'target:<volume id>' on a migration's copy.
    sa.Column('migration_status', sa.String(255)),
    sa.Column('replication_status', sa.String(32)),
    sa.Column('metadata', sa.JSON),
    sa.Column('admin_metadata', sa.JSON),
    sa.Column('project_id', sa.String(255)),
    sa.Column('user_id', sa.String(255)),
    sa.Column('multiattach', sa.Boolean, nullable=False, default=False),
    sa.Column('bootable', sa.Boolean, nullable=False, default=False),
    sa.Column('group_id', sa.String(36)),
    # The id the backend object is named after, when it differs from id
    # (a migrated volume keeps its id and takes its copy's backend name).
    sa.Column('_name_id', sa.String(36)),
    sa.Column('encryption_key_id', sa.String(36)),
    # The image a volume was created from, and what the image service said
    # of it then (name, formats, sizes, checksum).
    sa.Column('image_id', sa.String(36)),
    sa.Column('image_metadata', sa.JSON),
    *_timestamps(),
)

snapshots = sa.Table(
    'snapshots', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('volume_id', sa.String(36), nullable=False, index=True),
    sa.Column('volume_size', sa.Integer, nullable=False),
    sa.Column('status', sa.String(32), nullable=False),
    sa.Column('display_name', sa.String(255)),
    sa.Column('display_description', sa.Text),
    sa.Column('host', sa.String(255), index=True),
    sa.Column('provider_location', sa.Text),
    sa.Column('provider_auth', sa.Text),
    sa.Column('provider_id', sa.String(255)),
    sa.Column('progress', sa.String(255)),
    sa.Column('metadata', sa.JSON),
    sa.Column('project_id', sa.String(255)),
    sa.Column('user_id', sa.String(255)),
    sa.Column('group_snapshot_id', sa.String(36), index=True),
    *_timestamps(),
)

volume_attachment = sa.Table(
    'volume_attachment', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('volume_id', sa.String(36), nullable=False, index=True),
    sa.Column('host', sa.String(255), index=True),
    sa.Column('status', sa.String(32), nullable=False),
    sa.Column('instance_uuid', sa.String(36)),
    sa.Column('attached_host', sa.String(255)),
    sa.Column('mountpoint', sa.String(255)),
    sa.Column('attach_mode', sa.String(2)),
    sa.Column('connector', sa.JSON),
    sa.Column('connection_info', sa.JSON),
    sa.Column('attach_time', sa.DateTime),
    sa.Column('detach_time', sa.DateTime),
    *_timestamps(),
)

groups = sa.Table(
    'groups', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('status', sa.String(32), nullable=False),
    sa.Column('name', sa.String(255)),
    sa.Column('description', sa.Text),
    sa.Column('host', sa.String(255), index=True),
    sa.Column('group_type_id', sa.String(36)),
    sa.Column('volume_type_ids', sa.JSON),
    sa.Column('project_id', sa.String(255)),
    sa.Column('user_id', sa.String(255)),
    sa.Column('group_snapshot_id', sa.String(36)),
    sa.Column('source_group_id', sa.String(36)),
    *_timestamps(),
)

group_snapshots = sa.Table(
    'group_snapshots', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('group_id', sa.String(36), nullable=False, index=True),
    sa.Column('status', sa.String(32), nullable=False),
    sa.Column('name', sa.String(255)),
    sa.Column('description', sa.Text),
    sa.Column('host', sa.String(255), index=True),
    sa.Column('group_type_id', sa.String(36)),
    *_timestamps(),
)

# Backups outlive their volume: nothing here refers to a live volume row.
backups = sa.Table(
    'backups', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('volume_id', sa.String(36), nullable=False, index=True),
    sa.Column('status', sa.String(32), nullable=False),
    sa.Column('host', sa.String(255), index=True),
    sa.Column('display_name', sa.String(255)),
    sa.Column('display_description', sa.Text),
    sa.Column('size', sa.Integer),
    sa.Column('container', sa.String(255)),
    sa.Column('object_count', sa.Integer, nullable=False, default=0),
    sa.Column('stored_bytes', sa.BigInteger, nullable=False, default=0),
    sa.Column('parent_id', sa.String(36), index=True),
    sa.Column('snapshot_id', sa.String(36)),
    sa.Column('temp_snapshot_id', sa.String(36)),
    sa.Column('temp_volume_id', sa.String(36)),
    sa.Column('fail_reason', sa.Text),
    sa.Column('project_id', sa.String(255)),
    sa.Column('user_id', sa.String(255)),
    *_timestamps(),
)

group_types = sa.Table(
    'group_types', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('name', sa.String(255), nullable=False, unique=True),
    sa.Column('description', sa.Text),
    sa.Column('group_specs', sa.JSON),
    *_timestamps(),
)

volume_types = sa.Table(
    'volume_types', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('name', sa.String(255), nullable=False, unique=True),
    sa.Column('description', sa.Text),
    sa.Column('is_public', sa.Boolean, nullable=False, default=True),
    sa.Column('extra_specs', sa.JSON),
    sa.Column('qos_specs', sa.JSON),
    # Cinder's volume type encryption: provider (luks), cipher
    # (aes-xts-plain64), key_size (bits), control_location (front-end).
    sa.Column('encryption', sa.JSON),
    *_timestamps(),
)

services = sa.Table(
    'services', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('host', sa.String(255), nullable=False),
    sa.Column('binary', sa.String(64), nullable=False),
    sa.Column('topic', sa.String(255), nullable=False),
    sa.Column('cluster_name', sa.String(255)),
    sa.Column('disabled', sa.Boolean, nullable=False, default=False),
    sa.Column('disabled_reason', sa.String(255)),
    sa.Column('frozen', sa.Boolean, nullable=False, default=False),
    sa.Column('active_backend_id', sa.String(255)),
    sa.Column('replication_status', sa.String(32)),
    sa.Column('recovered_at', sa.DateTime),
    sa.Column('rpc_version', sa.String(16)),
    # Written with each heartbeat: 'up' or 'down', and why it is down.
    sa.Column('backend_state', sa.String(16)),
    sa.Column('backend_state_reason', sa.String(255)),
    *_timestamps(),
    sa.UniqueConstraint('host', 'binary', name='uniq_services0host0binary'),
)

# The operation journal: one row per unfinished operation, written in the
# transaction of its first status change and removed in that of its last.
# ``resources`` lists every resource the operation holds ([role, type, id]);
# ``progress`` the results of its checkpointed tasks. Start-up resumes or
# reverts whatever is left.
operations = sa.Table(
    'operations', metadata,
    sa.Column('id', sa.String(36), primary_key=True),
    sa.Column('host', sa.String(255), nullable=False, index=True),
    sa.Column('operation', sa.String(64), nullable=False),
    sa.Column('state', sa.String(16), nullable=False),
    sa.Column('resources', sa.JSON, nullable=False),
    sa.Column('store', sa.JSON, nullable=False),
    sa.Column('progress', sa.JSON, nullable=False),
    sa.Column('created_at', sa.DateTime, nullable=False),
    sa.Column('updated_at', sa.DateTime),
    # The worker running it (its host@backend), the lease its heartbeat
    # renews, and the epoch a claim by a peer bumps (fencing: writes of
    # the operation check owner and epoch).
    sa.Column('owner', sa.String(255), index=True),
    sa.Column('lease_epoch', sa.Integer, nullable=False, default=0,
              server_default='0'),
    sa.Column('expires_at', sa.DateTime),
)

# What the capability report says of each pool, kept by db/pool_usage.py in
# the transactions that write volumes and snapshots: one row per host value
# (host@backend#pool).
pool_usage = sa.Table(
    'pool_usage', metadata,
    sa.Column('host', sa.String(255), primary_key=True),
    sa.Column('volume_gb', sa.BigInteger, nullable=False, default=0),
    sa.Column('snapshot_gb', sa.BigInteger, nullable=False, default=0),
    sa.Column('volumes', sa.BigInteger, nullable=False, default=0),
)
