"""snapshots record their owner (they change owner with a transferred volume)

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('snapshots') as batch:
        batch.add_column(sa.Column('project_id', sa.String(length=255)))
        batch.add_column(sa.Column('user_id', sa.String(length=255)))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
