"""What a table contract is: columns with types and comments, partitioning, properties.

Jobs create tables from these idempotently and write exactly these columns (jobs/runtime/tables.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyspark.sql.types import DataType, StructField, StructType

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate_identifier(name: str, what: str = "name") -> str:
    """Table, schema, catalog and column names reach SQL text: allow only plain identifiers."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and underscores, not starting with a digit")
    return name


def validate_model_name(name: str) -> str:
    """A registered model name: NAME, or catalog.schema.NAME in Unity Catalog."""
    parts = name.split(".") if isinstance(name, str) else [None]
    if len(parts) not in (1, 3) or not all(isinstance(p, str) and _IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"invalid model name {name!r}: use NAME or catalog.schema.NAME (letters, digits, underscores)")
    return name


@dataclass(frozen=True)
class Column:
    name: str
    dtype: DataType
    comment: str
    nullable: bool = True


@dataclass(frozen=True)
class TableContract:
    layer: str                      # bronze | silver | gold
    name: str                       # plural snake_case entity
    columns: tuple[Column, ...]
    comment: str
    partition_by: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()       # columns no two rows share (tests/hostile checks after every stage)

    def __post_init__(self) -> None:
        validate_identifier(self.layer, "layer")
        validate_identifier(self.name, "table name")
        names = [c.name for c in self.columns]
        for n in names:
            validate_identifier(n, "column name")
        if len(set(names)) != len(names):
            raise ValueError(f"{self.fullname}: duplicate column names")
        for what, cols in (("partition", self.partition_by), ("key", self.key)):
            missing = set(cols) - set(names)
            if missing:
                raise ValueError(f"{self.fullname}: {what} columns {sorted(missing)} are not columns")

    @property
    def fullname(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def schema(self) -> StructType:
        return StructType([StructField(c.name, c.dtype, c.nullable) for c in self.columns])

    def columns_and_types(self) -> list[tuple[str, str]]:
        """(name, type) in order: what a job's output must match. NOT NULL is enforced by Delta on write."""
        return [(c.name, c.dtype.simpleString()) for c in self.columns]

    def ddl_columns(self) -> str:
        """Column list for CREATE TABLE, with NOT NULL and comments."""
        parts = []
        for c in self.columns:
            null = "" if c.nullable else " NOT NULL"
            comment = c.comment.replace("'", "\\'")
            parts.append(f"`{c.name}` {c.dtype.simpleString()}{null} COMMENT '{comment}'")
        return ",\n  ".join(parts)


def sql_literal(value: str) -> str:
    """A SQL string literal (for values, never identifiers)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def in_list(column: str, values) -> str:
    validate_identifier(column, "column name")
    vals = sorted(set(values))
    if not vals:
        return "false"
    return f"`{column}` IN (" + ", ".join(sql_literal(v) for v in vals) + ")"
