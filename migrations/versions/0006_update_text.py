"""updates' and stories' plain-text excerpts, kept at write time for pages to read

Revision ID: 0006_update_text
Revises: 5c2e8d41a7b3
Create Date: 2026-12-04 19:30:00

"""

from alembic import op
import sqlalchemy as sa
from markupsafe import Markup


revision = "0006_update_text"
down_revision = "5c2e8d41a7b3"
branch_labels = None
depends_on = None

# The rule as liveblog.rendering.excerpt had it when this revision was written: a migration
# keeps its own copy, so a later change to the rule cannot change what this one does.
EXCERPT_CHARS = 5000
BATCH = 500  # rows read and written at a time: a long newsroom is never held in memory


def excerpt(html: str) -> str:
    text = " ".join(Markup(html).striptags().split())  # nosec B704
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[: EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"


def backfill(table: str) -> None:
    rows = sa.table(table, sa.column("id", sa.Integer), sa.column("html", sa.Text),
                    sa.column("excerpt", sa.Text))  # fmt: skip
    connection = op.get_bind()
    last = 0
    while True:
        batch = connection.execute(
            sa.select(rows.c.id, rows.c.html).where(rows.c.id > last).order_by(rows.c.id)
            .limit(BATCH)
        ).all()  # fmt: skip
        if not batch:
            return
        connection.execute(
            rows.update().where(rows.c.id == sa.bindparam("row_id")),
            [{"row_id": row_id, "excerpt": excerpt(html or "")} for row_id, html in batch],
        )
        last = batch[-1][0]


def upgrade():
    for table in ("articles", "updates"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("excerpt", sa.Text(), server_default="", nullable=False))
        backfill(table)


def downgrade():
    for table in ("updates", "articles"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("excerpt")
