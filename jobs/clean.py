"""spark-submit entry point: `spark-submit jobs/clean.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.clean import main

if __name__ == "__main__":
    sys.exit(main())
