"""Qt-free synthetic head CT: anatomy, hemorrhage, labels, DICOM writer.

Everything generated here says SYNTHETIC PHANTOM and never counts as evidence of accuracy.
"""
from ich_viewer.phantom.generate import generate_phantom
from ich_viewer.phantom.volume import SUBTYPES, Phantom

__all__ = ["generate_phantom", "Phantom", "SUBTYPES"]
