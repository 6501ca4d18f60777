"""Gives the contract test's fresh platform something to work on: a connection to the platform's own database, a
project, a deployed pipeline reading one of its tables, and a run, so schemathesis reaches the code behind the
routes that name them (project_1, pipeline_1, run_1 in schemathesis.toml) instead of their 404s.

    python seed.py GATEWAY_URL TOKEN PG_HOST PG_PORT PG_DATABASE PG_USER PG_PASSWORD_FILE
"""

import json
import sys
import urllib.error
import urllib.request


def call(gateway, token, method, path, body=None, expect=(200, 201, 202)):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(gateway + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    if status not in expect:
        sys.exit(f"seed: {method} {path} answered {status}: {text[:500]!r}")
    return json.loads(text) if text else {}


def main():
    gateway, token, host, port, database, user, password_file = sys.argv[1:8]
    with open(password_file) as file:
        password = file.read().strip()
    connection = call(gateway, token, "POST", "/api/v1/connections/", {
        "name": "contract", "host": host, "port": int(port), "database": database, "username": user,
        "password": password, "sslmode": "disable"})["id"]
    project = call(gateway, token, "POST", "/api/v1/projects", {"name": "Contract", "description": "seeded"})["id"]
    pipeline = call(gateway, token, "POST", "/api/v1/pipelines", {
        "project_id": project, "name": "Projects copy", "schedule": "0 3 * * *",
        "sources": [{"id": "src", "type": "postgresql", "connection_id": connection,
                     "config": {"table": "pipelines.projects"}, "incremental": {"cursor_column": "updated_at"}}],
        "transformations": [{"type": "filter", "condition": "id > 0"}, {"type": "select", "columns": ["id", "name"]}],
        "targets": [{"id": "dst", "type": "postgresql", "connection_id": connection,
                     "config": {"table": "public.contract_copy", "mode": "upsert", "key": ["id"], "create_table": True}}],
    })["id"]
    call(gateway, token, "POST", f"/api/v1/pipelines/{pipeline}/deploy")
    run = call(gateway, token, "POST", f"/api/v1/pipelines/{pipeline}/run", {"parameters": {"day": "2025-10-01"}})["run_id"]
    seeded = {"project": project, "pipeline": pipeline, "run": run}
    # schemathesis.toml names these ids: a platform that was not fresh would test other resources than it says.
    if seeded != {"project": "project_1", "pipeline": "pipeline_1", "run": "run_1"}:
        sys.exit(f"seed: expected project_1, pipeline_1 and run_1 on a fresh platform, got {seeded}")
    print(json.dumps(seeded))


if __name__ == "__main__":
    main()
