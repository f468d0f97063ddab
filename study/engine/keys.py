"""How a trial is named: the first 16 hex digits of the SHA-256 of its spec's canonical JSON
(``TrialSpec.key``), the name it has in every store, folder, archive and file."""

import hashlib
import json
import re

KEY_DIGITS = 16
_KEY = re.compile(f"[0-9a-f]{{{KEY_DIGITS}}}")


def trial_key(spec_fields: dict) -> str:
    canonical = json.dumps(spec_fields, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_DIGITS]


def is_trial_key(text: str) -> bool:
    return _KEY.fullmatch(text) is not None
