"""Marts: the tables analysts query, built from staging and from each other."""

import pandas as pd
import pandera.pandas as pa

from assets_example.staging import ORDER_STATUSES, PAYMENT_METHODS
from vibepiper import CheckResult, Context, asset, check, expect

METHOD_AMOUNTS = [f"{method}_amount" for method in PAYMENT_METHODS]


class Orders(pa.DataFrameModel):
    order_id: int = pa.Field(unique=True, ge=1)
    customer_id: int = pa.Field(ge=1)
    order_date: pa.typing.DateTime
    status: str = pa.Field(isin=ORDER_STATUSES)
    credit_card_amount: float = pa.Field(ge=0)
    coupon_amount: float = pa.Field(ge=0)
    bank_transfer_amount: float = pa.Field(ge=0)
    gift_card_amount: float = pa.Field(ge=0)
    amount: float = pa.Field(ge=0)


@asset(
    schema=Orders,
    group="marts",
    tags=["core"],
    checks=[
        expect.row_count(min=1),
        expect.relationship("customer_id", to="stg_customers", field="customer_id"),
        expect.sql(
            "SELECT * FROM orders WHERE abs(amount - (credit_card_amount + coupon_amount"
            " + bank_transfer_amount + gift_card_amount)) > 0.005",
            name="amount_is_sum_of_methods",
        ),
    ],
)
def orders(stg_orders: pd.DataFrame, stg_payments: pd.DataFrame, context: Context) -> pd.DataFrame:
    """One row per order, with the amount paid by each payment method and in total."""
    context.log.info("joining %d orders with %d payments", len(stg_orders), len(stg_payments))
    by_method = (
        stg_payments.pivot_table(
            index="order_id", columns="payment_method", values="amount", aggfunc="sum"
        )
        .reindex(columns=PAYMENT_METHODS)
        .add_suffix("_amount")
        .rename_axis(columns=None)
        .reset_index()
    )
    joined = stg_orders.merge(by_method, on="order_id", how="left")
    joined[METHOD_AMOUNTS] = joined[METHOD_AMOUNTS].fillna(0.0)
    joined["amount"] = joined[METHOD_AMOUNTS].sum(axis=1)
    return joined.sort_values("order_id").reset_index(drop=True)


@check(asset="orders", severity="error")
def orders_reconcile_with_payments(orders: pd.DataFrame, stg_payments: pd.DataFrame) -> CheckResult:
    """Every dollar paid is attributed to exactly one order."""
    paid, attributed = stg_payments["amount"].sum(), orders["amount"].sum()
    return CheckResult(
        passed=abs(paid - attributed) < 0.005,
        message=f"payments total {paid:.2f}, orders total {attributed:.2f}",
    )


class Customers(pa.DataFrameModel):
    customer_id: int = pa.Field(unique=True, ge=1)
    first_name: str
    last_name: str
    first_order: pa.typing.DateTime = pa.Field(nullable=True)
    most_recent_order: pa.typing.DateTime = pa.Field(nullable=True)
    number_of_orders: int = pa.Field(ge=0)
    customer_lifetime_value: float = pa.Field(ge=0)


@asset(
    schema=Customers,
    group="marts",
    tags=["core"],
    checks=[
        # Warns on the bundled data: 38 customers never ordered. Reported, never blocking.
        expect.not_null("first_order", severity="warn", name="every_customer_ordered"),
        expect.unique("customer_id"),
        expect.not_null("customer_lifetime_value"),
        expect.in_range("number_of_orders", min=0),
        expect.relationship("customer_id", to="stg_customers", field="customer_id"),
    ],
)
def customers(stg_customers: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """One row per customer, with their order history and lifetime value in dollars.

    Customers who never ordered have no first or most recent order, zero orders and a
    lifetime value of 0.
    """
    history = orders.groupby("customer_id", as_index=False).agg(
        first_order=("order_date", "min"),
        most_recent_order=("order_date", "max"),
        number_of_orders=("order_id", "count"),
        customer_lifetime_value=("amount", "sum"),
    )
    joined = stg_customers.merge(history, on="customer_id", how="left")
    joined = joined.fillna({"number_of_orders": 0, "customer_lifetime_value": 0.0})
    joined = joined.astype({"number_of_orders": "int64"})
    return joined.sort_values("customer_id").reset_index(drop=True)


class PaymentsByMethod(pa.DataFrameModel):
    payment_method: str = pa.Field(isin=PAYMENT_METHODS, unique=True)
    number_of_payments: int = pa.Field(ge=1)
    number_of_orders: int = pa.Field(ge=1)
    total_amount: float = pa.Field(ge=0)


@asset(
    schema=PaymentsByMethod,
    group="marts",
    tags=["finance"],
    checks=[
        expect.unique("payment_method"),
        expect.accepted_values("payment_method", PAYMENT_METHODS),
        expect.in_range("total_amount", min=0),
    ],
)
def payments_by_method(stg_payments: pd.DataFrame) -> pd.DataFrame:
    """Number of payments, orders paid and total dollars for each payment method."""
    totals = stg_payments.groupby("payment_method", as_index=False).agg(
        number_of_payments=("payment_id", "count"),
        number_of_orders=("order_id", "nunique"),
        total_amount=("amount", "sum"),
    )
    return totals.sort_values("payment_method").reset_index(drop=True)


class DailyRevenue(pa.DataFrameModel):
    order_date: pa.typing.DateTime = pa.Field(unique=True)
    number_of_orders: int = pa.Field(ge=1)
    revenue: float = pa.Field(ge=0)
    currency: str = pa.Field(str_length={"min_value": 3, "max_value": 3})


@asset(
    schema=DailyRevenue,
    group="marts",
    tags=["finance"],
    checks=[
        expect.unique("order_date"),
        expect.row_count(min=1),
        expect.in_range("revenue", min=0),
    ],
)
def daily_revenue(orders: pd.DataFrame, context: Context, currency: str = "USD") -> pd.DataFrame:
    """Orders and revenue per order date, excluding returned orders.

    ``currency`` labels the amounts; it is configuration, recorded with each run.
    """
    kept = orders[orders["status"] != "returned"]
    context.log.info("%d of %d orders count towards revenue", len(kept), len(orders))
    daily = kept.groupby("order_date", as_index=False).agg(
        number_of_orders=("order_id", "count"),
        revenue=("amount", "sum"),
    )
    daily["currency"] = currency
    return daily.sort_values("order_date").reset_index(drop=True)
