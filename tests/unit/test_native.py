"""The optional compiled core: used only when built from the current sources, never when pure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import ingest

PACKAGE = Path(ingest.__file__).resolve().parent


def test_the_core_runs_as_the_test_command_built_it() -> None:
    # `make test` runs the suite once compiled and once with INGEST_PURE=1; each run says which.
    expected = os.environ.get("INGEST_EXPECT_CORE")
    if expected is None:
        pytest.skip("INGEST_EXPECT_CORE is set by `make test`")
    assert ingest.core_build() == expected


def _copy_sources(tmp_path: Path) -> Path:
    package = tmp_path / "ingest"
    package.mkdir()
    for name in ingest.NATIVE_MODULES:
        shutil.copy(PACKAGE / f"{name}.py", package / f"{name}.py")
    return package


def test_a_build_stamped_with_the_current_sources_is_used(tmp_path: Path) -> None:
    package = _copy_sources(tmp_path)
    native = tmp_path / ingest.NATIVE_DIR / "ingest"
    native.mkdir(parents=True)
    (native / ingest.NATIVE_STAMP).write_text(ingest.sources_digest(package), encoding="utf-8")
    assert ingest.native_folder(package) == native


def test_a_stale_or_missing_build_is_never_used(tmp_path: Path) -> None:
    package = _copy_sources(tmp_path)
    assert ingest.native_folder(package) is None  # nothing built
    native = tmp_path / ingest.NATIVE_DIR / "ingest"
    native.mkdir(parents=True)
    (native / ingest.NATIVE_STAMP).write_text(ingest.sources_digest(package), encoding="utf-8")
    edited = package / "flatten.py"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert ingest.native_folder(package) is None


def test_a_build_for_another_platform_falls_back_to_the_pure_core(tmp_path: Path) -> None:
    # A .native folder shipped to a host whose libc or architecture differs must not break imports.
    shutil.copytree(PACKAGE, tmp_path / "ingest", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PACKAGE.parent / "schemas", tmp_path / "schemas")
    native = tmp_path / ingest.NATIVE_DIR / "ingest"
    native.mkdir(parents=True)
    (native / ingest.NATIVE_STAMP).write_text(
        ingest.sources_digest(tmp_path / "ingest"), encoding="utf-8"
    )
    for name in ("_core__mypyc", *ingest.NATIVE_MODULES):
        (native / f"{name}{EXTENSION_SUFFIXES[0]}").write_bytes(b"not an ELF file")
    env = {k: v for k, v in os.environ.items() if k != "INGEST_PURE"}
    out = subprocess.run(
        [sys.executable, "-c", "import ingest; print(ingest.core_build())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "pure Python"
