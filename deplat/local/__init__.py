"""Local sites: the app's services run as supervised processes on this machine's loopback addresses.

A local site stands in for a hosting provider, so that ``deplat up``, ``failover`` and ``drill`` run
end to end on a laptop or in CI with no cloud account. Layout, beside the spec file::

    .deplat/local/<site>/state.json          pids, config hashes, restarts (never secret values)
    .deplat/local/<site>/supervisor.pid      the supervisor's pid, flock-ed while it runs
    .deplat/local/<site>/supervisor.sock     its control socket (owner only)
    .deplat/local/<site>/logs/<service>.log  each service's output, secret values masked
    .deplat/local/<site>/data/<service>/     each service's data dir ({data_dir})

Modules: ``sitestate`` (that layout, the state file, process identity), ``runs`` (spec -> what to
run), ``control`` (the socket's JSON-lines protocol), ``supervisor`` (the long-running process),
``health`` (HTTP health checks), ``launch`` (starting/stopping the supervisor process),
``readiness`` (waiting for the health checks after an up), ``ports`` (ports taken by others),
``driver`` (``LocalDriver``, the ``deplat.sites.SiteDriver``).
Importing this package imports nothing else: the supervisor starts fast.
"""
