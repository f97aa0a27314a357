"""`python -m mlperf_sut ...`: the container's entry point."""
import sys

from mlperf_sut.cli import main

if __name__ == "__main__":
    sys.exit(main())
