"""Energy totals that only increase (HA-free)."""

from __future__ import annotations

import pytest

from custom_components.hashgrid.microgrid.counters import IncreasingTotals


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
