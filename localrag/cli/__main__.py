"""``python -m localrag.cli`` (what scripts/setup.sh runs before the entry point is on PATH)."""

import sys

from localrag.cli import main

sys.exit(main())
