"""What platforms hand the nightly job, read and checked: input schemas, log partitions, the
rumor/debunk/tag catalog; and the outputs every job shares: rejects, atomic Parquet writes."""
