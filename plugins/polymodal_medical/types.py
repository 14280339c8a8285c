"""Value types of the medical modalities (pydantic only: no torch)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# An EHR record: named numbers (``age``, ``bili:last``, ``loinc:718-7:last`` ...), null or
# absent where unknown. Infinity and NaN are refused.
EHRFeatures = dict[str, Annotated[float, Field(allow_inf_nan=False)] | None]

# A patient's visits up to an index time: each an EHR record with ``days_before`` (days
# from the visit to the index, >= 0).
EHRVisits = list[EHRFeatures]
VISIT_TIME = "days_before"
