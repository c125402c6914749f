"""group snapshots; snapshots know their group snapshot

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'group_snapshots',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('group_id', sa.String(length=36), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('host', sa.String(length=255), nullable=True),
        sa.Column('group_type_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_group_snapshots_group_id', 'group_snapshots',
                    ['group_id'])
    op.create_index('ix_group_snapshots_host', 'group_snapshots', ['host'])
    with op.batch_alter_table('snapshots') as batch:
        batch.add_column(sa.Column('group_snapshot_id',
                                   sa.String(length=36)))
        batch.create_index('ix_snapshots_group_snapshot_id',
                           ['group_snapshot_id'])


def downgrade():
    raise NotImplementedError('downgrades are not supported')
