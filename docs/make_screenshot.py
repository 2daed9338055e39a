"""Regenerate docs/screenshot.svg and docs/screenshot.png.

    python docs/make_screenshot.py [--until 2012-10-29T23:00:00Z] [--size 160x48]

Replays the bundled Sandy buoy recording up to the evening Sandy passed
(the gust episode still going on, so the "now" strip has something to
say), and saves what a 160x48 terminal shows. The PNG is rendered from
the SVG with rsvg-convert (Debian: librsvg2-bin), or CairoSVG (`pip install
cairosvg`, whose fonts lack braille) when that is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mass_tui.config import load_config  # noqa: E402
from mass_tui.ui.launch import replay_app  # noqa: E402
from sources.schema import parse_time  # noqa: E402

DEMO = ROOT / "mass_tui" / "demo" / "ndbc44005_gulf_of_maine_2012-10_sandy.csv"


async def shoot(until: float, size: tuple[int, int], svg: Path) -> None:
    cfg = load_config(None, env={}, dotenv_file=None)
    app, cleanup = replay_app(cfg, DEMO, speed=None, station="ndbc-44005", until=until, show_rate=False)
    try:
        async with app.run_test(size=size) as pilot:
            while any(w.is_running for w in app.workers):
                await pilot.pause(0.1)
            app.pace = "1200× replay"  # as `make demo` plays it
            app.engine_done = False
            await pilot.pause(0.5)
            app.redraw_all()
            await pilot.pause(0.5)
            app.redraw_all()
            await pilot.pause(0.5)
            app.save_screenshot(str(svg))
    finally:
        cleanup()


def to_png(svg: Path) -> Path | None:
    """The PNG of the SVG, drawn with a monospaced font that is installed (the SVG asks for Fira Code,
    loaded from the web, which a renderer offline falls back from to a proportional font)."""
    png = svg.with_suffix(".png")
    local = Path(tempfile.mkdtemp()) / svg.name
    text = svg.read_text().replace("Fira Code", "DejaVu Sans Mono")
    # Spaces between styled spans are content: without this, librsvg collapses them away.
    text = text.replace("<svg ", '<svg xml:space="preserve" ', 1)
    local.write_text(text)
    if shutil.which("rsvg-convert"):  # Pango falls back glyph by glyph (braille from DejaVu Sans)
        subprocess.run(["rsvg-convert", "-w", "1600", str(local), "-o", str(png)], check=True)
        return png
    try:
        import cairosvg

        cairosvg.svg2png(url=str(local), write_to=str(png), output_width=1600)
        return png
    except ImportError:
        pass
    print("no SVG renderer: pip install cairosvg (or install rsvg-convert) for the PNG", file=sys.stderr)
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--until", default="2012-10-29T23:00:00Z", help="replay up to this data time")
    ap.add_argument("--size", default="160x48", help="terminal size, COLSxROWS")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.svg")
    args = ap.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    os.environ["TZ"] = "UTC"
    os.environ.setdefault("TERM", "xterm-256color")
    os.environ.pop("NO_COLOR", None)
    time.tzset()
    os.chdir(tempfile.mkdtemp())
    asyncio.run(shoot(parse_time(args.until), (cols, rows), args.out))
    print(args.out, to_png(args.out) or "")


if __name__ == "__main__":
    main()
