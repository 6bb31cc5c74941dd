-- The prompt registry: prompts, their immutable numbered versions and their labels; and the audit log, which
-- keeps every label move (a deployment) with who made it.
CREATE TABLE prompts (
    id           INTEGER PRIMARY KEY,
    project_id   INTEGER NOT NULL REFERENCES projects(id),
    name         TEXT    NOT NULL,
    -- text or chat; fixed by the first version.
    type         TEXT    NOT NULL,
    -- JSON array.
    tags         TEXT    NOT NULL,
    -- JSON: a traffic split between labels ([{"label", "weight"}]) for calls that name no label; null: none.
    split        TEXT,
    next_version INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    updated_time INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE prompt_versions (
    prompt_id    INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    -- JSON: a string (text) or an array of messages (chat).
    template     TEXT    NOT NULL,
    config       TEXT,
    message      TEXT,
    author       TEXT,
    created_time INTEGER NOT NULL,
    PRIMARY KEY (prompt_id, version)
);

CREATE TABLE prompt_labels (
    prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    label     TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (prompt_id, label)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    time       INTEGER NOT NULL,
    -- The API key id, or "anonymous".
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    -- What was acted on, e.g. prompt:support/answer.
    target     TEXT    NOT NULL,
    -- JSON.
    detail     TEXT    NOT NULL
);
CREATE INDEX audit_by_target ON audit_log (project_id, target, id);
