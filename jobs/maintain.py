"""spark-submit entry point: `spark-submit jobs/maintain.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.maintain import main

if __name__ == "__main__":
    sys.exit(main())
