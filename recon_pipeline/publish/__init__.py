"""Publication: the read-only copy of the mart that BI tools and the dashboard open."""
