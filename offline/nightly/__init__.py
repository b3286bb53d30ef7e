"""The nightly pipeline: match the library, bring the exposure state up to date, build the
audience, materialize a snapshot and flip; and the event export that feeds the next night."""
