"""Tenants may register a webhook: its URL and the secret its deliveries are signed with."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tenants.webhook_url and tenants.webhook_secret."""
    op.add_column("tenants", sa.Column("webhook_url", sa.String(2000), nullable=True))
    op.add_column("tenants", sa.Column("webhook_secret", sa.String(100), nullable=True))


def downgrade() -> None:
    """Drop the webhook columns."""
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
