"""The live side of the offline package: work operators trigger between nights."""
