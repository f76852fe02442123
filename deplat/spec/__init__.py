"""The app spec: ``deplat.yaml`` as a typed model, loaded with every problem located."""

from deplat.spec.loader import DEFAULT_FILE, load_spec, load_text
from deplat.spec.model import (
    DnsProvider,
    Domain,
    FailoverPolicy,
    HealthCheck,
    Provider,
    Role,
    Service,
    Site,
    Spec,
)

__all__ = [
    "DEFAULT_FILE",
    "DnsProvider",
    "Domain",
    "FailoverPolicy",
    "HealthCheck",
    "Provider",
    "Role",
    "Service",
    "Site",
    "Spec",
    "load_spec",
    "load_text",
]
