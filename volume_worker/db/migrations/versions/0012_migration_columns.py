"""migration_status holds Cinder's target:<volume id> marker (43 characters);
snapshots get provider_id (update_provider_info reports it at start-up)

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('volumes') as batch:
        batch.alter_column('migration_status', type_=sa.String(length=255),
                           existing_type=sa.String(length=32))
    with op.batch_alter_table('snapshots') as batch:
        batch.add_column(sa.Column('provider_id', sa.String(length=255)))


def downgrade():
    raise NotImplementedError('downgrades are not supported')
