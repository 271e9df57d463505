"""Automation: schedules, file sensors, eager assets and freshness policies, and the
`vibepiper serve` daemon that runs them (SPEC §8)."""
