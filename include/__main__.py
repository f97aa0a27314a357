"""`python -m include ...`: the results library's command line (see include/apps/cli.py)."""
import sys

from include.apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
