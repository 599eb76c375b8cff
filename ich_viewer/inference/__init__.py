"""Classifier: network, preprocessing, weights, device, predict(); one Qt worker."""
