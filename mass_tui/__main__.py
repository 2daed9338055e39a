import sys

from mass_tui.entry import main

sys.exit(main())
