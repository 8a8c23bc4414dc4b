"""The bundled sink: sim's reference receiver (``/sink``), mountable or standalone.

It depends on ``sim.web`` and ``sim.db`` only, never on sim's API or pipeline.
"""

from sim.sink.app import create_sink_app
from sim.sink.faults import Decision, Faults, FaultsHolder
from sim.sink.mount import register_sink
from sim.sink.state import SinkCounters, SinkState, sink_state

__all__ = [
    "Decision",
    "Faults",
    "FaultsHolder",
    "SinkCounters",
    "SinkState",
    "create_sink_app",
    "register_sink",
    "sink_state",
]
