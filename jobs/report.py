"""spark-submit entry point: `spark-submit jobs/report.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.report import main

if __name__ == "__main__":
    sys.exit(main())
