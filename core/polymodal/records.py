"""The one record type: a JSON object of field values (a row of a data file, one item of a
request). Every reader produces them, every collator and predictor takes them."""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]
