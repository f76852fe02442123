"""The Pulumi engine for cloud sites: one stack per site over the Automation API, embedded state.

Modules: ``workspace`` (stacks, backend, config; the only importer of ``pulumi.automation``),
``passphrase``, ``errors`` (the one table of CLI text -> classified errors), ``events`` (engine
events -> deplat events), ``locks`` (stale lock detection), ``driver`` (``PulumiDriver``), ``api``
(``preview_sites``) and ``doctor``. Nothing here is imported by ``deplat --help``.
"""
