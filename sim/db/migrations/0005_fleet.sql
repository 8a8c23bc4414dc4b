-- Several sim processes on one database. Each registers in sim_instances and heartbeats;
-- a demo user's simulation (initial burst and live activity) has one owner at a time,
-- held as a lease on the user's row: the owner renews owner_until with its heartbeat, and
-- another instance may take the user over once the lease has run out. owner_epoch grows
-- at every change of owner (a fencing token for logs and tests).
create table sim_instances (
    id              uuid primary key,
    host            text not null,
    pid             integer not null,
    version         text not null,
    started_at      timestamptz not null default now(),
    last_heartbeat  timestamptz not null default now(),
    stopping        boolean not null default false
);

alter table demo_users
    add column owner_id    uuid,
    add column owner_until timestamptz,
    add column owner_epoch bigint not null default 0;

-- what an instance renews (its own users) and what it may acquire (enabled, lease over)
create index demo_users_owner on demo_users (owner_id) where owner_id is not null;
create index demo_users_enabled on demo_users (enabled_at) where enabled;

-- The fence on every write of a user's simulation (one place for the rule): the writer
-- still holds the lease it started with, i.e. the owner and the epoch (the fencing token)
-- are unchanged. Any takeover or release bumps or clears them, so a stale owner's write
-- is refused, while an owner whose renewal is merely late (nobody took over) writes on.
-- A null writer is a write outside any simulation (tests, benchmarks): not fenced.
create function sim_owns(owner_id uuid, owner_epoch bigint, writer uuid, writer_epoch bigint)
returns boolean language sql immutable
as $$ select writer is null or (owner_id = writer and owner_epoch = writer_epoch) $$;
