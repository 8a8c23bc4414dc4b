-- sim's schema. Every timestamp is timestamptz; sessions run with TimeZone=UTC.

create table demo_users (
    user_id         text primary key,
    state           text not null
                    check (state in ('initializing', 'live', 'disabled', 'failed')),
    enabled         boolean not null,
    run_id          uuid not null,              -- changes at every enable: ids derive from it
    seed            bigint not null,
    videos          integer not null,
    comments        integer not null,
    dms             integer not null,
    live_per_minute double precision not null,
    initial_total   integer not null,
    generated       integer not null default 0, -- initial items stored so far
    live_generated  bigint not null default 0,  -- live items stored so far
    enabled_at      timestamptz not null,
    live_at         timestamptz,
    disabled_at     timestamptz,
    last_error      text,
    restarts        integer not null default 0,
    updated_at      timestamptz not null default now()
);

create table interactions (
    id              uuid primary key,
    user_id         text not null,
    seq             bigint not null,            -- order of generation within the user's run
    kind            text not null check (kind in ('video', 'comment', 'dm')),
    video_id        uuid,
    payload         jsonb not null,             -- the document delivered to the main app
    created_at      timestamptz not null,       -- when the interaction happened (invented)
    status          text not null default 'pending'
                    check (status in ('pending', 'sending', 'sent', 'failed')),
    attempts        integer not null default 0,
    due_at          timestamptz not null default now(), -- pending: next try; sending: lease end
    sent_at         timestamptz,
    last_error      text,
    inserted_at     timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

-- what a sender claims: due rows of one user (pending, or sending with an expired lease)
create index interactions_due on interactions (user_id, due_at)
    where status in ('pending', 'sending');
create index interactions_user_page on interactions (user_id, seq);
create index interactions_video on interactions (video_id) where video_id is not null;

-- the bundled sink's store: what the receiver got, de-duplicated on interaction id
create table sink_received (
    id              uuid primary key,
    user_id         text not null,
    kind            text not null,
    video_id        uuid,
    payload         jsonb not null,
    webhook_id      text,
    first_seen_at   timestamptz not null default now(),
    deliveries      integer not null default 1
);

