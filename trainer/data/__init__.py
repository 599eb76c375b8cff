"""Readers that turn each data set into ordered per-patient volumes with LABELS-order labels."""
