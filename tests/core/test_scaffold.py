"""``polymodal plugin new``: fresh from the scaffold, with no edits, the plugin installs into a
new virtual environment offline, is listed, trains with ``demo --quick``, is served (its JSON
object modality validated and in OpenAPI) and passes its own tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from polymodal.testing import run_cli
from tests.conftest import free_port, wait_ready
from tests.core.test_no_torch import PROBE


def fresh_venv(root: Path) -> Path:
    """A new virtual environment that sees this one's packages (torch is gigabytes; a
    fresh machine's `make test` has them here) through a site directory, so that what the
    test installs lands in the new environment only. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True,
                   timeout=120)
    python = root / "bin" / "python"
    purelib = subprocess.run([str(python), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(purelib, "_polymodal_parent.pth").write_text(
        f"import site; site.addsitedir({parent!r})\n")
    return python


def polymodal(python: Path, *args: str, cwd: Path | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "polymodal.cli.main", *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


def test_the_scaffold_refuses_a_bad_name_and_a_used_directory(tmp_path: Path) -> None:
    for name in ("Shapes", "9lives", "my-plugin", "class"):
        result = run_cli("plugin", "new", name, "--out", str(tmp_path / name))
        assert result.returncode == 2 and "not a valid plugin name" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / name).exists()
    taken = run_cli("plugin", "new", "nlp", "--out", str(tmp_path / "nlp"))
    assert taken.returncode == 2 and "already installed" in taken.stderr
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    refused = run_cli("plugin", "new", "shapes", "--out", str(used))
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert sorted(p.name for p in used.iterdir()) == ["notes.txt"]


def test_a_scaffolded_plugin_installs_trains_serves_and_passes_its_tests(tmp_path: Path
                                                                       ) -> None:
    target = tmp_path / "polymodal-shapes"
    written = run_cli("plugin", "new", "shapes", "--out", str(target), "--json")
    assert written.returncode == 0, written.stderr
    files = json.loads(written.stdout)["files"]
    assert {"pyproject.toml", "README.md", "polymodal_shapes/plugin.py",
            "tests/test_conformance.py"} <= set(files)
    assert not any("pluginname" in (target / f).read_text() for f in files)

    python = fresh_venv(tmp_path / "venv")
    pip = subprocess.run([str(python), "-m", "pip", "install", "--no-deps",
                          "--no-build-isolation", "--no-index", "-e", str(target)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr

    listed = {p["name"]: p for p in json.loads(polymodal(python, "plugins", "--json").stdout)}
    assert listed["shapes"]["status"] == "loaded" and listed["shapes"]["version"] == "0.1.0"
    assert listed["shapes"]["api"] == ">=1.0,<2"
    # The scaffold's hooks and options import no torch: --help and the listings stay fast
    # with it installed.
    for args in (["--help"], ["components", "--json"]):
        probe = subprocess.run([str(python), "-c", PROBE.format(args=args)],
                               capture_output=True, text=True, timeout=120)
        assert probe.stderr.strip().endswith("HEAVY="), (args, probe.stderr)

    demo = polymodal(python, "demo", "shapes.inside", "--quick", "--out",
                     str(tmp_path / "runs"), "--json")
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout)["shapes.inside"]
    assert summary["metrics"]["accuracy"] > summary["baselines"]["majority"]["accuracy"] + 0.2

    model = Path(summary["out"])
    port = free_port()
    server = subprocess.Popen([str(python), "-m", "polymodal.cli.main", "serve", str(model),
                               "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v1/models/{model.name}/predict"
    try:
        wait_ready(server, base)
        good = httpx.post(url, json={"records": [{"point": {"x": 0.0, "y": 0.1},
                                                  "colour": "red"}]})
        assert good.status_code == 200 and good.json()["predictions"][0]["label"] == "inside"
        bad = httpx.post(url, json={"records": [{"point": {"x": "far", "y": 0.1}}]})
        assert bad.status_code == 422 and bad.json()["field"] == "records[0].point.x"
        openapi = httpx.get(f"{base}/openapi.json").json()
        body = openapi["paths"][f"/v1/models/{model.name}/predict"]["post"]["requestBody"]
        point = body["content"]["application/json"]["schema"]["properties"]["records"][
            "items"]["properties"]["point"]
        assert point["anyOf"][0]["required"] == ["x", "y"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           capture_output=True, text=True, timeout=600, cwd=target)
    assert tests.returncode == 0, tests.stdout[-2000:]
    assert "4 passed" in tests.stdout


@pytest.mark.parametrize("api,status", [(">=1.0,<2", "loaded"), (">=2", "failed"),
                                        ("one", "failed")])
def test_a_plugin_declaring_another_api_version_is_listed_failed(tmp_path: Path, api: str,
                                                                 status: str) -> None:
    from polymodal.testing import make_distribution

    source = (f"from polymodal.plugin import hookimpl\nPOLYMODAL_API = {api!r}\n\n"
              "@hookimpl\ndef register_fusions(register):\n"
              "    register('needs-api', 'torch.nn:Identity')\n")
    make_distribution(tmp_path, "polymodal_versioned", source, entry_point="versioned")
    listed = run_cli("plugins", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    plugin = {p["name"]: p for p in json.loads(listed.stdout)}["versioned"]
    assert plugin["status"] == status, plugin
    if status == "failed":
        assert "API" in plugin["error"]
        fusions = run_cli("components", "--kind", "fusion", "--json",
                          env={"PYTHONPATH": str(tmp_path)})
        assert fusions.returncode == 0  # the CLI keeps working, without its components
        assert "needs-api" not in {c["name"] for c in json.loads(fusions.stdout)}
