"""editors' session version; API tokens' last use and expiry

Revision ID: 5c2e8d41a7b3
Revises: 0003_reader_indexes
Create Date: 2026-11-30 05:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c2e8d41a7b3'
down_revision = "0003_reader_indexes"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('editors', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_version', sa.Integer(), server_default='0', nullable=False)
        )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('last_used_at')
    with op.batch_alter_table('editors', schema=None) as batch_op:
        batch_op.drop_column('session_version')
