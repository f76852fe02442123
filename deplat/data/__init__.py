"""Data follows the app: restic repositories, backups and restores of stateful services' data.

``restic`` wraps the restic CLI (commands run through a ``deplat.transport.Transport``, so the same
code serves a local site, the operator's machine and a cloud site over SSH); ``repositories`` turns
the spec's ``backups:`` section into repositories and surveys them, each within its own deadline.
"""
