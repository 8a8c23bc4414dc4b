"""``GET /v1/instances``: the sim instances sharing this database, and what each owns."""

from __future__ import annotations

from datetime import UTC, datetime

import trio
from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify
from quart_schema import document_response, security_scheme_blueprint, tag

from sim.api.auth import require_token
from sim.api.deps import runtime
from sim.db import fleet
from sim.errors import QueryTimeout
from sim.web.schemas import document_errors

__all__ = ["InstanceDoc", "InstanceList", "instances"]

#: more instances than any fleet has: the answer stays bounded
INSTANCES_LIMIT = 1000

instances = Blueprint("instances", __name__, url_prefix="/v1")
instances.before_request(require_token)
security_scheme_blueprint(instances, [{"bearer": []}])


class InstanceDoc(BaseModel):
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_heartbeat: datetime
    lease_until: datetime = Field(
        description="its lease, and with it the lease of every user it owns, holds until then"
    )
    alive: bool = Field(description="its lease holds: heard from within SIM_OWNER_LEASE_S")
    users: int = Field(description="demo users whose simulation it owns")
    self: bool = Field(description="the instance that answered")


class InstanceList(BaseModel):
    """Registered instances, oldest first (dead ones are pruned after a few leases)."""

    instances: list[InstanceDoc]
    live: int
    owner_lease_s: float
    time: datetime


@instances.get("/instances")
@tag(["fleet"])
@document_response(InstanceList, 200)
@document_errors(400, 401, 503)
async def list_instances() -> tuple[Response, int]:
    """The sim instances on this database: heartbeat, liveness, users owned."""
    rt = runtime()
    lease_s = rt.settings.owner_lease_s
    me = rt.instance_id
    try:
        with trio.fail_after(rt.settings.readyz_timeout_s):
            found = await fleet.list_instances(rt.db, INSTANCES_LIMIT)
    except trio.TooSlowError:
        raise QueryTimeout("the database did not answer in time") from None
    docs = [
        {
            "id": str(i.id),
            "host": i.host,
            "pid": i.pid,
            "version": i.version,
            "started_at": i.started_at.isoformat(),
            "last_heartbeat": i.last_heartbeat.isoformat(),
            "lease_until": i.lease_until.isoformat(),
            "alive": i.alive,
            "users": i.users,
            "self": i.id == me,
        }
        for i in found
    ]
    body = {
        "instances": docs,
        "live": sum(i.alive for i in found),
        "owner_lease_s": lease_s,
        "time": datetime.now(UTC).isoformat(),
    }
    return jsonify(body), 200
