"""Typed component options: every encoder, fusion and task has a pydantic model of its
``options`` (its ``Options`` class, or one derived from its constructor's keyword
arguments), so a misspelled or mistyped option is a one-line error naming the key and the
closest valid ones, and ``polymodal components --json`` can list each option's type and
default."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from polymodal.errors import SpecError, closest


class Options(BaseModel):
    """Base class of a component's options: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def options_model(factory: Any, skip: int = 0) -> type[BaseModel] | None:
    """The options model of a component factory: its ``Options`` attribute, else one built
    from the keyword arguments of its signature after the first ``skip`` positional ones
    (a fusion's ``input_dims``), else None (options it cannot describe)."""
    declared = getattr(factory, "Options", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    if not callable(factory):
        return None
    try:
        signature = inspect.signature(factory)
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory)
                                      else factory)
    except (TypeError, ValueError, NameError):
        return None
    fields: dict[str, Any] = {}
    params = list(signature.parameters.values())[skip:]
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            return None
        if param.default is param.empty:
            return None  # a required argument is not an option
        fields[param.name] = (hints.get(param.name, Any), param.default)
    name = getattr(factory, "__name__", "Component") + "Options"
    return create_model(name, __base__=Options, **fields)


def parse_options(model: type[BaseModel], options: dict[str, Any], where: str,
                  component: str) -> Any:
    """Validated options, or a SpecError: ``spec: WHERE: unknown option 'x' of COMPONENT;
    did you mean 'y'?`` / ``spec: WHERE.KEY: <why>``."""
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise SpecError(option_error(exc, model, where, component)) from None


def option_error(exc: ValidationError, model: type[BaseModel], where: str,
                 component: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        valid = list(model.model_fields)
        near = closest(str(err["loc"][-1]), valid)
        hint = (f"did you mean {', '.join(repr(c) for c in near)}?" if near
                else f"valid: {', '.join(valid)}" if valid else "it takes no options")
        return f"spec: {where}: unknown option {key!r} of {component}; {hint}"
    return f"spec: {where}.{key}: {err['msg']} (got {err.get('input')!r})"


def describe(model: type[BaseModel] | dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each option with its type and default (``polymodal components --json``): of an
    options model, or of a dict of defaults (the type is the default's; None: any)."""
    if model is None:
        return []
    if isinstance(model, dict):
        return [{"name": k, "type": "any" if v is None else type(v).__name__, "default": v}
                for k, v in model.items()]
    out = []
    for name, field in model.model_fields.items():
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        out.append({"name": name, "type": _type_name(field.annotation), "default": default,
                    **({"description": field.description} if field.description else {})})
    return out


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def build_with_options(factory: Callable[..., Any], options: dict[str, Any], where: str,
                       component: str, *args: Any, skip: int = 0) -> Any:
    """``factory(*args, **options)`` after checking the options against its model."""
    model = options_model(factory, skip=skip)
    if model is not None:
        parsed = parse_options(model, options, where, component)
        options = {k: getattr(parsed, k) for k in options}
    return factory(*args, **options)
