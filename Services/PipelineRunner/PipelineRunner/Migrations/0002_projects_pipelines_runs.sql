-- Projects group pipelines. Deleted rows stay (soft delete) until an admin removes them for good.
CREATE TABLE projects (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    deleted_by  text
);
CREATE UNIQUE INDEX projects_live_name_key ON projects (lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX projects_deleted_at_idx ON projects (deleted_at) WHERE deleted_at IS NOT NULL;

-- A pipeline's current state; what it does lives in its versions. `deleted_with_project` marks pipelines that a
-- project's deletion took along, so restoring the project brings back exactly those.
CREATE TABLE pipelines (
    id                   bigserial PRIMARY KEY,
    project_id           bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                 text NOT NULL,
    status               text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused', 'failed')),
    version              integer NOT NULL DEFAULT 1,
    deployed_version     integer,
    deployed_at          timestamptz,
    created_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    deleted_by           text,
    deleted_with_project boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX pipelines_live_name_key ON pipelines (project_id, lower(name)) WHERE deleted_at IS NULL;
CREATE INDEX pipelines_project_idx ON pipelines (project_id);
CREATE INDEX pipelines_deleted_at_idx ON pipelines (deleted_at) WHERE deleted_at IS NOT NULL;

-- Every version of every pipeline, never changed once written.
CREATE TABLE pipeline_versions (
    pipeline_id   bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    version       integer NOT NULL,
    specification jsonb NOT NULL,
    change        text NOT NULL,
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pipeline_id, version)
);

-- Runs: of a pipeline (by hand or by the scheduler) or of another job kind. One job id, one run.
CREATE TABLE runs (
    id                bigserial PRIMARY KEY,
    job_id            text NOT NULL UNIQUE,
    kind              text NOT NULL,
    pipeline_id       bigint REFERENCES pipelines (id) ON DELETE CASCADE,
    pipeline_version  integer,
    connection_id     bigint,
    task_id           bigint,
    scheduler_run_id  text,
    trigger           text NOT NULL,
    status            text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'success', 'failed', 'cancelled')),
    parameters        jsonb NOT NULL DEFAULT '{}',
    requested_by      text,
    queued_at         timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    cancel_requested_at timestamptz,
    rows_processed    bigint NOT NULL DEFAULT 0,
    bytes_processed   bigint NOT NULL DEFAULT 0,
    extraction_ms     double precision NOT NULL DEFAULT 0,
    transformation_ms double precision NOT NULL DEFAULT 0,
    loading_ms        double precision NOT NULL DEFAULT 0,
    error_code        text,
    error             text,
    result            jsonb
);
CREATE INDEX runs_pipeline_idx ON runs (pipeline_id, queued_at DESC, id DESC);
CREATE INDEX runs_scheduler_run_idx ON runs (scheduler_run_id) WHERE scheduler_run_id IS NOT NULL;

-- What happened during a run, for GET /runs/{id}/logs.
CREATE TABLE run_logs (
    id         bigserial PRIMARY KEY,
    run_id     bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    logged_at  timestamptz NOT NULL DEFAULT now(),
    level      text NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    message    text NOT NULL
);
CREATE INDEX run_logs_run_idx ON run_logs (run_id, id);
