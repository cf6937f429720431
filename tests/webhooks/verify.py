"""Verify one webhook delivery with the `standardwebhooks` package (PyPI), an
implementation of Standard Webhooks independent of jira-bridge's.

Reads a JSON document on stdin:
    {"secret": "whsec_...", "headers": {"webhook-id": ..., ...}, "body_base64": "..."}
Exits 0 when the signature verifies, 1 when it does not, 2 on bad input.
"""

import base64
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    try:
        doc = json.load(sys.stdin)
        secret = doc["secret"]
        headers = {k.lower(): v for k, v in doc["headers"].items()}
        body = base64.b64decode(doc["body_base64"])
    except (ValueError, KeyError, TypeError) as e:
        print(f"bad input: {e}", file=sys.stderr)
        return 2
    try:
        payload = Webhook(secret).verify(body, headers)
    except WebhookVerificationError as e:
        print(f"not verified: {e}", file=sys.stderr)
        return 1
    # verify() also parses the body: print what it saw for the caller's assertions.
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
