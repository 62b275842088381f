"""Energy totals that only increase; energy integrated from power (HA-free)."""

from __future__ import annotations

import pytest

from custom_components.hashgrid.microgrid.counters import (
    IncreasingTotals,
    PowerIntegrator,
)


def test_a_total_that_goes_backwards_is_unknown_until_it_passes_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    totals = IncreasingTotals("inverter", reset_after=5)
    assert totals.check("import", 2000.0) == 2000.0
    assert totals.check("import", 2000.5) == 2000.5
    assert totals.check("import", 1.0) is None
    assert totals.check("import", 2.0) is None
    assert totals.check("export", 10.0) == 10.0  # each total on its own
    assert totals.check("import", None) is None
    assert totals.check("import", 2000.5) == 2000.5
    assert caplog.text.count("went backwards") == 1


def test_a_total_that_stays_lower_is_taken_as_a_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    totals = IncreasingTotals("inverter", reset_after=3)
    totals.check("import", 2000.0)
    assert totals.check("import", 1.0) is None
    assert totals.check("import", 1.5) is None
    assert totals.check("import", 2.0) == 2.0  # third reading in a row: a new meter
    assert totals.check("import", 2.5) == 2.5
    assert "taken as reset" in caplog.text


def test_energy_is_integrated_across_short_gaps_only() -> None:
    """Trapezoids between readings up to max_gap_s apart; nothing across an outage."""
    energy = PowerIntegrator(["pv", "grid"], max_gap_s=15)
    assert energy.add({"pv": 3600.0, "grid": None}, 0) == {"pv": 0.0}
    # (3600 + 7200) / 2 W for 10 s = 15 Wh
    assert energy.add({"pv": 7200.0, "grid": None}, 10) == {"pv": 0.015}
    # one poll failed: the reading 15 s later is still integrated (30 Wh)
    assert energy.add({"pv": 7200.0, "grid": None}, 25) == {"pv": 0.045}
    # an outage of 60 s: the power in between is unknown, nothing is added
    assert energy.add({"pv": 7200.0, "grid": None}, 85) == {"pv": 0.045}
    # and integration goes on from the first reading after it (10 Wh)
    assert energy.add({"pv": 7200.0, "grid": None}, 90) == {"pv": 0.055}
    # a power unknown at either end of an interval adds nothing for it
    assert energy.add({"pv": None, "grid": 100.0}, 95) == {"grid": 0.0}
    assert energy.add({"pv": 7200.0, "grid": 100.0}, 100) == {
        "pv": 0.055,
        "grid": pytest.approx(100 * 5 / 3.6e6, abs=1e-6),
    }
    # restarted (the connection closed): the next reading starts afresh
    energy.restart()
    assert energy.add({"pv": 7200.0, "grid": 100.0}, 101)["pv"] == 0.055
    assert energy.energy_kwh["pv"] == pytest.approx(0.055)
