"""spark-submit entry point for the whole pipeline: `spark-submit jobs/pipeline.py --env cluster ...`."""
import sys

from memberlake.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
