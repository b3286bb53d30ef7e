"""The nightly side: synthetic world, matching, the exposure join, materialization."""
