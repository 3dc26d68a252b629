"""``python -m jno.app``: the ``jno`` command without its installed entry point."""

import sys

from jno.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
