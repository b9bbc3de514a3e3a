"""message templates: stored and versioned (a new immutable version per change)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'templates',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('latest_version', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'template_versions',
        sa.Column('template_id', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('default_locale', sa.String(length=35), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('variables', sa.JSON(), nullable=False),
        sa.Column('author', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['template_id'], ['templates.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('template_id', 'version'),
    )


def downgrade() -> None:
    op.drop_table('template_versions')
    op.drop_table('templates')
