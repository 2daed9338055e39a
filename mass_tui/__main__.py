import sys

from mass_tui.cli import main

sys.exit(main())
