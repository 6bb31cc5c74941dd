CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    key_id       TEXT    NOT NULL UNIQUE,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    secret_hash  TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

CREATE TABLE experiments (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects(id),
    name              TEXT    NOT NULL,
    artifact_location TEXT    NOT NULL,
    lifecycle_stage   TEXT    NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    run_uuid        TEXT    NOT NULL UNIQUE,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    experiment_id   INTEGER NOT NULL REFERENCES experiments(id),
    name            TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    lifecycle_stage TEXT    NOT NULL
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, id);

CREATE TABLE params (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX params_by_key_value ON params (key, value);

CREATE TABLE run_tags (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    key    TEXT    NOT NULL,
    value  TEXT    NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX run_tags_by_key_value ON run_tags (key, value);

-- Every metric point. NaN is stored as value 0 with is_nan 1 (SQLite turns NaN into NULL).
CREATE TABLE metrics (
    id        INTEGER PRIMARY KEY,
    run_id    INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL
);
CREATE INDEX metrics_history ON metrics (run_id, key, step, id);

-- The point with the greatest (step, timestamp, value) of each run and key: what search filters and sorts on.
CREATE TABLE latest_metrics (
    run_id    INTEGER NOT NULL,
    key       TEXT    NOT NULL,
    value     REAL    NOT NULL,
    is_nan    INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_by_key_value ON latest_metrics (key, value);

CREATE TABLE datasets (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    source_type   TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    schema        TEXT,
    profile       TEXT,
    UNIQUE (experiment_id, name, digest)
);

CREATE TABLE run_inputs (
    run_id     INTEGER NOT NULL REFERENCES runs(id),
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    context    TEXT,
    tags_json  TEXT    NOT NULL,
    PRIMARY KEY (run_id, dataset_id)
) WITHOUT ROWID;

-- Artifact paths are "<experiment>/<run>/artifacts/<relative path>" (MLflow's artifact proxy layout).
CREATE TABLE artifact_files (
    project_id    INTEGER NOT NULL REFERENCES projects(id),
    path          TEXT    NOT NULL,
    sha256        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    modified_time INTEGER NOT NULL,
    PRIMARY KEY (project_id, path)
) WITHOUT ROWID;
