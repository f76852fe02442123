"""Failover: probes, hysteresis, data backups, the failover itself, the watcher and the drill.

- ``deplat.failover.run.run_failover``: one failover, step by step, journaled and resumable.
- ``deplat.failover.watch.Watcher``: probes, backups, and automatic failover.
- ``deplat.failover.drill.run_drill``: a rehearsal on local sites with a timeline, RTO and RPO.
"""
