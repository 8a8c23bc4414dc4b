"""The bundled sink: sim's reference receiver (``/sink``), mountable or standalone."""

from sim.sink.app import create_sink_app
from sim.sink.faults import Decision, Faults, FaultsHolder
from sim.sink.receiver import SinkCounters, SinkState, register_sink, sink, sink_state

__all__ = [
    "Decision",
    "Faults",
    "FaultsHolder",
    "SinkCounters",
    "SinkState",
    "create_sink_app",
    "register_sink",
    "sink",
    "sink_state",
]
