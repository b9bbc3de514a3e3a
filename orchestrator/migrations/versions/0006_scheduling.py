"""scheduled sends (send_at) and cancellation (who and when)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('send_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('cancelled_by', sa.JSON(), nullable=True))
    # The sweeper's look-up of scheduled messages that came due; list filters by time.
    op.create_index('ix_messages_status_send_at', 'messages', ['status', 'send_at'])
    op.create_index('ix_messages_key_created', 'messages', ['api_key_id', 'created_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_messages_key_created', table_name='messages')
    op.drop_index('ix_messages_status_send_at', table_name='messages')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('cancelled_by')
        batch.drop_column('cancelled_at')
        batch.drop_column('send_at')
