"""Notifications: channels (email, signed webhook, Apprise), the events they subscribe to, and a
delivery queue in the metadata store that retries with backoff (contract part 2)."""
