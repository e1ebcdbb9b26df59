"""Amazon DynamoDB result store for celeriac (boto3): atomic chord counting, expiry through TTL."""
