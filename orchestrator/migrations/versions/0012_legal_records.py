"""legal notices: how a notice was read (opened in the inbox, through which token), the
notice the policy could not deliver at all (stage `undeliverable`, with the reason), and an
index for paging the legal page newest first

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('confirmations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('read_via', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('read_attempt_id', sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column('read_token_id', sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column('undeliverable_reason', sa.String(length=500), nullable=True))
    op.create_index('ix_confirmations_created', 'confirmations', ['created_at', 'message_id'])


def downgrade() -> None:
    op.drop_index('ix_confirmations_created', table_name='confirmations')
    with op.batch_alter_table('confirmations', schema=None) as batch_op:
        for name in ('undeliverable_reason', 'read_token_id', 'read_attempt_id', 'read_via', 'read_at'):
            batch_op.drop_column(name)
