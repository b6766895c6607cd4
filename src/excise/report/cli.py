"""``excise report DIR [DIR ...] [--out OUT] [--table NAME]``."""

from __future__ import annotations

import shlex
from pathlib import Path

from excise.errors import UserError
from excise.report.markdown import write_report
from excise.report.records import load_many
from excise.report.tables import render_table


def cli_report(args) -> int:
    """Write the report, or print one table for a document (``--table``)."""
    if getattr(args, "table", None):
        loaded = load_many([Path(d) for d in args.dir])
        records = [r for _, recs in loaded for r in recs]
        command = "excise report " + " ".join(shlex.quote(d) for d in args.dir) + f" --table {args.table}"
        try:
            print(render_table(args.table, records, command))
        except ValueError as e:
            raise UserError(str(e)) from None
        return 0
    path = write_report(args.dir, args.out)
    print(f"report written to {path}")
    return 0
