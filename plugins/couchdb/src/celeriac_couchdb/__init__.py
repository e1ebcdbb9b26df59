"""CouchDB result store for celeriac (its HTTP API, through httpx): expiry, chords."""
