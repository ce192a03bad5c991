"""What the command-line modules share: JSON lines out, stdin lines in, the community file and its
one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from handlers.kernel.cli_output import print_json as print_json  # the features' CLIs print the same way
from messages import render


def community_of(path: Path | None, configured: Path | None = None) -> Any:
    """The community file at ``path``, else the configured one (OUTREACH_CONFIG), else the sample."""
    from handlers.community.model import load_community

    return load_community(path or configured)


def fail_config(error: Exception, path: Path | None) -> int:
    from handlers.community.model import CommunityConfigError

    assert isinstance(error, CommunityConfigError)
    print(render("cli.config_invalid", file=path or "(sample)", count=len(error.problems)), file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def stdin_lines() -> Any:
    # Binary junk on stdin must not kill a batch: undecodable bytes become U+FFFD.
    with open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False) as stream:
        for line in stream:
            yield line.rstrip("\r\n")
