-- Turning demo mode on in one statement. The enable used to be a transaction of six
-- round trips (BEGIN, lock the row, insert or resume, take the lease, notify, COMMIT);
-- as one function call it is one, in a transaction of its own (autocommit), and the
-- rules are unchanged:
--   * already on: the row as it is (started is false), no second run, no notification;
--   * off, or never on, and nothing generated: a fresh run (the caller's run id, the
--     initial burst from scratch);
--   * off with rows generated: the run resumes (same content, the new live rate);
--   * with an owner given: it takes the lease unless a live owner holds it (the epoch
--     grows when the owner changes), whether the user was already on or not;
--   * started: pg_notify(channel, payload) in the same transaction.
-- The result is started and the user's row as a demo_users value: (u).* are its columns.
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
    p_lease_s double precision,
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
               owner_until = now() + make_interval(secs => p_lease_s),
               owner_epoch = d.owner_epoch + case when d.owner_id = p_owner then 0 else 1 end
         where d.user_id = p_user_id and d.enabled
           and (d.owner_id is null or d.owner_id = p_owner or d.owner_until < now())
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
