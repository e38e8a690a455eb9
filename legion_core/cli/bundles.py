"""`legion inspect`, `legion keygen`, `legion sign`: checking and signing policy bundles
(docs/bundle-signing.md)."""

from __future__ import annotations

import argparse
import sys

from legion_core.cli.common import add_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    s = add_command(
        subparsers,
        "inspect",
        help="validate a policy bundle and print its contract",
        description="Load a bundle with full validation (schema, shapes, hashes, version, layout against the\n"
        "built-in one) and print what it expects and can do, and its signature status.\n\n"
        "examples:\n  legion inspect models/legion-kuka\n"
        "  legion inspect models/legion-kuka --trusted-keys /etc/legion/trusted_keys   # as the robot PC",
    )
    s.add_argument("bundle")
    s.add_argument(
        "--trusted-keys",
        metavar="PATH",
        default=None,
        help="public-key file or directory of *.pub files: refuse the bundle unless signed by one of them",
    )
    s.set_defaults(func=run_inspect)

    s = add_command(
        subparsers,
        "keygen",
        help="create an Ed25519 key pair for signing bundles (private 0600 + public)",
        description="Write NAME.key (private key, PKCS#8 PEM, mode 0600: stays in the lab) and NAME.pub\n"
        "(one line `ed25519 <base64> NAME`: goes to the robot PCs' trusted keys). See docs/bundle-signing.md.\n\n"
        "example:\n  legion keygen -o ~/lab-keys/lab   # writes ~/lab-keys/lab.key and ~/lab-keys/lab.pub",
    )
    s.add_argument("-o", "--output", required=True, metavar="DIR/NAME", help="path prefix of the two files")
    s.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    s.set_defaults(func=run_keygen)

    s = add_command(
        subparsers,
        "sign",
        help="sign an existing policy bundle (writes BUNDLE/bundle.sig)",
        description="Validate the bundle, then sign the sha256 of every file in its directory with an Ed25519\n"
        "private key. Re-signing replaces bundle.sig. Robot PCs with trusted keys run only signed bundles.\n\n"
        "example:\n  legion sign models/legion-kuka --key ~/lab-keys/lab.key",
    )
    s.add_argument("bundle", help="bundle directory")
    s.add_argument("--key", required=True, metavar="KEYFILE", help="private key file (legion keygen)")
    s.set_defaults(func=run_sign)


def run_inspect(args: argparse.Namespace) -> int:
    from legion_core.contracts.bundle import load
    from legion_core.contracts.bundle_schema import BundleError
    from legion_core.training.export import inspect_text

    try:
        b = load(args.bundle, trusted_keys=args.trusted_keys)
    except BundleError as e:
        print(f"invalid bundle: {e}", file=sys.stderr)
        return 1
    print(inspect_text(b))
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from legion_core.contracts.signing import SigningError, keygen, read_trusted_keys

    try:
        key, pub = keygen(args.output, force=args.force)
    except SigningError as e:
        print(f"legion keygen: {e}", file=sys.stderr)
        return 2
    (kid,) = read_trusted_keys(pub)  # the id exactly as a robot PC will compute it
    print(f"private key {key} (mode 0600: keep it in the lab, never in a bundle)")
    print(f"public key  {pub} (key id {kid}: copy it to the robot PCs' trusted keys)")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from legion_core.contracts.bundle import load
    from legion_core.contracts.bundle_schema import BundleError
    from legion_core.contracts.signing import SigningError, sign_bundle

    try:
        load(args.bundle)  # a signature vouches for the bundle: never sign one that does not load
    except BundleError as e:
        print(f"invalid bundle, not signed: {e}", file=sys.stderr)
        return 1
    try:
        check = sign_bundle(args.bundle, args.key)
    except SigningError as e:
        print(f"legion sign: {e}", file=sys.stderr)
        return 2
    print(f"signed {args.bundle}: key {check.key_id}, {len(check.files)} files -> {args.bundle}/bundle.sig")
    return 0
