"""An embedded ML-metadata store (SQLite): executions, artifacts and the events that link them."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from typing import Any, Iterator

RUNNING, COMPLETE, FAILED, CACHED, SKIPPED = "RUNNING", "COMPLETE", "FAILED", "CACHED", "SKIPPED"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    component TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    message TEXT
);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    uri TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    properties TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    execution_id INTEGER NOT NULL REFERENCES executions(id),
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id),
    kind TEXT NOT NULL CHECK (kind IN ('INPUT', 'OUTPUT')),
    name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_fingerprint ON executions(component, fingerprint, status);
"""


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A thing on disk a component produced or consumed."""

    id: int
    type: str
    uri: str
    fingerprint: str
    properties: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Execution:
    id: int
    run_id: str
    component: str
    fingerprint: str
    parameters: dict[str, Any]
    status: str
    started: float
    finished: float | None
    message: str | None


class MetadataStore:
    """SQLite-backed store at `<pipeline_root>/metadata.sqlite`."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        self._connection.close()

    # -------------------------------------------------------------- writes
    def start_execution(self, run_id: str, component: str, fingerprint: str, parameters: dict[str, Any]) -> int:
        cursor = self._connection.execute(
            "INSERT INTO executions (run_id, component, fingerprint, parameters, status, started) VALUES (?,?,?,?,?,?)",
            (run_id, component, fingerprint, json.dumps(parameters, sort_keys=True, default=str), RUNNING, time.time()))
        return int(cursor.lastrowid)

    def finish_execution(self, execution_id: int, status: str, message: str | None = None) -> None:
        self._connection.execute("UPDATE executions SET status=?, finished=?, message=? WHERE id=?",
                                 (status, time.time(), message, execution_id))

    def add_artifact(self, type_: str, uri: str, fingerprint: str, properties: dict[str, Any] | None = None) -> int:
        cursor = self._connection.execute(
            "INSERT INTO artifacts (type, uri, fingerprint, properties, created) VALUES (?,?,?,?,?)",
            (type_, uri, fingerprint, json.dumps(properties or {}, sort_keys=True, default=str), time.time()))
        return int(cursor.lastrowid)

    def link(self, execution_id: int, artifact_id: int, kind: str, name: str) -> None:
        self._connection.execute("INSERT INTO events (execution_id, artifact_id, kind, name) VALUES (?,?,?,?)",
                                 (execution_id, artifact_id, kind, name))

    # --------------------------------------------------------------- reads
    def completed_execution(self, component: str, fingerprint: str) -> Execution | None:
        """The latest COMPLETE execution of `component` with this input fingerprint."""
        row = self._connection.execute(
            "SELECT * FROM executions WHERE component=? AND fingerprint=? AND status=? ORDER BY id DESC LIMIT 1",
            (component, fingerprint, COMPLETE)).fetchone()
        return _execution(row) if row else None

    def executions(self, run_id: str | None = None) -> list[Execution]:
        query, args = "SELECT * FROM executions", ()
        if run_id is not None:
            query, args = query + " WHERE run_id=?", (run_id,)
        return [_execution(r) for r in self._connection.execute(query + " ORDER BY id", args)]

    def artifacts_of(self, execution_id: int, kind: str) -> dict[str, Artifact]:
        rows = self._connection.execute(
            "SELECT e.name, a.* FROM events e JOIN artifacts a ON a.id = e.artifact_id "
            "WHERE e.execution_id=? AND e.kind=? ORDER BY a.id", (execution_id, kind))
        return {row[0]: _artifact(row[1:]) for row in rows}

    def iter_lineage(self) -> Iterator[tuple[Execution, dict[str, Artifact], dict[str, Artifact]]]:
        for execution in self.executions():
            yield execution, self.artifacts_of(execution.id, "INPUT"), self.artifacts_of(execution.id, "OUTPUT")


def _execution(row) -> Execution:
    return Execution(id=row[0], run_id=row[1], component=row[2], fingerprint=row[3], parameters=json.loads(row[4]),
                     status=row[5], started=row[6], finished=row[7], message=row[8])


def _artifact(row) -> Artifact:
    return Artifact(id=row[0], type=row[1], uri=row[2], fingerprint=row[3], properties=json.loads(row[4]))
