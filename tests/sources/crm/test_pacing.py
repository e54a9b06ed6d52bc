"""Pacing requests to what a rate-limited CRM allows: on a clock the test moves."""

from __future__ import annotations

import pytest

from crm_assets.sources.crm.pacing import DECREASE, HOLD, MIN_RATE, RequestPacer
from crm_sandbox.ratelimit import TokenBucket


class Clock:
    """A clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def pacer_on(clock: Clock) -> RequestPacer:
    return RequestPacer(clock=clock, sleep=clock.sleep, wall_clock=lambda: 1_800_000_000.0)


def test_nothing_is_paced_until_the_crm_refuses(clock: Clock) -> None:
    pacer = pacer_on(clock)

    for _ in range(100):
        pacer.wait_turn()
        pacer.observe(200, {})

    assert clock.slept == [] and pacer.rate is None


def test_a_refusal_pauses_every_request_for_its_retry_after(clock: Clock) -> None:
    pacer = pacer_on(clock)
    for _ in range(10):
        pacer.observe(200, {})

    pacer.observe(429, {"Retry-After": "3"})
    pacer.wait_turn()

    assert clock.slept == [3.0]
    assert pacer.ceiling == 10 and pacer.rate == pytest.approx(10 * DECREASE)


def test_the_pace_spaces_requests_and_a_second_refusal_measures_the_refill_rate(
    clock: Clock,
) -> None:
    pacer = pacer_on(clock)
    for _ in range(20):
        pacer.observe(200, {})
    pacer.observe(429, {})
    pacer.wait_turn()
    clock.slept.clear()

    for _ in range(30):
        pacer.wait_turn()
        pacer.observe(200, {})
    assert len(clock.slept) == 30 and min(clock.slept) >= 1 / 20, "spaced at under 20 a second"
    clock.now += 4.0 - sum(clock.slept)  # 30 admitted in the 5 s since the first refusal
    pacer.observe(429, {"Retry-After": "1"})

    assert pacer.ceiling == pytest.approx(30 / 5.0)
    assert pacer.rate == pytest.approx(6.0 * DECREASE)


def test_refusals_within_one_pause_slow_the_pace_once(clock: Clock) -> None:
    pacer = pacer_on(clock)
    for _ in range(10):
        pacer.observe(200, {})
    pacer.observe(429, {"Retry-After": "2"})
    rate = pacer.rate

    for _ in range(5):
        pacer.observe(429, {"Retry-After": "2"})

    assert pacer.rate == rate and pacer.refused == 6


def test_the_pace_climbs_back_to_just_under_the_ceiling_then_probes_beyond(
    clock: Clock,
) -> None:
    pacer = pacer_on(clock)
    for _ in range(10):
        pacer.observe(200, {})
    pacer.observe(429, {"Retry-After": "1"})
    rates = []
    for _ in range(600):
        pacer.wait_turn()
        pacer.observe(200, {})
        rates.append(pacer.rate)

    assert rates[0] == pytest.approx(10 * DECREASE)
    assert max(rates[:40]) == pytest.approx(10 * HOLD, rel=0.02)
    assert rates == sorted(rates), "the pace only grows while nothing is refused"
    assert rates[-1] > 10 * HOLD * 1.2, "a raised cap is found again"


def test_the_pace_never_falls_below_its_floor(clock: Clock) -> None:
    pacer = pacer_on(clock)
    pacer.observe(200, {})
    pacer.observe(429, {})
    clock.now += 100.0
    pacer.observe(200, {})
    pacer.observe(429, {})  # one admitted in 100 s

    assert pacer.rate == MIN_RATE


def test_a_refusal_before_anything_was_admitted_pauses_without_pacing(clock: Clock) -> None:
    pacer = pacer_on(clock)
    pacer.observe(429, {"Retry-After": "2"})

    for _ in range(3):
        pacer.wait_turn()
        pacer.observe(200, {})

    assert clock.slept == [2.0] and pacer.rate is None and pacer.refused == 1


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "2"}, 2.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1800000005"}, 5.0),
        ({"RateLimit-Remaining": "3", "RateLimit-Reset": "2"}, 0.0),
    ],
)
def test_a_crm_saying_its_quota_is_used_up_is_waited_for_without_a_refusal(
    clock: Clock, headers: dict[str, str], pause: float
) -> None:
    pacer = pacer_on(clock)

    pacer.observe(200, headers)
    pacer.wait_turn()

    assert sum(clock.slept) == pause and pacer.refused == 0


def test_the_sandbox_bucket_refuses_beyond_its_rate_with_whole_seconds_to_wait(
    clock: Clock,
) -> None:
    bucket = TokenBucket(rate=2.0, clock=clock)

    assert [bucket.take() for _ in range(3)] == [None, None, 1]
    assert bucket.headers() == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
    }
    clock.now += 0.5
    assert bucket.take() is None
    assert bucket.take() == 1
