"""review sessions held server-side (ended at logout, bounded in age)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'review_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('key_id', sa.String(length=26), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_review_sessions_key_id', 'review_sessions', ['key_id'])


def downgrade() -> None:
    op.drop_index('ix_review_sessions_key_id', table_name='review_sessions')
    op.drop_table('review_sessions')
