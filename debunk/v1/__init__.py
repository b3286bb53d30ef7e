"""Generated from proto/debunk/v1/debunk.proto by `make proto`; do not edit."""
