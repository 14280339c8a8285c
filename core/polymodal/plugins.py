"""Plugin discovery: every plugin, built-in or third party, comes through the ``polymodal``
entry-point group.

``POLYMODAL_PLUGINS`` (comma-separated entry-point names) is an allow-list;
``POLYMODAL_DISABLE_PLUGINS`` a deny-list. A plugin that fails to import, or that declares
a range of the plugin API (``POLYMODAL_API = ">=1.0,<2"`` in its module) this polymodal is
not in, is recorded as failed with the reason and does not stop the others.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from polymodal import hookspecs

ENTRY_POINT_GROUP = "polymodal"
# The version of ``polymodal.plugin`` and the hooks: the minor grows with additions, the
# major with changes a plugin written for the previous one may break on.
API_VERSION = "1.0"


@dataclass
class PluginInfo:
    """What ``polymodal plugins`` shows for one plugin."""

    name: str
    module: str
    version: str | None
    status: str  # "loaded" | "failed" | "disabled"
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    api: str | None = None  # the plugin API range it declares (POLYMODAL_API)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "version": self.version,
            "status": self.status,
            "hooks": self.hooks,
            "error": self.error,
            "api": self.api,
        }


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def api_mismatch(module: Any) -> str | None:
    """Why a plugin cannot run on this API version (its ``POLYMODAL_API``), or None."""
    wanted = getattr(module, "POLYMODAL_API", None)
    if wanted is None:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        accepted = SpecifierSet(str(wanted))
    except InvalidSpecifier:
        return f"POLYMODAL_API {wanted!r} is not a version range (write e.g. '>=1.0,<2')"
    if API_VERSION not in accepted:
        return f"needs polymodal plugin API {wanted}; this polymodal has {API_VERSION}"
    return None


def _dist_version(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


class PluginManager:
    """A pluggy manager that remembers which plugins loaded, failed or were disabled."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("polymodal")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    def load_entry_points(self) -> None:
        allow = _env_list("POLYMODAL_PLUGINS")
        deny = _env_list("POLYMODAL_DISABLE_PLUGINS") or set()
        seen: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            version = _dist_version(ep)
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                self.infos[ep.name] = PluginInfo(ep.name, ep.value, version, "disabled")
                continue
            try:
                module = ep.load()
                api = getattr(module, "POLYMODAL_API", None)
                api = None if api is None else str(api)
                mismatch = api_mismatch(module)
                if mismatch is not None:
                    self.infos[ep.name] = PluginInfo(ep.name, ep.value, version, "failed",
                                                     error=mismatch, api=api)
                    continue
                self.pm.register(module, name=ep.name)
            except Exception as exc:  # a broken plugin must not break the CLI
                error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                self.infos[ep.name] = PluginInfo(ep.name, ep.value, version, "failed", error=error)
                continue
            hooks = sorted(
                caller.name for caller in self.pm.get_hookcallers(module) or []
            )
            self.infos[ep.name] = PluginInfo(ep.name, ep.value, version, "loaded", hooks=hooks,
                                             api=api)

    def impls(self, hook_name: str) -> list[tuple[str, Any]]:
        """(plugin name, implementation function) for every plugin implementing a hook."""
        caller = getattr(self.pm.hook, hook_name)
        return [(impl.plugin_name, impl.function) for impl in caller.get_hookimpls()]

    @property
    def hook(self) -> Any:
        return self.pm.hook


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
        _manager.load_entry_points()
    return _manager

