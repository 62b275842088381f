"""A real OpenADR 2.0b VTN (openleadr's own server) for tests and the demo."""

from .vtn import (
    PATH_PREFIX,
    VTN_ID,
    OptResponse,
    SimulatedVtn,
    TelemetryValue,
    fix_openleadr_server,
    free_port,
    running_vtn,
)

__all__ = [
    "PATH_PREFIX",
    "VTN_ID",
    "OptResponse",
    "SimulatedVtn",
    "TelemetryValue",
    "fix_openleadr_server",
    "free_port",
    "running_vtn",
]
