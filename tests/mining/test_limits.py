"""The site's limits (pure logic): composed, expiring, stored, restored."""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.hashgrid.mining.efficiency import TYPICAL_J_PER_TH, j_per_th
from custom_components.hashgrid.mining.limits import (
    BINDING_CUSTOM,
    BINDING_FLEET,
    KNOWN_SOURCES,
    Limit,
    SiteLimits,
    valid_source,
)
from custom_components.hashgrid.mining.planner import (
    MinerState,
    plan_curtailment,
)


def test_smallest_active_limit_binds() -> None:
    """The budget is the smallest limit; clearing it gives the next, not inf."""
    limits = SiteLimits()
    limits.set("solar", 4000)
    limits.set("demand_response", 0)
    limits.set("price", 6000)
    budget = limits.effective(0, fleet_max_w=9000)
    assert (budget.power_w, budget.binding) == (0, "demand_response")
    limits.clear("demand_response")
    budget = limits.effective(0, fleet_max_w=9000)
    assert (budget.power_w, budget.binding) == (4000, "solar")
    limits.clear("solar")
    assert limits.effective(0, fleet_max_w=9000).binding == "price"
    limits.clear("price")
    budget = limits.effective(0, fleet_max_w=9000)
    assert (budget.power_w, budget.binding, budget.limited) == (
        9000,
        BINDING_FLEET,
        False,
    )
    # A limit above what the fleet can draw does not bind.
    limits.set("manual", 20000)
    assert limits.effective(0, fleet_max_w=9000).binding == BINDING_FLEET
    assert math.isinf(SiteLimits().effective(0).power_w)


def test_expiry() -> None:
    """An expired limit holds no more; the next expiry is told."""
    limits = SiteLimits()
    limits.set("manual", 0, expires_at=100)
    limits.set("solar", 3000, expires_at=50)
    assert limits.next_expiry() == 50
    assert limits.effective(10).binding == "manual"
    assert [lim.source for lim in limits.expire(60)] == ["solar"]
    assert limits.effective(99).power_w == 0
    assert limits.effective(100).binding == BINDING_FLEET
    assert limits.next_expiry() == 100


def test_user_named_source_and_validation() -> None:
    """A user's own name is a source (bound as `custom`); junk is refused."""
    assert valid_source(" Heat Pump ") == "heat_pump"
    assert valid_source("x" * 33) is None
    assert valid_source("drop; table") is None
    assert valid_source(None) is None
    limits = SiteLimits()
    limits.set("heat_pump", 1500)
    budget = limits.effective(0)
    assert (budget.binding, budget.binding_option) == ("heat_pump", BINDING_CUSTOM)
    for bad in (-1, math.nan, math.inf, 2e9):
        with pytest.raises(ValueError):
            limits.set("manual", bad)
    with pytest.raises(ValueError):
        Limit("Bad Name", 1)


def test_stored_limits_survive_junk() -> None:
    """What is stored comes back; junk entries are skipped, not fatal."""
    limits = SiteLimits()
    limits.set("demand_response", 0, expires_at=123.5)
    limits.set("solar", 2500)
    again = SiteLimits.from_dict(limits.as_dict())
    assert again.as_dict() == limits.as_dict()
    junk = {
        "limits": [
            {"source": "solar", "power_w": "nan"},
            {"source": "BAD", "power_w": 1},
            {"source": "price", "power_w": None},
            "nonsense",
            {"source": "battery", "power_w": 100, "expires_at": "x"},
            {"source": "manual", "power_w": 700},
        ]
    }
    assert [lim.source for lim in SiteLimits.from_dict(junk).active(0)] == ["manual"]
    assert len(SiteLimits.from_dict(None)) == 0
    assert len(SiteLimits.from_dict({"limits": "x"})) == 0


SOURCES = st.sampled_from([*KNOWN_SOURCES, "heat_pump"])
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            SOURCES,
            st.floats(0, 20000, allow_nan=False),
            st.one_of(st.none(), st.floats(1, 500)),
        ),
        st.tuples(st.just("clear"), SOURCES),
        st.tuples(st.just("tick"), st.floats(0, 200)),
        st.tuples(st.just("restart")),
    ),
    max_size=40,
)
FLEET = [
    MinerState("lux", True, True, 3000, 3300, 10, True, True, 1000),
    MinerState("ant", True, True, 3250, 3250, 50, True, False),
    MinerState("s9", True, False, 15, 1400, 90, True, False),
]


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_budget_never_exceeds_the_smallest_active_limit(ops: list) -> None:
    """Over any sequence of sets, clears, expiries and restarts, the commanded
    budget is the smallest limit still active (model), and the plan made for
    it never exceeds it when the fleet can meet it; a clear gives the next
    binding limit, never "unlimited" while another holds."""
    limits = SiteLimits()
    model: dict[str, tuple[float, float | None]] = {}
    now = 0.0
    for op in ops:
        if op[0] == "set":
            _, source, power, duration = op
            expires = now + duration if duration else None
            limits.set(source, power, expires)
            model[source] = (power, expires)
        elif op[0] == "clear":
            limits.clear(op[1])
            model.pop(op[1], None)
        elif op[0] == "tick":
            now += op[1]
            limits.expire(now)
        else:
            limits = SiteLimits.from_dict(limits.as_dict())
        active = [p for p, exp in model.values() if exp is None or now < exp]
        budget = limits.effective(now)
        if active:
            assert budget.power_w == min(active)
            assert budget.limited
        else:
            assert math.isinf(budget.power_w)
        plan = plan_curtailment(FLEET, budget.power_w, stagger_s=0)
        if budget.power_w == 0:
            assert not plan.running
        if plan.fits:
            total = plan.planned_power_w + plan.uncontrollable_power_w
            assert total <= budget.power_w + 1e-6


def test_nominal_efficiency_by_model() -> None:
    """The longest model name wins; an unknown model gets the typical figure."""
    assert j_per_th("Antminer S21") == 17.5
    assert j_per_th("ANTMINER S21 PRO") == 15.0
    assert j_per_th("Antminer S19j Pro+") == 27.5
    assert j_per_th("Antminer S19j Pro") == 29.5
    assert j_per_th("Mystery X1") == TYPICAL_J_PER_TH
    assert j_per_th(None) == TYPICAL_J_PER_TH
