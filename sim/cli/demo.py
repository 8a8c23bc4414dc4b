"""``sim demo enable|status|disable``: demo mode over HTTP, with a progress bar."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any
from urllib.parse import quote

from sim.cli.base import CliError
from sim.cli.client import Api

__all__ = ["cmd_disable", "cmd_enable", "cmd_status"]

POLL_S = 0.5


def _api(args: argparse.Namespace) -> Api:
    return Api(args.url, args.token or os.environ.get("SIM_API_TOKEN") or None)


def _path(user: str) -> str:
    return f"/v1/users/{quote(user, safe='')}/demo"


def _plan(doc: dict[str, Any]) -> str:
    return (
        f"{doc['videos']} videos, {doc['comments']} comments, {doc['dms']} DMs, "
        f"{doc['live_per_minute']:g} live/min, seed {doc['seed']}"
    )


def cmd_enable(args: argparse.Namespace) -> int:
    body = {
        key: value
        for key, value in (
            ("videos", args.videos),
            ("comments", args.comments),
            ("dms", args.dms),
            ("live_per_minute", args.live_per_minute),
            ("seed", args.seed),
        )
        if value is not None
    }
    with _api(args) as api:
        status, doc = api.call("PUT", _path(args.user), json=body)
        verb = "started" if status == 202 else "already on"
        print(f"Demo mode {verb} for {doc['user_id']}: {_plan(doc)}; state {doc['state']}")
        if args.wait:
            return _wait(api, args.user, doc, args.timeout)
    return 0


def _wait(api: Api, user: str, doc: dict[str, Any], timeout_s: float) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = int(doc["initial_total"])
    start = time.monotonic()
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(user, total=total)
        while True:
            counts = doc["counts"]
            progress.update(
                task,
                completed=min(counts["sent"], total),
                description=f"{user}"
                + (f" ({counts['failed']} failed)" if counts["failed"] else ""),
            )
            if doc["state"] != "initializing":
                break
            if time.monotonic() - start > timeout_s:
                raise CliError(
                    f"gave up waiting after {timeout_s:g}s: {counts['sent']}/{total} sent "
                    f"(demo mode keeps running; see `sim demo status {user}`)"
                )
            time.sleep(POLL_S)
            _, doc = api.call("GET", _path(user))
    elapsed = time.monotonic() - start
    counts = doc["counts"]
    if doc["state"] == "failed":
        raise CliError(f"demo mode for {user} failed: {doc.get('last_error') or 'unknown error'}")
    if doc["state"] == "disabled":
        raise CliError(f"demo mode for {user} was turned off while waiting")
    sent = min(counts["sent"], total) if doc.get("live_at") is None else counts["sent"]
    rate = f", {sent / elapsed:.0f}/s" if elapsed > 0.05 else ""
    print(
        f"{user}: {sent}/{total} sent, {counts['failed']} failed in {elapsed:.1f}s{rate}; "
        f"now {doc['state']} with {doc['live_per_minute']:g} new per minute"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _api(args) as api:
        _, doc = api.call("GET", _path(args.user))
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    c = doc["counts"]
    lines = [
        ("user", doc["user_id"]),
        ("state", doc["state"] + ("" if doc["enabled"] else " (off)")),
        ("enabled at", doc["enabled_at"]),
        ("live since", doc.get("live_at") or "-"),
        (
            "counts",
            f"sent {c['sent']}, failed {c['failed']}, pending {c['pending']}, "
            f"sending {c['sending']}",
        ),
        ("initial burst", f"{doc['initial_total']} ({_plan(doc)})"),
        ("last error", doc.get("last_error") or "-"),
    ]
    for label, value in lines:
        print(f"{label:<14}{value}")
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    params = {"purge": "true"} if args.purge else None
    with _api(args) as api:
        _, doc = api.call("DELETE", _path(args.user), params=params)
    if args.purge:
        print(f"Demo mode off for {doc['user_id']}; its demo interactions were deleted")
        return 0
    c = doc["counts"]
    print(
        f"Demo mode off for {doc['user_id']}: {c['sent']} sent, {c['failed']} failed, "
        f"{c['pending'] + c['sending']} undelivered"
    )
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"statuses": ["failed", "sent"] if args.sent else ["failed"]}
    if args.since:
        body["since"] = args.since
    with _api(args) as api:
        _, doc = api.call("POST", _path(args.user) + "/redeliver", json=body)
    what = " and ".join(doc["statuses"])
    since = f" queued since {doc['since']}" if doc.get("since") else ""
    note = "" if doc["enabled"] else "; demo mode is off: they go out once it is on again"
    print(f"Re-queued {doc['requeued']} {what} interactions of {doc['user_id']}{since}{note}")
    return 0
