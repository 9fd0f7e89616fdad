"""spark-submit entry point: `spark-submit jobs/sessions.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.sessions import main

if __name__ == "__main__":
    sys.exit(main())
