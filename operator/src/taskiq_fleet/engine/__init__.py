"""The scaling engine: observed signals and a pool's policy in, a decision out. Pure: no I/O.

>>> from taskiq_fleet.engine import decide, default_behavior
"""

from taskiq_fleet.engine.decide import decide, missed_poll, not_carried_out
from taskiq_fleet.engine.rates import default_behavior

__all__ = ["decide", "default_behavior", "missed_poll", "not_carried_out"]
