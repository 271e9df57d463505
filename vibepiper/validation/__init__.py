"""Evaluating what users declared about an asset's output: schema, expectations, checks."""
