//! The history file: SQLite (bundled through rusqlite), WAL mode, schema versioned by
//! `PRAGMA user_version` with migrations. It keeps listener events, the listeners open at the
//! last tick (to tell, at the next start, what happened while the agent was down) and that
//! tick's time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portscope_shared::{Event, EventKind};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

/// The schema this build writes. A file from a newer build is not touched.
pub const SCHEMA: i64 = 1;

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
}

/// The default file: `$XDG_STATE_HOME/portscope/history.db`, else
/// `~/.local/state/portscope/history.db`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("portscope").join("history.db"))
}

/// An open history file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Store {
    /// Opens (or makes) the file for writing, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, HistoryError> {
        // It holds other processes' command lines: the user's alone (SQLite gives its -wal and
        // -shm files the same mode).
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| HistoryError::Directory {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| HistoryError::Directory {
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
        Ok(Store {
            conn,
            path: path.to_owned(),
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
        })
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
                     local_port, pid, process, cmdline, user, app)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('last_tick', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [at],
            )
            .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)
    }

    /// Forgets events older than `before` (ms), a bounded batch at a time.
    pub fn prune(&mut self, before: i64) -> Result<usize, HistoryError> {
        self.conn
            .execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time < ?1 LIMIT 10000)",
                [before],
            )
            .map_err(|e| self.err(e))
    }

    /// Events newest first, filtered.
    pub fn query(&self, q: &Query) -> Result<Vec<Event>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS}
                 FROM events
                 WHERE (?1 IS NULL OR local_port = ?1) AND (?2 IS NULL OR time >= ?2)
                   AND (?3 IS NULL OR time <= ?3) AND (?4 IS NULL OR pid = ?4)
                 ORDER BY time DESC, id DESC LIMIT ?5"
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
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS}
                 FROM events e
                 JOIN (SELECT socket_id, MAX(id) AS last FROM events
                       WHERE local_port = ?1 AND time <= ?2 GROUP BY socket_id) l
                   ON e.id = l.last
                 WHERE e.kind != 'closed'
                 ORDER BY e.time"
            ))
            .map_err(|e| self.err(e))?;
        self.read_events(&mut stmt, params![port, at])
    }
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
                       cmdline, user, app";

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
}

impl Row {
    /// A row of a `SELECT` of [`COLUMNS`].
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok(Row {
            time: r.get(0)?,
            since: r.get(1)?,
            kind: r.get(2)?,
            proto: r.get(3)?,
            family: r.get(4)?,
            local_addr: r.get(5)?,
            local_port: r.get(6)?,
            pid: r.get(7)?,
            process: r.get(8)?,
            cmdline: r.get(9)?,
            user: r.get(10)?,
            app: r.get(11)?,
        })
    }

    fn into_event(self) -> Option<Event> {
        Some(Event {
            time: rfc3339(self.time),
            since: self.since.map(rfc3339),
            kind: serde_json::from_value(serde_json::Value::String(self.kind)).ok()?,
            proto: serde_json::from_str(&self.proto).ok()?,
            family: serde_json::from_str(&self.family).ok()?,
            local_addr: self.local_addr.parse().ok()?,
            local_port: self.local_port,
            remote_addr: None,
            remote_port: None,
            pid: self.pid,
            process: self.process,
            cmdline: serde_json::from_str(&self.cmdline).unwrap_or_default(),
            user: self.user,
            app: self.app,
        })
    }
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
            app: None,
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
                &[("tcp 127.0.0.1:3000 - i1".into(), closed(3000, 10), None)],
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
                (EventKind::Closed, Some(10)),
                (EventKind::Opened, Some(10))
            ]
        );
        assert_eq!(all[0].since.as_deref(), Some("1970-01-01T00:00:04Z"));
        assert_eq!(all[0].time, "1970-01-01T00:00:09Z");
        assert_eq!(all[2].cmdline, ["node", "server.js"]);
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
}
