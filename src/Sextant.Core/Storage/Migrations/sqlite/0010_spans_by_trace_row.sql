-- Spans find their trace through the trace summary's row id instead of the trace id. Trace ids are random, so a
-- key that starts with one lands on a random page of its index: a commit of N new traces wrote about 2N random
-- index pages (the spans' key and the traces' key), each copied once more by the checkpoint. New traces get
-- ascending row ids, so a span's key (trace_row, span_id) is appended at the end of its index, and only the
-- traces' key takes random inserts. A trace row is one (project, trace id), so the new key deduplicates spans as
-- (project_id, trace_id, span_id) did. PostgreSQL keeps its key (its migration 0010 does nothing).
ALTER TABLE spans ADD COLUMN trace_row INTEGER;
UPDATE spans SET trace_row = (SELECT t.id FROM traces t WHERE t.project_id = spans.project_id AND t.trace_id = spans.trace_id);
DROP INDEX spans_by_id;
CREATE UNIQUE INDEX spans_by_trace ON spans (trace_row, span_id);
