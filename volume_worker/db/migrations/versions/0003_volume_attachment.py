"""volume attachments

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'volume_attachment',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('volume_id', sa.String(length=36), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('instance_uuid', sa.String(length=36), nullable=True),
        sa.Column('attached_host', sa.String(length=255), nullable=True),
        sa.Column('mountpoint', sa.String(length=255), nullable=True),
        sa.Column('attach_mode', sa.String(length=2), nullable=True),
        sa.Column('connector', sa.JSON(), nullable=True),
        sa.Column('connection_info', sa.JSON(), nullable=True),
        sa.Column('attach_time', sa.DateTime(), nullable=True),
        sa.Column('detach_time', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_volume_attachment_volume_id', 'volume_attachment',
                    ['volume_id'])
    op.create_index('ix_volume_attachment_host', 'volume_attachment',
                    ['host'])


def downgrade():
    raise NotImplementedError('downgrades are not supported')
