-- Every running replica of observability records itself here at start-up (see InstanceRegistry).
CREATE TABLE service_instances (
    instance_id  text PRIMARY KEY,
    service      text NOT NULL,
    version      text NOT NULL,
    http_port    integer NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);
