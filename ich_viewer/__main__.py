import sys

from ich_viewer.cli import main

if __name__ == "__main__":  # worker processes (fork server) import this module again
    sys.exit(main())
