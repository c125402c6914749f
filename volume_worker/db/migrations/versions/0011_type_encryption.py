"""volume types say how their volumes are encrypted

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('volume_types') as batch:
        batch.add_column(sa.Column('encryption', sa.JSON))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
