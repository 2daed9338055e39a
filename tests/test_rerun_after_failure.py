"""A run the disk refused, then a rerun with room: the stream, anomalies and aggregates of one clean run.

A batch's stream lines and its anomalies reach the disk together or not at all, and nothing appended
after a refused write (to any file) gets ahead of it: a rerun, which skips the rows the stream holds,
then stores each anomaly once. The disk is real: a small tmpfs mounted over the store (root only, as
in test_torn_and_full), its size raised for the rerun.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mass_tui.sinks.background_writes import BackgroundWrites
from mass_tui.store import ANOMALIES, STREAM, JsonlStore, StoreWriteError

from .test_offload import _files, _recording, _replay
from .test_torn_and_full import _fill, _tmpfs


def _grow(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True, capture_output=True)


def test_a_group_the_disk_refuses_in_part_is_cut_back_whole_and_written_whole_later(tmp_path):
    """The second part is refused: the first is cut back out of its file, the group is held, and an
    append to another file waits behind it; with room, all of it is written, in order."""
    with _tmpfs(tmp_path / "db", "1m") as db:
        store = JsonlStore(db)
        store.append_data(STREAM, b'{"i":0}\n')
        store.sync()
        filler = _fill(db, 64 * 1024)
        small, big = b'{"i":1}\n', b"a" * (256 * 1024) + b"\n"
        store.append_group([(STREAM, small), (ANOMALIES, big)])
        store.append_data("aggregates.jsonl", b'{"w":1}\n')
        with pytest.raises(StoreWriteError, match="No space left on device"):
            store.sync()
        assert (db / STREAM).read_bytes() == b'{"i":0}\n'
        assert not (db / ANOMALIES).exists() or (db / ANOMALIES).read_bytes() == b""
        assert not (db / "aggregates.jsonl").exists() or (db / "aggregates.jsonl").read_bytes() == b""
        filler.unlink()
        store.sync()
        store.close()
        assert (db / STREAM).read_bytes() == b'{"i":0}\n' + small
        assert (db / ANOMALIES).read_bytes() == big
        assert (db / "aggregates.jsonl").read_bytes() == b'{"w":1}\n'


_NAMES = (STREAM, ANOMALIES, "aggregates.jsonl")
_groups = st.lists(st.lists(st.tuples(st.sampled_from(_NAMES), st.integers(1, 96 * 1024)), min_size=1, max_size=3),
                   min_size=1, max_size=12)


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    with _tmpfs(tmp_path_factory.mktemp("disk") / "db", "1m") as where:
        yield where


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(groups=_groups, free=st.integers(0, 900 * 1024), background=st.booleans())
def test_property_the_files_on_a_full_disk_hold_whole_groups_in_order(disk, groups, free, background):
    """Whatever groups are appended and wherever the disk fills up, every file holds the parts of the
    same first k groups (no file ahead of another); once there is room, all of them."""
    for p in disk.iterdir():
        p.unlink()
    filler = _fill(disk, free)
    store = BackgroundWrites(JsonlStore(disk)) if background else JsonlStore(disk)
    made = [[(name, bytes([65 + g % 26]) * (size - 1) + b"\n") for name, size in group]
            for g, group in enumerate(groups)]
    try:
        try:
            for group in made:
                store.append_group(group)
            store.sync()
        except StoreWriteError:
            pass
        on_disk = {name: (disk / name).read_bytes() if (disk / name).exists() else b"" for name in _NAMES}
        prefixes = [{name: b"".join(d for g in made[:k] for n, d in g if n == name) for name in _NAMES}
                    for k in range(len(made) + 1)]
        assert on_disk in prefixes
        filler.unlink()
        store.sync()
        store.close()
        assert {name: (disk / name).read_bytes() if (disk / name).exists() else b"" for name in _NAMES} \
            == prefixes[-1]
    finally:
        filler.unlink(missing_ok=True)
        store.close()


@pytest.mark.parametrize("sinks", ["inline", "process"])
def test_a_rerun_after_a_full_disk_stores_what_one_clean_run_does(tmp_path, sinks):
    """Before: the anomalies were written while the stream was refused, and the rerun stored them again."""
    recording = _recording(tmp_path / "rec.jsonl", 6000)
    clean = _replay(tmp_path, recording, "clean", sinks)
    assert clean.returncode == 0, clean.stderr
    db = tmp_path / "full" / "db"
    with _tmpfs(db, "2m"):
        filler = _fill(db, 150_000)
        failed = _replay(tmp_path, recording, "full", sinks)
        assert failed.returncode == 1, failed.stderr
        assert "No space left on device" in failed.stderr
        filler.unlink()
        _grow(db, "64m")
        again = _replay(tmp_path, recording, "full", sinks)
        assert again.returncode == 0, again.stderr
        rerun = _files(db)
    expected = _files(tmp_path / "clean" / "db")
    for name in (STREAM, ANOMALIES, "aggregates.jsonl"):
        assert rerun[name] == expected[name], name
    assert expected[ANOMALIES].count(b"\n") > 0
