"""audit chain keyed (key id per entry), uncertain sends on attempts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 07:00:00

Audit entries written before this revision carry a plain SHA-256 chain and key_id NULL; the
service re-keys them with its audit key at the next start (orchestrator.audit.log
.rekey_legacy: the old chain is verified first, and the re-key is itself an audit entry).
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        # Set by the claim, committed before the provider call: a lease that runs out on a
        # sending attempt means the send's outcome is unknown (an uncertain send).
        batch_op.add_column(sa.Column('send_started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('uncertain_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('uncertain_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('uncertain_resolution', sa.String(length=16), nullable=True))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('key_id')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('uncertain_resolution')
        batch_op.drop_column('uncertain_count')
        batch_op.drop_column('uncertain_at')
        batch_op.drop_column('send_started_at')
