"""spark-submit entry point: `spark-submit jobs/score.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.score import main

if __name__ == "__main__":
    sys.exit(main())
