"""The HTTP layer's shared pieces: the response envelope, error handlers, middleware."""
