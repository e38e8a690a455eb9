"""Word lists for the operator-command grounder (`legion_core.runtime.grounding`), kept apart from its logic.

Why a lexicon at all: MiniLM puts "open the drawer" 0.905 from "close the drawer", so the embedding alone
cannot tell opposites apart. The grounder therefore reads two *slots* from every step and from every skill
phrasing — the action class (with a polarity: open/turn on/counter-clockwise/unplug are "+", their
antonyms "-") and the object class — and only lets a skill win when its slots agree with the command's.
Everything here is plain data; how it is used is documented in `legion_core.runtime.grounding`.

Conventions: all entries are lower case; multi-word entries are tuples of *lemmas* (see `lemma` in
grounding.py); a surface word's inflections (closing, closed, presses...) are generated, not listed.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------------------ actions
#: Action class of each base verb / particle. Several verbs share a class (its synonyms); a skill's action
#: set is the union of the classes found in its phrasings, so the data need not name skills.
ACTION_WORDS: dict[str, str] = {
    # opening / closing (strong polarity)
    "open": "open",
    "unclose": "open",
    "close": "close",
    "shut": "close",
    # faucet (strong polarity via the particles, see SEPARABLE)
    "rotate": "rotate",
    "turn": "rotate",
    "twist": "rotate",
    "spin": "rotate",
    "crank": "rotate",
    "clockwise": "cw",
    "counterclockwise": "ccw",
    "anticlockwise": "ccw",
    "ccw": "ccw",
    # pressing
    "press": "press",
    "hit": "press",
    "click": "press",
    "depress": "press",
    "punch": "press",
    # pushing / sliding / pulling (weak: the object decides what they mean)
    "push": "push",
    "shove": "push",
    "nudge": "push",
    "slide": "slide",
    "pull": "pull",
    "yank": "pull",
    "tug": "pull",
    "drag": "pull",
    "swing": "swing",
    # pick and place
    "pick": "pick",
    "grab": "pick",
    "grasp": "pick",
    "lift": "pick",
    "take": "pick",
    "place": "place",
    "put": "place",
    "drop": "place",
    "deposit": "place",
    "carry": "place",
    "bring": "place",
    "transport": "place",
    "deliver": "place",
    # reaching
    "reach": "reach",
    "go": "reach",
    "approach": "reach",
    "touch": "reach",
    "head": "reach",
    "travel": "reach",
    "navigate": "reach",
    "move": "move",
    # plugging
    "unplug": "unplug",
    "disconnect": "unplug",
    "remove": "unplug",
    "extract": "unplug",
    "detach": "unplug",
    "insert": "insert",
    "connect": "insert",
    "reinsert": "insert",
}

#: Multi-word actions (tuples of lemmas), matched longest first, before the single words.
ACTION_PHRASES: dict[tuple[str, ...], str] = {
    ("turn", "on"): "turn_on",
    ("switch", "on"): "turn_on",
    ("turn", "off"): "turn_off",
    ("switch", "off"): "turn_off",
    ("shut", "off"): "turn_off",
    ("counter", "clockwise"): "ccw",
    ("anti", "clockwise"): "ccw",
    ("push", "down"): "press",
    ("press", "down"): "press",
    ("take", "out"): "unplug",
    ("plug", "in"): "insert",
    ("pick", "up"): "pick",
}

#: Verbs whose particle may come after the object ("turn the tap on", "take the peg out").
#: verb lemma -> {particle: action class}
SEPARABLE: dict[str, dict[str, str]] = {
    "turn": {"on": "turn_on", "off": "turn_off"},
    "switch": {"on": "turn_on", "off": "turn_off"},
    "shut": {"off": "turn_off"},
    "take": {"out": "unplug"},
}

#: Words that are verbs only in verb position (first content word) and nouns elsewhere:
#: "tap the button" vs "turn on the tap", "plug the peg in" vs "pull the plug out".
VERB_POSITION_ONLY: dict[str, str] = {"tap": "press", "plug": "insert", "set": "place", "hammer": "hammer"}

#: Strong polarity of action classes. Two strong classes of opposite sign never match: that is what keeps
#: "close the drawer" away from drawer-open although MiniLM puts them 0.9 apart.
POLARITY: dict[str, int] = {
    "open": +1,
    "turn_on": +1,
    "ccw": +1,
    "unplug": +1,
    "close": -1,
    "turn_off": -1,
    "cw": -1,
    "insert": -1,
}

# ------------------------------------------------------------------------------------------------ objects
OBJECT_WORDS: dict[str, str] = {
    "drawer": "drawer",
    "window": "window",
    "sash": "window",
    "door": "door",
    "button": "button",
    "pushbutton": "button",
    "faucet": "faucet",
    "tap": "faucet",
    "water": "faucet",
    "spigot": "faucet",
    "peg": "peg",
    "plug": "peg",
    "puck": "puck",
    "disc": "puck",
    "disk": "puck",
    "goal": "goal",
    "target": "goal",
    "marker": "goal",
    "destination": "goal",
    # objects of registry skills that are often outside the closed world: naming them lets the grounder
    # refuse "put the puck on the shelf" instead of silently dropping "shelf"
    "shelf": "shelf",
    "hammer": "hammer",
    "nail": "nail",
    "stick": "stick",
    "container": "container",
    "handle": "handle",
    "hole": "hole",
    "wall": "wall",
}

#: Multi-word objects (lemmas). "faucet handle" is the faucet, not the handle-press skill's handle.
OBJECT_PHRASES: dict[tuple[str, ...], str] = {
    ("faucet", "handle"): "faucet",
    ("tap", "handle"): "faucet",
    ("water", "tap"): "faucet",
    ("door", "handle"): "door",
    ("drawer", "handle"): "drawer",
    ("window", "handle"): "window",
    ("goal", "position"): "goal",
    ("target", "position"): "goal",
    ("goal", "marker"): "goal",
    ("target", "marker"): "goal",
    ("goal", "area"): "goal",
    ("target", "area"): "goal",
    ("hockey", "puck"): "puck",
    ("push", "button"): "button",
}

#: Object labels a camera pipeline reports (TaskSpec.object_label) -> object class; used when a skill's
#: phrasings name no object at all.
LABEL_TO_OBJECT: dict[str, str] = {
    "drawer_handle": "drawer",
    "window_handle": "window",
    "door_handle": "door",
    "faucet_handle": "faucet",
    "button": "button",
    "peg": "peg",
    "puck": "puck",
    "hammer": "hammer",
    "stick": "stick",
    "handle": "handle",
}

#: Parts of the robot: known words (never typo-corrected) that are not objects to act on.
ROBOT_PARTS = frozenset(
    {"gripper", "arm", "hand", "robot", "effector", "tool", "finger", "claw", "yourself", "tcp", "wrist"}
)

#: Prepositions after which an object is where something comes FROM; such objects do not have to belong to
#: the skill ("remove the peg from the socket").
SOURCE_PREPOSITIONS = frozenset({"from"})

# ------------------------------------------------------------------------------ safety and parameter words
#: Words that ask the robot to stop/pause/home: that is the operator's e-stop and the sequencer's job, never
#: a plan. Refused (class "control").
CONTROL_WORDS = frozenset(
    {"stop", "halt", "pause", "abort", "cancel", "freeze", "emergency", "estop", "resume", "reset", "restart",
     "home", "wait", "undo", "shutdown"}
)  # fmt: skip

NEGATION_WORDS = frozenset({"not", "don't", "dont", "never", "no", "nor", "neither", "without", "nothing"})

SPEED_WORDS = frozenset(
    {"slow", "slowly", "slower", "slowest", "quick", "quickly", "quicker", "fast", "faster", "fastest",
     "rapid", "rapidly", "speed", "speedy", "hurry", "asap", "swift", "swiftly", "velocity", "immediately",
     "leisurely"}
)  # fmt: skip

FORCE_WORDS = frozenset(
    {"hard", "harder", "gently", "gentle", "softly", "firmly", "forcefully", "force", "strongly", "lightly",
     "carefully", "violently", "slam"}
)  # fmt: skip

PARTIAL_WORDS = frozenset(
    {"half", "halfway", "quarter", "partially", "partly", "slightly", "somewhat", "almost", "nearly"}
)
PARTIAL_PHRASES: tuple[tuple[str, ...], ...] = (
    ("a", "little"),
    ("a", "bit"),
    ("a", "tad"),
    ("little", "bit"),
)

#: Directions a skill cannot take as a parameter ("push the puck to the left"). left/right before an object
#: noun are instance qualifiers instead ("the left drawer").
DIRECTION_WORDS = frozenset(
    {"left", "right", "forward", "forwards", "backward", "backwards", "back", "upward", "upwards", "downward",
     "downwards", "away", "closer", "nearer", "further", "farther", "toward", "towards"}
)  # fmt: skip

#: Directions that a skill's own meaning implies, by the skill's polarity (POLARITY): closing pushes the drawer
#: or window *back* ("push the drawer back in" is drawer-close). Any other direction stays a refused
#: parameter ("push the puck back", "open the drawer to the left").
IMPLIED_DIRECTIONS: dict[int, frozenset[str]] = {-1: frozenset({"back", "backward", "backwards"})}

#: Counts. "times" alone too: it is a count whose number was mistyped ("there times").
REPEAT_WORDS = frozenset({"twice", "thrice", "repeatedly", "times"})

#: Spelled-out numbers (refused like digits: the grounder never passes a number through). "one" only counts
#: before a unit or "time(s)" ("the one on the left" is a pronoun).
NUMBER_WORDS = frozenset(
    {"zero", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
     "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "dozen"}
)  # fmt: skip
UNIT_WORDS = frozenset(
    {"m", "cm", "mm", "meter", "meters", "metre", "metres", "centimeter", "centimeters", "centimetre",
     "centimetres", "millimeter", "millimeters", "millimetre", "millimetres", "inch", "inches", "foot", "feet",
     "degree", "degrees", "deg", "radian", "radians", "rad", "percent", "second", "seconds", "sec", "secs",
     "minute", "minutes", "time", "times", "newton", "newtons"}
)  # fmt: skip

#: Words that pick one object instance when they stand right before the object noun ("the left drawer",
#: "the red button"). They only ever select among the scene's own instance ids (see grounding.Scene).
QUALIFIER_WORDS = frozenset(
    {"left", "right", "top", "bottom", "upper", "lower", "front", "back", "rear", "middle", "center", "centre",
     "near", "far", "nearest", "closest", "farthest", "furthest", "first", "second", "third", "last", "other",
     "red", "green", "blue", "yellow", "black", "white", "orange", "purple", "grey", "gray", "big", "small",
     "large", "little", "tall", "short"}
)  # fmt: skip

# ---------------------------------------------------------------------------------------------- injection
#: (regex, what it looks like). Checked on the whole normalised command before anything else: a command that
#: tries to reach ROS topics, a shell, code, the network or the joints directly is refused outright.
INJECTION_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\bros2?\b|\brostopic\b|\brosservice\b|\broslaunch\b|\brosrun\b", "a ROS command"),
    (r"\bpublish\w*\b|\bsubscribe\w*\b|\btopic\b|\bpub\b", "a request to publish on a topic"),
    (r"(?:^|[\s'\"(])/[a-z_~]", "a topic or file path"),
    (r"\bcmd_vel\b|\bjoint_\w+|\bjoints?\b|\btorques?\b|\bservos?\b|\bmotors?\b", "low-level joint control"),
    (r"\brm\s+-|\bsudo\b|\bchmod\b|\bkill\w*\b|\breboot\b|\bshutdown\b|\bcurl\b|\bwget\b", "a shell command"),
    (r"\bbash\b|\bshell\b|\bterminal\b|\bscript\b|\bpython\d?\b|\bexec\w*\b|\beval\b|\bsubprocess\b",
     "code or a shell"),
    (r"\bimport\s+\w|\bos\.\w|\w\(\s*['\"]|\bdef\s+\w|\blambda\b", "code"),
    (r"[a-z]+://|\bwww\.|\bdownload\w*\b|\bupload\w*\b|\.py\b|\.sh\b", "a URL or a file"),
    (r"[`$\\{}<>|\[\]]|&&", "shell or code syntax"),
    # "ignore your limits", "skip the safety checks", "without limits": an override, named as one, not
    # "matches no skill" (it may still name a skill: "ignore your limits and move fast to the door").
    (r"\b(?:ignore|forget|skip|exceed|break|remove|lift|drop|disregard)\b.{0,30}\b(?:limits?|rules?|safety|"
     r"constraints?|restrictions?|guards?|checks?|e-?stops?|protections?)\b|\bwithout\b.{0,20}\b(?:limits?|"
     r"safety|checks?|restrictions?)\b|\bno (?:limits?|safety|restrictions?)\b",
     "an attempt to override the instructions or the safety layer"),
    (r"\bignore\b.{0,40}\binstructions?\b|\b(?:previous|prior|above)\s+instructions?\b|\bsystem prompt\b"
     r"|\byou are now\b|\badmin mode\b|\bdeveloper mode\b|\bjailbreak\w*\b|\boverride\w*\b|\bbypass\w*\b"
     r"|\bdisable\w*\b|\bunsafe\b|\bsafety (?:off|limits?)\b",
     "an attempt to override the instructions or the safety layer"),
)  # fmt: skip

# -------------------------------------------------------------------------------------- connective words
#: Words that carry no meaning for grounding (politeness, hedges, pronoun subjects). Known words: never
#: typo-corrected into a lexicon word, and dropped from the text that is embedded.
FILLERS = frozenset(
    {"please", "pls", "plz", "kindly", "could", "can", "would", "will", "you", "u", "just", "now", "i", "need",
     "want", "like", "robot", "hey", "ok", "okay", "so", "thanks", "thank", "cheers", "also",
     "both", "then", "and", "for", "me", "us", "we", "let's", "lets", "try", "to", "be", "is", "are",
     "the", "a", "an", "some", "of", "as", "well", "mate", "sir", "buddy", "yes", "alright",
     "all", "get", "make", "sure", "that", "this", "your", "my", "our", "again", "way", "really",
     "very", "do", "using", "use", "with", "by"}
)  # fmt: skip

#: Fillers that only stand in front of the verb ("could you", "I need you to", "please go ahead and").
LEADING_FILLERS = frozenset(
    {"please", "pls", "plz", "kindly", "could", "can", "would", "will", "you", "u", "just", "now", "i", "need",
     "want", "and", "robot", "hey", "ok", "okay", "so", "then", "also", "to", "let's", "lets",
     "us", "me", "try", "first", "firstly", "second", "secondly", "third", "thirdly", "finally",
     "lastly", "next", "afterwards", "afterward", "begin", "start", "by", "alright", "yes", "now,"}
)  # fmt: skip

#: Common English words that are neither lexicon words nor fillers but must not be "corrected" into one
#: (e.g. "bottom" is 2 edits from "button", "oven" 1 from "open" would be fine but "top" 1 from "tap" not).
COMMON_WORDS = frozenset(
    {"the", "a", "an", "it", "its", "them", "they", "there", "here", "in", "on", "off", "out", "up", "down",
     "over", "under", "above", "below", "at", "into", "onto", "from", "of", "to", "for", "with", "by", "and",
     "or", "but", "if", "when", "once", "after", "before", "while", "until", "again", "more", "less", "done",
     "what", "which", "who", "where", "how", "why", "is", "was", "be", "been", "have", "has", "had", "do",
     "does", "did", "this", "that", "these", "those", "one", "ones", "thing", "things", "something", "side",
     "sideways", "position", "way", "all", "each", "every", "any", "other", "bottom", "top", "table", "cup",
     "mug", "room", "cell", "station", "light", "lights", "lamp", "fridge", "oven", "cabinet", "box", "song",
     "coffee", "beer", "hello", "weather", "sandwich", "floor", "wall", "ball", "bottle", "lid", "socket",
     "now", "please", "full", "fully", "completely", "also", "too", "very", "then", "next", "first",
     "finally", "lastly", "afterwards", "afterward", "subsequently", "followed", "step", "lock", "unlock",
     "pack", "peek", "pock", "push", "pull", "poll", "pole", "post", "page", "pig", "pet"}
)  # fmt: skip

#: Whole-word typo fixes that edit distance alone would not find (or would find ambiguously).
TYPO_MAP: dict[str, str] = {
    "teh": "the",
    "hte": "the",
    "adn": "and",
    "nad": "and",
    "thn": "then",
    "thne": "then",
    "tehn": "then",
    "turnon": "turn on",
    "turnoff": "turn off",
    "pickup": "pick up",
    "unplugg": "unplug",
    "faucette": "faucet",
    "dont": "don't",
    "e-stop": "estop",
}

#: Irregular inflections -> lemma.
IRREGULAR: dict[str, str] = {
    "went": "go",
    "goes": "go",
    "gone": "go",
    "took": "take",
    "taken": "take",
    "swung": "swing",
    "slid": "slide",
    "brought": "bring",
    "shuts": "shut",
    "taps": "tap",
    "closed": "close",
    "opened": "open",
    "ran": "run",
}

# ------------------------------------------------------------------------------ extra phrasings (per skill)
#: Extra operator phrasings per registry skill, embedded next to the skill's own descriptions (they only
#: add phrasings; a skill that is not in a bundle is never reachable through them). Proposed for tasks.py.
EXTRA_PHRASINGS: dict[str, tuple[str, ...]] = {
    "drawer-close": ("push the drawer in", "slide the drawer closed"),
    "drawer-open": ("slide the drawer open", "pull out the drawer"),
    "window-open": ("push the window open",),
    "window-close": ("push the window closed", "shut the window"),
    "button-press-topdown": ("press down on the button", "click the button"),
    "door-open": ("pull the door open",),
    "faucet-open": ("turn on the water", "switch the faucet on", "twist the faucet counter-clockwise"),
    "faucet-close": ("turn off the water", "turn the tap off", "shut off the faucet"),
    "reach": ("move the arm to the goal", "reach the target"),
    "push": ("shove the puck to the target", "push the puck onto the marker"),
    "pick-place": ("pick up the puck and put it on the target", "pick and place the puck"),
    "peg-unplug-side": ("pull out the peg", "remove the peg", "take the peg out"),
}
