"""jieba's base dictionary, cached as a pickle in the user's cache directory. jieba's own cache (a
``marshal`` file in the temp directory) takes about three times as long to read as a pickle of the same
(word → frequency) table, and it is the largest part of start-up. The pickle lives in the user's own
cache directory, never a shared temp directory (a pickle is code to whoever can write it), and is
keyed by jieba's version and its dictionary file, so an upgrade rebuilds it."""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from pathlib import Path

import jieba

log = logging.getLogger(__name__)


def cache_path() -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    source = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    try:
        stat = source.stat()
    except OSError:
        return None
    key = f"{jieba.__version__}-{stat.st_size}-{int(stat.st_mtime)}"
    return Path(base) / "shequtong" / f"jieba-{key}.pickle"


def load_base_tokenizer() -> jieba.Tokenizer:
    """A jieba tokenizer with its own dictionary loaded, from our cache when it is there."""
    tokenizer = jieba.Tokenizer()
    path = cache_path()
    if path is not None and path.is_file():
        try:
            with path.open("rb") as stream:
                tokenizer.FREQ, tokenizer.total = pickle.load(stream)
            tokenizer.initialized = True
            return tokenizer
        except Exception as exc:  # a damaged cache: rebuild it
            log.warning("jieba cache unreadable (%s); rebuilding it", type(exc).__name__)
    tokenizer.initialize()
    if path is not None:
        _write(path, (tokenizer.FREQ, tokenizer.total))
    return tokenizer


def _write(path: Path, table: object) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as stream:
            pickle.dump(table, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, path)  # readers see the old file or the whole new one
    except OSError as exc:  # no cache is only slower
        log.info("jieba cache not written (%s)", exc.strerror)
