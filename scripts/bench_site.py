"""Benchmark: the demo-like site over one simulated day, limits vs the old way.

Runs `tests/blueprints/bench_site_day.py` (a real Home Assistant from the test
harness, six simulated miners, HashGrid's DR, solar and price blueprints as the
demo configures them, a physical model of sun, house, battery, DR events and a
price spike) twice: with the site's named limits, and the old way (every
automation writes the one budget; a clear lifts it). The last line printed is
one JSON object: the limits' figures, and the old way's prefixed `naive_`.
Targets: surplus used >= 90 %, leak <= 1 % of mined energy, DR violations 0,
budget changes <= 2 per minute.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile

ROOT = Path(__file__).resolve().parent.parent


def run(naive: bool) -> dict[str, object]:
    """One day; return its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        env = os.environ | {
            "BENCH_JSON": str(out),
            "BENCH_NAIVE": "1" if naive else "0",
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--timeout=1200",
                "tests/blueprints/bench_site_day.py",
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )
        figures: dict[str, object] = json.loads(out.read_text())
        return figures


def main() -> None:
    """Run both days, print the figures (last line: one JSON object)."""
    limits = run(naive=False)
    naive = run(naive=True)
    print(json.dumps(limits | {f"naive_{k}": v for k, v in naive.items()}))


if __name__ == "__main__":
    main()
