"""The address book: where each site answers, known without calling the site or its provider.

A failover's compare-and-swap needs the OLD site's addresses, and the old site (or its provider's
API) may be gone. So addresses are learnt while a site answers (its driver, when the watcher or a
failover asks it) and kept in ``.deplat/addresses.json``; a local site's address comes from the
spec itself.
"""

from __future__ import annotations

from typing import Any

from deplat.files import read_json, write_json_atomic
from deplat.paths import paths
from deplat.providers import provider_of
from deplat.sites import Addresses
from deplat.spec.model import Spec


def to_dict(addresses: Addresses | None) -> dict[str, list[str]] | None:
    return None if addresses is None else {"ipv4": list(addresses.ipv4), "ipv6": list(addresses.ipv6)}


def from_dict(data: dict[str, Any] | None) -> Addresses | None:
    return None if data is None else Addresses(list(data.get("ipv4", [])), list(data.get("ipv6", [])))


def local_address(spec: Spec, site: str) -> str:
    """A local site's loopback address, from the spec (no driver call)."""
    from deplat.providers.local import address

    return address(spec.site(site), spec)


def remember_addresses(spec: Spec, site: str, addresses: Addresses) -> None:
    """Keep a site's addresses, learnt while it was reachable, for a later switch's CAS."""
    if not addresses:
        return
    path = paths(spec).address_book
    book = _book(spec)
    entry = to_dict(addresses)
    if book.get(site) != entry:
        book[site] = entry
        write_json_atomic(path, book)


def known_addresses(spec: Spec, site: str) -> Addresses | None:
    """A site's addresses with no call to its driver or provider: the spec for local sites, else
    the address book; None when unknown."""
    if provider_of(spec.site(site)).capabilities.runs_locally:
        address = local_address(spec, site)
        return Addresses.of(address)
    return from_dict(_book(spec).get(site))


def _book(spec: Spec) -> dict[str, Any]:
    """The book as saved; a corrupt one is dropped (it is a cache: probes fill it again)."""
    from deplat.errors import FilesystemError

    try:
        book = read_json(paths(spec).address_book, {})
    except FilesystemError:
        return {}
    return book if isinstance(book, dict) else {}
