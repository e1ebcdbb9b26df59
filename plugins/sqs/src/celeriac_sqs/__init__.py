"""Amazon SQS transport for celeriac (boto3): long polling, lease renewal, long delays, FIFO queues, dead letters, kombu's SQS format."""
