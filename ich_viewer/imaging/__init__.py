"""Qt-free window presets and the DICOM VOI LINEAR mapping."""
