-- LLM traces: spans (generations and generic spans), a summary row per trace, the price catalog, and the
-- gateway's providers and routes.
CREATE TABLE spans (
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
    PRIMARY KEY (project_id, trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX spans_by_time ON spans (project_id, start_time);
CREATE INDEX spans_by_model ON spans (project_id, model, start_time);

CREATE TABLE traces (
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
    tags             TEXT    NOT NULL,
    PRIMARY KEY (project_id, trace_id)
) WITHOUT ROWID;
CREATE INDEX traces_by_time ON traces (project_id, start_time, trace_id);
CREATE INDEX traces_by_session ON traces (project_id, session_id, start_time);
CREATE INDEX traces_by_user ON traces (project_id, user_id, start_time);

-- Prices in USD per million tokens. project_id null: the catalog every project shares (shipped or admin-set).
CREATE TABLE prices (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER REFERENCES projects(id),
    model          TEXT    NOT NULL,
    provider       TEXT,
    effective_from INTEGER NOT NULL,
    input          REAL,
    output         REAL,
    cached_input   REAL,
    cache_write    REAL,
    reasoning      REAL,
    tiers          TEXT,
    source         TEXT    NOT NULL,
    created_time   INTEGER NOT NULL
);
CREATE INDEX prices_by_model ON prices (model);

CREATE TABLE gateway_providers (
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    base_url     TEXT    NOT NULL,
    -- The provider's API key, encrypted (ASP.NET Core Data Protection); never returned.
    secret       TEXT,
    updated_time INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
) WITHOUT ROWID;

CREATE TABLE gateway_routes (
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT    NOT NULL,
    config       TEXT    NOT NULL,
    updated_time INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
) WITHOUT ROWID;
