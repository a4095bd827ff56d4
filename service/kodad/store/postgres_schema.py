"""The schema of the PostgreSQL database, as the migrations that build it."""

from __future__ import annotations

# Each entry migrates the schema from version i to i + 1. Append only.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        workspace TEXT NOT NULL,
        provider TEXT NOT NULL,
        approval_mode TEXT NOT NULL,
        loop_cap INTEGER NOT NULL,
        system_prompt TEXT NOT NULL,
        usage TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        update_time BIGINT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0,
        message_count BIGINT NOT NULL DEFAULT 0,
        active_turn_id TEXT NOT NULL DEFAULT '',
        approval_timeout_ms BIGINT NOT NULL DEFAULT 0,
        approval_rules TEXT NOT NULL DEFAULT '[]',
        tenant TEXT NOT NULL DEFAULT '',
        todos TEXT NOT NULL DEFAULT '[]',
        profile TEXT NOT NULL DEFAULT 'default',
        parent_session_id TEXT NOT NULL DEFAULT '',
        mcp_servers TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX sessions_by_tenant ON sessions(tenant, id);
    CREATE TABLE session_labels (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    );
    CREATE INDEX session_labels_by_value ON session_labels(key, value, session_id);
    CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx BIGINT NOT NULL,
        turn_id TEXT NOT NULL,
        role TEXT NOT NULL,
        body TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        PRIMARY KEY (session_id, idx)
    );
    CREATE TABLE events (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        turn_id TEXT NOT NULL,
        create_time BIGINT NOT NULL,
        payload TEXT NOT NULL,
        subagent_session_id TEXT NOT NULL DEFAULT '',
        parent_call_id TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (session_id, seq)
    );
    CREATE TABLE turns (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        start_time BIGINT NOT NULL,
        end_time BIGINT NOT NULL DEFAULT 0,
        reason TEXT,
        error_code TEXT NOT NULL DEFAULT '',
        error_message TEXT NOT NULL DEFAULT '',
        usage TEXT NOT NULL,
        PRIMARY KEY (session_id, turn_id)
    );
    CREATE TABLE file_changes (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        path TEXT NOT NULL,
        change TEXT NOT NULL,
        create_time BIGINT NOT NULL
    );
    CREATE INDEX file_changes_by_session ON file_changes(session_id, turn_id);
    -- Who runs the session's turn. A released lease keeps its row (expired), so tokens only
    -- grow.
    CREATE TABLE leases (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        turn_id TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    -- Commands sent by one replica to the turn another owns; the owner deletes what it takes.
    CREATE TABLE commands (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
    """
    ALTER TABLE sessions ADD COLUMN sandbox TEXT NOT NULL DEFAULT '';
    """,
    """
    CREATE TABLE queued_turns (
        turn_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        position BIGINT NOT NULL,
        body TEXT NOT NULL,
        create_time BIGINT NOT NULL
    );
    CREATE INDEX queued_turns_by_session ON queued_turns(session_id, position);
    """,
    """
    ALTER TABLE sessions ADD COLUMN budget TEXT NOT NULL DEFAULT '{}';
    """,
)
