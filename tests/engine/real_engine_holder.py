"""A deplat run whose program blocks, so the real CLI holds the site's state lock meanwhile.

    python -m tests.engine.real_engine_holder up SPEC_PATH SITE          # PulumiDriver.up of SITE
    python -m tests.engine.real_engine_holder cli SPEC_PATH SITE ARGS... # `deplat ARGS` (its CLI)

Used by ``test_real_engine_failures`` to kill the CLI with SIGKILL, or to press Ctrl-C, while it
runs. The program's update waits (60 s at most) until the CLI has let go of the lock: it finished,
was canceled, or was killed. The environment (PATH with the real CLI, PULUMI_HOME,
DEPLAT_PASSPHRASE, the offline proxy) comes from the test.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from deplat.engine import driver as driver_mod
from deplat.engine import locks
from deplat.secrets import SecretStore
from deplat.spec import load_spec
from deplat.spec.model import Spec
from tests.engine.conftest import RealStandIn


def blocking_program(spec: Spec, site: str) -> Callable[[], None]:
    def hold(_: object) -> str:
        deadline = time.monotonic() + 60
        while not locks.find_locks(spec, site) and time.monotonic() < deadline:
            time.sleep(0.05)  # the CLI takes the lock before it runs the program; be sure
        while locks.find_locks(spec, site) and time.monotonic() < deadline:
            if all(lock.stale for lock in locks.find_locks(spec, site)):
                break
            time.sleep(0.05)
        return "held"

    def program() -> None:
        import pulumi

        if not pulumi.runtime.is_dry_run():  # `deplat up` previews first: only the update blocks
            pulumi.export("held", pulumi.Output.from_input("x").apply(hold))

    return program


def main() -> int:
    mode, spec_path, site, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    spec = load_spec(spec_path)
    provider = RealStandIn()
    program = blocking_program(spec, site)
    driver_mod.site_provider = lambda site: provider  # type: ignore[assignment]
    driver_mod.site_program = lambda spec, site, secrets: program  # type: ignore[assignment]
    if mode == "cli":
        from deplat.cli import main as cli_main

        # `deplat up` checks the spec's real provider (aws) for local credentials before it starts;
        # nothing here ever calls AWS (no aws plugin, no AWS resource), so made-up keys do
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIAREALENGINETEST00")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "real-engine-test-not-a-key")

        cli_main(args)  # exits with deplat's exit code
    driver_mod.PulumiDriver(spec, SecretStore(spec)).up(spec.site(site))
    return 0


if __name__ == "__main__":
    sys.exit(main())
