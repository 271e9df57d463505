"""A process that publishes one table to an object store, for the concurrency tests:
`python -m tests.helpers.s3_publish STORE_JSON ROWS START_FILE [SLOW_PARTS]`.

It stages the same deterministic table every instance makes, waits until START_FILE
exists (so that several instances publish at once), publishes, and prints one JSON line:
{"created": 1 if its conditional create made the object, else 0}. With SLOW_PARTS,
multipart parts are 5 MiB and each upload of a part is followed by a pause (a slow
network), so that a test can SIGKILL it in the middle of a real multipart upload.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from vibepiper.loader import StoreSettings
from vibepiper.storage import object_store
from vibepiper.units import Unit
from vibepiper.versioning.data_version import table_version


def table(rows: int) -> pa.Table:
    random = np.random.default_rng(7)
    return pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "value": random.random(rows),  # incompressible: the file is as big as asked
            "word": pa.array([f"w{i % 977}" for i in range(rows)]),
        }
    )


def main() -> None:
    settings = StoreSettings(**json.loads(sys.argv[1]))
    rows, start = int(sys.argv[2]), Path(sys.argv[3])
    if len(sys.argv) > 4:
        object_store.PART_SIZE = object_store.MULTIPART_AT = 5 * 1024 * 1024
    store = object_store.ObjectStore(settings)
    data = table(rows)
    version = table_version(data)
    staged = store.stage(Unit("big"), version, data)
    if len(sys.argv) > 4:
        client = store.client()
        upload_part = client.upload_part

        def slow(**kwargs: object) -> object:
            done = upload_part(**kwargs)
            print(json.dumps({"part": kwargs["PartNumber"]}), flush=True)
            time.sleep(float(sys.argv[4]))
            return done

        client.upload_part = slow
    while not start.exists():
        time.sleep(0.005)
    store.publish(staged)
    print(json.dumps({"created": store.created, "version": version}), flush=True)


if __name__ == "__main__":
    main()
