import sys

from wcviz.cli import main

sys.exit(main())
