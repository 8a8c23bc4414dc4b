"""One measured run in a fresh process: ``python -m bench.worker KIND`` with JSON args on stdin.

The result is printed as one JSON object on the last line of stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "main"]


def _kinds() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    # imported lazily: a pgqueuer run must not import sim (trio-asyncio patches asyncio)
    kind = sys.argv[1]
    if kind.startswith("recording-"):
        from bench import recording

        return {
            "recording-old": recording.old_method,
            "recording-sim": recording.sim_recorder,
            "recording-raw": recording.raw_variant,
        }
    if kind == "pgq":
        from bench import pgq

        return {"pgq": pgq.pgq_drain}
    if kind.startswith("relay-"):
        from bench import relay

        return {"relay-sim": relay.sim_relay}
    if kind == "fleet-relay":
        from bench import fleet

        return {"fleet-relay": fleet.fleet_relay}
    if kind == "generate":
        from bench import scale

        return {"generate": scale.generation_rate}
    return {}


KINDS = (
    "recording-old",
    "recording-sim",
    "recording-raw",
    "pgq",
    "relay-sim",
    "fleet-relay",
    "generate",
)


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
        sys.exit(f"usage: python -m bench.worker {{{','.join(KINDS)}}} < args.json")
    args = json.load(sys.stdin)
    result = _kinds()[sys.argv[1]](args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
