"""Verification (test restore): a backup restored into a scratch database and counted."""
