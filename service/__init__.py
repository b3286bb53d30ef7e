"""The online side: the gRPC service that feed, search and messaging servers call."""
