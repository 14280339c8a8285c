"""The YAML spec: what a user writes to describe a model, validated on load.

Validation errors are one line naming the offending key or name and the closest valid ones.
Names of encoders, fusions and tasks are checked against the registry; column names are
checked against the data once it is read (``check_columns``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from polymodal.errors import SpecError, UnknownNameError, closest, unknown

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    train: str | None = None
    validation: float | str = 0.1
    test: str | None = None
    limit: int | None = Field(default=None, ge=1)
    # A record field whose value keeps records together when the validation share is held
    # out (a patient's visits, an image's questions): the share is of groups, and no group
    # is on both sides.
    group: str | None = None

    @field_validator("validation")
    @classmethod
    def _fraction(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and not 0.0 <= float(value) < 1.0:
            raise ValueError("validation must be a fraction in [0, 1) or a file path")
        return value


# Input names become file names (processors/<name>.json) and keys of weights and URLs.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class InputSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    modality: str
    encoder: str
    columns: list[str] | None = None
    source: str | None = None
    frozen: bool = False
    lr: float | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def fields(self) -> list[str]:
        """The record fields this input reads."""
        return self.columns or [self.name]


class FusionSpec(_Strict):
    name: str = "concat"
    options: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(_Strict):
    name: str
    target: str
    options: dict[str, Any] = Field(default_factory=dict)


class TrainSpec(_Strict):
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=2e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup: float = Field(default=0.1, ge=0, lt=1)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    grad_clip: float | None = 1.0
    grad_accum: int = Field(default=1, ge=1)
    patience: int | None = Field(default=None, ge=1)
    monitor: str | None = None
    seed: int = 0
    num_workers: int = Field(default=0, ge=0)
    bucket_by_length: bool = True
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    eval_batch_size: int | None = Field(default=None, ge=1)
    # Epochs of the single-input models an ablation trains (default: ``epochs``). A model
    # that sees one modality reaches what it can learn (answer priors) long before the
    # fused one; fewer epochs keep an ablation report affordable.
    ablation_epochs: int | None = Field(default=None, ge=1)
    # An input whose value several records share (the image that several questions ask
    # about): its records are batched together and each distinct value is processed and
    # encoded once per batch (gradients summed over the records that share it). Takes
    # precedence over ``bucket_by_length``.
    group_by: str | None = None
    # Keep the resumable state (checkpoints/) in the finished model directory, so that
    # ``--resume`` can continue it later (e.g. with more epochs).
    keep_checkpoint: bool = False
    # An exponential moving average of the weights with this decay (e.g. 0.999): validation,
    # the best epoch and the saved model use the averaged weights (diffusion models, and
    # image models generally, are better with them). None: the trained weights.
    ema: float | None = Field(default=None, gt=0, lt=1)
    # Train on at most this many batches an epoch (a smoke run: the conformance kit checks
    # a scenario's lifecycle, not what it learns). None: every batch.
    limit_batches: int | None = Field(default=None, ge=1)
    # Modality dropout (ModDrop, Neverova et al. 2016): in training, each input of a record
    # is taken as absent with this probability (one of its inputs always stays), so that
    # the model learns to use every input alone as well as together, rather than leaning
    # on the one that fits the training data fastest. 0: off; one input: no effect.
    modality_dropout: float = Field(default=0.0, ge=0, lt=1)


class Spec(_Strict):
    name: str = "model"
    scenario: str | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    inputs: list[InputSpec]
    fusion: FusionSpec = Field(default_factory=FusionSpec)
    task: TaskSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    ablation: bool = False

    @field_validator("inputs")
    @classmethod
    def _unique_inputs(cls, inputs: list[InputSpec]) -> list[InputSpec]:
        if not inputs:
            raise ValueError("at least one input is needed")
        names = [i.name for i in inputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"input names must be unique; repeated: {', '.join(dupes)}")
        return inputs

    @model_validator(mode="after")
    def _group_by_names_an_input(self) -> Spec:
        names = [i.name for i in self.inputs]
        if self.train.group_by is not None and self.train.group_by not in names:
            raise ValueError(f"train.group_by {self.train.group_by!r} is not an input "
                             f"({', '.join(names)})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def without_inputs(self, keep: list[str]) -> Spec:
        """A copy of this spec with only the named inputs (modality ablation)."""
        data = self.to_dict()
        removed = {i["name"] for i in data["inputs"]} - set(keep)
        data["inputs"] = [i for i in data["inputs"] if i["name"] in keep]
        # Fusion options that name a removed input (attention's ``query``) go with it.
        data["fusion"]["options"] = {k: v for k, v in data["fusion"]["options"].items()
                                     if not (isinstance(v, str) and v in removed)}
        if data["train"]["group_by"] in removed:
            data["train"]["group_by"] = None
        data["ablation"] = False
        return Spec.model_validate(data)


def _model_fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model that owns the key at ``loc`` (for suggestions)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        model = next(
            (a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
    return model


def format_spec_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """The one line every spec error becomes (core specs and scenarios' own): the key, and
    for an unknown key the closest valid ones."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "spec"
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        owner = _model_at(loc, root)
        choices = _model_fields(owner) if owner else []
        near = closest(key, choices)
        hint = f"; did you mean {', '.join(repr(c) for c in near)}?" if near else (
            f"; valid keys: {', '.join(choices)}" if choices else ""
        )
        return f"spec: unknown key {where!r}{hint}"
    if err["type"] == "missing":
        return f"spec: missing required key {where!r}"
    if err["type"] == "string_pattern_mismatch" and loc[-1] == "name":
        return (f"spec: {where}: {err.get('input')!r} is not a valid name (up to 64 letters, "
                "digits, '_' or '-', starting with a letter or '_')")
    message = str(err["msg"]).removeprefix("Value error, ")  # a validator's own words
    return f"spec: {message}" if not loc else f"spec: {where}: {message}"


def parse_spec(data: Any, *, check_names: bool = True) -> Spec:
    """Validate a spec given as a dict; raise SpecError with one line on failure."""
    if not isinstance(data, dict):
        raise SpecError("spec: the top level must be a mapping of keys to values")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_spec_error(exc, Spec)) from None
    if check_names:
        check_component_names(spec)
    return spec


def parse_model_spec(cls: type[ModelT], data: Any) -> ModelT:
    """A scenario's own pydantic spec, or a one-line SpecError with the same wording and
    suggestions as a core spec's."""
    if not isinstance(data, dict):
        raise SpecError("spec: the top level must be a mapping of keys to values")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_spec_error(exc, cls)) from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Read a YAML spec from disk, apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec {path} is not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"spec {path} is not valid YAML{where}") from None
    data = apply_overrides(data or {}, overrides or [])
    spec = parse_spec(data)
    base = path.parent
    for attr in ("train", "test"):
        value = getattr(spec.data, attr)
        if value and "://" not in value and not Path(value).is_absolute():
            setattr(spec.data, attr, str(base / value))
    if isinstance(spec.data.validation, str) and not Path(spec.data.validation).is_absolute():
        spec.data.validation = str(base / spec.data.validation)
    return spec


def _parse_override_value(item: str, raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise SpecError(f"override {item!r}: the value is not a plain YAML value "
                        f"({problem})") from None


def _list_index(item: str, node: list[Any], part: str) -> int:
    """A list item by its index, or (a list of named items such as ``inputs``) by name."""
    try:
        index = int(part)
    except ValueError:
        names = [entry.get("name") for entry in node if isinstance(entry, dict)]
        if part in names:
            return names.index(part)
        named = [str(n) for n in names if n is not None]
        raise SpecError(f"override {item!r}: {part!r} is not a list index (0 to "
                        f"{len(node) - 1})" + (f" or a name ({', '.join(named)})" if named
                                               else "")) from None
    if not -len(node) <= index < len(node):
        raise SpecError(f"override {item!r}: index {index} is out of range (the list has "
                        f"{len(node)} items)")
    return index


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a spec dict."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(f"override {item!r} must look like key.path=value")
        node: Any = data
        parts = key.split(".")
        if any(not part for part in parts):
            raise SpecError(f"override {item!r}: empty part in the key {key!r}")
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[_list_index(item, node, part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise SpecError(f"override {item!r}: {'.'.join(parts[:depth]) or 'spec'} "
                                f"is a value ({node!r}), not a mapping or list")
        last = parts[-1]
        value = _parse_override_value(item, raw)
        if isinstance(node, list):
            node[_list_index(item, node, last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise SpecError(f"override {item!r}: {'.'.join(parts[:-1])} is a value "
                            f"({node!r}), not a mapping or list")
    return data


def check_component_names(spec: Spec) -> None:
    """Refuse encoder, fusion and task names the registry does not know."""
    from polymodal.registry import get_registry

    registry = get_registry()
    for inp in spec.inputs:
        try:
            registry.modality(inp.modality)
        except UnknownNameError as exc:
            raise SpecError(f"spec: inputs[{inp.name}]: {exc}") from None
        if inp.encoder not in registry.names("encoder"):
            raise SpecError(
                f"spec: inputs[{inp.name}]: " + str(unknown("encoder", inp.encoder,
                                                            registry.names("encoder")))
            )
        entry = registry.get("encoder", inp.encoder)
        if entry.modality and entry.modality != inp.modality:
            raise SpecError(
                f"spec: inputs[{inp.name}]: encoder {inp.encoder!r} takes modality "
                f"{entry.modality!r}, not {inp.modality!r}"
            )
    if spec.fusion.name not in registry.names("fusion"):
        raise SpecError("spec: " + str(unknown("fusion", spec.fusion.name,
                                              registry.names("fusion"))))
    if spec.task.name not in registry.names("task"):
        raise SpecError("spec: " + str(unknown("task", spec.task.name, registry.names("task"))))
    if spec.scenario and spec.scenario not in registry.names("scenario"):
        raise SpecError("spec: " + str(unknown("scenario", spec.scenario,
                                              registry.names("scenario"))))


def check_columns(spec: Spec, columns: list[str], source: str) -> None:
    """Refuse a spec whose inputs or target name a column the data lacks."""
    wanted = [f for inp in spec.inputs for f in inp.fields] + [spec.task.target]
    for name in wanted:
        if name not in columns:
            raise SpecError(
                "spec: " + str(unknown(f"column in {source}", name, columns))
            )
