"""How the CLI shows progress and summaries (rich). No logic about data lives here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from rfmlake.pipeline.definition import PIPELINE, Stage
from rfmlake.pipeline.runner import RunSummary, StageCallback


@contextmanager
def stage_progress(console: Console) -> Iterator[StageCallback]:
    """A line per pipeline stage as it starts: running (spinner + elapsed), then done or failed with its time."""
    names = [stage.name for stage in PIPELINE]
    with Progress(
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def on_stage(stage: Stage, event: str, seconds: float | None) -> None:
            label = f"{names.index(stage.name) + 1}/{len(names)} {stage.name}"
            if event == "started":
                tasks[stage.name] = progress.add_task(f"[bold]{label}[/] {stage.description}", total=1)
            elif event == "done":
                progress.update(tasks[stage.name], completed=1, description=f"[green]✓ {label}[/] ({seconds:.1f}s)")
            elif event == "skipped":
                progress.update(tasks[stage.name], completed=1,
                                description=f"[yellow]- {label} skipped[/] ({seconds:.1f}s; see the notes)")
            else:
                progress.update(tasks[stage.name], completed=1,
                                description=f"[red]✗ {label} failed[/] ({seconds:.1f}s)")

        yield on_stage


def print_summary(summary: RunSummary, console: Console) -> None:
    console.print()
    console.print(f"[bold]Run {summary.run_id}[/] finished in {summary.seconds:.1f}s; as-of date {summary.as_of}")

    stages = Table(title="Stages", title_justify="left")
    stages.add_column("stage")
    stages.add_column("status")
    stages.add_column("seconds", justify="right")
    for stage in summary.stages:
        stages.add_row(stage.name, stage.status, f"{stage.seconds:.1f}")
    console.print(stages)
    if summary.notes:
        console.print("[bold]Notes[/] (a skipped model published nothing; the rest of the run did not need it)")
        for note in summary.notes:
            console.print(f"  - {note}", markup=False, soft_wrap=True)

    tables = Table(title="Rows per table", title_justify="left")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for name, rows in summary.tables.items():
        tables.add_row(name, f"{rows:,}")
    console.print(tables)

    state = "[green]holds[/]" if summary.reconciliation_ok else "[red]DOES NOT HOLD[/]"
    console.print(f"Reconciliation over {summary.files_ingested} files (rows in = accepted + quarantined): {state}")
    if summary.quarantine:
        quarantine = Table(title="Quarantined rows by reason (bronze.quarantine)", title_justify="left")
        quarantine.add_column("entity")
        quarantine.add_column("reason")
        quarantine.add_column("rows", justify="right")
        for entity, reasons in summary.quarantine.items():
            for reason, rows in reasons.items():
                quarantine.add_row(entity, reason, f"{rows:,}")
        console.print(quarantine)
    else:
        console.print("No rows quarantined.")

    if summary.segments:
        segments = Table(title=f"RFM segments (model {summary.model_version})", title_justify="left")
        segments.add_column("segment")
        segments.add_column("customers", justify="right")
        segments.add_column("revenue share", justify="right")
        for row in summary.segments:
            segments.add_row(row["rfm_segment"], f"{row['customers']:,}", f"{(row['monetary_share'] or 0):.1%}")
        console.print(segments)
        clusters = Table(title="KMeans segments (cluster 0 = most valuable)", title_justify="left")
        clusters.add_column("id", justify="right")
        clusters.add_column("label")
        clusters.add_column("customers", justify="right")
        clusters.add_column("revenue share", justify="right")
        for row in summary.clusters:
            clusters.add_row(str(row["cluster_id"]), row["cluster_label"], f"{row['customers']:,}",
                             f"{(row['monetary_share'] or 0):.1%}")
        console.print(clusters)
