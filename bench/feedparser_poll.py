#!/usr/bin/env python3
"""The Python feedparser side of the side-by-side benchmark (benches/compare.rs).

feedparser is a parser, not a reader: it has no poller and no store. This is the small
program a Python user would write around it, kept as plain as possible so the numbers are
feedparser's and not this script's:

  poll DB URLS THREADS   fetch every URL in the file URLS with feedparser.parse() on a pool
                         of THREADS threads, passing the ETag and Last-Modified kept from the
                         previous poll (so unchanged feeds are 304s), and store the entries in
                         the SQLite file DB (WAL, synchronous=NORMAL like newsdesk; one
                         transaction per feed, written by the main thread only)
  parse DIR              parse every DIR/*.xml from memory, one after another on one thread,
                         and report the CPU time of the parsing alone (not reading the files,
                         not starting Python, not importing feedparser)

Each prints one JSON object on stdout. Only the standard library and feedparser are used.
"""

import concurrent.futures
import json
import os
import sqlite3
import sys
import time

import feedparser

SCHEMA = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS feeds (
    url TEXT PRIMARY KEY, etag TEXT, modified TEXT, title TEXT, status INTEGER
);
CREATE TABLE IF NOT EXISTS entries (
    feed TEXT NOT NULL, id TEXT NOT NULL, title TEXT, link TEXT, published TEXT,
    author TEXT, content TEXT, PRIMARY KEY (feed, id)
);
"""


def entry_row(url, e):
    # The fields a reader shows; the full content when the feed has it, else the summary.
    content = e.get("content")
    body = content[0].get("value", "") if content else e.get("summary", "")
    ident = e.get("id") or e.get("link") or e.get("title", "")
    return (url, ident, e.get("title"), e.get("link"), e.get("published"), e.get("author"), body)


def poll(db_path, urls_path, threads):
    with open(urls_path, encoding="utf-8") as f:
        urls = [line.strip() for line in f if line.strip()]
    db = sqlite3.connect(db_path)
    db.executescript(SCHEMA)
    validators = {u: (etag, mod) for u, etag, mod in db.execute("SELECT url, etag, modified FROM feeds")}
    before = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def fetch(url):
        etag, modified = validators.get(url, (None, None))
        return url, feedparser.parse(url, etag=etag, modified=modified)

    counts = {"ok": 0, "not_modified": 0, "errors": 0}

    def store(url, d):
        status = d.get("status")
        if status == 304:
            counts["not_modified"] += 1
            return
        if status != 200 or (d.get("bozo") and not d.entries):
            counts["errors"] += 1
            return
        counts["ok"] += 1
        with db:  # one transaction per feed
            db.execute(
                "INSERT INTO feeds (url, etag, modified, title, status) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, modified = excluded.modified, "
                "title = excluded.title, status = excluded.status",
                (url, d.get("etag"), d.get("modified"), d.feed.get("title"), status),
            )
            db.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feed, id) DO UPDATE SET "
                "title = excluded.title, link = excluded.link, published = excluded.published, "
                "author = excluded.author, content = excluded.content",
                [entry_row(url, e) for e in d.entries],
            )

    # At most 2 x THREADS feeds in flight or parsed and waiting: every thread stays busy while
    # the main thread writes, and memory stays bounded (submitting all 1,000 at once let
    # parsed feeds pile up when the writer fell behind: 94 to 206 MB between two runs).
    todo = iter(urls)
    pending = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        while True:
            for url in todo:
                pending.add(pool.submit(fetch, url))
                if len(pending) >= 2 * threads:
                    break
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                store(*fut.result())
    after = db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    db.close()
    counts.update(feeds=len(urls), new=after - before, items=after)
    return counts


def parse(folder):
    names = sorted(n for n in os.listdir(folder) if n.endswith(".xml"))
    docs = []
    for n in names:
        with open(os.path.join(folder, n), "rb") as f:
            docs.append((n, f.read()))
    entries = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for n, body in docs:
        # The base URL and type a poll would have had (relative links are resolved against it).
        headers = {"content-location": f"http://127.0.0.1/feed/{n}", "content-type": "application/xml; charset=utf-8"}
        entries += len(feedparser.parse(body, response_headers=headers).entries)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"docs": len(docs), "bytes": sum(len(b) for _, b in docs), "entries": entries, "cpu_s": cpu, "wall_s": wall}


def main(argv):
    if len(argv) == 5 and argv[1] == "poll":
        out = poll(argv[2], argv[3], int(argv[4]))
    elif len(argv) == 3 and argv[1] == "parse":
        out = parse(argv[2])
    elif len(argv) == 2 and argv[1] == "version":
        out = {"feedparser": feedparser.__version__, "python": sys.version.split()[0]}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
