"""The web UI of `vibepiper serve` (SPEC §9): pages and a JSON API over the project and
its catalog."""
