"""Hold the catalog lock of a VibePiper home folder until stdin closes (test helper).

    python hold_lock.py LOCK_PATH [--shared] [--max-seconds N]

Prints "ready" once the lock is held, then waits for end of input on stdin (or for
N seconds, 60 by default, so a forgotten helper cannot linger) and exits.
"""

from __future__ import annotations

import argparse
import select
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from vibepiper.catalog import lock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lock_path", type=Path)
    parser.add_argument("--shared", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()
    args.lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock.hold(args.lock_path, exclusive=not args.shared, timeout=10):
        print("ready", flush=True)
        select.select([sys.stdin], [], [], args.max_seconds)  # returns when stdin closes


if __name__ == "__main__":
    main()
