"""volumes remember the image they were made from

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('volumes') as batch:
        batch.add_column(sa.Column('image_id', sa.String(length=36)))
        batch.add_column(sa.Column('image_metadata', sa.JSON))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
