"""Loader for the OPeRA dataset in its Hugging Face Hub layout (``NEU-HAI/OPeRA``).

Layout, per config (``filtered`` or ``full``)::

    OPeRA_<config>/action/{train,test}-*.parquet
    OPeRA_<config>/session/{train,test}/*.parquet
    OPeRA_<config>/user/{train,test}/*.parquet

``load_opera`` reads a local folder with that layout, or fetches it from the Hub with
``huggingface_hub.snapshot_download`` (which also serves it from the local cache when offline). Every
row is validated before anything is returned: bad input raises ``DatasetError`` naming the file, the
row and the field, so nothing is half-loaded. Field names are the dataset card's.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.base import DatasetError, Instance

DEFAULT_REPO = "NEU-HAI/OPeRA"
CONFIGS = ("filtered", "full")
SPLITS = ("train", "test")
TARGET_TYPES = ("click", "input", "terminate")
ACTION_TYPES = {
    "filtered": frozenset(TARGET_TYPES),
    "full": frozenset({"click", "scroll", "input", "navigation", "tab_activate", "tabActivate", "terminate"}),
}
# Columns the benchmark needs; the card's other string columns are optional and default to "".
REQUIRED_ACTION_COLUMNS = ("session_id", "action_id", "timestamp", "action_type", "click_type", "semantic_id",
                           "url", "simplified_html", "rationale", "input_text")
OPTIONAL_ACTION_COLUMNS = ("products", "page_meta", "element_meta", "mouse_position", "window_size")
FULL_ONLY_COLUMNS = ("navigation_type", "simplified_html_new_page", "scroll_detail", "target")
USER_COLUMNS = ("user_id", "survey", "raw_survey", "interview_transcript", "interview_transcript_processed")
SESSION_COLUMNS = ("session_id", "user_id", "action_count")


@dataclass(frozen=True)
class User:
    user_id: str
    survey: dict[str, Any]  # organised answers: demographics, self description, shopping preference, personality
    raw_survey: dict[str, Any]
    interview_transcript: str
    interview_transcript_processed: str


@dataclass(frozen=True)
class Session:
    session_id: str  # {user_id}_{start}_{end}
    user_id: str
    action_count: int


@dataclass(frozen=True)
class Action:
    session_id: str
    action_id: str
    timestamp: str
    action_type: str
    click_type: str
    semantic_id: str
    url: str
    simplified_html: str
    rationale: str
    input_text: str
    products: str = ""
    page_meta: str = ""
    element_meta: str = ""
    mouse_position: str = ""
    window_size: str = ""
    # The full config's extra columns (navigation_type, simplified_html_new_page, scroll_detail, target).
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OperaData:
    config: str
    source: str
    users: dict[str, User]  # by user_id, merged over splits (a user shops in both)
    sessions: dict[str, list[Session]]  # by split
    actions: dict[str, list[Action]]  # by split, in file order
    revision: str = ""  # the Hub commit the files came from, when they came from the Hub


# -- reading ------------------------------------------------------------------------------------------


def _read_table(path: Path, required: Iterable[str], optional: Iterable[str] = (), skip: Iterable[str] = ()) -> pa.Table:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(str(path), f"not a readable parquet file ({exc})") from None
    for column in required:
        if column not in schema.names:
            raise DatasetError(str(path), "missing column", field_name=column)
    # Only the needed columns are read: the action files also hold screenshots and run to gigabytes.
    columns = [c for c in (*required, *optional) if c in schema.names and c not in skip]
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(str(path), f"cannot read parquet data ({exc})") from None


def _string_columns(table: pa.Table, path: Path, names: Iterable[str]) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for name in names:
        if name not in table.column_names:
            continue
        column = table.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_null(column.type)):
            raise DatasetError(str(path), f"expected a string column, found {column.type}", field_name=name)
        out[name] = column.to_pylist()
    return out


def _required_text(value: str | None, path: Path, row: int, name: str) -> str:
    if value is None or not value.strip():
        raise DatasetError(str(path), "empty value", row=row, field_name=name)
    return value


def _json_object(value: str | None, path: Path, row: int, name: str) -> dict[str, Any]:
    if value is None or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise DatasetError(str(path), f"invalid JSON ({exc})", row=row, field_name=name) from None
    if not isinstance(parsed, dict):
        raise DatasetError(str(path), f"expected a JSON object, found {type(parsed).__name__}", row=row, field_name=name)
    return parsed


def _files(root: Path, pattern: str) -> list[Path]:
    files = sorted(root.glob(pattern))
    if not files:
        raise DatasetError(str(root / pattern), "no parquet files match")
    return files


def _read_users(files: list[Path], users: dict[str, User]) -> None:
    for path in files:
        table = _read_table(path, ("user_id", "survey"), USER_COLUMNS[2:])
        cols = _string_columns(table, path, USER_COLUMNS)
        for row in range(table.num_rows):
            user_id = _required_text(cols["user_id"][row], path, row, "user_id")
            user = User(
                user_id=user_id,
                survey=_json_object(cols["survey"][row], path, row, "survey"),
                raw_survey=_json_object(cols.get("raw_survey", [None] * table.num_rows)[row], path, row, "raw_survey"),
                interview_transcript=cols.get("interview_transcript", [None] * table.num_rows)[row] or "",
                interview_transcript_processed=cols.get("interview_transcript_processed", [None] * table.num_rows)[row] or "",
            )
            users.setdefault(user_id, user)


def _read_sessions(files: list[Path], users: dict[str, User]) -> list[Session]:
    sessions: list[Session] = []
    for path in files:
        table = _read_table(path, SESSION_COLUMNS)
        cols = _string_columns(table, path, ("session_id", "user_id"))
        if not pa.types.is_integer(table.column("action_count").type):
            raise DatasetError(str(path), f"expected an integer column, found {table.column('action_count').type}",
                               field_name="action_count")
        counts = table.column("action_count").to_pylist()
        for row in range(table.num_rows):
            session_id = _required_text(cols["session_id"][row], path, row, "session_id")
            user_id = _required_text(cols["user_id"][row], path, row, "user_id")
            if user_id not in users:
                raise DatasetError(str(path), f"user '{user_id}' is not in the user table", row=row, field_name="user_id")
            if counts[row] is None or counts[row] < 0:
                raise DatasetError(str(path), f"invalid action count {counts[row]!r}", row=row, field_name="action_count")
            sessions.append(Session(session_id, user_id, int(counts[row])))
    return sessions


def _read_actions(files: list[Path], config: str, session_ids: set[str], pages: bool = True) -> list[Action]:
    allowed = ACTION_TYPES[config]
    actions: list[Action] = []
    for path in files:
        extra_columns = FULL_ONLY_COLUMNS if config == "full" else ()
        # Pages are most of the bytes (100K characters each): a split whose pages are not needed skips them.
        skip = () if pages else ("simplified_html", *FULL_ONLY_COLUMNS[1:2])
        table = _read_table(path, REQUIRED_ACTION_COLUMNS, (*OPTIONAL_ACTION_COLUMNS, *extra_columns), skip)
        cols = _string_columns(table, path, (*REQUIRED_ACTION_COLUMNS, *OPTIONAL_ACTION_COLUMNS, *extra_columns))
        value = lambda name, row: (cols[name][row] or "") if name in cols else ""  # noqa: E731
        for row in range(table.num_rows):
            session_id = _required_text(cols["session_id"][row], path, row, "session_id")
            if session_id not in session_ids:
                raise DatasetError(str(path), f"session '{session_id}' is not in the session table", row=row,
                                   field_name="session_id")
            action_type = value("action_type", row)
            if action_type not in allowed:
                raise DatasetError(str(path), f"unknown action type {action_type!r} (expected one of {sorted(allowed)})",
                                   row=row, field_name="action_type")
            if action_type in ("click", "input"):
                _required_text(cols["semantic_id"][row], path, row, "semantic_id")
            if action_type == "click":
                _required_text(cols["click_type"][row], path, row, "click_type")
            actions.append(Action(
                session_id=session_id,
                action_id=value("action_id", row),
                timestamp=value("timestamp", row),
                action_type=action_type,
                click_type=value("click_type", row) if action_type == "click" else "",
                semantic_id=value("semantic_id", row),
                url=value("url", row),
                simplified_html=value("simplified_html", row),
                rationale=value("rationale", row).strip(),
                # An input with no text happens (a focus, a cleared box): its reference text is "".
                input_text=value("input_text", row) if action_type == "input" else "",
                **{name: value(name, row) for name in OPTIONAL_ACTION_COLUMNS},
                extra={name: value(name, row) for name in extra_columns},
            ))
    return actions


def load_local(root: str | Path, config: str = "filtered", splits: Iterable[str] = SPLITS, *,
               pages: Iterable[str] | None = None) -> OperaData:
    """Load the Hub layout from a local folder (the repository root, holding ``OPeRA_<config>/``).

    ``pages`` names the splits whose ``simplified_html`` is read (default: all); the others' actions come
    with empty pages, which saves reading hundreds of megabytes when only their actions are needed.
    """
    if config not in CONFIGS:
        raise ValueError(f"unknown OPeRA config '{config}' (known: {', '.join(CONFIGS)})")
    base = Path(root) / f"OPeRA_{config}"
    if not base.is_dir():
        raise DatasetError(str(base), "folder not found: expected the OPeRA Hub layout")
    splits = tuple(splits)
    with_pages = set(splits if pages is None else pages)
    users: dict[str, User] = {}
    for split in splits:
        _read_users(_files(base, f"user/{split}/*.parquet"), users)
    sessions = {split: _read_sessions(_files(base, f"session/{split}/*.parquet"), users) for split in splits}
    actions = {
        split: _read_actions(_files(base, f"action/{split}-*.parquet"), config, {s.session_id for s in sessions[split]},
                             pages=split in with_pages)
        for split in splits
    }
    return OperaData(config=config, source=str(root), users=users, sessions=sessions, actions=actions)


def fetch_hub(repo_id: str = DEFAULT_REPO, config: str = "filtered", *, revision: str | None = None,
              cache_dir: str | Path | None = None, local_dir: str | Path | None = None) -> Path:
    """Download (or find in the local cache, e.g. with ``HF_HUB_OFFLINE=1``) one config's parquet files."""
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        repo_id,
        repo_type="dataset",
        revision=revision,
        cache_dir=cache_dir,
        local_dir=local_dir,
        allow_patterns=[f"OPeRA_{config}/{part}/*" for part in ("action", "session", "user")],
    )
    return Path(folder)


def load_opera(source: str | Path = DEFAULT_REPO, config: str = "filtered", *, splits: Iterable[str] = SPLITS,
               pages: Iterable[str] | None = None, revision: str | None = None, cache_dir: str | Path | None = None,
               local_dir: str | Path | None = None) -> OperaData:
    """Load OPeRA from a local folder with the Hub layout, or from a Hub dataset repo id.

    From the Hub, ``revision`` of the result is the commit the files came from (the snapshot folder's
    name in the cache), else the revision asked for.
    """
    path = Path(source)
    if path.exists():
        return load_local(path, config, splits, pages=pages)
    if str(source).count("/") != 1:
        raise DatasetError(str(source), "neither a local folder nor a Hub repo id like 'NEU-HAI/OPeRA'")
    root = fetch_hub(str(source), config, revision=revision, cache_dir=cache_dir, local_dir=local_dir)
    data = load_local(root, config, splits, pages=pages)
    commit = root.name if re.fullmatch(r"[0-9a-f]{40}", root.name) else (revision or "")
    return OperaData(data.config, str(source), data.users, data.sessions, data.actions, commit)


# -- instances ----------------------------------------------------------------------------------------


def persona(user: User) -> dict[str, Any]:
    return {"survey": user.survey, "interview": user.interview_transcript_processed}


def history_entry(action: Action) -> dict[str, str]:
    return {"type": action.action_type, "click_type": action.click_type, "name": action.semantic_id,
            "text": action.input_text, "rationale": action.rationale}


def reference(action: Action) -> dict[str, str]:
    return {"session_id": action.session_id, "type": action.action_type, "name": action.semantic_id,
            "text": action.input_text, "click_type": action.click_type}


def build_instances(data: OperaData, split: str) -> list[Instance]:
    """Prediction instances of one split: every action of a session except its first.

    The key is ``<session_id>#<step>`` with ``step`` the action's 0-based position in its session.
    """
    if data.config != "filtered":
        raise ValueError("instances are defined on the filtered config (click / input / terminate)")
    by_session: dict[str, list[Action]] = defaultdict(list)
    for action in data.actions[split]:
        by_session[action.session_id].append(action)
    users = {s.session_id: data.users[s.user_id] for s in data.sessions[split]}
    instances: list[Instance] = []
    for session in data.sessions[split]:
        actions = by_session.get(session.session_id, [])
        user = users[session.session_id]
        shared_persona = persona(user)
        history: list[dict[str, str]] = []
        for step, action in enumerate(actions):
            if step:
                instances.append(Instance(
                    key=f"{session.session_id}#{step}",
                    input={
                        "session_id": session.session_id,
                        "user_id": user.user_id,
                        "step": step,
                        "persona": shared_persona,
                        "history": list(history),
                        "observation": action.simplified_html,
                        "url": action.url,
                    },
                    reference=reference(action),
                ))
            history.append(history_entry(action))
    return instances
