-- Evaluation: eval datasets (items in immutable numbered versions), experiments (a dataset version against a
-- target, scored by evaluators) with one row per item run, scores on traces (human feedback and online
-- evaluation), and the online evaluation rules.
CREATE TABLE eval_datasets (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT    NOT NULL,
    description  TEXT,
    next_version INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    updated_time INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE eval_dataset_versions (
    dataset_id   INTEGER NOT NULL REFERENCES eval_datasets(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    item_count   INTEGER NOT NULL,
    added        INTEGER NOT NULL,
    message      TEXT,
    author       TEXT,
    created_time INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, version)
);

-- Every version holds all of its items (a new version copies the ones it keeps), so a version never changes.
CREATE TABLE eval_items (
    dataset_id INTEGER NOT NULL REFERENCES eval_datasets(id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    item_key   TEXT    NOT NULL,
    -- JSON.
    input      TEXT,
    expected   TEXT,
    metadata   TEXT,
    trace_id   TEXT,
    PRIMARY KEY (dataset_id, version, idx)
);

CREATE TABLE eval_experiments (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    -- The public id (a short random hex string).
    experiment_id   TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    dataset_id      INTEGER NOT NULL REFERENCES eval_datasets(id),
    dataset_version INTEGER NOT NULL,
    -- JSON: the target and the evaluators as given (checked when the experiment was made).
    target          TEXT    NOT NULL,
    -- The prompt version a prompt target runs (name@version), for lineage; null for other targets.
    prompt          TEXT,
    evaluators      TEXT    NOT NULL,
    concurrency     INTEGER NOT NULL,
    repeats         INTEGER NOT NULL,
    -- queued, running, completed, failed, cancelled.
    status          TEXT    NOT NULL,
    error           TEXT,
    metadata        TEXT,
    -- JSON: the summary, kept once the experiment completed (its results no longer change).
    summary         TEXT,
    created_by      TEXT,
    created_time    INTEGER NOT NULL,
    finished_time   INTEGER,
    -- The server running it and when it last said so; another replica takes over a run whose heartbeat is stale.
    owner           TEXT,
    heartbeat       INTEGER
);
CREATE INDEX eval_experiments_by_project ON eval_experiments (project_id, id);
CREATE INDEX eval_experiments_by_prompt ON eval_experiments (project_id, prompt) WHERE prompt IS NOT NULL;
CREATE INDEX eval_experiments_by_dataset ON eval_experiments (dataset_id, dataset_version);
CREATE INDEX eval_experiments_unfinished ON eval_experiments (status) WHERE status IN ('queued', 'running');

-- One run of one item. Present only once the run is done, so that a resumed experiment runs what is missing.
CREATE TABLE eval_results (
    experiment_id INTEGER NOT NULL REFERENCES eval_experiments(id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,
    repetition    INTEGER NOT NULL,
    status        TEXT    NOT NULL,
    output        TEXT,
    error         TEXT,
    latency_ms    REAL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost          REAL,
    trace_id      TEXT,
    -- JSON array of scores.
    scores        TEXT    NOT NULL,
    created_time  INTEGER NOT NULL,
    PRIMARY KEY (experiment_id, idx, repetition)
);

CREATE TABLE trace_scores (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    trace_id     TEXT    NOT NULL,
    span_id      TEXT,
    name         TEXT    NOT NULL,
    -- human, api, or online:<rule>.
    source       TEXT    NOT NULL,
    -- numeric, boolean, categorical.
    data_type    TEXT    NOT NULL,
    value        REAL,
    string_value TEXT,
    comment      TEXT,
    -- pass, fail, error for evaluator scores.
    status       TEXT,
    -- The prompt version the scored generation used (name@version) and its A/B arm, when it used one.
    prompt       TEXT,
    arm          TEXT,
    author       TEXT,
    created_time INTEGER NOT NULL
);
CREATE INDEX trace_scores_by_trace ON trace_scores (project_id, trace_id);
CREATE INDEX trace_scores_by_name ON trace_scores (project_id, name, created_time);
CREATE INDEX trace_scores_by_source ON trace_scores (project_id, source, created_time);

CREATE TABLE online_eval_rules (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT    NOT NULL,
    -- JSON.
    filter       TEXT    NOT NULL,
    sample_rate  REAL NOT NULL,
    evaluators   TEXT    NOT NULL,
    enabled      INTEGER NOT NULL,
    -- Spans that started up to here (Unix microseconds) have been looked at.
    watermark    INTEGER NOT NULL,
    -- One replica at a time scores a rule: it holds the lease until then.
    lease_owner  TEXT,
    lease_until  INTEGER,
    created_time INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
