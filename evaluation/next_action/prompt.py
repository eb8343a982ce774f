"""The versioned next-action prompt: persona, session history and the current page within a budget.

Pages run to 626K characters, far beyond most models' context, so ``compact_observation`` shrinks a page
that does not fit: first what cannot be acted on (scripts, attributes, wrappers, long texts), then, for
most pages, to its ``name=`` elements (the action targets) chosen by priority, never by position.

The prompt is also parsed back by ``parse_prompt``: the bundled baselines read only what a model reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.metrics.next_action import CLICK_TYPES

PROMPT_VERSION = "opera-next-action/1"
SCENARIOS: tuple[str, ...] = ("full", "no_persona", "no_rationale")
DEFAULT_OBSERVATION_CHARS = 40_000

_OBS_OPEN, _OBS_CLOSE = "<observation>", "</observation>"

SYSTEM_PROMPT = f"""You simulate one specific person shopping online. Given their persona, the actions they \
already took in this session (with their own rationales where they gave one) and the page they are looking \
at now, predict the very next action this person takes.

Answer with one JSON object and nothing else:
{{"rationale": "<why this person does this, first person>", "action": {{"type": "click", "name": "<name>", \
"click_type": "<click type>"}}}}
- "click": "name" is the exact name="..." attribute of the element clicked on the current page; \
"click_type" is one of: {", ".join(CLICK_TYPES)}.
- "input": {{"type": "input", "name": "<name of the input field>", "text": "<text typed>"}}.
- "terminate": {{"type": "terminate"}} when the person leaves the session without doing anything else."""




def reply_format() -> dict[str, Any]:
    """The reply's JSON schema as an OpenAI ``response_format`` (also accepted by vLLM and llama.cpp).

    The rationale is capped so that a reply fits in a small ``max_tokens`` (a grammar-constrained reply cut
    short is as unparsable as a free one)."""
    name = {"type": "string", "minLength": 1}
    actions = [
        {"type": "object", "properties": {"type": {"const": "click"}, "name": name, "click_type": {"enum": list(CLICK_TYPES)}},
         "required": ["type", "name", "click_type"], "additionalProperties": False},
        {"type": "object", "properties": {"type": {"const": "input"}, "name": name, "text": {"type": "string"}},
         "required": ["type", "name", "text"], "additionalProperties": False},
        {"type": "object", "properties": {"type": {"const": "terminate"}}, "required": ["type"], "additionalProperties": False},
    ]
    schema = {"type": "object", "properties": {"rationale": {"type": "string", "maxLength": 160}, "action": {"anyOf": actions}},
              "required": ["rationale", "action"], "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "next_action", "schema": schema}}


# -- page compaction ----------------------------------------------------------------------------------

# Stage 1 (pages up to a few times the budget): markup that cannot be acted on goes, by regex in C.
_SCRIPT_RE = re.compile(r"<(script|style|svg|noscript)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_ATTR_RE = re.compile(r"""\s(?!(?:name|type|value|placeholder|aria-label|alt)=)[\w:-]+=(?:"[^"]*"|'[^']*')""")
_WRAPPER_RE = re.compile(r"</?(?:div|span|ul|ol|li|p|section|table|tbody|thead|tr|td|th|h[1-6]|b|i|em|strong|header|footer|nav|body|html)>")
_LONG_TEXT_RE = re.compile(r">([^<]{120})[^<]{20,}<")
_SPACE_RE = re.compile(r"\s{2,}")
_VOID = frozenset({"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
_SLIM_RATIO = 3  # stage 1 keeps a third of a page at best: larger pages go straight to stage 2

# Stage 2: the named elements, one a line with their first words, chosen by priority, shown in page order.
_NAMED_RE = re.compile(r"""<([a-zA-Z][\w-]*)\b[^>]*?\sname=(?:"([^"]*)"|'([^']*)')[^>]*>([^<]{0,80})""")
# What shoppers act on: navigation and search, the cart side bar, pagination, the buy box, product options
# and product links, the cart, filters. Everything else named (reviews, rails, footers) comes after.
_PRIORITY_RE = re.compile(
    r"(?:nav_bar|go_to_cart|cart_side_bar|pagination|buybox|product_options|check_out|place_your_order|active_item_list"
    r"|search_results|related_to_items_you_ve_viewed|suggested_term|filter|coupon|visit_the_|reviews\.see_all)"
    r"|.*\.(?:product_detail|product_image)$")
# Product names, prices and option values inside names: a name with them generalised is its block's kind.
# The first segment is always structure (``nav_bar``, ``search_results``, ``go_to_cart``).
_VALUE_SEGMENT_RE = re.compile(r"\.[^._\n]*_[^.\n]*_[^.\n]*(?=[.\n])")
_NUMBER_RE = re.compile(r"\d+")
_WHITESPACE_RE = re.compile(r"\s\s+|[^\S ]")


def name_kinds(names: list[str]) -> list[str]:
    """Each name with its values generalised (``search_results.*.product_detail``, ``reviews.review_#.helpful``)."""
    return _NUMBER_RE.sub("#", _VALUE_SEGMENT_RE.sub(".*", "\n".join(names) + "\n"))[:-1].split("\n") if names else []


def _slim(html: str) -> str:
    html = _SCRIPT_RE.sub("", html)
    html = _ATTR_RE.sub("", html)
    html = _WRAPPER_RE.sub(" ", html)
    html = _LONG_TEXT_RE.sub(r">\1…<", html)
    return _SPACE_RE.sub(" ", html)


def _priority_list(html: str, budget: int) -> str:
    """The named elements that fit in ``budget``, chosen by (priority, repetition, position), in page order.

    A block's first occurrence outranks the repeats of any block (the 40th search result or review comes
    after the first of each kind), and the kept elements are listed in page order, whatever their rank.
    """
    found = _NAMED_RE.findall(html)
    if not found:
        return ""
    names = [a or b for _, a, b, _ in found]
    kinds = name_kinds(names)
    priority: dict[str, int] = {}
    seen: dict[str, int] = {}
    tiers, repeats = [], []
    for kind in kinds:
        tier = priority.get(kind)
        if tier is None:
            tier = priority[kind] = 0 if _PRIORITY_RE.match(kind) else 1
        tiers.append(tier)
        repeats.append(seen.get(kind, -1) + 1)
        seen[kind] = repeats[-1]
    texts = _WHITESPACE_RE.sub(" ", "\0".join(text for *_, text in found)).split("\0")
    lines = [f'<{tag} name="{name}">\n' if tag in _VOID else f'<{tag} name="{name}">{text}</{tag}>\n'
             for (tag, *_), name, text in zip(found, names, texts)]
    order = np.lexsort((np.array(repeats), np.array(tiers)))  # position breaks ties: lexsort is stable
    sizes = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))[order]
    note = f"<!-- {len(lines)} more named elements omitted -->"
    fits = int(np.searchsorted(np.cumsum(sizes), budget - len(note), side="right"))
    kept = np.sort(order[:fits])
    text = "".join(lines[i] for i in kept)
    omitted = len(lines) - fits
    return text + (f"<!-- {omitted} more named elements omitted -->" if omitted else "")


def compact_observation(html: str, budget: int = DEFAULT_OBSERVATION_CHARS) -> str:
    """``html`` shrunk to at most ``budget`` characters, keeping the elements shoppers act on longest.

    A page that fits is returned as it is. A page up to a few times the budget loses scripts, attributes
    other than ``name`` (and the few that say what a control holds), unnamed wrapper tags and the tails of
    long texts. A page that still does not fit becomes the list of its named elements chosen by priority
    (``_priority_list``), never by position: what sits at the end of a page (the cart side bar, the
    pagination) is as likely to be kept as what sits at its top.
    """
    if len(html) <= budget:
        return html
    if len(html) <= _SLIM_RATIO * budget:
        slim = _slim(html)
        if len(slim) <= budget:
            return slim
    return _priority_list(html, budget)


# -- the prompt ----------------------------------------------------------------------------------------


def _persona_text(persona: dict[str, Any]) -> str:
    parts = []
    survey = persona.get("survey")
    if survey:
        parts.append("Survey answers:\n" + json.dumps(survey, ensure_ascii=False, indent=1))
    interview = (persona.get("interview") or "").strip()
    if interview:
        parts.append("Interview summary:\n" + interview)
    return "\n\n".join(parts) or "(no persona information)"


def _history_text(history: list[dict[str, Any]], with_rationale: bool) -> str:
    """The history section's lines: one JSON object per earlier action."""
    entries = []
    for action in history:
        entry: dict[str, Any] = {"type": action.get("type", "")}
        if action.get("type") in ("click", "input"):
            entry["name"] = action.get("name", "")
        if action.get("type") == "click":
            entry["click_type"] = action.get("click_type", "")
        if action.get("type") == "input":
            entry["text"] = action.get("text", "")
        if with_rationale and action.get("rationale"):
            entry["rationale"] = action["rationale"]
        entries.append(entry)
    return "\n".join(json.dumps(entry, ensure_ascii=False) for entry in entries) or "(none: this is the first action)"


def prepare_input(instance_input: dict[str, Any], observation_chars: int = DEFAULT_OBSERVATION_CHARS) -> dict[str, Any]:
    """What an instance's prompts are built from, in the form that costs CPU to reach: the persona section's
    text, the history section's lines with and without rationales, the URL and the page shrunk to
    ``observation_chars`` (``compact_observation``).

    Stored with the instance at import for the default budget (``NextActionEvaluator.prepare``), so that a
    run builds its prompts without the instance's input, and without shrinking a 100K-character page per
    item; the version and budget say which prompts it serves (``prepared_for``)."""
    return {"prompt_version": PROMPT_VERSION, "observation_chars": observation_chars,
            "persona": _persona_text(instance_input.get("persona") or {}),
            "history": _history_text(instance_input.get("history") or [], with_rationale=True),
            "history_without_rationales": _history_text(instance_input.get("history") or [], with_rationale=False),
            "url": str(instance_input.get("url", "")),
            "observation": compact_observation(instance_input.get("observation") or "", observation_chars)}


_PREPARED_PARTS = ("persona", "history", "history_without_rationales", "url", "observation")


def prepared_for(prepared: dict[str, Any], observation_chars: int) -> bool:
    """Whether ``prepared`` (``prepare_input``'s) serves this server's prompts at ``observation_chars``."""
    return (prepared.get("prompt_version") == PROMPT_VERSION and prepared.get("observation_chars") == observation_chars
            and all(part in prepared for part in _PREPARED_PARTS))


def build_messages(
    instance_input: dict[str, Any], scenario: str = "full", *, observation_chars: int = DEFAULT_OBSERVATION_CHARS,
    prepared: dict[str, Any] | None = None,
) -> list[dict[str, str]]:
    """The chat messages for one instance under one scenario (``full``, ``no_persona``, ``no_rationale``);
    ``prepared`` is the instance's ``prepare_input``, used where it serves ``observation_chars``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    if prepared is None or not prepared_for(prepared, observation_chars):
        prepared = prepare_input(instance_input, observation_chars)
    sections = []
    if scenario != "no_persona":
        sections.append("## Persona\n" + prepared["persona"])
    history = prepared["history_without_rationales" if scenario == "no_rationale" else "history"]
    sections.append("## Session history (earlier actions, oldest first)\n" + history)
    sections.append(f"## Current page\nURL: {prepared['url']}\n{_OBS_OPEN}\n{prepared['observation']}\n{_OBS_CLOSE}")
    sections.append("Predict this person's next action. Answer with the JSON object only.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(sections)}]


@dataclass(frozen=True)
class PromptView:
    """What a prompt shows: the page (as shrunk for the model), its URL, the history entries (with their
    ``rationale`` where the prompt carries one) and the persona section's text and survey answers, if any."""

    observation: str
    url: str
    history: list[dict[str, Any]]
    has_persona: bool
    persona: str = ""  # the persona section as shown, without its heading
    survey: dict[str, Any] = field(default_factory=dict)  # the survey answers read back from ``persona``


_URL_RE = re.compile(r"^## Current page\nURL: (.*)$", re.MULTILINE)
_HISTORY_RE = re.compile(r"^## Session history[^\n]*\n(.*?)(?=\n\n## )", re.MULTILINE | re.DOTALL)
_PERSONA_RE = re.compile(r"^## Persona\n(.*?)(?=\n\n## Session history)", re.MULTILINE | re.DOTALL)
_SURVEY_HEAD = "Survey answers:\n"


def _survey(persona: str) -> dict[str, Any]:
    """The survey answers of a persona section (``_persona_text``), or ``{}``."""
    if not persona.startswith(_SURVEY_HEAD):
        return {}
    try:
        survey, _ = json.JSONDecoder().raw_decode(persona, len(_SURVEY_HEAD))
    except ValueError:
        return {}
    return survey if isinstance(survey, dict) else {}


def parse_prompt(messages: list[dict[str, Any]]) -> PromptView:
    """Read a prompt built by ``build_messages`` back; the last user message is the one parsed."""
    text = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")
    start = text.find(_OBS_OPEN)
    end = text.rfind(_OBS_CLOSE)
    observation = text[start + len(_OBS_OPEN):end].strip("\n") if 0 <= start < end else ""
    url_match = _URL_RE.search(text)
    history: list[dict[str, Any]] = []
    history_match = _HISTORY_RE.search(text)
    if history_match:
        for line in history_match.group(1).splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                history.append(entry)
    persona_match = _PERSONA_RE.search(text)
    persona = persona_match.group(1).strip() if persona_match else ""
    return PromptView(observation, url_match.group(1).strip() if url_match else "", history, "## Persona\n" in text,
                      persona, _survey(persona))
