-- Idempotency keys of committed log-batch requests: a retried request with the same key is not applied twice.
CREATE TABLE write_requests (
    key        TEXT   PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE INDEX write_requests_by_age ON write_requests (created_at);
