"""Code shared by the tests (importable as `tests.helpers.x`), and small scripts the tests
run as separate processes (catalog_worker.py, hold_lock.py, ...)."""
