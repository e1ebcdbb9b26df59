"""Azure Blob Storage result store for celeriac: expiry, chords."""
