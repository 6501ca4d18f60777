-- The outcome of the latest POST /connections/{id}/test, shown by the connector listing of 002.
ALTER TABLE connections ADD COLUMN last_tested_at timestamptz, ADD COLUMN last_test_status text;
