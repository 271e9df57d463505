"""Raw inputs: the three CSV exports of the jaffle shop's operational database.

Paths are relative to the project root (the repository root), where ``vibepiper`` runs.
"""

from vibepiper import source_file

raw_customers = source_file("raw_customers", "assets_example/data/raw_customers.csv")
raw_orders = source_file("raw_orders", "assets_example/data/raw_orders.csv")
raw_payments = source_file("raw_payments", "assets_example/data/raw_payments.csv")
