"""Ask a running Dask scheduler about its workers (test helper for test_dask.py).

    python exec_dask_client.py ADDRESS wait N      # until N workers are connected (exit 0)
    python exec_dask_client.py ADDRESS imported MODULE
        # prints a JSON list: for each worker, whether MODULE is in its sys.modules

Kept out of the test process so that pytest never imports distributed itself.
"""

from __future__ import annotations

import json
import sys


def _imported(name: str) -> bool:
    return name in sys.modules


def main() -> None:
    from distributed import Client

    address, what, arg = sys.argv[1:4]
    with Client(address, timeout="30s") as client:
        if what == "wait":
            client.wait_for_workers(int(arg), timeout=60)
            print("ready", flush=True)
        elif what == "imported":
            found = client.run(_imported, arg)
            print(json.dumps(sorted(found.values())), flush=True)
        else:
            raise SystemExit(f"unknown request {what!r}")


if __name__ == "__main__":
    main()
