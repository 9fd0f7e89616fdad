"""spark-submit entry point: `spark-submit jobs/forecast.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.forecast import main

if __name__ == "__main__":
    sys.exit(main())
