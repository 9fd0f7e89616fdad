"""spark-submit entry point: `spark-submit jobs/uplift.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.uplift import main

if __name__ == "__main__":
    sys.exit(main())
