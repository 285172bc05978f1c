"""Compile the core's hot path with mypyc into ``.native/`` (optional: the pure code is the same).

The modules in ``ingest.NATIVE_MODULES`` are plain, strictly typed Python; mypyc (shipped with mypy)
turns them into C extensions, which run the core about 1.4x faster. ``ingest/__init__.py`` uses
them only when ``.native/ingest/SOURCES`` matches the current sources, so an edited module is never
shadowed by a stale build. Nothing else changes: same code, same tests (``make test`` runs the unit
tests both ways).

    python tools/build_native.py          # build if the sources changed
    python tools/build_native.py --force  # rebuild
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ingest  # noqa: E402 - after the path set-up


def build(force: bool = False) -> Path:
    """Build the extensions into ``.native/ingest`` and stamp them; returns that folder."""
    target = ROOT / ingest.NATIVE_DIR / "ingest"
    stamp = target / ingest.NATIVE_STAMP
    digest = ingest.sources_digest(ROOT / "ingest")
    if not force and stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        stamp.touch()  # for make: the build is as new as the sources
        print(f"native core up to date: {target.relative_to(ROOT)}")
        return target

    from mypyc.build import mypycify
    from setuptools import Distribution

    paths = [f"ingest/{name}.py" for name in ingest.NATIVE_MODULES]
    with tempfile.TemporaryDirectory(prefix="ingest-native-") as scratch:
        cwd = Path.cwd()
        os.chdir(ROOT)  # mypyc names modules from paths relative to the working directory
        try:
            extensions = mypycify(
                paths,
                opt_level="3",
                group_name="ingest._core",
                target_dir=str(Path(scratch) / "c"),
            )
            dist = Distribution({"name": "ingest-native", "ext_modules": extensions})
            dist.verbose = 0  # type: ignore[attr-defined]  # no compiler command lines
            command = dist.get_command_obj("build_ext")
            command.build_lib = str(Path(scratch) / "lib")  # type: ignore[attr-defined]
            command.build_temp = str(Path(scratch) / "tmp")  # type: ignore[attr-defined]
            dist.run_command("build_ext")
        finally:
            os.chdir(cwd)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(scratch) / "lib" / "ingest", target)
    stamp.write_text(digest, encoding="utf-8")  # last: a half-done build is never used
    print(f"native core built: {len(paths)} modules -> {target.relative_to(ROOT)}")
    return target


def main() -> None:
    """Build unless up to date."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    force = parser.parse_args().force
    try:
        build(force)
    except Exception as exc:  # noqa: BLE001 - optional: no compiler here means the pure core runs
        print(f"native core not built ({type(exc).__name__}: {exc}); the pure modules run")


if __name__ == "__main__":
    main()
