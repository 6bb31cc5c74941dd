-- Spans and trace summaries become rowid tables with their keys in unique indexes. As WITHOUT ROWID tables
-- keyed by random trace ids, every new span was written into the middle of a B-tree of whole rows (its JSON
-- included), touching a random page per span; now rows are appended in arrival order and only the small key
-- index takes random inserts. Indexes on columns most spans leave empty (the API key of gateway calls, a
-- trace's user and session, the model of generic spans) only hold the rows that have them. Trace indexes end
-- with trace_id, the list's tie-breaker, which the WITHOUT ROWID table's primary key used to add by itself.
CREATE TABLE spans_by_arrival (
    id                     INTEGER PRIMARY KEY,
    project_id             INTEGER NOT NULL REFERENCES projects(id),
    trace_id               TEXT    NOT NULL,
    span_id                TEXT    NOT NULL,
    parent_span_id         TEXT,
    name                   TEXT    NOT NULL,
    kind                   TEXT    NOT NULL,
    -- Unix microseconds.
    start_time             INTEGER NOT NULL,
    end_time               INTEGER NOT NULL,
    status                 TEXT    NOT NULL,
    status_message         TEXT,
    provider               TEXT,
    model                  TEXT,
    operation              TEXT,
    input_tokens           INTEGER,
    output_tokens          INTEGER,
    cached_input_tokens    INTEGER,
    cache_write_tokens     INTEGER,
    reasoning_tokens       INTEGER,
    tokens_estimated       INTEGER NOT NULL,
    -- USD; null when the model has no known price.
    cost                   REAL,
    cost_saved             REAL,
    time_to_first_token_ms REAL,
    user_id                TEXT,
    session_id             TEXT,
    cache_hit              INTEGER NOT NULL,
    -- JSON: input, output, parameters, attributes, tags, metadata.
    data                   TEXT    NOT NULL,
    api_key_id             TEXT
);
INSERT INTO spans_by_arrival (project_id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status, status_message, provider, model, operation,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, tokens_estimated, cost, cost_saved, time_to_first_token_ms,
    user_id, session_id, cache_hit, data, api_key_id)
SELECT project_id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status, status_message, provider, model, operation,
    input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, tokens_estimated, cost, cost_saved, time_to_first_token_ms,
    user_id, session_id, cache_hit, data, api_key_id
FROM spans ORDER BY start_time;
DROP TABLE spans;
ALTER TABLE spans_by_arrival RENAME TO spans;
CREATE UNIQUE INDEX spans_by_id ON spans (project_id, trace_id, span_id);
CREATE INDEX spans_by_time ON spans (project_id, start_time);
CREATE INDEX spans_by_model ON spans (project_id, model, start_time) WHERE model IS NOT NULL;
CREATE INDEX spans_by_key ON spans (project_id, api_key_id, start_time) WHERE api_key_id IS NOT NULL;

CREATE TABLE traces_by_arrival (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    trace_id         TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    -- Whether the name is the root span's (a span without a parent), which later spans do not replace.
    named_by_root    INTEGER NOT NULL,
    start_time       INTEGER NOT NULL,
    end_time         INTEGER NOT NULL,
    error_count      INTEGER NOT NULL,
    span_count       INTEGER NOT NULL,
    generation_count INTEGER NOT NULL,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    cost             REAL    NOT NULL,
    cost_unknown     INTEGER NOT NULL,
    user_id          TEXT,
    session_id       TEXT,
    -- JSON arrays of distinct values.
    models           TEXT    NOT NULL,
    tags             TEXT    NOT NULL
);
INSERT INTO traces_by_arrival (project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
    cost, cost_unknown, user_id, session_id, models, tags)
SELECT project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
    cost, cost_unknown, user_id, session_id, models, tags
FROM traces ORDER BY start_time;
DROP TABLE traces;
ALTER TABLE traces_by_arrival RENAME TO traces;
CREATE UNIQUE INDEX traces_by_id ON traces (project_id, trace_id);
CREATE INDEX traces_by_time ON traces (project_id, start_time, trace_id);
CREATE INDEX traces_by_session ON traces (project_id, session_id, start_time, trace_id) WHERE session_id IS NOT NULL;
CREATE INDEX traces_by_user ON traces (project_id, user_id, start_time, trace_id) WHERE user_id IS NOT NULL;
