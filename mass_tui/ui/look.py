"""What the terminal can show, read once from the environment: colour, glyphs, theme.

- `NO_COLOR` (https://no-color.org/, any value): no colour at all; marks
  and severities stay apart by their characters and by bold and reverse.
- `TERM=linux` (the Linux console, whose font has no braille): charts of
  block characters and plain borders; `TERM=vt100`/`vt220`/`ansi`/`dumb`:
  ASCII only. `MASS_GLYPHS=braille|block|ascii` overrides what TERM says.
- Colours: `COLORTERM=truecolor|24bit` or a TERM ending in `256color`, else
  16, where the ANSI themes keep the terminal's own palette (no two
  greys downsampled into mismatched backgrounds).
- Theme: `ui.theme` (`MASS_UI_THEME`): auto, dark, light.

We never change TERM or COLORTERM ourselves: they are the user's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GLYPHS = ("braille", "block", "ascii")


@dataclass(frozen=True)
class Look:
    color: bool = True
    colors: int = 256  # 16, 256 or 16_777_216
    glyphs: str = "braille"
    dark: bool = True

    @property
    def theme(self) -> str:
        """The Textual theme: ANSI ones on 16 colours, the default dark or light elsewhere."""
        if self.colors <= 16:
            return "ansi-dark" if self.dark else "ansi-light"
        return "textual-dark" if self.dark else "textual-light"

    # --- characters --------------------------------------------------------
    @property
    def line_marker(self) -> str:
        return {"braille": "braille", "block": "•", "ascii": "*"}[self.glyphs]

    @property
    def band_marker(self) -> str:
        return {"braille": "braille", "block": "·", "ascii": "."}[self.glyphs]

    @property
    def forecast_marker(self) -> str:
        return {"braille": "braille", "block": "·", "ascii": "+"}[self.glyphs]

    @property
    def anomaly_marker(self) -> str:
        return "✖" if self.glyphs == "braille" else "X"

    @property
    def spark_levels(self) -> str:
        return "▁▂▃▄▅▆▇█" if self.glyphs != "ascii" else "_.-~=+*#"

    @property
    def border(self) -> str:
        """The CSS border type: rounded corners need a font the Linux console lacks."""
        return {"braille": "round", "block": "solid", "ascii": "ascii"}[self.glyphs]

    @property
    def warn_sign(self) -> str:
        return "⚠" if self.glyphs == "braille" else "!"

    # --- styles --------------------------------------------------------------
    def severity_style(self, severity: str) -> str:
        """The style of a severity word: colour where there is colour, else bold and reverse."""
        if not self.color:
            return {"critical": "bold reverse", "warning": "bold", "info": ""}.get(severity, "")
        if self.dark:
            return {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}.get(severity, "")
        return {"critical": "bold red", "warning": "bold dark_orange3", "info": "blue"}.get(severity, "")

    def series_color(self, name: str) -> str:
        """The colour of a chart series ("default" keeps the terminal's own foreground)."""
        if not self.color:
            return {"value": "default", "forecast": "default", "band": "default", "mark": "default"}[name]
        if self.dark:
            return {"value": "cyan", "forecast": "green", "band": "gray", "mark": "red"}[name]
        return {"value": "blue", "forecast": "green", "band": "gray", "mark": "red"}[name]


# Where the glyph set is ascii: one ASCII character for each drawn one (same width, so a line's styles
# stay on their characters), and the words for the symbols a character cannot stand for.
ASCII_CHARS = str.maketrans({
    "≈": "~", "│": "|", "─": "-", "…": "~", "±": "+", "σ": "s", "·": ".", "◀": "<", "▶": ">", "✓": "v",
    "●": "*", "⚠": "!", "✖": "X", "◆": "O", "—": "-", "↓": "v", "×": "x", "⏸": "=", "┤": "+", "└": "+",
    "┬": "+", "▁": "_", "█": "#",
})
ASCII_WORDS = (("±", "+/-"), ("σ", "sd"), ("…", "..."), ("—", "-"), ("×", "x"))


def ascii_words(text: str) -> str:
    """Free text (help, reasons) for an ASCII terminal: "mean ± 3σ" becomes "mean +/- 3sd"."""
    for glyph, words in ASCII_WORDS:
        text = text.replace(glyph, words)
    return text.translate(ASCII_CHARS)


def detect(env: Mapping[str, str], theme: str = "auto") -> Look:
    """The `Look` for a terminal described by `env` (os.environ) and the `ui.theme` setting."""
    term = env.get("TERM", "").lower()
    glyphs = env.get("MASS_GLYPHS", "").lower()
    if glyphs not in GLYPHS:
        if term == "linux":
            glyphs = "block"
        elif term in ("dumb", "ansi", "vt52") or term.startswith(("vt1", "vt2")):
            glyphs = "ascii"
        else:
            glyphs = "braille"
    colorterm = env.get("COLORTERM", "").lower()
    if colorterm in ("truecolor", "24bit"):
        colors = 16_777_216
    elif "256" in term:
        colors = 256
    else:
        colors = 16
    color = "NO_COLOR" not in env and term != "dumb"
    return Look(color=color, colors=colors, glyphs=glyphs, dark=theme != "light")
