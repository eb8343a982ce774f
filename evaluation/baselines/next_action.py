"""Next-action baselines served as chat endpoints: a frequency (majority) policy and a TF-IDF retrieval policy.

Both learn from the bundled train split and answer from the prompt alone: they parse the page, its URL and
the history out of the user message (``prompt.parse_prompt``), so they see exactly what a model sees.
Target names are specific to a page (``search_results.<product>.product_detail``), so both work on name
*patterns*: name segments that occur in few distinct names (product slugs, option values) become ``*``.
The retrieval policy also reads the persona's shopping preferences and the history's rationales when the
prompt shows them (so its answers change with the scenario); the majority policy ignores both.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from datasets.base import Instance
from evaluation.next_action.prompt import name_kinds, parse_prompt

_NAME_RE = re.compile(r""" name=(?:"([^"]*)"|'([^']*)')""")  # starts with a literal: scans 600K pages fast
# A name segment shared by at least this many distinct names is structure, not a product or a value.
_GENERIC_MIN_NAMES = 12
_NEIGHBOURS = 25
# Retrieval: the weight of each part of a step's description in the similarity (page and history first;
# persona and rationales only nudge the ranking, they are not allowed to outvote the page).
_PAGE_WEIGHT, _PERSONA_WEIGHT, _RATIONALE_WEIGHT = 1.0, 0.3, 0.3
_RATIONALE_ACTIONS = 1  # rationales of this many latest actions are read (the latest says most)
_PERSONA_SECTION = "Shopping Preference"  # the survey answers that describe how a person shops
_WORD_RE = re.compile(r"[a-z]+")

Label = tuple[str, str, str]  # (type, name pattern, click type)


def page_names(html: str) -> list[str]:
    """The ``name=`` targets of a page, in page order, without repeats."""
    return list(dict.fromkeys(a or b for a, b in _NAME_RE.findall(html) if a or b))


def page_type(url: str) -> str:
    if "/s?" in url or "/s/" in url:
        return "search"
    if "/dp/" in url or "/gp/product" in url:
        return "product"
    if "/checkout" in url or "/buy/" in url:
        return "checkout"
    if "/cart" in url:
        return "cart"
    return "other"


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit]


def persona_words(survey: dict[str, Any]) -> list[str]:
    """One ``p:<question>=<answer>`` word per shopping-preference answer of a survey (none without one)."""
    words: list[str] = []

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for child_key, child in node.items():
                walk(child, str(child_key))
        elif isinstance(node, (str, int, float)) and str(node).strip():
            words.append(f"p:{_slug(key, 40)}={_slug(str(node), 30)}")

    walk(survey.get(_PERSONA_SECTION) or {}, "")
    return words


def rationale_words(history: list[dict[str, Any]]) -> list[str]:
    """``why:<word>`` for the words of the latest actions' rationales (none when the prompt hides them)."""
    return [f"why:{word}" for action in history[-_RATIONALE_ACTIONS:]
            for word in _WORD_RE.findall(str(action.get("rationale") or "").lower())]


@lru_cache(maxsize=1)
def _default_train() -> tuple[Instance, ...]:
    """The bundled train split with each page reduced to its targets (the stored split has no pages)."""
    from datasets.opera.bundle import DATA_DIR
    from datasets.opera.loader import build_instances, load_local

    records = build_instances(load_local(DATA_DIR, "filtered", splits=["train"]), "train")
    # Only the names are read from a training page, and one of each kind says what the page offers
    # (the 48th search result adds nothing the first did not): a page of 500 targets shrinks to 60.
    return tuple(replace(r, input={**r.input, "observation": _targets(r.input["observation"])}) for r in records)


def _targets(html: str) -> str:
    """The page reduced to the first target of each kind, in page order."""
    names = page_names(html)
    first: dict[str, str] = {}
    for name, kind in zip(names, name_kinds(names)):
        first.setdefault(kind, name)
    return "".join(f'<a name="{name}"></a>' for name in first.values())


class _PatternPolicy:
    """Shared parts: name patterns, labels and the JSON reply."""

    def __init__(self, train: Sequence[Instance] | None) -> None:
        self.train = list(train if train is not None else _default_train())
        distinct: set[str] = set()
        for record in self.train:
            distinct.update(page_names(record.input["observation"]))
        segment_names: Counter[str] = Counter(seg for name in distinct for seg in set(name.split(".")[1:]))
        self.generic = {seg for seg, n in segment_names.items() if n >= _GENERIC_MIN_NAMES}
        texts = [r.reference["text"] for r in self.train if r.reference["type"] == "input" and r.reference["text"]]
        self.common_text = Counter(texts).most_common(1)[0][0] if texts else ""

    def pattern(self, name: str) -> str:
        head, *rest = name.split(".")
        return ".".join([head, *(seg if seg in self.generic else "*" for seg in rest)])

    def label(self, action: dict[str, Any]) -> Label:
        kind = action.get("type", "")
        if kind == "terminate":
            return ("terminate", "", "")
        return (kind, self.pattern(action.get("name", "")), action.get("click_type", "") if kind == "click" else "")

    def realise(self, label: Label, names: list[str], hint: str = "") -> str | None:
        """A name on the page with the label's pattern (the one sharing most words with ``hint``), if any."""
        if label[0] == "terminate":
            return ""
        matches = [n for n in names if self.pattern(n) == label[1]]
        if not matches:
            return None
        if hint in matches:
            return hint
        words = set(re.split(r"[._]", hint))
        return max(matches, key=lambda n: len(words & set(re.split(r"[._]", n))))

    def answer(self, label: Label, name: str, history: list[dict[str, Any]], why: str) -> dict[str, Any]:
        kind, _, click_type = label
        action: dict[str, Any] = {"type": kind}
        if kind != "terminate":
            action["name"] = name
        if kind == "click":
            action["click_type"] = click_type
        if kind == "input":
            typed = [h.get("text", "") for h in history if h.get("type") == "input" and h.get("text")]
            action["text"] = typed[-1] if typed else self.common_text
        return {"content": json.dumps({"rationale": why, "action": action})}


class MajorityPolicy(_PatternPolicy):
    """The most frequent training action for the page type and the previous action, realised on the page."""

    model_id = "opera-majority"

    def __init__(self, train: Sequence[Instance] | None = None) -> None:
        super().__init__(train)
        self.by_context: dict[tuple[str, str], Counter[Label]] = defaultdict(Counter)
        self.by_page: dict[str, Counter[Label]] = defaultdict(Counter)
        self.overall: Counter[Label] = Counter()
        for record in self.train:
            target = self.label(record.reference)
            kind = page_type(record.input["url"])
            self.by_context[(kind, self._previous(record.input["history"]))][target] += 1
            self.by_page[kind][target] += 1
            self.overall[target] += 1

    def _previous(self, history: list[dict[str, Any]]) -> str:
        return self.pattern(history[-1].get("name", "")) if history and history[-1].get("name") else ""

    def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> dict[str, Any]:
        view = parse_prompt(messages)
        names = page_names(view.observation)
        kind = page_type(view.url)
        # Back off from (page, previous action) to the page type to the whole split.
        for counter in (self.by_context.get((kind, self._previous(view.history))), self.by_page.get(kind), self.overall):
            for label, _ in (counter or Counter()).most_common():
                name = self.realise(label, names)
                if name is not None:
                    return self.answer(label, name, view.history, f"Most shoppers do this next on a {kind} page.")
        return self.answer(("terminate", "", ""), "", view.history, "Nothing on this page matches a usual next step.")


class RetrievalPolicy(_PatternPolicy):
    """The action of the most similar training step: TF-IDF over page, history and page targets, plus the
    persona's shopping preferences and the latest rationales when the prompt shows them.

    Each part is its own TF-IDF space and the similarity is their weighted sum, so a part missing from the
    prompt (``no_persona``, ``no_rationale``) adds nothing instead of reshaping the page part's weights.
    Training steps are described the same way, from their input (which always holds persona and rationales).
    """

    model_id = "opera-retrieval"
    weights = (_PAGE_WEIGHT, _PERSONA_WEIGHT, _RATIONALE_WEIGHT)

    def __init__(self, train: Sequence[Instance] | None = None) -> None:
        super().__init__(train)
        self.targets = [(self.label(r.reference), r.reference.get("name", "")) for r in self.train]
        parts = [
            self._parts(r.input["url"], r.input["history"], page_names(r.input["observation"]),
                        (r.input.get("persona") or {}).get("survey") or {})
            for r in self.train
        ]
        self.vectorizers: list[TfidfVectorizer | None] = []
        self.matrices: list[csr_matrix | None] = []
        for i in range(len(self.weights)):
            texts = [p[i] for p in parts]
            if not any(texts):  # e.g. a train split without rationales
                self.vectorizers.append(None)
                self.matrices.append(None)
                continue
            vectorizer = TfidfVectorizer(token_pattern=r"[^ ]+", sublinear_tf=True)
            self.matrices.append(vectorizer.fit_transform(texts))
            self.vectorizers.append(vectorizer)

    def _document(self, url: str, history: list[dict[str, Any]], names: list[str]) -> str:
        words = [f"page:{page_type(url)}"]
        for back, action in enumerate(reversed(history[-3:])):
            words += [f"prev{back}:{action.get('type', '')}", f"prev{back}:{self.pattern(action.get('name', ''))}"]
        words += [f"el:{p}" for p in dict.fromkeys(self.pattern(n) for n in names)]
        words += [f"tok:{t}" for t in re.split(r"[._]", history[-1].get("name", "")) if t] if history else []
        return " ".join(words)

    def _parts(self, url: str, history: list[dict[str, Any]], names: list[str], survey: dict[str, Any]) -> tuple[str, str, str]:
        """The step's description in three parts: page and history, persona, rationales."""
        return (self._document(url, history, names), " ".join(persona_words(survey)), " ".join(rationale_words(history)))

    def similarity(self, parts: tuple[str, str, str]) -> np.ndarray:
        """The weighted similarity of a step described by ``parts`` to every training step."""
        total = None
        for weight, vectorizer, matrix, text in zip(self.weights, self.vectorizers, self.matrices, parts):
            if vectorizer is None or matrix is None or not text or not weight:
                continue
            scores = weight * (matrix @ vectorizer.transform([text]).T).toarray().ravel()
            total = scores if total is None else total + scores
        return total if total is not None else np.zeros(len(self.targets))

    def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> dict[str, Any]:
        view = parse_prompt(messages)
        names = page_names(view.observation)
        similarity = self.similarity(self._parts(view.url, view.history, names, view.survey))
        for index in similarity.argsort()[::-1][:_NEIGHBOURS]:
            label, target_name = self.targets[index]
            name = self.realise(label, names, target_name)
            if name is not None:
                why = f"A similar shopper in a similar spot did this (similarity {similarity[index]:.2f})."
                return self.answer(label, name, view.history, why)
        return self.answer(("terminate", "", ""), "", view.history, "No similar step fits this page.")
