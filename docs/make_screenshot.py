"""Regenerate docs/screenshot.svg (and .png when rsvg-convert is installed).

    python docs/make_screenshot.py

Replays the bundled Sandy buoy recording up to the end of the November
nor'easter, lowers z once, and saves what a 160x48 terminal shows.
"""

from __future__ import annotations

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


async def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.chdir(tempfile.mkdtemp())
    cfg = load_config(None, env={}, dotenv_file=None)
    app, cleanup = replay_app(cfg, DEMO, speed=None, station="ndbc-44005", show_rate=False,
                              fast_until=None)
    # Stop after the nor'easter of 7-8 Nov: replay only up to 9 Nov.
    from mass_tui import replay as replay_module

    original = replay_module.replay_file

    def until_nov9(*args, **kwargs):
        kwargs["until"] = parse_time("2012-11-09T12:00:00Z")
        return original(*args, **kwargs)

    replay_module.replay_file = until_nov9
    import mass_tui.ui.launch as launch

    launch.replay_file = until_nov9
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            while any(w.is_running for w in app.workers):
                await pilot.pause(0.1)
            await pilot.press("z")
            app.redraw_all()
            await pilot.pause(0.5)
            app.redraw_all()
            await pilot.pause(0.5)
            svg = ROOT / "docs" / "screenshot.svg"
            app.save_screenshot(str(svg))
    finally:
        cleanup()
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-w", "1600", str(svg), "-o", str(svg.with_suffix(".png"))], check=True)
    print(svg)


if __name__ == "__main__":
    asyncio.run(main())
