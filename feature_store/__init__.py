"""The contract between the nightly job and the service: vocabulary, keys, codecs, snapshots."""
