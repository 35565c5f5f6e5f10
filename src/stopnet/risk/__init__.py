"""Risk management: rules, learned risk models and selection for inspection (pure polars/numpy/LightGBM).

No web framework, database or global state here: everything is usable from the CLI and from Dask workers.
Learned model: :mod:`stopnet.risk.features`, :mod:`stopnet.risk.model`, :mod:`stopnet.risk.metrics`,
:mod:`stopnet.risk.kcs` and the ``stopnet risk`` commands in :mod:`stopnet.risk.cli` (see docs/risk.md).
"""
