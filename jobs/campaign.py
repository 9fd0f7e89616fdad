"""spark-submit entry point: `spark-submit jobs/campaign.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.campaign import main

if __name__ == "__main__":
    sys.exit(main())
