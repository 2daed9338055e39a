"""The `?` help screen, generated from the app's bindings."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"space": "space", "slash": "/", "question_mark": "?", "escape": "Esc"}

EXPLAIN = (
    "[b]Reading the charts[/b]\n"
    "Each pane is one variable of the selected station: the title shows the current value, its z-score "
    "against the long baseline, the CUSUM statistic against h, and the anomaly score (0.5 = a detector at "
    "its threshold). Cyan: the values. Green: the one-step EWMA forecast. Grey: the baseline mean ± z σ "
    "band. Red x: anomalies.\n\n"
    "[b]Thresholds[/b]  Z/z and C/c apply at once to new data, and the status bar recounts what the "
    "current window would have flagged at the new z and h (\"what-if\")."
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90; max-width: 95%; height: auto; max-height: 90%;
                            border: thick $primary; background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.key_bindings = bindings

    def compose(self) -> ComposeResult:
        table = Table(title="Keys", expand=True, show_edge=False)
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("what it does")
        for b in self.key_bindings:
            table.add_row(KEY_NAMES.get(b.key, b.key), b.description or b.action)
        table.add_row("Enter", "in the anomaly list: show the charts at that moment")
        table.add_row("ctrl+p", "command palette: every action by name")
        with Vertical():
            yield Static(table)
            yield Static(EXPLAIN)
            yield Static("[dim]Esc, q or ? closes this screen[/dim]")
