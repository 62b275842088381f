"""Import every kind's handler so that each registers itself."""

from .grid_signal import handler as _grid_signal  # noqa: F401
from .lightning import handler as _lightning  # noqa: F401
from .microgrid import handler as _microgrid  # noqa: F401
from .mining import handler as _mining  # noqa: F401
