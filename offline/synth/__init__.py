"""The synthetic world: every input contract written from a seed, with planted truth for
evaluation (population, library, cascades, serving and experiment planting, writers)."""
