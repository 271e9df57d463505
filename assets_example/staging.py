"""Staging: one cleaned, renamed and typed table per raw source, nothing joined yet.

Written in SQL (`sql_asset`): DuckDB computes each one straight from its source's Parquet
file to its own, and its checks run as SQL over the result. The marts, in pandas, read them
like any other asset.
"""

import pandera.pandas as pa

from vibepiper import expect, sql_asset

ORDER_STATUSES = ["placed", "shipped", "completed", "return_pending", "returned"]
PAYMENT_METHODS = ["credit_card", "coupon", "bank_transfer", "gift_card"]


class StgOrders(pa.DataFrameModel):
    order_id: int = pa.Field(unique=True, ge=1)
    customer_id: int = pa.Field(ge=1)
    order_date: pa.typing.DateTime
    status: str = pa.Field(isin=ORDER_STATUSES)


class StgPayments(pa.DataFrameModel):
    payment_id: int = pa.Field(unique=True, ge=1)
    order_id: int = pa.Field(ge=1)
    payment_method: str = pa.Field(isin=PAYMENT_METHODS)
    amount: float = pa.Field(ge=0)


stg_customers = sql_asset(
    "stg_customers",
    """
    -- one row per customer, keyed by customer_id
    select id::bigint as customer_id, first_name::varchar as first_name,
           last_name::varchar as last_name
    from raw_customers
    order by customer_id
    """,
    group="staging",
    tags=["staging"],
    checks=[
        expect.unique("customer_id"),
        expect.not_null("first_name"),
        expect.row_count(min=1),
    ],
    description="One row per customer, keyed by ``customer_id``.",
)

stg_orders = sql_asset(
    "stg_orders",
    """
    select id::bigint as order_id, user_id::bigint as customer_id,
           strptime(order_date, '%Y-%m-%d') as order_date, status::varchar as status
    from raw_orders
    order by order_id
    """,
    schema=StgOrders,
    group="staging",
    tags=["staging"],
    checks=[
        expect.row_count(min=1),
        expect.relationship("customer_id", to="stg_customers", field="customer_id"),
    ],
    description="One row per order, with its customer, order date and fulfilment status.",
)

stg_payments = sql_asset(
    "stg_payments",
    """
    -- amount: integer cents in the source, dollars here
    select id::bigint as payment_id, order_id::bigint as order_id,
           payment_method::varchar as payment_method, amount::double / 100 as amount
    from raw_payments
    order by payment_id
    """,
    schema=StgPayments,
    group="staging",
    tags=["staging"],
    checks=[
        expect.row_count(min=1),
        expect.relationship("order_id", to="stg_orders", field="order_id"),
    ],
    description="One row per payment; ``amount`` converted from integer cents to dollars.",
)
