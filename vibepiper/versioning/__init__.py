"""versioning package."""
