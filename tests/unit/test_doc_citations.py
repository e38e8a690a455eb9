"""Comments cite documents that are in the repository.

A comment or docstring in the code may point to docs/... (a file that exists; a `#anchor` must be one of
its `##` headings), never to what a reader of the repository cannot open: the project tracker's issue
numbers ("issue 6"), section marks of notes kept outside the repository ("§2.4", "method notes"), or paths
under shared/. The method the code relies on is in docs/method.md, the install pitfalls in
docs/environment.md, and decisions in docs/decisions/.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Folders whose comments are checked, and the file kinds in them that carry comments.
ROOTS = ("legion_core", "sim2real", "ros2_ws/src", "presets")
SUFFIXES = {".py", ".yaml", ".yml", ".msg", ".srv", ".action", ".sh"}
SKIP_PARTS = {"__pycache__", "build", "install", "log"}

#: What a reader of the repository cannot follow, with the fix named in the failure message.
FORBIDDEN = (
    (re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE), "an issue number: state the decision, or cite docs/decisions/"),
    (re.compile(r"§"), "a section mark of a document outside the repository: cite a docs/*.md#anchor"),
    (re.compile(r"(?<![\w-])shared/"), "a path under shared/ (outside the repository): cite the docs/ file"),
    (re.compile(r"method notes|legion-method\.md", re.IGNORECASE), "the method notes: cite docs/method.md#..."),
    (
        re.compile(r"(?<![\w/])(?:research/|design/)?(?:environment|kuka-embodiment|robot-integration|peers|runtime-sketch)\.md"),
        "a notes file named without docs/: cite docs/<file>.md",
    ),
)  # fmt: skip
DOCS_REF = re.compile(r"(?<![\w/.-])docs/[\w./-]*[\w/](?:#[\w-]+)?")


@dataclass(frozen=True)
class Comment:
    path: Path
    line: int
    text: str


def _hash_comment(line: str) -> str | None:
    """The comment part of a line of YAML, a .msg file or shell: from a '#' that starts the line or follows
    whitespace, outside quotes. None if the line has no comment."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i + 1 :]
    return None


def python_comments(path: Path, source: str) -> list[Comment]:
    """`#` comments and docstrings (module, class, function and attribute docstrings: every string that
    stands alone as a statement) of a Python file."""
    out = [
        Comment(path, tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for k, text in enumerate(node.value.value.splitlines()):
                out.append(Comment(path, node.lineno + k, text))
    return out  # fmt: skip


def file_comments(path: Path) -> list[Comment]:
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return python_comments(path, source)
    found = ((n, _hash_comment(line)) for n, line in enumerate(source.splitlines(), 1))
    return [Comment(path, n, text) for n, text in found if text is not None]


def heading_anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings of a Markdown text: lower case, punctuation dropped, spaces to '-'."""
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
    return anchors


def problems(comment: Comment, repo: Path = REPO) -> list[str]:
    """What is wrong with the citations in one comment (empty when nothing is)."""
    where = f"{comment.path.relative_to(repo)}:{comment.line}"
    out = [f"{where}: {why}: {comment.text.strip()!r}" for rx, why in FORBIDDEN if rx.search(comment.text)]
    for ref in DOCS_REF.findall(comment.text):
        rel, _, anchor = ref.partition("#")
        target = repo / rel.rstrip("/")
        if not target.exists():
            out.append(f"{where}: cites {rel}, which does not exist")
        elif (
            anchor
            and target.suffix == ".md"
            and anchor not in heading_anchors(target.read_text(encoding="utf-8"))
        ):
            out.append(f"{where}: cites {ref}, but {rel} has no heading with that anchor")
    return out  # fmt: skip


def checked_files(repo: Path = REPO) -> list[Path]:
    files = []
    for root in ROOTS:
        for p in sorted((repo / root).rglob("*")):
            rel_parts = set(p.relative_to(repo).parts)
            if p.is_file() and p.suffix in SUFFIXES and not rel_parts & SKIP_PARTS:
                files.append(p)
    return files


def test_comments_cite_only_documents_in_the_repository():
    files = checked_files()
    assert len(files) > 50, "the scan found too few files: are the roots right?"
    found = [msg for f in files for c in file_comments(f) for msg in problems(c)]
    assert not found, "comments cite what the repository does not hold:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "text",
    [
        "# why: see issue 6 for the numbers",
        "# (issue #12)",
        "# the KL term (§3.1)",
        "# as in the method notes",
        "# see ../shared/research/environment.md",
        "# (kuka-embodiment.md: damping ~2)",
        "# docs/no-such-file.md says why",
        "# docs/method.md#no-such-heading",
    ],
)
def test_a_planted_citation_fails(tmp_path, text):
    """The checker is not a formality: each kind of unfollowable citation is reported, in a comment and in a
    docstring alike."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "method.md").write_text("# Method\n\n## VAE\n")
    code = tmp_path / "mod.py"
    code.write_text(f'"""{text.lstrip("# ")}"""\n\nX = 1  {text}\n')
    msgs = [m for c in file_comments(code) for m in problems(c, repo=tmp_path)]
    assert len(msgs) == 2, msgs  # one for the docstring, one for the comment


def test_valid_citations_pass(tmp_path):
    (tmp_path / "docs" / "decisions").mkdir(parents=True)
    (tmp_path / "docs" / "method.md").write_text("# Method\n\n## Update order\n\n## VAE\n")
    (tmp_path / "docs" / "decisions" / "x.md").write_text("# X\n")
    code = tmp_path / "cfg.yaml"
    code.write_text(
        "a: 1  # docs/method.md#update-order and docs/method.md#vae.\n"
        'b: "#not a comment"  # docs/decisions/x.md, shared by nodes; issues are tracked elsewhere\n'
    )
    assert [m for c in file_comments(code) for m in problems(c, repo=tmp_path)] == []


def test_heading_anchors_follow_github():
    md = "# Title\n## Actor and critic\n## Continual-learning metrics\n### `z` (latent)\n"
    assert heading_anchors(md) == {"title", "actor-and-critic", "continual-learning-metrics", "z-latent"}
