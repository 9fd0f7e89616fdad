"""spark-submit entry point: `spark-submit jobs/label.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.label import main

if __name__ == "__main__":
    sys.exit(main())
