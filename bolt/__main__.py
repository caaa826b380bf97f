"""`python -m bolt`: the `bolt` command (bolt/cli.py), where its script is not on PATH."""
import sys

from bolt.cli import main

sys.exit(main())
