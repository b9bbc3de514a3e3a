"""legal notices: confirmation tracking (reminder, escalation, acknowledgement: who, when, how);
quiet in-app entries (over the in-app cap, no live display)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quiet', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'confirmations',
        sa.Column('message_id', sa.String(length=26), nullable=False),
        sa.Column('user_id', sa.String(length=200), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('remind_after_seconds', sa.Integer(), nullable=False),
        sa.Column('escalate_after_seconds', sa.Integer(), nullable=False),
        sa.Column('reminders_sent', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_via', sa.String(length=16), nullable=True),
        sa.Column('acknowledged_attempt_id', sa.String(length=26), nullable=True),
        sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
        sa.Column('acknowledged_token_id', sa.String(length=26), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('message_id'),
    )
    op.create_index('ix_confirmations_due', 'confirmations', ['stage', 'due_at'])


def downgrade() -> None:
    op.drop_index('ix_confirmations_due', table_name='confirmations')
    op.drop_table('confirmations')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('quiet')
