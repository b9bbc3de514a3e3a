"""audit state: whether the log has ever been keyed, and the checkpoints written

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:00:00

One row, kept apart from the entries so that deleting entries does not erase it
(orchestrator.audit.log). `keyed_since` is NULL only when the log holds nothing but
entries from before keying (an upgrade from before 0010 that never started that version):
then, and only then, `orchestrator audit rekey` may re-key them, once. A new database, or one
with keyed entries, is keyed from here on. `checkpoints_written` and `last_checkpoint` let
`audit verify` tell a deleted or truncated checkpoint file from one never written.
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        'audit_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('keyed_since', sa.DateTime(timezone=True), nullable=True),
        sa.Column('checkpoints_written', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_checkpoint', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    bind = op.get_bind()
    entries = bind.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    keyed = bind.execute(sa.text("SELECT count(*) FROM audit_log WHERE key_id IS NOT NULL")).scalar_one()
    legacy_only = entries > 0 and keyed == 0
    op.bulk_insert(state, [{'id': 1, 'keyed_since': None if legacy_only else datetime.now(UTC),
                            'checkpoints_written': 0}])


def downgrade() -> None:
    op.drop_table('audit_state')
