"""`python -m vibepiper` runs the CLI."""

from vibepiper.cli.main import main

main()
