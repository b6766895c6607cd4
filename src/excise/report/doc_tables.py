"""Regenerate the tables of a markdown document from run directories.

A generated block in a document is delimited by the command that produces it::

    <!-- excise report runs/demo --table readme -->
    ...whatever that command printed...
    <!-- end of generated table -->

``python -m excise.report.doc_tables README.md docs/results.md --runs DIR`` runs every
block's command (its run directories taken relative to ``--runs``) and rewrites the block
with the output; ``--check`` only lists the blocks whose text is not what the runs give
(exit code 1). So a published table is never typed by hand: it is the output of the
command written above it, on the run directories it names.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from excise.errors import UserError

BLOCK = re.compile(
    r"(?P<open><!-- (?P<command>excise report [^>]*?--table [\w-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end of generated table -->)",
    re.DOTALL,
)


def parse_command(command: str) -> tuple[list[str], str]:
    """``excise report A B --table NAME`` -> (["A", "B"], "NAME")."""
    words = shlex.split(command)
    if words[:2] != ["excise", "report"] or "--table" not in words:
        raise UserError(f"not a table command: {command!r}")
    at = words.index("--table")
    dirs, rest = words[2:at], words[at + 1 :]
    if not dirs or len(rest) != 1:
        raise UserError(f"expected `excise report DIR [DIR ...] --table NAME`, got {command!r}")
    return dirs, rest[0]


def table_output(command: str, runs_root: Path) -> str:
    """What ``command`` prints, with its directories resolved against ``runs_root``."""
    from excise.report.records import load_many
    from excise.report.tables import render_table

    dirs, name = parse_command(command)
    roots = [Path(d) if Path(d).is_absolute() else runs_root / d for d in dirs]
    records = [r for _, recs in load_many(roots) for r in recs]
    return render_table(name, records, command)


def regenerate(text: str, runs_root: Path) -> tuple[str, list[str]]:
    """The document with every generated block rewritten; and the commands whose block
    changed."""
    changed: list[str] = []

    def replace(m: re.Match) -> str:
        body = table_output(m["command"], runs_root) + "\n"
        if body != m["body"]:
            changed.append(m["command"])
        return m["open"] + body + m["close"]

    return BLOCK.sub(replace, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("documents", nargs="+", type=Path)
    parser.add_argument("--runs", type=Path, default=Path("."), help="where the run directories are")
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    args = parser.parse_args(argv)
    stale = 0
    for doc in args.documents:
        text = doc.read_text(encoding="utf-8")
        new, changed = regenerate(text, args.runs)
        for command in changed:
            print(f"{doc}: {'stale' if args.check else 'regenerated'}: {command}")
        stale += len(changed)
        if changed and not args.check:
            from excise.checkpoint import atomic_write_text

            atomic_write_text(doc, new)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
