"""What users declare: assets, sources, checks, expectations and the run context."""
