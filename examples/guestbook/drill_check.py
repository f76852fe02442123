"""The guestbook's own drill check: what a user wrote before the suspension is what users see after.

deplat runs it because the guestbook's deplat.yaml declares it (``drill.write`` / ``drill.check``);
deplat itself knows nothing of the guestbook's API.

    python drill_check.py write URL HOST TOKEN   # sign the book ENTRIES times, tagged with TOKEN
    python drill_check.py check URL HOST TOKEN   # exit 0 when every tagged entry is there

URL is where the app answers from this machine now; HOST is the name users ask for (sent as the
Host header). Standard library only.
"""

from __future__ import annotations

import json
import sys
import urllib.request

ENTRIES = 5
TIMEOUT = 5.0


def _request(url: str, host: str, body: dict[str, str] | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Host": host, **({"Content-Type": "application/json"} if data else {})}
    request = urllib.request.Request(f"{url}/entries", data=data, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with opener.open(request, timeout=TIMEOUT) as answer:
        return json.loads(answer.read())


def write(url: str, host: str, token: str) -> int:
    for i in range(ENTRIES):
        _request(url, host, {"name": "deplat-drill", "message": f"drill {token} #{i + 1}"})
    print(f"wrote {ENTRIES} entries tagged {token}")
    return 0


def check(url: str, host: str, token: str) -> int:
    entries = _request(url, host)
    found = {str(e.get("message")) for e in entries} if isinstance(entries, list) else set()
    wanted = [f"drill {token} #{i + 1}" for i in range(ENTRIES)]
    missing = [m for m in wanted if m not in found]
    print(
        f"{ENTRIES - len(missing)} of {ENTRIES} entries tagged {token} found"
        + (f"; missing {missing}" if missing else "")
    )
    return 1 if missing else 0


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    action, url, host, token = argv
    return (write if action == "write" else check)(url.rstrip("/"), host, token)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
