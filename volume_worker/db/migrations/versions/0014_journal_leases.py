"""Journal rows get an owner, a lease and an epoch (peer takeover in a cluster)

Revision ID: 0014
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('operations') as batch:
        batch.add_column(sa.Column('owner', sa.String(length=255)))
        batch.add_column(sa.Column('lease_epoch', sa.Integer(),
                                   nullable=False, server_default='0'))
        batch.add_column(sa.Column('expires_at', sa.DateTime()))
        batch.create_index('ix_operations_owner', ['owner'])
    # Rows of an older release belong to the worker that wrote them.
    op.execute('UPDATE operations SET owner = host WHERE owner IS NULL')


def downgrade():
    raise NotImplementedError('downgrades are not supported')
