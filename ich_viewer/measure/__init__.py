"""Qt-free measurement: distances, angles, ROI statistics, midline shift (``planar``) and
3D bleed outlines with volumes (``region``, SimpleITK). The window and the ``measure``
command call the same functions, so what the reader sees is what the reports say."""
