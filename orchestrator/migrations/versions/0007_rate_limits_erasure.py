"""rate limit per API key; erasure time on messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True))
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('erased_at')
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('rate_limit_per_minute')
