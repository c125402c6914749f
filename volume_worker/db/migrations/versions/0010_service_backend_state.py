"""services record their backend's state (up/down) and why, at each heartbeat

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('backend_state', sa.String(length=16)))
        batch.add_column(sa.Column('backend_state_reason',
                                   sa.String(length=255)))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
