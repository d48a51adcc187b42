"""Encryption at rest of backups (age): dbkeep's own X25519 identities and the recovery kit."""
