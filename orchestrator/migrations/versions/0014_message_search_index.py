"""message search: an index for finding messages by category in a period

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:00:00

GET /v1/messages and the review pages' message search list messages newest first by
(created_at, id), filtered. A user filter uses ix_messages_user_created, a key's own list
ix_messages_key_created, a status filter ix_messages_status, a channel filter probes
ix_attempts_message_id per candidate. A category filter had only the created_at index: a rare
category (legal notices) over a long period read every message of the period to fill a page.
(category, created_at, id) answers it, and its keyset paging, with one index range scan.
"""
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_messages_category_created', 'messages', ['category', 'created_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_messages_category_created', table_name='messages')
