"""Hostile or broken spec input (issue 12.11): time, peak memory, output size and exit code of
`deplat validate` on each case, each in a fresh process.

    python benchmarks/hostile_input.py [--source DIR] [--timeout 60]

Each case runs with at most 4 GiB of address space and is killed after ``--timeout`` seconds.
``--source DIR`` runs the CLI from another checkout (e.g. ``git archive <old commit> | tar -x -C
DIR``) to compare before and after. Target: every case exits 2 with one short message, in well under
a second of validation on an idle machine (the figures include the interpreter's start-up; the
``--version`` row is that baseline).
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUESTBOOK = (ROOT / "examples/guestbook/deplat.yaml").read_text()


def alias_bomb(levels: int = 9) -> str:
    lines = ['x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\naddress: *a{levels - 1}\n"


def with_options(options_yaml: str) -> str:
    block = "\n".join("      " + line for line in options_yaml.splitlines())
    return GUESTBOOK.replace("    options: {address: 127.0.0.11}", "    options:\n" + block, 1)


def many_local_sites(count: int) -> str:
    role = ["primary"] + ["warm"] * (count - 1)
    sites = "\n".join(
        f"  - name: s{i}\n    provider: local\n    role: {role[i]}\n"
        f"    options: {{address: 127.1.{i // 200}.{i % 200 + 1}}}"
        for i in range(count)
    )
    head = GUESTBOOK[: GUESTBOOK.index("sites:")]
    return f"{head}sites:\n{sites}\n\n{GUESTBOOK[GUESTBOOK.index('failover:') :]}"


def cases(folder: Path) -> dict[str, Path | None]:
    """name -> the file to pass with -f (None: no spec, the start-up baseline)."""
    out: dict[str, Path | None] = {"baseline (--version)": None}
    texts = {
        "alias bomb under options (9 levels)": with_options(alias_bomb()),
        "alias that contains itself": with_options("address: &a [127.0.0.11, *a]"),
        "200k-deep flow nesting": GUESTBOOK + "x: " + "[" * 200_000 + "]" * 200_000 + "\n",
        "200k-character value": with_options("address: " + "x" * 200_000),
        "500 local sites": many_local_sites(500),
        "64 MiB regular file": None,
    }
    for name, text in texts.items():
        path = folder / (name.split()[0] + f"-{len(out)}.yaml")
        if text is None:
            with path.open("w") as f:
                f.write(GUESTBOOK)
                f.write(("#" * 1023 + "\n") * 64 * 1024)
        else:
            path.write_text(text)
        out[name] = path
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    out["FIFO (no writer)"] = fifo
    out["/dev/zero"] = Path("/dev/zero")
    return out


# A case may not take the machine down: the old code read /dev/zero until out of memory.
MEMORY_CAP = 4 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_one(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> tuple[float, float, int | str, int]:
    """(seconds, peak RSS in MiB, exit code or 'killed', bytes of output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_cap_memory
    )
    assert proc.stdout is not None
    size, deadline = 0, started + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            proc.kill()
            break
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            size += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code: int | str = os.waitstatus_to_exitcode(status)
    if isinstance(code, int) and code < 0:
        code = "killed (timeout)" if seconds >= timeout else f"signal {-code}"
    proc.stdout.close()
    return seconds, usage.ru_maxrss / 1024, code, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose deplat to run")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a case is killed")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(args.source.resolve()), COLUMNS="200")
    folder = Path(tempfile.mkdtemp(prefix="deplat-hostile-"))
    try:
        print(f"deplat from {args.source.resolve()}; timeout {args.timeout:.0f} s per case\n")
        print(f"{'case':40} {'seconds':>8} {'peak MiB':>9} {'exit':>18} {'output bytes':>13}")
        for name, path in cases(folder).items():
            spec = ["--version"] if path is None else ["-f", str(path), "validate"]
            cmd = [sys.executable, "-m", "deplat", *spec]
            seconds, mib, code, size = run_one(cmd, env, folder, args.timeout)
            print(f"{name:40} {seconds:8.2f} {mib:9.0f} {code!s:>18} {size:13}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
