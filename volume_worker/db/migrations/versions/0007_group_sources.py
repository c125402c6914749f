"""groups remember the group snapshot or group they were made from

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('groups') as batch:
        batch.add_column(sa.Column('group_snapshot_id', sa.String(length=36)))
        batch.add_column(sa.Column('source_group_id', sa.String(length=36)))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
