"""per-category channel preferences on recipients; recipients looked up by phone (inbound SMS)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recipients') as batch_op:
        batch_op.add_column(sa.Column('preferences', sa.JSON(), nullable=True))
    op.create_index('ix_recipients_phone', 'recipients', ['phone'])


def downgrade() -> None:
    op.drop_index('ix_recipients_phone', table_name='recipients')
    with op.batch_alter_table('recipients') as batch_op:
        batch_op.drop_column('preferences')
