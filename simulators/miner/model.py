"""The physical model of one miner: power, hashrate, heat, fans, energy.

State is advanced lazily, on every read, from an injectable clock (seconds of
simulated time), so a fleet of hundreds of miners costs nothing while idle and
tests can run time faster than real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math

AMBIENT_C = 25.0


@dataclass(frozen=True)
class MinerSpec:
    """What a hardware model is: its nameplate figures and layout."""

    model: str
    nominal_w: float
    nominal_ths: float
    hashboards: int
    chips_per_board: int
    fans: int
    idle_w: float = 15.0
    pool_difficulty: float = 65536.0

    @property
    def efficiency_j_th(self) -> float:
        """Return the nameplate efficiency in J/TH."""
        return self.nominal_w / self.nominal_ths

    def load_at(self, power_w: float) -> float:
        """Return the load fraction at a power: 0 at idle, 1 at nominal."""
        span = self.nominal_w - self.idle_w
        return max(0.0, (power_w - self.idle_w) / span) if span > 0 else 1.0

    def hashrate_ths_at(self, power_w: float) -> float:
        """Return the hashrate while mining at a power.

        Hashrate falls less than power: a miner is more efficient underclocked.
        """
        return self.nominal_ths * float(self.load_at(power_w) ** 0.8)


S19J_PRO = MinerSpec(
    model="Antminer S19j Pro",
    nominal_w=3050.0,
    nominal_ths=145.0,
    hashboards=3,
    chips_per_board=126,
    fans=4,
)
S21 = MinerSpec(
    model="Antminer S21",
    nominal_w=3500.0,
    nominal_ths=206.0,
    hashboards=3,
    chips_per_board=108,
    fans=4,
)
BITAXE_GAMMA = MinerSpec(
    model="Bitaxe Gamma",
    nominal_w=15.0,
    nominal_ths=1.0,
    hashboards=1,
    chips_per_board=1,
    fans=1,
    idle_w=2.5,
    pool_difficulty=1024.0,
)
# Canaan's and MicroBT's nameplates (the highest work mode).
AVALON_NANO3S = MinerSpec(
    model="Avalon Nano 3S",
    nominal_w=140.0,
    nominal_ths=6.0,
    hashboards=1,
    chips_per_board=12,
    fans=1,
    idle_w=6.0,
    pool_difficulty=4096.0,
)
AVALON_Q = MinerSpec(
    model="Avalon Q",
    nominal_w=1674.0,
    nominal_ths=90.0,
    hashboards=1,
    chips_per_board=160,
    fans=2,
    idle_w=25.0,
)
WHATSMINER_M30S_PLUS = MinerSpec(
    model="Whatsminer M30S+",
    nominal_w=3400.0,
    nominal_ths=100.0,
    hashboards=3,
    chips_per_board=156,
    fans=2,
)


class MinerModel:
    """Power ramps (first order) toward its goal; everything else follows power."""

    def __init__(
        self, spec: MinerSpec, clock: Callable[[], float], *, ramp_tau_s: float = 1.5
    ) -> None:
        """Start the miner mining at its nominal power."""
        self.spec = spec
        self._clock = clock
        self._tau = ramp_tau_s
        self._t = clock()
        self.boot_time = self._t
        self.mining = True
        self.power_target_w = spec.nominal_w
        self._power_w = spec.nominal_w
        self._energy_wh = 0.0
        self._hashes_th = 0.0

    @property
    def goal_w(self) -> float:
        """Return the power the miner is heading for."""
        return self.power_target_w if self.mining else self.spec.idle_w

    def _advance(self) -> None:
        now = self._clock()
        dt = now - self._t
        if dt <= 0:
            return
        goal, p0 = self.goal_w, self._power_w
        decay = math.exp(-dt / self._tau)
        p1 = goal + (p0 - goal) * decay
        self._energy_wh += (goal * dt + (p0 - goal) * self._tau * (1 - decay)) / 3600
        self._hashes_th += (self._hashrate_at(p0) + self._hashrate_at(p1)) / 2 * dt
        self._power_w, self._t = p1, now

    def _hashrate_at(self, power_w: float) -> float:
        return self.spec.hashrate_ths_at(power_w) if self.mining else 0.0

    @property
    def power_w(self) -> float:
        """Return the power drawn now, in W."""
        self._advance()
        return self._power_w

    @property
    def hashrate_ths(self) -> float:
        """Return the hashrate now, in TH/s."""
        return self._hashrate_at(self.power_w)

    @property
    def load(self) -> float:
        """Return the load fraction now (0 idle, 1 nominal)."""
        return self.spec.load_at(self.power_w)

    @property
    def energy_wh(self) -> float:
        """Return the energy used since start, in Wh."""
        self._advance()
        return self._energy_wh

    @property
    def total_th(self) -> float:
        """Return the work done since start, in TH."""
        self._advance()
        return self._hashes_th

    @property
    def accepted_shares(self) -> int:
        """Return the shares the pool accepted since start."""
        return int(self.total_th * 1e12 / (self.spec.pool_difficulty * 2**32))

    @property
    def uptime_s(self) -> int:
        """Return the seconds since the last boot."""
        return int(self._clock() - self.boot_time)

    def board_temps_c(self) -> list[float]:
        """Return each hashboard's PCB temperature."""
        base = AMBIENT_C + 35.0 * self.load
        return [
            round(base + 1.5 * (i % 3) - 1.0, 1) for i in range(self.spec.hashboards)
        ]

    def chip_temps_c(self) -> list[float]:
        """Return each hashboard's chip temperature."""
        rise = 15.0 * self.load
        return [round(t + rise, 1) for t in self.board_temps_c()]

    def fan_rpms(self) -> list[int]:
        """Return each fan's speed."""
        base = 1200 + 3600 * self.load
        return [int(base + 30 * i) for i in range(self.spec.fans)]

    def set_mining(self, mining: bool) -> None:
        """Start or stop hashing (power then ramps)."""
        self._advance()
        self.mining = mining

    def set_power_target(self, watts: float) -> None:
        """Set the power the miner draws when mining."""
        self._advance()
        self.power_target_w = watts

    def reboot(self) -> None:
        """Restart: power drops to idle, uptime restarts, then it ramps back."""
        self._advance()
        self._power_w = self.spec.idle_w
        self.boot_time = self._t
