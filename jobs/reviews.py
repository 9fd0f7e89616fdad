"""spark-submit entry point: `spark-submit jobs/reviews.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.reviews import main

if __name__ == "__main__":
    sys.exit(main())
