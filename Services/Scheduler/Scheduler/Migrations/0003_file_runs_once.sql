-- A file event is delivered at least once: a file trigger runs once per file, however often it hears of it.
CREATE UNIQUE INDEX task_runs_file_once ON task_runs (task_id, (parameters ->> 'file_id')) WHERE trigger = 'file';
