"""Failover: probes, hysteresis, data backups, the failover itself, the watcher and the drill.

- ``deplat.failover.run.run_failover``: one failover, step by step, journaled and resumable.
- ``deplat.failover.watch.Watcher``: probes, backups, and automatic failover.
- ``deplat.failover.drill.run_drill``: a rehearsal on local sites with a timeline, RTO and RPO.
- ``deplat.failover.probe``: a site's health checks and the provider's control plane; healthy /
  degraded / down / suspended. Its parts: ``health_checks`` (one HTTP check), ``signatures``
  (suspension pages), ``names_probe`` (the app's names as resolved), ``sync`` (coroutines from sync
  code). ``hysteresis``: N failures to go down, M successes to come back.
- ``deplat.failover.faults``: make a local site behave like a suspended or broken provider.
- ``deplat.failover.backup``: copies of stateful services' data, kept outside the site.
"""
