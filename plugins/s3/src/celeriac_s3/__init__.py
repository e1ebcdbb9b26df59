"""Amazon S3 result store for celeriac (boto3): expiry, chords."""
