"""The A/B reach report: outcomes per user and pair, the statistics, tables and the HTML page."""
