"""The command word of a `mass` command line, found before argparse runs (this module imports nothing:
`mass_tui.entry` reads it before anything else is loaded)."""

from __future__ import annotations

from collections.abc import Sequence

# The options `mass` takes before its command too (cli._add_common) that take a value: the word after
# one of them is its value, not the command. tests/test_cli.py holds this to the parser's own list.
VALUE_OPTIONS = ("--config", "--data-dir", "--z", "--window", "--cusum-h")


def command(argv: Sequence[str]) -> str | None:
    """The command of `mass` argv (`replay` in `--config m.toml replay f.jsonl`), None when there is
    none. An option's value is skipped whether given apart (`--config m.toml`), joined
    (`--config=m.toml`) or after an abbreviation argparse accepts (`--conf m.toml`)."""
    words = iter(argv)
    for arg in words:
        if arg == "--":
            return None  # argparse takes no command after it ("invalid choice: '--'")
        if not arg.startswith("-") or arg == "-":
            return arg
        if "=" not in arg and _takes_value(arg):
            next(words, None)
    return None


def given(argv: Sequence[str], option: str, shortest: int = 5) -> bool:
    """Whether argv has the long `option`, whole or as an abbreviation argparse takes of at least
    `shortest` characters (`--spe 60`, `--hea`: shorter ones may be ambiguous), its value joined
    (`--speed=60`) or not."""
    return any(abbreviates(a.split("=", 1)[0], option, shortest) for a in argv)


def abbreviates(arg: str, option: str, shortest: int = 3) -> bool:
    """Whether `arg` is the long `option` or a prefix of it argparse may take (from `shortest` characters)."""
    return arg.startswith("--") and len(arg) >= shortest and option.startswith(arg)


def _takes_value(option: str) -> bool:
    return any(abbreviates(option, o) for o in VALUE_OPTIONS)
