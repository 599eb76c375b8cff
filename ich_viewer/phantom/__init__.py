"""Qt-free synthetic head CT: anatomy, hemorrhage, labels, DICOM writer."""
