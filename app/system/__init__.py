"""dbkeep itself: its health checks and its Prometheus metrics (no login needed)."""
