"""RQ side: queues, the Redis rate limiter, jobs and the worker entry."""
