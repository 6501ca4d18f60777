-- Scheduled tasks and their runs. A task fires at `next_run_at`; replicas claim due tasks with
-- FOR UPDATE SKIP LOCKED and advance `next_run_at` in the same transaction.
CREATE TABLE tasks (
    id                    bigserial PRIMARY KEY,
    name                  text NOT NULL,
    task_type             text NOT NULL,
    -- NULL for tasks that only fire on demand (manual, file and webhook triggers).
    cron_schedule         text,
    timezone              text NOT NULL DEFAULT 'UTC',
    connection_id         bigint,
    pipeline_id           text,
    parameters            jsonb NOT NULL DEFAULT '{}',
    enabled               boolean NOT NULL DEFAULT true,
    max_retries           integer NOT NULL DEFAULT 0,
    retry_backoff_seconds integer NOT NULL DEFAULT 60,
    timeout_seconds       integer NOT NULL DEFAULT 3600,
    concurrency_policy    text NOT NULL DEFAULT 'forbid',
    misfire_policy        text NOT NULL DEFAULT 'fire_once',
    -- How the task is started when it is seen as a trigger (/api/v1/mvp/triggers): cron, manual, file, webhook.
    trigger_type          text NOT NULL DEFAULT 'cron',
    trigger_config        jsonb NOT NULL DEFAULT '{}',
    next_run_at           timestamptz,
    -- Why the platform disabled the task (its connection was deleted); NULL when a user paused it.
    deactivated_reason    text,
    created_by            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_due ON tasks (next_run_at) WHERE enabled AND next_run_at IS NOT NULL;
CREATE INDEX tasks_by_connection ON tasks (connection_id) WHERE connection_id IS NOT NULL;
CREATE INDEX tasks_by_pipeline ON tasks (pipeline_id) WHERE pipeline_id IS NOT NULL;

-- One row per attempt of a fire. (task_id, scheduled_for, attempt) is the idempotency key: a fire that is
-- claimed twice, or a publish that is retried, never makes a second run.
CREATE TABLE task_runs (
    id            bigserial PRIMARY KEY,
    task_id       bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    scheduled_for timestamptz NOT NULL,
    attempt       integer NOT NULL DEFAULT 1,
    -- schedule, manual, retry, file, webhook
    trigger       text NOT NULL,
    -- queued, running, success, failed, skipped, timed_out
    status        text NOT NULL,
    -- When the job may be published (a retry waits for its back-off).
    due_at        timestamptz NOT NULL,
    published_at  timestamptz,
    started_at    timestamptz,
    finished_at   timestamptz,
    result        jsonb,
    error         text,
    parameters    jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (task_id, scheduled_for, attempt)
);
CREATE INDEX task_runs_to_publish ON task_runs (due_at) WHERE status = 'queued' AND published_at IS NULL;
CREATE INDEX task_runs_unfinished ON task_runs (task_id) WHERE status IN ('queued', 'running');
CREATE INDEX task_runs_by_task ON task_runs (task_id, id DESC);
