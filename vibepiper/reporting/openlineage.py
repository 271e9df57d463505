"""OpenLineage: each computed asset emits a START and a COMPLETE (FAIL; ABORT when the run
was cancelled) run event whose job is the asset, whose inputs are the assets it read and
whose output is the asset itself, with schema, version, row-count and data-quality facets
(and, for a SQL asset, column lineage),
and a jobType facet saying it is a batch VibePiper asset. The run itself is their parent
(job `vibepiper_run`): it emits a START before its first asset computes and a COMPLETE,
FAIL or ABORT when it ends (a run that computes nothing emits nothing). Every facet
VibePiper builds names VibePiper (at its version) as its `_producer`;
tests/test_openlineage_spec.py validates the events against the specification.

Configured with `[tool.vibepiper] openlineage = {transport = "file", path = "..."}` (JSON
lines) or `{transport = "http", url = "..."}`. The events are built with the
`openlineage-python` client (`pip install 'vibepiper[openlineage]'`). A transport that
fails (or an event that cannot be built) never fails the run: the first error is reported
once on stderr.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vibepiper.definitions.expect import Expectation, Kind
from vibepiper.errors import UsageError
from vibepiper.execution import states
from vibepiper.execution.states import AssetResult, RunResult
from vibepiper.graph.graph import Graph
from vibepiper.version import __version__

if TYPE_CHECKING:
    from vibepiper.execution.reporter import Reporter

PRODUCER = f"https://pypi.org/project/vibepiper/{__version__}/"
# Expectations that judge one column: their first argument names it.
COLUMN_KINDS = (Kind.NOT_NULL, Kind.ACCEPTED_VALUES, Kind.IN_RANGE, Kind.RELATIONSHIP)


def make_client(config: dict[str, Any]) -> Any:
    """An OpenLineage client with the configured transport."""
    try:
        from openlineage.client import OpenLineageClient
    except ImportError:
        raise UsageError(
            "[tool.vibepiper] openlineage is set but openlineage-python is not installed",
            "pip install 'vibepiper[openlineage]'",
        ) from None
    if config["transport"] == "file":
        from openlineage.client.transport.file import FileConfig, FileTransport

        return OpenLineageClient(
            transport=FileTransport(FileConfig(log_file_path=config["path"], append=True))
        )
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    http = HttpConfig(
        url=config["url"],
        endpoint=config.get("endpoint", "api/v1/lineage"),
        timeout=float(config.get("timeout", 5.0)),
        retry={
            "total": 1,
            "backoff_factor": 0.1,
            "allowed_methods": ["POST"],
            "status_forcelist": [500, 502, 503, 504],
        },
    )
    return OpenLineageClient(transport=HttpTransport(http))


class OpenLineageReporter:
    """Emits OpenLineage run events for the assets a run computes (not the skipped ones)."""

    def __init__(self, config: dict[str, Any], graph: Graph, project: str) -> None:
        self.client = make_client(config)
        self.namespace = str(config.get("namespace") or f"vibepiper://{project}")
        self.graph = graph
        self.run_id = ""
        self.runs: dict[str, str] = {}  # unit -> the OpenLineage run id of its computation
        self.failed = False

    def run_started(self, run_id: str, names: list[str]) -> None:
        self.run_id = run_id

    def asset_started(self, name: str, state: str) -> None:
        if state == states.RUNNING and name not in self.runs:
            if not self.runs:  # the first asset that computes: the run, their parent, starts
                self._send(lambda: self._run_event("START", None))
            self.runs[name] = str(uuid.uuid4())
            self._emit("START", name, None)

    def asset_finished(self, result: AssetResult) -> None:
        if result.label not in self.runs:
            return  # skipped or blocked: nothing ran
        if result.state == states.SUCCEEDED:
            kind = "COMPLETE"
        else:
            kind = "ABORT" if result.cancelled else "FAIL"
        self._emit(kind, result.label, result)

    def run_finished(self, run: RunResult) -> None:
        if self.runs:  # a run that computed nothing emitted nothing
            kind = {"succeeded": "COMPLETE", "cancelled": "ABORT"}.get(run.status, "FAIL")
            self._send(lambda: self._run_event(kind, run))

    @property
    def _parent_run_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.run_id))

    def _run_event(self, kind: str, run: RunResult | None) -> Any:
        """An event of the run itself (job `vibepiper_run`), the parent of the assets'."""
        error = None
        if run is not None and run.status == "failed":
            failed = sorted(n for n, r in run.results.items() if not r.ok)
            error = f"failed or blocked: {', '.join(failed)}"
        return self._make_event(kind, self._parent_run_id, "vibepiper_run", "JOB", {}, error)

    def _event(self, kind: str, label: str, result: AssetResult | None) -> Any:
        """An event of one asset's computation (or one partition's: the job is the
        asset's, each partition a run of it), a child of the run's."""
        from openlineage.client.facet_v2 import parent_run

        name = label.partition("[")[0]
        facets: dict[str, Any] = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self._parent_run_id),
                job=parent_run.Job(namespace=self.namespace, name="vibepiper_run"),
                producer=PRODUCER,
            )
        }
        failed = result is not None and result.state != states.SUCCEEDED
        return self._make_event(
            kind,
            self.runs[label],
            name,
            "ASSET",
            facets,
            error=(result.message or result.state) if failed and result else None,
            stack=result.error if failed and result else None,
            inputs=self._inputs(name, result),
            outputs=self._outputs(name, result),
        )

    def _make_event(
        self,
        kind: str,
        run_id: str,
        job: str,
        job_type: str,
        facets: dict[str, Any],
        error: str | None = None,
        stack: str | None = None,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
    ) -> Any:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job

        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python", stackTrace=stack, producer=PRODUCER
            )
        job_facet = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="VIBEPIPER", jobType=job_type, producer=PRODUCER
        )
        return RunEvent(
            eventType=getattr(RunState, kind),
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=run_id, facets=facets),
            job=Job(namespace=self.namespace, name=job, facets={"jobType": job_facet}),
            inputs=inputs or [],
            outputs=outputs or [],
            producer=PRODUCER,
        )

    def _inputs(self, name: str, result: AssetResult | None) -> list[Any]:
        from openlineage.client.event_v2 import InputDataset
        from openlineage.client.facet_v2 import dataset_version_dataset

        used = result.inputs if result is not None else {}
        return [
            InputDataset(
                namespace=self.namespace,
                name=up,
                facets={
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                        datasetVersion=str(used[up]), producer=PRODUCER
                    )
                }
                if used.get(up)
                else {},
            )
            for up in self.graph.assets[name].inputs.values()
        ]

    def _outputs(self, name: str, result: AssetResult | None) -> list[Any]:
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import (
            dataset_version_dataset,
            output_statistics_output_dataset,
            schema_dataset,
        )

        facets: dict[str, Any] = {}
        output_facets: dict[str, Any] = {}
        if result is not None and result.columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=column, type=dtype)
                    for column, dtype in result.columns
                ],
                producer=PRODUCER,
            )
        if result is not None and result.checks:
            facets["dataQualityAssertions"] = self._assertions(name, result.checks)
        if result is not None and result.column_lineage:
            facets["columnLineage"] = self._column_lineage(result.column_lineage)
        if result is not None and result.state == states.SUCCEEDED:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(result.data_version), producer=PRODUCER
            )
            output_facets["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=result.row_count, producer=PRODUCER
                )
            )
        return [
            OutputDataset(
                namespace=self.namespace, name=name, facets=facets, outputFacets=output_facets
            )
        ]

    def _column_lineage(self, lineage: Sequence[tuple[str, str | None, str | None]]) -> Any:
        """A SQL asset's column lineage: each output column's input fields (SPEC §10)."""
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        fields: dict[str, list[Any]] = {}
        for column, up, source in lineage:
            if up is not None and source is not None:  # (a constant comes from nothing)
                fields.setdefault(column, []).append(
                    cl.InputField(namespace=self.namespace, name=up, field=source)
                )
        return cl.ColumnLineageDatasetFacet(
            fields={c: cl.Fields(inputFields=f) for c, f in fields.items()},
            producer=PRODUCER,
        )

    def _assertions(self, name: str, outcomes: Sequence[Any]) -> Any:
        """The checks' results: `assertion` is the kind of test (an expectation's kind, or
        "schema" / "check"), `name` the check's own name."""
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

        declared = {exp.name: exp for exp in self.graph.assets[name].checks}
        assertions = []
        for outcome in outcomes:
            exp = declared.get(outcome.name) if outcome.kind == "expect" else None
            assertions.append(
                dq.Assertion(
                    assertion=str(exp.kind) if exp is not None else outcome.kind,
                    success=bool(outcome.passed),
                    column=_column(exp) if exp is not None else None,
                    severity=str(outcome.severity),
                    name=outcome.name,
                    description=exp.describe() if exp is not None else None,
                )
            )
        return dq.DataQualityAssertionsDatasetFacet(assertions=assertions, producer=PRODUCER)

    def _emit(self, kind: str, name: str, result: AssetResult | None) -> None:
        self._send(lambda: self._event(kind, name, result))

    def _send(self, build: Callable[[], Any]) -> None:
        """Build an event and send it; a failure of either is one warning, once."""
        try:
            self.client.emit(build())
        except Exception as exc:  # lineage must never break a run
            if not self.failed:
                self.failed = True
                print(
                    f"warning: OpenLineage events could not be sent: {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )


def _column(exp: Expectation) -> str | None:
    """The one column an expectation judges (None: it judges the whole dataset)."""
    if exp.kind in COLUMN_KINDS or (exp.kind == Kind.UNIQUE and len(exp.args) == 1):
        return str(exp.args[0])
    return None


class Fanout:
    """Hands every report to several reporters."""

    def __init__(self, reporters: Sequence[Reporter]) -> None:
        self.reporters = reporters

    def run_started(self, run_id: str, names: list[str]) -> None:
        for reporter in self.reporters:
            reporter.run_started(run_id, names)

    def asset_started(self, name: str, state: str) -> None:
        for reporter in self.reporters:
            reporter.asset_started(name, state)

    def asset_finished(self, result: AssetResult) -> None:
        for reporter in self.reporters:
            reporter.asset_finished(result)

    def run_finished(self, run: RunResult) -> None:
        for reporter in self.reporters:
            reporter.run_finished(run)
