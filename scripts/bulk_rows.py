#!/usr/bin/env python3
"""Fills a SQLite catalog to TOTAL checkpoints for the list benchmarks, straight into the database: copies of its
first row with their own ID (sha256 of "bench-N"), container name (bench-N) and upload time, and a placeholder
statement each, so the next start has nothing to sign (a real ingest writes one).

Usage: scripts/bulk_rows.py CATALOG.sqlite TOTAL"""
import hashlib
import sqlite3
import sys

path, total = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("PRAGMA cache_size = -400000")  # 400 MB: random IDs touch every index page; a small cache thrashes
row = db.execute("SELECT * FROM checkpoint LIMIT 1").fetchone()
columns = [c[1] for c in db.execute("PRAGMA table_info(checkpoint)")]
have = db.execute("SELECT count(*) FROM checkpoint").fetchone()[0]
rows = []
for n in range(total - have):
    values = list(row)
    values[columns.index("id")] = hashlib.sha256(f"bench-{n}".encode()).hexdigest()
    values[columns.index("container_name")] = f"bench-{n}"
    values[columns.index("uploaded_at")] = f"2026-01-01T00:00:{n % 60:02d}.{n % 1000:03d}Z"
    rows.append(values)
db.executemany(f"INSERT OR IGNORE INTO checkpoint VALUES ({','.join('?' * len(columns))})", rows)
db.execute("""INSERT INTO checkpoint_statement (checkpoint_id, chain_key, chain_index, statement_digest, envelope)
              SELECT c.id, 'bulk/' || c.id, 0, 'sha256:' || c.id, '{}' FROM checkpoint c
              WHERE NOT EXISTS (SELECT 1 FROM checkpoint_statement s WHERE s.checkpoint_id = c.id)""")
db.commit()
