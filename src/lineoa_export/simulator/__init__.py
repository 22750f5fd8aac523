"""The LINE simulator: the product's own stand-in for the LINE Messaging API (loopback only).

Faithful to ``LINE-FACTS.md``: the same endpoints, status codes, messages and retry-key rules,
a per-channel token bucket, a monthly quota, minted tokens that expire, plus random faults and a
per-recipient script for tests. What it accepted is kept in a :class:`Record`.

Modules: ``options`` (what to be), ``bucket`` (rate limit), ``record`` (what was accepted),
``app`` (the HTTP endpoints), ``server`` (running it).
"""

from lineoa_export.simulator.app import create_app, get_options, get_record, get_state
from lineoa_export.simulator.options import ChannelConfig, SimulatorOptions
from lineoa_export.simulator.record import AcceptedMulticast, AcceptedPush, Record
from lineoa_export.simulator.server import RunningSimulator, running_simulator, serve_forever

__all__ = [
    "AcceptedMulticast",
    "AcceptedPush",
    "ChannelConfig",
    "Record",
    "RunningSimulator",
    "SimulatorOptions",
    "create_app",
    "get_options",
    "get_record",
    "get_state",
    "running_simulator",
    "serve_forever",
]
