"""``python -m search``: the same as ``tunecast search``."""

import sys

from search.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        argv = ["search", *argv]
    sys.exit(main(argv))
