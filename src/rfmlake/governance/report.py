"""What each persona sees, as a table for `rfmlake demo` and `rfmlake governance show`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rfmlake.governance.model import GovernanceConfig


def persona_access(config: GovernanceConfig) -> dict[str, dict[str, str]]:
    """persona -> zone -> summary of what it may read there ('-' when nothing)."""
    result: dict[str, dict[str, str]] = {}
    for persona in sorted(config.personas.personas):
        by_zone: dict[str, str] = {}
        for zone, database in config.assignments.databases.items():
            tables = 0
            levels: set[str] = set()
            for table_name, table in database.tables.items():
                readable = [c for c in table.columns if config.can_select(persona, zone, table_name, c)]
                if readable:
                    tables += 1
                    levels |= {table.columns[c] for c in readable}
            detail = " with PII" if levels & set(config.tags.sensitive_values) else (
                " with tokens" if levels - {"public"} else " public cols")
            by_zone[zone] = f"{tables} tables{detail}" if tables else "-"
        result[persona] = by_zone
    return result


def persona_access_table(config: GovernanceConfig) -> Table:
    zones = list(config.assignments.databases)
    table = Table(title="Who sees what (lakeformation/personas.yaml)", title_justify="left")
    table.add_column("persona")
    table.add_column("reads PII")
    for zone in zones:
        table.add_column(zone)
    access = persona_access(config)
    for persona, by_zone in access.items():
        table.add_row(persona, "yes" if config.persona(persona).reads_pii else "no", *(by_zone[z] for z in zones))
    return table


def print_persona_access(console: Console) -> None:
    """The persona table for `rfmlake demo`; a broken config is reported, not raised, there."""
    from rfmlake.governance.model import GovernanceError, load_governance

    try:
        config = load_governance()
    except GovernanceError as exc:
        console.print(f"[yellow]governance config not shown:[/] {exc}")
        return
    console.print(persona_access_table(config))
    console.print("  query as a persona: rfmlake sql --as analyst ...; details in docs/governance.md")
