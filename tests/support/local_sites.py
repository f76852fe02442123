"""Local sites in tests: the guestbook copied into a temp dir, on free loopback addresses and ports."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path
from typing import Any

import yaml

from deplat.local import sitestate
from deplat.local.driver import LocalDriver
from deplat.paths import local_site_dir
from deplat.secrets import SecretStore
from deplat.spec.loader import load_spec
from deplat.spec.model import Spec

GUESTBOOK = Path(__file__).resolve().parents[2] / "examples" / "guestbook"


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_addresses(count: int) -> list[str]:
    """``count`` loopback addresses in a random corner of 127/8 (127.0.0.x is left to humans)."""
    base = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    first = random.randint(2, 250 - count)
    return [f"{base}.{first + i}" for i in range(count)]


def loopback_address() -> str:
    """One loopback address in a random corner of 127/8, so that parallel tests never collide."""
    return free_addresses(1)[0]


def free_port(hosts: list[str]) -> int:
    """A port free on every one of ``hosts``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if all(_bindable(h, port) for h in hosts):
            return port
    raise RuntimeError("no free port")


class Guestbook:
    """A copy of the guestbook example in a temp dir, with a driver for its local sites."""

    def __init__(self, root: Path, data: dict[str, Any], environ: dict[str, str] | None = None) -> None:
        self.root = root
        self.data = data
        self.environ = environ
        self.spec_path = root / "deplat.yaml"
        self.spec: Spec
        self.driver: LocalDriver
        self.write()

    def write(self, **driver_options: Any) -> None:
        self.spec_path.write_text(yaml.safe_dump(self.data, sort_keys=False), encoding="utf-8")
        self.spec = load_spec(self.spec_path)
        secrets = SecretStore(self.spec, environ=self.environ if self.environ is not None else os.environ)
        self.driver = LocalDriver(self.spec, secrets, **driver_options)

    @property
    def sites(self) -> list[Any]:
        return list(self.spec.sites)

    def site_dir(self, name: str) -> Path:
        return local_site_dir(self.spec, name)

    def url(self, site: str, path: str = "/", service: str = "web") -> str:
        sites = {s["name"]: s for s in self.data["sites"]}
        port = self.data["services"][service]["ports"][0]["port"]
        return f"http://{sites[site]['options']['address']}:{port}{path}"

    def pids(self) -> list[tuple[int, str | None]]:
        """Every process any site's state names (supervisors and services)."""
        found: list[tuple[int, str | None]] = []
        for site in self.data["sites"]:
            site_dir = self.site_dir(site["name"])
            state = sitestate.read_state(site_dir) or {}
            sup = state.get("supervisor") or {}
            if sup.get("pid"):
                found.append((sup["pid"], sup.get("identity")))
            for svc in state.get("services", {}).values():
                if svc.get("pid"):
                    found.append((svc["pid"], svc.get("identity")))
        return found


def guestbook_data(sites: int, port: int, addresses: list[str]) -> dict[str, Any]:
    """The example's spec with ``sites`` local sites (at least two: a spec needs a standby)."""
    data = yaml.safe_load((GUESTBOOK / "deplat.yaml").read_text(encoding="utf-8"))
    web = data["services"]["web"]
    web["ports"][0]["port"] = port
    web["health"]["port"] = port
    roles = ["primary", "warm", "cold"]
    data["sites"] = [
        {
            "name": f"local-{chr(ord('a') + i)}",
            "provider": "local",
            "role": roles[min(i, 2)],
            "options": {"address": addresses[i]},
        }
        for i in range(max(sites, 2))
    ]
    return data
