"""Operation dashboard: aggregates over the cases a viewer may read, emerging trends, page and API.

``service`` computes every panel (SQL GROUP BYs, a summary shared by all viewers, the viewer's
``case_read_clause`` applied to it), ``trends`` is the pure statistics of emerging trends, ``api`` the
REST routes (``/api/v1/operations/{code}/dashboard``), ``views`` the page (``/operations/{code}/dashboard``).
See docs/dashboard.md.
"""
