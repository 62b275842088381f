"""The planner with discrete work modes as power steps (Avalon low/medium/high).

A miner whose only power targets are its work modes runs at exactly one of the
mode powers within its limits, never a power between two modes; the highest
mode that fits, the rest of the headroom left to the others.
"""

from __future__ import annotations

import math

from homeassistant.core import HomeAssistant
from hypothesis import given, settings, strategies as st

from custom_components.hashgrid.const import DOMAIN
from custom_components.hashgrid.mining.planner import (
    MinerState,
    plan_curtailment,
    with_user_limits,
)
from simulators.miner import running_fleet
from tests.net import addr

from .conftest import TIME_SCALE, miner_subentry, setup_site
from .test_planner import apply

NANO = (70.0, 100.0, 140.0)
Q = (800.0, 1300.0, 1674.0)


def avalon(miner_id: str, steps: tuple[float, ...], **kwargs: object) -> MinerState:
    """A mining Avalon at its highest mode (soft off/on, modes as targets)."""
    fields: dict = {
        "miner_id": miner_id,
        "reachable": True,
        "mining": True,
        "power_w": steps[-1],
        "max_power_w": steps[-1],
        "min_power_w": steps[0],
        "can_stop": True,
        "can_set_power": True,
        "idle_power_w": 6.0,
        "power_target_w": steps[-1],
        "steps_w": steps,
        **kwargs,
    }
    return MinerState(**fields)


def test_a_budget_between_two_modes_takes_the_lower() -> None:
    plan = plan_curtailment([avalon("q", Q)], 1000.0)
    assert plan.per_miner["q"] == 800.0  # not 1000 W: no mode draws that
    assert [(c.action, c.power_w) for c in plan.commands] == [("set_power", 800.0)]


def test_headroom_a_mode_leaves_goes_to_the_next_miner() -> None:
    q = avalon("q", Q, priority=2)
    nano = avalon("nano", NANO, priority=1)
    plan = plan_curtailment([q, nano], 1420.0)
    # Q: 1300 (1674 does not fit); the Nano gets the 120 W left: its 100 W mode.
    assert (plan.per_miner["q"], plan.per_miner["nano"]) == (1300.0, 100.0)


def test_user_limits_drop_the_modes_outside_them() -> None:
    q = with_user_limits(avalon("q", Q), None, 1500.0)
    assert q.levels_w == (800.0, 1300.0)
    assert plan_curtailment([q], math.inf).per_miner["q"] == 1300.0
    # A maximum below the lowest mode: the lowest mode is all it can run at.
    assert with_user_limits(avalon("q", Q), None, 500.0).levels_w == (800.0,)


@st.composite
def stepped_sites(draw: st.DrawFn) -> tuple[list[MinerState], float]:
    """Avalons (some with other step tables), some mining, and a budget."""
    miners = []
    for i in range(draw(st.integers(1, 6))):
        steps = tuple(
            sorted(
                draw(st.sets(st.integers(20, 3000).map(float), min_size=1, max_size=4))
            )
        )
        mining = draw(st.booleans())
        level = draw(st.sampled_from(steps))
        miners.append(
            avalon(
                f"a{i}",
                steps,
                mining=mining,
                power_w=level if mining else 6.0,
                power_target_w=level if mining else None,
                priority=draw(st.integers(0, 2)),
                idle_power_w=draw(st.floats(0.0, 15.0)),
            )
        )
    budget = draw(st.floats(-10.0, 12000.0) | st.just(math.inf))
    return miners, budget


@settings(max_examples=300, deadline=None)
@given(stepped_sites())
def test_modes_are_steps_never_a_power_between(
    site: tuple[list[MinerState], float],
) -> None:
    miners, budget = site
    plan = plan_curtailment(miners, budget)
    total = plan.total_power_w
    for m in miners:
        level = plan.per_miner[m.miner_id]
        if m.miner_id in plan.running:
            assert level in m.levels_w  # exactly one of the mode powers
            higher = [s for s in m.levels_w if s > level]
            if higher:  # the next mode up would not fit
                assert total - level + higher[0] > max(budget, 0.0)
        else:
            assert level == m.idle_power_w
    for c in plan.commands:
        if c.power_w is not None:
            assert (
                c.power_w
                in next(m for m in miners if m.miner_id == c.miner_id).levels_w
            )
    if any(m.miner_id in plan.running for m in miners) or not miners:
        assert plan.fits
    # Carried out, the same budget asks for nothing more.
    assert plan_curtailment(apply(miners, plan), budget).commands == ()


async def test_site_plans_avalon_modes_in_home_assistant(
    hass: HomeAssistant, loopback: None
) -> None:
    """A limit between two modes: each Avalon is sent to one of its modes."""
    async with running_fleet(
        2, addr("2.171"), ("avalon_q", "avalon_nano3s"), time_scale=TIME_SCALE
    ) as home:
        q, nano = home.miners
        entry = await setup_site(
            hass,
            [
                await miner_subentry(q.ip, priority=60),
                await miner_subentry(nano.ip, priority=50),
            ],
            "Home",
        )
        response = await hass.services.async_call(
            DOMAIN,
            "set_limit",
            {"config_entry_id": entry.entry_id, "source": "manual", "power_kw": 1.42},
            blocking=True,
            return_response=True,
        )
        # The Q's 1300 W mode, the Nano's 100 W mode: 1400 W planned and drawn
        # (a target between modes would plan 1350 + 70 and draw 1300 + 70).
        assert (q.power_target_w, nano.power_target_w) == (1300, 100)
        assert response["planned_power_w"] == 1400
        assert all(m["success"] for m in response["miners"])
        assert await hass.config_entries.async_unload(entry.entry_id)
