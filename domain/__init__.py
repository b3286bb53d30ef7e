"""The domain: vocabulary, id rules, rumor/debunk/exposure records, delivery records, model
sides and experiment assignment. IO-free (plain Python and numpy), shared by every package."""
