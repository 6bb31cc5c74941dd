-- SQLite only (spans find their trace through the trace's row id there); PostgreSQL keeps (project_id, trace_id, span_id).
SELECT 1;
