"""The pure ranking core: candidate sources, filters, scorers and selectors on plain data.

No Redis, no gRPC: the service feeds it what the store returned, and offline evaluation feeds it
what the Parquet files hold.
"""
