"""Turn Azure API Management gateway logs for Azure OpenAI traffic into typed ADX rows.

The package is layered as the data flows: ``parse`` (bytes -> JSON records), ``flatten`` and
``policy`` (record -> landing row or dead letter), ``pipeline`` (a batch of events -> BatchResult).
None of these import ``azure.*``; only the sinks and ``function_app.py`` do.

The core's hot modules (``NATIVE_MODULES``) may also be compiled by mypyc into ``.native/``
(``make native``, see ``tools/build_native.py``). They are used only when that build was made
from exactly the current sources, and never when ``INGEST_PURE`` is set.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

NATIVE_MODULES = ("coerce", "privacy", "bodies", "parse", "flatten", "policy", "pipeline")
"""The modules mypyc compiles: the per-record path of the core."""

NATIVE_DIR = ".native"
NATIVE_STAMP = "SOURCES"


def sources_digest(package: Path) -> str:
    """A digest of the compiled modules' sources: the native build's stamp must match it."""
    digest = hashlib.sha256()
    for name in NATIVE_MODULES:
        digest.update(name.encode() + b"\0" + (package / f"{name}.py").read_bytes() + b"\0")
    return digest.hexdigest()


def native_folder(package: Path) -> Path | None:
    """The folder of a native build of ``package``'s current sources, if there is one."""
    folder = package.parent / NATIVE_DIR / package.name
    stamp = folder / NATIVE_STAMP
    try:
        if stamp.read_text(encoding="utf-8") == sources_digest(package):
            return folder
    except OSError:
        pass
    return None


def _use_native() -> None:
    if os.environ.get("INGEST_PURE"):
        return
    folder = native_folder(Path(__file__).resolve().parent)
    if folder is None:
        return
    __path__.insert(0, str(folder))  # its extensions shadow the same-named .py files
    try:  # the one library holding all the compiled code: built for this platform?
        importlib.import_module(f"{__name__}._core__mypyc")
    except ImportError:  # another libc or architecture (a build shipped elsewhere): stay pure
        __path__.remove(str(folder))


_use_native()


def core_build() -> str:
    """How the core runs in this process: "compiled (mypyc)" or "pure Python".

    Asked of the modules themselves: a build for another interpreter is not loaded, so the pure
    modules run even where a ``.native`` folder exists.
    """
    from ingest import flatten

    compiled = (flatten.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
    return "compiled (mypyc)" if compiled else "pure Python"
