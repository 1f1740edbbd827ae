"""reader indexes: a story's updates in page order, its key events, its pinned updates

Revision ID: 0003_reader_indexes
Revises: 0003_newsroom
Create Date: 2026-11-30 06:00:00

"""

from alembic import op


revision = "0003_reader_indexes"
down_revision = "0003_newsroom"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_updates_stream", "updates", ["article_id", "published_at", "id"])
    op.create_index(
        "ix_updates_key_events", "updates", ["article_id", "key_event", "published_at", "id"]
    )
    op.create_index(
        "ix_updates_pinned", "updates", ["article_id", "pinned", "published_at", "id"]
    )


def downgrade():
    op.drop_index("ix_updates_pinned", table_name="updates")
    op.drop_index("ix_updates_key_events", table_name="updates")
    op.drop_index("ix_updates_stream", table_name="updates")
