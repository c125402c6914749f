"""operation journal keyed by operation; volume fields drivers read

Revision ID: 0002
Revises: 0001

The journal of 0001 had one row per resource (``flow_journal``); an
operation may hold several resources (a snapshot and its volume), so rows
are now keyed by operation and list what they hold. Rows left by a worker
of the old schema are carried over, so their operations still resume.
"""

import json
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    operations = op.create_table(
        'operations',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('operation', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('resources', sa.JSON(), nullable=False),
        sa.Column('store', sa.JSON(), nullable=False),
        sa.Column('progress', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_operations_host', 'operations', ['host'])

    old = sa.table('flow_journal', sa.column('resource_type'),
                   sa.column('resource_id'), sa.column('host'),
                   sa.column('operation'), sa.column('state'),
                   sa.column('store', sa.JSON), sa.column('progress', sa.JSON),
                   sa.column('created_at', sa.DateTime),
                   sa.column('updated_at', sa.DateTime))
    conn = op.get_bind()
    rows = [dict(r._mapping) for r in conn.execute(sa.select(old))]
    for row in rows:
        store = row['store']
        if isinstance(store, str):
            store = json.loads(store)
        kind = row['resource_type']
        conn.execute(operations.insert().values(
            id=str(uuid.uuid4()), host=row['host'],
            operation=row['operation'], state=row['state'],
            resources=[[kind, kind, row['resource_id']]],
            # The old create stored the whole volume; the row holds it now.
            store={k: v for k, v in (store or {}).items()
                   if k not in ('volume_id', 'volume_primitive')},
            progress=row['progress'] or {}, created_at=row['created_at'],
            updated_at=row['updated_at']))
    op.drop_table('flow_journal')

    with op.batch_alter_table('volumes') as batch:
        batch.add_column(sa.Column('project_id', sa.String(length=255)))
        batch.add_column(sa.Column('user_id', sa.String(length=255)))
        batch.add_column(sa.Column('multiattach', sa.Boolean(),
                                   nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('bootable', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('group_id', sa.String(length=36)))
        batch.add_column(sa.Column('_name_id', sa.String(length=36)))
        batch.add_column(sa.Column('encryption_key_id', sa.String(length=36)))
    with op.batch_alter_table('volume_types') as batch:
        batch.add_column(sa.Column('qos_specs', sa.JSON()))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
