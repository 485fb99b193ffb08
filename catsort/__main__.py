import sys

from catsort.entry import cli

sys.exit(cli())
