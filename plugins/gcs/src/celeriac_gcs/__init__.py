"""Google Cloud Storage result store for celeriac: expiry, chords."""
