"""How SendGrid and Amazon SNS sign their event webhooks, written out from their docs,
independently of the code under test. Shared by the parser tests and the end-to-end
webhook tests."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

DEFAULT_SNS_CERT_URL = "https://sns.test-region.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"


def sendgrid_public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The form SendGrid's settings page shows: base64 of the DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sendgrid_sign(key: ec.EllipticCurvePrivateKey, payload: bytes, timestamp: str) -> str:
    """ECDSA P-256 / SHA-256 over timestamp + payload, base64."""
    return base64.b64encode(key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))).decode()


def sns_string_to_sign(msg: dict) -> bytes:
    if msg["Type"] == "Notification":
        keys = ["Message", "MessageId"] + (["Subject"] if "Subject" in msg else []) + [
            "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{msg[k]}\n" for k in keys).encode()


def sns_signed(key, msg: dict, version: str = "1", cert_url: str = DEFAULT_SNS_CERT_URL) -> dict:
    """`msg` with SignatureVersion, SigningCertURL (unless it has one) and Signature:
    RSA PKCS#1 v1.5 with SHA-1 (version 1) or SHA-256 (version 2)."""
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    out = dict(msg, SignatureVersion=version, SigningCertURL=msg.get("SigningCertURL", cert_url))
    out["Signature"] = base64.b64encode(key.sign(sns_string_to_sign(out), padding.PKCS1v15(), algorithm)).decode()
    return out
