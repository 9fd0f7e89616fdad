"""spark-submit entry point: `spark-submit jobs/models.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.models import main

if __name__ == "__main__":
    sys.exit(main())
