"""Running assets: the run, the executors it hands assets to, and what they record."""

EXECUTORS = ("inprocess", "threads", "processes", "dask")  # see execution.executors
