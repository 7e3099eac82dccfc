-- Sample data of a healthy federation: no basin signal fires at the default
-- thresholds, so a cycle over it is clean and sends no alert. Load it after
-- schema.sql into an empty database (it raises an error and loads nothing
-- when the federation tables already hold rows).
--
-- Values of each signal, as counted by the plain SQL conditions right after
-- loading:
--
--   council-disagreement  10 votes in the last 24 h, none below 0.7
--                         (lowest 0.742). Older low-confidence votes exist.
--   dlq-depth             2 `failed` tasks updated in the last 48 h
--                         (threshold 5).
--   jr-failure-rate       11 tasks finished in the last 24 h, 1 failed:
--                         9.1 % (threshold 25 %).
--   stale-kanban          no `in_progress` ticket older than 7 days; the 15
--                         in progress were updated within the last 5 days.
--   work-state            30 `pending` Jr tasks and 76 `open` tickets.
--
-- Rows: 500 in each of council_votes, jr_work_queue, duyuktv_tickets and
-- thermal_memory_archive. None of the thermal rows is from tpm-autonomic.
--
-- Every value is fixed except the timestamps, which are relative to now(),
-- with the same margins as data.sql: counted rows are at least 2 h inside
-- their window and the others at least 2 h outside it.

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

-- 490 older votes, from 30 hours to about 57 days ago. One in 37 has low
-- confidence, as in any federation that argues now and then.
INSERT INTO council_votes
    (audit_hash, question, recommendation, confidence, specialist_count, voted_at)
SELECT
    substr(md5('clean-council-vote-' || n), 1, 16),
    format((ARRAY[
        'Approve the Jr instruction for kanban #%s?',
        'Should the thermal memory decay job run nightly for kanban #%s?',
        'Merge the executor sandbox change proposed in kanban #%s?',
        'Adopt the new secrets loader across daemons (kanban #%s)?',
        'Archive council transcripts older than 90 days (kanban #%s)?'
    ])[1 + n % 5], 1400 + n * 2),
    CASE
        WHEN n % 37 = 0 THEN 'HOLD'
        WHEN r.h % 100 < 60 THEN 'PROCEED'
        ELSE 'PROCEED WITH CAUTION'
    END,
    CASE
        WHEN n % 37 = 0 THEN 0.540 + (r.h % 150) / 1000.0
        ELSE 0.720 + (r.h % 270) / 1000.0
    END,
    5 + (r.h % 3) * 2,
    now() - interval '30 hours' - n * interval '2 hours 47 minutes'
FROM generate_series(0, 489) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('clean-council-confidence-' || n), 1, 7))::bit(28)::int AS h
) AS r;

-- 10 votes in the last 22 hours, all confident.
INSERT INTO council_votes
    (audit_hash, question, recommendation, confidence, specialist_count, voted_at)
SELECT
    substr(md5('clean-council-vote-recent-' || v.n), 1, 16),
    v.question, v.recommendation, v.confidence, 7, now() - v.age
FROM (VALUES
    (1,  'Publish the weekly federation health summary?',
         'PROCEED', 0.951, interval '1 hour'),
    (2,  'Rotate the Telegram bot token this week?',
         'PROCEED', 0.903, interval '3 hours'),
    (3,  'Move the Jr executor logs to the shared log folder?',
         'PROCEED', 0.874, interval '5 hours'),
    (4,  'Cache council embeddings for 24 hours?',
         'PROCEED WITH CAUTION', 0.742, interval '7 hours'),
    (5,  'Accept the Documentation Jr''s style guide?',
         'PROCEED', 0.889, interval '9 hours'),
    (6,  'Enable the TPM autonomic daemon in monitor-only mode?',
         'PROCEED', 0.915, interval '12 hours'),
    (7,  'Increase the thermal memory retention to 400 days?',
         'PROCEED WITH CAUTION', 0.781, interval '14 hours'),
    (8,  'Reindex council_votes during the weekend?',
         'PROCEED', 0.930, interval '16 hours'),
    (9,  'Add the stale kanban report to the digest?',
         'PROCEED', 0.862, interval '19 hours'),
    (10, 'Let the Research Jr summarise votes daily?',
         'PROCEED WITH CAUTION', 0.803, interval '22 hours')
) AS v (n, question, recommendation, confidence, age);

-- jr_work_queue ------------------------------------------------------------

-- 447 finished tasks, all last updated more than 60 hours ago.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('clean-jr-task-' || n), 1, 12),
    (ARRAY[
        'Add retry with backoff to the Telegram bridge',
        'Write tests for the staleness scorer',
        'Document the secrets loader',
        'Refactor thermal memory retrieval',
        'Summarise yesterday''s council votes',
        'Translate the onboarding notes'
    ])[1 + n % 6] || ' (kanban #' || (1000 + n) || ')',
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
    CASE WHEN n % 25 = 0 THEN 'executor timeout after 300 s' END,
    now() - interval '60 hours' - n * interval '4 hours 30 minutes',
    now() - interval '60 hours' - n * interval '4 hours 30 minutes'
        + (10 + r.h % 240) * interval '1 minute'
FROM generate_series(1, 447) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('clean-jr-task-shape-' || n), 1, 7))::bit(28)::int AS h
) AS r;

-- 15 recent finished tasks. In the last 24 hours, 10 completed and 1
-- failed. From 24 to 48 hours ago, 1 failed and 3 completed.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('clean-jr-task-recent-' || n), 1, 12),
    'Routine maintenance task ' || n,
    (ARRAY[
        'Software Engineer Jr.', 'Research Jr.', 'Infrastructure Jr.',
        'Documentation Jr.', 'Integration Jr.'
    ])[1 + n % 5],
    CASE WHEN n IN (6, 13) THEN 'failed' ELSE 'completed' END,
    1 + n % 10,
    CASE WHEN n IN (6, 13) THEN 'pytest: 1 failed, 52 passed' END,
    now() - age - interval '40 minutes',
    now() - age
FROM generate_series(1, 15) AS n
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN n <= 11 THEN n * interval '1 hour'
        ELSE interval '30 hours' + (n - 11) * interval '3 hours'
    END AS age
) AS a;

-- 8 tasks in progress and 30 pending ones.
INSERT INTO jr_work_queue
    (task_id, title, assigned_jr, status, priority, error_message,
     created_at, updated_at)
SELECT
    'jr-' || substr(md5('clean-jr-task-open-' || n), 1, 12),
    (ARRAY[
        'Add pagination to the kanban API',
        'Measure thermal memory growth per week',
        'Move the Telegram templates into files',
        'Write a runbook for a full Jr queue'
    ])[1 + n % 4] || ' (kanban #' || (1900 + n) || ')',
    CASE WHEN n > 8 AND n % 3 = 0 THEN NULL ELSE
        (ARRAY[
            'Software Engineer Jr.', 'Research Jr.', 'Infrastructure Jr.',
            'Documentation Jr.', 'Integration Jr.'
        ])[1 + n % 5]
    END,
    CASE WHEN n <= 8 THEN 'in_progress' ELSE 'pending' END,
    1 + (n * 7) % 10,
    NULL,
    now() - n * interval '3 hours',
    now() - n * interval '2 hours'
FROM generate_series(1, 38) AS n;

-- duyuktv_tickets ----------------------------------------------------------

-- 460 older tickets: mostly done, with an old backlog of open ones.
INSERT INTO duyuktv_tickets
    (title, status, assignee, story_points, created_at, updated_at)
SELECT
    (ARRAY[
        'Council vote dashboard',
        'Jr queue retry policy',
        'Thermal memory search',
        'Telegram digest formatting',
        'Secrets loader rollout'
    ])[1 + n % 5] || ': part ' || n,
    CASE WHEN n % 9 = 0 THEN 'open' ELSE 'done' END,
    CASE WHEN n % 9 = 0 THEN NULL ELSE
        (ARRAY[
            'tpm', 'Software Engineer Jr.', 'Research Jr.',
            'Infrastructure Jr.', 'Documentation Jr.'
        ])[1 + r.h % 5]
    END,
    (ARRAY[1, 2, 3, 5, 8, 13])[1 + r.h % 6],
    now() - interval '9 days' - n * interval '5 hours',
    now() - interval '9 days' - n * interval '5 hours'
        + (r.h % 96) * interval '1 hour'
FROM generate_series(1, 460) AS n
CROSS JOIN LATERAL (
    SELECT ('x' || substr(md5('clean-ticket-shape-' || n), 1, 7))::bit(28)::int AS h
) AS r;

-- 15 tickets in progress, each updated within the last 5 days, and 25 open
-- tickets from the last two weeks.
INSERT INTO duyuktv_tickets
    (title, status, assignee, story_points, created_at, updated_at)
SELECT
    CASE WHEN n <= 15
        THEN 'TPM autonomic daemon: step ' || n
        ELSE 'Idea for the backlog ' || (n - 15)
    END,
    CASE WHEN n <= 15 THEN 'in_progress' ELSE 'open' END,
    CASE WHEN n <= 15 THEN 'Software Engineer Jr.' END,
    (ARRAY[1, 2, 3, 5, 8])[1 + n % 5],
    now() - n * interval '12 hours' - interval '1 day',
    CASE WHEN n <= 15
        THEN now() - n * interval '8 hours'
        ELSE now() - n * interval '12 hours' - interval '1 day'
    END
FROM generate_series(1, 40) AS n;

-- thermal_memory_archive ---------------------------------------------------

-- 500 memories written by other federation daemons.
INSERT INTO thermal_memory_archive
    (original_content, temperature_score, memory_hash, sacred_pattern,
     metadata, created_at)
SELECT
    m.content,
    m.temperature,
    encode(sha256(convert_to(m.content, 'UTF8')), 'hex'),
    false,
    jsonb_build_object('source', m.source, 'sequence', n),
    now() - n * interval '6 hours'
FROM generate_series(1, 500) AS n
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN n % 2 = 0 THEN 'sacred-fire-daemon' ELSE 'staleness-scorer' END
            AS source,
        20 + (('x' || substr(md5('clean-thermal-' || n), 1, 7))::bit(28)::int % 70)
            ::double precision AS temperature,
        CASE WHEN n % 2 = 0
            THEN 'Sacred fire check ' || n || ': all memories within range.'
            ELSE 'Staleness pass ' || n || ': nothing to cool.'
        END AS content
) AS m;

COMMIT;
