-- Gateway limits per project and per API key: requests and tokens per minute, spending per day and month (USD).
CREATE TABLE gateway_limits (
    project_id         INTEGER NOT NULL REFERENCES projects(id),
    -- '' for the project's own limit, else the API key's id.
    key_id             TEXT    NOT NULL,
    requests_per_minute INTEGER,
    tokens_per_minute  INTEGER,
    daily_budget       REAL,
    monthly_budget     REAL,
    updated_time       INTEGER NOT NULL,
    PRIMARY KEY (project_id, key_id)
) WITHOUT ROWID;

-- Which API key made a gateway call, so that per-key spending can be summed.
ALTER TABLE spans ADD COLUMN api_key_id TEXT;
CREATE INDEX spans_by_key ON spans (project_id, api_key_id, start_time);
