"""A file replayed again does not store its quarantine again (mass_tui.quarantine_ledger)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.config import load_config
from mass_tui.engine import Engine
from mass_tui.quarantine_ledger import QuarantineLedger, record_key
from mass_tui.replay import replay_file
from mass_tui.store import JsonlStore, redact_by_default

GOOD = '{{"ts": "2024-05-01T{h:02d}:{m:02d}:00Z", "station": "s1", "temp_c": {v}}}'
# whole messages set aside, and one bad field of a message whose other value is kept
BAD = [
    "not json at all",
    '["a", "list"]',
    '{"station": "s1", "temp_c": 3.0}',
    '{"ts": "yesterday", "station": "s1", "temp_c": 3.0}',
    '{"ts": "2024-05-01T23:59:00Z", "station": "s2", "temp_c": "warm", "humidity_pct": 50}',
]


def _config(tmp_path: Path):
    return load_config(None, env={"MASS_DATA_DIR": str(tmp_path / "data"), "MASS_LOG_DIR": str(tmp_path / "logs")},
                       dotenv_file=None)


def _replay(tmp_path: Path, path: Path, **kw) -> dict:
    with JsonlStore(tmp_path / "db") as store:
        engine = Engine(_config(tmp_path), store)
        assert replay_file(engine, path, **kw)
        return engine.summary()


def _canon(record: dict) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "received_at"}, sort_keys=True)


def _stored(tmp_path: Path) -> Counter[str]:
    """The quarantine in the store, as a multiset of records (canonical JSON) without their received_at."""
    path = tmp_path / "db" / "rejected.jsonl"
    if not path.exists():
        return Counter()
    return Counter(_canon(json.loads(line)) for line in path.read_bytes().splitlines() if line.strip())


def _write(path: Path, bad_at: list[tuple[int, int]]) -> None:
    """Good minute readings with the bad lines `(position, which)` put in among them."""
    lines = [GOOD.format(h=i // 60, m=i % 60, v=10 + i % 7) for i in range(40)]
    for at, which in sorted(bad_at, reverse=True):
        lines.insert(at, BAD[which])
    path.write_text("\n".join(lines) + "\n")


def test_a_file_replayed_twice_keeps_one_copy_of_its_quarantine(tmp_path):
    path = tmp_path / "rec.jsonl"
    _write(path, [(3, 0), (9, 1), (12, 2), (20, 3), (30, 4), (33, 0)])  # "not json at all" twice
    first = _replay(tmp_path, path)
    once = _stored(tmp_path)
    assert first["rejected"] == 5 and first["fields_rejected"] == 1 and sum(once.values()) == 6
    assert "already_quarantined" not in first
    records = [json.loads(k) for k in once.elements()]
    assert {r["file"] for r in records} == {str(path.resolve())}
    second = _replay(tmp_path, path)
    assert _stored(tmp_path) == once
    # the run's figures are the file's; the summary says what was stored before
    assert second["rejected"] == 5 and second["fields_rejected"] == 1 and second["already_quarantined"] == 6
    assert second["duplicates"] == first["observations"]


def test_one_more_copy_of_a_bad_line_stores_one_more_record(tmp_path):
    path = tmp_path / "rec.jsonl"
    _write(path, [(3, 0)])
    _replay(tmp_path, path)
    _write(path, [(3, 0), (5, 0)])
    summary = _replay(tmp_path, path)
    assert summary["already_quarantined"] == 1
    assert sum(_stored(tmp_path).values()) == 2


def test_another_file_with_the_same_bad_lines_has_its_own_records(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):  # the same name in two folders: told apart by the path
        _write(tmp_path / folder / "rec.jsonl", [(3, 1)])
        _replay(tmp_path, tmp_path / folder / "rec.jsonl")
    files = sorted(json.loads(k)["file"] for k in _stored(tmp_path).elements())
    assert files == [str((tmp_path / "a" / "rec.jsonl").resolve()), str((tmp_path / "b" / "rec.jsonl").resolve())]


def test_the_ledger_admits_as_many_as_were_stored():
    stored = Counter({record_key({"code": "x", "raw": "r", "file": "/f"}): 2})
    ledger = QuarantineLedger("/f", stored)
    got = [ledger.admit({"code": "x", "raw": "r", "received_at": str(i)}) for i in range(4)]
    assert got == [False, False, True, True]
    assert len(record_key({"code": "x", "raw": "r" * 10_000})) == 16  # a digest: 300,000 keys stay small
    other = {"code": "x", "raw": "r"}
    assert QuarantineLedger("/g", Counter(stored)).admit(other) and other["file"] == "/g"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bad=st.lists(st.tuples(st.integers(0, 40), st.integers(0, len(BAD) - 1)), max_size=8),
       more=st.lists(st.tuples(st.integers(0, 40), st.integers(0, len(BAD) - 1)), max_size=3),
       runs=st.integers(2, 3))
def test_reruns_store_the_quarantine_of_the_largest_file_once(tmp_path_factory, bad, more, runs):
    """The rule: after replays of a file (the same, or grown by more bad lines), the store holds each
    of its quarantine records as many times as the file that held the most copies of it, never more."""
    tmp = tmp_path_factory.mktemp("rerun")
    path = tmp / "rec.jsonl"
    _write(path, bad)
    _replay(tmp, path)
    once = _stored(tmp)
    for _ in range(runs - 1):
        _replay(tmp, path)
    assert _stored(tmp) == once
    _write(path, bad + more)
    _replay(tmp, path)
    fresh = tmp / "fresh"
    fresh.mkdir()
    _replay(fresh, path)  # what the grown file stores in an empty store
    assert _stored(tmp) == once | _stored(fresh)


def test_the_same_file_by_another_path_or_a_link_is_the_same_file(tmp_path):
    path = tmp_path / "rec.jsonl"
    _write(path, [(3, 0), (9, 1)])
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.jsonl").symlink_to(path)
    for name in (path, tmp_path / "sub" / ".." / "rec.jsonl", tmp_path / "link.jsonl"):
        _replay(tmp_path, name)
    assert sum(_stored(tmp_path).values()) == 2
    assert {json.loads(k)["file"] for k in _stored(tmp_path)} == {str(path.resolve())}


def test_a_conflict_replayed_through_links_of_other_names_is_stored_once(tmp_path):
    """A conflict record's raw is the reading as decoded, its source named after the file: after the
    file itself, not the link (a helper found one more copy per link name)."""
    path = tmp_path / "rec.jsonl"
    _write(path, [(3, 0)])
    with path.open("a") as fh:  # the same reading again with another value: a conflict
        fh.write(GOOD.format(h=0, m=5, v=30) + "\n")
    for k in range(3):
        link = tmp_path / f"link{k}.jsonl"
        link.symlink_to(path)
        summary = _replay(tmp_path, link)
    stored = _stored(tmp_path)
    assert sum(stored.values()) == 2, stored
    assert {json.loads(k)["code"] for k in stored} == {"not_json", "conflict"}
    assert summary["already_quarantined"] == 2


def test_records_with_a_masked_secret_are_still_recognised(tmp_path):
    """The store masks configured secrets; the ledger compares what is on disk, so a bad line that
    echoes a secret, or a file whose path holds one, is stored once."""
    (tmp_path / "mass").mkdir()
    path = tmp_path / "mass" / "rec.jsonl"
    path.write_text('not json, token s3cr3t-mass\n{"ts": "2024-05-01T00:00:00Z", "station": "s1", "temp_c": 1}\n')
    redact_by_default(lambda text: text.replace("s3cr3t-mass", "****").replace("/mass/", "/****/"))
    try:
        for _ in range(3):
            summary = _replay(tmp_path, path)
    finally:
        redact_by_default(None)
    (record,) = [json.loads(k) for k in _stored(tmp_path).elements()]
    assert "****" in record["raw"] and "/****/" in record["file"]
    assert summary["already_quarantined"] == 1


def test_a_lead_in_and_a_paced_pass_quarantine_their_conflicts_once(tmp_path):
    """The UI replays a file's start flat out (`until`), then the rest paced (`since`): conflicts the
    second pass finds name the file and are not stored again by a rerun."""
    path = tmp_path / "rec.jsonl"
    lines = [GOOD.format(h=i // 60, m=i % 60, v=10) for i in range(40)]
    path.write_text("\n".join(lines) + "\n")
    _replay(tmp_path, path)
    changed = [GOOD.format(h=i // 60, m=i % 60, v=10 + (i % 3 == 0)) for i in range(40)]  # 14 conflicts
    path.write_text("\n".join(changed) + "\n")
    cut = 1714521600.0 + 20 * 60  # 2024-05-01T00:20Z
    for _ in range(2):
        _replay(tmp_path, path, until=cut)
        _replay(tmp_path, path, since=cut, speed=1e9)
    records = [json.loads(k) for k in _stored(tmp_path).elements()]
    assert len(records) == 14 and {r["code"] for r in records} == {"conflict"}
    assert {r["file"] for r in records} == {str(path.resolve())}
