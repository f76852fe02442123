"""Hysteresis: states change only after runs of agreeing probes; random 10% failures never go down."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deplat.failover.hysteresis import Hysteresis
from deplat.failover.probe import Health, SiteProbe

H, D, DOWN, S = Health.healthy, Health.degraded, Health.down, Health.suspended


def probe(health: Health, site: str = "a") -> SiteProbe:
    return SiteProbe(site=site, health=health, checks=[], control_plane=None, at=0.0, seconds=0.0)


def states(h: Hysteresis, seq: list[Health], site: str = "a") -> list[str]:
    return [h.observe(probe(x, site)).state for x in seq]


def test_three_failures_in_a_row_go_down_and_two_successes_come_back() -> None:
    h = Hysteresis(3, 2)
    assert states(h, [H, H, DOWN, DOWN]) == ["unknown", "up", "up", "up"]
    verdict = h.observe(probe(DOWN))
    assert (verdict.state, verdict.changed, verdict.failures) == ("down", True, 3)
    assert h.observe(probe(DOWN)).changed is False
    assert states(h, [H]) == ["down"]
    verdict = h.observe(probe(H))
    assert (verdict.state, verdict.changed, verdict.successes) == ("up", True, 2)


def test_one_healthy_probe_breaks_a_run_of_failures() -> None:
    h = Hysteresis(3, 2)
    assert states(h, [H, H, DOWN, DOWN, H, DOWN, DOWN, H]) == [
        "unknown",
        "up",
        "up",
        "up",
        "up",
        "up",
        "up",
        "up",
    ]


def test_degraded_is_reported_but_never_counts_as_a_failure() -> None:
    h = Hysteresis(2, 1)
    verdicts = [h.observe(probe(x)) for x in [H, D, D, D, D, DOWN, D, DOWN]]
    assert {v.state for v in verdicts} == {"up"}
    assert [v.last for v in verdicts][:3] == [H, D, D]
    assert all(v.failures <= 1 for v in verdicts)


def test_suspended_needs_a_full_run_like_down() -> None:
    h = Hysteresis(3, 2)
    assert states(h, [H, H, S, H, S, S, H]) == ["unknown"] + ["up"] * 6
    assert states(h, [S, DOWN, DOWN]) == ["up", "up", "suspended"]


def test_a_suspension_page_then_silence_is_still_suspended() -> None:
    h = Hysteresis(3, 1)
    assert states(h, [H, S, DOWN, DOWN, DOWN]) == ["up", "up", "up", "suspended", "suspended"]


def test_down_escalates_to_suspended_when_the_run_shows_a_suspension() -> None:
    h = Hysteresis(2, 1)
    assert states(h, [H, DOWN, DOWN]) == ["up", "up", "down"]
    verdict = h.observe(probe(S))
    assert (verdict.state, verdict.changed) == ("suspended", True)


def test_sites_are_tracked_separately_and_can_be_reset() -> None:
    h = Hysteresis(2, 1)
    h.observe(probe(DOWN, "a"))
    h.observe(probe(DOWN, "b"))
    assert h.observe(probe(DOWN, "a")).state == "down"
    assert h.state("b") == "unknown"
    h.reset("a")
    assert h.state("a") == "unknown"


def test_thresholds_below_one_are_refused() -> None:
    with pytest.raises(ValueError):
        Hysteresis(0, 1)


def longest_failure_run(seq: list[Health]) -> int:
    best = run = 0
    for x in seq:
        run = run + 1 if x in (DOWN, S) else 0
        best = max(best, run)
    return best


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    seq=st.lists(st.sampled_from([H, D, DOWN, S]), max_size=60),
    n=st.integers(1, 5),
    m=st.integers(1, 5),
)
def test_state_flips_only_after_the_required_run(seq: list[Health], n: int, m: int) -> None:
    h = Hysteresis(n, m)
    previous = "unknown"
    for i, x in enumerate(seq):
        verdict = h.observe(probe(x))
        assert verdict.changed == (verdict.state != previous)
        if (
            verdict.changed
            and verdict.state in ("down", "suspended")
            and previous not in ("down", "suspended")
        ):
            assert i + 1 >= n and all(y in (DOWN, S) for y in seq[i + 1 - n : i + 1])
        if verdict.changed and verdict.state == "up":
            assert i + 1 >= m and all(y is H for y in seq[i + 1 - m : i + 1])
        if verdict.state == "suspended":
            assert S in seq[: i + 1]
        previous = verdict.state
    went_down = any(s in ("down", "suspended") for s in states(Hysteresis(n, m), seq))
    assert went_down == (longest_failure_run(seq) >= n)


def random_probes(seed: int, count: int = 300, failure_rate: float = 0.1) -> list[Health]:
    rng = random.Random(seed)
    return [DOWN if rng.random() < failure_rate else H for _ in range(count)]


@pytest.mark.parametrize("seed", range(40))
def test_random_ten_percent_failures_go_down_exactly_when_three_fail_in_a_row(seed: int) -> None:
    """Over 300 probes at 10% failures a run of 3 happens with probability ~0.24, so no fixed
    expectation is honest: the test asserts the rule for each seeded sequence instead."""
    seq = random_probes(seed)
    h = Hysteresis(3, 2)
    first_down = next((i for i, s in enumerate(states(h, seq)) if s == "down"), None)
    run = longest_failure_run(seq)
    if run < 3:
        assert first_down is None
    else:
        assert first_down is not None and seq[first_down - 2 : first_down + 1] == [DOWN] * 3
        assert longest_failure_run(seq[:first_down]) < 3


def test_a_seeded_ten_percent_sequence_without_three_in_a_row_never_goes_down() -> None:
    seeds = [s for s in range(100) if longest_failure_run(random_probes(s)) < 3]
    assert len(seeds) > 50  # most 300-probe sequences have no run of 3 at 10%
    for seed in seeds:
        seq = random_probes(seed)
        assert sum(x is DOWN for x in seq) >= 15  # plenty of failures, just never three in a row
        assert "down" not in states(Hysteresis(3, 2), seq)
