-- A runner owns a run through a lease it renews while it works; another runner takes the run over only when the
-- lease has expired (its owner died). The compiled query is kept with the run, for its details.
ALTER TABLE runs ADD COLUMN owner text;
ALTER TABLE runs ADD COLUMN lease_until timestamptz;
ALTER TABLE runs ADD COLUMN compiled_sql text;
