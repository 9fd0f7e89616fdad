"""spark-submit entry point: `spark-submit jobs/generate.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.generate import main

if __name__ == "__main__":
    sys.exit(main())
