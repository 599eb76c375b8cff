"""Trainer: python -m trainer."""
