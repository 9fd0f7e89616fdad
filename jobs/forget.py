"""spark-submit entry point: `spark-submit jobs/forget.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.forget import main

if __name__ == "__main__":
    sys.exit(main())
