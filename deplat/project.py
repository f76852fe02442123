"""One project context: the spec, its secrets and its paths, loaded once and passed down.

Commands build a ``Project`` at the start (``Project.load``) and hand it to the core, instead of
each layer re-reading the spec, opening its own secret store or building ``.deplat/`` paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deplat.paths import ProjectPaths

if TYPE_CHECKING:
    from deplat.secrets import SecretStore
    from deplat.spec.model import Spec


@dataclass
class Project:
    spec: Spec
    secrets: SecretStore
    paths: ProjectPaths = field(init=False)

    def __post_init__(self) -> None:
        self.paths = ProjectPaths.of(self.spec)

    @classmethod
    def load(cls, spec_file: Path) -> Project:
        from deplat.secrets import SecretStore
        from deplat.spec import load_spec

        spec = load_spec(spec_file)
        return cls(spec, SecretStore(spec))
