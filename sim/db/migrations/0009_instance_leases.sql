-- A user's lease is held through its owner's row in the registry. Each instance's
-- heartbeat renews sim_instances.lease_until, and with that one row the lease of every
-- user it owns (demo_users.owner_id): renewing each owned user's row instead locked
-- thousands of rows every beat, and every store of those users waited for it (a new
-- user's first rows among them). A user may be taken over once its owner's lease has
-- run out (the owner stopped heartbeating) or the owner left the registry; the epoch
-- still fences every write (sim_owns), and the owner still gives users up on leaving.
alter table sim_instances
    add column lease_until timestamptz not null default now();

-- the one rule for "someone holds this user's lease"
create function sim_lease_held(owner uuid) returns boolean
language sql stable
as $$ select exists (select from sim_instances i where i.id = owner and i.lease_until > now()) $$;

-- the enable of migration 0008, with the live-owner check above and without a lease
-- length (the lease is the owner's, renewed by its heartbeat)
drop function sim_enable;

alter table demo_users drop column owner_until;

create function sim_enable(
    p_user_id text,
    p_run_id uuid,
    p_seed bigint,
    p_videos integer,
    p_comments integer,
    p_dms integer,
    p_live_per_minute double precision,
    p_niche text,
    p_owner uuid,
    p_channel text,
    p_payload text,
    out started boolean,
    out u demo_users
)
language plpgsql
as $$
declare
    taken demo_users;
begin
    select * into u from demo_users d where d.user_id = p_user_id for update;
    if found and u.enabled then
        started := false;
    elsif not found or u.generated = 0 then
        started := true;
        insert into demo_users (user_id, state, enabled, run_id, seed, videos, comments, dms,
                                live_per_minute, initial_total, enabled_at, niche)
        values (p_user_id, 'initializing', true, p_run_id, p_seed, p_videos, p_comments,
                p_dms, p_live_per_minute, p_videos + p_comments + p_dms, now(), p_niche)
        on conflict (user_id) do update set
            state = 'initializing', enabled = true, run_id = excluded.run_id,
            seed = excluded.seed, videos = excluded.videos, comments = excluded.comments,
            dms = excluded.dms, live_per_minute = excluded.live_per_minute,
            niche = excluded.niche,
            initial_total = excluded.initial_total, generated = 0, live_generated = 0,
            enabled_at = now(), live_at = null, disabled_at = null, last_error = null,
            restarts = 0, updated_at = now()
        returning * into u;
    else
        started := true;
        update demo_users d
           set enabled = true, disabled_at = null, last_error = null,
               state = case when d.live_at is null then 'initializing' else 'live' end,
               live_per_minute = p_live_per_minute, updated_at = now()
         where d.user_id = p_user_id
        returning * into u;
    end if;
    if p_owner is not null then
        update demo_users d
           set owner_id = p_owner,
               owner_epoch = d.owner_epoch + case when d.owner_id = p_owner then 0 else 1 end
         where d.user_id = p_user_id and d.enabled
           and (d.owner_id is null or d.owner_id = p_owner or not sim_lease_held(d.owner_id))
        returning * into taken;
        if found then
            u := taken;
        end if;
    end if;
    if started then
        perform pg_notify(p_channel, p_payload);
    end if;
end
$$;
