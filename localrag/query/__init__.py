"""Query strategies: rewrite a query into one or more searches whose results are fused."""
