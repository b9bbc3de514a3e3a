"""reviewers, their one-time invitations, and single sign-on flows in progress

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 21:00:00

A reviewer signs in to the review pages by a one-time invitation link or by OpenID Connect;
their scopes sit on an API key row whose secret was never shown (compliance/reviewers.py).
Invitation tokens are stored as SHA-256 hashes only. review_sso_states holds an OpenID Connect
sign-in between its start and its callback (nonce, PKCE verifier), so the browser does not.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reviewers',
        sa.Column('id', sa.String(length=26), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('key_id', sa.String(length=26), nullable=False),
        sa.Column('subject_hash', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_id'),
        sa.UniqueConstraint('subject_hash'),
    )
    op.create_table(
        'review_invitations',
        sa.Column('id', sa.String(length=26), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('scopes', sa.String(length=500), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reviewer_id', sa.String(length=26), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_table(
        'review_sso_states',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_review_sso_states_expires_at', 'review_sso_states', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_review_sso_states_expires_at', table_name='review_sso_states')
    op.drop_table('review_sso_states')
    op.drop_table('review_invitations')
    op.drop_table('reviewers')
