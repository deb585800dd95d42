"""Metadata filters for search: equality on metadata keys and an inclusive range on `date`.

A filter is checked against the metadata the snapshot holds for each document, so a filtered
search costs no SQL. Dates compare as ISO `YYYY-MM-DD` strings (their order is the calendar's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rag.errors import InputError

MAX_KEYS = 32
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STORED_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ].*)?")  # a stored datetime counts by its day


@dataclass(frozen=True)
class MetadataFilter:
    """Documents whose metadata has every `equals` key at that value and a `date` in range.

    A key the document lacks matches nothing; a stored list matches when it holds the value.
    """

    equals: Mapping[str, Any] = field(default_factory=dict)
    date_from: str | None = None  # ISO YYYY-MM-DD, inclusive
    date_to: str | None = None

    @classmethod
    def build(
        cls,
        equals: Mapping[str, Any] | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
    ) -> MetadataFilter | None:
        """A checked filter, or None when it has no condition; `InputError` names a bad part."""
        equals = dict(equals or {})
        if len(equals) > MAX_KEYS:
            raise InputError(
                f"a filter may test at most {MAX_KEYS} metadata keys, not {len(equals)}"
            )
        for key, value in equals.items():
            if isinstance(value, (list, dict)) or value is None:
                raise InputError(
                    f"filter value of '{key}' must be a string, number or boolean, not {value!r}"
                )
        start, end = _iso_date("date_from", date_from), _iso_date("date_to", date_to)
        if start and end and start > end:
            raise InputError(f"date_from ({start}) is after date_to ({end})")
        if not equals and start is None and end is None:
            return None
        return cls(equals, start, end)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a document with this metadata passes the filter."""
        for key, wanted in self.equals.items():
            if key not in metadata or not _equal(metadata[key], wanted):
                return False
        if self.date_from is None and self.date_to is None:
            return True
        stored = metadata.get("date")
        m = _STORED_DATE.fullmatch(stored) if isinstance(stored, str) else None
        if m is None:
            return False  # a range asks for dated documents
        day = m.group(1)
        return (self.date_from is None or day >= self.date_from) and (
            self.date_to is None or day <= self.date_to
        )


def _iso_date(name: str, value: str | None) -> str | None:
    """`value` checked as an ISO calendar date (`InputError` naming `name` otherwise)."""
    if value is None or value == "":
        return None
    try:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InputError(
            f"{name} must be an ISO date YYYY-MM-DD (e.g. 2024-10-15), not '{value[:40]}'"
        ) from None


def _equal(stored: Any, wanted: Any) -> bool:
    """JSON equality (true is not 1), or membership when the stored value is a list."""
    if isinstance(stored, list):
        return any(_equal(item, wanted) for item in stored)
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    return bool(stored == wanted)
