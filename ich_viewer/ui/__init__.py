"""Every widget; the only place that knows about windows and keys."""
