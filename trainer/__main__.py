"""Entry point: ``python -m trainer reproduce --ct-ich PATH``."""
import sys

from trainer.commands import main

sys.exit(main())
