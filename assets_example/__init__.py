"""The jaffle shop: an example VibePiper project.

Three layers of assets built on the bundled CSVs in ``data/``:

- ``sources``: the raw files, versioned by the hash of their bytes;
- ``staging``: cleaned, renamed and typed copies of the raw tables, written in SQL;
- ``marts``: the tables an analyst reads (orders, customers, finance summaries).

VibePiper finds the assets by scanning this package and its submodules.
"""
