"""debunk targeting: the command line and the generated gRPC stubs."""
