-- Deliveries that outlast an outage. A row's retries are bounded by age as well as by
-- attempts; the age counts from when it was queued: inserted_at, or queued_at once an
-- operator re-queued it (POST /v1/users/{id}/demo/redeliver). Nullable without a
-- default: adding it rewrites nothing.
alter table interactions add column queued_at timestamptz;

-- The attempt log: one row per delivery request (webhook-id, attempt number, HTTP status
-- or error, latency, next attempt), bounded by count and age (SIM_ATTEMPT_LOG_MAX_ROWS,
-- SIM_ATTEMPT_LOG_MAX_AGE_S). Written in batches, never a row per insert.
create table delivery_attempts (
    id              bigint generated always as identity primary key,
    user_id         text not null,
    at              timestamptz not null,           -- when the request was sent
    webhook_id      text,                           -- null: unsigned, no webhook-id sent
    attempt         integer not null,               -- the highest attempt number in the batch
    items           integer not null,
    first_seq       bigint not null,
    outcome         text not null check (outcome in ('ok', 'retry', 'failed', 'gone')),
    status_code     integer,                        -- null: no HTTP answer
    error           text,
    latency_s       double precision not null,
    next_attempt_at timestamptz                     -- when the batch's rows are due again
);
-- GET /v1/users/{id}/deliveries pages by id, newest first
create index delivery_attempts_user on delivery_attempts (user_id, id);
-- the dashboard's "last errors": the newest failed requests, found without walking the ok ones
create index delivery_attempts_errors on delivery_attempts (id) where outcome <> 'ok';
