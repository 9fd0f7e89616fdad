"""spark-submit entry point: `spark-submit jobs/campaigns.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.campaigns import main

if __name__ == "__main__":
    sys.exit(main())
