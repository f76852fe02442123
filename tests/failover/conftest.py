"""Fixtures for the failover tests: the guestbook on local sites of a fresh loopback /24, a BIND.

Every spec lands in its own tmp dir with its own addresses (127.X.Y.11-13, front door .10) and a
free port, so tests never collide with each other or with a guestbook someone runs by hand. Every
site a test stands up is destroyed at the end.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.bind import bind_factory, bind_server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = ROOT / "examples" / "guestbook"
# The guestbook's own drill check (examples/guestbook/drill_check.py), as its deplat.yaml declares it.
GUESTBOOK_DRILL = {
    "write": ["python3", str(GUESTBOOK / "drill_check.py"), "write", "{url}", "{host}", "{token}"],
    "check": ["python3", str(GUESTBOOK / "drill_check.py"), "check", "{url}", "{host}", "{token}"],
}


def free_tcp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def guestbook_doc(
    net: str,
    port: int,
    *,
    roles: tuple[str, ...] = ("primary", "warm", "cold"),
    interval: float = 0.25,
    timeout: float = 0.5,
    failures: int = 3,
    successes: int = 2,
    backups: float = 0.5,
    min_interval: float = 0.0,
    auto: bool = True,
    dns: list[dict[str, Any]] | None = None,
    drill: dict[str, Any] | None = None,
    ttl: int = 60,
) -> dict[str, Any]:
    sites = [
        {
            "name": f"site-{chr(97 + i)}",
            "provider": "local",
            "role": role,
            "options": {"address": f"{net}.{11 + i}"},
        }
        for i, role in enumerate(roles)
    ]
    return {
        "version": 1,
        "app": "guestbook",
        "services": {
            "web": {
                "image": "ghcr.io/deplat/guestbook:1.0",
                "ports": [{"port": port, "public": True}],
                "volumes": [{"name": "data", "path": "/data", "size": 1}],
                "health": {"port": port, "path": "/healthz", "expect": 200, "timeout": timeout},
                "local": {
                    "command": [
                        "python3",
                        "app.py",
                        "--host",
                        "{host}",
                        "--port",
                        "{port}",
                        "--data",
                        "{data_dir}",
                        "--site",
                        "{site}",
                    ],
                    "cwd": str(GUESTBOOK),
                },
            }
        },
        "domain": {"zone": "guestbook.test", "names": ["guestbook.test", "www.guestbook.test"], "ttl": ttl},
        "sites": sites,
        "dns": dns or [],
        "failover": {
            "probe_interval": interval,
            "timeout": timeout,
            "failures_to_down": failures,
            "successes_to_up": successes,
            "auto": auto,
            "min_interval": min_interval,
        },
        "backups": {"interval": backups, "keep": 20},
        **({"drill": drill} if drill is not None else {}),
    }


class Guestbook:
    """A guestbook spec in a tmp dir, and the sites it stood up (destroyed at teardown)."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "app"
        self.dir.mkdir(exist_ok=True)
        self.net = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}"
        self.port = free_tcp_port(f"{self.net}.11")
        self.path = self.dir / "deplat.yaml"
        self.env: dict[str, str] = {}
        self._spec = None

    def write(self, **kwargs: Any) -> Path:
        self.path.write_text(yaml.safe_dump(guestbook_doc(self.net, self.port, **kwargs)), encoding="utf-8")
        self._spec = None
        return self.path

    @property
    def spec(self) -> Any:
        from deplat.spec import load_spec

        if self._spec is None:
            self._spec = load_spec(self.path)
        return self._spec

    def secrets(self) -> Any:
        from deplat.secrets import SecretStore

        return SecretStore(self.spec, environ={**os.environ, **self.env})

    def address(self, site: str) -> str:
        from deplat.providers.local import address

        return address(self.spec.site(site), self.spec)

    def url(self, site: str, path: str = "/healthz") -> str:
        return f"http://{self.address(site)}:{self.port}{path}"

    def up(self, *sites: str) -> None:
        from deplat.local.driver import LocalDriver

        driver = LocalDriver(self.spec, self.secrets())
        for name in sites:
            result = driver.up(self.spec.site(name))
            assert result.ok, result.error

    def destroy_all(self) -> None:
        from deplat.failover import frontdoor_process
        from deplat.local.driver import LocalDriver

        if not self.path.exists():
            return
        frontdoor_process.stop(self.spec)
        driver = LocalDriver(self.spec, self.secrets())
        for site in self.spec.sites:
            driver.destroy(site)


@pytest.fixture
def guestbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guestbook]:
    book = Guestbook(tmp_path)
    monkeypatch.delenv("DEPLAT_FRONT_DOOR", raising=False)
    try:
        yield book
    finally:
        book.destroy_all()


@pytest.fixture
def recording_driver() -> Callable[..., Any]:
    """``recording_driver(real_factory, failing={"site-a"})``: a driver factory whose drivers for the
    ``failing`` sites raise on every call and record it (a provider that refuses everything)."""

    class Refusing:
        def __init__(self, site: str, calls: list[tuple[str, str]], real: Any) -> None:
            self.site, self.calls, self.real = site, calls, real

        def archive_state(self, site: Any, dest: Any) -> Any:
            # reads deplat's own files (local state, the Pulumi state backend), never the provider
            return self.real.archive_state(site, dest)

        def __getattr__(self, name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                self.calls.append((self.site, name))
                raise RuntimeError(f"AccountSuspended: {name} refused for {self.site}")

            return call

    def make(
        real: Callable[[Any], Any], failing: set[str]
    ) -> tuple[Callable[[Any], Any], list[tuple[str, str]]]:
        calls: list[tuple[str, str]] = []

        def factory(site: Any) -> Any:
            return Refusing(site.name, calls, real(site)) if site.name in failing else real(site)

        return factory, calls

    return make
