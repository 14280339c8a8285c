"""Package and plugin versions recorded in artifacts."""

from __future__ import annotations

import importlib.metadata as metadata

_PACKAGES = ("polymodal", "torch", "torchmetrics", "transformers", "safetensors", "numpy")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def plugin_versions() -> dict[str, str | None]:
    from polymodal.plugins import get_plugin_manager

    return {name: info.version for name, info in get_plugin_manager().infos.items()
            if info.status == "loaded"}
