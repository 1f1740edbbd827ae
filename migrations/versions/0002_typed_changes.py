"""typed changes: update status, stored elements, who edited and deleted, story end time

Revision ID: 0002_typed_changes
Revises: 79965b7f3aaf
Create Date: 2026-11-30 05:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0002_typed_changes"
down_revision = "79965b7f3aaf"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("ended_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("updates") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=10), nullable=False, server_default="published")
        )
        batch.add_column(sa.Column("publish_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("edited_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("deleted_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("element", sa.Text(), nullable=False, server_default=""))
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key("fk_updates_edited_by", "editors", ["edited_by_id"], ["id"])
        batch.create_foreign_key("fk_updates_deleted_by", "editors", ["deleted_by_id"], ["id"])


def downgrade():
    with op.batch_alter_table("updates") as batch:
        batch.drop_constraint("fk_updates_deleted_by", type_="foreignkey")
        batch.drop_constraint("fk_updates_edited_by", type_="foreignkey")
        batch.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("element")
        batch.drop_column("deleted_by_id")
        batch.drop_column("edited_by_id")
        batch.drop_column("publish_at")
        batch.drop_column("status")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("ended_at")
