"""Generated gRPC stubs of proto/debunk/v1 (`make proto`); nothing else lives here."""
