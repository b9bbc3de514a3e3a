"""step group on attempts, marketing flag on messages, inbox archive, revocable in-app tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 03:30:00
"""
import json

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _groups(modes: list[str]) -> list[int]:
    # Same rule as orchestrator.lifecycle.planning.step_groups, frozen here: a migration must
    # not change meaning when application code does.
    groups: list[int] = []
    for i, mode in enumerate(modes):
        groups.append(groups[-1] if i > 0 and mode == "parallel" else len(set(groups)))
    return groups


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        # Read by the delivery path (List-Unsubscribe) instead of the route JSON.
        batch_op.add_column(sa.Column('marketing', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_group', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_attempts_user_channel_status', ['user_id', 'channel', 'status'], unique=False)
    with op.batch_alter_table('in_app_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id', sa.String(length=26), nullable=True))
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_in_app_tokens_id', ['id'], unique=True)

    # Backfill the step group from each message's stored route.
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT m.id, m.route FROM messages m WHERE EXISTS (SELECT 1 FROM attempts a WHERE a.message_id = m.id)"))
    for message_id, route in rows.fetchall():
        route = json.loads(route) if isinstance(route, str) else (route or {})
        groups = _groups([s.get("mode", "first") for s in route.get("steps", [])])
        for index, group in enumerate(groups):
            if group:
                conn.execute(sa.text("UPDATE attempts SET step_group = :g WHERE message_id = :m AND step_index = :i"),
                             {"g": group, "m": message_id, "i": index})
    tokens = conn.execute(sa.text("SELECT token_hash FROM in_app_tokens")).fetchall()
    for (token_hash,) in tokens:
        conn.execute(sa.text("UPDATE in_app_tokens SET id = :i WHERE token_hash = :h"),
                     {"i": token_hash[:26], "h": token_hash})


def downgrade() -> None:
    with op.batch_alter_table('in_app_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_in_app_tokens_id')
        batch_op.drop_column('revoked_at')
        batch_op.drop_column('id')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_user_channel_status')
        batch_op.drop_column('archived_at')
        batch_op.drop_column('step_group')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('marketing')
