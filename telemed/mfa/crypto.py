"""Secrets at rest: the TOTP secret encrypted, recovery codes hashed with a key.

Choice: both keys are derived from the application's secret (``TELEMED_SECRET_KEY``; in
development the random one kept in the data directory) with HKDF-SHA256, one ``info``
label per use, so no second secret has to be deployed, backed up or rotated. The TOTP
secret must be read back to check a code, so it is encrypted (Fernet: AES-128-CBC with
HMAC-SHA256, from ``cryptography``), not hashed: a copy of the database alone does not
reveal it. A recovery code is only compared, so only its HMAC-SHA256 is kept; the key
stops a stolen table from being searched offline. The price of deriving from the app
secret: changing it makes every enrolled authenticator unreadable, and those users must
enrol again (an admin disables their MFA with ``telemed users mfa-reset EMAIL``; docs/mfa.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_TOTP_LABEL = b"telemed/mfa/totp-secret/v1"
_RECOVERY_LABEL = b"telemed/mfa/recovery-code/v1"


def _derive(app_secret: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(
        app_secret.encode()
    )


class SecretBox:
    """Encrypts TOTP secrets and hashes recovery codes with keys from ``app_secret``."""

    def __init__(self, app_secret: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(app_secret, _TOTP_LABEL)))
        self._code_key = _derive(app_secret, _RECOVERY_LABEL)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str | None:
        """The secret, or None if it was sealed under another app secret."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None

    def code_hash(self, code: str) -> str:
        return hmac.new(self._code_key, code.encode(), hashlib.sha256).hexdigest()
