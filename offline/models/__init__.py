"""The learned models: features from debunk events, the LightFM ranker and the implicit ALS
at-risk model, and their offline evaluation against the rules."""
