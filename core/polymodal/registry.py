"""The component registry: encoders, fusions, tasks, readers, scenarios and modalities by name.

Entries keep their factory as given (a callable or a ``"module:attr"`` string) and resolve it
only when a component is built, so listing imports no torch. A name registered twice is an
error naming both plugins.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polymodal.errors import DataError, PluginError, unknown
from polymodal.modalities import Modality

KINDS = ("encoder", "fusion", "task", "reader", "scenario")
_HOOK_FOR_KIND = {
    "encoder": "register_encoders",
    "fusion": "register_fusions",
    "task": "register_tasks",
    "reader": "register_readers",
    "scenario": "register_scenarios",
}


@dataclass
class Entry:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    plugin: str
    description: str = ""
    modality: str | None = None
    extensions: list[str] = field(default_factory=list)
    # The component's options: a pydantic model, a dict of defaults, or a "module:attr"
    # string naming either in a module that imports no torch (listing stays light).
    options: Any = None

    def resolve(self) -> Callable[..., Any]:
        """The factory as a callable, importing its module if it was given as a string."""
        if callable(self.factory):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} cannot be loaded "
                f"({self.factory}): {exc}"
            ) from exc
        return obj

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "plugin": self.plugin,
            "description": self.description,
        }
        if self.modality is not None:
            out["modality"] = self.modality
        if self.extensions:
            out["extensions"] = self.extensions
        if self.kind in ("encoder", "fusion", "task"):
            out["options"] = self.describe_options()
        return out

    def describe_options(self) -> list[dict[str, Any]] | None:
        """Each option with its type and default; None when the plugin declared none."""
        from polymodal.options import describe

        options = self.options
        if isinstance(options, str):
            module_name, _, attr = options.partition(":")
            try:
                options = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise PluginError(f"{self.kind} {self.name!r}: options {self.options!r} "
                                  f"cannot be loaded: {exc}") from exc
        return None if options is None else describe(options)


class Registry:
    """Components by kind and name, filled from the plugins' register_* hooks."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._modalities: dict[str, Modality] = {}

    def add_modality(self, modality: Modality) -> None:
        existing = self._modalities.get(modality.name)
        if existing is not None:
            raise PluginError(
                f"modality {modality.name!r} is registered twice: by plugin "
                f"{existing.plugin!r} and by plugin {modality.plugin!r}"
            )
        self._modalities[modality.name] = modality

    def modality(self, name: str) -> Modality:
        """A registered modality; one no plugin registers is refused naming the known."""
        if name not in self._modalities:
            raise unknown("modality", name, self._modalities)
        return self._modalities[name]

    def modalities(self, pattern: str = "*") -> list[Modality]:
        return [m for name, m in sorted(self._modalities.items())
                if fnmatch.fnmatch(name, pattern)]

    def add(self, entry: Entry) -> None:
        table = self._entries[entry.kind]
        existing = table.get(entry.name)
        if existing is not None:
            raise PluginError(
                f"{entry.kind} {entry.name!r} is registered twice: by plugin "
                f"{existing.plugin!r} and by plugin {entry.plugin!r}"
            )
        table[entry.name] = entry

    def get(self, kind: str, name: str) -> Entry:
        table = self._entries[kind]
        if name not in table:
            raise unknown(kind, name, table)
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def list(self, kind: str | None = None, pattern: str = "*") -> list[Entry]:
        kinds = [kind] if kind else list(KINDS)
        return [
            entry
            for k in kinds
            for name, entry in sorted(self._entries[k].items())
            if fnmatch.fnmatch(name, pattern)
        ]

    def reader_for(self, path: str) -> Entry:
        """The reader registered for a file's extension (longest match wins)."""
        lower = path.lower()
        if "://" in lower:
            scheme = lower.split("://", 1)[0]
            if scheme in self._entries["reader"]:
                return self._entries["reader"][scheme]
        best: tuple[int, Entry] | None = None
        for entry in self._entries["reader"].values():
            for ext in entry.extensions:
                if lower.endswith(ext) and (best is None or len(ext) > best[0]):
                    best = (len(ext), entry)
        if best is None:
            exts = sorted({e for r in self._entries["reader"].values() for e in r.extensions})
            raise DataError(f"no reader for {path!r}; known extensions: {', '.join(exts)}")
        return best[1]

    def build(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(kind, name).resolve()(*args, **kwargs)


def _registrar(registry: Registry, kind: str, plugin: str) -> Callable[..., None]:
    def register(
        name: str,
        factory: Callable[..., Any] | str,
        *,
        description: str = "",
        modality: str | None = None,
        extensions: list[str] | tuple[str, ...] = (),
        options: Any = None,
    ) -> None:
        registry.add(
            Entry(kind, name, factory, plugin, description, modality, list(extensions),
                  options)
        )

    return register


def _modality_registrar(registry: Registry, plugin: str) -> Callable[..., None]:
    def register(
        name: str,
        *,
        wire: str = "value",
        value_type: Any = None,
        media_types: list[str] | tuple[str, ...] = (),
        samples: list[Any] | tuple[Any, ...] | None = None,
        description: str = "",
        expects: str = "",
        schema: dict[str, Any] | None = None,
    ) -> None:
        registry.add_modality(Modality(
            name, wire, plugin, value_type, tuple(media_types),
            None if samples is None else tuple(samples), description, expects, schema))

    return register


def build_registry() -> Registry:
    """Ask every loaded plugin to register its components, attributing each to its plugin."""
    from polymodal.plugins import get_plugin_manager

    manager = get_plugin_manager()
    registry = Registry()
    for plugin_name, function in manager.impls("register_modalities"):
        function(register=_modality_registrar(registry, plugin_name))
    for kind in KINDS:
        for plugin_name, function in manager.impls(_HOOK_FOR_KIND[kind]):
            function(register=_registrar(registry, kind, plugin_name))
    return registry


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = build_registry()
    return _registry


def reset_registry() -> None:
    global _registry
    _registry = None
