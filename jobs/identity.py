"""spark-submit entry point: `spark-submit jobs/identity.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.identity import main

if __name__ == "__main__":
    sys.exit(main())
