"""Qt-free report data and writers: PDF, CSV, JSON, DICOM SR."""
