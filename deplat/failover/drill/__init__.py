"""The drill: rehearse losing the primary on local sites, and measure detection, RTO and RPO.

    from deplat.failover.drill import DrillOptions, run_drill

    report = run_drill(spec, secrets, DrillOptions(mode="suspended", max_rto=30), emit=print)
    report.ok, report.rto_seconds, report.data_check.ok, report.report_path

Modules, each with one job: ``guard`` (refusals and locks), ``rehearsal`` (the sequence),
``users`` (the client that sees what users see), ``timeline`` (figures from events),
``datacheck`` (fingerprints and the app's own commands), ``outcome`` (the report's data),
``report`` / ``chart`` / ``junit`` (the files).
"""

from deplat.failover.drill.outcome import DrillReport
from deplat.failover.drill.rehearsal import DrillOptions, run_drill

__all__ = ["DrillOptions", "DrillReport", "run_drill"]
