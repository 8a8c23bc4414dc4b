"""sim's benchmarks: ``python -m bench [section ...] [--quick]`` (``make bench`` runs them all).

Every comparison is a ratio of runs made side by side in the same invocation,
repeated, reported as the median with the min-max spread. Each measured run is a
fresh subprocess (``python -m bench.worker``), so no contender inherits another's
imports, event loop, warm caches or memory. Sections:

- ``recording``: marking 100k delivered interactions ``sent`` — the old service's
  method, sim's recorder as shipped, and the best raw psycopg variant of a small grid;
- ``relay``: claim → deliver over HTTP → record 100k stored interactions, against
  pgqueuer's own no-op job throughput on the same server;
- ``visible``: ``PUT /v1/users/{id}/demo`` until the receiver has acknowledged all
  208 initial items, 20 users one after another;
- ``scale``: 10k, 100k and 1M interactions end to end through the sim app, time per
  1,000, generation rate, peak RSS;
- ``connections``: backend sessions opened during the 100k relay.
"""

__all__: list[str] = []
