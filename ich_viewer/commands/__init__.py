"""Sub-commands that orchestrate several layers (top of the layer stack: nothing imports them)."""
