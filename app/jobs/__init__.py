"""The arq worker: jobs, the schedule, the reconciler, target locks, and the queue client."""
