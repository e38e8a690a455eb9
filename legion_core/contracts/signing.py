"""Ed25519 signatures for policy bundles: which lab made this bundle, and is it unchanged since?

The sha256 values in `bundle.yaml` catch accidents only: whoever edits the weights can update the hash too.
A signature by a key the robot PC trusts closes that gap. Formats (docs/bundle-signing.md):

- Private key (`legion keygen -o DIR/NAME` -> `NAME.key`, mode 0600): unencrypted PKCS#8 PEM
  (`-----BEGIN PRIVATE KEY-----`), the format `openssl genpkey -algorithm ed25519` writes too. It stays in
  the lab; it is never copied into a bundle (signing refuses a key inside the bundle directory).
- Public key (`NAME.pub`): one line `ed25519 <base64 of the 32-byte raw key> [comment]`. A trusted-keys
  file may hold several such lines (blank lines and `# ...` ignored) and/or PEM `PUBLIC KEY` blocks
  (`openssl pkey -pubout`); a trusted-keys directory means every `*.pub` file in it.
- Key id: the first 16 hex digits of sha256(raw 32-byte public key); what errors and `legion inspect` show.
- `bundle.sig` (JSON, next to bundle.yaml): format, version, algorithm, key_id, signed_utc, and a manifest
  with the sha256 of every file of the bundle directory (recursively, except bundle.sig itself), plus
  `signature`: base64 Ed25519 signature over `DOMAIN` + the canonical JSON of all the other keys (sorted
  keys, no whitespace, ASCII). Everything but the signature is signed, so no field can be changed alone.

`cryptography` is imported only where a signature is made or checked: a robot PC that configures no
trusted keys runs without it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from legion_core.contracts.bundle_schema import (
    CONTRACT_FILE,
    SIGNATURE_FILE,
    WEIGHTS_FILE,
    BundleError,
    sha256_file,
)

SIG_FORMAT = "legion-bundle-signature"
SIG_VERSION = 1
ALGORITHM = "ed25519"
#: Prefix of the signed bytes, so that a bundle signature can never be replayed as any other message
#: signed with the same key (and vice versa).
DOMAIN = b"legion-bundle-signature v1\n"
#: Files a signature must cover: without them the signature would not cover what the runtime executes.
#: Also the order in which changed files are named: the weights (what drives the arm) first.
REQUIRED = (WEIGHTS_FILE, CONTRACT_FILE)
_KEY_LINE_FIX = (
    "each line is `ed25519 <base64 of the 32-byte public key> [comment]`, as `legion keygen` writes"
)


class SigningError(ValueError):
    """A key file cannot be used for signing. The message names the file and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class TrustedKey:
    key_id: str
    #: The 32-byte raw Ed25519 public key.
    raw: bytes
    #: Free text after the key on its line (e.g. the lab's name), or the file name for PEM keys.
    comment: str
    source: str


@dataclass(frozen=True)
class SignatureCheck:
    """What `load()` found out about a bundle's signature (`Bundle.signature`)."""

    #: "unsigned" (no bundle.sig), "signed" (bundle.sig present, not verified: no trusted keys configured),
    #: "verified" (signed by a trusted key, every file unchanged), or "unreadable" (bundle.sig is damaged;
    #: only possible without trusted keys, with them it is refused).
    state: str
    #: Key id the signature names (verified or claimed), None when unsigned/unreadable.
    key_id: str | None = None
    #: Relative paths the signed manifest covers.
    files: tuple[str, ...] = ()
    #: Comment of the trusted key that verified it, or why bundle.sig is unreadable.
    detail: str = ""
    signed_utc: str | None = None

    @property
    def status(self) -> str:
        """One line for logs and `legion inspect`."""
        if self.state == "verified":
            who = f" ({self.detail})" if self.detail else ""
            return f"verified: key {self.key_id}{who}, {len(self.files)} files unchanged since signing"
        if self.state == "signed":
            return f"signed by key {self.key_id} (not verified: no trusted keys configured)"
        if self.state == "unreadable":
            return f"{SIGNATURE_FILE} unreadable ({self.detail}; not verified: no trusted keys configured)"
        return "unsigned"


UNSIGNED = SignatureCheck("unsigned")


# ----------------------------------------------------------------------------------------------- keys
def key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_line(raw: bytes, comment: str = "") -> str:
    return f"{ALGORITHM} {base64.b64encode(raw).decode('ascii')}" + (f" {comment}" if comment else "")


def keygen(prefix: str | Path, force: bool = False) -> tuple[Path, Path]:
    """Write PREFIX.key (private, PKCS#8 PEM, mode 0600) and PREFIX.pub (public, one line). Refuses to
    overwrite either unless force: a lost lab key cannot be recovered, and bundles it signed stay valid
    only as long as robot PCs trust its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    prefix = Path(prefix)
    key, pub = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    for p in (key, pub):
        if p.exists() and not force:
            raise SigningError(p, "exists", "choose another name, or pass --force to replace the key pair")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    sk = Ed25519PrivateKey.generate()
    pem = sk.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key.unlink(missing_ok=True)
    # Created 0600 (not chmod-ed afterwards): the private key is never readable by others, not even briefly.
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only narrow the mode; make it exactly owner read/write
        os.write(fd, pem)
    finally:
        os.close(fd)
    pub.write_text(public_key_line(raw, prefix.name) + "\n")
    return key, pub


def load_private_key(path: str | Path):
    """The Ed25519 private key of a PKCS#8 PEM file (Ed25519PrivateKey). Raises SigningError."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    if not path.is_file():
        raise SigningError(path, "no such private key file", "create one with `legion keygen -o DIR/NAME`")
    try:
        sk = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except TypeError:
        raise SigningError(
            path,
            "is encrypted",
            "use an unencrypted key (`openssl pkey -in KEY -out PLAIN.key`, then chmod 600) on the signing PC",
        ) from None
    except ValueError as e:
        raise SigningError(
            path, f"is not a PEM private key ({e})", "give the NAME.key file that `legion keygen` wrote"
        ) from None
    if not isinstance(sk, Ed25519PrivateKey):
        raise SigningError(path, f"is a {type(sk).__name__}, not Ed25519", "use `legion keygen`")
    return sk


def _pem_public_raw(pem: bytes, where: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        pk = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise BundleError("trusted_keys", f"{where}: not a PEM public key ({e})", _KEY_LINE_FIX) from None
    if not isinstance(pk, Ed25519PublicKey):
        raise BundleError("trusted_keys", f"{where}: {type(pk).__name__} is not Ed25519", _KEY_LINE_FIX)
    return pk.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _parse_key_file(path: Path) -> list[TrustedKey]:
    keys: list[TrustedKey] = []
    pem: list[str] | None = None
    pem_start = 0
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError("trusted_keys", f"{path} cannot be read ({e})", _KEY_LINE_FIX) from None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if pem is not None:  # inside a PEM block
            pem.append(s)
            if s.startswith("-----END"):
                raw = _pem_public_raw("\n".join(pem).encode(), f"{path} line {pem_start}")
                keys.append(TrustedKey(key_id(raw), raw, path.name, str(path)))
                pem = None
            continue
        if not s or s.startswith("#"):
            continue
        if s.startswith("-----BEGIN"):
            pem, pem_start = [s], n
            continue
        parts = s.split(None, 2)
        if parts[0] != ALGORITHM or len(parts) < 2:
            raise BundleError(
                "trusted_keys", f"{path} line {n}: not an `{ALGORITHM} <base64>` key", _KEY_LINE_FIX
            )
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise BundleError(
                "trusted_keys", f"{path} line {n}: the key is not 32 bytes of base64", _KEY_LINE_FIX
            )
        keys.append(TrustedKey(key_id(raw), raw, parts[2] if len(parts) > 2 else "", str(path)))
    if pem is not None:
        raise BundleError(
            "trusted_keys", f"{path} line {pem_start}: PEM block without END line", _KEY_LINE_FIX
        )
    return keys


def read_trusted_keys(trusted_keys: str | Path) -> dict[str, TrustedKey]:
    """Key id -> key of a trusted-keys file or directory (its *.pub files). A path that is missing or
    holds no keys is an error, never "no verification": a typo must not turn signature checks off."""
    p = Path(trusted_keys)
    fix = (
        "give a file of public keys or a directory of NAME.pub files (written by `legion keygen`), or leave "
        "trusted_keys empty to run bundles without verifying signatures"
    )
    if not p.exists():
        raise BundleError("trusted_keys", f"{p} does not exist", fix)
    files = sorted(p.glob("*.pub")) if p.is_dir() else [p]
    keys: dict[str, TrustedKey] = {}
    for f in files:
        for k in _parse_key_file(f):
            keys.setdefault(k.key_id, k)
    if not keys:
        raise BundleError(
            "trusted_keys", f"{p} holds no public keys" + (" (*.pub)" if p.is_dir() else ""), fix
        )
    return keys


# ---------------------------------------------------------------------------------------------- bundles
def manifest(bundle_dir: Path) -> dict[str, str]:
    """sha256 of every file under the bundle directory (relative POSIX paths), except bundle.sig."""
    out = {}
    for root, dirs, files in os.walk(bundle_dir):
        dirs.sort()
        for name in sorted(files):
            f = Path(root) / name
            rel = f.relative_to(bundle_dir).as_posix()
            if rel != SIGNATURE_FILE:
                out[rel] = sha256_file(f)
    return out


def _signed_bytes(payload: dict) -> bytes:
    body = {k: v for k, v in payload.items() if k != "signature"}
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def check_key_outside(bundle_dir: str | Path, private_key: str | Path) -> None:
    """Refuse a private key inside the bundle directory: it would be signed into the manifest and shipped."""
    if Path(bundle_dir).resolve() in Path(private_key).resolve().parents:
        raise SigningError(
            private_key, "lies inside the bundle directory and would ship with it", "keep lab keys elsewhere"
        )


def sign_bundle(bundle_dir: str | Path, private_key: str | Path) -> SignatureCheck:
    """Write BUNDLE/bundle.sig over the directory's current files. Validate the bundle before signing
    (`legion sign` does): a signature says "this lab vouches for these bytes"."""
    from cryptography.hazmat.primitives import serialization

    bundle_dir, private_key = Path(bundle_dir), Path(private_key)
    check_key_outside(bundle_dir, private_key)
    sk = load_private_key(private_key)
    raw = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    files = manifest(bundle_dir)
    payload = {
        "format": SIG_FORMAT,
        "version": SIG_VERSION,
        "algorithm": ALGORITHM,
        "key_id": key_id(raw),
        "signed_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": {"files": files},
    }
    payload["signature"] = base64.b64encode(sk.sign(_signed_bytes(payload))).decode("ascii")
    tmp = bundle_dir / (SIGNATURE_FILE + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, bundle_dir / SIGNATURE_FILE)  # a reader never sees half a signature
    return SignatureCheck("signed", payload["key_id"], tuple(files), signed_utc=payload["signed_utc"])


def _read_signature(path: Path) -> dict:
    """Parsed bundle.sig, shape-checked. Raises BundleError."""
    fix = "re-sign the bundle in the lab (`legion sign BUNDLE --key LAB.key`) and copy the whole directory"
    try:
        sig = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError("signature", f"{SIGNATURE_FILE} is not valid JSON ({e})", fix) from None
    if not isinstance(sig, dict) or sig.get("format") != SIG_FORMAT:
        raise BundleError("signature.format", f"{SIGNATURE_FILE} is not a {SIG_FORMAT} file", fix)
    if sig.get("version") != SIG_VERSION:
        raise BundleError(
            "signature.version", f"is {sig.get('version')!r}, this runtime reads {SIG_VERSION}", fix
        )
    if sig.get("algorithm") != ALGORITHM:
        raise BundleError("signature.algorithm", f"is {sig.get('algorithm')!r}, expected {ALGORITHM!r}", fix)
    for k in ("key_id", "signature"):
        if not isinstance(sig.get(k), str):
            raise BundleError(f"signature.{k}", "missing or not a string", fix)
    files = (sig.get("manifest") or {}).get("files") if isinstance(sig.get("manifest"), dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleError("signature.manifest.files", "missing or not a mapping of file -> sha256", fix)
    return sig


def check(bundle_dir: Path, trusted_keys: str | Path | None) -> SignatureCheck:
    """The signature policy of `bundle.load`. Without trusted keys: report what bundle.sig claims and
    never refuse. With trusted keys: refuse (BundleError naming why) unless the bundle is signed by one of
    them and every file is exactly as signed."""
    sig_path = bundle_dir / SIGNATURE_FILE
    if not trusted_keys:
        if not sig_path.exists():
            return UNSIGNED
        try:
            sig = _read_signature(sig_path)
        except BundleError as e:
            return SignatureCheck("unreadable", detail=str(e).split(". Fix:")[0])
        return SignatureCheck(
            "signed", sig["key_id"], tuple(sig["manifest"]["files"]), signed_utc=sig.get("signed_utc")
        )

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    trusted = read_trusted_keys(trusted_keys)  # first: a misconfigured robot PC is reported as such
    resign = "re-sign the bundle in the lab (`legion sign BUNDLE --key LAB.key`) and copy the whole directory"
    if not sig_path.exists():
        raise BundleError(
            "signature",
            f"unsigned: {bundle_dir} has no {SIGNATURE_FILE}, and this robot PC trusts only signed bundles "
            f"(trusted_keys={trusted_keys})",
            "sign it in the lab with `legion sign BUNDLE --key LAB.key` (or `legion export ... --sign LAB.key`) "
            "and copy the whole directory",
        )
    sig = _read_signature(sig_path)
    kid = sig["key_id"]
    key = trusted.get(kid)
    if key is None:
        raise BundleError(
            "signature.key_id",
            f"signed by key {kid}, which is not trusted on this robot PC (trusted_keys={trusted_keys} holds "
            f"{', '.join(sorted(trusted))})",
            f"if you trust the lab that signed it, add its public key (id {kid}) to trusted_keys; otherwise "
            "get the bundle from a trusted lab",
        )
    try:
        Ed25519PublicKey.from_public_bytes(key.raw).verify(
            base64.b64decode(sig["signature"], validate=True), _signed_bytes(sig)
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleError(
            "signature.signature",
            f"does not verify with trusted key {kid}: {SIGNATURE_FILE} (its manifest of file hashes) was altered "
            "after signing, or was not made with that key",
            resign,
        ) from None
    signed: dict[str, str] = sig["manifest"]["files"]
    missing_required = [f for f in REQUIRED if f not in signed]
    if missing_required:
        raise BundleError("signature.manifest.files", f"does not cover {', '.join(missing_required)}", resign)
    actual = manifest(bundle_dir)
    # Runtime-relevant files first, so the error's field names what matters most.
    order = {f: i for i, f in enumerate(REQUIRED)}

    def first(names: list[str]) -> list[str]:
        return sorted(names, key=lambda f: (order.get(f, len(order)), f))

    changed = first([f for f in signed if f in actual and actual[f] != signed[f]])
    removed = first([f for f in signed if f not in actual])
    added = first([f for f in actual if f not in signed])
    if changed:
        f = changed[0]
        also = f" (also changed: {', '.join(changed[1:])})" if changed[1:] else ""
        raise BundleError(
            f"signature.files.{f}",
            f"{f} changed since it was signed (sha256 now {actual[f][:12]}…, signed {signed[f][:12]}…){also}",
            "the bundle was modified after the lab signed it; copy the signed bundle again (or re-sign it in "
            "the lab if the change is intended)",
        )
    if removed:
        raise BundleError(
            f"signature.files.{removed[0]}",
            f"signed file(s) missing: {', '.join(removed)}",
            "copy the whole bundle directory",
        )
    if added:
        raise BundleError(
            f"signature.files.{added[0]}",
            f"file(s) not in the signed manifest: {', '.join(added)}",
            "remove them from the bundle directory, or re-sign the bundle in the lab",
        )
    return SignatureCheck(
        "verified", kid, tuple(signed), detail=key.comment, signed_utc=sig.get("signed_utc")
    )
