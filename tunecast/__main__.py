"""``python -m tunecast ...``: the same as the ``tunecast`` command."""

import sys

from tunecast.search.cli import main

if __name__ == "__main__":
    sys.exit(main())
