"""Staging: one cleaned, renamed and typed table per raw source, nothing joined yet."""

import pandas as pd
import pandera.pandas as pa

from vibepiper import asset, expect

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


@asset(
    group="staging",
    tags=["staging"],
    checks=[
        expect.unique("customer_id"),
        expect.not_null("first_name"),
        expect.row_count(min=1),
    ],
)
def stg_customers(raw_customers: pd.DataFrame) -> pd.DataFrame:
    """One row per customer, keyed by ``customer_id``."""
    customers = raw_customers.rename(columns={"id": "customer_id"})
    customers = customers.astype({"customer_id": "int64", "first_name": str, "last_name": str})
    return customers.sort_values("customer_id").reset_index(drop=True)


@asset(
    schema=StgOrders,
    group="staging",
    tags=["staging"],
    checks=[
        expect.row_count(min=1),
        expect.relationship("customer_id", to="stg_customers", field="customer_id"),
    ],
)
def stg_orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    """One row per order, with its customer, order date and fulfilment status."""
    orders = raw_orders.rename(columns={"id": "order_id", "user_id": "customer_id"})
    orders = orders.astype({"order_id": "int64", "customer_id": "int64", "status": str})
    orders["order_date"] = pd.to_datetime(orders["order_date"], format="%Y-%m-%d")
    return orders.sort_values("order_id").reset_index(drop=True)


@asset(
    schema=StgPayments,
    group="staging",
    tags=["staging"],
    checks=[
        expect.row_count(min=1),
        expect.relationship("order_id", to="stg_orders", field="order_id"),
    ],
)
def stg_payments(raw_payments: pd.DataFrame) -> pd.DataFrame:
    """One row per payment; ``amount`` converted from integer cents to dollars."""
    payments = raw_payments.rename(columns={"id": "payment_id"})
    payments = payments.astype({"payment_id": "int64", "order_id": "int64", "payment_method": str})
    payments["amount"] = payments["amount"].astype("float64") / 100
    return payments.sort_values("payment_id").reset_index(drop=True)
