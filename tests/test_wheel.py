"""The wheel ships the viewer: built, installed in a fresh venv, served from elsewhere, loaded in Chromium.

Offline by construction: the wheel is built with this venv's setuptools
(``--no-build-isolation``), installed with ``--no-deps --no-index``, and the
fresh venv finds the dependencies (websockets, msgpack...) through a ``.pth``
file naming this venv's site-packages, after its own; pagebridge itself
comes only from the wheel (checked).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

TEXT = "pagebridge wheel check: this line came from the wheel's server\n"


def run(*args: str | Path, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout[-1500:]}{result.stderr[-1500:]}"
    return result


def source_copy(dest: Path) -> Path:
    """What a checkout holds (with web/'s npm modules installed), without this checkout's build state."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "test")
    shutil.copytree(REPO / "bridge", dest / "bridge", ignore=skip)
    shutil.copytree(REPO / "web", dest / "web", ignore=skip)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, dest / name)
    return dest


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A fresh venv with pagebridge installed from a freshly built wheel; returns its bin/."""
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-w", dist, source_copy(tmp_path / "src"))
    (wheel,) = dist.glob("pagebridge-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "pagebridge_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    where = run(python, "-c", "import bridge.http as h; print(h.__file__); print(h.WEB_ROOT)",
                cwd=tmp_path).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where
    return venv / "bin"


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[str]:
    """`pagebridge serve` from the fresh venv, started in an unrelated folder; yields the viewer URL."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "hello.txt").write_text(TEXT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.Popen([str(installed / "pagebridge"), "serve", str(root), "--port", "0"],
                            cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip().startswith("viewer:"):
                url = line.split()[-1]
        assert url, f"no viewer URL: {proc.stderr.read() if proc.poll() is not None else ''}"  # type: ignore[union-attr]
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.browser
@pytest.mark.slow
def test_wheel_serves_a_working_viewer(served: str, page: Any) -> None:
    """A wheel installed in a fresh venv and run from another folder serves a viewer that shows a file."""
    page.goto(served)
    page.wait_for_selector("text=hello.txt", timeout=20_000)  # the listing came over the WebSocket
    page.goto(served + "#/hello.txt")
    page.wait_for_function(f"() => document.body.innerText.includes({TEXT.strip()!r})", timeout=20_000)
    data = page.evaluate("""async () => {
        const { connect } = await import('/collector.js');
        const session = await connect('/ws');
        const data = await session.getAllPages('hello.txt');
        session.close();
        return new TextDecoder().decode(data);
    }""")
    assert data == TEXT
    assert page.errors == []
