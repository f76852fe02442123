"""A planned failover loses nothing: the old primary answers healthy, so its writes are stopped,
its data backed up once more, and that final backup restored onto the target. An acknowledged
write made right before `deplat failover --to` is on the new primary."""

from __future__ import annotations

import httpx
import pytest

from deplat.failover import frontdoor
from deplat.failover.backup import backup_site, make_store
from deplat.failover.run import run_failover

pytestmark = pytest.mark.slow


def sign(url: str, message: str) -> None:
    answer = httpx.post(url + "/entries", json={"name": "t", "message": message}, trust_env=False, timeout=5)
    assert answer.status_code == 201  # acknowledged: fsynced by the guestbook before it answers


def test_a_write_acknowledged_just_before_a_planned_failover_is_on_the_new_primary(guestbook) -> None:
    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec = guestbook.spec
    sign(guestbook.url("site-a", ""), "in the periodic backup")
    backup_site(spec, "site-a", make_store(spec))  # the watcher's last periodic backup
    sign(guestbook.url("site-a", ""), "acknowledged after the periodic backup")
    with frontdoor.FrontDoor(spec).start("site-a") as door:
        sign(door.urls[0], "acknowledged right before the failover")
        result = run_failover(spec, guestbook.secrets(), to="site-b")
        entries = [
            e["message"] for e in httpx.get(door.urls[0] + "/entries", trust_env=False, timeout=5).json()
        ]

    assert result.ok and result.planned is True and result.rpo_seconds == 0.0
    assert entries == [
        "in the periodic backup",
        "acknowledged after the periodic backup",
        "acknowledged right before the failover",
    ]
    final = next(s for s in result.steps if s["step"] == "final_backup")["result"]
    assert final["planned"] and final["stopped"] == ["web"]
    with pytest.raises(httpx.TransportError):  # the old primary takes no more writes
        sign(guestbook.url("site-a", ""), "too late")


def test_an_unplanned_failover_says_so_and_restores_the_newest_periodic_backup(guestbook) -> None:
    import time

    guestbook.write()
    guestbook.up("site-a", "site-b")
    spec = guestbook.spec
    sign(guestbook.url("site-a", ""), "backed up")
    backup_site(spec, "site-a", make_store(spec))
    lost_at = time.time()
    result = run_failover(spec, guestbook.secrets(), to="site-b", reference_time=lost_at - 0.001)
    assert result.ok and result.planned is False
    final = next(s for s in result.steps if s["step"] == "final_backup")["result"]
    assert "lost before the failover began" in final["note"]
    assert result.rpo_seconds is not None and 0 <= result.rpo_seconds < 60
