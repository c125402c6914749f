"""pool_usage: per-pool usage counters for the capability report, filled
from the live volumes and snapshots already there

Revision ID: 0017
Revises: 0014
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'pool_usage',
        sa.Column('host', sa.String(length=255), primary_key=True),
        sa.Column('volume_gb', sa.BigInteger(), nullable=False),
        sa.Column('snapshot_gb', sa.BigInteger(), nullable=False),
        sa.Column('volumes', sa.BigInteger(), nullable=False))
    op.execute(
        "INSERT INTO pool_usage (host, volume_gb, snapshot_gb, volumes) "
        "SELECT host, SUM(volume_gb), SUM(snapshot_gb), SUM(volumes) FROM ("
        " SELECT host, size AS volume_gb, 0 AS snapshot_gb, 1 AS volumes"
        " FROM volumes WHERE deleted = false AND host IS NOT NULL"
        " UNION ALL"
        " SELECT host, 0, volume_size, 0"
        " FROM snapshots WHERE deleted = false AND host IS NOT NULL"
        ") AS live GROUP BY host")


def downgrade():
    raise NotImplementedError('downgrades are not supported')
