"""spark-submit entry point: `spark-submit jobs/ingest.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.ingest import main

if __name__ == "__main__":
    sys.exit(main())
