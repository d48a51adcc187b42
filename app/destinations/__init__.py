"""Destinations (contract part 2): where a backup's copies are stored, local directories or
S3-compatible buckets, and the copies themselves."""
