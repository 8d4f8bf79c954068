"""Pictures of heads and datasets for people to check."""
