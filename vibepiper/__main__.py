"""`python -m vibepiper` runs the CLI."""

from vibepiper.cli.main import main

if __name__ == "__main__":  # not when a worker process re-imports the parent's main module
    main()
