"""Surplus maths and the shortfall hysteresis."""

from __future__ import annotations

import math
import random

from hypothesis import given, strategies as st
import pytest

from custom_components.hashgrid.microgrid.surplus import (
    BatteryPolicy,
    ShortfallDetector,
    battery_reservation_w,
    compute_surplus,
)

watts = st.floats(-50_000, 50_000, allow_nan=False)
positive = st.floats(0, 20_000, allow_nan=False)
soc = st.one_of(st.none(), st.floats(0, 100, allow_nan=False))


def test_examples() -> None:
    # battery first below target: the battery takes its share before mining
    s = compute_surplus(
        7000,
        1000,
        policy=BatteryPolicy.BATTERY_FIRST,
        battery_soc_pct=40,
        target_soc_pct=90,
        battery_max_charge_w=5000,
    )
    assert (s.net_w, s.battery_w, s.surplus_w) == (6000, 5000, 1000)
    # small balance: all to the battery, nothing to mine, but no deficit either
    s = compute_surplus(
        2000, 1000, battery_soc_pct=40, target_soc_pct=90, battery_max_charge_w=5000
    )
    assert (s.battery_w, s.surplus_w) == (1000, 0)
    # target reached: mining gets everything
    s = compute_surplus(
        7000, 1000, battery_soc_pct=95, target_soc_pct=90, battery_max_charge_w=5000
    )
    assert s.surplus_w == 6000
    # mining first ignores the SoC
    s = compute_surplus(
        7000,
        1000,
        policy=BatteryPolicy.MINING_FIRST,
        battery_soc_pct=10,
        battery_max_charge_w=5000,
    )
    assert s.surplus_w == 6000
    # deficit stays a deficit
    s = compute_surplus(500, 1500, battery_soc_pct=10, battery_max_charge_w=5000)
    assert (s.battery_w, s.surplus_w) == (0, -1000)
    assert BatteryPolicy("mining_first") is BatteryPolicy.MINING_FIRST


def test_unknown_soc_is_treated_as_needing_charge() -> None:
    assert battery_reservation_w(BatteryPolicy.BATTERY_FIRST, None, 80, 3000) == 3000


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        compute_surplus(bad, 0)
    with pytest.raises(ValueError):
        compute_surplus(0, 0, battery_soc_pct=bad)


@given(gen=positive, load=positive, soc=soc, target=st.floats(0, 100), max_chg=positive)
def test_surplus_properties(
    gen: float, load: float, soc: float | None, target: float, max_chg: float
) -> None:
    bf = compute_surplus(
        gen,
        load,
        policy=BatteryPolicy.BATTERY_FIRST,
        battery_soc_pct=soc,
        target_soc_pct=target,
        battery_max_charge_w=max_chg,
    )
    mf = compute_surplus(
        gen,
        load,
        policy=BatteryPolicy.MINING_FIRST,
        battery_soc_pct=soc,
        target_soc_pct=target,
        battery_max_charge_w=max_chg,
    )
    for s in (bf, mf):
        assert 0 <= s.battery_w <= max_chg
        assert s.battery_w <= max(s.net_w, 0)
        assert s.surplus_w + s.battery_w == pytest.approx(s.net_w, abs=1e-6)
        assert s.ac_limited_w == 0
        assert s.surplus_w <= s.net_w
        if s.net_w < 0:
            assert s.surplus_w == s.net_w  # the battery never creates a deficit
        else:
            assert s.surplus_w >= 0
    assert bf.surplus_w <= mf.surplus_w
    assert mf.battery_w == 0
    if soc is not None and soc >= target:
        assert bf == mf


@given(load=positive, max_chg=positive, a=positive, b=positive)
def test_surplus_is_monotonic_in_generation(
    load: float, max_chg: float, a: float, b: float
) -> None:
    lo, hi = sorted((a, b))
    s_lo = compute_surplus(lo, load, battery_soc_pct=10, battery_max_charge_w=max_chg)
    s_hi = compute_surplus(hi, load, battery_soc_pct=10, battery_max_charge_w=max_chg)
    assert s_hi.surplus_w >= s_lo.surplus_w - 1e-9


# ------------------------------------------------------------------ shortfall


def test_shortfall_needs_the_condition_to_last() -> None:
    d = ShortfallDetector(0, on_delay_s=60, off_delay_s=120, hysteresis_w=200)
    assert not d.update(-100, 0)
    assert not d.update(-100, 59)
    assert d.update(-100, 60)
    assert d.changed_at == 60
    # above the threshold but inside the hysteresis band: stays on
    assert d.update(150, 100)
    assert d.update(150, 1000)
    assert d.update(250, 1001)
    assert d.update(250, 1120)
    assert not d.update(250, 1121)
    # a single good sample restarts the on-wait
    assert not d.update(-1, 1200)
    assert not d.update(5, 1250)
    assert not d.update(-1, 1300)
    assert not d.update(-1, 1359)
    assert d.update(-1, 1360)


def test_noise_around_the_threshold_does_not_flap() -> None:
    """Noise never flips the flag; a real shortfall and recovery flip it once each.

    While on, a surplus above the threshold but inside the hysteresis band keeps
    it on (a detector without the band turns off there); a detector that never
    turns on fails here.
    """
    rng = random.Random(1)
    d = ShortfallDetector(0, on_delay_s=30, off_delay_s=30, hysteresis_w=100)
    no_band = ShortfallDetector(0, on_delay_s=30, off_delay_s=30)
    changes: list[tuple[float, bool]] = []
    now = 0

    def run(seconds: int, low: float, high: float) -> None:
        """One sample a second, uniformly between ``low`` and ``high`` W."""
        nonlocal now
        for _ in range(seconds):
            surplus = rng.uniform(low, high)
            before = d.active
            if d.update(surplus, now) != before:
                changes.append((now, d.active))
            no_band.update(surplus, now)
            now += 1

    run(5_000, -400, 400)  # noise around the threshold: stays off
    assert changes == []
    run(60, -400, -1)  # a real shortfall: on once it has lasted 30 s
    assert len(changes) == 1
    on_at, on = changes[0]
    assert on
    assert 5_000 <= on_at <= 5_030
    run(5_000, -400, 400)  # noise again: stays on
    run(600, 1, 99)  # above the threshold, inside the band: stays on
    assert changes == [(on_at, True)]
    assert d.active
    assert not no_band.active  # without the band this surplus ends the shortfall
    run(60, 100, 400)  # recovered past the band: off once it has lasted 30 s
    assert changes == [(on_at, True), (10_690, False)]
    assert d.changed_at == 10_690


def test_time_must_not_go_backwards() -> None:
    d = ShortfallDetector()
    d.update(0, 10)
    with pytest.raises(ValueError):
        d.update(0, 9)
    d.reset()
    d.update(0, 0)  # fine after reset
    with pytest.raises(ValueError):
        ShortfallDetector(on_delay_s=-1)


def test_nan_sample_keeps_state_and_restarts_wait() -> None:
    d = ShortfallDetector(0, on_delay_s=10, off_delay_s=10)
    d.update(-5, 0)
    d.update(math.nan, 5)
    assert not d.update(-5, 10)  # the wait restarted at 10
    assert d.update(-5, 20)


@given(
    samples=st.lists(
        st.tuples(
            st.floats(0, 50, allow_nan=False), st.floats(-2000, 2000, allow_nan=False)
        ),
        max_size=300,
    ),
    on_delay=st.floats(0, 100),
    off_delay=st.floats(0, 100),
    hysteresis=st.floats(0, 500),
)
def test_changes_are_separated_by_the_delays(
    samples: list[tuple[float, float]],
    on_delay: float,
    off_delay: float,
    hysteresis: float,
) -> None:
    d = ShortfallDetector(
        0, on_delay_s=on_delay, off_delay_s=off_delay, hysteresis_w=hysteresis
    )
    now = 0.0
    last_change = 0.0
    state = False
    below_since: float | None = None
    for dt, surplus in samples:
        now += dt
        below_since = (
            (below_since if below_since is not None else now) if surplus < 0 else None
        )
        new = d.update(surplus, now)
        if new != state:
            delay = on_delay if new else off_delay
            assert now - last_change >= delay
            if new:
                assert surplus < 0
                assert below_since is not None
                assert now - below_since >= on_delay
            else:
                assert surplus >= hysteresis
            last_change = now
            state = new


def test_an_inverter_serves_ac_loads_up_to_its_rating() -> None:
    """8 kW of PV on a 6 kW hybrid inverter, 0.8 kW of house load, the battery
    full: the miners can take 5.2 kW, not 7.2 kW (the rest would come from
    the grid: the demo's miners drew 1.6 kW from it at noon)."""
    s = compute_surplus(8000, 800, battery_soc_pct=100, ac_headroom_w=6000 - 800)
    assert (s.surplus_w, s.ac_limited_w, s.battery_w) == (5200, 2000, 0)
    # Charging below the target SoC, the battery takes the DC side first.
    s = compute_surplus(
        8000,
        800,
        battery_soc_pct=50,
        target_soc_pct=80,
        battery_max_charge_w=5000,
        ac_headroom_w=5200,
    )
    assert (s.surplus_w, s.battery_w, s.ac_limited_w) == (2200, 5000, 0)
    # Above its rating the inverter already imports: any more load is a deficit.
    s = compute_surplus(8000, 6500, battery_soc_pct=100, ac_headroom_w=-500)
    assert s.surplus_w == -500


@given(
    gen=positive,
    load=positive,
    soc=soc,
    max_chg=positive,
    headroom=st.floats(-1e5, 1e5),
)
def test_the_ac_rating_only_lowers_the_surplus(
    gen: float, load: float, soc: float | None, max_chg: float, headroom: float
) -> None:
    free = compute_surplus(gen, load, battery_soc_pct=soc, battery_max_charge_w=max_chg)
    rated = compute_surplus(
        gen,
        load,
        battery_soc_pct=soc,
        battery_max_charge_w=max_chg,
        ac_headroom_w=headroom,
    )
    assert rated.surplus_w == pytest.approx(min(free.surplus_w, headroom))
    assert rated.battery_w == free.battery_w
    assert rated.surplus_w + rated.battery_w + rated.ac_limited_w == pytest.approx(
        rated.net_w, abs=1e-6
    )
