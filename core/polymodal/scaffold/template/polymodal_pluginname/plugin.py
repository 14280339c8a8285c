"""The hooks of the pluginname plugin. Factories are ``"module:attr"`` strings, imported only
when a component is built: this module imports no torch."""

from __future__ import annotations

from polymodal.plugin import (
    RegisterEncoder,
    RegisterFusion,
    RegisterModality,
    RegisterScenario,
    RegisterTask,
    hookimpl,
)

# The versions of the polymodal plugin API this plugin is written for.
POLYMODAL_API = ">=1.0,<2"


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("pluginname-point", wire="object", value_type="polymodal_pluginname.types:Point",
             expects='a point {"x": number, "y": number}',
             samples=[{"x": 0.25, "y": -0.5}, {"x": -0.9, "y": 0.1}],
             description="a point of the plane")


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    register("pluginname-point-mlp", "polymodal_pluginname.components:PointEncoder",
             modality="pluginname-point", options="polymodal_pluginname.options:POINT",
             description="an MLP over a point's coordinates (and a missing-value flag)")


@hookimpl
def register_fusions(register: RegisterFusion) -> None:
    register("pluginname-sum", "polymodal_pluginname.components:SumFusion",
             description="project each input to one width and sum those present")


@hookimpl
def register_tasks(register: RegisterTask) -> None:
    register("pluginname-binary", "polymodal_pluginname.components:BinaryTask",
             description="two labels, one logit; accuracy and AUROC")


@hookimpl
def register_scenarios(register: RegisterScenario) -> None:
    register("pluginname.inside", "polymodal_pluginname.scenario:inside_scenario",
             description="is a point inside the circle? (embedded: 600 seeded points)")
