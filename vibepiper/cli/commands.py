"""Every command, in the order `vibepiper --help` lists them.

Each is a thin wrapper that parses options, calls the project, and renders the result;
only click and the standard library are imported at module level, anything heavy inside
the command that needs it (so `vibepiper --help` stays instant).
"""

from __future__ import annotations

from vibepiper.cli.data_cmds import history, logs, partitions, runs, show
from vibepiper.cli.graph_cmds import docs, explain, init, lineage, list_, status
from vibepiper.cli.query_cmd import query
from vibepiper.cli.run_cmds import check, doctor, materialize, store
from vibepiper.cli.serve_cmds import schedules, serve, ticks

COMMANDS = [
    init,
    list_,
    status,
    explain,
    materialize,
    check,
    lineage,
    show,
    history,
    partitions,
    runs,
    logs,
    query,
    doctor,
    store,
    docs,
    serve,
    schedules,
    ticks,
]
