import sys

from ich_viewer.cli import main

sys.exit(main())
