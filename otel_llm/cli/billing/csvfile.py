"""Any gateway's or reseller's invoice or usage export, as a CSV file with a column mapping.

`--csv-map date=Date,model=Model,cost=Amount,input_tokens=Prompt Tokens,...` names, for each of our
fields, the CSV column that holds it. Fields: `date` (required: YYYY-MM-DD, or an ISO 8601 timestamp,
taken as UTC), `model` (required), `cost` (USD), `input_tokens` (including cached), `output_tokens`,
`cache_read_tokens`, `requests`, `project`, `api_key`; at least `cost` or a token field. Unmapped
fields keep their default column name when the file has it (`date`, `model`, `cost`, ...). Numbers may
carry a currency sign or thousands separators (`$1,234.50`). A row that cannot be read stops the
command with its line number: a bill read in part would be silently wrong.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Final

from . import BillingError, Figures, Line, normalize_model

__all__ = ["FIELDS", "parse_map", "read"]

FIELDS: Final = ("date", "model", "cost", "input_tokens", "output_tokens", "cache_read_tokens", "requests",
                 "project", "api_key")
_NUMBERS: Final = {"cost": "cost_usd", "input_tokens": "input_tokens", "output_tokens": "output_tokens",
                   "cache_read_tokens": "cache_read_tokens", "requests": "requests"}


def parse_map(text: str) -> dict[str, str]:
    """`field=Column,field=Column` -> {field: column}; unknown fields are an error."""
    mapping: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        field, sep, column = part.partition("=")
        field = field.strip()
        if not sep or not column.strip():
            raise BillingError(f"--csv-map: expected field=Column, got {part!r}")
        if field not in FIELDS:
            raise BillingError(f"--csv-map: unknown field {field!r} (fields: {', '.join(FIELDS)})")
        mapping[field] = column.strip()
    return mapping


def read(path: Path, mapping: Mapping[str, str]) -> list[Line]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = _columns(list(reader.fieldnames or []), mapping, path)
            return [_line(row, columns, path, number) for number, row in enumerate(reader, start=2)]
    except OSError as error:
        raise BillingError(f"cannot read {path}: {error.strerror or error}") from None
    except csv.Error as error:
        raise BillingError(f"{path}: not a readable CSV file: {error}") from None


def _columns(header: list[str], mapping: Mapping[str, str], path: Path) -> dict[str, str]:
    columns = {field: mapping.get(field, field) for field in FIELDS}
    missing = [f"{field}={column}" for field, column in mapping.items() if column not in header]
    if missing:
        raise BillingError(f"{path}: no column for {', '.join(missing)} (columns: {', '.join(header)})")
    columns = {field: column for field, column in columns.items() if column in header}
    for field in ("date", "model"):
        if field not in columns:
            raise BillingError(f"{path}: no {field!r} column; map one with --csv-map {field}=<column>")
    if not set(columns) & set(_NUMBERS):
        raise BillingError(f"{path}: neither cost nor tokens; map one with --csv-map cost=<column>")
    return columns


def _line(row: Mapping[str, str | None], columns: Mapping[str, str], path: Path, number: int) -> Line:
    def cell(field: str) -> str:
        return (row.get(columns[field]) or "").strip() if field in columns else ""

    figures = Figures()
    for field, attribute in _NUMBERS.items():
        text = cell(field)
        if field in columns and text:
            setattr(figures, attribute, _number(text, f"{path}:{number}: {columns[field]}"))
    return Line(_date(cell("date"), f"{path}:{number}"), normalize_model(cell("model")) or "(no model)", figures,
                project=cell("project") or None, api_key=cell("api_key") or None)


def _date(text: str, where: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BillingError(f"{where}: date {text!r} is not YYYY-MM-DD or ISO 8601") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d")


def _number(text: str, where: str) -> float:
    cleaned = text.replace(",", "").replace("$", "").replace("USD", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise BillingError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BillingError(f"{where}: {text!r} is not a finite number")
    return value
