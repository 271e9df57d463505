"""The `orders` frame that validation.py and memory.py measure, and the five checks on it.

It imports only numpy and pandas (vibepiper when the checks are asked for), so that
memory.py can copy it into the project it materializes without adding to what that
process imports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

STATUSES = ["placed", "shipped", "completed", "returned"]
AMOUNT_MIN, AMOUNT_MAX = 0, 100
NAN_SHARE = 0.01  # share of `amount` left missing (allowed: the range check skips nulls)


def build_frame(rows: int, violations: int = 0) -> pd.DataFrame:
    """id int64 unique, amount float64 with some NaN, status of 4 values, customer int64."""
    rng = np.random.default_rng(0)
    ids = rng.permutation(rows).astype(np.int64)
    amount = rng.uniform(AMOUNT_MIN, AMOUNT_MAX, rows)
    amount[rng.random(rows) < NAN_SHARE] = np.nan
    status = np.array(STATUSES, dtype=object)[rng.integers(0, len(STATUSES), rows)]
    customer = rng.integers(0, max(rows // 10, 1), rows, dtype=np.int64)
    if violations:  # rows that break unique, in_range and accepted_values
        at = rng.choice(rows, size=3 * violations, replace=False)
        dup, low, bad = at[:violations], at[violations : 2 * violations], at[2 * violations :]
        ids[dup] = ids[(dup + 1) % rows]
        amount[low] = -1.0
        status[bad] = "unknown"
    return pd.DataFrame({"id": ids, "amount": amount, "status": status, "customer": customer})


def checks() -> list[Any]:
    """The five checks, as `vibepiper.expect` values: id not null and unique, amount within
    [0, 100], status one of the 4 values, at least one row."""
    from vibepiper import expect

    return [
        expect.not_null("id"),
        expect.unique("id"),
        expect.in_range("amount", min=AMOUNT_MIN, max=AMOUNT_MAX),
        expect.accepted_values("status", STATUSES),
        expect.row_count(min=1),
    ]
