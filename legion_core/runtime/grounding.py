"""Ground an operator's typed command into a plan of known skills of the loaded bundle, or refuse.

"close the drawer, then press the button and open the window" -> [drawer-close, button-press-topdown,
window-open]. The grounder is a pure function of (command text, the bundle's skill cards, optional scene):
no ROS, no network, no state between calls.

Why not cosine similarity alone: all-MiniLM-L6-v2 puts "open the drawer" 0.905 from "close the drawer"; the
embedding knows the topic, not the polarity. So every step is read twice:
- a *slot model* (lexicon in `grounding_data`): the action classes of the step (open/close/turn on/press/
  push/pull/pick/place/reach/unplug..., each strong class with a polarity, open=+1 close=-1) and its object
  classes (drawer, window, door, button, faucet/tap/water, peg/plug, puck, goal/target/marker...). Each
  skill gets the same slots from its own phrasings. A skill is a candidate only if the step's objects all
  belong to it, their polarities agree, and they share an action class: that separates opposites and
  objects exactly, whatever the embedding says.
- the *embedding*: the cosine of the step to the skill's phrasings (max over phrasings) ranks the candidates
  and must leave a margin between the best and the second best; below it the step is refused with a
  question that names the candidates ("did you mean drawer-close or drawer-close-b?"). It is also the whole
  test for a skill whose phrasings the lexicon cannot read (then a high cosine is required).
When opposite skills both fit and the step says no direction ("turn the faucet", "push the window") it is
refused whatever the cosine prefers: the embedding must never pick a polarity the operator did not say.

Typos: unknown words are corrected to the nearest lexicon, connective or safety word (1 edit, adjacent swaps
included; 2 from 8 letters); a word with several equally near readings is not guessed ("pck": pick or
puck?) and its step is refused, except that a tie with a safety word resolves to it ("slowy" -> slow), and
numbers are checked again after correction: a typo may cost a refusal, never a safety check.

Safety (closed world): only the skills of the given cards can be returned, and nothing from the text reaches
the robot but skill names and, optionally, an instance id taken from the scene (`Scene`), never from the
text. Refused outright, with a reason class (`REASONS`): empty or over-long text, too many steps, anything
that looks like a ROS/shell/code/URL injection, low-level joint control or an attempt to override the limits
("ignore your limits", "without safety checks": named as an override, not as an unknown skill), any number
(digits, spelled numbers with a unit, "twice": the skills choose their own targets, so the grounder never
passes a number through), speed/force/partial requests, directions other than the one the chosen skill's own
meaning implies ("push the drawer back in" is drawer-close; "push the puck to the left" is refused;
grounding_data.IMPLIED_DIRECTIONS), stop/pause/home words (that is the e-stop's job), negation,
unknown or opposite skills, ambiguity. If ANY step is refused the whole command is refused (naming the step)
so that the robot never runs half of a plan the operator did not intend.

Splitting: newlines, bullets, numbered lists ("1. ... 2. ...", "Step 1:"), ";", sentences, commas,
"then", "and then", "after that", "afterwards", "next", "finally", "lastly", "followed by",
"first ... then ...", "A before B", "A after B" (reordered), and "and". "and" is special because it also
joins the parts of one step ("pick up the puck and place it on the goal", "push and close the drawer"):
the parts are grounded separately (a part without an object borrows its neighbour's, "open and close the
drawer"; one without a verb borrows its neighbour's, "close the window and the drawer"; "it" is the previous
step's object), adjacent parts that ground to the same skill merge into one step, and if a part fails but
the whole "and" group grounds, the group is one step ("push and open the window").
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from legion_core.contracts.transitions import Transitions
from legion_core.runtime import grounding_data as D

EmbedFn = Callable[[Sequence[str]], np.ndarray]

#: Refusal classes (GroundingResult.reason).
REASONS = (
    "empty",
    "too_long",
    "too_many_steps",
    "injection",
    "number",
    "speed",
    "parameter",
    "control",
    "negation",
    "unknown",
    "no_action",
    "no_object",
    "opposite",
    "ambiguous",
    "instance",
    "unverified",
)


# ===================================================================================================== types
@dataclass(frozen=True)
class SkillCard:
    """What the grounder needs to know about one skill of the closed world (a bundle's skill, usually)."""

    name: str
    descriptions: tuple[str, ...]
    object_label: str = ""


def skill_cards_from_bundle(bundle: Any) -> list[SkillCard]:
    """The closed world of a loaded bundle (`legion_core.contracts.bundle.load`): its skills, in bundle order."""
    return [
        SkillCard(name, tuple(bundle.skills[name].descriptions), bundle.skills[name].object_label)
        for name in bundle.skill_names
    ]


def skill_cards_from_registry(names: Iterable[str]) -> list[SkillCard]:
    """Skill cards of registry tasks (`legion_core.contracts.tasks`), e.g. to ground against a task set before export."""
    from legion_core.contracts.tasks import get_task

    cards = []
    for name in names:
        t = get_task(name)
        cards.append(SkillCard(t.name, tuple(t.descriptions), t.object_label))
    return cards


@dataclass(frozen=True)
class SceneObject:
    """One detected object instance. `instance_id` comes from perception; `attributes` are allowlisted
    qualifier words (grounding_data.QUALIFIER_WORDS: left, right, top, red...) perception assigns to it."""

    instance_id: str
    object_label: str
    attributes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Scene:
    """The detected instances (the hook for choosing one of several objects).

    With a scene, each step gets `PlanStep.instance`: the one instance of its skill's object label that the
    step's qualifiers select ("the left drawer"); none (the object is not in the scene) or several (say which
    one) -> refused. Without a scene, a step with a qualifier is refused (it cannot be checked) and the others
    get `instance=None`. The id always comes from the scene, never from the text."""

    objects: tuple[SceneObject, ...] = ()

    def instances(self, object_label: str) -> list[SceneObject]:
        return [o for o in self.objects if o.object_label == object_label]


@dataclass(frozen=True)
class PlanStep:
    """One grounded step. `score` = cosine + slot bonuses of the chosen skill; `margin` = score minus the
    runner-up's (skills ruled out by the slots count with a penalty of `GroundingConfig.veto_penalty`)."""

    skill: str
    text: str
    score: float
    margin: float
    instance: str | None = None


@dataclass(frozen=True)
class GroundingResult:
    """ok and a plan, or a refusal sentence, its class (`REASONS`), the step that failed (1-based) and the
    candidate skills the operator may have meant."""

    ok: bool
    plan: list[PlanStep]
    refusal: str | None
    candidates: list[str]
    reason: str | None = None
    failed_step: int | None = None
    command: str = ""

    @property
    def skills(self) -> list[str]:
        return [s.skill for s in self.plan]

    def describe(self) -> str:
        """One human sentence: what will run, or why nothing will."""
        if not self.ok:
            return f"Refused: {self.refusal}"
        parts = [
            f"{i}. {s.skill}" + (f" on {s.instance}" if s.instance else "") + f" (\u201c{s.text}\u201d)"
            for i, s in enumerate(self.plan, 1)
        ]
        n = len(self.plan)
        return f"Plan of {n} step{'s' if n > 1 else ''}: " + "; ".join(parts) + "."


@dataclass(frozen=True)
class GroundingConfig:
    """Limits and thresholds.

    The thresholds were chosen a priori and the `tune` split never needed them moved: there, the smallest
    cosine of an accepted step is 0.64 (floor 0.30) and the smallest margin 1.0 (the runner-up is always
    ruled out by the slots). The margin decides only between skills the slots cannot tell apart (two
    near-identical skills in one bundle)."""

    max_chars: int = 300
    max_steps: int = 8
    #: Lowest cosine (best phrasing) a slot-matched skill may have: a floor against nonsense that happens to
    #: contain lexicon words.
    min_cos: float = 0.30
    #: Cosine needed where the lexicon cannot read a skill's phrasings (no action or no object slot).
    fallback_cos: float = 0.80
    #: Best minus second-best combined score needed to accept a step.
    min_margin: float = 0.05
    w_action: float = 0.25
    w_object: float = 0.25
    veto_penalty: float = 1.0
    fuzzy: bool = True


# ================================================================================================ lexicon
def _inflections(base: str) -> set[str]:
    """Regular inflections of a base word (closes, closed, closing, shutting...), for the known-word set and
    as typo-correction targets."""
    out = {base}
    if base.endswith(("s", "sh", "ch", "x")):
        out.add(base + "es")
    else:
        out.add(base + "s")
    stem = base[:-1] if base.endswith("e") else base
    # one-syllable consonant-vowel-consonant words double their last letter (shut -> shutting, not open)
    one_vowel = sum(ch in "aeiou" for ch in base) == 1
    if one_vowel and len(base) >= 3 and base[-1] not in "aeiouwxy" and base[-2] in "aeiou":
        stem = base + base[-1]
    out.add(stem + "ing")
    out.add(base + "d" if base.endswith("e") else stem + "ed")
    return out


_PHRASE_WORDS = {w for p in (*D.ACTION_PHRASES, *D.OBJECT_PHRASES) for w in p}
_BASES: frozenset[str] = frozenset(
    {*D.ACTION_WORDS, *D.OBJECT_WORDS, *D.VERB_POSITION_ONLY, *D.SEPARABLE, *_PHRASE_WORDS}
)
#: Connectives, which split steps, are correction targets as well as the lexicon words.
_CONNECTIVES = frozenset(
    {"then", "after", "afterwards", "afterward", "finally", "lastly", "next", "first", "before", "followed",
     "subsequently", "please", "the", "and"}
)  # fmt: skip
#: Safety words are targets too, so that a typo cannot smuggle "slowlly" or "nevr" past the refusals.
_SAFETY_WORDS = frozenset(
    w
    for group in (D.CONTROL_WORDS, D.NEGATION_WORDS, D.SPEED_WORDS, D.FORCE_WORDS, D.PARTIAL_WORDS,
                  D.DIRECTION_WORDS, D.REPEAT_WORDS, D.NUMBER_WORDS, {w for p in D.PARTIAL_PHRASES for w in p})
    for w in group
    if len(w) >= 4
)  # fmt: skip
_CORRECTABLE: tuple[str, ...] = tuple(
    sorted({f for b in _BASES if len(b) >= 3 for f in _inflections(b)} | _CONNECTIVES | _SAFETY_WORDS)
)
_KNOWN: frozenset[str] = frozenset(
    set(_CORRECTABLE)
    | set(D.IRREGULAR)
    | D.FILLERS
    | D.LEADING_FILLERS
    | D.COMMON_WORDS
    | D.ROBOT_PARTS
    | D.CONTROL_WORDS
    | D.NEGATION_WORDS
    | D.SPEED_WORDS
    | D.FORCE_WORDS
    | D.PARTIAL_WORDS
    | D.DIRECTION_WORDS
    | D.REPEAT_WORDS
    | D.NUMBER_WORDS
    | D.UNIT_WORDS
    | D.QUALIFIER_WORDS
)


def lemma(word: str) -> str:
    """Base form of a lexicon word ("closing" -> "close", "pressed" -> "press", "drawers" -> "drawer");
    words that do not reduce to a lexicon base are returned unchanged."""
    if word in D.IRREGULAR:
        return D.IRREGULAR[word]
    if word in _BASES:
        return word
    cands: list[str] = []
    if word.endswith("ies"):
        cands.append(word[:-3] + "y")
    if word.endswith("es"):
        cands.append(word[:-2])
    if word.endswith("s"):
        cands.append(word[:-1])
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            cands += [stem, stem + "e"]
            if len(stem) > 2 and stem[-1] == stem[-2]:
                cands.append(stem[:-1])
    if word.endswith("d"):
        cands.append(word[:-1])
    for c in cands:
        if c in _BASES:
            return c
    return word


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment (Damerau-Levenshtein with adjacent transpositions) distance, or limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@lru_cache(maxsize=4096)
def typo_candidates(word: str) -> tuple[str, ...]:
    """The lexicon words an unknown word is a plausible typo of (nearest first; empty if known or far).

    Allowed: 1 edit for 4-7 letters (a swap of two adjacent letters is one edit), 2 from 8 letters, and for
    3 letters only one missing letter ("dor" -> "door"). Known words (lexicon, fillers, common English such
    as "bottom", "top", "oven") have no candidates: they are never "corrected".
    """
    if word in _KNOWN or lemma(word) in _BASES or len(word) < 3 or not word.isalpha():
        return ()
    limit = 1 if len(word) < 8 else 2
    best: dict[str, int] = {}
    for cand in _CORRECTABLE:
        if len(word) == 3:
            if len(cand) == 4 and any(cand[:i] + cand[i + 1 :] == word for i in range(4)):
                best[cand] = 1
            continue
        d = _osa_distance(word, cand, limit)
        if d <= limit:
            best[cand] = d
    if not best:
        return ()
    dmin = min(best.values())
    return tuple(sorted((c for c, d in best.items() if d == dmin), key=lambda c: (len(c), c)))


@lru_cache(maxsize=4096)
def correct_word(word: str) -> str:
    """Typo-correct one lower-case word against the lexicon ("clsoe" -> "close", "drawr" -> "drawer").

    The correction must be unique up to inflection; an ambiguous one is left alone (the step is then refused
    as unreadable, see `_read_slots`), except that a tie with a safety word resolves to the safety word
    ("slowy" -> slow/slowly, "hrad" -> hard rather than head): a typo may cost a refusal, never a check.
    """
    if word in D.TYPO_MAP:
        return D.TYPO_MAP[word]
    top = typo_candidates(word)
    if not top:
        return word
    if len({lemma(c) for c in top}) == 1:
        return top[0]
    safety = [c for c in top if c in _SAFETY_WORDS]
    return safety[0] if safety else word


# ============================================================================================ normalising
_WS = re.compile(r"[ \t\r\f\v]+")


def normalize_text(text: str) -> str:
    """NFKC, lower case, ASCII quotes/dashes, arrows and '&' as words, collapsed spaces (newlines kept)."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = re.sub(r"[\u2013\u2014\u2212]", "-", t)
    t = t.replace("\u2192", " then ").replace("->", " then ").replace("=>", " then ")
    t = t.replace("&&", " \x00 ")  # keep the shell operator visible to the injection check
    t = t.replace("&", " and ").replace("\x00", "&&")
    t = re.sub(r"\bgo ahead and\b|\bgo ahead\b", " ", t)
    t = "\n".join(_WS.sub(" ", line).strip() for line in t.split("\n"))
    return t.strip()


def _correct_text(text: str) -> str:
    """Typo-correct every word of a normalised text, keeping punctuation and layout."""
    return re.sub(r"[a-z][a-z'\-]*[a-z]|[a-z]", lambda m: _correct_token(m.group(0)), text)


def _correct_token(tok: str) -> str:
    if "-" in tok:
        return "-".join(correct_word(p) if p else p for p in tok.split("-"))
    return correct_word(tok)


# --------------------------------------------------------------------------------------- safety checks
_INJECTION = [(re.compile(p), what) for p, what in D.INJECTION_PATTERNS]
_LIST_MARKER = re.compile(r"(?:^|(?<=\s))(?:step\s*)?\(?(\d{1,2})\s*[.):]\s*(?=[a-z\-*])", re.MULTILINE)
_SPELLED_NUMBER = re.compile(
    r"\b(?:" + "|".join(sorted(D.NUMBER_WORDS)) + r")\b|\bone\s+(?:" + "|".join(sorted(D.UNIT_WORDS)) + r")\b"
    r"|\b(?:a|an)\s+(?:meter|metre|centimeter|centimetre|millimeter|millimetre|inch|foot|degree|radian)s?\b"
    r"|\b(?:" + "|".join(sorted(D.REPEAT_WORDS)) + r")\b|[°%]"
)


def _check_injection(text: str) -> str | None:
    for rx, what in _INJECTION:
        m = rx.search(text)
        if m:
            return f"it looks like {what} ({m.group(0).strip()!r}); only skill requests are accepted"
    return None


def _strip_list_markers(text: str) -> str:
    """Replace "1. a 2. b", "1) a", "step 1: a" markers with newlines when they count 1, 2, 3... in order
    (anything else stays, and its digits are refused as numbers)."""
    marks = list(_LIST_MARKER.finditer(text))
    if not marks or [int(m.group(1)) for m in marks] != list(range(1, len(marks) + 1)):
        return text
    out, last = [], 0
    for m in marks:
        out.append(text[last : m.start()])
        out.append("\n")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


_NUMBER_HINT = "; numbers, coordinates and counts are never passed to the robot (each skill finds its own target): remove it"


def _check_numbers(text: str) -> str | None:
    m = re.search(r"\d+(?:[.,]\d+)?", text)
    if m:
        return f"it contains a number ({m.group(0)!r})"
    m = _SPELLED_NUMBER.search(text)
    if m:
        return f"it contains a number or a count ({m.group(0)!r})"
    return None


# ================================================================================================ splitting
_HARD = re.compile(
    r"(?:\band\s+|,\s*)?\b(?:then|after\s+(?:that|this|which)|afterwards?|next(?!\s+to\b)|finally|lastly"
    r"|subsequently|followed\s+by|once\s+(?:that|it|you)(?:'s|'re|\s+is|\s+are)?\s+done"
    r"|when\s+(?:that|it|you)(?:'s|'re|\s+is|\s+are)?\s+done)\b"
)
_LEADING_MARKERS = re.compile(
    r"^(?:(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|fourth(?:ly)?|to\s+(?:start|begin)(?:\s+with)?"
    r"|start\s+by|begin\s+(?:by|with)|and|then|also|now|ok(?:ay)?|so)\b[\s,:]*)+"
)
_AND = re.compile(r"\s+(?:and|as\s+well\s+as|plus)\s+")
_BULLET = re.compile(r"^\s*[-*\u2022]+\s*")


@dataclass
class _Piece:
    text: str
    group: int


def _clean_piece(p: str) -> str:
    p = p.strip(" ,:'\"-")
    return _LEADING_MARKERS.sub("", p).strip(" ,:'\"-")


def _split(text: str) -> list[_Piece]:
    """Split a normalised, marker-free command into pieces; pieces of one "and" group share `group`."""
    pieces: list[_Piece] = []
    group = 0
    for line in text.split("\n"):
        line = _BULLET.sub("", line)
        for sentence in re.split(r"[;.!?]+", line):
            for hard in _HARD.split(sentence):
                commas = [c.strip() for c in hard.split(",")]
                commas = [c for c in commas if c]
                ordered: list[tuple[str, bool]] = []  # (text, joins the previous group)
                i = 0
                while i < len(commas):
                    c = commas[i]
                    # ", and place it..." / ", place it on the goal": part of the previous step's group
                    joins = bool(ordered or pieces) and bool(
                        re.match(r"and\b", c) or re.search(r"\b(?:it|them)\b", c)
                    )
                    c = re.sub(r"^and\b\s*", "", c)
                    m_before = re.match(r"before\s+(.+)$", c)
                    m_after = re.match(r"after\s+(.+)$", c)
                    if m_before and i + 1 < len(commas):  # "before X, Y" -> Y, X
                        ordered += [(commas[i + 1], False), (m_before.group(1), False)]
                        i += 2
                        continue
                    if m_after:  # "after X, Y" -> X, Y
                        ordered.append((m_after.group(1), joins))
                    elif re.search(r"\s+after\s+", c):  # "A after B" -> B, A
                        a, b = re.split(r"\s+after\s+", c, maxsplit=1)
                        ordered += [(b, joins), (a, False)]
                    elif re.search(r"\s+before\s+", c):  # "A before B" -> A, B
                        a, b = re.split(r"\s+before\s+", c, maxsplit=1)
                        ordered += [(a, joins), (b, False)]
                    else:
                        ordered.append((c, joins))
                    i += 1
                for c, joins in ordered:
                    if not joins:
                        group += 1
                    for part in _AND.split(" " + c + " "):
                        part = _clean_piece(part)
                        if part:
                            pieces.append(_Piece(part, group))
    return pieces


def split_steps(command: str) -> list[str]:
    """The steps a command splits into, before grounding: one string per step, an "and" group joined by
    " and " (it may still become several steps when grounded). Exposed for tests and debugging."""
    text = _strip_list_markers(normalize_text(command))
    groups: dict[int, list[str]] = {}
    for p in _split(text):
        groups.setdefault(p.group, []).append(p.text)
    return [" and ".join(parts) for parts in groups.values()]


# ================================================================================================== slots
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_PRONOUNS = frozenset({"it", "them"})
#: Articles and particles: neither content words (`_Slots.rest`) nor slots.
_NON_CONTENT = frozenset({"the", "a", "an", "up", "out", "in", "down", "over", "on", "off"})


@dataclass
class _Slots:
    """What one step (or one skill phrasing) says, in lexicon classes."""

    tokens: list[str]
    actions: set[str] = field(default_factory=set)
    action_words: list[str] = field(default_factory=list)
    objects: set[str] = field(default_factory=set)  # objects the skill must own
    object_words: list[str] = field(default_factory=list)
    source_objects: set[str] = field(default_factory=set)
    qualifiers: dict[str, list[str]] = field(default_factory=dict)
    pronoun: bool = False
    flags: dict[str, list[str]] = field(default_factory=dict)  # safety class -> words
    #: Content words that are neither action nor object (nor filler): a part with any of these is not a bare
    #: verb or a bare object, so it does not borrow its neighbour's slots ("open the fridge" stays unknown).
    rest: list[str] = field(default_factory=list)
    #: The verb of a separable action ("turn" of "turn the tap on"), so that "..., then off" can reuse it.
    separable_verb: str | None = None

    @property
    def polarity(self) -> int | None:
        """+1, -1, 0 (both: contradictory) or None (no strong action)."""
        signs = {D.POLARITY[a] for a in self.actions if a in D.POLARITY}
        if not signs:
            return None
        return signs.pop() if len(signs) == 1 else 0

    def flag(self, kind: str, word: str) -> None:
        self.flags.setdefault(kind, []).append(word)


_MAX_PHRASE = max(len(p) for p in (*D.ACTION_PHRASES, *D.OBJECT_PHRASES))


def _read_slots(text: str) -> _Slots:
    """The slots of one piece of normalised (typo-corrected) text. Also used on skill phrasings."""
    tokens = _TOKEN.findall(text.replace("-", " "))
    lem = [lemma(t) for t in tokens]
    s = _Slots(tokens=tokens)
    verb_pos = next((i for i, t in enumerate(tokens) if t not in D.LEADING_FILLERS), 0)
    used = [False] * len(tokens)  # consumed by an action, an object or a particle
    objects_at: list[tuple[int, int, str]] = []  # (start, end, class)

    # Partial-amount phrases first ("a little"), so that "little" is not read as a qualifier.
    for i in range(len(lem)):
        for ph in D.PARTIAL_PHRASES:
            if tuple(lem[i : i + len(ph)]) == ph:
                s.flag("parameter", " ".join(ph))
                for k in range(i, i + len(ph)):
                    used[k] = True

    i = 0
    while i < len(tokens):
        if used[i]:
            i += 1
            continue
        # multi-word actions and objects, longest first
        matched = False
        for n in range(min(_MAX_PHRASE, len(tokens) - i), 1, -1):
            key = tuple(lem[i : i + n])
            if key in D.ACTION_PHRASES:
                s.actions.add(D.ACTION_PHRASES[key])
                s.action_words.append(" ".join(tokens[i : i + n]))
                matched = True
            elif key in D.OBJECT_PHRASES:
                objects_at.append((i, i + n, D.OBJECT_PHRASES[key]))
                matched = True
            if matched:
                for k in range(i, i + n):
                    used[k] = True
                i += n
                break
        if matched:
            continue
        w, t = lem[i], tokens[i]
        particle = _particle(tokens, used, i, D.SEPARABLE[w]) if w in D.SEPARABLE else None
        if w in D.VERB_POSITION_ONLY and i == verb_pos:
            s.actions.add(D.VERB_POSITION_ONLY[w])
            s.action_words.append(t)
            used[i] = True
        elif w in D.OBJECT_WORDS:
            objects_at.append((i, i + 1, D.OBJECT_WORDS[w]))
            used[i] = True
        elif particle is not None:
            s.actions.add(D.SEPARABLE[w][tokens[particle]])
            s.action_words.append(f"{t} {tokens[particle]}")
            s.separable_verb = w
            used[i] = used[particle] = True
        elif w in D.ACTION_WORDS:
            s.actions.add(D.ACTION_WORDS[w])
            s.action_words.append(t)
            if w in D.SEPARABLE:
                s.separable_verb = w
            used[i] = True
        elif t in _PRONOUNS:
            s.pronoun = True
        elif t in D.CONTROL_WORDS:
            s.flag("control", t)
        elif t in D.NEGATION_WORDS or t.endswith("n't"):
            s.flag("negation", t)
        elif t in D.SPEED_WORDS:
            s.flag("speed", t)
        elif t in D.FORCE_WORDS or t in D.PARTIAL_WORDS:
            s.flag("parameter", t)
        elif len({lemma(c) for c in typo_candidates(t)}) > 1:
            s.flag("typo", t)  # "pck": pick or puck? never guess
        elif not (t in D.FILLERS or t in D.QUALIFIER_WORDS or t in D.DIRECTION_WORDS or t in _NON_CONTENT):
            s.rest.append(t)
        i += 1

    # Qualifiers stand right before an object ("the left drawer"); the same words elsewhere are directions.
    starts = {start: cls for start, _, cls in objects_at}
    for i, t in enumerate(tokens):
        if used[i]:
            continue
        if t in D.QUALIFIER_WORDS:
            j = i
            while j < len(tokens) and tokens[j] in D.QUALIFIER_WORDS:
                j += 1
            if j in starts:
                s.qualifiers.setdefault(starts[j], []).append(t)
                continue
        if t in D.DIRECTION_WORDS:
            # Judged once the skill is known: a direction its own meaning implies ("push the drawer back" is
            # closing it) is understood; any other is a parameter the skills do not take (_ground_one).
            s.flag("direction", t)

    for start, end, cls in objects_at:
        before = tokens[max(0, start - 3) : start]
        if any(b in D.SOURCE_PREPOSITIONS for b in before) or " out of " in f" {' '.join(before)} ":
            s.source_objects.add(cls)
        else:
            s.objects.add(cls)
        s.object_words.append(" ".join(tokens[start:end]))
    return s


def _particle(tokens: list[str], used: list[bool], i: int, table: dict[str, str]) -> int | None:
    """Index of a separable particle of the verb at i ("turn the tap on"), if any, before the next verb."""
    for j in range(i + 1, len(tokens)):
        if used[j]:
            continue
        if tokens[j] in table:
            return j
        if lemma(tokens[j]) in D.ACTION_WORDS and tokens[j] not in D.OBJECT_WORDS:
            return None
    return None


# ================================================================================================= grounder
@dataclass
class _Frame:
    """A skill's slots, read from its phrasings."""

    card: SkillCard
    phrasings: list[str]
    actions: set[str]
    objects: set[str]
    polarity: int | None


@dataclass
class _Candidate:
    """How one skill fares against one step."""

    index: int
    frame: _Frame
    passes: bool
    score: float
    object_conflict: bool  # the step names an object the skill does not own
    polarity_conflict: bool  # the step asks for the opposite of the skill
    object_ok: bool

    @property
    def name(self) -> str:
        return self.frame.card.name


@dataclass
class _StepOutcome:
    ok: bool
    text: str
    skill: str | None = None
    score: float = 0.0
    margin: float = 0.0
    reason: str | None = None
    message: str | None = None
    candidates: list[str] = field(default_factory=list)
    instance: str | None = None


def _first_sentence(description: str) -> str:
    """The part of a description that says what to do ("Push and close a drawer." of the paper's
    "Push and close a drawer. Randomize the drawer positions.")."""
    head = re.split(r"(?<=[a-z])\.\s", description.strip(), maxsplit=1)[0]
    return normalize_text(head).rstrip(".!? ")


class Grounder:
    """Grounds commands against one closed world of skills. Build once per bundle; `ground` is re-entrant.

    `embed_fn` maps a list of texts to unit rows [N, 384] (default `language.embed_cached`: a cache hit never
    loads the model). `extra_phrasings` adds grounding_data.EXTRA_PHRASINGS for registry skills the cards
    contain (phrasings only: they cannot add a skill).
    """

    def __init__(
        self,
        skills: Sequence[SkillCard],
        *,
        embed_fn: EmbedFn | None = None,
        config: GroundingConfig | None = None,
        extra_phrasings: bool = True,
        transitions: Transitions | None = None,
    ) -> None:
        """`transitions`: the bundle's verified skill-to-skill transitions (Bundle.transitions); a plan with
        another pair is refused ("unverified"). None: plans are not checked for them."""
        self.transitions = transitions
        if not skills:
            raise ValueError("the grounder needs at least one skill card (the bundle's skills)")
        names = [c.name for c in skills]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate skill names in the closed world: {names}")
        if embed_fn is None:
            from legion_core.contracts.language import embed_cached

            embed_fn = embed_cached
        self.embed_fn: EmbedFn = embed_fn
        self.config = config or GroundingConfig()
        self.warnings: list[str] = []
        self._frames: list[_Frame] = []
        texts: list[str] = []
        owner: list[int] = []
        for k, card in enumerate(skills):
            phrasings = list(dict.fromkeys(_first_sentence(d) for d in card.descriptions if d.strip()))
            if extra_phrasings:
                phrasings += [p for p in D.EXTRA_PHRASINGS.get(card.name, ()) if p not in phrasings]
            if not phrasings:
                raise ValueError(f"skill {card.name!r} has no description to ground against")
            actions: set[str] = set()
            objects: set[str] = set()
            signs: set[int] = set()
            for p in phrasings:
                sl = _read_slots(p)
                actions |= sl.actions
                objects |= sl.objects
                if sl.polarity is not None:
                    signs.add(sl.polarity)
            if not objects and card.object_label in D.LABEL_TO_OBJECT:
                objects.add(D.LABEL_TO_OBJECT[card.object_label])
            polarity = signs.pop() if len(signs) == 1 and 0 not in signs else None
            if not actions or not objects:
                self.warnings.append(
                    f"skill {card.name!r}: the lexicon reads no {'action' if not actions else 'object'} in its "
                    f"phrasings; it is matched by embedding only (cosine >= {self.config.fallback_cos})"
                )
            self._frames.append(_Frame(card, phrasings, actions, objects, polarity))
            texts += phrasings
            owner += [k] * len(phrasings)
        self._phrase_vecs = np.asarray(self.embed_fn(texts), dtype=np.float64)
        self._owner = np.asarray(owner)

    @property
    def skill_names(self) -> list[str]:
        return [f.card.name for f in self._frames]

    # ----------------------------------------------------------------------------------------- public
    def ground(self, command: str, scene: Scene | None = None) -> GroundingResult:
        """Ground a command into a plan, or refuse it (see the module docstring for the rules)."""
        cfg = self.config
        if not isinstance(command, str):
            return _refuse(str(command), "empty", "the command is not text")
        text = normalize_text(command)
        if not re.search(r"[a-z0-9]", text):
            return _refuse(
                command, "empty", "the command is empty; say which skill to run, e.g. 'close the drawer'"
            )
        if len(command.strip()) > cfg.max_chars:
            return _refuse(
                command,
                "too_long",
                f"the command has {len(command.strip())} characters, more than the {cfg.max_chars} accepted; "
                "give at most a few short steps",
            )
        why = _check_injection(text)
        if why:
            return _refuse(command, "injection", why)
        text = _strip_list_markers(text)
        why = _check_numbers(text)
        if why:
            return _refuse(command, "number", why + _NUMBER_HINT)
        if cfg.fuzzy:
            text = _correct_text(text)
            why = _check_numbers(text)  # "fivve centimetres" is a number once corrected
            if why:
                return _refuse(command, "number", why + _NUMBER_HINT)
        pieces = [p for p in _split(text) if any(t not in D.FILLERS for t in _TOKEN.findall(p.text))]
        if not pieces:
            return _refuse(command, "empty", "the command names nothing to do; e.g. 'close the drawer'")
        n_groups = len({p.group for p in pieces})
        if n_groups > cfg.max_steps:
            return _refuse(
                command, "too_many_steps", f"it has {n_groups} steps; at most {cfg.max_steps} are run"
            )

        steps, failure = self._ground_pieces(pieces, scene)
        if failure is not None:
            k, n, out = failure
            where = f"step {k} of {n} (\u201c{out.text}\u201d)" if n > 1 else f"\u201c{out.text}\u201d"
            msg = f"{where}: {out.message}"
            if n > 1:
                msg += "; the whole command is refused, nothing will run"
            return GroundingResult(False, [], msg, out.candidates, out.reason, k, command)
        if len(steps) > cfg.max_steps:
            return _refuse(
                command, "too_many_steps", f"it has {len(steps)} steps; at most {cfg.max_steps} are run"
            )
        bad = self.transitions.unverified_step([s.skill for s in steps]) if self.transitions else None
        if bad is not None:
            k, why = bad
            msg = f"step {k + 1} of {len(steps)} (\u201c{steps[k].text}\u201d): {why}; the whole command is refused, nothing will run"
            return GroundingResult(False, [], msg, [steps[k].skill], "unverified", k + 1, command)
        return GroundingResult(True, steps, None, [], None, None, command)

    # -------------------------------------------------------------------------------------- internals
    def _ground_pieces(
        self, pieces: list[_Piece], scene: Scene | None
    ) -> tuple[list[PlanStep], tuple[int, int, _StepOutcome] | None]:
        slots = [_read_slots(p.text) for p in pieces]
        texts = [p.text for p in pieces]
        _borrow(pieces, slots, texts)
        vecs = self._embed([_embed_text(t) for t in texts])
        outcomes = [self._ground_one(t, s, v, scene) for t, s, v in zip(texts, slots, vecs)]

        groups: list[list[int]] = []
        for i, p in enumerate(pieces):
            if groups and pieces[groups[-1][0]].group == p.group:
                groups[-1].append(i)
            else:
                groups.append([i])

        steps: list[PlanStep] = []
        n_total = len(groups)
        for gi, idx in enumerate(groups):
            outs = [outcomes[i] for i in idx]
            bare_failures = all(
                o.ok or (o.reason in ("ambiguous", "no_action", "no_object") and not slots[i].rest)
                for i, o in zip(idx, outs)
            )
            if not all(o.ok for o in outs) and len(idx) > 1 and bare_failures:
                # "push and open the window": a bare part is ambiguous alone, the whole group is not. Never
                # when a part failed for another reason ("open the door and paint it" stays refused).
                whole_text = " and ".join(pieces[i].text for i in idx)
                whole_slots = _read_slots(whole_text)
                if whole_slots.pronoun and gi > 0:
                    prev = slots[groups[gi - 1][-1]]
                    whole_slots.objects |= prev.objects
                whole = self._ground_one(
                    whole_text, whole_slots, self._embed([_embed_text(whole_text)])[0], scene
                )
                if whole.ok:
                    outs = [whole]
            bad = next((o for o in outs if not o.ok), None)
            if bad is not None:
                return [], (gi + 1, n_total, bad)
            for o in outs:
                assert o.skill is not None
                if steps and len(outs) > 1 and steps[-1].skill == o.skill and o is not outs[0]:
                    last = steps[-1]  # "pick up the puck and place it on the goal": one step
                    steps[-1] = PlanStep(
                        last.skill, f"{last.text} and {o.text}", min(last.score, o.score),
                        min(last.margin, o.margin), last.instance,
                    )  # fmt: skip
                else:
                    steps.append(PlanStep(o.skill, o.text, o.score, o.margin, o.instance))
        return steps, None

    def _embed(self, texts: list[str]) -> np.ndarray:
        vecs = np.asarray(self.embed_fn(texts), dtype=np.float64)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)

    def _ground_one(self, text: str, s: _Slots, vec: np.ndarray, scene: Scene | None) -> _StepOutcome:
        """One step -> one skill, or a refusal with its class, message and candidates."""
        cfg = self.config
        for kind, explain in (
            (
                "control",
                "stop, pause and homing are the operator's e-stop and the sequencer's job, not a skill",
            ),
            ("negation", "negated requests are not interpreted; say only what the robot should do"),
            ("speed", "the skills run at their own speed; speed changes are not accepted"),
            ("parameter", "the skills take no force, amount or direction; say only which skill to run"),
            ("typo", "a word could be a typo of several words; retype it"),
        ):
            if kind in s.flags:
                words = ", ".join(dict.fromkeys(s.flags[kind]))
                if kind == "typo":
                    alts = " or ".join(dict.fromkeys(lemma(c) for c in typo_candidates(s.flags[kind][0])))
                    words = f"{words}: {alts}?"
                reason = "ambiguous" if kind == "typo" else kind
                return _StepOutcome(False, text, reason=reason, message=f"{explain} ({words!r})")

        sims = self._phrase_vecs @ vec
        cos = np.full(len(self._frames), -1.0)
        np.maximum.at(cos, self._owner, sims)
        polarity = s.polarity
        rows: list[_Candidate] = []
        for k, f in enumerate(self._frames):
            obj_conflict = bool(f.objects) and bool(s.objects - f.objects)
            pol_conflict = polarity is not None and (
                polarity == 0 or (f.polarity is not None and f.polarity != polarity)
            )
            act_match = bool(s.actions & f.actions)
            action_ok = act_match if f.actions else cos[k] >= cfg.fallback_cos
            object_ok = bool(s.objects & f.objects) if f.objects else cos[k] >= cfg.fallback_cos
            union = s.objects | f.objects
            jacc = len(s.objects & f.objects) / len(union) if union else 0.0
            score = float(cos[k] + cfg.w_action * act_match + cfg.w_object * jacc)
            passes = (
                not obj_conflict and not pol_conflict and action_ok and object_ok and cos[k] >= cfg.min_cos
            )
            rows.append(_Candidate(k, f, passes, score, obj_conflict, pol_conflict, object_ok))

        passing = sorted((r for r in rows if r.passes), key=lambda r: -r.score)
        if passing:
            best = passing[0]
            others = [r.score if r.passes else r.score - cfg.veto_penalty for r in rows if r is not best]
            second = max(others) if others else best.score - cfg.veto_penalty
            margin = best.score - second
            signs = {r.frame.polarity for r in passing} - {None}
            if polarity is None and len(signs) > 1:
                # "rotate the tap", "push the window": opposite skills fit and nothing says which one
                cands = [r.name for r in passing if r.frame.polarity is not None]
                return _StepOutcome(
                    False, text, reason="ambiguous", candidates=cands,
                    message=f"it does not say which way: did you mean {_or(cands)}?",
                )  # fmt: skip
            if len(passing) > 1 and margin < cfg.min_margin:
                cands = [r.name for r in passing if best.score - r.score < cfg.min_margin]
                return _StepOutcome(
                    False, text, reason="ambiguous", candidates=cands,
                    message=f"it is ambiguous: did you mean {_or(cands)}?",
                )  # fmt: skip
            skill = best.frame.card
            extra = [
                w
                for w in s.flags.get("direction", [])
                if w not in D.IMPLIED_DIRECTIONS.get(best.frame.polarity, ())
            ]
            if extra:
                words = ", ".join(dict.fromkeys(extra))
                return _StepOutcome(
                    False, text, reason="parameter", candidates=[skill.name],
                    message=f"the skills take no force, amount or direction; say only which skill to run ({words!r})",
                )  # fmt: skip
            instance, why = _resolve_instance(skill, s, scene)
            if why:
                return _StepOutcome(False, text, reason="instance", message=why, candidates=[skill.name])
            return _StepOutcome(True, text, skill.name, best.score, margin, instance=instance)
        return _explain_refusal(text, s, rows, self.skill_names)


def _borrow(pieces: list[_Piece], slots: list[_Slots], texts: list[str]) -> None:
    """Fill a part's missing slots from its neighbours and resolve "it" to the previous object.

    Only *bare* parts borrow (a verb alone, an object alone, a particle alone: no other content word), so
    "close the drawer and open the fridge" does not turn into "open the drawer". A bare verb takes the
    objects of its "and" neighbours ("open and close the drawer") or of the previous step ("open the drawer,
    then close"); a bare object takes the previous action ("close the window and the drawer", "open the
    drawer, then the window"); a bare particle repeats the previous separable verb ("turn the tap on, then
    off").
    """
    for i, s in enumerate(slots):
        same = [j for j in range(len(pieces)) if pieces[j].group == pieces[i].group and j != i]
        earlier = list(range(i - 1, -1, -1))
        if s.pronoun and i > 0:
            prev = next((slots[j] for j in earlier if slots[j].objects), None)
            if prev is not None:
                new = prev.objects - s.objects
                s.objects |= prev.objects
                s.object_words = prev.object_words[:1] + s.object_words
                if new and prev.object_words:
                    texts[i] = re.sub(r"\b(it|them)\b", "the " + prev.object_words[0], texts[i], count=1)
        if s.rest:
            continue
        if not s.actions and not s.objects and i > 0:
            particle = next((t for t in s.tokens if t in ("on", "off", "out")), None)
            prev = slots[i - 1]
            if particle and prev.separable_verb and particle in D.SEPARABLE[prev.separable_verb]:
                s.actions.add(D.SEPARABLE[prev.separable_verb][particle])
                s.action_words.append(f"{prev.separable_verb} {particle}")
                s.objects |= prev.objects
                obj = prev.object_words[0] if prev.object_words else ""
                texts[i] = f"{prev.separable_verb} the {obj} {particle}".replace("  ", " ")
            continue
        if not s.objects and not s.pronoun and s.actions:
            src = (
                next((slots[j] for j in same if j > i and slots[j].objects), None)
                or next((slots[j] for j in reversed(same) if j < i and slots[j].objects), None)
                or next((slots[j] for j in earlier if slots[j].objects), None)
            )
            if src is not None:
                s.objects |= src.objects
                s.qualifiers.update(src.qualifiers)
                texts[i] = f"{texts[i]} the {src.object_words[0]}"
        if s.objects and not s.actions:
            src = (
                next((slots[j] for j in reversed(same) if j < i and slots[j].actions), None)
                or next((slots[j] for j in same if j > i and slots[j].actions), None)
                or next((slots[j] for j in earlier if slots[j].actions), None)
            )
            if src is not None:
                s.actions |= src.actions
                s.action_words += src.action_words
                texts[i] = f"{src.action_words[0]} {texts[i]}"


def _embed_text(text: str) -> str:
    """The text that is embedded for a step: its words without politeness fillers."""
    words = [t for t in _TOKEN.findall(text) if t not in D.LEADING_FILLERS or t in ("then",)]
    return " ".join(words) or text


def _resolve_instance(card: SkillCard, s: _Slots, scene: Scene | None) -> tuple[str | None, str | None]:
    """(instance id, None) or (None, why refused). Qualifiers only select among the scene's own ids."""
    quals = sorted({q for qs in s.qualifiers.values() for q in qs})
    if scene is None:
        if quals:
            return None, (
                f"{' '.join(quals)!r} selects one of several objects, but no scene is available to tell which "
                "one; without a scene only commands that name no particular instance are run"
            )
        return None, None
    found = scene.instances(card.object_label)
    if quals:
        found = [o for o in found if set(quals) <= o.attributes]
    what = f"{' '.join(quals)} {card.object_label}".strip()
    if not found:
        return None, f"the scene has no {what}"
    if len(found) > 1:
        ids = ", ".join(o.instance_id for o in found)
        return None, f"the scene has several {what} ({ids}); say which one (e.g. left/right)"
    return found[0].instance_id, None


def _explain_refusal(text: str, s: _Slots, rows: list[_Candidate], names: list[str]) -> _StepOutcome:
    """Why no skill fits, in the operator's words, with the skills they may have meant."""
    by_score = sorted(rows, key=lambda r: -r.score)
    verb = s.action_words[0] if s.action_words else None
    obj = " and ".join(dict.fromkeys(s.object_words)) if s.object_words else None
    if not s.actions and not s.objects:
        return _StepOutcome(
            False, text, reason="unknown",
            message=f"it matches no skill of this bundle (it can: {', '.join(names)})",
        )  # fmt: skip
    if not s.objects:
        cands = [r.name for r in by_score if s.actions & r.frame.actions and not r.polarity_conflict][:3]
        hint = f"; did you mean {_or(cands)}?" if cands else ""
        return _StepOutcome(
            False, text, reason="no_object", candidates=cands,
            message=f"it names no object this bundle knows (what should I {verb}?){hint}",
        )  # fmt: skip
    same_object = [r for r in by_score if not r.object_conflict and r.object_ok]
    if not s.actions:
        cands = [r.name for r in same_object][:3]
        unknown_words = f" ({' '.join(s.rest)!r} is not an action this bundle knows)" if s.rest else ""
        hint = f"; did you mean {_or(cands)}?" if cands else ""
        return _StepOutcome(
            False, text, reason="no_action", candidates=cands,
            message=f"it names no action{unknown_words} for the {obj}{hint}",
        )  # fmt: skip
    if s.polarity == 0:
        words = ", ".join(s.action_words)
        return _StepOutcome(
            False, text, reason="ambiguous",
            message=f"it asks for opposite actions at once ({words}); say one of them",
        )  # fmt: skip
    known_objects = set().union(*(r.frame.objects for r in rows))
    unknown_objects = [w for w in dict.fromkeys(s.object_words) if lemma(w.split()[-1]) in D.OBJECT_WORDS
                       and D.OBJECT_WORDS[lemma(w.split()[-1])] not in known_objects]  # fmt: skip
    if unknown_objects:
        return _StepOutcome(
            False, text, reason="unknown",
            message=f"no skill of this bundle works with the {' or the '.join(unknown_objects)}",
        )  # fmt: skip
    if not same_object and len(s.objects) > 1:
        return _StepOutcome(
            False, text, reason="unknown",
            message=f"no skill of this bundle acts on the {' and the '.join(dict.fromkeys(s.object_words))} together",
        )  # fmt: skip
    opposite = [r for r in same_object if r.polarity_conflict]
    if same_object and len(opposite) == len(same_object):
        cands = [r.name for r in opposite]
        return _StepOutcome(
            False, text, reason="opposite", candidates=cands,
            message=f"no skill of this bundle can {verb} the {obj}: {_or(cands)} does the opposite",
        )  # fmt: skip
    if len(same_object) >= 2:
        cands = [r.name for r in same_object][:3]
        return _StepOutcome(
            False, text, reason="ambiguous", candidates=cands,
            message=f"no skill of this bundle does '{verb}' with the {obj}; did you mean {_or(cands)}?",
        )  # fmt: skip
    cands = [r.name for r in same_object]
    hint = f" (its skill for the {obj} is {cands[0]})" if cands else ""
    return _StepOutcome(
        False, text, reason="unknown", candidates=cands,
        message=f"no skill of this bundle can {verb} the {obj}{hint}",
    )  # fmt: skip


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _refuse(command: str, reason: str, why: str) -> GroundingResult:
    return GroundingResult(False, [], why[0].upper() + why[1:] + ".", [], reason, None, command)


def ground(command: str, skills: Sequence[SkillCard], **kwargs: Any) -> GroundingResult:
    """One-shot convenience: `Grounder(skills, **kwargs).ground(command)` (build a Grounder to reuse it)."""
    scene = kwargs.pop("scene", None)
    return Grounder(skills, **kwargs).ground(command, scene)


def timed_ground(
    grounder: Grounder, command: str, scene: Scene | None = None
) -> tuple[GroundingResult, float]:
    """(result, seconds) — for the bench."""
    t0 = time.perf_counter()
    res = grounder.ground(command, scene)
    return res, time.perf_counter() - t0


__all__ = [
    "REASONS",
    "GroundingConfig",
    "GroundingResult",
    "Grounder",
    "PlanStep",
    "Scene",
    "SceneObject",
    "SkillCard",
    "correct_word",
    "typo_candidates",
    "ground",
    "lemma",
    "normalize_text",
    "skill_cards_from_bundle",
    "skill_cards_from_registry",
    "split_steps",
    "timed_ground",
]
