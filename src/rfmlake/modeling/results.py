"""What a dbt invocation did, as plain data, and the readable failure report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rfmlake.lake import TableRef

FAILED_STATUSES: frozenset[str] = frozenset({"error", "fail", "runtime error"})


@dataclass(frozen=True)
class NodeResult:
    """One executed dbt node: a model, a data test, a unit test, a seed."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    seconds: float
    rows: int | None = None       # rows written (models) or failing rows (tests), when dbt reports it
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


@dataclass(frozen=True)
class DbtResult:
    command: str
    target: str
    success: bool
    nodes: tuple[NodeResult, ...] = ()
    exported: tuple[TableRef, ...] = ()        # gold tables committed to the lake
    as_of_date: date | None = None             # the as_of the build used (given or derived)
    empty_sources: tuple[str, ...] = ()        # optional silver tables absent from the lake
    log_path: Path | None = None
    target_path: Path | None = None
    error: str | None = None                   # dbt's message when it stopped before running nodes

    @property
    def failures(self) -> tuple[NodeResult, ...]:
        return tuple(node for node in self.nodes if node.failed)

    @property
    def warnings(self) -> tuple[NodeResult, ...]:
        return tuple(node for node in self.nodes if node.status == "warn")

    @property
    def skipped(self) -> tuple[NodeResult, ...]:
        return tuple(node for node in self.nodes if node.status == "skipped")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for the run report."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return {
            "command": self.command,
            "target": self.target,
            "success": self.success,
            "as_of_date": self.as_of_date.isoformat() if self.as_of_date else None,
            "status_counts": dict(sorted(counts.items())),
            "exported": [ref.qualified_name for ref in self.exported],
            "empty_sources": list(self.empty_sources),
            "failures": [{"name": n.name, "type": n.resource_type, "status": n.status, "message": n.message}
                         for n in self.failures],
            "warnings": [{"name": n.name, "type": n.resource_type, "message": n.message} for n in self.warnings],
            "nodes": [asdict(node) for node in self.nodes],
            "log_path": str(self.log_path) if self.log_path else None,
        }

    def failure_report(self) -> str:
        """A short, readable account of what failed: one line per failed node, no traceback."""
        lines = [f"dbt {self.command} (target {self.target}) failed"]
        if self.error:
            lines.append(f"  {self.error.strip()}")
        for node in self.failures:
            message = " ".join((node.message or "").split())
            if len(message) > 500:
                message = message[:500] + " ..."
            lines.append(f"  - {node.resource_type} {node.name}: {node.status}: {message}")
        if self.skipped:
            lines.append(f"  ({len(self.skipped)} downstream node(s) skipped)")
        if self.log_path is not None:
            lines.append(f"  dbt log: {self.log_path / 'dbt.log'}")
        return "\n".join(lines)
