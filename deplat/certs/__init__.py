"""The app's TLS certificate, obtained and renewed by deplat itself with ACME DNS-01.

Why not leave it to the web server on each site (Caddy's HTTP-01/TLS-ALPN-01): a warm standby
cannot pass those challenges while DNS points at the primary, and Caddy backs off to one try every
6 h, so right after a failover the new primary may have no valid certificate for hours; every
replacement VM would also ask for a new certificate (Let's Encrypt allows 5 duplicates a week).
DNS-01 needs only the DNS providers deplat already writes, so one certificate for the app's names
is obtained once, centrally, renewed when fewer than ``certificates.renew_before_days`` remain,
and installed on every site before traffic moves.

    from deplat import certs

    state = certs.ensure(spec, secrets)          # obtain or renew when due; a CertStatus
    cert_pem, key_pem = certs.pem_pair(spec, secrets)   # for installing on a site
    certs.status(spec)                           # names, issuer, expiry: no passphrase needed

Modules: ``sealed`` (encryption at rest with the state passphrase), ``store`` (the files under
``.deplat/certs``), ``order`` (one ACME order through the DNS providers), ``manage`` (when to
renew, and the functions above).
"""

from deplat.certs.manage import CertStatus, ensure, pem_pair, status

__all__ = ["CertStatus", "ensure", "pem_pair", "status"]
