"""Build step: the wheel ships the viewer.

Everything else about the project is declared in pyproject.toml.  The
viewer's files live in the repository's ``web/`` (the browser's side is a
project of its own, with its npm packages in ``web/node_modules``); a
wheel carries the ones the browser loads as ``bridge/web/``, where
:mod:`bridge.http` looks first.  An editable install serves ``web/``
directly, so nothing is copied then.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WEB = Path(__file__).resolve().parent / "web"

#: What index.html loads (its import map names the three npm modules), and the
#: npm packages' licences, which travel with their code.
VIEWER_FILES = [
    "index.html", "*.js", "*.css",
    "node_modules/@msgpack/msgpack/dist.esm/**/*.mjs",
    "node_modules/@msgpack/msgpack/LICENSE",
    "node_modules/hash-wasm/dist/index.esm.js",
    "node_modules/hash-wasm/LICENSE",
    "node_modules/zstddec/dist/zstddec.mjs",
    "node_modules/zstddec/LICENSE",
]


def viewer_files() -> list[Path]:
    """The viewer's files, relative to web/; refuses to build without the npm modules."""
    files: list[Path] = []
    for pattern in VIEWER_FILES:
        found = sorted(p for p in WEB.glob(pattern) if p.is_file())
        if not found:
            raise SystemExit(f"web/{pattern} is missing: run `npm ci` in web/ (or `make deps`) "
                             "before building a wheel, which ships the viewer")
        files += [p.relative_to(WEB) for p in found]
    return files


class BuildPyWithViewer(build_py):
    """build_py, then copy the viewer into the built package as bridge/web."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # bridge.http serves the repository's web/ itself
        target = Path(self.build_lib) / "bridge" / "web"
        for rel in viewer_files():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(WEB / rel, target / rel)


setup(cmdclass={"build_py": BuildPyWithViewer})
