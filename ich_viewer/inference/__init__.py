"""Classifier: network, preprocessing, weights, device, predict(), the window's session model (all Qt-free)."""
import os

# OpenMP threads that spin while waiting make torch ~10x slower whenever the cores are
# shared (the UI thread, the slice decoder, other programs): measured 117 vs 14 ms per
# slice on 2 busy cores. Passive waiting costs little when the machine is idle. Must be
# set before torch is first imported; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
