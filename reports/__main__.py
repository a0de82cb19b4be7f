"""``python -m reports EXP_DIR [-o FILE]``."""

import sys

from reports.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m reports"))
