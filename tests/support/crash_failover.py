"""A test-only entry point: run one failover (or its resume) and die like ``kill -9`` at a point.

    python -m tests.support.crash_failover SPEC POINT --to SITE    # or: SPEC POINT --resume

POINT is a step name (die right after its result is journaled) or ``<step>:start`` (right after its
start is). The process exits with status 137 there, as if killed; the product code has no such hook,
only the ``checkpoint`` callback this script passes to ``run_failover``.
"""

from __future__ import annotations

import argparse
import os
import sys

from deplat.failover.run import run_failover
from deplat.secrets import SecretStore
from deplat.spec import load_spec


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("point")
    parser.add_argument("--to")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    def crash_at(point: str) -> None:
        if point == args.point:
            sys.stdout.flush()
            os._exit(137)

    spec = load_spec(args.spec)
    result = run_failover(spec, SecretStore(spec), to=args.to, resume=args.resume, checkpoint=crash_at)
    print(result.outcome)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
