"""The value type of the ``pluginname-point`` modality (pydantic only: no torch)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Point(BaseModel):
    """A point of the plane; requests are validated against this, and OpenAPI shows it."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(allow_inf_nan=False, description="horizontal coordinate")
    y: float = Field(allow_inf_nan=False, description="vertical coordinate")
