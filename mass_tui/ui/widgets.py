"""The widgets: one pane per variable (title, sparkline, chart) and the status bar."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from mass_tui.live_state import SeriesSnapshot
from mass_tui.ui.charts import reduce_minmax, sparkline, to_units
from sources.variables import REGISTRY


def local_hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%d %H:%M")


class VariablePane(Vertical):
    """Current value in the title, a sparkline of the recent values, a chart of the window."""

    DEFAULT_CSS = """
    VariablePane { height: auto; border: round $primary-darken-2; padding: 0 1; }
    VariablePane .title { height: 1; }
    VariablePane .spark { height: 1; color: $primary; }
    VariablePane PlotextPlot { height: 9; }
    VariablePane.compact PlotextPlot { display: none; }
    """

    def __init__(self, variable: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.variable = variable
        self.last_chart_version = -1
        # Held from the start: a timer may draw a pane whose children are not mounted yet
        # (the panes are rebuilt when the station changes), and a query would find nothing.
        self._title = Static("", classes="title")
        self._spark = Static("", classes="spark")
        self._plot = PlotextPlot()

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._spark
        yield self._plot

    @property
    def ready(self) -> bool:
        return self._plot.is_mounted

    def update_fast(self, series: SeriesSnapshot, z: float, h: float, imperial: bool) -> None:
        rows = series.rows
        var = REGISTRY.get(self.variable)
        label, unit = (var.label, var.unit) if var else (self.variable, "")
        if rows.shape[0] == 0 or not self.ready:
            return
        value, shown_unit = to_units(float(series.column("value")[-1]), unit, imperial)
        level_z = float(series.column("level_z")[-1])
        cusum = float(series.column("cusum")[-1])
        score = float(series.column("score")[-1])
        style = "bold red" if score >= 0.8 else "bold yellow" if score >= 0.5 else "bold"
        # Dim bars between the parts: Rich's SVG export drops the spaces that follow a styled span.
        bar = (" │ ", "dim")
        title = Text.assemble(
            (f"{label} ", "bold"), (f"{value:.4g} {shown_unit}".strip(), style),
            bar, f"z {level_z:+.2f}", bar, f"CUSUM {cusum:.1f}/{h:g}", bar, f"score {score:.2f}",
            bar, f"anomalies {series.anomalies}",
            no_wrap=True, overflow="ellipsis",
        )
        self._title.update(title)
        width = max(10, self.size.width - 4)
        values = series.column("value")[-4 * width:]
        self._spark.update(sparkline(values, width))

    def update_chart(self, series: SeriesSnapshot, z: float, imperial: bool, focus_ts: float | None) -> None:
        if not self.ready:
            return
        plot = self._plot
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        rows = series.rows
        if rows.shape[0] < 2:
            plot.refresh()
            return
        t = series.column("ts")
        if focus_ts is not None:
            # Jump to a moment: the window of the same length centred on it.
            span = max(t[-1] - t[0], 1.0) / 4
            inside = (t >= focus_ts - span) & (t <= focus_ts + span)
            if inside.sum() >= 2:
                rows = rows[inside]
                t = t[inside]
        var = REGISTRY.get(self.variable)
        unit = var.unit if var else ""
        columns = max(20, self.size.width - 10)
        value, shown_unit = to_units(rows[:, 1], unit, imperial)
        forecast, _ = to_units(rows[:, 2], unit, imperial)
        mean, _ = to_units(rows[:, 8], unit, imperial)
        sigma = rows[:, 9] * (1.8 if imperial and unit == "°C" else 1.0)
        ok = np.isfinite(mean) & np.isfinite(sigma)
        if ok.sum() >= 2:
            for band in (mean + z * sigma, mean - z * sigma):
                tb, bb = reduce_minmax(t[ok], band[ok], columns // 2)
                plt.plot(tb.tolist(), bb.tolist(), color="gray", marker="dot")
        tf, ff = reduce_minmax(t, forecast, columns)
        if np.isfinite(ff).any():
            plt.plot(tf.tolist(), ff.tolist(), color="green", marker="braille", label="EWMA forecast")
        tx, vx = reduce_minmax(t, value, columns)
        plt.plot(tx.tolist(), vx.tolist(), color="cyan", marker="braille", label=shown_unit or self.variable)
        flagged = (rows[:, 3] >= 0.5) | (rows[:, 10] >= 1.0)  # the ensemble or a rule fired
        if flagged.any():
            plt.scatter(t[flagged].tolist(), value[flagged].tolist(), color="red", marker="x", label="anomaly")
        ticks = np.linspace(t[0], t[-1], 4)
        plt.xticks(ticks.tolist(), [local_hhmm(x) for x in ticks])
        if focus_ts is not None:
            plt.vline(focus_ts, "yellow")
        plot.refresh()


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def show(self, parts: list[tuple[str, str]]) -> None:
        text = Text()
        for i, (piece, style) in enumerate(parts):
            if i:
                text.append(" │ ", "dim")
            text.append(piece, style)
        self.update(text)
