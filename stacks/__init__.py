"""Provider-agnostic Pulumi programs (installed as ``deplat.stacks``).

- ``deplat.stacks.site``: the program of one cloud site (``program``), and ``SiteContext``, what a
  provider module's ``build_site`` is given.
- ``deplat.stacks.bootstrap``: the cloud-init document, the same on every provider.
"""
