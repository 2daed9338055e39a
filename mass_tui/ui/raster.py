"""A small character canvas for charts: braille (2×4 dots a cell), half blocks (1×2) or ASCII (1×1).

Why not plotext: building one 150-column chart with plotext took 80–110 ms
here (profiled: its `build_plot`), on the UI's thread, once a second per
visible pane. That alone breaks the aim of a key answered within 100 ms
while data streams in. This canvas fills a boolean grid per series with
numpy and encodes the cells in one vectorised step: about a millisecond.
It also gives what plotext could not: a style per cell, so anomaly marks
stay bold over a line in monochrome, and glyph sets for terminals without
braille (the Linux console).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.text import Text

# Sub-cell resolution and the dot weights of each glyph set (Unicode braille patterns: dots 1-8 are
# bits 0-7, numbered down the left column then the right, dots 7 and 8 at the bottom).
_BRAILLE_WEIGHTS = np.array([[1, 8], [2, 16], [4, 32], [64, 128]])
RESOLUTION = {"braille": (2, 4), "block": (1, 2), "ascii": (1, 1)}
_HALF = np.array([" ", "▀", "▄", "█"])
_BRAILLE = np.array([" "] + [chr(0x2800 + i) for i in range(1, 256)])


@dataclass
class _Layer:
    grid: np.ndarray  # (rows * sy, cols * sx) bool
    style: str
    char: str = ""  # ASCII glyph set: the character of this layer


@dataclass
class Canvas:
    """`cols` × `rows` cells over data coordinates x in [x0, x1], y in [y0, y1] (y1 at the top)."""

    cols: int
    rows: int
    x0: float
    x1: float
    y0: float
    y1: float
    glyphs: str = "braille"
    layers: list[_Layer] = field(default_factory=list)
    marks: dict[tuple[int, int], tuple[str, str]] = field(default_factory=dict)  # (row, col) -> (char, style)
    guides: dict[int, str] = field(default_factory=dict)  # col -> style of a vertical guide line

    @property
    def sub(self) -> tuple[int, int]:
        return RESOLUTION[self.glyphs]

    def _xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sx, sy = self.sub
        w, h = self.cols * sx - 1, self.rows * sy - 1
        xs = (x - self.x0) / max(self.x1 - self.x0, 1e-12) * w
        ys = (self.y1 - y) / max(self.y1 - self.y0, 1e-12) * h
        return xs, ys

    def _new(self) -> np.ndarray:
        sx, sy = self.sub
        return np.zeros((self.rows * sy, self.cols * sx), dtype=bool)

    def line(self, x: np.ndarray, y: np.ndarray, style: str, char: str = "*") -> None:
        """A connected line through the points (x ascending); NaNs dropped."""
        good = np.isfinite(x) & np.isfinite(y)
        x, y = x[good], y[good]
        grid = self._new()
        if x.size:
            xs, ys = self._xy(x, y)
            height, width = grid.shape
            first, last = max(0, int(np.ceil(xs[0] - 0.5))), min(width - 1, int(np.floor(xs[-1] + 0.5)))
            if x.size == 1 or last < first:
                c, r = int(round(xs[0])), int(round(ys[0]))
                if 0 <= c < width and 0 <= r < height:
                    grid[r, c] = True
            else:
                cols = np.arange(first, last + 1)
                # The line's height at both edges of every column joins neighbours without gaps;
                # the points inside a column add its spikes.
                left = np.interp(cols - 0.5, xs, ys)
                right = np.interp(cols + 0.5, xs, ys)
                lo, hi = np.minimum(left, right), np.maximum(left, right)
                which = np.clip(np.round(xs).astype(int), first, last) - first
                pmin = np.full(cols.size, np.inf)
                pmax = np.full(cols.size, -np.inf)
                np.minimum.at(pmin, which, ys)
                np.maximum.at(pmax, which, ys)
                lo, hi = np.fmin(lo, pmin), np.fmax(hi, pmax)
                r = np.arange(height)[:, None]
                band = (r >= np.floor(lo + 0.5)[None, :]) & (r <= np.floor(hi + 0.5)[None, :])
                grid[:, first : last + 1] = band
        self.layers.append(_Layer(grid, style, char))

    def points(self, x: np.ndarray, y: np.ndarray, style: str, char: str = ".") -> None:
        """Unconnected dots."""
        good = np.isfinite(x) & np.isfinite(y)
        grid = self._new()
        xs, ys = self._xy(x[good], y[good])
        c, r = np.round(xs).astype(int), np.round(ys).astype(int)
        inside = (c >= 0) & (c < grid.shape[1]) & (r >= 0) & (r < grid.shape[0])
        grid[r[inside], c[inside]] = True
        self.layers.append(_Layer(grid, style, char))

    def mark(self, x: np.ndarray, y: np.ndarray, char: str, style: str) -> None:
        """A character in the cell of each point, over everything else."""
        good = np.isfinite(x) & np.isfinite(y)
        xs, ys = self._xy(x[good], y[good])
        sx, sy = self.sub
        for cx, cy in zip((np.round(xs) // sx).astype(int).tolist(), (np.round(ys) // sy).astype(int).tolist(),
                          strict=True):
            if 0 <= cx < self.cols and 0 <= cy < self.rows:
                self.marks[(cy, cx)] = (char, style)

    def guide(self, x: float, style: str) -> None:
        """A vertical line at x, under the data."""
        xs, _ = self._xy(np.array([x]), np.array([self.y0]))
        col = int(round(xs[0])) // self.sub[0]
        if 0 <= col < self.cols:
            self.guides[col] = style

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(characters, layer index + 1 or 0) per cell."""
        sx, sy = self.sub
        chars = np.full((self.rows, self.cols), " ", dtype="<U1")
        owner = np.zeros((self.rows, self.cols), dtype=int)
        union = np.zeros((self.rows * sy, self.cols * sx), dtype=bool)
        for i, layer in enumerate(self.layers, start=1):
            cell_any = layer.grid.reshape(self.rows, sy, self.cols, sx).any(axis=(1, 3))
            owner[cell_any] = i  # the last layer drawn in a cell gives it its style
            union |= layer.grid
            if self.glyphs == "ascii":
                chars[cell_any] = layer.char
        if self.glyphs == "braille":
            codes = (union.reshape(self.rows, 4, self.cols, 2) * _BRAILLE_WEIGHTS[None, :, None, :]).sum(axis=(1, 3))
            chars = _BRAILLE[codes]
        elif self.glyphs == "block":
            halves = union.reshape(self.rows, 2, self.cols, 1)[:, :, :, 0]
            chars = _HALF[halves[:, 0, :].astype(int) + 2 * halves[:, 1, :].astype(int)]
        return chars, owner

    def render(self) -> list[Text]:
        chars, owner = self.cells()
        styles = [""] + [layer.style for layer in self.layers]
        guide_char = "│" if self.glyphs != "ascii" else "|"
        out = []
        for r in range(self.rows):
            row_chars = chars[r].tolist()
            row_styles = [styles[o] for o in owner[r].tolist()]
            for col, style in self.guides.items():
                if row_chars[col] == " ":
                    row_chars[col], row_styles[col] = guide_char, style
            for (mr, mc), (ch, style) in self.marks.items():
                if mr == r:
                    row_chars[mc], row_styles[mc] = ch, style
            out.append(_runs(row_chars, row_styles))
        return out


def _runs(chars: list[str], styles: list[str]) -> Text:
    """A Text with one span per run of equal style (few spans: few bytes to the terminal)."""
    text = Text(no_wrap=True)
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] != styles[start]:
            text.append("".join(chars[start:i]), styles[start] or None)
            start = i
    return text
