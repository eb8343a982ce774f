"""The versioned next-action prompt: persona, session history and the current page within a budget.

Pages run to 626K characters, far beyond most models' context, so ``compact_observation`` shrinks a page
in stages until it fits, always dropping what cannot be acted on first: attributes other than ``name``,
then unnamed wrapper tags, then long texts, then texts outside named elements. Elements that carry a
``name=`` attribute (the action targets) are the last thing to go.

The prompt is also parsed back by ``parse_prompt``: the bundled baselines read only what a model reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from typing import Any

from evaluation.metrics.next_action import CLICK_TYPES

PROMPT_VERSION = "opera-next-action/1"
SCENARIOS: tuple[str, ...] = ("full", "no_persona", "no_rationale")
DEFAULT_OBSERVATION_CHARS = 40_000

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Attributes worth keeping on a shrunk page besides ``name``: they say what a control holds.
_KEPT_ATTRS = ("name", "type", "value", "placeholder", "aria-label", "alt")
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


# -- page compaction ----------------------------------------------------------------------------------


@dataclass
class _Node:
    tag: str
    attrs: list[tuple[str, str]]
    children: list["_Node | str"] = field(default_factory=list)

    @property
    def name(self) -> str:
        return next((v for k, v in self.attrs if k == "name" and v), "")


class _TreeBuilder(HTMLParser):
    """Lenient HTML -> tree: unclosed tags close with their parent, stray end tags are ignored."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("", [])
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, [(k, v or "") for k, v in attrs])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(_Node(tag, [(k, v or "") for k, v in attrs]))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack[-1].tag in ("script", "style"):  # never actionable, often huge
            return
        text = " ".join(data.split())
        if text:
            self.stack[-1].children.append(text)


@dataclass(frozen=True)
class _Level:
    unwrap_unnamed: bool  # drop tags without a name (keep their content)
    text_limit: int | None  # characters kept of each text run
    outside_text: bool  # keep texts that are not inside a named element


# Tried in order until the page fits; the first keeps the page's structure, the last only its targets.
_LEVELS = (
    _Level(False, None, True),
    _Level(True, 200, True),
    _Level(True, 80, True),
    _Level(True, 40, False),
    _Level(True, 0, False),
)


def _render(node: _Node, level: _Level, out: list[str], inside_named: bool) -> None:
    named = bool(node.name)
    keep_tag = bool(node.tag) and (named or not level.unwrap_unnamed)
    if keep_tag:
        attrs = "".join(f' {k}="{escape(v)}"' for k, v in node.attrs if k in _KEPT_ATTRS and (v or k == "name"))
        out.append(f"<{node.tag}{attrs}>")
    for child in node.children:
        if isinstance(child, str):
            if not (inside_named or named) and not level.outside_text:
                continue
            text = child if level.text_limit is None else child[: level.text_limit]
            if text:
                # Once wrapper tags are gone, neighbouring text runs need a space between them.
                gap = " " if out and not out[-1].endswith(">") else ""
                out.append(gap + escape(text, quote=False))
        else:
            _render(child, level, out, inside_named or named)
    if keep_tag and node.tag not in _VOID:
        out.append(f"</{node.tag}>")


def _named_elements(node: _Node) -> list[_Node]:
    found = [node] if node.name else []
    for child in node.children:
        if isinstance(child, _Node):
            found.extend(_named_elements(child))
    return found


def compact_observation(html: str, budget: int = DEFAULT_OBSERVATION_CHARS) -> str:
    """``html`` shrunk to at most ``budget`` characters, keeping the ``name=`` elements longest."""
    if len(html) <= budget:
        return html
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    for level in _LEVELS:
        out: list[str] = []
        _render(builder.root, level, out, False)
        text = "".join(out)
        if len(text) <= budget:
            return text
    # Still too long: list the named elements flat, in page order, as many as fit.
    lines, used = [], 0
    elements = _named_elements(builder.root)
    for i, node in enumerate(elements):
        line = f'<{node.tag} name="{escape(node.name)}"/>\n'
        note = f"<!-- {len(elements) - i} more named elements omitted -->"
        if used + len(line) + len(note) > budget:
            lines.append(note if len(note) <= budget - used else "")
            break
        lines.append(line)
        used += len(line)
    return "".join(lines)


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


def _history_entries(history: list[dict[str, Any]], with_rationale: bool) -> list[dict[str, Any]]:
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
    return entries


def build_messages(
    instance_input: dict[str, Any], scenario: str = "full", *, observation_chars: int = DEFAULT_OBSERVATION_CHARS
) -> list[dict[str, str]]:
    """The chat messages for one instance under one scenario (``full``, ``no_persona``, ``no_rationale``)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    sections = []
    if scenario != "no_persona":
        sections.append("## Persona\n" + _persona_text(instance_input.get("persona") or {}))
    history = _history_entries(instance_input.get("history") or [], with_rationale=scenario != "no_rationale")
    lines = "\n".join(json.dumps(entry, ensure_ascii=False) for entry in history) or "(none: this is the first action)"
    sections.append("## Session history (earlier actions, oldest first)\n" + lines)
    observation = compact_observation(instance_input.get("observation") or "", observation_chars)
    sections.append(f"## Current page\nURL: {instance_input.get('url', '')}\n{_OBS_OPEN}\n{observation}\n{_OBS_CLOSE}")
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
