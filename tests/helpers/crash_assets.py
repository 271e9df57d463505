"""A 31-asset shop: 3 sources, staging, a regional factory, marts.

Written into test projects as their asset module by tests/test_crash_recovery.py (never
imported by the tests themselves)."""

import time

import numpy as np
import pandas as pd
import pandera.pandas as pa

from vibepiper import CheckResult, asset, check, expect, source_file

REGIONS = ("north", "south", "east", "west", "centre")

raw_customers = source_file("raw_customers", "data/customers.csv")
raw_orders = source_file("raw_orders", "data/orders.csv")
raw_products = source_file("raw_products", "data/products.csv")


class Customers(pa.DataFrameModel):
    customer_id: int = pa.Field(unique=True, ge=1)
    name: str
    region: str = pa.Field(isin=list(REGIONS))


class OrderLines(pa.DataFrameModel):
    order_id: int = pa.Field(ge=1)
    product_id: int = pa.Field(ge=1)
    quantity: int = pa.Field(ge=1)
    revenue: float = pa.Field(ge=0)


@asset(schema=Customers, group="staging")
def stg_customers(raw_customers: pd.DataFrame) -> pd.DataFrame:
    out = raw_customers.rename(columns={"id": "customer_id"})
    out["name"] = out["name"].str.title()
    return out.sort_values("customer_id").reset_index(drop=True)


@asset(group="staging", checks=[expect.unique("order_id"), expect.not_null("customer_id")])
def stg_orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    out = raw_orders.rename(columns={"id": "order_id"})
    out["day"] = pd.to_datetime(out["day"])
    return out.sort_values("order_id").reset_index(drop=True)


@asset(group="staging", checks=[expect.in_range("price", min=0), expect.unique("product_id")])
def stg_products(raw_products: pd.DataFrame) -> pd.DataFrame:
    return raw_products.rename(columns={"id": "product_id"}).reset_index(drop=True)


@asset(schema=OrderLines, group="core")
def order_lines(stg_orders: pd.DataFrame, stg_products: pd.DataFrame) -> pd.DataFrame:
    lines = stg_orders.merge(stg_products, on="product_id", how="inner")
    lines["revenue"] = (lines["quantity"] * lines["price"]).round(2)
    return lines.sort_values(["order_id", "product_id"]).reset_index(drop=True)


@asset(
    group="core",
    checks=[expect.relationship("customer_id", to="stg_customers", field="customer_id")],
)
def customer_orders(order_lines: pd.DataFrame, stg_customers: pd.DataFrame) -> pd.DataFrame:
    joined = order_lines.merge(stg_customers, on="customer_id", how="left")
    return joined.sort_values(["order_id", "product_id"]).reset_index(drop=True)


@asset(group="core")
def product_sales(order_lines: pd.DataFrame) -> pd.DataFrame:
    grouped = order_lines.groupby("product_id", as_index=False).agg(
        units=("quantity", "sum"), revenue=("revenue", "sum"), orders=("order_id", "nunique")
    )
    return grouped.sort_values("product_id").reset_index(drop=True)


@asset(group="core", checks=[expect.row_count(min=1)])
def daily_sales(order_lines: pd.DataFrame) -> pd.DataFrame:
    time.sleep(0.02)
    daily = order_lines.groupby("day", as_index=False)["revenue"].sum()
    return daily.sort_values("day").reset_index(drop=True)


@asset(group="core")
def simulation(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 60_000
    return pd.DataFrame(
        {"bucket": rng.integers(0, 500, n), "x": rng.normal(size=n), "y": rng.random(n)}
    )


@asset(group="core", checks=[expect.not_null("x_mean")])
def simulation_stats(simulation: pd.DataFrame) -> pd.DataFrame:
    stats = simulation.groupby("bucket").agg(
        x_mean=("x", "mean"), y_max=("y", "max"), n=("x", "size")
    )
    return stats.reset_index().sort_values("bucket").reset_index(drop=True)


def regional(region: str):
    @asset(name=f"orders_{region}", inputs={"orders": "customer_orders"}, group="regions")
    def orders_of(orders: pd.DataFrame) -> pd.DataFrame:
        return orders[orders["region"] == region].reset_index(drop=True)

    @asset(
        name=f"summary_{region}",
        inputs={"orders": f"orders_{region}"},
        group="regions",
        checks=[expect.not_null("revenue")],
    )
    def summary_of(orders: pd.DataFrame) -> pd.DataFrame:
        summary = orders.groupby("customer_id", as_index=False).agg(
            revenue=("revenue", "sum"), lines=("order_id", "size")
        )
        summary["region"] = region
        return summary.sort_values("customer_id").reset_index(drop=True)

    return orders_of, summary_of


REGIONAL = [a for r in REGIONS for a in regional(r)]


@asset(group="marts", inputs={f"s_{r}": f"summary_{r}" for r in REGIONS})
def all_regions(s_north, s_south, s_east, s_west, s_centre) -> pd.DataFrame:
    frames = [s_north, s_south, s_east, s_west, s_centre]
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["region", "customer_id"]).reset_index(drop=True)


@asset(group="marts", checks=[expect.row_count(min=1, max=20)])
def top_customers(all_regions: pd.DataFrame) -> pd.DataFrame:
    return all_regions.nlargest(20, ["revenue", "customer_id"]).reset_index(drop=True)


@asset(group="marts")
def region_totals(all_regions: pd.DataFrame) -> pd.DataFrame:
    out = all_regions.groupby("region", as_index=False).agg(
        revenue=("revenue", "sum"), customers=("customer_id", "nunique")
    )
    return out.sort_values("region").reset_index(drop=True)


@asset(group="marts")
def product_rank(product_sales: pd.DataFrame, stg_products: pd.DataFrame) -> pd.DataFrame:
    ranked = product_sales.merge(stg_products, on="product_id")
    ranked["rank"] = ranked["revenue"].rank(ascending=False, method="first").astype(int)
    return ranked.sort_values("rank").reset_index(drop=True)


@asset(group="marts")
def monthly_revenue(daily_sales: pd.DataFrame) -> pd.DataFrame:
    month = daily_sales["day"].dt.strftime("%Y-%m")
    out = daily_sales.assign(month=month).groupby("month", as_index=False)["revenue"].sum()
    return out.sort_values("month").reset_index(drop=True)


@asset(group="marts", checks=[expect.in_range("revenue", min=0)])
def customer_ltv(customer_orders: pd.DataFrame) -> pd.DataFrame:
    ltv = customer_orders.groupby(["customer_id", "name"], as_index=False).agg(
        revenue=("revenue", "sum"), first_day=("day", "min"), last_day=("day", "max")
    )
    ltv["days"] = (ltv["last_day"] - ltv["first_day"]).dt.days
    return ltv.sort_values("customer_id").reset_index(drop=True)


@asset(group="marts")
def kpis(
    region_totals: pd.DataFrame, monthly_revenue: pd.DataFrame, simulation_stats: pd.DataFrame
) -> pd.DataFrame:
    time.sleep(0.02)
    return pd.DataFrame(
        {
            "metric": ["revenue", "months", "regions", "sim_mean"],
            "value": [
                float(region_totals["revenue"].sum()),
                float(len(monthly_revenue)),
                float(len(region_totals)),
                float(simulation_stats["x_mean"].mean()),
            ],
        }
    )


@asset(group="marts")
def calendar() -> pd.DataFrame:
    days = pd.date_range("2026-01-01", periods=365, freq="D")
    return pd.DataFrame({"day": days, "weekday": days.dayofweek, "month": days.month})


@asset(group="marts")
def report(
    kpis: pd.DataFrame,
    top_customers: pd.DataFrame,
    product_rank: pd.DataFrame,
    customer_ltv: pd.DataFrame,
    calendar: pd.DataFrame,
) -> pd.DataFrame:
    parts = [kpis, top_customers, product_rank, customer_ltv, calendar]
    names = ["kpis", "top_customers", "products", "customers", "calendar"]
    return pd.DataFrame({"part": names, "rows": [len(p) for p in parts]})


@check(asset="report", severity="warn")
def report_has_every_part(report: pd.DataFrame) -> CheckResult:
    return CheckResult(passed=len(report) == 5, message=f"{len(report)} parts")
