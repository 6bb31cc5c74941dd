-- Dataset versioning: which blobs a project holds, versioned datasets and their versions (manifests live as blobs).
-- A project may read or reference a blob only once it has uploaded that content itself: knowing a hash is not
-- enough to read another project's data, nor to learn that it exists.
CREATE TABLE project_blobs (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (project_id, sha256)
) WITHOUT ROWID;

CREATE TABLE versioned_datasets (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects(id),
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    -- The number the next version gets (gap-free, like registered models).
    next_version      INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE dataset_versions (
    id             INTEGER PRIMARY KEY,
    dataset_id     INTEGER NOT NULL REFERENCES versioned_datasets(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    -- SHA-256 of the canonical manifest, which is stored as the blob with that address.
    digest         TEXT    NOT NULL,
    file_count     INTEGER NOT NULL,
    total_size     INTEGER NOT NULL,
    message        TEXT    NOT NULL,
    creation_time  INTEGER NOT NULL,
    -- JSON list of the version's tabular files: path, format, rows, columns.
    tables         TEXT    NOT NULL,
    -- The blob holding the JSON profile of the version's tabular files; null when it has none.
    profile_sha256 TEXT,
    UNIQUE (dataset_id, version)
);

-- Model flavors Sextant reads itself (onnx, mlnet) or "opaque", and the signature read from the model.
ALTER TABLE model_versions ADD COLUMN flavor TEXT;
ALTER TABLE model_versions ADD COLUMN signature TEXT;
