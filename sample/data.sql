-- Sample data of a federation that is stuck: it trips all four basin
-- signals at the default thresholds. Load it after schema.sql into an empty
-- database (it raises an error and loads nothing when the federation tables
-- already hold rows).
--
-- Signals, as counted by the plain SQL conditions right after loading:
--
--   council-disagreement  12 votes in the last 24 h, 3 of them below 0.7
--                         (0.581, 0.640, 0.655). Not counted: one vote at
--                         exactly 0.700, one with NULL confidence, and a
--                         0.612 vote 26 h ago.
--   dlq-depth             7 `failed` tasks updated in the last 48 h
--                         (threshold 5). Not counted: a failed task whose
--                         updated_at is NULL.
--   jr-failure-rate       13 tasks finished in the last 24 h, 4 failed and
--                         9 completed: 30.8 % (threshold 25 %, minimum 4).
--   stale-kanban          4 `in_progress` tickets last updated 8, 12, 19
--                         and 41 days ago. Not counted: 18 recent ones and
--                         one whose updated_at is NULL.
--   work-state            85 `pending` Jr tasks and 144 `open` tickets
--                         (informational, never alerts).
--
-- Rows: 1000 in each of council_votes, jr_work_queue, duyuktv_tickets and
-- thermal_memory_archive. The thermal rows come from other federation
-- daemons, so count the daemon's own records by
-- `metadata ->> 'source' = 'tpm-autonomic-basin-detect'`.
--
-- Every value is fixed except the timestamps, which are relative to now().
-- Rows that a time window must count are at least 2 h inside it, and rows it
-- must leave out are at least 2 h outside it, so the counts hold for 2 h
-- after loading. jr_work_queue timestamps have no time zone and are written
-- in the loading session's TimeZone. Its rows are at least 8 h from the edge
-- of either window, so a reader whose TimeZone is up to 6 h away from the
-- loader's gets the same counts (checked with America/Chicago and
-- Asia/Kolkata against a UTC load).
--
-- Some titles contain MarkdownV2 reserved characters, emoji or Cherokee
-- syllabics, and some titles and confidences are NULL, as in production.

BEGIN;

DO $guard$
BEGIN
    IF EXISTS (SELECT 1 FROM council_votes)
        OR EXISTS (SELECT 1 FROM jr_work_queue)
        OR EXISTS (SELECT 1 FROM duyuktv_tickets)
        OR EXISTS (SELECT 1 FROM thermal_memory_archive)
    THEN
        RAISE EXCEPTION 'sample data needs empty federation tables'
            USING HINT = 'Create a new database and load sample/schema.sql first.';
    END IF;
END
$guard$;

-- council_votes ------------------------------------------------------------

-- 987 older votes, from 30 hours to about 115 days ago. One in 37 has low
-- confidence, and votes older than 100 days predate the specialist_count
-- column, so it is NULL there.
INSERT INTO council_votes
    (audit_hash, question, recommendation, confidence, specialist_count, voted_at)
SELECT
    substr(md5('council-vote-' || n), 1, 16),
    format((ARRAY[
        'Approve the Jr instruction for kanban #%s?',
        'Should the thermal memory decay job run nightly for kanban #%s?',
        'Merge the executor sandbox change proposed in kanban #%s?',
        'Raise the Jr retry limit from 2 to 3 (kanban #%s)?',
        'Adopt the new secrets loader across daemons (kanban #%s)?',
        'Archive council transcripts older than 90 days (kanban #%s)?',
        'Grant the Research Jr read access to the audit tables (kanban #%s)?',
        'Replace the cron-based staleness scorer with a daemon (kanban #%s)?'
    ])[1 + n % 8], 1200 + n * 3),
    CASE
        WHEN n % 37 = 0 THEN 'HOLD'
        WHEN r.h % 100 < 55 THEN 'PROCEED'
        ELSE 'PROCEED WITH CAUTION'
    END,
    CASE
        WHEN n % 37 = 0 THEN 0.520 + (r.h % 170) / 1000.0
        ELSE 0.710 + (r.h % 280) / 1000.0
    END,
    CASE WHEN n > 860 THEN NULL ELSE 5 + (r.h % 3) * 2 END,
    now() - interval '30 hours' - n * interval '2 hours 47 minutes'
FROM generate_series(0, 986) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('council-confidence-' || n), 1, 7))::bit(28)::int AS h
) AS r;

-- 13 recent votes with fixed confidences, 12 of them in the last 24 hours.
INSERT INTO council_votes
    (audit_hash, question, recommendation, confidence, specialist_count, voted_at)
SELECT
    substr(md5('council-vote-recent-' || v.n), 1, 16),
    v.question, v.recommendation, v.confidence, v.specialists, now() - v.age
FROM (VALUES
    (1,  'Enable the TPM autonomic daemon in monitor-only mode?',
         'PROCEED', 0.912, 7, interval '1 hour'),
    (2,  'Move the Jr executor logs to the shared log folder?',
         'PROCEED', 0.887, 7, interval '2 hours 30 minutes'),
    (3,  'Ship build-7 (retry) [v2.1]_final! to every node?',
         'HOLD', 0.640, 7, interval '4 hours'),
    (4,  'Rotate the Telegram bot token this week?',
         'PROCEED', 0.934, 7, interval '5 hours 15 minutes'),
    (5,  'Split the council into two specialist panels?',
         NULL, NULL, NULL, interval '7 hours'),
    (6,  'Let Jr agents reopen their own failed tasks?',
         'PROCEED WITH CAUTION', 0.700, 7, interval '9 hours'),
    (7,  'Drop the legacy kanban columns after the migration?',
         'HOLD', 0.581, 7, interval '11 hours'),
    (8,  'Cache council embeddings for 24 hours?',
         'PROCEED', 0.856, 7, interval '13 hours'),
    (9,  'Increase the thermal memory retention to 400 days?',
         'PROCEED WITH CAUTION', 0.793, 7, interval '15 hours'),
    (10, 'Run the Jr queue at night only, to save power?',
         'REVISE', 0.655, 7, interval '18 hours'),
    (11, 'Publish the weekly federation health summary?',
         'PROCEED', 0.948, 7, interval '20 hours'),
    (12, 'Accept the Documentation Jr''s style guide?',
         'PROCEED', 0.871, 7, interval '22 hours'),
    (13, 'Pause new kanban intake until the backlog halves?',
         'HOLD', 0.612, 7, interval '26 hours')
) AS v (n, question, recommendation, confidence, specialists, age);

-- jr_work_queue ------------------------------------------------------------

-- 888 finished tasks, all last updated more than 60 hours ago: mostly
-- completed, one in 25 failed, one in 40 cancelled.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('jr-task-' || n), 1, 12),
    (ARRAY[
        'Add retry with backoff to the Telegram bridge',
        'Backfill specialist_count on old council votes',
        'Write tests for the staleness scorer',
        'Document the secrets loader',
        'Rotate the sacred fire daemon log files',
        'Refactor thermal memory retrieval',
        'Add an index on jr_work_queue.status',
        'Summarise yesterday''s council votes',
        'Migrate kanban attachments to object storage',
        'Fix the timezone of Jr queue timestamps',
        'Upgrade psycopg2 on the worker nodes',
        'Translate the onboarding notes'
    ])[1 + n % 12] || ' (kanban #' || (1000 + n) || ')',
    (ARRAY[
        'Software Engineer Jr.', 'Research Jr.', 'Infrastructure Jr.',
        'Documentation Jr.', 'Integration Jr.'
    ])[1 + r.h % 5],
    CASE
        WHEN n % 25 = 0 THEN 'failed'
        WHEN n % 40 = 7 THEN 'cancelled'
        ELSE 'completed'
    END,
    1 + r.h % 10,
    CASE WHEN n % 25 = 0 THEN
        (ARRAY[
            'executor timeout after 300 s',
            'pytest: 3 failed, 41 passed',
            'patch did not apply: hunk #2 FAILED at 118',
            'executor blocked: writing .service files is not allowed',
            'psycopg2.errors.UndefinedColumn: column "specialist_count" does not exist',
            'ModuleNotFoundError: No module named ''yaml'''
        ])[1 + r.h % 6]
    END,
    now() - interval '60 hours' - n * interval '4 hours 30 minutes',
    now() - interval '60 hours' - n * interval '4 hours 30 minutes'
        + (10 + r.h % 240) * interval '1 minute'
FROM generate_series(1, 888) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('jr-task-shape-' || n), 1, 7))::bit(28)::int AS h
) AS r;

-- 21 finished tasks at fixed ages. In the last 24 hours, 9 completed and 4
-- failed. From 24 to 48 hours ago, 3 failed and 4 completed. One failed
-- task has never had its updated_at set.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('jr-task-recent-' || v.n), 1, 12),
    v.title, v.assigned_jr, v.status, v.priority, v.error_message,
    now() - v.age - interval '45 minutes',
    CASE WHEN v.never_updated THEN NULL ELSE now() - v.age END
FROM (VALUES
    (1,  'Add the work-state summary to the daily report',
         'Software Engineer Jr.', 'completed', 6, NULL::text,
         interval '1 hour', false),
    (2,  'build-7 (retry) [v2.1]_final!',
         'Integration Jr.', 'failed', 8,
         'executor timeout after 300 s',
         interval '2 hours', false),
    (3,  'Tag the council transcripts by topic',
         'Research Jr.', 'completed', 4, NULL,
         interval '2 hours 40 minutes', false),
    (4,  NULL,
         'Infrastructure Jr.', 'failed', 7,
         'task payload had no title; executor refused it',
         interval '3 hours 30 minutes', false),
    (5,  'Clean up stale branches on the build node',
         'Infrastructure Jr.', 'completed', 3, NULL,
         interval '4 hours', false),
    (6,  'Translate the ᏣᎳᎩ glossary 🔥 into the README',
         'Documentation Jr.', 'failed', 5,
         'UnicodeEncodeError: ''latin-1'' codec can''t encode character',
         interval '6 hours', false),
    (7,  'Add a health endpoint to the Telegram bridge',
         'Software Engineer Jr.', 'completed', 6, NULL,
         interval '6 hours 30 minutes', false),
    (8,  'Vacuum the thermal memory archive',
         'Infrastructure Jr.', 'completed', 2, NULL,
         interval '7 hours', false),
    (9,  'Re-run the flaky council vote tests',
         'Software Engineer Jr.', 'failed', 7,
         'pytest: 3 failed, 41 passed',
         interval '9 hours', false),
    (10, 'Summarise the week''s Jr failures',
         'Research Jr.', 'completed', 4, NULL,
         interval '9 hours 30 minutes', false),
    (11, 'Pin the wasm toolchain version',
         'Integration Jr.', 'completed', 5, NULL,
         interval '10 hours', false),
    (12, 'Write the kanban export script',
         'Software Engineer Jr.', 'completed', 4, NULL,
         interval '10 hours 15 minutes', false),
    (13, 'Proofread the Phase 1 instruction',
         'Documentation Jr.', 'completed', 2, NULL,
         interval '10 hours 30 minutes', false),
    (14, 'Migrate the secrets file to the new loader',
         'Infrastructure Jr.', 'failed', 8,
         'executor blocked: writing .service files is not allowed',
         interval '32 hours', false),
    (15, 'Add type hints to the council client',
         'Software Engineer Jr.', 'completed', 3, NULL,
         interval '33 hours', false),
    (16, 'Reindex council_votes',
         'Infrastructure Jr.', 'completed', 2, NULL,
         interval '35 hours', false),
    (17, 'Backfill audit hashes for old votes',
         'Research Jr.', 'failed', 6,
         'psycopg2.OperationalError: server closed the connection unexpectedly',
         interval '36 hours', false),
    (18, 'Draft the Phase 2 council calling design',
         'Research Jr.', 'completed', 5, NULL,
         interval '38 hours', false),
    (19, 'Port the GPU power monitor to the new logger',
         'Integration Jr.', 'failed', 7,
         'patch did not apply: hunk #2 FAILED at 118',
         interval '40 hours', false),
    (20, 'Review the Jr executor allow list',
         'Software Engineer Jr.', 'completed', 6, NULL,
         interval '44 hours', false),
    (21, 'Import the legacy kanban archive',
         'Integration Jr.', 'failed', 5,
         'executor crashed before recording the update time',
         interval '20 days', true)
) AS v (n, title, assigned_jr, status, priority, error_message, age,
        never_updated);

-- 6 tasks in progress, picked up within the last 3 hours.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('jr-task-running-' || n), 1, 12),
    (ARRAY[
        'Profile the council vote query',
        'Add the stale kanban report to the digest',
        'Write the retention policy for Jr logs',
        'Check every daemon for hard-coded passwords',
        'Build the detector plugins in CI',
        'Compare council confidence across panels'
    ])[n],
    (ARRAY[
        'Software Engineer Jr.', 'Research Jr.', 'Infrastructure Jr.',
        'Documentation Jr.', 'Integration Jr.'
    ])[1 + n % 5],
    'in_progress',
    3 + n,
    NULL,
    now() - n * interval '35 minutes' - interval '2 hours',
    now() - n * interval '30 minutes'
FROM generate_series(1, 6) AS n;

-- 85 pending tasks created over the last 9 days. Three were never touched
-- after creation, so their updated_at is NULL.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('jr-task-pending-' || n), 1, 12),
    (ARRAY[
        'Add pagination to the kanban API',
        'Explain council abstentions in the digest',
        'Measure thermal memory growth per week',
        'Move the Telegram templates into files',
        'Test the daemon against a read-only replica',
        'Write a runbook for a full Jr queue',
        'Retire the old staleness scorer cron job'
    ])[1 + n % 7] || ' (kanban #' || (1900 + n) || ')',
    CASE WHEN n % 4 = 0 THEN NULL ELSE
        (ARRAY[
            'Software Engineer Jr.', 'Research Jr.', 'Infrastructure Jr.',
            'Documentation Jr.', 'Integration Jr.'
        ])[1 + n % 5]
    END,
    'pending',
    1 + (n * 7) % 10,
    NULL,
    now() - n * interval '2 hours 30 minutes',
    CASE WHEN n IN (17, 42, 80) THEN NULL
         ELSE now() - n * interval '2 hours 30 minutes'
    END
FROM generate_series(1, 85) AS n;

-- duyuktv_tickets ----------------------------------------------------------

-- 937 older tickets created from 9 days to about 204 days ago: mostly done,
-- with an old backlog of open and blocked ones.
INSERT INTO duyuktv_tickets
    (title, status, assignee, story_points, created_at, updated_at)
SELECT
    (ARRAY[
        'Council vote dashboard',
        'Jr queue retry policy',
        'Thermal memory search',
        'Telegram digest formatting',
        'Secrets loader rollout',
        'Kanban archive export',
        'Executor sandbox hardening',
        'Nightly backup check',
        'Specialist panel rotation',
        'Power usage report'
    ])[1 + n % 10] || ': ' ||
    (ARRAY[
        'design', 'first version', 'tests', 'docs', 'follow-up fixes',
        'review comments', 'rollout'
    ])[1 + r.h % 7],
    CASE
        WHEN n % 9 = 0 THEN 'open'
        WHEN n % 31 = 0 THEN 'blocked'
        ELSE 'done'
    END,
    CASE WHEN n % 9 = 0 THEN NULL ELSE
        (ARRAY[
            'tpm', 'Software Engineer Jr.', 'Research Jr.',
            'Infrastructure Jr.', 'Documentation Jr.'
        ])[1 + r.h % 5]
    END,
    CASE WHEN n % 9 = 0 AND r.h % 2 = 0 THEN NULL
         ELSE (ARRAY[1, 2, 3, 5, 8, 13])[1 + r.h % 6]
    END,
    now() - interval '9 days' - n * interval '5 hours',
    now() - interval '9 days' - n * interval '5 hours'
        + (r.h % 96) * interval '1 hour'
FROM generate_series(1, 937) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('ticket-shape-' || n), 1, 7))::bit(28)::int AS h
) AS r;

-- 5 tickets stuck in progress: 4 not updated for 8 to 41 days, and one
-- whose updated_at was never set.
INSERT INTO duyuktv_tickets
    (title, status, assignee, story_points, created_at, updated_at)
VALUES
    ('Federation health digest for the Chief', 'in_progress',
     'Software Engineer Jr.', 5,
     now() - interval '20 days', now() - interval '8 days'),
    ('build-7 (retry) [v2.1]_final!', 'in_progress',
     'Integration Jr.', 8,
     now() - interval '25 days', now() - interval '12 days'),
    (NULL, 'in_progress',
     'Infrastructure Jr.', 3,
     now() - interval '30 days', now() - interval '19 days'),
    ('Council quorum rules *draft* v0.3', 'in_progress',
     'tpm', 13,
     now() - interval '60 days', now() - interval '41 days'),
    ('Migrate the kanban to the new board', 'in_progress',
     NULL, NULL,
     now() - interval '30 days', NULL);

-- 18 tickets in progress and updated within the last 6 days.
INSERT INTO duyuktv_tickets
    (title, status, assignee, story_points, created_at, updated_at)
SELECT
    (ARRAY[
        'TPM autonomic daemon', 'Detector plugin SDK', 'Jr failure triage',
        'Council confidence report', 'Kanban cleanup', 'Thermal memory dedup'
    ])[1 + n % 6] || ': step ' || n,
    'in_progress',
    (ARRAY[
        'tpm', 'Software Engineer Jr.', 'Research Jr.',
        'Infrastructure Jr.', 'Documentation Jr.'
    ])[1 + n % 5],
    (ARRAY[1, 2, 3, 5, 8])[1 + n % 5],
    now() - interval '12 days' + n * interval '5 hours',
    now() - n * interval '8 hours'
FROM generate_series(1, 18) AS n;

-- 40 open tickets created within the last 14 days.
INSERT INTO duyuktv_tickets
    (title, status, assignee, story_points, created_at, updated_at)
SELECT
    (ARRAY[
        'Alert when the Jr queue stalls',
        'Show council confidence trends',
        'Archive closed tickets yearly',
        'Add story points to the digest',
        'Document the node naming scheme'
    ])[1 + n % 5] || ' (' || n || ')',
    'open',
    NULL,
    CASE WHEN n % 3 = 0 THEN NULL ELSE (ARRAY[1, 2, 3, 5, 8])[1 + n % 5] END,
    now() - n * interval '8 hours',
    now() - n * interval '8 hours'
FROM generate_series(1, 40) AS n;

-- thermal_memory_archive ---------------------------------------------------

-- 1000 memories written by other federation daemons over about 208 days.
-- The hash follows the federation's rule: SHA-256 hex of the content.
INSERT INTO thermal_memory_archive
    (original_content, temperature_score, memory_hash, sacred_pattern,
     metadata, created_at)
SELECT
    m.content,
    m.temperature,
    encode(sha256(convert_to(m.content, 'UTF8')), 'hex'),
    m.source = 'sacred-fire-daemon' AND m.temperature >= 95,
    jsonb_build_object('source', m.source, 'sequence', n),
    now() - n * interval '5 hours'
FROM generate_series(1, 1000) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('thermal-' || n), 1, 7))::bit(28)::int AS h
) AS r
CROSS JOIN LATERAL (
    SELECT
        (ARRAY[
            'sacred-fire-daemon', 'staleness-scorer', 'council-recorder',
            'jr-executor', 'telegram-chief'
        ])[1 + n % 5] AS source,
        20 + (r.h % 80)::double precision AS temperature
) AS s
CROSS JOIN LATERAL (
    SELECT
        s.source,
        s.temperature,
        CASE s.source
            WHEN 'sacred-fire-daemon' THEN
                'Sacred fire check ' || n || ': ' || (r.h % 40) ||
                ' memories kept warm above 90 degrees.'
            WHEN 'staleness-scorer' THEN
                'Staleness pass ' || n || ': ' || (r.h % 25) ||
                ' memories cooled by 5 degrees.'
            WHEN 'council-recorder' THEN
                'Council vote #' || substr(md5('thermal-vote-' || n), 1, 16) ||
                ' recorded with ' || (5 + r.h % 3) || ' specialists.'
            WHEN 'jr-executor' THEN
                'Jr task jr-' || substr(md5('thermal-task-' || n), 1, 12) ||
                ' finished after ' || (r.h % 50 + 1) || ' minutes.'
            ELSE
                'Chief acknowledged digest ' || n || ' on Telegram.'
        END AS content
) AS m;

COMMIT;
