import sys

from catsort.cli import main

sys.exit(main())
