"""newsroom: revisions, images, admins and disabled editors

Revision ID: 0003_newsroom
Revises: 0002_typed_changes
Create Date: 2026-11-30 05:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0003_newsroom"
down_revision = "0002_typed_changes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("editors") as batch:
        batch.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("alt", sa.String(length=500), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["editors.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("update_id", sa.Integer(), nullable=False),
        sa.Column("headline", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=False),
        sa.Column("saved_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["editor_id"], ["editors.id"]),
        sa.ForeignKeyConstraint(["update_id"], ["updates.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_revisions_update_id", "revisions", ["update_id"])
    with op.batch_alter_table("updates") as batch:
        batch.add_column(sa.Column("image_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_updates_image", "media", ["image_id"], ["id"])


def downgrade():
    with op.batch_alter_table("updates") as batch:
        batch.drop_constraint("fk_updates_image", type_="foreignkey")
        batch.drop_column("image_id")
    op.drop_index("ix_revisions_update_id", table_name="revisions")
    op.drop_table("revisions")
    op.drop_table("media")
    with op.batch_alter_table("editors") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("is_admin")
