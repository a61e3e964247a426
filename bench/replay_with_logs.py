"""``flask aiops replay`` with log files fed to detection: ``python bench/replay_with_logs.py
--logs NORMAL.logs --logs CASE.logs -- NORMAL CASE --report OUT.json``.

The product's own replay of log files (beside the trace files, merged on the
data's clock) is being built apart; until then this runs the real replay
command in-process with a :class:`bench.logfiles.PeriodFeed` registered, one
log file per trace file, in the same order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiops import logfeed  # noqa: E402
from app import create_app  # noqa: E402
from bench.logfiles import PeriodFeed, read  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", action="append", type=Path, default=[])
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    app = create_app()
    logfeed.register(app, PeriodFeed([read(p) for p in args.logs]))
    with app.app_context():
        app.cli.main(args=["aiops", "replay", *rest], prog_name="flask", standalone_mode=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
