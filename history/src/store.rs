//! The history file: SQLite (bundled through rusqlite), WAL mode, schema versioned by
//! `PRAGMA user_version` with migrations. It keeps listener events, the listeners open at the
//! last tick (to tell, at the next start, what happened while the agent was down) and that
//! tick's time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portscope_shared::{ConnectionMinute, Event, EventKind, HealthMark, Span, Spans};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// The schema this build writes. A file from a newer build is not touched.
pub const SCHEMA: i64 = 6;

/// Why the history cannot be used; said in a warning, the live view goes on.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "the history file {0} was written by a newer portscope (schema {1}, this one knows {SCHEMA}); upgrade portscope, or give another --history"
    )]
    Newer(PathBuf, i64),
    #[error("the history file {path} cannot be used: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the history directory {path} cannot be made: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the history file {path} cannot be made: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The default file: `$XDG_STATE_HOME/portscope/history.db`, else
/// `~/.local/state/portscope/history.db`.
///
/// Under `sudo` (root, with `SUDO_UID` set) it is root's own, from the user database: `sudo -E`
/// keeps the invoking user's `HOME` and `XDG_STATE_HOME`, and a root agent must not write a
/// root-owned file into that user's home.
pub fn default_path() -> Option<PathBuf> {
    let under_sudo = portscope_core::os::is_root() && std::env::var_os("SUDO_UID").is_some();
    let home = under_sudo.then(portscope_core::os::own_home).flatten();
    let base =
        state_dir(home, |k| std::env::var_os(k)).or_else(portscope_core::os::app_data_dir)?;
    Some(base.join("portscope").join("history.db"))
}

/// The state directory: `own_home`'s when given (root's under sudo), else `$XDG_STATE_HOME`,
/// else `$HOME/.local/state`, as `var` reads them.
fn state_dir(
    own_home: Option<PathBuf>,
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(home) = own_home {
        return Some(home.join(".local/state"));
    }
    var("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))
}

/// An open history file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The file's schema: a reader may open an older one (an agent of the previous version
    /// still writing it), and reads what that schema has.
    schema: i64,
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    portscope_core::events::time_text(t)
}

impl Store {
    /// Opens (or makes) the file for writing, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, HistoryError> {
        // It holds other processes' command lines: the user's alone (SQLite gives its -wal and
        // -shm files the same mode).
        if let Some(dir) = path.parent() {
            portscope_core::os::private_dir_builder()
                .create(dir)
                .map_err(|source| HistoryError::Directory {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        if !path.exists() {
            portscope_core::os::new_private_file()
                .open(path)
                .map_err(|source| HistoryError::File {
                    path: path.to_owned(),
                    source,
                })?;
        }
        let sqlite = |source| HistoryError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(2)).map_err(sqlite)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sqlite)?;
        if version > SCHEMA {
            return Err(HistoryError::Newer(path.to_owned(), version));
        }
        if version == 0 {
            // Freed pages go back to the file system when pruned: set before any table, and
            // before WAL mode (which fixes it).
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(sqlite)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        // WAL with NORMAL sync: a crash loses at most the last transaction, the file stays valid.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        if version < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE events (
                     id INTEGER PRIMARY KEY,
                     time INTEGER NOT NULL,      -- ms since the epoch
                     since INTEGER,              -- earliest it can have happened (agent was down)
                     kind TEXT NOT NULL,
                     socket_id TEXT NOT NULL,
                     proto TEXT NOT NULL,
                     family TEXT NOT NULL,
                     local_addr TEXT NOT NULL,
                     local_port INTEGER NOT NULL,
                     pid INTEGER,
                     process TEXT,
                     cmdline TEXT NOT NULL,      -- JSON array
                     user TEXT,
                     app TEXT
                 );
                 CREATE INDEX events_port_time ON events (local_port, time);
                 CREATE INDEX events_time ON events (time);
                 CREATE TABLE open_listeners (socket_id TEXT PRIMARY KEY, event TEXT NOT NULL);
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(sqlite)?;
        }
        if version < 2 {
            // Per-minute connection counts, an index for a socket's events (spans), and the
            // owner's working directory, executable and start time.
            conn.execute_batch(
                "BEGIN;
                 CREATE INDEX events_socket ON events (socket_id, id);
                 ALTER TABLE events ADD COLUMN cwd TEXT;
                 ALTER TABLE events ADD COLUMN exe TEXT;
                 ALTER TABLE events ADD COLUMN start_time INTEGER;
                 CREATE TABLE connections (
                     port INTEGER NOT NULL,
                     minute INTEGER NOT NULL,    -- ms since the epoch, a whole minute
                     accepted INTEGER NOT NULL,
                     open INTEGER NOT NULL,
                     peers INTEGER NOT NULL,
                     PRIMARY KEY (port, minute)
                 ) WITHOUT ROWID;
                 CREATE INDEX connections_minute ON connections (minute);
                 PRAGMA user_version = 2;
                 COMMIT;",
            )
            .map_err(sqlite)?;
        }
        if version < 3 {
            // Events of kind `exited`, which a schema 2 reader would take for a listener's.
            conn.pragma_update(None, "user_version", 3)
                .map_err(sqlite)?;
        }
        if version < 4 {
            // Events of kind `health` (what an HTTP listener's check got, as JSON), which a
            // schema 3 reader would take for a listener's; and the owner's project.
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE events ADD COLUMN health TEXT;
                 ALTER TABLE events ADD COLUMN project TEXT;
                 PRAGMA user_version = 4;
                 COMMIT;",
            )
            .map_err(sqlite)?;
        }
        if version < 5 {
            // The owner's start time in ms (how long an exited owner ran, to a tenth of a
            // second); older rows have none and are read by their start time in seconds.
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE events ADD COLUMN start_ms INTEGER;
                 PRAGMA user_version = 5;
                 COMMIT;",
            )
            .map_err(sqlite)?;
        }
        if version < 6 {
            // Failures (#22): a refused connect's target, and a failure's error, holders,
            // count and fix (as JSON); each failure row has a socket id of its own.
            conn.execute_batch(
                "BEGIN;
                 ALTER TABLE events ADD COLUMN remote_addr TEXT;
                 ALTER TABLE events ADD COLUMN remote_port INTEGER;
                 ALTER TABLE events ADD COLUMN failure TEXT;
                 PRAGMA user_version = 6;
                 COMMIT;",
            )
            .map_err(sqlite)?;
        }
        Ok(Store {
            conn,
            path: path.to_owned(),
            schema: SCHEMA,
        })
    }

    /// Opens the file to read while an agent may write (WAL lets both).
    pub fn open_read_only(path: &Path) -> Result<Store, HistoryError> {
        let sqlite = |source| HistoryError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(2)).map_err(sqlite)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sqlite)?;
        if version > SCHEMA {
            return Err(HistoryError::Newer(path.to_owned(), version));
        }
        Ok(Store {
            conn,
            path: path.to_owned(),
            schema: version,
        })
    }

    /// The columns `Row::read` takes, as this file's schema has them.
    fn columns(&self) -> &'static str {
        match self.schema {
            6.. => COLUMNS,
            5 => COLUMNS_5,
            4 => COLUMNS_4,
            // Schema 2 and 3 kept no health checks.
            2 | 3 => COLUMNS_3,
            // Schema 1 kept no working directory either.
            _ => COLUMNS_1,
        }
    }

    fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The last tick written: its time, and the listeners open then (by socket id).
    pub fn last_tick(&self) -> Result<LastTick, HistoryError> {
        let at: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'last_tick'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare("SELECT socket_id, event FROM open_listeners")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut open = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            if let Ok(event) = serde_json::from_str::<Event>(&json) {
                open.push((id, event));
            }
        }
        Ok(LastTick { at, open })
    }

    /// Writes one tick in one transaction: its events (`(socket id, event, since)`), the
    /// listeners open now when they changed, and the tick's time.
    pub fn write(
        &mut self,
        at: i64,
        events: &[(String, Event, Option<i64>)],
        open: Option<&[(String, Event)]>,
    ) -> Result<(), HistoryError> {
        self.write_tick(at, events, open, &[])
    }

    /// [`Store::write`] with the tick's per-minute connection counts, each replacing what the
    /// file held for its port and minute.
    pub fn write_tick(
        &mut self,
        at: i64,
        events: &[(String, Event, Option<i64>)],
        open: Option<&[(String, Event)]>,
        connections: &[ConnectionRow],
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let sqlite = |source| HistoryError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sqlite)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (time, since, kind, socket_id, proto, family, local_addr,
                     local_port, pid, process, cmdline, user, app, cwd, exe, start_time, health,
                     project, start_ms, remote_addr, remote_port, failure)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                )
                .map_err(sqlite)?;
            for (id, e, since) in events {
                insert
                    .execute(params![
                        at,
                        since,
                        kind_text(e.kind),
                        id,
                        json_text(&e.proto),
                        json_text(&e.family),
                        e.local_addr.to_string(),
                        e.local_port,
                        e.pid,
                        e.process,
                        serde_json::to_string(&e.cmdline).unwrap_or_default(),
                        e.user,
                        e.app,
                        e.cwd,
                        e.exe,
                        e.start_time.and_then(|t| i64::try_from(t).ok()),
                        e.health.as_ref().map(json_text),
                        e.project,
                        e.start_ms.and_then(|t| i64::try_from(t).ok()),
                        e.remote_addr.map(|a| a.to_string()),
                        e.remote_port,
                        failure_text(e),
                    ])
                    .map_err(sqlite)?;
            }
            if let Some(open) = open {
                tx.execute("DELETE FROM open_listeners", [])
                    .map_err(sqlite)?;
                let mut put = tx
                    .prepare_cached("INSERT INTO open_listeners (socket_id, event) VALUES (?1, ?2)")
                    .map_err(sqlite)?;
                for (id, e) in open {
                    put.execute(params![id, serde_json::to_string(e).unwrap_or_default()])
                        .map_err(sqlite)?;
                }
            }
            if !connections.is_empty() {
                let mut put = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO connections (port, minute, accepted, open, peers)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(sqlite)?;
                for c in connections {
                    put.execute(params![c.port, c.minute, c.accepted, c.open, c.peers])
                        .map_err(sqlite)?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('last_tick', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [at],
            )
            .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)
    }

    /// Forgets events and connection counts older than `before` (ms), in batches (at most 100
    /// of 10 000 rows a call, so one call stays short); returns how many rows went. A listener
    /// open at the file's last event is kept whole from its opening, however old: a daemon up
    /// longer than the keep still answers `history --at`, the spans and the uptime.
    pub fn prune(&mut self, before: i64) -> Result<usize, HistoryError> {
        self.mark_open_tenures()?;
        let mut gone = 0;
        for _ in 0..100 {
            let batch = self.prune_batch(before)?;
            gone += batch;
            if batch < PRUNE_BATCH {
                break;
            }
        }
        if gone > 0 {
            self.give_back_free_pages()?;
        }
        Ok(gone)
    }

    /// Fills the temporary table `open_tenures`: each socket whose last listener event is not a
    /// close, with the id of its last `opened` event (0 when that is gone already: then all of
    /// it is kept). Pruning spares every event of such a socket from that id on.
    fn mark_open_tenures(&mut self) -> Result<(), HistoryError> {
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS open_tenures
                     (socket_id TEXT PRIMARY KEY, from_id INTEGER NOT NULL);
                 DELETE FROM open_tenures;
                 INSERT INTO open_tenures (socket_id, from_id)
                 SELECT l.socket_id,
                        COALESCE((SELECT MAX(o.id) FROM events o
                                  WHERE o.socket_id = l.socket_id AND o.kind = 'opened'), 0)
                 FROM (SELECT socket_id, MAX(id) AS last FROM events
                       WHERE kind NOT IN ('exited', 'health', 'bind_failed', 'connect_refused') GROUP BY socket_id) l
                 JOIN events e ON e.id = l.last
                 WHERE e.kind != 'closed';",
            )
            .map_err(|e| self.err(e))
    }

    /// One batch of [`Store::prune`]: up to [`PRUNE_BATCH`] events and as many counts.
    fn prune_batch(&mut self, before: i64) -> Result<usize, HistoryError> {
        let events = self
            .conn
            .execute(
                &format!(
                    "DELETE FROM events WHERE id IN
                     (SELECT e.id FROM events e {SPARE_OPEN} AND e.time < ?1 LIMIT 10000)"
                ),
                [before],
            )
            .map_err(|e| self.err(e))?;
        let counts = self
            .conn
            .execute(
                "DELETE FROM connections WHERE (port, minute) IN
                 (SELECT port, minute FROM connections WHERE minute < ?1 LIMIT 10000)",
                [before],
            )
            .map_err(|e| self.err(e))?;
        Ok(events + counts)
    }

    /// Bytes the file's live pages take (free pages are reused before the file grows).
    pub fn used_bytes(&self) -> Result<u64, HistoryError> {
        let pragma = |name: &str| -> Result<i64, HistoryError> {
            self.conn
                .pragma_query_value(None, name, |r| r.get(0))
                .map_err(|e| self.err(e))
        };
        let used = (pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    /// Keeps the file under `max` bytes: forgets the oldest events and counts, a batch at a
    /// time (at most `rounds` batches per call, so a call stays short), then gives the freed
    /// pages back. Returns whether the file is under `max` now.
    pub fn prune_to_size(&mut self, max: u64, rounds: usize) -> Result<bool, HistoryError> {
        if self.used_bytes()? <= max {
            return Ok(true);
        }
        self.mark_open_tenures()?;
        for _ in 0..rounds {
            if self.used_bytes()? <= max {
                break;
            }
            // The 5 000 oldest events go (by position: many can share one time), and the
            // counts older than the oldest event left; open listeners' tenures stay.
            let events = self
                .conn
                .execute(
                    &format!(
                        "DELETE FROM events WHERE id IN
                         (SELECT e.id FROM events e {SPARE_OPEN} ORDER BY e.time, e.id LIMIT 5000)"
                    ),
                    [],
                )
                .map_err(|e| self.err(e))?;
            let oldest: Option<i64> = self
                .conn
                .query_row("SELECT MIN(time) FROM events", [], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            let counts = match oldest {
                Some(oldest) => self
                    .conn
                    .execute("DELETE FROM connections WHERE minute < ?1", [oldest])
                    .map_err(|e| self.err(e))?,
                // No events left: the counts are what is large; the oldest of them go.
                None => self
                    .conn
                    .execute(
                        "DELETE FROM connections WHERE (port, minute) IN
                         (SELECT port, minute FROM connections ORDER BY minute LIMIT 10000)",
                        [],
                    )
                    .map_err(|e| self.err(e))?,
            };
            let gone = events + counts;
            if gone == 0 {
                break;
            }
        }
        self.give_back_free_pages()?;
        Ok(self.used_bytes()? <= max)
    }

    /// Free pages go back to the file system; the checkpoint moves that into the file
    /// (without waiting for readers).
    fn give_back_free_pages(&self) -> Result<(), HistoryError> {
        self.conn
            .execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(PASSIVE);")
            .map_err(|e| self.err(e))
    }

    /// Events newest first, filtered.
    pub fn query(&self, q: &Query) -> Result<Vec<Event>, HistoryError> {
        if self.schema == 0 {
            return Ok(Vec::new()); // A file no agent has written yet.
        }
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {}
                 FROM events
                 WHERE (?1 IS NULL OR local_port = ?1) AND (?2 IS NULL OR time >= ?2)
                   AND (?3 IS NULL OR time <= ?3) AND (?4 IS NULL OR pid = ?4)
                 ORDER BY time DESC, id DESC LIMIT ?5",
                self.columns()
            ))
            .map_err(|e| self.err(e))?;
        self.read_events(&mut stmt, params![q.port, q.since, q.until, q.pid, q.limit])
    }

    /// The events a `SELECT` of [`COLUMNS`] gives, in its order.
    fn read_events(
        &self,
        stmt: &mut rusqlite::Statement<'_>,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Event>, HistoryError> {
        let rows = stmt.query_map(params, Row::read).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(e) = row.map_err(|e| self.err(e))?.into_event() {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The listeners on `port` at moment `at` (ms): for each socket, its last event at or
    /// before `at`, kept when that event is not a close.
    pub fn holders_at(&self, port: u16, at: i64) -> Result<Vec<Event>, HistoryError> {
        if self.schema == 0 {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {}
                 FROM events e
                 JOIN (SELECT socket_id, MAX(id) AS last FROM events
                       WHERE local_port = ?1 AND time <= ?2 AND kind NOT IN ('exited', 'health', 'bind_failed', 'connect_refused')
                       GROUP BY socket_id) l
                   ON e.id = l.last
                 WHERE e.kind != 'closed'
                 ORDER BY e.time",
                self.columns()
            ))
            .map_err(|e| self.err(e))?;
        self.read_events(&mut stmt, params![port, at])
    }
}

impl Store {
    /// Each owner's tenure of a listener that overlaps `[since, until]` (ms), oldest start
    /// first; the latest `limit` when there are more (then `truncated`).
    pub fn spans(
        &self,
        since: i64,
        until: i64,
        port: Option<u16>,
        limit: usize,
    ) -> Result<Spans, HistoryError> {
        if self.schema == 0 {
            return Ok(Spans::default());
        }
        // Every event of the sockets that had an event in the window or were open when it
        // began (a span that goes on past the window keeps its real end).
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT socket_id, {} FROM events
                 WHERE (?3 IS NULL OR local_port = ?3) AND socket_id IN (
                     SELECT socket_id FROM events WHERE time >= ?1 AND time <= ?2
                     UNION
                     SELECT e.socket_id FROM events e
                     JOIN (SELECT socket_id, MAX(id) AS last FROM events
                           WHERE time < ?1 AND kind NOT IN ('exited', 'health', 'bind_failed', 'connect_refused')
                           GROUP BY socket_id) l
                       ON e.id = l.last
                     WHERE e.kind != 'closed')
                 ORDER BY socket_id, id
                 LIMIT ?4",
                self.columns()
            ))
            .map_err(|e| self.err(e))?;
        let mut read = 0usize;
        let rows = stmt
            .query_map(params![since, until, port, MAX_SPAN_ROWS], |r| {
                let id: String = r.get(0)?;
                let row = Row::read_from(r, 1)?;
                Ok((id, row))
            })
            .map_err(|e| self.err(e))?;
        let mut spans: Vec<(i64, Span)> = Vec::new();
        let mut current: Option<(String, i64, Span)> = None;
        // Each span's health marks as read (ms), kept to the window when it ends.
        let mut marks: Vec<(i64, HealthMark)> = Vec::new();
        let end = |open: Option<(String, i64, Span)>,
                   at: Option<i64>,
                   marks: &mut Vec<(i64, HealthMark)>,
                   spans: &mut Vec<_>| {
            let marks = std::mem::take(marks);
            if let Some((_, start, mut span)) = open
                && at.is_none_or(|at| at >= since)
                && start <= until
            {
                span.end = at.map(rfc3339);
                span.health = in_window(marks, since, until);
                spans.push((start, span));
            }
        };
        for row in rows {
            read += 1;
            let (id, row) = row.map_err(|e| self.err(e))?;
            let time = row.time;
            let Some(event) = row.into_event() else {
                continue;
            };
            let same = current.as_ref().is_some_and(|(open, ..)| *open == id);
            if !same {
                // A socket whose last event is not a close lasts (up to `until`).
                end(current.take(), None, &mut marks, &mut spans);
            }
            match event.kind {
                EventKind::Closed => {
                    if same {
                        end(current.take(), Some(time), &mut marks, &mut spans);
                    }
                }
                EventKind::Opened | EventKind::OwnerChanged => {
                    // The listener's health goes on with its new owner, from its start.
                    let going_on = marks.last().filter(|_| same).map(|(_, mark)| {
                        let time = (time, rfc3339(time));
                        (
                            time.0,
                            HealthMark {
                                time: time.1,
                                health: mark.health.clone(),
                            },
                        )
                    });
                    if same {
                        end(current.take(), Some(time), &mut marks, &mut spans);
                    }
                    marks.extend(going_on);
                    current = Some((id, time, span_of(event)));
                }
                EventKind::Health => {
                    if let (true, Some(health)) = (same, event.health) {
                        marks.push((
                            time,
                            HealthMark {
                                time: event.time,
                                health,
                            },
                        ));
                    }
                }
                // The owner's exit follows its listener's own event; failures have no socket.
                EventKind::Exited
                | EventKind::BindFailed
                | EventKind::ConnectRefused
                | EventKind::Unknown => {}
            }
        }
        end(current.take(), None, &mut marks, &mut spans);
        spans.sort_by_key(|(start, _)| *start);
        // Memory stays bounded: at most MAX_SPAN_ROWS events are read (a window over a month of
        // a busy machine); the spans they make are then a part, said so.
        let truncated = spans.len() > limit || read >= MAX_SPAN_ROWS;
        let spans = spans
            .split_off(spans.len().saturating_sub(limit))
            .into_iter()
            .map(|(_, span)| span)
            .collect();
        Ok(Spans { spans, truncated })
    }

    /// A port's per-minute connection counts from `since` (ms), oldest first.
    pub fn connections(
        &self,
        port: u16,
        since: i64,
    ) -> Result<Vec<ConnectionMinute>, HistoryError> {
        if self.schema < 2 {
            return Ok(Vec::new()); // Schema 1 counted no connections.
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT minute, accepted, open, peers FROM connections
                 WHERE port = ?1 AND minute >= ?2 ORDER BY minute",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![port, since - since.rem_euclid(60_000)], |r| {
                Ok(ConnectionMinute {
                    time: rfc3339(r.get(0)?),
                    accepted: r.get(1)?,
                    open: r.get(2)?,
                    peers: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// Of a span's health marks (oldest first), the one in force at `since` and those up to
/// `until`.
fn in_window(marks: Vec<(i64, HealthMark)>, since: i64, until: i64) -> Vec<HealthMark> {
    let first = marks.iter().rposition(|(t, _)| *t <= since).unwrap_or(0);
    marks
        .into_iter()
        .skip(first)
        .take_while(|(t, _)| *t <= until)
        .map(|(_, mark)| mark)
        .collect()
}

/// A span starting with `event` (its owner), open until ended.
fn span_of(e: Event) -> Span {
    Span {
        proto: e.proto,
        family: e.family,
        local_addr: e.local_addr,
        local_port: e.local_port,
        pid: e.pid,
        process: e.process,
        cmdline: e.cmdline,
        user: e.user,
        app: e.app,
        start: e.time,
        start_since: e.since,
        end: None,
        health: Vec::new(),
        project: e.project,
    }
}

/// Rows of each table one prune batch removes.
const PRUNE_BATCH: usize = 10_000;

/// The `FROM events e` clause's rest that leaves out the open listeners' tenures (see
/// [`Store::mark_open_tenures`]); conditions follow with `AND`.
const SPARE_OPEN: &str = "LEFT JOIN open_tenures k ON k.socket_id = e.socket_id
                          WHERE (k.from_id IS NULL OR e.id < k.from_id)";

/// Events `spans` reads at most.
const MAX_SPAN_ROWS: usize = 200_000;

/// One port's connections in one minute, as the recorder counts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRow {
    pub port: u16,
    /// The minute's start, ms since the epoch.
    pub minute: i64,
    pub accepted: u32,
    pub open: u32,
    pub peers: u32,
}

/// What the history says of the agent's last look before it stopped.
#[derive(Debug, Default)]
pub struct LastTick {
    pub at: Option<i64>,
    pub open: Vec<(String, Event)>,
}

/// What `history` asks for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub port: Option<u16>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub pid: Option<u32>,
    pub limit: i64,
}

/// The columns `Row::read` takes, in its order.
const COLUMNS: &str = "time, since, kind, proto, family, local_addr, local_port, pid, process, \
                       cmdline, user, app, cwd, exe, start_time, health, project, start_ms, \
                       remote_addr, remote_port, failure";
/// The same from a schema 5 file.
const COLUMNS_5: &str = "time, since, kind, proto, family, local_addr, local_port, pid, process, \
                         cmdline, user, app, cwd, exe, start_time, health, project, start_ms, \
                         NULL, NULL, NULL";
/// The same from a schema 4 file.
const COLUMNS_4: &str = "time, since, kind, proto, family, local_addr, local_port, pid, process, \
                         cmdline, user, app, cwd, exe, start_time, health, project, NULL, \
                         NULL, NULL, NULL";
/// The same from a schema 2 or 3 file.
const COLUMNS_3: &str = "time, since, kind, proto, family, local_addr, local_port, pid, process, \
                         cmdline, user, app, cwd, exe, start_time, NULL, NULL, NULL, \
                         NULL, NULL, NULL";
/// The same from a schema 1 file.
const COLUMNS_1: &str = "time, since, kind, proto, family, local_addr, local_port, pid, process, \
                         cmdline, user, app, NULL, NULL, NULL, NULL, NULL, NULL, \
                         NULL, NULL, NULL";

/// What a failure event keeps beyond a listener event's columns (the `failure` column).
#[derive(serde::Serialize, serde::Deserialize)]
struct Failure {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    holders: Vec<portscope_shared::Holder>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    fix: Option<String>,
}

/// One stored event, as read.
struct Row {
    time: i64,
    since: Option<i64>,
    kind: String,
    proto: String,
    family: String,
    local_addr: String,
    local_port: u16,
    pid: Option<u32>,
    process: Option<String>,
    cmdline: String,
    user: Option<String>,
    app: Option<String>,
    cwd: Option<String>,
    exe: Option<String>,
    start_time: Option<i64>,
    health: Option<String>,
    project: Option<String>,
    start_ms: Option<i64>,
    remote_addr: Option<String>,
    remote_port: Option<u16>,
    failure: Option<String>,
}

impl Row {
    /// A row of a `SELECT` of [`COLUMNS`].
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Row::read_from(r, 0)
    }

    /// [`COLUMNS`] from column `at` on.
    fn read_from(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
        Ok(Row {
            time: r.get(at)?,
            since: r.get(at + 1)?,
            kind: r.get(at + 2)?,
            proto: r.get(at + 3)?,
            family: r.get(at + 4)?,
            local_addr: r.get(at + 5)?,
            local_port: r.get(at + 6)?,
            pid: r.get(at + 7)?,
            process: r.get(at + 8)?,
            cmdline: r.get(at + 9)?,
            user: r.get(at + 10)?,
            app: r.get(at + 11)?,
            cwd: r.get(at + 12)?,
            exe: r.get(at + 13)?,
            start_time: r.get(at + 14)?,
            health: r.get(at + 15)?,
            project: r.get(at + 16)?,
            start_ms: r.get(at + 17)?,
            remote_addr: r.get(at + 18)?,
            remote_port: r.get(at + 19)?,
            failure: r.get(at + 20)?,
        })
    }

    fn into_event(self) -> Option<Event> {
        let failure: Option<Failure> = self.failure.and_then(|f| serde_json::from_str(&f).ok());
        let (error, holders, count, fix) = match failure {
            Some(f) => (f.error, f.holders, f.count, f.fix),
            None => (None, Vec::new(), None, None),
        };
        Some(Event {
            error,
            holders,
            count,
            fix,
            brief: false,
            time: rfc3339(self.time),
            since: self.since.map(rfc3339),
            kind: serde_json::from_value(serde_json::Value::String(self.kind)).ok()?,
            proto: serde_json::from_str(&self.proto).ok()?,
            family: serde_json::from_str(&self.family).ok()?,
            local_addr: self.local_addr.parse().ok()?,
            local_port: self.local_port,
            remote_addr: self.remote_addr.and_then(|a| a.parse().ok()),
            remote_port: self.remote_port,
            pid: self.pid,
            process: self.process,
            cmdline: serde_json::from_str(&self.cmdline).unwrap_or_default(),
            user: self.user,
            cwd: self.cwd,
            exe: self.exe,
            start_time: self.start_time.and_then(|t| u64::try_from(t).ok()),
            start_ms: self.start_ms.and_then(|t| u64::try_from(t).ok()),
            app: self.app,
            health: self.health.and_then(|h| serde_json::from_str(&h).ok()),
            project: self.project,
        })
    }
}

/// The `failure` column of a failure event; `NULL` for the others.
fn failure_text(e: &Event) -> Option<String> {
    matches!(e.kind, EventKind::BindFailed | EventKind::ConnectRefused).then(|| {
        json_text(&Failure {
            error: e.error.clone(),
            holders: e.holders.clone(),
            count: e.count,
            fix: e.fix.clone(),
        })
    })
}

fn kind_text(kind: EventKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use portscope_shared::{Family, Proto};

    use super::*;

    fn opened(port: u16, pid: u32) -> Event {
        Event {
            error: None,
            holders: Vec::new(),
            count: None,
            fix: None,
            brief: false,
            time: String::new(),
            since: None,
            kind: EventKind::Opened,
            proto: Proto::Tcp,
            family: Family::Ipv4,
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port: port,
            remote_addr: None,
            remote_port: None,
            pid: Some(pid),
            process: Some("node".into()),
            cmdline: vec!["node".into(), "server.js".into()],
            user: Some("dev".into()),
            cwd: None,
            exe: None,
            start_time: None,
            start_ms: None,
            app: None,
            health: None,
            project: None,
        }
    }

    fn closed(port: u16, pid: u32) -> Event {
        Event {
            kind: EventKind::Closed,
            ..opened(port, pid)
        }
    }

    #[test]
    fn events_come_back_newest_first_and_holders_at_a_moment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut store = Store::open(&path).unwrap();
        let a = ("tcp 127.0.0.1:3000 - i1".to_owned(), opened(3000, 10), None);
        store.write(1_000, &[a], None).unwrap();
        store
            .write(
                5_000,
                &[
                    ("tcp 127.0.0.1:3000 - i1".into(), closed(3000, 10), None),
                    (
                        "tcp 127.0.0.1:3000 - i1".into(),
                        Event {
                            kind: EventKind::Exited,
                            ..opened(3000, 10)
                        },
                        None,
                    ),
                ],
                None,
            )
            .unwrap();
        let b = (
            "tcp 127.0.0.1:3000 - i2".to_owned(),
            opened(3000, 11),
            Some(4_000),
        );
        store.write(9_000, &[b], None).unwrap();
        store
            .write(9_500, &[("x".into(), opened(4000, 12), None)], None)
            .unwrap();

        let reader = Store::open_read_only(&path).unwrap();
        let all = reader
            .query(&Query {
                port: Some(3000),
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        let seen: Vec<(EventKind, Option<u32>)> = all.iter().map(|e| (e.kind, e.pid)).collect();
        assert_eq!(
            seen,
            [
                (EventKind::Opened, Some(11)),
                (EventKind::Exited, Some(10)),
                (EventKind::Closed, Some(10)),
                (EventKind::Opened, Some(10))
            ]
        );
        assert_eq!(all[0].since.as_deref(), Some("1970-01-01T00:00:04Z"));
        assert_eq!(all[0].time, "1970-01-01T00:00:09Z");
        assert_eq!(all[3].cmdline, ["node", "server.js"]);
        // The owner's exit is not a listener of its own, nor a reopening.
        let spans = reader.spans(0, 10_000, Some(3000), 10).unwrap().spans;
        let ends: Vec<(Option<u32>, Option<&str>)> =
            spans.iter().map(|s| (s.pid, s.end.as_deref())).collect();
        assert_eq!(
            ends,
            [(Some(10), Some("1970-01-01T00:00:05Z")), (Some(11), None)]
        );
        let pid = |at| -> Vec<Option<u32>> {
            reader
                .holders_at(3000, at)
                .unwrap()
                .iter()
                .map(|e| e.pid)
                .collect()
        };
        assert_eq!(pid(500), Vec::<Option<u32>>::new(), "before anything");
        assert_eq!(pid(2_000), [Some(10)]);
        assert_eq!(pid(6_000), Vec::<Option<u32>>::new(), "after it closed");
        assert_eq!(pid(9_000), [Some(11)]);
        let since = reader
            .query(&Query {
                since: Some(9_200),
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(since.len(), 1);
        assert_eq!(since[0].local_port, 4000);
    }

    #[test]
    fn the_last_tick_is_kept_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut store = Store::open(&path).unwrap();
        let open = vec![("tcp 127.0.0.1:3000 - i1".to_owned(), opened(3000, 10))];
        store.write(7_000, &[], Some(&open)).unwrap();
        drop(store);
        let last = Store::open(&path).unwrap().last_tick().unwrap();
        assert_eq!(last.at, Some(7_000));
        assert_eq!(last.open, open);

        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(Store::open(&path), Err(HistoryError::Newer(_, v)) if v == SCHEMA + 1));
    }

    #[test]
    fn spans_follow_each_owner_of_a_listener_through_a_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let a = "tcp 127.0.0.1:3000 - i1".to_owned();
        let b = "tcp 127.0.0.1:4000 - i2".to_owned();
        let c = "tcp 127.0.0.1:5000 - i3".to_owned();
        let passed = Event {
            kind: EventKind::OwnerChanged,
            ..opened(3000, 11)
        };
        // a: opened by 10 at 1 s, passed to 11 at 5 s, closed at 9 s.
        // b: opened at 2 s, still open. c: opened and closed before the window.
        store
            .write(100, &[(c.clone(), opened(5000, 30), None)], None)
            .unwrap();
        store
            .write(200, &[(c.clone(), closed(5000, 30), None)], None)
            .unwrap();
        store
            .write(1_000, &[(a.clone(), opened(3000, 10), None)], None)
            .unwrap();
        store
            .write(2_000, &[(b.clone(), opened(4000, 20), Some(1_500))], None)
            .unwrap();
        store
            .write(5_000, &[(a.clone(), passed, None)], None)
            .unwrap();
        store
            .write(9_000, &[(a.clone(), closed(3000, 11), None)], None)
            .unwrap();

        let seen = |since, until, port| -> Vec<(u16, Option<u32>, String, Option<String>)> {
            store
                .spans(since, until, port, 100)
                .unwrap()
                .spans
                .into_iter()
                .map(|s| (s.local_port, s.pid, s.start, s.end))
                .collect()
        };
        let t = |s: u64| format!("1970-01-01T00:00:{s:02}Z");
        assert_eq!(
            seen(3_000, 20_000, None),
            [
                (3000, Some(10), t(1), Some(t(5))),
                (4000, Some(20), t(2), None),
                (3000, Some(11), t(5), Some(t(9))),
            ],
            "open at the window's start, passed on, and still open"
        );
        assert_eq!(
            seen(6_000, 7_000, Some(3000)),
            [(3000, Some(11), t(5), Some(t(9)))],
            "only the owner in the window, on that port"
        );
        assert!(seen(9_500, 20_000, Some(3000)).is_empty(), "closed before");
        let all = store.spans(0, 20_000, None, 2).unwrap();
        assert!(all.truncated);
        assert_eq!(
            all.spans.iter().map(|s| s.pid).collect::<Vec<_>>(),
            [Some(20), Some(11)],
            "the latest starts are kept"
        );
        let b = store.spans(0, 20_000, Some(4000), 10).unwrap();
        assert_eq!(
            b.spans[0].start_since.as_deref(),
            Some("1970-01-01T00:00:01.500Z"),
            "to the millisecond"
        );
    }

    #[test]
    fn spans_carry_the_health_in_force_and_its_changes_in_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let a = "tcp 127.0.0.1:3000 - i1".to_owned();
        let check = |pid, up: bool, status: u16| Event {
            kind: EventKind::Health,
            health: Some(portscope_shared::Health {
                up,
                status: Some(status),
                latency_ms: 2,
                detail: None,
            }),
            ..opened(3000, pid)
        };
        // Opened by 10 (in project shop) at 1 s; up at 2 s; 500 at 4 s; passed to 11 at 5 s;
        // up at 7 s; closed at 9 s.
        let in_shop = Event {
            project: Some("shop".into()),
            ..opened(3000, 10)
        };
        for (at, e) in [
            (1_000, in_shop),
            (2_000, check(10, true, 200)),
            (4_000, check(10, false, 500)),
            (
                5_000,
                Event {
                    kind: EventKind::OwnerChanged,
                    ..opened(3000, 11)
                },
            ),
            (7_000, check(11, true, 200)),
            (9_000, closed(3000, 11)),
        ] {
            store.write(at, &[(a.clone(), e, None)], None).unwrap();
        }
        let t = |s: u64| format!("1970-01-01T00:00:{s:02}Z");
        type Marks = Vec<(Option<u32>, Vec<(String, bool)>)>;
        let marks = |since, until| -> Marks {
            store
                .spans(since, until, None, 10)
                .unwrap()
                .spans
                .into_iter()
                .map(|s| {
                    let marks = s.health.iter().map(|m| (m.time.clone(), m.health.up));
                    (s.pid, marks.collect())
                })
                .collect()
        };
        assert_eq!(
            marks(3_000, 20_000),
            [
                (Some(10), vec![(t(2), true), (t(4), false)]),
                (Some(11), vec![(t(5), false), (t(7), true)]),
            ],
            "the answer in force at the window's start, the changes, and the health going on \
             with the new owner from the change"
        );
        assert_eq!(
            marks(5_500, 6_500),
            [(Some(11), vec![(t(5), false)])],
            "only what was in force"
        );
        assert_eq!(
            marks(0, 1_500),
            [(Some(10), vec![])],
            "not checked yet; later answers are not the window's"
        );
        let projects: Vec<Option<String>> = store
            .spans(0, 20_000, None, 10)
            .unwrap()
            .spans
            .into_iter()
            .map(|s| s.project)
            .collect();
        assert_eq!(projects, [Some("shop".into()), None], "each owner's own");
        // A health check is not a listener's opening or closing.
        let holders = store.holders_at(3000, 4_500).unwrap();
        assert_eq!(
            holders.iter().map(|e| (e.kind, e.pid)).collect::<Vec<_>>(),
            [(EventKind::Opened, Some(10))]
        );
        let all = store
            .query(&Query {
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[1].kind, EventKind::Health);
        assert_eq!(all[1].health.as_ref().map(|h| h.up), Some(true));
    }

    #[test]
    fn connection_counts_replace_their_minute_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let row = |minute, accepted, open| ConnectionRow {
            port: 8000,
            minute,
            accepted,
            open,
            peers: 1,
        };
        store
            .write_tick(60_500, &[], None, &[row(60_000, 1, 1)])
            .unwrap();
        store
            .write_tick(61_000, &[], None, &[row(60_000, 3, 2)])
            .unwrap();
        store
            .write_tick(180_000, &[], None, &[row(180_000, 0, 2)])
            .unwrap();
        let minutes = store.connections(8000, 60_000).unwrap();
        let seen: Vec<_> = minutes
            .iter()
            .map(|m| (m.time.as_str(), m.accepted, m.open))
            .collect();
        assert_eq!(
            seen,
            [
                ("1970-01-01T00:01:00Z", 3, 2),
                ("1970-01-01T00:03:00Z", 0, 2)
            ]
        );
        assert!(store.connections(8001, 0).unwrap().is_empty());
        assert_eq!(
            store.connections(8000, 61_000).unwrap().len(),
            2,
            "its minute"
        );
        store.prune(120_000).unwrap();
        assert_eq!(
            store.connections(8000, 0).unwrap().len(),
            1,
            "pruned by age"
        );
    }

    #[test]
    fn a_file_over_its_size_forgets_its_oldest_events_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        // Closed listeners' events: an open listener's tenure is never pruned (below).
        let mut long = closed(3000, 10);
        long.cmdline = vec!["x".repeat(400)];
        let daemon = ("tcp 127.0.0.1:5432 - i9".to_owned(), opened(5432, 99), None);
        store.write(0, &[daemon], None).unwrap();
        // 6 000 events a tick: more share one time than a batch removes (a start's
        // reconciliation on a big machine writes every open listener at once).
        for batch in 0..7 {
            let events: Vec<_> = (0..6000)
                .map(|i| (format!("s{batch}-{i}"), long.clone(), None))
                .collect();
            store.write(i64::from(batch) * 1000, &events, None).unwrap();
        }
        let before = store.used_bytes().unwrap();
        assert!(before > 16 << 20, "the test needs a large file: {before}");
        let max = 4 << 20;
        assert!(store.prune_to_size(max, 50).unwrap());
        let after = store.used_bytes().unwrap();
        assert!(after <= max, "{after} bytes left, over {max}");
        let file = std::fs::metadata(dir.path().join("h.db")).unwrap().len();

        assert!(
            file < before,
            "the file gave pages back: {file} of {before}"
        );
        let newest = store
            .query(&Query {
                limit: 1,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(newest[0].time, "1970-01-01T00:00:06Z", "the newest stay");
        let oldest = store
            .query(&Query {
                until: Some(1_000),
                limit: 1,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(
            oldest.iter().map(|e| e.local_port).collect::<Vec<_>>(),
            [5432],
            "the oldest went, but for the listener open all along"
        );
    }

    #[test]
    fn under_sudo_the_state_is_roots_own_not_the_invoking_users() {
        // `sudo -E`: the invoking user's variables, root's home from the user database.
        let env = |k: &str| match k {
            "XDG_STATE_HOME" => Some("/home/dev/.local/state".into()),
            "HOME" => Some("/home/dev".into()),
            _ => None,
        };
        assert_eq!(
            state_dir(Some("/root".into()), env),
            Some(PathBuf::from("/root/.local/state"))
        );
        assert_eq!(
            state_dir(None, env),
            Some(PathBuf::from("/home/dev/.local/state"))
        );
        let home_only = |k: &str| (k == "HOME").then(|| "/home/dev".into());
        assert_eq!(
            state_dir(None, home_only),
            Some(PathBuf::from("/home/dev/.local/state"))
        );
    }

    #[test]
    fn pruning_spares_an_open_listeners_tenure_however_old_and_forgets_closed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        let pg = "tcp 127.0.0.1:5432 - i1".to_owned();
        let old = "tcp 127.0.0.1:3000 - i2".to_owned();
        let mut health = opened(5432, 20);
        health.kind = EventKind::Health;
        let mut passed_on = opened(5432, 21);
        passed_on.kind = EventKind::OwnerChanged;
        let mut exited = opened(5432, 20);
        exited.kind = EventKind::Exited;
        let writes: Vec<(i64, String, Event)> = vec![
            // An earlier tenure of the same socket, closed: it goes.
            (100, pg.clone(), opened(5432, 10)),
            (500, pg.clone(), closed(5432, 10)),
            // The tenure open now, from 1 000 on, with a check and a new owner: it stays.
            (1_000, pg.clone(), opened(5432, 20)),
            (2_000, pg.clone(), health),
            (3_000, pg.clone(), passed_on),
            (3_000, pg.clone(), exited),
            // Another port's listener, closed long ago: it goes.
            (1_000, old.clone(), opened(3000, 30)),
            (2_000, old.clone(), closed(3000, 30)),
        ];
        for (at, id, e) in writes {
            store.write(at, &[(id, e, None)], None).unwrap();
        }
        let gone = store.prune(10_000).unwrap();
        assert_eq!(gone, 4, "the closed tenures' four events");
        let left = store
            .query(&Query {
                limit: 100,
                ..Query::default()
            })
            .unwrap();
        let seen: Vec<(&str, EventKind, Option<u32>)> = left
            .iter()
            .map(|e| (e.time.as_str(), e.kind, e.pid))
            .collect();
        assert_eq!(
            seen,
            [
                ("1970-01-01T00:00:03Z", EventKind::Exited, Some(20)),
                ("1970-01-01T00:00:03Z", EventKind::OwnerChanged, Some(21)),
                ("1970-01-01T00:00:02Z", EventKind::Health, Some(20)),
                ("1970-01-01T00:00:01Z", EventKind::Opened, Some(20)),
            ]
        );
        // Any moment of the open tenure is answered, its first second included.
        let at = |ms| store.holders_at(5432, ms).unwrap();
        assert_eq!(
            at(1_500).iter().map(|e| e.pid).collect::<Vec<_>>(),
            [Some(20)]
        );
        assert_eq!(
            at(9_000).iter().map(|e| e.pid).collect::<Vec<_>>(),
            [Some(21)]
        );
        assert!(store.holders_at(3000, 1_500).unwrap().is_empty());
        let spans = store.spans(9_000, 10_000, Some(5432), 10).unwrap();
        assert_eq!(spans.spans.len(), 1, "{spans:?}");
        // Once it closes, its tenure is old news like any other.
        store
            .write(11_000, &[(pg, closed(5432, 21), None)], None)
            .unwrap();
        assert_eq!(store.prune(10_000).unwrap(), 4);
    }

    #[test]
    fn a_schema_1_file_is_read_as_it_is_and_migrated_by_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        // The schema 1 tables, as the first version made them.
        let v1 = Connection::open(&path).unwrap();
        v1.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, since INTEGER,
                 kind TEXT NOT NULL, socket_id TEXT NOT NULL, proto TEXT NOT NULL,
                 family TEXT NOT NULL, local_addr TEXT NOT NULL, local_port INTEGER NOT NULL,
                 pid INTEGER, process TEXT, cmdline TEXT NOT NULL, user TEXT, app TEXT);
             CREATE INDEX events_port_time ON events (local_port, time);
             CREATE INDEX events_time ON events (time);
             CREATE TABLE open_listeners (socket_id TEXT PRIMARY KEY, event TEXT NOT NULL);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO events (time, kind, socket_id, proto, family, local_addr, local_port,
                 pid, process, cmdline, user)
             VALUES (1000, 'opened', 's1', '\"tcp\"', '\"ipv4\"', '127.0.0.1', 3000, 10,
                 'node', '[\"node\"]', 'dev');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(v1);

        // A reader (a new CLI beside an old agent) reads it as it is.
        let old = Store::open_read_only(&path).unwrap();
        let events = old
            .query(&Query {
                limit: 5,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].pid, events[0].cwd.as_deref()), (Some(10), None));
        assert!(old.connections(3000, 0).unwrap().is_empty());
        assert_eq!(old.spans(0, 5000, None, 10).unwrap().spans.len(), 1);
        drop(old);

        // The writer migrates it; old events stay, new ones have a working directory.
        let mut store = Store::open(&path).unwrap();
        let mut new = opened(4000, 11);
        new.cwd = Some("/home/dev/app".into());
        store
            .write(2000, &[("s2".into(), new, None)], None)
            .unwrap();
        let events = store
            .query(&Query {
                limit: 5,
                ..Query::default()
            })
            .unwrap();
        let seen: Vec<_> = events
            .iter()
            .map(|e| (e.local_port, e.cwd.as_deref()))
            .collect();
        assert_eq!(seen, [(4000, Some("/home/dev/app")), (3000, None)]);
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA);
    }
}
