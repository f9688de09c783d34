"""Students' names and ids out of what teachers write about their classes.

`without_students(text)` is applied to student evidence (a share's "what did students do?",
an enactment's answer) before it is stored, so no later reader — a digest, an export, the
model — ever sees a student's name. The rule, in order:

1. e-mail addresses -> "[student]";
2. @handles and platform mentions (`@maria.l`, Slack's `<@U123>`) -> "[student]";
3. ids: any word holding a run of 4 or more digits (`204518`, `S20451`) -> "[student]"
   (a year such as 2024 goes too: we would rather lose a year than keep an id);
4. person names: a capitalised word (`Maria`, `O'Neil`, `McKay`, `Ana-Lu`) -> "[student]"
   unless it is
   - in the small allowlist below (days, months, subjects, classroom words, common sentence
     openers, a few classroom tools), or written all in capitals (an acronym: ELL, IEP, SEL), or
   - at the start of a sentence (the text's start, after . ! ? : ; a new line or a bullet),
     where a capital says nothing — except when it still reads as a name there: followed by
     another name (`Maria Lopez`), joined to one by "and", "or", "&" or a comma (`Maria and
     Jon`), possessive (`Maria's`), standing alone (followed by a comma, a bracket, a colon
     or the line's end: `Jon, …`, `- Jon (…`), or the same word taken as a name elsewhere.
   After an honorific (Mr, Ms, Mrs, Mx, Dr, Miss) the next word is always a name.

It is a heuristic that errs towards removing too much (a tool's name, a place); it is no
guarantee, so teachers are also asked never to type students' names.
"""

from __future__ import annotations

import re

STUDENT = "[student]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MENTION = re.compile(r"<@[A-Za-z0-9]+(?:\|[^>]*)?>|(?<![\w@])@\w[\w.-]*\w|(?<![\w@])@\w")
_ID = re.compile(r"\b\w*\d{4,}\w*\b")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_POSSESSIVE = re.compile(r"['’]s\Z", re.I)
_OPENERS = "\"“‘'([{*_ \t"
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Mx|Dr|Miss)\.?\s+\Z")
_STANDS_ALONE = re.compile(r"[ \t]*(?:[,(:]|\n|\Z)")  # "Jon, …", "- Jon (…", "Jon:" alone
_LIST_JOIN = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+)\Z", re.I)

_ALLOWED_WORDS = """
    i i'm i've i'd i'll a an the this that these those we our us they their them he his him
    she her it its you your my me one two three some many most all each every both few several
    students student kids class classes everyone everybody nobody someone group groups pairs
    teacher teachers after before when while then today yesterday tomorrow later next last first
    finally also but and or so if in on at by for with without during from to of as since
    because although though yes no not only just still instead overall there here what why how
    who which where however afterwards honestly unfortunately surprisingly again now well
    yes thanks overall first second third
    monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december
    math maths mathematics algebra geometry calculus statistics science biology chemistry physics
    english ela literacy reading writing history geography spanish french german latin chinese
    arabic art music drama pe health computing
    grade year unit lesson period week day room chapter module term semester quarter
    exit ticket tickets socratic seminar seminars future ready bloom bloom's venn frayer cornell
    google docs slides sheets forms classroom kahoot padlet desmos canvas zoom teams slack
    flipgrid quizlet seesaw nearpod jamboard chromebook chromebooks ipad ipads
    mr mrs ms mx dr miss
"""
ALLOWED = frozenset(_ALLOWED_WORDS.split())


def _capitalised(word: str) -> bool:
    """Starts with a capital and is not all capitals (an acronym, or "I" / "A")."""
    return word[0].isupper() and not word.isupper()


def _allowed(word: str) -> bool:
    base = _POSSESSIVE.sub("", word).lower().replace("’", "'")
    return word.lower().replace("’", "'") in ALLOWED or base in ALLOWED


def _at_sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(_OPENERS)
    if not before or before[-1] in ".!?:;…\n\r":
        return not _HONORIFIC.search(text[:start])
    last_line = before.rsplit("\n", 1)[-1].strip()
    return re.fullmatch(r"[-*•–]|\d+[.)]", last_line) is not None


def _next_to_a_name(
    text: str,
    words: list[tuple[int, int, str]],
    candidates: list[bool],
    starts: list[bool],
    i: int,
) -> bool:
    """Whether word `i` is followed by a name (`Maria Lopez`) or listed with one (`Maria and
    Jon`, `Maria, Jon`, `Maria & Jon`)."""
    j = i + 1
    if j < len(words) and words[j][2].lower() in ("and", "or"):
        j += 1
    if j >= len(words) or not candidates[j] or starts[j]:
        return False
    gap = text[words[i][1] : words[j][0]]
    return gap.isspace() or _LIST_JOIN.fullmatch(gap) is not None


def _names(text: str) -> str:
    words = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]
    candidates = [
        _capitalised(w) and (not _allowed(w) or _HONORIFIC.search(text[:s]) is not None)
        for s, _, w in words
    ]
    starts = [_at_sentence_start(text, s) for s, _, _ in words]
    named = {
        _POSSESSIVE.sub("", w)
        for (_, _, w), c, at in zip(words, candidates, starts, strict=True)
        if c and not at
    }
    out: list[str] = []
    done = 0
    for i, ((start, end, word), candidate, at_start) in enumerate(
        zip(words, candidates, starts, strict=True)
    ):
        if not candidate:
            continue
        if at_start:
            is_name = (
                _POSSESSIVE.sub("", word) in named
                or _POSSESSIVE.search(word) is not None
                or _next_to_a_name(text, words, candidates, starts, i)
                or _STANDS_ALONE.match(text, end) is not None
            )
            if not is_name:
                continue
        suffix = word[-2:] if _POSSESSIVE.search(word) else ""
        out.append(text[done:start] + STUDENT + suffix)
        done = end
    out.append(text[done:])
    return "".join(out)


def without_students(text: str) -> str:
    """`text` with likely students' names and ids replaced by "[student]" (the module
    docstring gives the rule)."""
    text = _EMAIL.sub(STUDENT, text)
    text = _MENTION.sub(STUDENT, text)
    text = _ID.sub(STUDENT, text)
    return _names(text)
