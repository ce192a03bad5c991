"""Start-up caches in the user's own cache directory: built structures that take long to build and are
a pure function of files we can hash (jieba's dictionary, the classifier's data files, our own code).

Each cache file's name carries a hash of everything its contents depend on, so a changed input is a
different file and an old one is never read by mistake. Files are written to a temporary name and
renamed into place, so a reader sees the whole old file, the whole new one or none, whatever other
processes write at the same time; an unreadable file is rebuilt. Pickles live only in the user's own
directory (mode 0700), never in a shared temp directory: a pickle is code to whoever can write it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bump to rebuild every cache at once (e.g. a change in how a cached structure is laid out that the
# hashed sources below would not show).
FORMAT = 1


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "shequtong"


def fingerprint(parts: Iterable[bytes | str]) -> str:
    """A short hash of the inputs, the Python version (pickled regex code and dict layouts are
    version-specific) and this module's format number."""
    digest = hashlib.sha256(f"{FORMAT}|{sys.version}|{sys.implementation.cache_tag}".encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))  # lengths too: ("ab", "c") is not ("a", "bc")
        digest.update(data)
    return digest.hexdigest()[:24]


def source_of(*modules: str) -> list[bytes]:
    """The code of our own modules that build a cached structure, so editing the code that builds it
    rebuilds the cache."""
    return [_code_of(name) for name in modules]


def _code_of(name: str) -> bytes:
    module = sys.modules[name]
    spec = module.__spec__
    # The source, else the bytecode (an install may ship only that), else the name alone.
    for file in (module.__file__, spec.cached if spec is not None else None):
        if file:
            try:
                return Path(file).read_bytes()
            except OSError:
                continue
    return name.encode()


def load_or_build(name: str, key: str, build: Callable[[], T]) -> T:
    """The cached value for ``key``, or ``build()`` (then written for the next start)."""
    path = cache_dir() / f"{name}-{key}.pickle"
    try:
        with path.open("rb") as stream:
            return pickle.load(stream)  # type: ignore[no-any-return]
    except FileNotFoundError:
        pass
    except Exception as exc:  # a truncated or damaged file (a crash, a full disk): rebuild it
        log.warning("%s cache unreadable (%s); rebuilding it", name, type(exc).__name__)
    value = build()
    write(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    return value


def write(path: Path, data: bytes) -> None:
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)  # atomic: readers see the old file or the whole new one
        temp = None
    except OSError as exc:  # no cache is only slower
        log.info("cache %s not written (%s)", path.name, exc.strerror)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
