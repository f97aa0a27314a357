"""`python -m include ...`: the results library's command line (see include/cli.py)."""
import sys

from include.cli import main

if __name__ == "__main__":
    sys.exit(main())
