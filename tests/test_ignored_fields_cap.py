"""The summary's `ignored_fields` lists the most frequent unknown field names, not every one: a writer that
invents a key per message does not make the summary line as long as the recording."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.engine import IGNORED_LISTED, ignored_summary
from sources.decode import IgnoredCounts

from .test_cli import mass


def _replay_a_key_per_line(tmp_path, n: int) -> str:
    """The summary line of a replay of n lines, each with a field "firmware" and a name of its own."""
    lines = [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "a", "temp_c": 1.0, "firmware": "v2",
                         f"uuid_{i:06d}": 1}) for i in range(n)]
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = mass("replay", str(path), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_a_key_per_line_is_summarised_not_listed(tmp_path):
    n = 3000
    line = _replay_a_key_per_line(tmp_path, n)
    summary = json.loads(line)
    listed, other = summary["ignored_fields"], summary["ignored_fields_other"]
    assert summary["observations"] == n
    assert len(listed) == IGNORED_LISTED and listed["firmware"] == n
    assert other == {"names": n + 1 - IGNORED_LISTED, "fields": 2 * n - sum(listed.values())}
    assert len(line) < 4000  # 3,000 names listed would be over 60 KB


def test_a_few_keys_are_all_listed_as_before(tmp_path):
    lines = [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "a", "temp_c": 1.0, "note": "x"}) for i in range(5)]
    path = tmp_path / "few.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = mass("replay", str(path), "--headless", "--max", "-q", "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ignored_fields"] == {"note": 5} and "ignored_fields_other" not in summary


@settings(max_examples=50, deadline=None)
@given(counts=st.dictionaries(st.text(max_size=6), st.integers(1, 10**9), max_size=200),
       limit=st.integers(1, 40))
def test_property_the_listed_names_are_the_most_frequent_and_the_counts_add_up(counts, limit):
    listed, other = ignored_summary(counts, limit)
    assert len(listed) == min(limit, len(counts))
    assert all(counts[k] == v for k, v in listed.items())
    assert list(listed) == sorted(listed)
    left_out = {k: v for k, v in counts.items() if k not in listed}
    if left_out:
        assert max(left_out.values()) <= min(listed.values())
        assert other == {"names": len(left_out), "fields": sum(left_out.values())}
    else:
        assert other == {}
    assert sum(listed.values()) + other.get("fields", 0) == sum(counts.values())


def test_names_past_the_counters_limit_are_counted_without_being_kept(tmp_path):
    """The summary was capped; the counter behind it was not: a service fed a key per message kept every
    name for as long as it ran. Past 4,096 names a new name's fields are counted, the name not kept."""
    n = 5000
    summary = json.loads(_replay_a_key_per_line(tmp_path, n))
    listed, other = summary["ignored_fields"], summary["ignored_fields_other"]
    kept = IgnoredCounts().limit
    assert listed["firmware"] == n and other["names"] == kept - IGNORED_LISTED
    assert other["untracked_fields"] == n + 1 - kept  # one field per name met past the limit
    assert sum(listed.values()) + other["fields"] + other["untracked_fields"] == 2 * n


@settings(max_examples=100, deadline=None)
@given(adds=st.lists(st.tuples(st.sampled_from("abcdefghij"), st.integers(1, 1000)), max_size=60),
       limit=st.integers(1, 12))
def test_property_the_counter_keeps_the_first_names_exactly_and_counts_every_field(adds, limit):
    counts = IgnoredCounts(limit)
    for key, n in adds:
        counts.add(key, n)
    first = list(dict.fromkeys(key for key, _ in adds))[:limit]
    assert list(counts) == first
    assert all(counts[k] == sum(n for key, n in adds if key == k) for k in first)
    assert sum(counts.values()) + counts.untracked == sum(n for _, n in adds)
