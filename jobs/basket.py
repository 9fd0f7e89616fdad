"""spark-submit entry point: `spark-submit jobs/basket.py --env cluster ...` (see README)."""
import sys

from memberlake.jobs.basket import main

if __name__ == "__main__":
    sys.exit(main())
