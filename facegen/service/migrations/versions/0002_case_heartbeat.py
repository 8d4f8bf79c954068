"""Cases carry the time their worker last reported, so that an interrupted job is found and run again."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add cases.heartbeat_at."""
    op.add_column("cases", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop cases.heartbeat_at."""
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("heartbeat_at")
