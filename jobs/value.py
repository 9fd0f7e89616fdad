"""spark-submit entry point: `spark-submit jobs/value.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.value import main

if __name__ == "__main__":
    sys.exit(main())
