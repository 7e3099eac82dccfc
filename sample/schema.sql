-- Federation schema for tpm-autonomic tests and demos.
--
-- The four tables the daemon reads or writes, with the extra columns that
-- real federation deployments have. The column types are deliberately
-- mixed the way those deployments mix them: `council_votes.confidence` is
-- NUMERIC, `jr_work_queue` uses `timestamp without time zone` while the other
-- tables use `timestamptz`, and most columns accept NULL.
--
-- Running this file again is harmless: every statement is IF NOT EXISTS.

-- One row per council vote. `audit_hash` is the short hex id the federation
-- quotes in instructions ("Council Vote #b82aea3e6ceb8906").
CREATE TABLE IF NOT EXISTS council_votes (
    id               bigserial PRIMARY KEY,
    audit_hash       text,
    question         text,
    recommendation   text,
    confidence       numeric(5,3),
    specialist_count integer,
    voted_at         timestamptz
);

CREATE INDEX IF NOT EXISTS council_votes_voted_at_idx
    ON council_votes (voted_at);

-- Tasks handed to the Jr agents. Both timestamps are in the local time of
-- the session that wrote them, because the columns carry no time zone.
CREATE TABLE IF NOT EXISTS jr_work_queue (
    id            serial PRIMARY KEY,
    task_id       text,
    title         text,
    assigned_jr   text,
    status        text,
    priority      integer,
    error_message text,
    created_at    timestamp,
    updated_at    timestamp without time zone
);

CREATE INDEX IF NOT EXISTS jr_work_queue_status_updated_at_idx
    ON jr_work_queue (status, updated_at);

-- The kanban board.
CREATE TABLE IF NOT EXISTS duyuktv_tickets (
    id           serial PRIMARY KEY,
    title        text,
    status       text,
    assignee     text,
    story_points integer,
    created_at   timestamptz,
    updated_at   timestamptz
);

CREATE INDEX IF NOT EXISTS duyuktv_tickets_status_updated_at_idx
    ON duyuktv_tickets (status, updated_at);

-- The federation's long-term memory, which several daemons append to. The
-- daemon writes one row per basin detection. `memory_hash` is the SHA-256
-- hex digest of `original_content`, so identical content is one memory.
CREATE TABLE IF NOT EXISTS thermal_memory_archive (
    id                bigserial PRIMARY KEY,
    original_content  text NOT NULL,
    temperature_score double precision,
    memory_hash       varchar(64) NOT NULL UNIQUE,
    sacred_pattern    boolean DEFAULT false,
    metadata          jsonb,
    created_at        timestamptz DEFAULT now()
);

CREATE INDEX IF NOT EXISTS thermal_memory_archive_source_idx
    ON thermal_memory_archive ((metadata ->> 'source'));
