"""The Lake Formation config in lakeformation/*.yaml as typed models, and the checks that keep it
safe: every PII column tagged sensitive, grants only to known tag values, and no persona reading
PII without saying so (`reads_pii: true`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rfmlake.contract.entities import ENTITIES
from rfmlake.errors import RfmlakeError

CONFIG_DIR_ENV = "RFMLAKE_LAKEFORMATION_DIR"
CONFIG_FILES: tuple[str, ...] = ("tags.yaml", "assignments.yaml", "personas.yaml", "account.yaml")
SENSITIVITY = "sensitivity"
LAYER = "layer"
DOMAIN = "domain"
# Bronze columns that always hold raw landed text, whatever the entity: may carry any PII.
RAW_BRONZE_COLUMNS: tuple[str, ...] = ("_corrupt_record",)
# bronze.quarantine keeps the raw row (`raw`) and a message that may quote values (`detail`).
RAW_QUARANTINE_COLUMNS: tuple[str, ...] = ("raw", "detail")
TOKEN_SUFFIX = "_token"

Permission = Literal["SELECT", "DESCRIBE", "ALTER", "DROP", "INSERT", "DELETE"]


class GovernanceError(RfmlakeError):
    """The lakeformation/ config is invalid or cannot be applied."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagsConfig(_Strict):
    lf_tags: dict[str, tuple[str, ...]]
    sensitive_values: tuple[str, ...] = ("pii",)


class TableAssignment(_Strict):
    tags: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict, description="column -> sensitivity")
    other_columns: str | None = Field(None, description="sensitivity of columns not listed (bronze extras)")


class DatabaseAssignment(_Strict):
    tags: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableAssignment] = Field(default_factory=dict)


class AssignmentsConfig(_Strict):
    databases: dict[str, DatabaseAssignment]


class Grant(_Strict):
    resource_type: Literal["DATABASE", "TABLE"]
    permissions: tuple[Permission, ...]
    expression: dict[str, tuple[str, ...]]

    def matches(self, tags: Mapping[str, str]) -> bool:
        """LF semantics: keys AND, values of a key OR; a key absent from the expression matches all."""
        return all(tags.get(key) in values for key, values in self.expression.items())


class Persona(_Strict):
    description: str = ""
    reads_pii: bool = False
    grants: tuple[Grant, ...] = ()


class PersonasConfig(_Strict):
    personas: dict[str, Persona]


class AccountConfig(_Strict):
    account_id: str = Field("123456789012", pattern=r"^\d{12}$")
    glue_database: str = "rfmlake_{zone}"
    role_arn: str = "arn:aws:iam::{account_id}:role/rfmlake-{persona}"
    locations: tuple[str, ...] = ()


class GovernanceConfig(_Strict):
    tags: TagsConfig
    assignments: AssignmentsConfig
    personas: PersonasConfig
    account: AccountConfig = AccountConfig()

    # -- lookups --------------------------------------------------------------------------------
    def persona(self, name: str) -> Persona:
        try:
            return self.personas.personas[name]
        except KeyError:
            raise GovernanceError(
                f"unknown persona {name!r}; personas: {', '.join(sorted(self.personas.personas))}"
            ) from None

    def table(self, zone: str, name: str) -> TableAssignment | None:
        database = self.assignments.databases.get(zone)
        return None if database is None else database.tables.get(name)

    def column_sensitivity(self, zone: str, table: str, column: str) -> str | None:
        """The column's sensitivity, or None when the config does not cover it (callers fail closed)."""
        assignment = self.table(zone, table)
        if assignment is None:
            return None
        return assignment.columns.get(column, assignment.other_columns)

    def column_tags(self, zone: str, table: str, column: str) -> dict[str, str] | None:
        """Effective tags of a column: database tags, then table tags, then its sensitivity."""
        assignment = self.table(zone, table)
        sensitivity = self.column_sensitivity(zone, table, column)
        if assignment is None or sensitivity is None:
            return None
        return {**self.assignments.databases[zone].tags, **assignment.tags, SENSITIVITY: sensitivity}

    def can_select(self, persona: str, zone: str, table: str, column: str) -> bool:
        tags = self.column_tags(zone, table, column)
        if tags is None:
            return False
        return any(
            g.resource_type == "TABLE" and "SELECT" in g.permissions and g.matches(tags)
            for g in self.persona(persona).grants
        )

    def with_account_id(self, account_id: str | None) -> GovernanceConfig:
        if account_id is None:
            return self
        try:
            account = AccountConfig(**{**self.account.model_dump(), "account_id": account_id})
        except ValidationError as exc:
            raise GovernanceError(f"account id {account_id!r} is not 12 digits") from exc
        return self.model_copy(update={"account": account})


def default_config_dir() -> Path:
    """$RFMLAKE_LAKEFORMATION_DIR, else ./lakeformation, else the one in the source checkout."""
    from_env = os.environ.get(CONFIG_DIR_ENV)
    if from_env:
        return Path(from_env)
    here = Path.cwd() / "lakeformation"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[3] / "lakeformation"


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GovernanceError(f"governance config file {path} is missing") from None
    except yaml.YAMLError as exc:
        raise GovernanceError(f"{path} is not valid YAML: {exc}") from None


def _parse(model: type[BaseModel], path: Path) -> Any:
    data = _read_yaml(path)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in exc.errors()
        )
        raise GovernanceError(f"{path}: {problems}") from None


def load_governance(directory: str | Path | None = None, validate: bool = True) -> GovernanceConfig:
    """Read and (by default) validate lakeformation/*.yaml; raises GovernanceError listing every problem."""
    root = Path(directory) if directory is not None else default_config_dir()
    if not root.is_dir():
        raise GovernanceError(
            f"governance config folder {root} does not exist (set {CONFIG_DIR_ENV} or pass --config-dir)"
        )
    account_path = root / "account.yaml"
    config = GovernanceConfig(
        tags=_parse(TagsConfig, root / "tags.yaml"),
        assignments=_parse(AssignmentsConfig, root / "assignments.yaml"),
        personas=_parse(PersonasConfig, root / "personas.yaml"),
        account=_parse(AccountConfig, account_path) if account_path.exists() else AccountConfig(),
    )
    if validate:
        problems = validate_governance(config)
        if problems:
            raise GovernanceError(f"governance config in {root} is invalid:\n  " + "\n  ".join(problems))
    return config


def required_sensitive_columns() -> dict[tuple[str, str], tuple[str, ...]]:
    """(zone, table) -> columns that hold personal data in clear, from the landing contract."""
    required: dict[tuple[str, str], tuple[str, ...]] = {}
    for entity in ENTITIES.values():
        pii = tuple(c.name.lower() for c in entity.columns if c.pii)
        if entity.name == "access_logs":
            pii = ("line",)  # the raw log line carries the client IP and user
        required[("bronze", entity.name)] = (*pii, *RAW_BRONZE_COLUMNS)
    required[("bronze", "quarantine")] = RAW_QUARANTINE_COLUMNS
    return required


def validate_governance(config: GovernanceConfig) -> list[str]:
    """Every problem in the config, each naming the file and the exact place; empty when valid."""
    problems: list[str] = []
    known = config.tags.lf_tags
    sensitive = set(config.tags.sensitive_values)

    def check_value(key: str, value: str, where: str) -> None:
        if key not in known:
            problems.append(f"{where}: unknown LF-tag {key!r}; tags: {sorted(known)}")
        elif value not in known[key]:
            problems.append(f"{where}: unknown value {value!r} for LF-tag {key!r}; allowed: {list(known[key])}")

    for key in (LAYER, DOMAIN, SENSITIVITY):
        if key not in known:
            problems.append(f"tags.yaml: LF-tag {key!r} is required")
    unknown_sensitive = sensitive - set(known.get(SENSITIVITY, ()))
    if unknown_sensitive:
        problems.append(f"tags.yaml: sensitive_values {sorted(unknown_sensitive)} are not values of {SENSITIVITY!r}")

    for zone, database in config.assignments.databases.items():
        if LAYER not in database.tags:
            problems.append(f"assignments.yaml: database {zone} has no {LAYER!r} tag")
        for key, value in database.tags.items():
            check_value(key, value, f"assignments.yaml: database {zone}")
        for name, table in database.tables.items():
            where = f"assignments.yaml: table {zone}.{name}"
            if DOMAIN not in table.tags:
                problems.append(f"{where} has no {DOMAIN!r} tag")
            for key, value in table.tags.items():
                check_value(key, value, where)
            if not table.columns:
                problems.append(f"{where} lists no columns")
            for column, value in table.columns.items():
                check_value(SENSITIVITY, value, f"{where} column {column}")
                if column.endswith(TOKEN_SUFFIX) and value == "public":
                    problems.append(f"{where} column {column}: a token of personal data cannot be 'public'; "
                                    "tag it 'confidential'")
            if table.other_columns is not None:
                check_value(SENSITIVITY, table.other_columns, f"{where} other_columns")

    for (zone, name), columns in sorted(required_sensitive_columns().items()):
        table = config.table(zone, name)
        if table is None:
            problems.append(
                f"assignments.yaml: table {zone}.{name} holds PII ({', '.join(columns)}) but has no assignment"
            )
            continue
        for column in columns:
            value = config.column_sensitivity(zone, name, column)
            if value is None:
                problems.append(f"assignments.yaml: PII column {zone}.{name}.{column} has no sensitivity tag; "
                                f"tag it one of {sorted(sensitive)}")
            elif value not in sensitive:
                problems.append(f"assignments.yaml: PII column {zone}.{name}.{column} is tagged {value!r}; "
                                f"it must be one of {sorted(sensitive)}")
        if zone == "bronze" and table.other_columns is not None and table.other_columns not in sensitive:
            problems.append(f"assignments.yaml: table {zone}.{name} other_columns is {table.other_columns!r}; raw "
                            f"extra columns may hold PII, so it must be one of {sorted(sensitive)}")

    for persona_name, persona in config.personas.personas.items():
        for index, grant in enumerate(persona.grants, start=1):
            where = f"personas.yaml: persona {persona_name} grant {index}"
            if not grant.expression:
                problems.append(f"{where}: empty expression")
            for key, values in grant.expression.items():
                if not values:
                    problems.append(f"{where}: LF-tag {key!r} lists no values")
                for value in values:
                    check_value(key, value, where)
            reads_sensitive = grant.resource_type == "TABLE" and "SELECT" in grant.permissions and (
                SENSITIVITY not in grant.expression or bool(sensitive & set(grant.expression[SENSITIVITY]))
            )
            if reads_sensitive and not persona.reads_pii:
                problems.append(
                    f"{where}: can read columns tagged {SENSITIVITY}={sorted(sensitive)} "
                    f"({'no sensitivity in the expression' if SENSITIVITY not in grant.expression else 'listed'}) "
                    "but the persona is not marked `reads_pii: true`"
                )
    return problems
