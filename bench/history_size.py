"""What a history file holds, for `cargo xtask bench`: its live pages in bytes (after a
checkpoint folds the write-ahead log in; the log's own size is bounded and reused), and its rows.

usage: history_size.py FILE
"""
import json
import sqlite3
import sys


def main():
    db = sqlite3.connect(sys.argv[1])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pragma = lambda name: db.execute(f"PRAGMA {name}").fetchone()[0]
    used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")
    count = lambda table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    print(json.dumps({
        "bytes": used,
        "events": count("events"),
        "connection_rows": count("connections"),
    }), flush=True)


if __name__ == "__main__":
    main()
