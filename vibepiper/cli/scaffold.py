"""`vibepiper init`: a new project that materializes out of the box."""

from __future__ import annotations

import re
from pathlib import Path

from vibepiper.errors import UsageError

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["vibepiper"]

[tool.vibepiper]
modules = ["assets"]
"""

ASSETS = '''\
"""The project's assets. Each function decorated with @asset is one table."""

import pandas as pd
import pandera.pandas as pa

from vibepiper import Context, asset, expect, source_file

raw_cities = source_file("raw_cities", "data/cities.csv")


class Cities(pa.DataFrameModel):
    city: str = pa.Field(unique=True)
    country: str
    population: int = pa.Field(ge=0)


@asset(schema=Cities, checks=[expect.row_count(min=1)], group="staging")
def cities(raw_cities: pd.DataFrame) -> pd.DataFrame:
    """One row per city, names trimmed."""
    return raw_cities.assign(city=raw_cities.city.str.strip())


@asset(checks=[expect.unique("country"), expect.not_null("population")], group="marts")
def countries(cities: pd.DataFrame, context: Context, min_population: int = 0) -> pd.DataFrame:
    """Total population per country (cities above min_population)."""
    big = cities[cities.population >= min_population]
    context.log.info("%d of %d cities kept", len(big), len(cities))
    return big.groupby("country", as_index=False)["population"].sum()
'''

CITIES = """\
city,country,population
Lisbon,Portugal,545000
Porto,Portugal,232000
Madrid,Spain,3300000
Barcelona,Spain,1620000
Lyon,France,522000
Paris,France,2100000
"""

GITIGNORE = ".vibepiper/\n__pycache__/\n"

# What a freshly made repository holds (`git init`, or a hosted one with a README and a
# licence): `init` may write a project beside these.
MAY_BE_THERE = {
    ".git",
    ".gitignore",
    ".gitattributes",
    ".hg",
    "README",
    "README.md",
    "README.rst",
    "LICENSE",
    "LICENSE.md",
    "LICENSE.txt",
}


def _add_ignored(gitignore: Path) -> None:
    """Our lines in .gitignore, added to the ones already there."""
    have = gitignore.read_text().splitlines() if gitignore.exists() else []
    missing = [line for line in GITIGNORE.splitlines() if line not in have]
    if not missing:
        return
    lead = "\n" if have and not gitignore.read_text().endswith("\n") else ""
    with gitignore.open("a") as file:
        file.write(lead + "".join(f"{line}\n" for line in missing))


def create_project(directory: str) -> list[str]:
    """Write a new project into `directory`; return the lines to show the user."""
    root = Path(directory)
    if (root / "pyproject.toml").exists():
        raise UsageError(
            f"{root / 'pyproject.toml'} already exists",
            "run `vibepiper init` with a new or empty folder",
        )
    in_the_way = (
        sorted(p.name for p in root.iterdir() if p.name not in MAY_BE_THERE)
        if root.is_dir()
        else []
    )
    if in_the_way:
        shown = ", ".join(in_the_way[:5]) + (", ..." if len(in_the_way) > 5 else "")
        raise UsageError(
            f"folder {root} is not empty (it holds {shown})",
            "choose a new folder, or one holding only a fresh repository's files "
            "(.git, .gitignore, README, LICENSE)",
        )
    name = re.sub(r"[^a-z0-9_-]+", "-", root.resolve().name.lower()).strip("-") or "assets"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    (root / "assets.py").write_text(ASSETS)
    (root / "data" / "cities.csv").write_text(CITIES)
    _add_ignored(root / ".gitignore")
    return [
        f"created a project in {root}",
        f"  cd {directory}",
        "  vibepiper list            # the assets",
        "  vibepiper materialize     # compute, validate and store them",
        "  vibepiper show countries  # look at the result",
    ]
