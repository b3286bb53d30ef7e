"""The exposure join: logs ⋉ tagged items -> per-(user, rumor) aggregates, behind one engine
interface (the local pyarrow engine with its C prefilter; DuckDB as the reference)."""
