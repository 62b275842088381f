"""The mining curtailment planner: which miners to lower, stop or restore.

Pure logic: no Home Assistant, no I/O. Given every miner's state and a site power
budget in watts, :func:`plan_curtailment` returns a :class:`Plan`: the commands to
send and the power each miner is expected to draw once they are executed.

API
---
- :class:`MinerState` -- one miner as the coordinator last saw it, with its
  capabilities and its effective power limits (see :func:`with_user_limits`).
- :func:`plan_curtailment` ``(miners, budget_w, *, stagger_s=2.0,
  best_fill=True) -> Plan``.
- :func:`restore_all` -- the plan for an unlimited budget (end of a curtailment).
- :func:`keep_order` -- the order in which miners are kept running and restored.

Model
-----
- A miner is *controllable* when it is reachable and can either stop or take a
  power target (``can_set_power`` with a known ``min_power_w``). A miner that
  cannot stop and is not mining (so cannot be started) is not controllable
  either. An uncontrollable miner keeps drawing ``power_w`` (the caller passes the
  last measured value, or ``max_power_w`` when nothing is known); it gets no
  command and its draw is reported as ``Plan.uncontrollable_power_w``.
- A controllable miner's planned *level* is one of:

  - stopped: draws ``idle_power_w`` (only if it can stop);
  - running with a power target: any target in ``[min_power_w, max_power_w]``;
  - running without one (stop-only firmware): draws ``max_power_w``, its nominal
    power;
  - running at one of its discrete power steps (``steps_w``: Avalon's work
    modes low, medium, high; LuxOS's frequency profiles), when a power target
    is carried out as the highest step at or below it: exactly one of the
    step powers within its limits, never a power between two steps.

  Its *floor* is the lowest level: stopped if it can stop, otherwise (a
  Bitaxe-like device) its minimum power target.

Decision (deterministic)
------------------------
1. Every controllable miner starts at its floor. If even that exceeds the
   budget, the plan is the floors and ``fits`` is False.
2. In :func:`keep_order` (priority high to low; ties: the larger
   ``max_power_w`` -- more hashing for the budget -- then ``miner_id``),
   each stoppable miner is set running at its minimum level if the total still
   fits; otherwise it stays stopped and the next (smaller, lower-priority) miner
   is tried. So a miner is stopped only if running it, even at its minimum, would
   exceed the budget -- with every lower-ranked miner at its floor and, a
   fortiori, in the final plan.
3. The remaining headroom raises the power targets of the running miners, again
   in keep order, each up to its maximum. So power targets are lowered lowest
   priority first, and the budget freed by a stop goes back to the others.
4. Best fill: a stop-only miner runs at its one power, so it can leave a gap
   no lower-ranked miner's minimum fits in (two 3.5 kW S21s under 8 kW leave
   1 kW; a 1.5 kW-minimum miner takes none of it). When the plan leaves
   headroom, the lowest-ranked running stop-only miner is left stopped and
   rules 1-3 run again (up to ``MAX_YIELDS`` miners, one more each time); the
   fullest of these plans is taken if it draws more than the plan by
   priority alone, by at least ``YIELD_MIN_GAIN`` (a tenth) of the power of
   the yielded miners that are mining now: a stop must be worth it, while a
   miner stopped already stays stopped for any fuller plan (so a budget
   that rises past a stop-only miner's power does not start it only to stop
   it again minutes later). The yielded miners are ``Plan.yielded``: a
   higher-priority miner rests there while lower-priority ones mine (rule
   2's guarantee in priority terms holds for the plan by priority alone,
   ``best_fill=False``; in the final plan it holds for every miner). Still
   deterministic, and planning again on the result changes nothing (a
   yielded miner is stopped then, and stays yielded).

Powers are bounded: a state takes finite powers in ``[0, MAX_POWER_W]``
(a gigawatt; no miner draws one), so the sums of any fleet a state can
describe stay finite and ``math.fsum`` never overflows.

Totals are ``math.fsum`` of the levels (``Plan.planned_power_w``) plus the
uncontrollable draw; ``fits`` is exactly ``planned + uncontrollable <= budget``
and the planner never plans a total above the budget while the floors fit.
A negative budget counts as 0; ``math.inf`` means every controllable miner runs
at its maximum.

Commands
--------
Each controllable miner gets at most one command, only when its planned level
differs from its current one: ``stop``; ``resume`` (with the target, if it takes
one: set the target, then resume); ``set_power``. The current target is
``power_target_w`` when known (the coordinator should pass the last target it
set), otherwise the measured ``power_w``. Reductions (stop, lower) all go at
delay 0: curtailing must be fast. Restores (resume, raise) follow in keep order,
``stagger_s`` apart to avoid inrush; when the plan also reduces, the first
restore waits one ``stagger_s`` so the reductions land first. Planning again on
the states the commands produce yields no command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
import math
from typing import Literal

Action = Literal["stop", "resume", "set_power"]

# The largest power a state takes (W): far beyond any miner, small enough that
# the sum of any fleet's powers is a finite float.
MAX_POWER_W = 1e9
# Rule 4: at most this many stop-only miners yield, and only for a plan that
# draws at least this share of their power more (no churn for a few watts).
MAX_YIELDS = 3
YIELD_MIN_GAIN = 0.1


@dataclass(frozen=True, slots=True)
class MinerState:
    """One miner as last seen, with its capabilities and effective limits.

    ``min_power_w``/``max_power_w`` are the limits after the user's per-miner
    options (see :func:`with_user_limits`). ``max_power_w`` is also the draw of a
    running stop-only miner. ``power_target_w`` is the current power target when
    known; otherwise the measured ``power_w`` stands in for it. ``priority``:
    higher keeps mining longer. ``idle_power_w`` is the draw when stopped.
    """

    miner_id: str
    reachable: bool
    mining: bool
    power_w: float
    max_power_w: float
    priority: int = 0
    can_stop: bool = False
    can_set_power: bool = False
    min_power_w: float | None = None
    idle_power_w: float = 15.0
    power_target_w: float | None = None
    # The powers of its discrete steps when a power target is carried out as
    # one of them (Avalon's modes, LuxOS's profiles); empty when it takes any
    # target in its range.
    steps_w: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        """Reject impossible figures.

        Powers must be in ``[0, MAX_POWER_W]``, ``min_power_w <= max_power_w``, and a
        stoppable miner must draw no more stopped than running at its minimum.
        """
        values = (
            self.power_w,
            self.max_power_w,
            self.idle_power_w,
            self.min_power_w,
            self.power_target_w,
            *self.steps_w,
        )
        for value in values:
            if value is not None and not (0.0 <= value <= MAX_POWER_W):
                raise ValueError(f"{self.miner_id}: power {value!r} out of range")
        if self.min_power_w is not None and self.min_power_w > self.max_power_w:
            raise ValueError(f"{self.miner_id}: min_power_w above max_power_w")
        if self.can_stop and self.idle_power_w > self.min_run_w:
            raise ValueError(f"{self.miner_id}: idle_power_w above running power")

    @property
    def targetable(self) -> bool:
        """Whether the miner takes a power target within known limits."""
        return self.can_set_power and self.min_power_w is not None

    @property
    def controllable(self) -> bool:
        """Whether the planner may command this miner at all."""
        if not self.reachable:
            return False
        if self.can_stop:
            return True
        # Cannot stop: only a mining miner that takes a target can be steered.
        return self.targetable and self.mining

    @property
    def levels_w(self) -> tuple[float, ...]:
        """The mode powers it may run at: those within its limits, ascending.

        None within them (the user's limits fall between two modes): the
        lowest mode, the least it can draw while mining.
        """
        low = -math.inf if self.min_power_w is None else self.min_power_w
        inside = sorted(s for s in self.steps_w if low <= s <= self.max_power_w)
        if inside or not self.steps_w:
            return tuple(inside)
        return (min(self.steps_w),)

    @property
    def min_run_w(self) -> float:
        """The lowest draw while mining: min target (or mode), or nominal if none."""
        if self.targetable and self.steps_w:
            return self.levels_w[0]
        if self.targetable and self.min_power_w is not None:
            return self.min_power_w
        return self.max_power_w

    @property
    def floor_w(self) -> float:
        """The lowest level the planner can bring this miner to."""
        return self.idle_power_w if self.can_stop else self.min_run_w


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one miner, to send ``delay_s`` seconds from now.

    ``power_w`` is the target for ``set_power``, and for ``resume`` of a miner
    that takes a target (set it before resuming); None otherwise.
    ``work_mode`` (a miner's own work mode select, never the planner): the
    ``set_power`` is that mode of the firmware, ``power_w`` its power.
    """

    miner_id: str
    action: Action
    power_w: float | None
    delay_s: float
    work_mode: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The planner's answer.

    ``per_miner`` holds every miner's expected draw once the commands are
    executed (uncontrollable miners at their ``power_w``); ``running`` the
    controllable miners planned to mine; ``uncontrollable`` the ids counted in
    ``uncontrollable_power_w``.
    """

    budget_w: float
    commands: tuple[Command, ...]
    planned_power_w: float
    uncontrollable_power_w: float
    fits: bool
    per_miner: Mapping[str, float]
    running: frozenset[str]
    uncontrollable: frozenset[str]
    # Stop-only miners left stopped for a fuller plan (rule 4).
    yielded: frozenset[str] = frozenset()

    @property
    def total_power_w(self) -> float:
        """Expected site draw of all miners once executed."""
        return self.planned_power_w + self.uncontrollable_power_w


def with_user_limits(
    miner: MinerState, min_w: float | None, max_w: float | None
) -> MinerState:
    """Narrow a miner's firmware power range by the user's per-miner limits.

    A user limit outside the firmware range is clamped into it; a user minimum
    above the (narrowed) maximum is lowered to it.
    """
    high = miner.max_power_w if max_w is None else min(miner.max_power_w, max_w)
    low = miner.min_power_w
    if low is not None:
        high = max(high, low)
        if min_w is not None:
            low = min(max(low, min_w), high)
    if low == miner.min_power_w and high == miner.max_power_w:
        return miner
    return replace(miner, min_power_w=low, max_power_w=high)


def _rank_key(miner: MinerState) -> tuple[int, float, str]:
    """Sort key: most worth keeping first."""
    return (-miner.priority, -miner.max_power_w, miner.miner_id)


def keep_order(miners: Sequence[MinerState]) -> list[MinerState]:
    """Miners in the order they are kept running and restored (first = best).

    Higher priority first; ties: larger ``max_power_w``, then ``miner_id``.
    Reductions hit the end of this order first. The order ignores whether a
    miner is mining now, so the same budget always gives the same levels: no
    flip-flopping between equal miners, and replanning is idempotent.
    """
    return sorted(miners, key=_rank_key)


def _current_level(miner: MinerState) -> float:
    """A controllable miner's level now, in the planner's model."""
    if not miner.mining:
        return miner.idle_power_w
    if miner.targetable:
        return miner.power_w if miner.power_target_w is None else miner.power_target_w
    return miner.max_power_w


def _command(
    miner: MinerState, level: float, running: bool
) -> tuple[Action, float | None] | None:
    """The command that brings a controllable miner to ``level``, if any."""
    if not running:
        return ("stop", None) if miner.mining else None
    target = level if miner.targetable else None
    if not miner.mining:
        return ("resume", target)
    if target is not None and target != _current_level(miner):
        return ("set_power", target)
    return None


def plan_curtailment(
    miners: Sequence[MinerState],
    budget_w: float,
    *,
    stagger_s: float = 2.0,
    best_fill: bool = True,
) -> Plan:
    """Plan the commands that bring the miners' total draw within ``budget_w``.

    See the module docstring for the model, the decision rules and the
    guarantees. ``best_fill=False``: priority alone decides (rule 4 is not
    applied). Raises ValueError for a NaN budget, a negative stagger or
    duplicate miner ids.
    """
    if math.isnan(budget_w):
        raise ValueError("budget_w is NaN")
    if not (0.0 <= stagger_s < math.inf):
        raise ValueError("stagger_s must be a finite number >= 0")
    ids = [m.miner_id for m in miners]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate miner_id")
    budget = max(budget_w, 0.0)

    ranked = keep_order([m for m in miners if m.controllable])
    held = {m.miner_id: m.power_w for m in miners if not m.controllable}
    held_w = math.fsum(held.values())
    levels, running = _fill(ranked, held_w, budget, frozenset())
    yielded: frozenset[str] = frozenset()
    if best_fill:
        levels, running, yielded = _fill_better(ranked, held_w, budget, levels, running)

    # One command per miner at most; reductions (stop, lower) go first, all at
    # once, lowest rank first; restores (resume, raise) follow, best first.
    reductions: list[Command] = []
    restores: list[Command] = []
    for miner in ranked:
        level = levels[miner.miner_id]
        command = _command(miner, level, miner.miner_id in running)
        if command is None:
            continue
        action, target = command
        if action == "stop" or (
            action == "set_power" and level < _current_level(miner)
        ):
            reductions.insert(0, Command(miner.miner_id, action, target, 0.0))
        else:
            restores.append(Command(miner.miner_id, action, target, 0.0))
    offset = 1 if reductions else 0
    restores = [
        replace(c, delay_s=(i + offset) * stagger_s) for i, c in enumerate(restores)
    ]

    planned_w = math.fsum(levels.values())
    return Plan(
        budget_w=budget,
        commands=(*reductions, *restores),
        planned_power_w=planned_w,
        uncontrollable_power_w=held_w,
        fits=planned_w + held_w <= budget,
        per_miner={
            m.miner_id: levels.get(m.miner_id, held.get(m.miner_id, 0.0))
            for m in miners
        },
        running=frozenset(running),
        uncontrollable=frozenset(held),
        yielded=yielded,
    )


def _fill(
    ranked: Sequence[MinerState],
    held_w: float,
    budget: float,
    excluded: frozenset[str],
) -> tuple[dict[str, float], set[str]]:
    """Rules 1-3: the levels and running set, ``excluded`` miners placed last
    (a yielded miner that still fits beside the others runs)."""
    levels = {m.miner_id: m.floor_w for m in ranked}
    running = {m.miner_id for m in ranked if not m.can_stop}

    def total() -> float:
        return math.fsum(levels.values()) + held_w

    if total() <= budget:
        # Keep as many miners running as fit, best first, each at its minimum.
        last = [m for m in ranked if m.miner_id in excluded]
        for miner in [*(m for m in ranked if m.miner_id not in excluded), *last]:
            if miner.can_stop:
                levels[miner.miner_id] = miner.min_run_w
                if total() <= budget:
                    running.add(miner.miner_id)
                else:
                    levels[miner.miner_id] = miner.floor_w
        # Spend the headroom on power targets, best first; once a miner cannot
        # reach its maximum the headroom is gone (to rounding): stop there.
        # A miner with work modes takes the highest mode that fits and leaves
        # the rest of the headroom to the next.
        raisable = [m for m in ranked if m.miner_id in running and m.targetable]
        for miner in raisable:
            if miner.steps_w:
                _raise_step(miner, levels, total, budget)
            elif not _raise_target(miner, levels, total, budget):
                break
    return levels, running


def _fill_better(
    ranked: Sequence[MinerState],
    held_w: float,
    budget: float,
    levels: dict[str, float],
    running: set[str],
) -> tuple[dict[str, float], set[str], frozenset[str]]:
    """Rule 4: let running stop-only miners yield to a fuller plan.

    The lowest-ranked running stop-only miner is left stopped and rules 1-3
    run again, up to :data:`MAX_YIELDS` times; the fullest plan wins if it
    draws at least :data:`YIELD_MIN_GAIN` of the power of the yielded miners
    that are mining now more than the plan by priority alone (else that plan
    stands): a stop must be worth it; a miner stopped already stays stopped
    for any fuller plan.
    """
    by_id = {m.miner_id: m for m in ranked}
    planned = math.fsum(levels.values())
    if planned + held_w >= budget:
        return levels, running, frozenset()
    best = (planned, levels, running, frozenset[str]())
    excluded: frozenset[str] = frozenset()
    current = running
    for _ in range(MAX_YIELDS):
        stop_only = [
            m
            for m in reversed(ranked)
            if m.miner_id in current
            and m.miner_id not in excluded
            and m.can_stop
            and not m.targetable
        ]
        if not stop_only:
            break
        excluded = excluded | {stop_only[0].miner_id}
        alt_levels, current = _fill(ranked, held_w, budget, excluded)
        alt = math.fsum(alt_levels.values())
        # Only a stop costs: a miner stopped already yields for any gain.
        gain = YIELD_MIN_GAIN * math.fsum(
            by_id[i].max_power_w for i in excluded if i in running and by_id[i].mining
        )
        if alt > best[0] and alt - planned >= gain and alt + held_w <= budget:
            best = (alt, alt_levels, current, excluded - current)
    return best[1], best[2], best[3]


def _raise_target(
    miner: MinerState,
    levels: dict[str, float],
    total: Callable[[], float],
    budget: float,
) -> bool:
    """Raise a running miner's target as far as the budget allows, in place.

    ``levels`` must fit on entry, with this miner at its minimum. The exact room
    is computed, then the target is nudged down past float rounding so that
    ``total() <= budget`` holds exactly. True if the miner reached its maximum.
    """
    key = miner.miner_id
    low = levels[key]
    levels[key] = miner.max_power_w
    if total() <= budget:
        return True
    levels[key] = low
    candidate = min(miner.max_power_w, low + (budget - total()))
    step = 0.0
    while True:
        levels[key] = max(low, candidate - step)
        if levels[key] == low or total() <= budget:
            return False
        step = 2 * step if step else max(math.ulp(budget), math.ulp(candidate))


def _raise_step(
    miner: MinerState,
    levels: dict[str, float],
    total: Callable[[], float],
    budget: float,
) -> None:
    """Raise a running miner with work modes to its highest mode that fits."""
    key = miner.miner_id
    for step in reversed(miner.levels_w):
        if step <= levels[key]:
            return
        low, levels[key] = levels[key], step
        if total() <= budget:
            return
        levels[key] = low


def restore_all(miners: Sequence[MinerState], *, stagger_s: float = 2.0) -> Plan:
    """The plan that ends a curtailment: every controllable miner at its maximum."""
    return plan_curtailment(miners, math.inf, stagger_s=stagger_s)
