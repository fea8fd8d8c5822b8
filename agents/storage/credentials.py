"""Signed content credentials: a C2PA manifest, signed as a sidecar, that any C2PA reader checks.

The image is registered by the sha256 of its exact bytes, so the manifest is never embedded
(that would change the bytes): it is signed as a detached manifest store (`.c2pa`), stored by
CID next to the image, and its hard binding (`c2pa.hash.data`) covers the whole image. A reader
given both (`read_sidecar`, `c2patool`, the CAI verify site) validates the signature and that
the image is the one the manifest was made for.

Signing needs an ES256 certificate chain. A production signer brings its own (a CA that C2PA
trust lists accept); `DevIdentity.load_or_create` makes a local development CA and agent
certificate (once, kept under the cache folder) so everything runs offline. Manifests it signs
validate, and are reported as from an untrusted signer unless the reader is given that CA.
"""

from __future__ import annotations

import datetime
import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agents.core.errors import PermanentError

VALIDITY: Final = datetime.timedelta(days=3650)
#: Validation codes that mean the manifest and the image agree and the signature is sound.
REQUIRED_SUCCESS: Final = ("claimSignature.validated", "assertion.dataHash.match")


class CredentialError(PermanentError, ValueError):
    """A manifest that cannot be signed, or a sidecar that does not validate against its image."""


@dataclass(frozen=True)
class DevIdentity:
    """An ES256 signing key with its chain (agent certificate, then the CA), PEM encoded."""

    chain_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    @classmethod
    def load_or_create(cls, folder: Path, name: str = "proofmint agent") -> DevIdentity:
        """The identity kept in `folder` (chain.pem, key.pem, ca.pem), made on first use."""
        files = [folder / n for n in ("chain.pem", "key.pem", "ca.pem")]
        if all(f.exists() for f in files):
            chain, key, ca = (f.read_bytes() for f in files)
            return cls(chain, key, ca)
        identity = cls.create(name)
        folder.mkdir(parents=True, exist_ok=True)
        for path, data in zip(files, (identity.chain_pem, identity.key_pem, identity.ca_pem), strict=True):
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(data)
            temporary.chmod(0o600)
            temporary.replace(path)
        return identity

    @classmethod
    def create(cls, name: str) -> DevIdentity:
        """A fresh development CA and an agent certificate it issues (C2PA signer profile:
        digitalSignature key usage, emailProtection extended usage, not self-signed)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        def usage(*, sign: bool, certs: bool) -> x509.KeyUsage:
            return x509.KeyUsage(
                digital_signature=sign,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=certs,
                crl_sign=certs,
                encipher_only=False,
                decipher_only=False,
            )

        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "proofmint (development)")
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proofmint development CA"), org])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(sign=False, certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name), org]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(sign=True, certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        ca_pem = ca.public_bytes(pem)
        key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cls(leaf.public_bytes(pem) + ca_pem, key_pem, ca_pem)


class SidecarSigner:
    """Signs detached manifests (`sign`) with one identity. The C2PA signer and the builder's
    settings are made once per thread that signs (a signer is reused by every manifest that
    thread signs; making it was a fifth of a signature's CPU), not once per manifest."""

    def __init__(self, identity: DevIdentity) -> None:
        self.identity = identity
        self._local = threading.local()

    def _parts(self) -> tuple[Any, Any]:
        import c2pa

        parts: tuple[Any, Any] | None = getattr(self._local, "parts", None)
        if parts is None:
            info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, self.identity.chain_pem, self.identity.key_pem, None)
            settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
            parts = self._local.parts = (c2pa.Signer.from_info(info), settings)
        return parts

    def sign(
        self, definition: dict[str, Any], asset: bytes, *, parents: Sequence[tuple[dict[str, Any], bytes]] = ()
    ) -> bytes:
        """Signs `definition` for `asset` (bytes unchanged) and returns the detached manifest
        store. `parents`: (ingredient JSON, parent bytes) pairs, hashed into `parentOf`
        ingredients."""
        import c2pa

        fmt = definition.get("format", "image/png")
        unsigned = {k: v for k, v in definition.items() if k != "ingredients"}
        try:
            signer, settings = self._parts()
            builder = c2pa.Builder(json.dumps(unsigned), c2pa.Context(settings))
            for ingredient, data in parents:
                builder.add_ingredient(json.dumps(ingredient), fmt, io.BytesIO(data))
            builder.set_no_embed()
            out = io.BytesIO()
            manifest = builder.sign(signer, fmt, io.BytesIO(asset), out)
        except c2pa.C2paError as err:
            raise CredentialError(f"C2PA signing failed: {err}") from err
        if out.getvalue() != asset:  # pragma: no cover - set_no_embed promises this
            raise CredentialError("the C2PA signer changed the asset's bytes")
        return bytes(manifest)


def sign_sidecar(
    definition: dict[str, Any],
    asset: bytes,
    identity: DevIdentity,
    *,
    parents: Sequence[tuple[dict[str, Any], bytes]] = (),
) -> bytes:
    """One manifest signed by `identity` (`SidecarSigner.sign`); a signer of many keeps a
    `SidecarSigner`."""
    return SidecarSigner(identity).sign(definition, asset, parents=parents)


def read_sidecar(
    asset: bytes, manifest: bytes, *, trust_anchors: bytes | None = None, fmt: str = "image/png"
) -> dict[str, Any]:
    """The validated manifest store as JSON (c2pa `Reader`); raises `CredentialError` unless
    the signature is valid and the image is the one it was signed for. With `trust_anchors`
    (PEM CA certificates) the signer must also chain to one of them; without, an untrusted
    signer is allowed and the report's `proofmint_trusted` says so."""
    import c2pa

    config: dict[str, Any] = {"verify": {"verify_trust": True}}
    if trust_anchors is not None:
        config["trust"] = {"trust_anchors": trust_anchors.decode()}
    try:
        context = c2pa.Context(c2pa.Settings.from_dict(config))
        report: dict[str, Any] = json.loads(c2pa.Reader(fmt, io.BytesIO(asset), manifest, context).json())
    except c2pa.C2paError as err:
        raise CredentialError(f"not a valid C2PA manifest for this asset: {err}") from err
    results = report.get("validation_results", {}).get("activeManifest", {})
    untrusted = "signingCredential.untrusted"
    codes = [f["code"] for f in results.get("failure", [])]
    report["proofmint_trusted"] = untrusted not in codes
    allowed = () if trust_anchors is not None else (untrusted,)
    failures = [
        f"{f['code']}: {f.get('explanation', '')}" for f in results.get("failure", []) if f["code"] not in allowed
    ]
    passed = {s["code"] for s in results.get("success", [])}
    missing = [code for code in REQUIRED_SUCCESS if code not in passed]
    if failures or missing:
        raise CredentialError(f"C2PA validation failed: {failures or missing}")
    return report


def active_manifest(report: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = report["manifests"][report["active_manifest"]]
    return manifest
