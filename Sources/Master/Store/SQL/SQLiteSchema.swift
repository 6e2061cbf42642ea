import GRDB

/// Versioned schema of the SQLite store. Migrations only ever append.
enum SQLiteSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    labels TEXT NOT NULL,
                    paused INTEGER NOT NULL DEFAULT 0,
                    cancelled INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL
                );
                CREATE TABLE tasks (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    job_id INTEGER NOT NULL REFERENCES jobs(id),
                    name TEXT NOT NULL,
                    command TEXT NOT NULL,
                    env TEXT NOT NULL,
                    cwd TEXT,
                    cpu_millis INTEGER NOT NULL,
                    ram INTEGER NOT NULL,
                    disk INTEGER NOT NULL,
                    gpus INTEGER NOT NULL,
                    tags TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    timeout REAL,
                    max_attempts INTEGER NOT NULL,
                    attempt INTEGER NOT NULL DEFAULT 0,
                    state TEXT NOT NULL,
                    agent_id INTEGER,
                    epoch INTEGER NOT NULL DEFAULT 0,
                    lease_expires_at REAL,
                    progress REAL NOT NULL DEFAULT 0,
                    exit_code INTEGER,
                    reason TEXT,
                    created_at REAL NOT NULL,
                    started_at REAL,
                    finished_at REAL
                );
                CREATE INDEX tasks_queue ON tasks(state, priority DESC, id);
                CREATE INDEX tasks_job ON tasks(job_id, state);
                CREATE INDEX tasks_agent ON tasks(agent_id, state);
                CREATE INDEX tasks_lease ON tasks(lease_expires_at) WHERE lease_expires_at IS NOT NULL;
                CREATE TABLE task_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    task_id INTEGER NOT NULL REFERENCES tasks(id),
                    at REAL NOT NULL,
                    transition TEXT NOT NULL,
                    from_state TEXT NOT NULL,
                    to_state TEXT NOT NULL,
                    agent_id INTEGER,
                    epoch INTEGER NOT NULL,
                    reason TEXT
                );
                CREATE INDEX task_events_task ON task_events(task_id, epoch);
                CREATE TABLE agents (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL UNIQUE,
                    credential TEXT NOT NULL UNIQUE,
                    state TEXT NOT NULL,
                    tags TEXT NOT NULL,
                    cpu_millis INTEGER NOT NULL,
                    ram INTEGER NOT NULL,
                    disk INTEGER NOT NULL,
                    gpus INTEGER NOT NULL,
                    version TEXT NOT NULL,
                    enrolled_at REAL NOT NULL,
                    last_seen REAL NOT NULL
                );
                CREATE TABLE task_logs (
                    task_id INTEGER NOT NULL REFERENCES tasks(id),
                    attempt INTEGER NOT NULL,
                    received INTEGER NOT NULL,
                    stored INTEGER NOT NULL,
                    PRIMARY KEY (task_id, attempt)
                );
                CREATE TABLE log_chunks (
                    task_id INTEGER NOT NULL,
                    attempt INTEGER NOT NULL,
                    offset INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (task_id, attempt, offset)
                );
                """)
        }
        migrator.registerMigration("v2-talkback") { db in
            // `state` now says only whether the agent is alive (online/offline); draining and
            // disabled are an admin's decisions and survive the agent going offline and back.
            try db.execute(sql: """
                ALTER TABLE agents ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE agents ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE jobs ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
                UPDATE agents SET draining = 1, state = 'online' WHERE state = 'draining';
                UPDATE agents SET disabled = 1, state = 'offline' WHERE state = 'disabled';
                CREATE TABLE agent_commands (
                    agent_id INTEGER NOT NULL,
                    seq INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    task_id INTEGER,
                    epoch INTEGER,
                    tags TEXT,
                    resources TEXT,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    PRIMARY KEY (agent_id, seq)
                );
                """)
        }
        migrator.registerMigration("v3-scheduling") { db in
            try db.execute(sql: """
                CREATE TABLE task_deps (
                    task_id INTEGER NOT NULL,
                    depends_on INTEGER NOT NULL,
                    PRIMARY KEY (task_id, depends_on)
                );
                CREATE INDEX task_deps_reverse ON task_deps(depends_on);
                CREATE TABLE job_deps (
                    job_id INTEGER NOT NULL,
                    after_job INTEGER NOT NULL,
                    PRIMARY KEY (job_id, after_job)
                );
                CREATE INDEX job_deps_reverse ON job_deps(after_job);
                CREATE TABLE job_blocklist (
                    job_id INTEGER NOT NULL,
                    agent_id INTEGER NOT NULL,
                    failures INTEGER NOT NULL,
                    PRIMARY KEY (job_id, agent_id)
                );
                ALTER TABLE tasks ADD COLUMN prefetched INTEGER NOT NULL DEFAULT 0;
                -- Per-job counters kept by a trigger, so that claims find the jobs with queued work
                -- and each owner's share of the farm without scanning the tasks.
                ALTER TABLE jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE jobs ADD COLUMN active INTEGER NOT NULL DEFAULT 0;
                UPDATE jobs SET
                    queued = (SELECT COUNT(*) FROM tasks WHERE job_id = jobs.id AND state = 'queued'),
                    active = (SELECT COUNT(*) FROM tasks WHERE job_id = jobs.id AND state IN ('assigned','running'));
                CREATE TRIGGER tasks_state_counts AFTER UPDATE OF state ON tasks WHEN old.state IS NOT new.state
                BEGIN
                    UPDATE jobs SET
                        queued = queued + (new.state = 'queued') - (old.state = 'queued'),
                        active = active + (new.state IN ('assigned','running')) - (old.state IN ('assigned','running'))
                    WHERE id = new.job_id;
                END;
                CREATE INDEX jobs_with_queued ON jobs(priority DESC, id) WHERE queued > 0;
                CREATE INDEX jobs_with_active ON jobs(owner) WHERE active > 0;
                CREATE INDEX tasks_job_queue ON tasks(job_id, state, priority DESC, id);
                """)
        }
        migrator.registerMigration("v4-observability") { db in
            try db.execute(sql: """
                CREATE TABLE agent_exceptions (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    agent_id INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    message TEXT NOT NULL,
                    context TEXT NOT NULL,
                    task_id INTEGER,
                    at REAL NOT NULL
                );
                CREATE INDEX agent_exceptions_agent ON agent_exceptions(agent_id, id);
                ALTER TABLE agents ADD COLUMN metrics TEXT;
                CREATE TABLE agent_metrics (
                    agent_id INTEGER NOT NULL,
                    at REAL NOT NULL,
                    sample TEXT NOT NULL,
                    PRIMARY KEY (agent_id, at)
                );
                ALTER TABLE tasks ADD COLUMN cpu_seconds REAL;
                ALTER TABLE tasks ADD COLUMN peak_rss INTEGER;
                """)
        }
        migrator.registerMigration("v5-progress") { db in
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN progress_regex TEXT;
                ALTER TABLE tasks ADD COLUMN frame_start INTEGER;
                ALTER TABLE tasks ADD COLUMN frame_end INTEGER;
                """)
        }
        migrator.registerMigration("v6-lease-uniqueness") { db in
            // The store itself refuses a second lease of one task under one epoch.
            try db.execute(sql: """
                CREATE UNIQUE INDEX task_leases ON task_events(task_id, epoch) WHERE transition IN ('assign', 'steal');
                """)
        }
        migrator.registerMigration("v7-runs-and-master-state") { db in
            // `runs` counts every start of a task and is never given back (a release or a retry gives
            // back attempts): a run's log is keyed by it, so a rerun never writes into an earlier run's
            // log. `master_state` holds when leases were last swept (one grace per outage).
            try db.execute(sql: """
                ALTER TABLE tasks ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
                UPDATE tasks SET runs = MAX(attempt, COALESCE((SELECT MAX(attempt) FROM task_logs WHERE task_id = tasks.id), 0));
                CREATE TABLE master_state (
                    key TEXT PRIMARY KEY,
                    value REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v8-idempotency") { db in
            // Submissions made under an Idempotency-Key: a retried submission finds its job here.
            try db.execute(sql: """
                CREATE TABLE submissions (
                    key TEXT PRIMARY KEY,
                    body_hash TEXT NOT NULL,
                    job_id INTEGER NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE INDEX submissions_age ON submissions(created_at);
                """)
        }
        migrator.registerMigration("v9-tokens-and-enrollment") { db in
            // Named tokens with roles (only a SHA-256 of each secret is kept); agents' credentials
            // kept hashed too (the clear ones are hashed in place below); the names of deleted
            // agents, which stay out until an admin lets them back; an admin's reset of an agent.
            try db.execute(sql: """
                ALTER TABLE agents RENAME COLUMN credential TO credential_hash;
                ALTER TABLE agents ADD COLUMN reset_at REAL;
                CREATE TABLE tokens (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    role TEXT NOT NULL,
                    secret_hash TEXT NOT NULL UNIQUE,
                    created_at REAL NOT NULL,
                    expires_at REAL,
                    revoked_at REAL,
                    uses INTEGER NOT NULL DEFAULT 0,
                    max_uses INTEGER
                );
                CREATE TABLE deleted_agents (
                    name TEXT PRIMARY KEY,
                    deleted_at REAL NOT NULL
                );
                """)
            for row in try Row.fetchAll(db, sql: "SELECT id, credential_hash FROM agents") {
                let clear: String = row["credential_hash"]
                try db.execute(sql: "UPDATE agents SET credential_hash = ? WHERE id = ?",
                               arguments: [SecretHash.hex(clear), row["id"] as Int64])
            }
        }
        migrator.registerMigration("v10-task-parameters") { db in
            // A task's parameter values (an OpenJD task's), as JSON; NULL for none.
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN parameters TEXT")
        }
        migrator.registerMigration("v11-one-job-index") { db in
            // tasks_job_queue (job_id, state, priority, id) serves every lookup that tasks_job
            // (job_id, state) did, as its prefix: one index fewer to write on each change of a
            // task's state (each is a page or more in every commit's WAL frames).
            try db.execute(sql: "DROP INDEX IF EXISTS tasks_job")
        }
        migrator.registerMigration("v12-blocklist-by-agent") { db in
            // A claim that leases nothing reads the jobs that blocked its agent (its `ClaimRoom`, for
            // directed wake-ups): by agent, without scanning every job's blocklist.
            try db.execute(sql: "CREATE INDEX job_blocklist_agent ON job_blocklist (agent_id)")
        }
        migrator.registerMigration("v13-lease-grants") { db in
            // Which exchange of which agent process granted a lease (`ExchangeRequest.number`): a
            // heartbeat gives back at once those whose answer it says never arrived.
            try db.execute(sql: """
                ALTER TABLE tasks ADD COLUMN grant_incarnation INTEGER;
                ALTER TABLE tasks ADD COLUMN grant_sequence INTEGER;
                """)
        }
        migrator.registerMigration("v14-live-indexes") { db in
            // A task moves queued → assigned → running → succeeded, and every move rewrote its entry
            // in each index holding its state: the queue's (state, priority, id) and the agent's
            // (agent_id, state). Now the queue's index holds only queued tasks (a claim's head reads
            // nothing else), a partial one holds the leases agents hold (their room, their leases, a
            // steal's victims), and the agent's holds the agent alone, for tasks that have had one (a
            // task's history by agent; a submission writes no entry there): a claim removes one entry
            // from the first, a start and a finish touch only the second.
            // Queries on held leases say `state IN ('assigned','running')` word for word: SQLite
            // uses a partial index only for a query that repeats its condition.
            try db.execute(sql: """
                DROP INDEX tasks_queue;
                CREATE INDEX tasks_ready ON tasks(priority DESC, id) WHERE state = 'queued';
                DROP INDEX tasks_agent;
                CREATE INDEX tasks_agent ON tasks(agent_id) WHERE agent_id IS NOT NULL;
                CREATE INDEX tasks_held ON tasks(agent_id) WHERE state IN ('assigned','running');
                """)
        }
        return migrator
    }
}
