"""The schema of the SQLite file, as the migrations that build it."""

from __future__ import annotations

# Each entry migrates the schema from version i to i + 1. Append only; never edit one that
# has shipped.
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
        create_time INTEGER NOT NULL,
        update_time INTEGER NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        message_count INTEGER NOT NULL DEFAULT 0,
        active_turn_id TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE session_labels (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID;
    CREATE INDEX session_labels_by_value ON session_labels(key, value, session_id);
    CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        turn_id TEXT NOT NULL,
        role TEXT NOT NULL,
        body TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        PRIMARY KEY (session_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        turn_id TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE turns (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        start_time INTEGER NOT NULL,
        end_time INTEGER NOT NULL DEFAULT 0,
        reason TEXT,
        error_code TEXT NOT NULL DEFAULT '',
        error_message TEXT NOT NULL DEFAULT '',
        usage TEXT NOT NULL,
        PRIMARY KEY (session_id, turn_id)
    ) WITHOUT ROWID;
    CREATE TABLE file_changes (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        path TEXT NOT NULL,
        change TEXT NOT NULL,
        create_time INTEGER NOT NULL
    );
    CREATE INDEX file_changes_by_session ON file_changes(session_id, turn_id);
    """,
    """
    ALTER TABLE sessions ADD COLUMN approval_timeout_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN approval_rules TEXT NOT NULL DEFAULT '[]';
    """,
    """
    ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
    CREATE INDEX sessions_by_tenant ON sessions(tenant, id);
    """,
    """
    ALTER TABLE sessions ADD COLUMN todos TEXT NOT NULL DEFAULT '[]';
    """,
    """
    ALTER TABLE sessions ADD COLUMN profile TEXT NOT NULL DEFAULT 'default';
    """,
    """
    ALTER TABLE sessions ADD COLUMN parent_session_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN subagent_session_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN parent_call_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN mcp_servers TEXT NOT NULL DEFAULT '[]';
    """,
    """
    ALTER TABLE sessions ADD COLUMN sandbox TEXT NOT NULL DEFAULT '';
    """,
    """
    CREATE TABLE queued_turns (
        turn_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        body TEXT NOT NULL,
        create_time INTEGER NOT NULL
    );
    CREATE INDEX queued_turns_by_session ON queued_turns(session_id, position);
    """,
    """
    ALTER TABLE sessions ADD COLUMN budget TEXT NOT NULL DEFAULT '{}';
    """,
)
