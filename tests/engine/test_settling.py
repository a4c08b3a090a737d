"""A burst is met in one step up and left in one step down, not chased poll by poll."""

from __future__ import annotations

from taskiq_fleet.engine.types import Behavior
from tests.engine.replay import Replay, make_policy, rules

_UP = rules(("Pods", 1000, 15.0))
_DOWN = rules(("Percent", 100, 15.0), window_s=30.0)


def _policy() -> Replay:
    policy = make_policy(min_replicas=1, behavior=Behavior(scale_up=_UP, scale_down=_DOWN))
    return Replay(policy, replicas=1)


def test_a_burst_arriving_across_polls_is_met_in_one_step_once_it_stops_rising() -> None:
    replay = _policy()
    replay.poll(0, waiting=5)
    first = replay.poll(2, waiting=60)
    assert first.desired == 1
    assert first.reason == "hold: work still rising, scale up within 13s; work 60 / target 10"
    assert first.limited
    assert replay.poll(4, waiting=140).desired == 1
    assert replay.poll(6, waiting=195).desired == 1
    settled = replay.poll(8, waiting=198)
    assert settled.desired == 20
    assert settled.reason == "scale up 1->20: work 198 / target 10"
    assert [d.desired for d in replay.decisions] == [1, 1, 1, 1, 20]


def _rising_by_30_percent_a_poll(replay: Replay) -> list[int]:
    """Replicas over 18 s of work growing 30 % every 2 s poll, from an idle start."""
    replay.poll(0, waiting=0)
    waiting = 20.0
    seen = []
    for at_s in range(2, 20, 2):
        waiting *= 1.3
        seen.append(replay.poll(at_s, waiting=waiting).desired)
    return seen


def test_a_count_that_keeps_rising_waits_no_longer_than_one_scale_up_period() -> None:
    seen = _rising_by_30_percent_a_poll(_policy())
    assert seen[:7] == [1] * 7
    assert seen[7] > 1


def test_a_pool_at_zero_wakes_at_once_even_while_work_rises() -> None:
    replay = Replay(make_policy(behavior=Behavior(scale_up=_UP, scale_down=_DOWN)), replicas=0)
    assert replay.poll(0, waiting=1).desired == 1
    replay.replicas = 0
    assert replay.poll(2, waiting=60).desired == 6


def test_a_draining_burst_steps_down_once_not_in_a_staircase() -> None:
    replay = _policy()
    replay.poll(0, waiting=200)
    assert replay.replicas == 20
    for at_s, work in ((2, 150), (4, 90), (6, 40), (8, 10)):
        replay.poll(at_s, waiting=0, in_flight=work)
    seen = replay.hold_load(start_s=10, end_s=60, every_s=2, waiting=0, in_flight=5)
    assert set(seen) == {20, 1}
    assert seen.index(1) == len([s for s in seen if s == 20])
    waited = next(d for d in replay.decisions if "draining" in d.reason)
    assert waited.reason.startswith("hold: work still draining, scale down within")


def test_the_drain_wait_never_outlasts_one_period_after_the_window() -> None:
    replay = _policy()
    replay.poll(0, waiting=200)
    work = 200.0
    at_s = 0.0
    moved_s = None
    while moved_s is None and at_s < 120:
        at_s += 2
        work *= 0.8
        if replay.poll(at_s, waiting=0, in_flight=work).desired < 20:
            moved_s = at_s
    # The window opens at 30 s; the wait ends 15 s later, at the first poll after that.
    assert moved_s is not None
    assert 30 < moved_s <= 30 + 15 + 2


def test_a_scale_down_never_goes_below_the_windows_highest_recommendation() -> None:
    replay = _policy()
    replay.poll(0, waiting=200)
    replay.poll(20, waiting=0, in_flight=70)
    first_down = next(
        d
        for d in (replay.poll(at_s, waiting=0, in_flight=5) for at_s in range(22, 80, 2))
        if d.desired < 20
    )
    assert first_down.desired == 7


def test_a_long_scale_up_period_delays_a_rising_count_no_longer_than_the_hpas_sync() -> None:
    slow = Behavior(scale_up=rules(("Pods", 100, 120.0)), scale_down=_DOWN)
    seen = _rising_by_30_percent_a_poll(
        Replay(make_policy(min_replicas=1, behavior=slow), replicas=1)
    )
    assert seen[:7] == [1] * 7
    assert seen[7] > 1, "held past the 15 s an HPA takes at most to act"
