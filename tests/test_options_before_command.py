"""The options every command takes work before the command too (`mass --config m.toml replay FILE`),
and what reads the command word before argparse (the huge-page restart, the signal handlers) finds it."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mass_tui.argv import VALUE_OPTIONS, command
from mass_tui.cli import COMMON, _add_common, _headless, _with_options_before, build_parser

from .conftest import ROOT
from .test_cli import mass


def test_the_options_whose_value_is_skipped_are_the_parsers_own():
    """argv.VALUE_OPTIONS (read before argparse) is the list of common options that take a value."""
    p = argparse.ArgumentParser()
    _add_common(p)
    taking = {o for a in p._actions if a.nargs != 0 and a.dest in COMMON for o in a.option_strings}
    assert taking == set(VALUE_OPTIONS)


def test_replay_with_config_and_data_dir_before_the_command(tmp_path):
    rec = tmp_path / "rec.jsonl"
    rec.write_text("".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": i % 7}) + "\n"
                           for i in range(50)))
    toml = tmp_path / "m.toml"
    toml.write_text(f'[data]\ndir = "{tmp_path / "from-config"}"\n')
    proc = mass("--config", str(toml), "replay", str(rec), "--headless", "--max", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["db"] == str(tmp_path / "from-config" / "db")
    proc = mass("--config", str(toml), "--data-dir", str(tmp_path / "flag"), "replay", str(rec), "--headless",
                "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["db"] == str(tmp_path / "flag" / "db")
    proc = mass("--config", str(toml), "config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config_file"] == str(toml)


def test_a_signal_stops_a_replay_with_options_before_the_command_cleanly(tmp_path):
    """`_headless` sees the command after `--data-dir D`: the handlers are ours from the start."""
    rec = tmp_path / "rec.jsonl"
    rec.write_text("\n".join(json.dumps({"ts": 1_700_000_000 + 60 * i, "station": "s", "temp_c": 10 + i % 5})
                             for i in range(5000)))
    proc = subprocess.Popen([sys.executable, "-m", "mass_tui", "--data-dir", str(tmp_path / "data"), "replay",
                             str(rec), "--headless", "--speed", "6000", "-q"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    stream = tmp_path / "data" / "db" / "consumer_stream.jsonl"
    deadline = time.monotonic() + 30
    while (not stream.exists() or stream.stat().st_size < 2000) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert json.loads(out.strip().splitlines()[-1])["interrupted"] is True


_COMMANDS = ("replay", "run", "config", "query", "produce")
_VALUES = {"config": st.sampled_from(["m.toml", "replay", "run", "-"]).map(Path),
           "data_dir": st.sampled_from(["d", "replay", "config", "x y"]),
           "z": st.floats(0.5, 9, allow_nan=False).map(lambda v: round(v, 3)),
           "window": st.integers(2, 10_000), "cusum_h": st.floats(0.5, 20, allow_nan=False).map(lambda v: round(v, 3))}


def _command_line(name: str) -> list[str]:
    return {"replay": ["replay", "f.jsonl", "--headless"], "run": ["run", "--headless"], "config": ["config"],
            "query": ["query", "SELECT 1"], "produce": ["produce"]}[name]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_COMMANDS),
       st.lists(st.sampled_from(COMMON), unique=True).flatmap(
           lambda names: st.tuples(*(st.tuples(st.just(n), _VALUES[n], st.booleans()) for n in names))))
def test_property_options_before_the_command_are_taken_and_the_command_found(name, given_before):
    """Any common options before any command, their values written apart or joined with `=`: argparse
    takes each as if given after the command, and `argv.command` (the restart, `_headless`) finds the
    command argparse found, even where a value is itself a command's name."""
    argv: list[str] = []
    for dest, value, joined in given_before:
        option = "--" + dest.replace("_", "-")
        argv += [f"{option}={value}"] if joined else [option, str(value)]
    argv += _command_line(name)
    args = _with_options_before(build_parser().parse_args(argv))
    assert args.command == command(argv) == name
    for dest, value, _ in given_before:
        assert getattr(args, dest) == value
    assert not any(k.startswith("before_") for k in vars(args))
    assert _headless(argv) == (name in ("replay", "run", "produce"))


@pytest.mark.parametrize("argv", [["--data-dir", "a", "config", "--data-dir", "b"],
                                  ["--data-dir=a", "config", "--data-dir=b"]])
def test_an_option_after_the_command_wins_over_the_same_before_it(argv):
    assert _with_options_before(build_parser().parse_args(argv)).data_dir == "b"
