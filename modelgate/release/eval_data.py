"""The user's own evaluation and calibration data: one JSONL schema per task kind, validated line by line.

Every line is one JSON object. The kind is recognised from the first data line's keys, and every
other line must be of the same kind. Any problem stops with a USER_CONFIG_ERROR (exit 2) naming the
file and the 1-based line number. Ids are optional (default: the line number) and become strings,
so ``7`` and ``"7"`` are the same id, and a duplicate.

| kind   | required keys                 | optional keys                          | model      |
|--------|-------------------------------|----------------------------------------|------------|
| qa     | prompt, answer                | id, match (exact / contains), max_new_tokens | LLM  |
| choice | prompt, choices, answer       | id                                     | LLM        |
| text   | text                          | id                                     | LLM        |
| prompt | prompt                        | id                                     | LLM        |
| pair   | text_a, text_b, score         | id, scale_max                          | encoder    |
| image  | image, label                  | id                                     | classifier |

- qa: ``answer`` is a string or a non-empty list of accepted strings; greedy answer, scored 1 when
  it equals an accepted answer (``exact``, after case folding, collapsing spaces and stripping end
  punctuation) or contains one (``contains``).
- choice: ``choices`` are at least 2 distinct strings, ``answer`` the index of the right one;
  scored by log-likelihood (lm-eval ``multiple_choice``, acc).
- text: plain text scored by rolling log-likelihood (bits per byte, lower is better).
- prompt: prompts without answers: answer similarity of the candidate's greedy answers to the
  baseline's.
- pair: two sentences and a similarity label in [0, ``scale_max``] (default 1; 5 for STS-B style);
  scored per pair as ``1 - |cos - score / scale_max|`` with the cosine of the mean-pooled embeddings.
- image: a path relative to the JSONL's folder (never outside it; .png, .jpg, .jpeg, .bmp or .npy)
  and an integer class index or a class name. Instead of a JSONL, a folder ``<root>/<label>/<image>``
  (labels sorted give the class indices, the torchvision ImageFolder convention).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from modelgate.contract import GateInputError

MAX_LINE_BYTES = 1 << 20
MAX_LINES = 1_000_000
MAX_NEW_TOKENS = 4096
DEFAULT_QA_NEW_TOKENS = 32
KINDS: dict[str, tuple[frozenset, frozenset]] = {
    "qa": (frozenset({"prompt", "answer"}), frozenset({"id", "match", "max_new_tokens"})),
    "choice": (frozenset({"prompt", "choices", "answer"}), frozenset({"id"})),
    "text": (frozenset({"text"}), frozenset({"id"})),
    "prompt": (frozenset({"prompt"}), frozenset({"id"})),
    "pair": (frozenset({"text_a", "text_b", "score"}), frozenset({"id", "scale_max"})),
    "image": (frozenset({"image", "label"}), frozenset({"id"})),
}
# which model kind each data kind evaluates
KIND_MODEL = {"qa": "llm", "choice": "llm", "text": "llm", "prompt": "llm", "pair": "encoder",
              "image": "classifier"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".npy")


class _LineError(Exception):
    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


def _error(path: Path, line: int | None, msg: str) -> GateInputError:
    where = f"{path}" + (f" line {line}" if line else "")
    return GateInputError("USER_CONFIG_ERROR", f"eval data {where}: {msg}")


def _no_duplicate_keys(pairs):
    seen: dict = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _text(x: Any) -> bool:
    return isinstance(x, str) and x.strip() != ""


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def detect_kind(row: dict) -> str | None:
    """The one kind whose required keys the row has and whose allowed keys cover it (else None)."""
    fits = [k for k, (req, opt) in KINDS.items() if req <= set(row) <= req | opt]
    if len(fits) == 1:
        return fits[0]
    near = [k for k, (req, _) in KINDS.items() if req <= set(row)]
    return max(near, key=lambda k: len(KINDS[k][0])) if near else None


def _normalise(kind: str, row: dict, base: Path) -> dict:
    """Validate one row of ``kind``; return it normalised (raises _LineError)."""
    req, opt = KINDS[kind]
    unknown = sorted(set(row) - req - opt)
    if unknown:
        raise _LineError(f"unknown key(s) {unknown} for a {kind!r} line (allowed: {sorted(req | opt)})")
    missing = sorted(req - set(row))
    if missing:
        raise _LineError(f"missing key(s) {missing} for a {kind!r} line")
    if "id" in row and not (_int(row["id"]) or _text(row["id"])):
        raise _LineError(f"'id' must be a non-empty string or an integer, got {row['id']!r}")
    out: dict[str, Any] = {}
    if kind in ("qa", "choice", "prompt"):
        if not _text(row["prompt"]):
            raise _LineError("'prompt' must be a non-empty string")
        out["prompt"] = row["prompt"]
    if kind == "qa":
        answers = [row["answer"]] if isinstance(row["answer"], str) else row["answer"]
        if not isinstance(answers, list) or not answers or not all(_text(a) for a in answers):
            raise _LineError("'answer' must be a non-empty string or a non-empty list of non-empty strings")
        match = row.get("match", "exact")
        if match not in ("exact", "contains"):
            raise _LineError(f"'match' must be 'exact' or 'contains', got {match!r}")
        mnt = row.get("max_new_tokens", DEFAULT_QA_NEW_TOKENS)
        if not _int(mnt) or not 1 <= mnt <= MAX_NEW_TOKENS:
            raise _LineError(f"'max_new_tokens' must be an integer in [1, {MAX_NEW_TOKENS}], got {mnt!r}")
        out.update(answers=list(answers), match=match, max_new_tokens=mnt)
    elif kind == "choice":
        ch = row["choices"]
        if not isinstance(ch, list) or len(ch) < 2 or not all(_text(c) for c in ch):
            raise _LineError("'choices' must be a list of at least 2 non-empty strings")
        if len(set(ch)) != len(ch):
            raise _LineError("'choices' has duplicates")
        a = row["answer"]
        if not _int(a) or not 0 <= a < len(ch):
            raise _LineError(f"'answer' must be the index of the right choice, an integer in [0, {len(ch) - 1}], "
                             f"got {a!r}")
        out.update(choices=list(ch), answer=a)
    elif kind == "text":
        if not _text(row["text"]):
            raise _LineError("'text' must be a non-empty string")
        out["text"] = row["text"]
    elif kind == "pair":
        for k in ("text_a", "text_b"):
            if not _text(row[k]):
                raise _LineError(f"'{k}' must be a non-empty string")
        sm = row.get("scale_max", 1)
        if not _number(sm) or sm <= 0:
            raise _LineError(f"'scale_max' must be a finite number > 0, got {sm!r}")
        s = row["score"]
        if not _number(s) or not 0 <= s <= sm:
            raise _LineError(f"'score' must be a number in [0, {sm}], got {s!r}")
        out.update(text_a=row["text_a"], text_b=row["text_b"], score=float(s), scale_max=float(sm))
    elif kind == "image":
        out.update(image=str(_image_path(base, row["image"])), label=_label(row["label"]))
    return out


def _image_path(base: Path, image: Any) -> Path:
    if not _text(image):
        raise _LineError("'image' must be a path relative to the data file's folder")
    root = base.resolve()
    p = (root / image).resolve()
    if not p.is_relative_to(root):
        raise _LineError(f"'image' {image!r} points outside the data folder")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise _LineError(f"'image' {image!r} is not one of {list(IMAGE_SUFFIXES)}")
    if not p.is_file():
        raise _LineError(f"'image' {image!r} not found")
    _check_image(p)
    return p


def _check_image(p: Path) -> None:
    """Open the image's header (cheap): a corrupt file is bad input now, not a crash mid-evaluation."""
    try:
        if p.suffix.lower() == ".npy":
            import numpy as np

            arr = np.load(p, mmap_mode="r", allow_pickle=False)
            if arr.ndim not in (2, 3) or arr.size == 0:
                raise _LineError(f"'image' {p.name}: an .npy image must be a non-empty 2-D (H, W) or 3-D (C, H, W) "
                                 f"array, got shape {tuple(arr.shape)}")
        else:
            from PIL import Image

            with Image.open(p) as im:
                im.verify()
    except _LineError:
        raise
    except Exception as exc:  # PIL and numpy raise many types for a corrupt file
        raise _LineError(f"'image' {p.name} cannot be read: {type(exc).__name__}: {exc}") from None


def _label(label: Any) -> int | str:
    if _int(label) and label >= 0:
        return label
    if _text(label):
        return label
    raise _LineError(f"'label' must be a class index (integer >= 0) or a non-empty class name, got {label!r}")


def load_eval_data(path: str | os.PathLike, *, kinds: tuple[str, ...] | None = None,
                   what: str = "eval data") -> tuple[str, list[dict]]:
    """(kind, normalised rows with a string ``id``) of a JSONL file or an image folder.

    ``kinds`` restricts which kinds are accepted (e.g. calibration data); ``what`` names the file's role
    in messages. Raises GateInputError (USER_CONFIG_ERROR, exit 2) naming the file and the line of the
    first problem.
    """
    try:
        return _load(path, kinds)
    except GateInputError as exc:
        if what == "eval data" or not exc.detail.startswith("eval data "):
            raise
        raise GateInputError(exc.failure_class, what + exc.detail[len("eval data"):], **exc.evidence) from None


def _load(path: str | os.PathLike, kinds: tuple[str, ...] | None) -> tuple[str, list[dict]]:
    p = Path(path)
    if p.is_dir():
        kind, rows = "image", _image_folder(p)
    elif not p.is_file():
        raise _error(p, None, "not found (a JSONL file, or a folder of <label>/<image> for classifiers)")
    else:
        kind, rows = _read_jsonl(p)
    if kinds is not None and kind not in kinds:
        raise _error(p, None, f"{kind!r} data cannot be used here (expected: {', '.join(kinds)})")
    return kind, rows


def _read_jsonl(path: Path) -> tuple[str, list[dict]]:
    try:
        with open(path, "rb") as fh:
            return _parse_lines(path, fh)
    except OSError as exc:
        raise _error(path, None, f"cannot be read: {exc}") from None


def _parse_lines(path: Path, fh) -> tuple[str, list[dict]]:
    rows: list[dict] = []
    ids: dict[str, int] = {}
    kind = None
    lineno = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)  # bounded: one huge line never sits in memory whole
        if not raw:
            break
        lineno += 1
        if lineno > MAX_LINES:
            raise _error(path, lineno, f"more than {MAX_LINES} lines")
        if len(raw) > MAX_LINE_BYTES:
            raise _error(path, lineno, f"line longer than {MAX_LINE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _error(path, lineno, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text.strip():
            continue
        try:
            row = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise _error(path, lineno, f"not valid JSON: {exc}") from None
        if not isinstance(row, dict):
            raise _error(path, lineno, f"a line must be a JSON object, got {type(row).__name__}")
        found = detect_kind(row)
        if kind is None:
            if found is None:
                raise _error(path, lineno, f"keys {sorted(row)} match no eval-data kind; kinds and their "
                             "required keys: " + "; ".join(f"{n}: {sorted(r)}" for n, (r, _) in KINDS.items()))
            kind = found
        elif (found is not None and found != kind and not KINDS[kind][0] <= set(row)
              and set(row) <= KINDS[found][0] | KINDS[found][1]):  # the line is wholly another kind's
            raise _error(path, lineno, f"a {found!r} line in a {kind!r} file (the first line set the kind); "
                         "one kind per file")
        try:
            norm = _normalise(kind, row, path.parent)
        except _LineError as exc:
            raise _error(path, lineno, exc.msg) from None
        rid = str(row.get("id", lineno))
        if rid in ids:
            raise _error(path, lineno, f"duplicate id {rid!r} (first on line {ids[rid]})")
        ids[rid] = lineno
        rows.append(dict(norm, id=rid))
    if kind is None or not rows:
        raise _error(path, None, "no data lines")
    return kind, rows


def _image_folder(root: Path) -> list[dict]:
    base = root.resolve()
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise _error(root, None, "an image folder needs at least 2 class sub-folders (<root>/<label>/<image>)")
    rows = []
    for idx, c in enumerate(classes):
        for f in sorted((base / c).iterdir()):
            if not f.is_file() or f.name.startswith(".") or f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if not f.resolve().is_relative_to(base):
                raise _error(root, None, f"{c}/{f.name} is a link outside the folder")
            try:
                _check_image(f)
            except _LineError as exc:
                raise _error(root, None, f"{c}/{f.name}: {exc.msg}") from None
            rows.append({"id": f"{c}/{f.name}", "image": str(f.resolve()), "label": idx})
    if not rows:
        raise _error(root, None, f"no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    return rows


def rows_sha256(kind: str, rows: list[dict]) -> str:
    """Content hash of normalised rows (images by their bytes, not their paths)."""
    h = hashlib.sha256(kind.encode())
    for r in rows:
        item = dict(r)
        if kind == "image":
            item["image"] = _file_sha(r["image"])
        h.update(json.dumps(item, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def class_indices(rows: list[dict]) -> dict[str, int] | None:
    """Class names -> indices (sorted names) when the labels are names; None when they are indices."""
    names = sorted({r["label"] for r in rows if isinstance(r["label"], str)})
    if names and any(isinstance(r["label"], int) for r in rows):
        raise GateInputError("USER_CONFIG_ERROR", "image labels mix class indices and class names; use one form")
    return {n: i for i, n in enumerate(names)} if names else None
