"""The `debunk` command: one verb per job (synth, match, exposures, nightly, serve, export-events,
experiment, report, evaluate, demo). It wires the other packages together; nothing imports it."""
