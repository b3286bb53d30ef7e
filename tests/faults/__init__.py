"""Fault tests: real files broken the ways real writers and disks break them, real signals."""
